"""Prints the time of a warm build of a site with the demo: separate `mkdocs build` processes
(each checks the cache entry's hashes once), and rebuilds in one process as `mkdocs serve` does.

    .venv/bin/python benchmarks/bench_warm_build.py [--runs N] [--cache-dir D]

The first build fills the cache (a conversion, about a minute) unless --cache-dir already has the model.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from conftest import mkdocs_build, write_site  # noqa: E402

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


if __name__ == "__main__":
    main()
