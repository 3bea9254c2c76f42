"""The command line: what the plugin does, outside MkDocs.

    mkdocs-sanet stylize --model FOLDER|default --content C --style S --output O.png [--max-size N] [--strength A]
    mkdocs-sanet build-model --model FOLDER|default --output DIR [--quantization float16] [--cache-dir D]
    mkdocs-sanet info --model FOLDER|default [--compression SETTING]

--compression (stylize, build-model, info): a preset (none, light, fast) and/or key=value items,
see mkdocs_sanet/compression.py; `none` is the model as trained.

Exit codes: 0 on success, 2 on bad input, with one line on stderr.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np

from . import architecture, compression, page_assets
from .cache import Cache, model_key
from .checkpoints import CheckpointError
from .export import QUANTIZATIONS, ExportError
from .weights import WeightsError, resolve

COMPRESSION_HELP = f"a preset ({', '.join(compression.PRESETS)}) and/or key=value items; default {compression.DEFAULT}"
BYTES_PER_PARAMETER = {"float16": 2, "uint16": 2, "uint8": 1, "none": 4}


class InputError(Exception):
    pass


def stylize(args) -> None:
    from PIL import Image, UnidentifiedImageError

    from . import pipeline

    if args.max_size < 0:
        raise InputError(f"--max-size is {args.max_size}: expected 0 (keep the sizes) or a positive size")
    if not 0 <= args.strength <= 1:
        raise InputError(f"--strength is {args.strength}: expected a number from 0 to 1")
    images = {}
    for name in ("content", "style"):
        path = getattr(args, name)
        try:
            images[name] = pipeline.load_image(path, args.max_size)
        except (OSError, UnidentifiedImageError) as error:
            raise InputError(f"{path}: not a readable image ({error})") from None
    try:
        if args.max_size == 0:
            for name, image in images.items():
                pipeline.check_multiple(image, f"{name} {getattr(args, name)}")
        out = pipeline.Stylizer(resolve(args.model), args.compression)(
            images["content"], images["style"], args.strength, pad_images=args.max_size != 0)
    except pipeline.ImageSizeError as error:
        raise InputError(str(error)) from None
    args.output.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pipeline.to_uint8(out)).save(args.output)
    print(f"wrote {args.output} ({out.shape[1]}x{out.shape[0]})")


def build_model(args) -> None:
    from .export import export

    source = resolve(args.model)
    cache = Cache(args.cache_dir)
    compression.channels(compression.parse(args.compression), source.encoder)  # a bad setting fails here
    key = model_key(source, args.quantization, args.compression)
    entry = cache.get(key)
    if entry is None:
        entry = cache.put(key, lambda folder: export(source, folder, args.quantization,
                                                     log=lambda m: print(m, file=sys.stderr),
                                                     compression=args.compression))
    if args.output.exists():
        shutil.rmtree(args.output)
    page_assets.copy_tree(entry, args.output)
    print(f"wrote {args.output} (cache entry {key[:12]})")


def info(args) -> None:
    source = resolve(args.model)
    encoder = architecture.ENCODERS[source.encoder]
    setting = compression.parse(args.compression)
    report = compression.report(setting, source.encoder)
    widths = report["channels"]
    style = min(512, setting.style_max_size or 512)
    counts = architecture.parameter_counts(source.encoder, widths)
    flops = architecture.flops(source.encoder, 512, 512, widths, (style, style))
    per = BYTES_PER_PARAMETER[args.quantization]
    uint8 = set(report["uint8"])
    stored = dict.fromkeys(architecture.PARTS, 0)
    for name, shape in architecture.weight_shapes(source.encoder, widths).items():
        size = int(np.prod(shape))
        stored[name.split("/")[0]] += size * (1 if name.rsplit("/", 1)[0] in uint8 else per)
    print(f"model: {source.name}" + ("" if source.trained else ": UNTRAINED, random attention and decoder weights"))
    print(f"encoder: {encoder.description}")
    print("transform: SANet attention at relu4_1 and relu5_1 (f, g, h, out_conv: 1x1), "
          "upsample relu5_1's x2, add, 3x3 merge conv")
    print("decoder: 9 reflection-padded 3x3 convs, 3 nearest upsamplings, relu4_1 resolution to RGB")
    for line in compression.describe(report):
        print(line)
    print(f"{'part':10} {'parameters':>12} {'bytes':>16} {'GFLOPs 512x512':>15}")
    for part in architecture.PARTS:
        print(f"{part:10} {counts[part]:12,} {stored[part]:16,} {flops[part] / 1e9:15.1f}")
    print(f"{'total':10} {sum(counts.values()):12,} {sum(stored.values()):16,} "
          f"{sum(flops.values()) / 1e9:15.1f}")
    print(f"Bytes: {args.quantization}, uint8 where the compression says. FLOPs count a multiply-add as 2, "
          f"for a 512x512 content and a {style}x{style} style image.")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mkdocs-sanet", description="SANet style transfer, outside MkDocs")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("stylize", help="stylize a photo with the Python TensorFlow pipeline")
    s.add_argument("--model", default="default", help="'default' or a model folder")
    s.add_argument("--content", type=Path, required=True)
    s.add_argument("--style", type=Path, required=True)
    s.add_argument("--output", type=Path, required=True)
    s.add_argument("--max-size", type=int, default=512, help="longest side; 0 keeps both images at their sizes")
    s.add_argument("--strength", type=float, default=1.0)
    s.add_argument("--compression", default=compression.DEFAULT, help=COMPRESSION_HELP)
    s.set_defaults(run=stylize)
    b = sub.add_parser("build-model", help="write the TF.js model (through the cache)")
    b.add_argument("--model", default="default")
    b.add_argument("--output", type=Path, required=True)
    b.add_argument("--quantization", default="float16", choices=QUANTIZATIONS)
    b.add_argument("--cache-dir", type=Path, default=Path(".cache/plugin/sanet"))
    b.add_argument("--compression", default=compression.DEFAULT, help=COMPRESSION_HELP)
    b.set_defaults(run=build_model)
    i = sub.add_parser("info", help="architecture, parameters, bytes and FLOPs")
    i.add_argument("--model", default="default")
    i.add_argument("--quantization", default="float16", choices=QUANTIZATIONS)
    i.add_argument("--compression", default=compression.DEFAULT, help=COMPRESSION_HELP)
    i.set_defaults(run=info)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        args.run(args)
    except (InputError, WeightsError, CheckpointError, ExportError, compression.CompressionError) as error:
        print(f"mkdocs-sanet: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
