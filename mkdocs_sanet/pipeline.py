"""Stylization in Python, sized exactly as the browser demo sizes it (static/sanet.js):
each image is scaled so that its longest side is at most max_size, then reflect-padded
at the bottom and right to multiples of 16; the output is cropped back to the content's size.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from . import architecture as arch


class ImageSizeError(ValueError):
    pass


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


def load_image(path: Path | str, max_size: int) -> np.ndarray:
    """An image file as float32 RGB in [0, 1], shape (H, W, 3), scaled within max_size."""
    with Image.open(path) as image:
        image = image.convert("RGB")
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


class Stylizer:
    """The TF model of a weights source, run the way the browser runs it."""

    def __init__(self, source, compression: str | None = None):
        from . import compression as compression_mod, weights as weights_mod
        from .model import SANet

        self.source = source
        setting = compression_mod.parse(compression)
        weights = compression_mod.apply(weights_mod.load(source), source.encoder, setting, log=lambda line: None)
        self.style_max_size = setting.style_max_size
        self.model = SANet(weights, source.encoder)

    def __call__(self, content: np.ndarray, style: np.ndarray, strength: float = 1.0,
                 pad_images: bool = True) -> np.ndarray:
        """content and style: float32 (H, W, 3) in [0, 1]. Returns float32 (H, W, 3)."""
        import tensorflow as tf

        height, width = content.shape[:2]
        if self.style_max_size:
            style = shrink_style(style, self.style_max_size)
        if pad_images:
            content_in, style_in = pad(content, "content"), pad(style, "style")
        else:
            check_multiple(content, "content")
            check_multiple(style, "style")
            content_in, style_in = content, style
        out = self.model.stylize(tf.constant(content_in[None]), tf.constant(style_in[None]), strength)
        return out.numpy()[0, :height, :width]
