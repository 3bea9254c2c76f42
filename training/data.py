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


def split_held_out(files: list[Path], count: int, seed: int = 0) -> tuple[list[Path], list[Path]]:
    """(training, held out): the same `count` files are held out on every run."""
    shuffled = sorted(files)
    random.Random(seed).shuffle(shuffled)
    return shuffled[count:], shuffled[:count]


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


class Crops(torch.utils.data.Dataset):
    """Random crops, endlessly: each sample draws a random file (the index is ignored), a random
    square of it and a random horizontal flip. DataLoader workers get their own `random` seeds."""

    def __init__(self, files: list[Path], resize: int = 512, crop: int = 256, length: int = 10**9):
        self.images = [load_for_crops(p, resize, crop) for p in files]  # a few hundred files fit in memory
        self.crop = crop
        self.length = length

    def __len__(self):
        return self.length

    def __getitem__(self, index):
        image = self.images[random.randrange(len(self.images))]
        x = random.randint(0, image.width - self.crop)
        y = random.randint(0, image.height - self.crop)
        array = np.asarray(image.crop((x, y, x + self.crop, y + self.crop)), np.float32) / 255.0
        if random.random() < 0.5:
            array = array[:, ::-1]
        return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))
