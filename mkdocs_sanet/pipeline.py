"""Stylization in Python, computed as the browser demo computes it (static/sanet.js): the
pictures sized and padded as images.py says, the three graphs' steps (strength, two styles by
mix or mask, passes), the painting's colours and keep_colors; the output is cropped back to the
content's size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

# The pictures' side (sizes, padding, the build's check), re-exported: pipeline.load_image and the
# others are what the CLI, results and tests call.
from .images import (BACKGROUND, BROWSER_FORMATS, MAX_PIXELS, ImageCheckError, ImageSizeError,  # noqa: F401
                     check_image, check_multiple, fit_size, load_image, pad, padded_size, shrink_style,
                     to_uint8, upright_rgb, upright_size)


# BT.601 luma: the luminance that keep_colors takes from the result (the same in static/sanet.js).
LUMA = (0.299, 0.587, 0.114)


def keep_photo_colors(result: np.ndarray, photo: np.ndarray) -> np.ndarray:
    """The result's luminance with the photo's chroma (YCbCr): photo + (Y(result) - Y(photo))."""
    luma = np.asarray(LUMA, np.float32)
    return np.clip(photo + (result @ luma - photo @ luma)[..., None], 0.0, 1.0).astype(np.float32)


# The painting's colours (a model's color_match): the floor under a colour channel's variance, so
# that a flat picture is not stretched into noise (the same in static/sanet.js).
COLOR_VARIANCE_FLOOR = 1e-4


def color_stats(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean and standard deviation of each RGB channel of an (H, W, 3) image (population)."""
    pixels = image.reshape(-1, 3).astype(np.float32)
    return pixels.mean(axis=0), pixels.std(axis=0)


def match_colors(result: np.ndarray, target: tuple[np.ndarray, np.ndarray], share: float) -> np.ndarray:
    """The result's colours moved `share` of the way to the target's (mean, std) per RGB channel:
    (1 - share) * result + share * ((result - mean) / std * target_std + target_mean), clipped.
    The target's arrays are (3,), or (H, W, 3) for a target that varies over the picture (a mask)."""
    if share <= 0:
        return result
    mean, std = color_stats(result)
    std = np.sqrt(np.maximum(std**2, COLOR_VARIANCE_FLOOR))
    matched = (result - mean) / std * target[1] + target[0]
    return np.clip((1.0 - share) * result + share * matched, 0.0, 1.0).astype(np.float32)


def load_mask(path: Path | str, size: tuple[int, int], max_size: int) -> np.ndarray:
    """A mask file (white: the second style; transparent counts as black) as float32 (H, W) in
    [0, 1]: upright, checked to have the content's upright (width, height), scaled as the content."""
    with Image.open(path) as image:
        image = ImageOps.exif_transpose(image)
        if image.size != size:
            raise ImageSizeError(f"mask {path} is {image.width}x{image.height}: expected the content's size, "
                                 f"{size[0]}x{size[1]}")
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba).convert("RGB")
        height, width = fit_size(image.height, image.width, max_size)
        if (height, width) != (image.height, image.width):
            image = image.resize((width, height), Image.Resampling.LANCZOS)
        return np.asarray(image, np.float32).mean(axis=2) / 255.0


def pool_mask(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """A padded (H, W) mask averaged over blocks down to (height, width): a transform output's
    resolution (1/8 for its features, 1/4 and 1/2 for the shallow skips)."""
    factor = mask.shape[0] // height
    return mask.reshape(height, factor, width, factor).mean(axis=(1, 3))


class Stylizer:
    """The TF model of a weights source, run the way the browser runs it (static/sanet.js)."""

    def __init__(self, source, compression: str | None = None, compressed_cache: Path | None = None):
        from . import compression as compression_mod
        from .model import SANet

        self.source = source
        setting = compression_mod.parse(compression)
        weights = compression_mod.compressed_weights(source, setting, lambda line: None, compressed_cache)
        self.style_max_size = setting.style_max_size
        self.color_match = source.color_match
        self.model = SANet(weights, source.encoder)

    def __call__(self, content: np.ndarray, style: np.ndarray, strength: float = 1.0,
                 pad_images: bool = True, *, style2: np.ndarray | None = None, mix: float = 0.5,
                 mask: np.ndarray | None = None, passes: int = 1, keep_colors: bool = False) -> np.ndarray:
        """content, style, style2: float32 (H, W, 3) in [0, 1]. Returns float32 (H, W, 3).

        Each of `passes` passes stylizes the previous result. With style2, the transformed
        features are blended, (1 - w) * T(c, style) + w * T(c, style2), where w is `mix`, or the
        mask (H, W) in [0, 1] (white: style2) padded as the content and averaged down to each
        output's resolution. Then the strength trade-off with T(c, c). Both steps run over every
        output of the transform alike (its features, and a model's shallow skips); the decoded
        picture's colours move the model's color_match (times strength) of the way to the
        painting's (the paintings' blended by mix, or pixel by pixel by the mask). At the end
        keep_colors puts the photo's chroma back."""
        import tensorflow as tf

        height, width = content.shape[:2]
        images = {"content": content, "style": style}
        if style2 is not None:
            images["style2"] = style2
        for name, image in images.items():
            if not pad_images:
                check_multiple(image, name)
            pad(image, name)  # checks the minimum size
        if mask is not None and (style2 is None or mask.shape != (height, width)):
            raise ImageSizeError(f"the mask is {mask.shape[1]}x{mask.shape[0]}: expected a second style and "
                                 f"the content's size, {width}x{height}")
        if not 1 <= passes <= 3:
            raise ValueError(f"passes is {passes}: expected 1, 2 or 3")

        def encode(image):
            return self.model.encode(tf.constant(pad(image)[None]))

        # A compressed model encodes the paintings smaller (the manifest's style_max_size, as sanet.js).
        shrink = (lambda image: shrink_style(image, self.style_max_size)) if self.style_max_size else (lambda image: image)
        shrunk = [shrink(style)] + ([shrink(style2)] if style2 is not None else [])
        styles = [encode(image) for image in shrunk]
        colors = [color_stats(image) for image in shrunk]
        if len(colors) == 2:  # each pixel: the paintings' colours blended as their features are
            w = mask[..., None] if mask is not None else mix
            colors = [tuple((1.0 - w) * a + w * b for a, b in zip(*colors))]
        colors = colors[0]
        result = content
        def weight(x):  # mix, or the mask at this output's resolution
            if mask is None:
                return mix
            return tf.constant(pool_mask(pad(mask[..., None])[..., 0], *x.shape[1:3])[None, ..., None])

        for _ in range(passes):
            c = encode(result)
            t = [self.model.transformed(c, s) for s in styles]
            outputs = t[0]
            if len(t) == 2:
                outputs = {k: x * (1.0 - weight(x)) + t[1][k] * weight(x) for k, x in outputs.items()}
            if strength < 1.0:
                identity = self.model.transformed(c, c)
                outputs = {k: x * strength + identity[k] * (1.0 - strength) for k, x in outputs.items()}
            result = self.model.decoded(outputs).numpy()[0, :height, :width]
            if self.color_match > 0:
                result = match_colors(result, colors, self.color_match * strength)
        return keep_photo_colors(result, content) if keep_colors else result
