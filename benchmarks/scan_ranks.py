"""Ranks per encoder conv, from a scan: each conv compressed alone, at several ranks.

    .venv/bin/python benchmarks/scan_ranks.py [--convs conv3_2 ...] [--fractions 0.125 0.25 ...]
    .venv/bin/python benchmarks/scan_ranks.py --check fast "fast encoder/conv1_2/rank=8" ...

For each encoder conv of the VGG16 encoder and each rank (a fraction of its width; conv2_2 also
pruned to a number of channels), the conv alone is compressed (float32, calibrated as
compression.apply does) and the relative error |a - b| / |a| of relu4_1 and relu5_1 against the
uncompressed encoder is measured at 512x512 on the pictures that bench_compression.py measures
(content-cat.jpg and the paintings of ../shared/data/paintings, none of them in the calibration):
the mean over the six, and the photo's in brackets. GFLOPs: the `fast` preset's total for a
512x512 content image (style as `fast` shrinks it) with this conv's entry replaced by the scanned
one, and that conv's share.

--check measures whole settings the same way (their encoder items and uint8 encoder weights:
what the encoder computes does not depend on the rest), with their 512x512 GFLOPs per part.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_compression import FEATURE_PICTURES, picture  # noqa: E402
from mkdocs_sanet import architecture, compression, weights  # noqa: E402

ENCODER = "vgg16"
CONVS = ("conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3", "conv4_1", "conv4_2", "conv4_3",
         "conv5_1")
FRACTIONS = (0.0625, 0.125, 0.1875, 0.25, 0.375)
CONV2_2_PRUNED = (16, 24, 32, 48)  # `fast` prunes conv2_2 (to 32) rather than factoring it
SIZE = 512


def feature_errors(weights_: dict, reference: list) -> dict[str, list[float]]:
    """relu4_1 and relu5_1 relative errors on FEATURE_PICTURES against the reference features."""
    model = compression._model(weights_, ENCODER)
    errors = {"relu4_1": [], "relu5_1": []}
    for name, ref in zip(FEATURE_PICTURES, reference):
        for tap, got, want in zip(errors, compression._features(model, picture(name, SIZE)), ref):
            errors[tap].append(float(np.linalg.norm(got - want) / np.linalg.norm(want)))
    return errors


def encoder_only(setting: compression.Setting) -> compression.Setting:
    """The items of a setting that change what the encoder computes."""
    return compression.Setting({k: v for k, v in setting.keep.items() if k.startswith("encoder")},
                               uint8=tuple(n for n in setting.uint8 if n.split("/")[0] == "encoder"))


def gflops(setting: compression.Setting) -> dict[str, float]:
    """512x512 GFLOPs per conv (a factored conv with its 1x1 half) and in total."""
    widths = compression.channels(setting, ENCODER)
    style = min(SIZE, setting.style_max_size or SIZE)
    per_conv: dict[str, float] = {}
    for name, value in architecture.conv_flops(ENCODER, SIZE, SIZE, widths, (style, style)).items():
        key = name[: -len("/expand")] if name.endswith("/expand") else name
        per_conv[key] = per_conv.get(key, 0) + value / 1e9
    per_conv["total"] = sum(v for k, v in per_conv.items() if k != "total")
    return per_conv


def in_fast(conv: str, item: dict) -> compression.Setting:
    """`fast` with this conv's entries replaced by `item`."""
    fast = compression.parse("fast")
    keep = {k: v for k, v in fast.keep.items() if k != f"encoder/{conv}" and not k.startswith(f"encoder/{conv}/")}
    return compression.Setting({**keep, **item}, fast.rank, fast.style_max_size, fast.uint8)


def row(label: str, errors: dict, extra: str) -> str:
    mean = {tap: np.mean(v) for tap, v in errors.items()}
    return (f"| {label} | {extra} | {mean['relu4_1']:.3f} ({errors['relu4_1'][0]:.3f}) | "
            f"{mean['relu5_1']:.3f} ({errors['relu5_1'][0]:.3f}) |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--convs", nargs="+", default=list(CONVS))
    parser.add_argument("--fractions", nargs="+", type=float, default=list(FRACTIONS))
    parser.add_argument("--check", nargs="+", metavar="SETTING", help="measure these settings instead of scanning")
    args = parser.parse_args()

    original = weights.load(weights.resolve("default"))
    model = compression._model(original, ENCODER)
    reference = [compression._features(model, picture(name, SIZE)) for name in FEATURE_PICTURES]
    quiet = lambda line: None  # noqa: E731

    if args.check:
        print("| setting | GFLOPs 512x512 (encoder / transform / decoder) | relu4_1 err | relu5_1 err |")
        print("|---|---|---|---|")
        for text in args.check:
            setting = compression.parse(text)
            parts = architecture.flops(ENCODER, SIZE, SIZE, compression.channels(setting, ENCODER),
                                       (min(SIZE, setting.style_max_size or SIZE),) * 2)
            flops = f"{sum(parts.values()) / 1e9:.1f} ({' / '.join(f'{v / 1e9:.1f}' for v in parts.values())})"
            errors = feature_errors(compression.apply(original, ENCODER, encoder_only(setting), quiet), reference)
            print(row(f"`{text}`", errors, flops), flush=True)
        return

    base = gflops(compression.parse("fast"))
    print(f"fast: {base['total']:.1f} GFLOPs at {SIZE}x{SIZE}")
    print("| conv | compressed alone | conv GFLOPs (fast's) | fast's total | relu4_1 err | relu5_1 err |")
    print("|---|---|---|---|---|---|")
    for conv in args.convs:
        width = architecture.conv_table(ENCODER)[f"encoder/{conv}"].cout
        items = [{f"encoder/{conv}/rank": max(1, int(width * f))} for f in args.fractions]
        if conv == "conv2_2":
            items += [{f"encoder/{conv}": n} for n in CONV2_2_PRUNED]
        for item in items:
            started = time.perf_counter()
            (key, value), = item.items()
            kind = f"rank {value}" if key.endswith("/rank") else f"{value} channels"
            errors = feature_errors(compression.apply(original, ENCODER, compression.Setting(item), quiet), reference)
            flops = gflops(in_fast(conv, item))
            print(row(conv, errors, f"{kind} of {width} | {flops[f'encoder/{conv}']:.1f} (was "
                      f"{base[f'encoder/{conv}']:.1f}) | {flops['total']:.1f}") +
                  f" <!-- {time.perf_counter() - started:.0f} s -->", flush=True)


if __name__ == "__main__":
    main()
