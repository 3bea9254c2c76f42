"""Prints the time of a warm build of a site with the demo: separate `mkdocs build` processes
(each checks the cache entry's hashes once), and rebuilds in one process as `mkdocs serve` does;
then the parts that the cache checks and the copies add: checking the entry with and without
hashes, and copying the entry and the runtime into a new site against hard-linking them.

    .venv/bin/python benchmarks/bench_warm_build.py [--runs N] [--cache-dir D]

The first build fills the cache (a conversion, about a minute) unless --cache-dir already has the model.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from helpers import mkdocs_build, write_site  # noqa: E402
from mkdocs_sanet import cache, page_assets  # noqa: E402

IN_PROCESS = """
import logging, sys, time
logging.basicConfig(level=logging.WARNING)
from mkdocs.commands.build import build
from mkdocs.config import load_config
for _ in range(int(sys.argv[2])):
    started = time.perf_counter()
    build(load_config(sys.argv[1]))
    print(f"{time.perf_counter() - started:.3f}")
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cache-dir", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cache_dir = args.cache_dir or Path(tmp) / "cache"
        config = write_site(Path(tmp) / "site", cache_dir, {"index.md": "# Home\n\n<% sanet_demo %>\n"})
        mkdocs_build(config)  # fills the cache
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            mkdocs_build(config)
            times.append(time.perf_counter() - started)
        result = subprocess.run([sys.executable, "-c", IN_PROCESS, str(config), str(args.runs + 1)],
                                capture_output=True, text=True, check=True, cwd=config.parent)
        rebuilds = [float(line) for line in result.stdout.split()]
        print(f"warm `mkdocs build` (process), median of {args.runs}: {statistics.median(times):.3f} s "
              f"(min {min(times):.3f})")
        print(f"build() in one process: first {rebuilds[0]:.3f} s, later ones (as serve) median "
              f"{statistics.median(rebuilds[1:]):.3f} s (min {min(rebuilds[1:]):.3f})")
        parts(cache_dir, args.runs)


def median_ms(run, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def parts(cache_dir: Path, runs: int) -> None:
    [entry] = [p for p in cache_dir.iterdir() if not p.name.startswith(".") and (p / cache.MANIFEST).is_file()]
    store = cache.Cache(cache_dir)
    files = [(p, Path("models") / p.relative_to(entry)) for p in entry.rglob("*") if p.is_file()]
    files += [(p, Path("tfjs") / p.name) for p in page_assets.runtime_sources(ROOT / "node_modules")]
    size = sum(p.stat().st_size for p, _ in files) / 1e6

    def hashed():
        cache._verified.clear()
        assert store.problem(entry.name) is None

    def into_new_site(place):
        with tempfile.TemporaryDirectory() as site:
            for source, name in files:
                place(source, Path(site) / name)

    def link(source, target):
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(source, target)

    print(f"checking the entry: with hashes {median_ms(hashed, runs):.1f} ms, "
          f"sizes and stats only {median_ms(lambda: store.problem(entry.name), runs):.2f} ms")
    print(f"{size:.1f} MB into a new site: copies {median_ms(lambda: into_new_site(page_assets.copy_file), runs):.1f} ms, "
          f"hard links {median_ms(lambda: into_new_site(link), runs):.1f} ms")
    with tempfile.TemporaryDirectory() as site:
        page_assets.copy_tree(entry, Path(site))
        print(f"copying the entry again into a kept site: "
              f"{median_ms(lambda: page_assets.copy_tree(entry, Path(site)), runs):.2f} ms")


if __name__ == "__main__":
    main()
