"""Many tags on one page (issue 19): 10,000 demos, 100,000 citations. Each build's output is
checked (one demo element per id, every citation a link, one references list); the time is
printed by benchmarks/bench_tags.py, never asserted here."""

from __future__ import annotations

import re

from helpers import ROOT, mkdocs_build, write_site

KEYS = ["park2019sanet", "simonyan2015vgg", "vaswani2017attention", "huang2017adain"]


def build(root, cache, markdown: str) -> str:
    config = write_site(root, cache, {"index.md": markdown},
                        plugin_options=f"bibliography: {ROOT / 'docs' / 'references.bib'}")
    mkdocs_build(config)
    return (root / "site" / "index.html").read_text()


def test_ten_thousand_demos_on_a_page(tmp_path, model_cache):
    html = build(tmp_path, model_cache, "# Demos\n\n" + "".join("<% sanet_demo %>\n\n" for _ in range(10000)))
    ids = re.findall(r'<sanet-demo class="sanet-demo" id="([^"]+)"', html)
    assert ids == [f"sanet-demo-{n}" for n in range(1, 10001)]
    # Each demo brought its stylesheet and script: the page keeps one of each, the script after the last demo.
    assert html.count("/sanet-demo.css\">") == 1 and html.count("/sanet-demo.js\"></script>") == 1
    assert html.index("/sanet-demo.css") < html.index('id="sanet-demo-1"')
    assert html.rindex("</sanet-demo>") < html.index("/sanet-demo.js\"></script>")


def test_hundred_thousand_citations_on_a_page(tmp_path, model_cache):
    paragraphs = [" ".join(f"Claim <% cite {KEYS[(start + i) % 4]} %>." for i in range(10))
                  for start in range(0, 100000, 10)]
    html = build(tmp_path, model_cache, "# Citations\n\n" + "\n\n".join(paragraphs) + "\n")
    links = re.findall(r'<a class="sanet-cite" href="#ref-([^"]+)" id="cite-([^"]+)-(\d+)">\[(\d)\]</a>', html)
    assert len(links) == 100000
    assert {(key, number) for key, _, _, number in links} == {(key, str(n + 1)) for n, key in enumerate(KEYS)}
    for key in KEYS:  # each citation of a key has its own id: cite-<key>-1 ... cite-<key>-25000
        assert sorted(int(rank) for k, _, rank, _ in links if k == key) == list(range(1, 25001))
    assert html.count('<h2 id="references">References</h2>') == 1
    references = re.search(r'<ol class="sanet-references">(.*?)</ol>', html, re.S).group(1)
    assert re.findall(r'<li id="ref-([^"]+)">', references) == KEYS
