"""Stylization in Python, sized exactly as the browser demo sizes it (static/sanet.js):
each image is turned upright by its EXIF orientation, laid on white where it is transparent,
scaled so that its longest side is at most max_size, then reflect-padded at the bottom and
right to multiples of 16; the output is cropped back to the content's size.

`check_image` is the build's check of the pictures a page names (decodable, sizes in limits).
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


def upright_size(path: Path | str) -> tuple[int, int]:
    """(width, height) of an image file as shown, after its EXIF orientation."""
    with Image.open(path) as image:
        width, height = image.size
        if image.getexif().get(0x0112, 1) in (5, 6, 7, 8):
            width, height = height, width
    return width, height


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
