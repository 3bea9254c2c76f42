"""Prints the `mkdocs build` time of a page against the number of tags on it.

    .venv/bin/python benchmarks/bench_tags.py [--counts 1000 10000]

Each page holds N `<% cite %>` tags (the cheapest tag: the time is the plugin's scanning and
substitution, not the rendering), ten to a paragraph, against the project's references.bib;
the site is built once without tags for the baseline. Extraction and substitution are one pass
each over the page, so the time grows linearly with N (issue 10.5 measured 812 s for 10,000
tags when substitution made one pass per tag).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from helpers import mkdocs_build, write_site  # noqa: E402

KEYS = ["park2019sanet", "simonyan2015vgg", "vaswani2017attention", "huang2017adain"]


def page(count: int) -> str:
    lines = ["# Tags", ""]
    for start in range(0, count, 10):
        lines += [" ".join(f"Claim <% cite {KEYS[i % len(KEYS)]} %>." for i in range(start, min(start + 10, count))), ""]
    return "\n".join(lines) + "\n"


def build_seconds(count: int, folder: Path) -> float:
    config = write_site(folder, folder / "cache", {"index.md": page(count) if count else "# Tags\n\nNone.\n"},
                        plugin_options=f"bibliography: {ROOT / 'docs' / 'references.bib'}")
    started = time.perf_counter()
    mkdocs_build(config)
    seconds = time.perf_counter() - started
    html = (folder / "site" / "index.html").read_text()
    assert html.count('class="sanet-cite"') == count, "not every tag was substituted"
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[1000, 10000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        baseline = build_seconds(0, Path(tmp) / "none")
        print(f"{'tags':>7}  {'build s':>8}  {'minus no-tag build':>18}  {'ms per tag':>10}")
        print(f"{0:>7}  {baseline:8.2f}")
        for count in args.counts:
            seconds = build_seconds(count, Path(tmp) / str(count))
            print(f"{count:>7,}  {seconds:8.2f}  {seconds - baseline:18.2f}  {1000 * (seconds - baseline) / count:10.3f}")


if __name__ == "__main__":
    main()
