"""Prints the `mkdocs build` time of one page against the number of tags on it: demos per page
and citations per page.

    .venv/bin/python benchmarks/bench_tags.py [--demos 1000 10000] [--citations 100000] [--cache DIR]

A demo page holds N `<% sanet_demo %>` tags, each a paragraph of its own (every demo brings its
stylesheet and script, which the plugin then keeps once per page); a citation page holds N
`<% cite %>` tags, ten to a paragraph, against the project's references.bib. A page with one demo
is built first, so that the model is in the cache (in a source checkout a fresh cache converts it:
minutes; `--cache` reuses a folder between runs), then a page without tags for the baseline. Scanning,
substitution and the page's clean-up are each one pass over the page, so the time grows linearly
with N (issue 19 measured 3.1 s for 1,000 demos, 10.3 s for 2,000 and 40-83 s for 4,000 when each
repeated stylesheet was cut out of the page one at a time). Times are printed, never asserted;
the output of each build is checked: one demo element per id, one link per citation.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from helpers import mkdocs_build, write_site  # noqa: E402

KEYS = ["park2019sanet", "simonyan2015vgg", "vaswani2017attention", "huang2017adain"]


def demo_page(count: int) -> str:
    return "# Demos\n\n" + "".join("<% sanet_demo %>\n\n" for _ in range(count))


def citation_page(count: int) -> str:
    lines = ["# Citations", ""]
    for start in range(0, count, 10):
        lines += [" ".join(f"Claim <% cite {KEYS[i % len(KEYS)]} %>." for i in range(start, min(start + 10, count))), ""]
    return "\n".join(lines) + "\n"


def build_seconds(markdown: str, folder: Path, cache: Path) -> tuple[float, str]:
    config = write_site(folder, cache, {"index.md": markdown},
                        plugin_options=f"bibliography: {ROOT / 'docs' / 'references.bib'}")
    started = time.perf_counter()
    mkdocs_build(config)
    seconds = time.perf_counter() - started
    return seconds, (folder / "site" / "index.html").read_text()


def check_demos(html: str, count: int) -> None:
    ids = re.findall(r'<sanet-demo class="sanet-demo" id="([^"]+)"', html)
    assert len(ids) == count and len(set(ids)) == count, "not one demo element per id"
    assert html.count("sanet-demo.css") == 1 and html.count("sanet-demo.js\"></script>") == 1


def check_citations(html: str, count: int) -> None:
    assert html.count('class="sanet-cite"') == count, "not every citation was substituted"
    assert html.count('<h2 id="references">') == 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demos", type=int, nargs="*", default=[1000, 10000])
    parser.add_argument("--citations", type=int, nargs="*", default=[100000])
    parser.add_argument("--cache", type=Path, help="the plugin's cache folder (default: a new one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache.resolve() if args.cache else Path(tmp) / "cache"
        build_seconds(demo_page(1), Path(tmp) / "model", cache)
        baseline, _ = build_seconds("# Tags\n\nNone.\n", Path(tmp) / "none", cache)
        print(f"{'tags':>9}  {'kind':>9}  {'build s':>8}  {'minus no-tag build':>18}  {'ms per tag':>10}")
        print(f"{0:>9}  {'':>9}  {baseline:8.2f}")
        for kind, counts, page, check in (("demos", args.demos, demo_page, check_demos),
                                          ("citations", args.citations, citation_page, check_citations)):
            for count in counts:
                seconds, html = build_seconds(page(count), Path(tmp) / f"{kind}-{count}", cache)
                check(html, count)
                print(f"{count:>9,}  {kind:>9}  {seconds:8.2f}  {seconds - baseline:18.2f}  "
                      f"{1000 * (seconds - baseline) / count:10.3f}")


if __name__ == "__main__":
    main()
