"""Content and style losses on held-out pairs: the trained model, the untrained one, and the
content image passed through unchanged (the baseline a stylization must beat on style).

    python -m training.evaluate --content PHOTOS... --style PAINTINGS... [--weights model_assets/sanet-vgg16]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from mkdocs_sanet import weights as plugin_weights
from training.data import load_resized
from training.net import content_loss, style_loss
from training.train import build_model, encoder_weights


def center_crop(path: Path, size: int) -> torch.Tensor:
    image = load_resized(path, size)
    left, top = (image.width - size) // 2, (image.height - size) // 2
    array = np.asarray(image.crop((left, top, left + size, top + size)), np.float32) / 255.0
    return torch.from_numpy(array.transpose(2, 0, 1).copy())[None]


@torch.no_grad()
def evaluate(contents: list[Path], styles: list[Path], weights_dir: Path | None, size: int = 256,
             encoder: Path | None = None) -> dict[str, dict[str, float]]:
    untrained = build_model(encoder)
    models = {"untrained": untrained}
    if weights_dir is not None:
        trained = build_model(encoder)
        loaded = plugin_weights.load(plugin_weights.resolve(str(weights_dir)))
        loaded.update(encoder_weights(encoder))
        trained.load_plugin_weights(loaded)
        models["trained"] = trained
    results = {name: {"content": 0.0, "style": 0.0} for name in [*models, "content unchanged"]}
    pairs = [(c, s) for c in contents for s in styles]
    for content_path, style_path in pairs:
        content, style = center_crop(content_path, size), center_crop(style_path, size)
        c_feats, s_feats = untrained.encode(content), untrained.encode(style)
        outputs = {name: model.stylize(content, style) for name, model in models.items()}
        outputs["content unchanged"] = content
        for name, output in outputs.items():
            g_feats = untrained.encode(output)
            results[name]["content"] += float(content_loss(g_feats, c_feats)) / len(pairs)
            results[name]["style"] += float(style_loss(g_feats, s_feats)) / len(pairs)
    return results


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m training.evaluate")
    p.add_argument("--content", type=Path, nargs="+", required=True, help="held-out photos")
    p.add_argument("--style", type=Path, nargs="+", required=True, help="held-out paintings")
    p.add_argument("--weights", type=Path, default=None, help="a folder with the trained weights.npz")
    p.add_argument("--encoder", type=Path, default=None)
    p.add_argument("--size", type=int, default=256)
    args = p.parse_args()
    results = evaluate(args.content, args.style, args.weights, args.size, args.encoder)
    print(f"{len(args.content)} photos x {len(args.style)} paintings, {args.size}x{args.size} center crops")
    print(f"{'':20} {'content loss':>14} {'style loss':>14}")
    for name, row in results.items():
        print(f"{name:20} {row['content']:14.4f} {row['style']:14.4f}")


if __name__ == "__main__":
    main()
