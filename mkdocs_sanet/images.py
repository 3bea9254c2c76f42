"""Pictures as the browser demo takes them (static/sanet.js): each image turned upright by its
EXIF orientation, laid on white where it is transparent, scaled so that its longest side is at
most max_size, then reflect-padded at the bottom and right to multiples of 16.

`check_image` is the build's check of the pictures a page names (decodable, sizes in limits).
The stylization itself (pipeline.py) and the compression's calibration (compression.py) both
read pictures through this module.
"""

from __future__ import annotations

import functools
import math
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from . import architecture as arch


# Transparent pixels are laid on this colour, here and in the browser (what a reader sees of a
# transparent picture on a light page).
BACKGROUND = (255, 255, 255)
# The largest picture a page may name: a 64-megapixel camera's photo. Pillow's own guard
# against decompression bombs starts at 89 megapixels.
MAX_PIXELS = 64_000_000
# Formats that both Pillow and browsers decode.
BROWSER_FORMATS = {"JPEG": "JPEG", "PNG": "PNG", "GIF": "GIF", "WEBP": "WebP", "BMP": "BMP", "AVIF": "AVIF"}


class ImageSizeError(ValueError):
    pass


class ImageCheckError(ValueError):
    """A picture a page names that the browser or the pipeline could not use."""


def fit_size(height: int, width: int, max_size: int) -> tuple[int, int]:
    """The size an image is scaled to; max_size 0 keeps it."""
    if max_size and max(height, width) > max_size:
        scale = max_size / max(height, width)
        # Half rounds up, as Math.round in the browser (Python's round() would round to even).
        height, width = max(1, math.floor(height * scale + 0.5)), max(1, math.floor(width * scale + 0.5))
    return height, width


def padded_size(height: int, width: int) -> tuple[int, int]:
    def up(side):
        return max(arch.MIN_SIZE, math.ceil(side / arch.SIZE_MULTIPLE) * arch.SIZE_MULTIPLE)
    return up(height), up(width)


@functools.lru_cache(maxsize=4096)
def _inspect(path: str, size: int, mtime_ns: int) -> tuple[str, int, int] | str:
    """(format, width, height) as shown upright, or why the file is no usable picture.
    Keyed by size and mtime too, so that a serve rebuild checks only changed files."""
    if size == 0:
        return "not an image Pillow can read (the file is empty)"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.verify()
            with Image.open(path) as image:
                fmt, (width, height) = image.format, image.size
                if width * height > MAX_PIXELS:
                    return (f"{width}x{height} is {width * height / 1e6:.0f} megapixels: "
                            f"expected at most {MAX_PIXELS / 1e6:.0f} (scale it down)")
                if fmt not in BROWSER_FORMATS:
                    return f"a {fmt} image, which browsers do not show: expected {', '.join(BROWSER_FORMATS.values())}"
                orientation = image.getexif().get(0x0112, 1)
                image.draft("RGB", (max(1, width // 8), max(1, height // 8)))  # JPEG: decode at 1/8, quickly
                image.load()  # verify() does not decode: this catches truncated and corrupt data
    except Image.DecompressionBombError as error:
        return f"too large: {error}"
    except Exception as error:  # Pillow raises many kinds on damaged files: each one is "unreadable"
        return f"not an image Pillow can read ({error or type(error).__name__})"
    if orientation in (5, 6, 7, 8):  # turned a quarter: the sides swap
        width, height = height, width
    return fmt, width, height


def check_image(path: Path, model_size: int | None = None) -> tuple[int, int]:
    """The (width, height) of a picture for a page, or ImageCheckError saying what is wrong.
    model_size: the longest side the model gets it at (0: its own size; None: not a model input),
    at which each side must still be at least MIN_SIZE."""
    if not path.is_file():
        raise ImageCheckError("not a regular file: expected a JPEG, PNG, GIF or WebP picture")
    stat = path.stat()
    info = _inspect(os.fspath(path), stat.st_size, stat.st_mtime_ns)
    if isinstance(info, str):
        raise ImageCheckError(info)
    _, width, height = info
    if model_size is not None:
        fit_h, fit_w = fit_size(height, width, model_size)
        if min(fit_h, fit_w) < arch.MIN_SIZE:
            scaled = f" (scaled to {fit_w}x{fit_h} for the longest side of {model_size} px)" \
                if (fit_h, fit_w) != (height, width) else ""
            raise ImageCheckError(f"{width}x{height}{scaled}: each side must be at least {arch.MIN_SIZE} px")
    return width, height


def upright_rgb(image: Image.Image) -> Image.Image:
    """The image turned by its EXIF orientation, transparent pixels laid on BACKGROUND, as RGB."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, BACKGROUND + (255,)), rgba)
    return image.convert("RGB")


def load_image(path: Path | str, max_size: int) -> np.ndarray:
    """An image file as float32 RGB in [0, 1], shape (H, W, 3), upright, on white where it is
    transparent, scaled within max_size."""
    with Image.open(path) as image:
        image = upright_rgb(image)
        height, width = fit_size(image.height, image.width, max_size)
        if (height, width) != (image.height, image.width):
            image = image.resize((width, height), Image.Resampling.LANCZOS)
        return np.asarray(image, np.float32) / 255.0


def pad(image: np.ndarray, name: str = "image") -> np.ndarray:
    height, width = image.shape[:2]
    if min(height, width) < arch.MIN_SIZE:
        raise ImageSizeError(f"{name} is {width}x{height}: each side must be at least {arch.MIN_SIZE} px")
    target_h, target_w = padded_size(height, width)
    return np.pad(image, ((0, target_h - height), (0, target_w - width), (0, 0)), mode="reflect")


def check_multiple(image: np.ndarray, name: str) -> None:
    height, width = image.shape[:2]
    if height % arch.SIZE_MULTIPLE or width % arch.SIZE_MULTIPLE or min(height, width) < arch.MIN_SIZE:
        raise ImageSizeError(
            f"{name} is {width}x{height}: at its own size each side must be a multiple of "
            f"{arch.SIZE_MULTIPLE} and at least {arch.MIN_SIZE} px (or pass a max size to resize it)")


def shrink_style(image: np.ndarray, max_size: int) -> np.ndarray:
    """The style image within max_size (a compressed model's style_max_size), bilinear with
    half-pixel centres as sanet.js does it; unchanged when it is small enough."""
    import tensorflow as tf

    height, width = image.shape[:2]
    size = fit_size(height, width, max_size)
    if size == (height, width):
        return image
    return tf.image.resize(image[None], size, method="bilinear").numpy()[0]


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)


def upright_size(path: Path | str) -> tuple[int, int]:
    """(width, height) of an image file as shown, after its EXIF orientation."""
    with Image.open(path) as image:
        width, height = image.size
        if image.getexif().get(0x0112, 1) in (5, 6, 7, 8):
            width, height = height, width
    return width, height
