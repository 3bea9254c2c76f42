"""Training speed on this machine: samples per second of one training step (all four loss
terms, forward and backward, Adam), for the served architecture (`fast` widths, the factored
encoder) and the full-width one, at 128 and 256 px, float32 against bfloat16 autocast, NCHW
against channels-last. Printed, never asserted. Stop a background training run first
(kill -STOP PID, then kill -CONT PID): two jobs on two cores measure nothing.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_training.py [--sizes 128 256] [--steps 4]
        [--archs served full] [--modes float32 bf16 channels-last] [--batch 4]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from mkdocs_sanet import weights as plugin_weights
from training.net import SANetTorch, losses
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


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    p.add_argument("--archs", nargs="+", default=["served", "full"])
    p.add_argument("--modes", nargs="+", default=["float32", "bf16", "channels-last"])
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=3)
    args = p.parse_args()
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
