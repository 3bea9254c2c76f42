"""Prints the peak memory and time of `mkdocs-sanet info --model FOLDER` on real and hostile checkpoints.

    .venv/bin/python benchmarks/bench_hostile.py [--keep DIR]

Each hostile folder holds the real decoder and transformer next to a hostile vgg_normalised.pth:
- the 100000x100000 and 20000x20000 zero-stride bombs (a tensor viewing one stored value)
- a float32 tensor whose zip entry inflates to 2 GiB (deflated zeros, written in 1 MiB chunks); the
  same entry for a tensor declaring one value; 256 MiB of zeros for 64M values (within the count limit)
Peak resident memory comes from GNU time (`/usr/bin/time -v`; Debian package `time`). Needs torch.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import hostile_checkpoints as hostile  # noqa: E402
import original_sanet  # noqa: E402
import torch  # noqa: E402

GNU_TIME = Path("/usr/bin/time")


def with_hostile_vgg(real: Path, target: Path, make) -> Path:
    target.mkdir()
    for name in ("decoder_iter_500000.pth", "transformer_iter_500000.pth"):
        (target / name).write_bytes((real / name).read_bytes())
    make(target / "vgg_normalised.pth")
    return target


def measure(folder: Path) -> tuple[float, float, int, str]:
    """Peak RSS (MB), wall time (s), exit code and the last stderr line of `info` on folder."""
    start = time.perf_counter()
    result = subprocess.run([str(GNU_TIME), "-v", sys.executable, "-m", "mkdocs_sanet.cli", "info", "--model",
                             str(folder)], capture_output=True, text=True)
    wall = time.perf_counter() - start
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1)) / 1024
    lines = [line for line in result.stderr.splitlines() if line.startswith("mkdocs-sanet: error:")]
    return peak, wall, int(re.search(r"Exit status: (\d+)", result.stderr).group(1)), (lines or ["ok"])[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="write the folders here (default: a temporary folder)")
    args = parser.parse_args()
    if not GNU_TIME.exists():
        sys.exit("GNU time is missing: apt-get install -y time")
    with tempfile.TemporaryDirectory() as tmp:
        base = args.keep or Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(0)
        model = original_sanet.Original()
        real = original_sanet.save_checkpoints(model, base / "pth")
        started = time.perf_counter()
        folders = {
            "real checkpoints, .pth": real,
            "real checkpoints, .safetensors": original_sanet.save_checkpoints(model, base / "st", safetensors=True),
            "100000x100000 zero-stride bomb": with_hostile_vgg(
                real, base / "bomb100k", lambda p: hostile.zero_stride_bomb(p, 100_000)),
            "20000x20000 zero-stride bomb": with_hostile_vgg(
                real, base / "bomb20k", lambda p: hostile.zero_stride_bomb(p, 20_000)),
            "zip entry inflating to 2 GiB": with_hostile_vgg(
                real, base / "inflate", lambda p: hostile.inflating_entry(p, 2 << 30)),
            "same, declaring one value": with_hostile_vgg(real, base / "inflate1", lambda p: hostile.write_pth(
                p, {"0.weight": hostile.Tensor(hostile.Storage(numel=1, entry_bytes=2 << 30))}, compress=True)),
            "256 MiB of zeros, 64M values": with_hostile_vgg(
                real, base / "inflate256", lambda p: hostile.inflating_entry(p, 256 << 20)),
        }
        print(f"(hostile files written in {time.perf_counter() - started:.1f} s; the 2 GiB entry takes "
              f"{(base / 'inflate' / 'vgg_normalised.pth').stat().st_size:,} bytes on disk)")
        print(f"{'folder':34} {'peak RSS MB':>11} {'vs .pth':>8} {'time s':>7} {'exit':>4}  message")
        baseline = None
        for label, folder in folders.items():
            peak, wall, code, message = measure(folder)
            baseline = baseline or peak
            message = message.replace(f"mkdocs-sanet: error: {folder}/", "")
            print(f"{label:34} {peak:11.1f} {peak - baseline:+8.1f} {wall:7.2f} {code:4}  {message[:110]}")


if __name__ == "__main__":
    main()
