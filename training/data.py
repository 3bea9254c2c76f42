"""Training images: resized so that the short side is `resize`, random `crop` squares, flips."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from PIL import Image

EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp"}


def image_files(*folders: Path) -> list[Path]:
    files = sorted(p for folder in folders for p in Path(folder).rglob("*") if p.suffix.lower() in EXTENSIONS)
    if not files:
        raise FileNotFoundError(f"no images in {', '.join(map(str, folders))}")
    return files


def load_resized(path: Path, short_side: int) -> Image.Image:
    with Image.open(path) as image:
        image = image.convert("RGB")
        scale = short_side / min(image.size)
        return image.resize((max(short_side, round(image.width * scale)), max(short_side, round(image.height * scale))),
                            Image.Resampling.BICUBIC)


def load_for_crops(path: Path, short_side: int, crop: int) -> Image.Image:
    """RGB, scaled so that the short side is `short_side`, or its own if smaller (no upscaling
    beyond what a `crop` square needs)."""
    with Image.open(path) as image:
        return load_resized(path, max(crop, min(short_side, *image.size)))


class Images:
    """Each kind's pictures (content/, style/ of a data folder), scaled for a phase (short side
    `resize`, or its own if smaller) and kept in memory; batches of random crops with random
    horizontal flips, drawn from the `random.Random` passed in (the trainer saves its state, so
    a resumed run draws what an uninterrupted one would)."""

    def __init__(self, data: Path):
        self.files = {kind: image_files(Path(data) / kind) for kind in ("content", "style")}
        self.loaded: dict[tuple, list] = {}

    def batch(self, kind: str, rng: random.Random, count: int, crop: int, resize: int) -> torch.Tensor:
        """NCHW float32 in [0, 1]."""
        if (kind, resize, crop) not in self.loaded:
            self.loaded[(kind, resize, crop)] = [load_for_crops(p, resize, crop) for p in self.files[kind]]
        images = self.loaded[(kind, resize, crop)]
        out = np.empty((count, crop, crop, 3), np.float32)
        for i in range(count):
            image = images[rng.randrange(len(images))]
            x, y = rng.randint(0, image.width - crop), rng.randint(0, image.height - crop)
            array = np.asarray(image.crop((x, y, x + crop, y + crop)), np.float32)
            out[i] = array[:, ::-1] if rng.random() < 0.5 else array
        return torch.from_numpy(out / 255.0).permute(0, 3, 1, 2)
