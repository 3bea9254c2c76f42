"""The command line: what the plugin does, outside MkDocs.

    mkdocs-sanet stylize --model FOLDER|default --content C --style S [--style S2] --output O.png [--max-size N]
        [--strength A] [--passes N] [--style-weights 0.7,0.3 | --mask M.png] [--keep-colors]
    mkdocs-sanet build-model --model FOLDER|default --output DIR [--quantization float16] [--cache-dir D]
    mkdocs-sanet info --model FOLDER|default [--compression SETTING]
    mkdocs-sanet export DIR [--model default] [--quantization float16] [--cache-dir D] [--runtime-dir R]

--compression (stylize, build-model, info, export): a preset (none, light, fast) and/or key=value
items, see mkdocs_sanet/compression.py; `none` is the model as trained.

Exit codes: 0 on success; 2 on any failure (bad input, an output folder that holds the user's
files, a full disk), with one line on stderr and no traceback.

The folders that build-model and export write are written by outputs.py: never a file of the
user's deleted.
"""

from __future__ import annotations

import argparse
import math
import os
import stat
import sys
import tempfile
from pathlib import Path

import numpy as np

from . import architecture, bundled, compression, outputs, page_assets
from .builder import BuildError, ModelBuild
from .cache import Cache, CacheError
from .checkpoints import CheckpointError
from .export import QUANTIZATIONS
from .weights import WeightsError, resolve

COMPRESSION_HELP = f"a preset ({', '.join(compression.PRESETS)}) and/or key=value items; default {compression.DEFAULT}"


class InputError(Exception):
    pass


def style_mix(weights: str | None, styles: int) -> float:
    """The second style's share from --style-weights "0.7,0.3" (0.5 when not given)."""
    if weights is None:
        return 0.5
    if styles != 2:
        raise InputError("--style-weights needs two --style paintings")
    try:
        first, second = (float(part) for part in weights.split(","))
    except ValueError:
        raise InputError(f"--style-weights is {weights!r}: expected two numbers, such as 0.7,0.3") from None
    # inf, nan, or a sum that overflows (1e308,1e308) gave a black picture with exit 0.
    if not (math.isfinite(first) and math.isfinite(second) and math.isfinite(first + second)) or min(
            first, second) < 0 or not first + second > 0:
        raise InputError(f"--style-weights is {weights!r}: expected two finite numbers of at least 0 "
                         "with a positive (finite) sum")
    return second / (first + second)


def stylize(args) -> None:
    from PIL import Image, UnidentifiedImageError

    from . import pipeline

    if args.max_size < 0:
        raise InputError(f"--max-size is {args.max_size}: expected 0 (keep the sizes) or a positive size")
    if not 0 <= args.strength <= 1:
        raise InputError(f"--strength is {args.strength}: expected a number from 0 to 1")
    if not 1 <= args.passes <= 3:
        raise InputError(f"--passes is {args.passes}: expected 1, 2 or 3")
    if len(args.style) > 2:
        raise InputError(f"--style is given {len(args.style)} times: expected one or two paintings")
    mix = style_mix(args.style_weights, len(args.style))
    if args.mask is not None and len(args.style) != 2:
        raise InputError("--mask needs two --style paintings (white: the second)")
    if args.mask is not None and args.style_weights is not None:
        raise InputError("--mask and --style-weights: give one (the mask says where each style goes)")
    picture_format = check_picture_output(args.output)
    paths = {"content": args.content, "style": args.style[0]}
    if len(args.style) == 2:
        paths["style2"] = args.style[1]
    for option, path in [*(("--content" if name == "content" else "--style", p) for name, p in paths.items()),
                         *([("--mask", args.mask)] if args.mask is not None else [])]:
        check_picture_input(option, path)
    images = {}
    for name, path in paths.items():
        try:
            images[name] = pipeline.load_image(path, args.max_size)
        except (OSError, UnidentifiedImageError) as error:
            raise InputError(f"{path}: not a readable image ({error})") from None
    try:
        mask = None
        if args.mask is not None:
            try:
                mask = pipeline.load_mask(args.mask, pipeline.upright_size(args.content), args.max_size)
            except (OSError, UnidentifiedImageError) as error:
                raise InputError(f"{args.mask}: not a readable image ({error})") from None
        if args.max_size == 0:
            for name, image in images.items():
                pipeline.check_multiple(image, f"{name} {paths[name]}")
        bundled.require_build_extra("stylizing with the Python pipeline")
        out = pipeline.Stylizer(resolve(args.model), args.compression, args.cache_dir / "compressed")(
            images["content"], images["style"], args.strength, pad_images=args.max_size != 0,
            style2=images.get("style2"), mix=mix, mask=mask, passes=args.passes, keep_colors=args.keep_colors)
    except pipeline.ImageSizeError as error:
        raise InputError(str(error)) from None
    write_picture(Image.fromarray(pipeline.to_uint8(out)), args.output, picture_format)
    print(f"wrote {args.output} ({out.shape[1]}x{out.shape[0]})")


PICTURE_EXAMPLES = ".png, .jpg, .webp"


def check_picture_input(option: str, path: Path) -> None:
    """A picture given: a regular file (through links), opened by nothing before this says so:
    a FIFO would block the command for ever, a device would be read without end."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # missing or unreadable: the reading says so ("not a readable image")
    if not stat.S_ISREG(mode):
        what = "a folder" if stat.S_ISDIR(mode) else "not a regular file (a FIFO, a socket or a device)"
        raise InputError(f"{option} {outputs.printable(path)}: {what}: expected a picture file")


def check_picture_output(output: Path) -> str:
    """stylize's --output, before anything is computed: a picture file name that Pillow can
    write, in a folder (or where one can be made). Returns Pillow's format for it."""
    from PIL import Image

    if output.is_dir():
        raise InputError(f"--output {output}: a folder: expected a picture file, such as {output / 'out.png'}")
    picture_format = Image.registered_extensions().get(output.suffix.lower())
    if picture_format is None or picture_format not in Image.SAVE:
        what = f"{output.suffix!r} is not a picture format that Pillow writes" if output.suffix else "no extension"
        raise InputError(f"--output {output}: {what}: expected a name ending in {PICTURE_EXAMPLES} "
                         "or another of Pillow's formats")
    real = Path(os.path.realpath(output))
    for parent in real.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(f"--output {output}: {parent} is not a folder")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise InputError(f"--output {output}: {parent} cannot be written: expected a writable folder")
            break
    return picture_format


def write_picture(image, output: Path, picture_format: str) -> None:
    """Written beside the file, then renamed onto it (through a link to the file it names):
    never a half-written picture, and a failure names the file."""
    real = Path(os.path.realpath(output))
    try:
        real.parent.mkdir(parents=True, exist_ok=True)
        handle, partial = tempfile.mkstemp(prefix=f".{real.name}.", suffix=".partial", dir=real.parent)
    except OSError as error:
        raise InputError(f"--output {output}: cannot write in {real.parent} ({outputs.reason(error)})") from None
    try:
        with os.fdopen(handle, "wb") as file:
            image.save(file, format=picture_format)
        os.chmod(partial, 0o666 & ~outputs.umask())
        os.replace(partial, real)
    except (OSError, ValueError, KeyError) as error:
        os.unlink(partial)  # ours: made by mkstemp above
        raise InputError(f"--output {output}: writing the picture failed ({error}); nothing was written") from None


def model_entry(model: str, quantization: str, cache_dir: Path, setting: str) -> tuple[Path, str]:
    """The TF.js model's folder in the cache (checked, and built there first if missing or
    damaged: see builder.ModelBuild), and its key."""
    build = ModelBuild(resolve(model), quantization, setting, Cache(cache_dir),
                       warn=lambda message: print(f"warning: {message}", file=sys.stderr))
    try:
        return build.entry(), build.key
    except CacheError as error:
        raise InputError(f"--cache-dir: {error}") from None


def model_output(target: Path) -> outputs.Output:
    return outputs.Output(target, "build-model", keep=None,
                          expected="a new or empty folder, or one that build-model wrote")


def build_model(args) -> None:
    """--output: a new or empty folder, or one that build-model wrote, with none of the user's
    files in it (see outputs.py)."""
    output = model_output(args.output)
    output.check()
    entry, key = model_entry(args.model, args.quantization, args.cache_dir, args.compression)
    output.write({path.relative_to(entry).as_posix(): path for path in entry.rglob("*") if path.is_file()})
    print(f"wrote {outputs.printable(args.output)} (cache entry {key[:12]})")


def export_output(target: Path) -> outputs.Output:
    """An export's folder. One that an older version wrote (no manifest) is refused like any
    other folder, with a message that says so."""
    shown = outputs.printable(target)
    foreign = (f"{shown}: the folder is not empty and holds no earlier export: "
               "expected a new or empty folder (export replaces only an earlier export)")
    try:
        older = (target / "sanet-demo.js").is_file() and not os.path.lexists(target / outputs.MANIFEST)
    except OSError:  # a name too long, say: Output.check says what is wrong
        older = False
    if older:
        foreign = (f"{shown}: an export by an older mkdocs-sanet, without {outputs.MANIFEST} (the list of the "
                   "files that export wrote), so the files of yours in it cannot be told apart: "
                   "expected a new or empty folder (move this one away, then copy your files into the new export)")
    return outputs.Output(target, "export", keep=page_assets.export_keeps, foreign=foreign,
                          expected="a new or empty folder, or an earlier export")


def export_folder(args) -> None:
    """DIR: the demo as <sanet-demo>, with everything it loads, for a page of any site. An
    earlier export is replaced, keeping the author's own files and their edits of its pages and
    presets (see outputs.py)."""
    target = args.dir
    output = export_output(target)
    output.check()
    runtime = bundled.runtime_dir(args.runtime_dir)
    try:
        page_assets.runtime_sources(runtime)
    except page_assets.RuntimeMissing as error:
        raise InputError(f"--runtime-dir: {error}") from None
    entry, key = model_entry(args.model, args.quantization, args.cache_dir, args.compression)
    kept = output.write(page_assets.export_files(runtime, entry))
    size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    print(f"wrote {outputs.printable(target)} ({size / 1e6:.1f} MB, model cache entry {key[:12]}); a page uses it with\n"
          f'  <script src=".../{outputs.printable(target.name)}/sanet-demo.js" defer></script>\n  <sanet-demo></sanet-demo>')
    if kept:
        print(f"kept {len(kept)} file{'s' if len(kept) > 1 else ''} of yours (added, or changed since the "
              f"last export; the export's own version is not written over a changed one): {outputs.names(kept)}")


def info(args) -> None:
    source = resolve(args.model)
    encoder = architecture.ENCODERS[source.encoder]
    setting = compression.parse(args.compression)
    compression.require_widths(source, setting)  # the trained default: fast's widths only
    report = compression.report(setting, source.encoder, skips=architecture.model_skips(source.widths()))
    widths = report["channels"]
    style = min(512, setting.style_max_size or 512)
    counts = architecture.parameter_counts(source.encoder, widths)
    flops = architecture.flops(source.encoder, 512, 512, widths, (style, style))
    per = architecture.QUANTIZATION_BYTES[args.quantization]
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
    for skip in architecture.model_skips(widths):
        print(f"shallow skip {skip.name}: relu{skip.tap[4:]} given the painting's mean and std, 1x1 conv to "
              f"{widths[f'transform/{skip.name}']} ch, added after the decoder's upsampling {skip.upsample}")
    if source.color_match:
        print(f"colours: each picture's RGB mean and standard deviation moved {source.color_match:g} of the way "
              "to the painting's (times the strength)")
    for line in compression.describe(report):
        print(line)
    print(f"{'part':10} {'parameters':>12} {'bytes':>16} {'GFLOPs 512x512':>15}")
    for part in architecture.PARTS:
        print(f"{part:10} {counts[part]:12,} {stored[part]:16,} {flops[part] / 1e9:15.1f}")
    print(f"{'total':10} {sum(counts.values()):12,} {sum(stored.values()):16,} "
          f"{sum(flops.values()) / 1e9:15.1f}")
    print(f"Bytes: {args.quantization}, uint8 where the compression says. FLOPs count a multiply-add as 2, "
          f"for a 512x512 content and a {style}x{style} style image.")


class Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line, as every other failure of the command (exit 2);
    the subcommands' parsers are of this class too."""

    def error(self, message: str):
        self.exit(2, f"mkdocs-sanet: error: {self.prog}: {message} (see: {self.prog} --help)\n")


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="mkdocs-sanet", description="SANet style transfer, outside MkDocs")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("stylize", help="stylize a photo with the Python TensorFlow pipeline")
    s.add_argument("--model", default="default", help="'default' or a model folder")
    s.add_argument("--content", type=Path, required=True)
    s.add_argument("--style", type=Path, required=True, action="append",
                   help="the painting; given twice, two styles blended (see --style-weights, --mask)")
    s.add_argument("--output", type=Path, required=True)
    s.add_argument("--max-size", type=int, default=512, help="longest side; 0 keeps both images at their sizes")
    s.add_argument("--strength", type=float, default=1.0)
    s.add_argument("--passes", type=int, default=1, help="1 to 3: each pass stylizes the previous result")
    s.add_argument("--style-weights", help="the two styles' shares, such as 0.7,0.3 (default 0.5,0.5)")
    s.add_argument("--mask", type=Path, help="a picture of the content's size: white takes the second style")
    s.add_argument("--keep-colors", action="store_true", help="keep the photo's colours (the result's luminance)")
    s.add_argument("--compression", default=compression.DEFAULT, help=COMPRESSION_HELP)
    s.add_argument("--cache-dir", type=Path, default=Path(".cache/plugin/sanet"),
                   help="where the compressed weights are kept between runs (the plugin's cache)")
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
    e = sub.add_parser("export", help="write the demo as <sanet-demo>, with its model and runtime, for any site")
    e.add_argument("dir", type=Path, metavar="DIR", help="a new or empty folder, or an earlier export")
    e.add_argument("--model", default="default")
    e.add_argument("--quantization", default="float16", choices=QUANTIZATIONS)
    e.add_argument("--cache-dir", type=Path, default=Path(".cache/plugin/sanet"))
    e.add_argument("--compression", default=compression.DEFAULT, help=COMPRESSION_HELP)
    e.add_argument("--runtime-dir", type=Path, default=None,
                   help="an npm install of @tensorflow/tfjs and its backends (default: the package's own copy)")
    e.set_defaults(run=export_folder)
    return p


def main(argv=None) -> int:
    try:
        args = parser().parse_args(argv)
    except SystemExit as done:  # --help, or a usage error already printed on one line
        return done.code if isinstance(done.code, int) else 2
    try:
        args.run(args)
    except BuildError as error:  # the model's build: its child's last lines follow
        print(f"mkdocs-sanet: error: {error}", file=sys.stderr)
        return 2
    except (InputError, outputs.OutputError, WeightsError, CheckpointError, CacheError,
            bundled.BuildExtraMissing, compression.CompressionError) as error:
        # One line: a newline in a name given is printed escaped (it could forge a line).
        print(f"mkdocs-sanet: error: {outputs.printable(error)}", file=sys.stderr)
        return 2
    except OSError as error:  # an odd target or a full disk that no step above reported: the path, the cause
        print(f"mkdocs-sanet: error: {outputs.printable(error)}", file=sys.stderr)
        return 2
    except Exception as error:  # a bug: still one line (say it when reporting it)
        print(f"mkdocs-sanet: error: unexpected {type(error).__name__}: {outputs.printable(error)} "
              "(please report it)", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
