"""Prints the peak memory of reading issue 19's hostile bibliography (29 `@string` lines that
double each other: pybtex alone would join 4 GiB), and the `mkdocs build` time of one page
holding N citations (issue 19 asks for seconds at 100,000).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_bibliography.py [--citations 100000] [--no-build]

Nothing is asserted: the tests (tests/test_bibliography.py) check what the messages say.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from helpers import mkdocs_build, write_site  # noqa: E402

DOUBLING = "\n".join(['@string{m0 = "xx"}'] + [f"@string{{m{i} = m{i - 1} # m{i - 1}}}" for i in range(1, 29)]
                     + ["@misc{a, title = m28}", ""])
# Read in a child process, so that its peak (ru_maxrss) is the reading's; 1 GiB of address space
# at most, so that a regression ends in a MemoryError, not in the machine's memory.
READ = """
import resource, sys, time, tracemalloc
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from mkdocs_sanet.citations import Bibliography, BibliographyError
import pybtex.database.input.bibtex, pybtex.style.formatting.plain  # imported before the baseline
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
started = time.perf_counter()
try:
    Bibliography(__import__("pathlib").Path(sys.argv[1]))
    outcome = "read (not refused)"
except BibliographyError as error:
    outcome = str(error).split(": ", 1)[1]
seconds = time.perf_counter() - started
peak = tracemalloc.get_traced_memory()[1]
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(f"{seconds:.2f}|{peak / 2**20:.1f}|{(after - before) / 1024:.1f}|{after / 1024:.0f}|{outcome}")
"""


def doubling_row(folder: Path) -> str:
    path = folder / "doubling.bib"
    path.write_text(DOUBLING)
    result = subprocess.run([sys.executable, "-c", READ, str(path)], capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        return f"@string doubling (29 lines): failed, {result.stderr.strip().splitlines()[-1:]}"
    seconds, traced, grown, total, outcome = result.stdout.strip().split("|", 4)
    return (f"@string doubling (29 lines): {seconds} s, Python peak {traced} MiB, RSS grew {grown} MiB "
            f"(process {total} MiB): {outcome}")


def citations_row(count: int, folder: Path) -> str:
    keys = [f"key{i}" for i in range(100)]
    bib = "".join(f"@misc{{{key}, author = {{Author, A.}}, title = {{Title {i}}}, year = {{2020}}}}\n"
                  for i, key in enumerate(keys))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "refs.bib").write_text(bib)
    lines = ["# Citations", ""]
    for start in range(0, count, 10):
        lines += [" ".join(f"Claim <% cite {keys[i % len(keys)].upper() if i % 2 else keys[i % len(keys)]} %>."
                           for i in range(start, min(start + 10, count))), ""]
    config = write_site(folder, folder / "cache", {"index.md": "\n".join(lines) + "\n"},
                        plugin_options=f"bibliography: {folder / 'refs.bib'}")
    started = time.perf_counter()
    mkdocs_build(config)
    seconds = time.perf_counter() - started
    return f"{count:,} citations of 100 keys (half of them in capitals) on one page: mkdocs build {seconds:.1f} s"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--citations", type=int, default=100_000)
    parser.add_argument("--no-build", action="store_true", help="only the @string case")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        print(doubling_row(Path(folder)), flush=True)
        if not args.no_build:
            print(citations_row(args.citations, Path(folder) / "site"), flush=True)


if __name__ == "__main__":
    main()
