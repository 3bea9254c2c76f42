"""Training speed on this machine: samples per second of one training step (all four loss
terms, forward and backward, Adam), for the served architecture (`fast` widths, the factored
encoder) and the full-width one, at 128 and 256 px, float32 against bfloat16 autocast, NCHW
against channels-last. Printed, never asserted. Stop a background training run first
(kill -STOP PID, then kill -CONT PID): two jobs on two cores measure nothing.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_training.py [--sizes 128 256] [--steps 4]
        [--archs served full] [--modes float32 bf16 channels-last] [--batch 4]

`--trainer` measures the trainer itself instead (`training.train`: a copy of the committed state,
its schedule's crops of random pictures, the identity terms as the state says), samples per
second over `--steps` iterations after one, for each `--layouts` WORKERSxTHREADS (default 1x2
2x1: one process on both cores against two processes of one thread that share each batch),
in float32 or, with `--bf16`, under bfloat16 autocast.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mkdocs_sanet import weights as plugin_weights
from training.net import SANetTorch, losses
from training import train
from training.train import STATE, read_encoder, served_channels

CORES = os.cpu_count() or 1


def model(arch_name: str) -> SANetTorch:
    if arch_name == "served":
        channels = served_channels()
        net = SANetTorch("vgg16", channels)
        weights = plugin_weights.untrained("vgg16", 0, channels=channels)
        weights.update(read_encoder(STATE) if (STATE / "encoder.npz").is_file() else
                       plugin_weights.untrained("vgg16", 0, ("encoder",), channels))
    else:
        net = SANetTorch("vgg16")
        weights = plugin_weights.untrained("vgg16", 0, ("encoder", "transform", "decoder"))
    net.load_plugin_weights(weights)
    return net


def measure(net: SANetTorch, size: int, batch: int, mode: str, steps: int) -> float:
    """Samples per second over `steps` steps after one warm-up step."""
    optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-4)
    fmt = torch.channels_last if mode == "channels-last" else torch.contiguous_format
    net = net.to(memory_format=fmt)
    gen = torch.Generator().manual_seed(0)
    content = torch.rand(batch, 3, size, size, generator=gen).contiguous(memory_format=fmt)
    style = torch.rand(batch, 3, size, size, generator=gen).contiguous(memory_format=fmt)
    times = []
    for i in range(steps + 1):
        tick = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode == "bf16"):
            total = losses(net, content, style)["total"]
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        if i:
            times.append(time.perf_counter() - tick)
    return batch * len(times) / sum(times)


def measure_trainer(layout: str, steps: int, bf16: bool = False) -> float:
    """Samples per second of `training.train` with WORKERSxTHREADS, on a copy of the state."""
    workers, threads = (int(x) for x in layout.split("x"))
    with tempfile.TemporaryDirectory() as folder:
        state, data = Path(folder) / "state", Path(folder) / "data"
        shutil.copytree(STATE, state)
        rng = np.random.default_rng(0)
        for kind in ("content", "style"):
            (data / kind).mkdir(parents=True)
            for i in range(8):
                Image.fromarray(rng.integers(0, 256, (300, 400, 3), np.uint8)).save(data / kind / f"{i}.png")
        start = train.read_meta(state)["iteration"]
        args = train.parser().parse_args(["--state", str(state), "--data", str(data), "--iterations",
                                          str(start + 1 + steps), "--eval-minutes", "0", "--log-seconds", "0",
                                          "--workers", str(workers), "--threads", str(threads)]
                                         + ["--bf16" if bf16 else "--no-bf16"])
        with contextlib.redirect_stdout(io.StringIO()):  # a line an iteration
            s = train.train(args)
        # each iteration's line: its samples over the seconds since the last line; the first
        # iteration (the pictures scaled) left out
        rows, batch = s.meta["history"][-steps:], train.phase_of(s.meta)["batch"]
        return batch * len(rows) / sum(batch / r["samples_per_second"] for r in rows)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    p.add_argument("--archs", nargs="+", default=["served", "full"])
    p.add_argument("--modes", nargs="+", default=["float32", "bf16", "channels-last"])
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--trainer", action="store_true", help="the trainer, whole iterations, per --layouts")
    p.add_argument("--layouts", nargs="+", default=["1x2", "2x1"], help="WORKERSxTHREADS")
    p.add_argument("--bf16", action="store_true", help="with --trainer: the trainer under bfloat16 autocast")
    args = p.parse_args()
    if args.trainer:
        meta = train.read_meta(STATE)
        print(f"torch {torch.__version__}, the trainer on a copy of {STATE} ({meta['samples']:,} samples, phase "
              f"{train.phase_of(meta)}, identity terms on {meta.get('identity_samples')} pairs), "
              f"{args.steps} iterations after one, {'bfloat16' if args.bf16 else 'float32'}")
        print("| workers x threads | samples/s |\n|---|---|")
        for layout in args.layouts:
            print(f"| {layout} | {measure_trainer(layout, args.steps, args.bf16):.2f} |", flush=True)
        return
    torch.set_num_threads(CORES)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, batch {args.batch}, {args.steps} steps after a warm-up")
    print("| architecture | size | mode | samples/s |\n|---|---|---|---|")
    for arch_name in args.archs:
        for size in args.sizes:
            for mode in args.modes:
                rate = measure(model(arch_name), size, args.batch, mode, args.steps)
                print(f"| {arch_name} | {size} | {mode} | {rate:.2f} |", flush=True)


if __name__ == "__main__":
    main()
