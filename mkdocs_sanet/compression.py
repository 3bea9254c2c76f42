"""Compression without retraining, a stage of the model build between the weights and TF.

A setting is a preset name and/or `key=value` items (the option `compression:`):

    style_max_size=256          the style image is encoded at most this large (longest side)
    encoder=0.4                 fraction of output channels kept in every prunable encoder conv
    merge=0.4, decoder=0.4      the same for the transform's merge conv and the decoder convs
    encoder/conv1_2=24          one conv: a channel count (or a fraction with a ".")
    encoder/conv1_2/rank=24     a 3x3 conv as a 3x3 conv to 24 channels and a 1x1 conv back (Zhang et al. 2015)
    rank=128                    rank of the attention's f.g^T and h.out_conv products
    uint8=encoder+transform     parts (or "<part>/<conv>" names) stored as uint8 (affine, per tensor)

Channel pruning follows He, Zhang & Sun 2017 and ThiNet (Luo et al. 2017): a conv's output
channels are chosen greedily so that the next conv's output changes least, and the next conv
is re-fitted by least squares on the pruned network's inputs against the original outputs, on
calibration images (the built-in presets, so that a build is the same everywhere). The attention's
1x1 products are factorized with the input statistics (Zhang et al. 2015). uint8 weights are
quantized here exactly as the TF.js converter stores them, so the Python pipeline computes
what the browser computes.
"""

from __future__ import annotations

import hashlib
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import architecture as arch
from .weights import MODEL_ASSETS

OPTION = "compression"
# From sensitivity scans (benchmarks/scan_ranks.py: each encoder conv compressed alone; relative
# error of relu4_1 and relu5_1 on held-out pictures): pruning conv1_x or conv3_x to 3/8 of its
# channels costs 10-45 %, factoring it far less; conv2_2 prunes to 32 of 128 channels for 4 % (a
# rank of 32 costs 13 %). The early convs cost the most error per GFLOP saved: conv1_2 at rank 16
# costs 15 %, at 24 4 %; conv2_1 at 32 costs 21 %, at 48 7 %. So `fast` gives them those ranks and
# takes the GFLOPs back from conv3_2, conv3_3 (rank 32), conv4_2 and conv4_3 (rank 64): the same
# relu4_1 error as a quarter of every width, a lower relu5_1 error, 44.5 encoder GFLOPs instead of
# 51.2. The untrained merge conv and decoder are pruned (smaller ones to train). Figures:
# benchmarks/README.md.
def _encoder_ranks(fraction: float, **ranks: int) -> str:
    """`encoder/<conv>/rank` items: that fraction of each conv's width, or the rank given."""
    widths = {"conv1_2": 64, "conv2_1": 128, "conv3_1": 256, "conv3_2": 256, "conv3_3": 256,
              "conv4_1": 512, "conv4_2": 512, "conv4_3": 512, "conv5_1": 512}
    return " ".join(f"encoder/{name}/rank={ranks.get(name, int(width * fraction))}" for name, width in widths.items())


_FAST_RANKS = _encoder_ranks(0.25, conv1_2=24, conv2_1=48, conv3_1=96, conv3_2=32, conv3_3=32, conv4_2=64,
                             conv4_3=64, conv5_1=192)
PRESETS = {
    "none": "",
    "light": f"style_max_size=384 {_encoder_ranks(0.5)} merge=0.75 decoder=0.75 rank=256 uint8=all",
    "fast": f"style_max_size=256 {_FAST_RANKS} encoder/conv2_2=32 merge=0.25 decoder=0.375 rank=128 uint8=all",
}
DEFAULT = "fast"
PRUNE_GROUPS = ("encoder", "merge", "decoder")
# The shipped presets (model_assets/presets, in a source checkout or in the wheel).
CALIBRATION_DIR = MODEL_ASSETS / "presets"
# The presets the calibration reads; content-cat.jpg stays unseen, for measuring.
CALIBRATION_CONTENT = ("content-astronaut.jpg", "content-coffee.jpg")
CALIBRATION_STYLE = ("style-mosaic.jpg", "style-swirls.jpg", "style-composition.jpg")
CALIBRATION_SIZE = 320
CHANNEL_MULTIPLE = 8


class CompressionError(ValueError):
    """A compression setting that cannot apply; the message names the option."""


@dataclass(frozen=True)
class Setting:
    keep: dict[str, float | int] = field(default_factory=dict)  # group or "<part>/<conv>" -> kept
    rank: int | None = None
    style_max_size: int | None = None
    uint8: tuple[str, ...] = ()

    @property
    def is_none(self) -> bool:
        return not (self.keep or self.rank or self.style_max_size or self.uint8)

    def canonical(self) -> str:
        """One spelling per setting: what the cache key hashes."""
        items = [f"{k}={v}" for k, v in sorted(self.keep.items())]
        if self.rank:
            items.append(f"rank={self.rank}")
        if self.style_max_size:
            items.append(f"style_max_size={self.style_max_size}")
        if self.uint8:
            items.append("uint8=" + "+".join(sorted(self.uint8)))
        return " ".join(items) or "none"


def _error(message: str) -> CompressionError:
    return CompressionError(f"{OPTION}: {message}")


def parse(text: str | None) -> Setting:
    """A setting from its text: an optional preset name first, then key=value items."""
    items = [item for item in re.split(r"[\s,]+", (text or "none").strip()) if item]
    if items and "=" not in items[0]:
        name = items.pop(0)
        if name not in PRESETS:
            raise _error(f"unknown preset '{name}' (expected one of {', '.join(PRESETS)}, or key=value items)")
        items = PRESETS[name].split() + items
    keep: dict[str, float | int] = {}
    values: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not value:
            raise _error(f"'{item}': expected key=value")
        if key in ("rank", "style_max_size"):
            if not value.isdigit() or int(value) < (1 if key == "rank" else arch.MIN_SIZE):
                raise _error(f"{item}: expected a whole number of at least {1 if key == 'rank' else arch.MIN_SIZE}")
            values[key] = int(value)
        elif key == "uint8":
            names = tuple(v for v in value.split("+") if v and v != "none")
            for name in names:
                if name not in arch.PARTS and name != "all" and name.split("/")[0] not in arch.PARTS:
                    raise _error(f"{item}: '{name}' is not a part ({', '.join(arch.PARTS)}, all) or a conv")
            values["uint8"] = tuple(sorted(arch.PARTS if "all" in names else set(names)))
        elif key in PRUNE_GROUPS or key.split("/")[0] in arch.PARTS:
            keep[key] = _kept(item, value)
        else:
            raise _error(f"'{item}': unknown key '{key}' (expected style_max_size, encoder, merge, decoder, "
                         "<part>/<conv>, rank or uint8)")
    return Setting(keep, values.get("rank"), values.get("style_max_size"), values.get("uint8", ()))


def _kept(item: str, value: str) -> float | int:
    try:
        kept = float(value) if "." in value else int(value)
    except ValueError:
        raise _error(f"{item}: expected a fraction (0.5) or a channel count (64)") from None
    if kept <= 0 or (isinstance(kept, float) and kept > 1):
        raise _error(f"{item}: a fraction must be above 0 and at most 1, a channel count at least 1")
    return kept


def prunable(encoder: str) -> dict[str, str]:
    """Convs whose output channels may be pruned, by full name, with their group. Not the
    taps relu4_1 and relu5_1 (the attention reads them), a 1x1 colour conv, the RGB output."""
    table = arch.conv_table(encoder)
    result = {}
    for name, conv in table.items():
        part, layer = name.split("/", 1)
        if part == "encoder" and layer not in ("conv4_1", "conv5_1") and conv.size == 3:
            result[name] = "encoder"
        elif name == "transform/merge_conv":
            result[name] = "merge"
        elif part == "decoder" and layer != "conv1_1":
            result[name] = "decoder"
    return result


def channels(setting: Setting, encoder: str, skips: tuple[arch.Skip, ...] = ()) -> arch.Channels:
    """The widths of the compressed model (only the convs that change): no calibration needed.
    skips: the model's shallow skips (architecture.model_skips of its weights' channels), each at
    the compressed decoder's width where it is added."""
    table = arch.conv_table(encoder)
    can_prune = prunable(encoder)
    result: arch.Channels = {}
    for key in setting.keep:
        if key.endswith("/rank"):
            continue
        if key not in PRUNE_GROUPS and key not in can_prune:
            why = "keeps its width (read by the attention, or the picture's colours)" if key in table else \
                f"no such conv in the {encoder} model"
            raise _error(f"{key}={setting.keep[key]}: {key} {why}")
    for name, group in can_prune.items():
        kept = setting.keep.get(name, setting.keep.get(group))
        if kept is None:
            continue
        width = table[name].cout
        if isinstance(kept, float):
            count = max(CHANNEL_MULTIPLE, int(round(kept * width / CHANNEL_MULTIPLE)) * CHANNEL_MULTIPLE)
        else:
            count = kept
        if count > width:
            raise _error(f"{name}={kept}: more channels than the {width} the layer has")
        if count < width:
            result[name] = count
    pruned = arch.conv_table(encoder, result)
    for key, kept in setting.keep.items():
        if not key.endswith("/rank"):
            continue
        name = key[: -len("/rank")]
        if name not in table or table[name].size != 3 or not name.startswith(("encoder/", "decoder/")):
            raise _error(f"{key}={kept}: {name} is not a 3x3 conv of the encoder or the decoder")
        width = pruned[name].cout
        rank = max(1, int(round(kept * width))) if isinstance(kept, float) else kept
        if rank >= width:
            raise _error(f"{key}={kept}: the rank must be below the {width} output channels of {name}")
        result[key] = rank
    if setting.rank:
        for block in arch.SANET_BLOCKS:
            width = table[f"transform/{block}/f"].cout
            if setting.rank > width:
                raise _error(f"rank={setting.rank}: larger than the attention's {width} channels")
            if setting.rank < width:
                for conv in ("f", "g", "h"):
                    result[f"transform/{block}/{conv}"] = setting.rank
    for skip in skips:
        result[f"transform/{skip.name}"] = arch.decoder_width_before(skip.upsample, result)
    return result


def uint8_convs(setting: Setting, encoder: str, skips: tuple[arch.Skip, ...] = ()) -> list[str]:
    """The convs whose weights are stored as uint8 (both halves of a factored conv)."""
    table = arch.conv_table(encoder, channels(setting, encoder, skips))
    for name in setting.uint8:
        if "/" in name and name not in table:
            raise _error(f"uint8={name}: no such conv in the {encoder} model")
    return [name for name in table if name.split("/")[0] in setting.uint8 or name in setting.uint8]


# -- the report ----------------------------------------------------------------------------


def report(setting: Setting, encoder: str, size: int = 512, skips: tuple[arch.Skip, ...] = ()) -> dict:
    """Per conv: channels, rank, storage; and the totals before and after, for a size x size pair
    (before: the full-width model with the same shallow skips)."""
    widths = channels(setting, encoder, skips)
    full = channels(parse("none"), encoder, skips)
    before, after = arch.conv_table(encoder, full), arch.conv_table(encoder, widths)
    style = size if not setting.style_max_size else min(size, setting.style_max_size)
    flops_before = arch.conv_flops(encoder, size, size, full)
    flops_after = arch.conv_flops(encoder, size, size, widths, (style, style))
    quantized = set(uint8_convs(setting, encoder, skips))
    layers = []
    for name, conv in after.items():
        old = before.get(name, conv)
        what = []
        if f"{name}/rank" in widths:
            what.append(f"rank {conv.cout} (3x3 to {conv.cout}, 1x1 to {after[name + '/expand'].cout})")
        elif name.endswith("/expand"):
            what.append("the 1x1 half of the factored conv")
        elif name.endswith(("/f", "/g", "/h")) and conv.cout < old.cout:
            what.append(f"rank {conv.cout}")
        elif conv.cout < old.cout:
            what.append(f"{conv.cout}/{old.cout} channels kept")
        if conv.cin < old.cin and not name.endswith("/out_conv"):
            what.append(f"refit on {conv.cin}/{old.cin} inputs")
        if name in quantized:
            what.append("uint8")
        layers.append({"name": name, "cin": conv.cin, "cout": conv.cout, "what": ", ".join(what) or "kept",
                       "gflops_before": flops_before.get(name, 0) / 1e9, "gflops_after": flops_after[name] / 1e9})
    params_before = sum(arch.parameter_counts(encoder, full).values())
    params_after = sum(arch.parameter_counts(encoder, widths).values())
    return {
        "setting": setting.canonical(),
        "channels": widths,
        "style_max_size": setting.style_max_size,
        "uint8": sorted(quantized),
        "layers": layers,
        "parameters": [params_before, params_after],
        "gflops": [sum(flops_before.values()) / 1e9, sum(flops_after.values()) / 1e9],
        "size": size,
    }


def describe(info: dict) -> list[str]:
    """The report as lines for the build log and `mkdocs-sanet info`."""
    lines = [f"compression: {info['setting']}"]
    if info["style_max_size"]:
        lines.append(f"  style image encoded at most {info['style_max_size']} px (longest side)")
    for layer in info["layers"]:
        if layer["what"] != "kept":
            lines.append(f"  {layer['name']:26} {layer['cin']:4} -> {layer['cout']:4}  {layer['what']}; "
                         f"{layer['gflops_before']:.1f} -> {layer['gflops_after']:.1f} GFLOPs")
    p0, p1 = info["parameters"]
    g0, g1 = info["gflops"]
    lines.append(f"  parameters {p0:,} -> {p1:,}; GFLOPs for a {info['size']}x{info['size']} pair "
                 f"{g0:.0f} -> {g1:.0f}")
    return lines


# -- applying it -----------------------------------------------------------------------------


def calibration_images(size: int = CALIBRATION_SIZE) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The calibration photos and paintings, float32 RGB in [0, 1], sides multiples of 16."""
    from . import images

    def load(name):
        image = images.load_image(CALIBRATION_DIR / name, size)
        h, w = (side // arch.SIZE_MULTIPLE * arch.SIZE_MULTIPLE for side in image.shape[:2])
        return image[:h, :w]

    return [load(n) for n in CALIBRATION_CONTENT], [load(n) for n in CALIBRATION_STYLE]


def quantize_uint8(value: np.ndarray) -> np.ndarray:
    """What TF.js's uint8 storage gives back for the array: the converter's affine quantization
    (tensorflowjs.quantization, whose import pulls in more than this needs), zero kept exact."""
    data = np.asarray(value, np.float32)
    low, high = float(data.min()), float(data.max())
    if low == high:
        return data.copy()
    scale = (high - low) / 255
    if low <= 0 <= high:
        low = -np.round(-low / scale) * scale
        high = 255 * scale + low
    levels = np.round((data.clip(low, high) - low) / scale)
    return (levels * scale + low).astype(np.float32)


def apply(weights: dict[str, np.ndarray], encoder: str, setting: Setting, log=print) -> dict[str, np.ndarray]:
    """The compressed model's weights (float32), in the layout `arch.weight_shapes(encoder, channels)`."""
    if setting.is_none:
        return weights
    widths = channels(setting, encoder)
    out = dict(weights)
    if widths:
        contents, styles = calibration_images()
        if any(name.startswith("encoder/") for name in widths):
            out = _prune_encoder(out, encoder, widths, contents + styles)
        out = _factor_attention(out, weights, encoder, widths, contents, styles, setting.style_max_size)
        out = _prune_decoder(out, weights, encoder, widths, contents, styles, setting.style_max_size)
    for name in uint8_convs(setting, encoder):
        for kind in ("kernel", "bias"):
            out[f"{name}/{kind}"] = quantize_uint8(out[f"{name}/{kind}"])
    for line in describe(report(setting, encoder)):
        log(line)
    return out


def require_widths(source, setting: Setting) -> None:
    """Weights trained at a compressed model's widths (the default model: `fast`'s) take only
    settings of those widths (the style size and uint8 may change): nothing else has trained
    weights, and random ones are never served in their place. A model's shallow skips count as
    widths: they take the decoder's."""
    skips = arch.model_skips(source.widths())
    widths = channels(setting, source.encoder, skips)
    if not source.channels or widths == source.widths():
        return
    trained_as = next((name for name in PRESETS
                       if channels(parse(name), source.encoder, skips) == source.widths()), None)
    what = f"the '{trained_as}' preset's" if trained_as else "other"
    skip_keys = {f"transform/{skip.name}" for skip in skips}  # not setting items: they follow the decoder
    keep = trained_as or " ".join(f"{k}={v}" for k, v in source.channels if k not in skip_keys)
    raise _error(f"'{setting.canonical()}' gives the model other widths, but the '{source.name}' model's weights "
                 f"were trained at {what} widths, and no trained weights exist for these: use '{keep}' "
                 "(items such as style_max_size=... or uint8=... may follow it)")


def compress_encoder(weights: dict[str, np.ndarray], encoder: str, setting: Setting) -> dict[str, np.ndarray]:
    """The encoder stage of `apply` alone (its pruned and factored convs, uint8 where the setting
    says): the frozen encoder that a model of these widths is trained on (training/)."""
    widths = {k: v for k, v in channels(setting, encoder).items() if k.startswith("encoder/")}
    out = {k: v for k, v in weights.items() if k.startswith("encoder/")}
    if widths:
        contents, styles = calibration_images()
        out = _prune_encoder(out, encoder, widths, contents + styles)
    for name in uint8_convs(setting, encoder):
        if name.startswith("encoder/"):
            for kind in ("kernel", "bias"):
                out[f"{name}/{kind}"] = quantize_uint8(out[f"{name}/{kind}"])
    return out


def compressed_weights(source, setting: Setting, log=print, cache_dir: Path | None = None) -> dict[str, np.ndarray]:
    """The weights of a model source, compressed as the setting says. With cache_dir, kept there
    (an .npz named by a hash of the weights, the setting and this code), so that building the
    model again (a damaged cache entry, another quantization) or a results grid does not
    compress again: compressing the default model takes about 40 s here."""
    from . import weights as weights_mod

    require_widths(source, setting)
    if source.channels:  # trained at these widths: only the storage changes
        skips = arch.model_skips(source.widths())
        out = weights_mod.load(source)
        for name in uint8_convs(setting, source.encoder, skips):
            for kind in ("kernel", "bias"):
                out[f"{name}/{kind}"] = quantize_uint8(out[f"{name}/{kind}"])
        for line in describe(report(setting, source.encoder, skips=skips)):
            log(line)
        return out
    if setting.is_none:
        return weights_mod.load(source)
    path = None
    if cache_dir is not None:
        digest = hashlib.sha256(f"{source.fingerprint()}\0{source.encoder}\0{setting.canonical()}\0".encode())
        for name in ("compression.py", "architecture.py", "weights.py", "checkpoints.py"):
            digest.update((Path(__file__).parent / name).read_bytes())
        path = Path(cache_dir) / f"{digest.hexdigest()[:32]}.npz"
        try:
            if path.is_symlink() or not path.is_file():
                raise OSError("not a regular file")
            weights_mod._check_npz(path)  # the headers first, as weights.npz's: np.load allocates what they say
            with np.load(path, allow_pickle=False) as data:
                out = {name: data[name] for name in data.files}
            # Checked where it is read: every weight of the compressed widths, finite, nothing else.
            weights_mod.check(out, source.encoder, str(path), channels(setting, source.encoder))
            if not all(v.dtype == np.float32 and np.isfinite(v).all() for v in out.values()):
                raise ValueError("not finite float32 weights")
            for line in describe(report(setting, source.encoder)):
                log(line)
            return out
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, weights_mod.WeightsError):
            pass  # not there, damaged or forged: compress (again)
    out = apply(weights_mod.load(source), source.encoder, setting, log)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.tmp-{os.getpid()}.npz")
        np.savez(tmp, **out)
        os.replace(tmp, path)
    return out


# The steps of a chain of convs: (name, padding, relu, what follows the relu).
def _encoder_chain(encoder: str) -> list[tuple[str, str, bool, str]]:
    enc = arch.ENCODERS[encoder]
    steps = []
    for layer in enc.layers:
        if layer == arch.POOL:
            steps[-1] = steps[-1][:3] + ("pool",)
        else:
            steps.append((f"encoder/{layer.name}", enc.padding, layer.relu, ""))
    return steps


def _decoder_chain() -> list[tuple[str, str, bool, str]]:
    steps = [("transform/merge_conv", "reflect", False, "")]
    for layer in arch.DECODER:
        if layer == arch.UPSAMPLE:
            steps[-1] = steps[-1][:3] + ("upsample",)
        else:
            steps.append((f"decoder/{layer.name}", "reflect", layer.relu, ""))
    return steps


def _conv(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, padding: str) -> np.ndarray:
    import tensorflow as tf

    if kernel.shape[0] == 3 and padding == "reflect":
        x = np.pad(x, ((1, 1), (1, 1), (0, 0)), mode="reflect")
        y = tf.nn.conv2d(x[None], kernel, 1, "VALID")
    else:
        y = tf.nn.conv2d(x[None], kernel, 1, "SAME")
    return (y.numpy()[0] + bias).astype(np.float32)


def _after(y: np.ndarray, relu: bool, post: str) -> np.ndarray:
    if relu:
        y = np.maximum(y, 0)
    if post == "pool":
        h, w = y.shape[0] // 2 * 2, y.shape[1] // 2 * 2
        y = y[:h, :w].reshape(h // 2, 2, w // 2, 2, -1).max(axis=(1, 3))
    elif post == "upsample":
        y = y.repeat(2, 0).repeat(2, 1)
    return y


def _patches(xs: list[np.ndarray], size: int, padding: str, count: int, rng) -> tuple[np.ndarray, list]:
    """`count` random positions over the images: their size x size patches, flattened HWC."""
    where = []
    total = sum(x.shape[0] * x.shape[1] for x in xs)
    picks = np.sort(rng.choice(total, size=min(count, total), replace=False))
    start = 0
    rows = []
    for i, x in enumerate(xs):
        h, w = x.shape[:2]
        mine = picks[(picks >= start) & (picks < start + h * w)] - start
        start += h * w
        if not len(mine):
            continue
        ys, xs_ = mine // w, mine % w
        r = size // 2
        padded = np.pad(x, ((r, r), (r, r), (0, 0)), mode="reflect" if padding == "reflect" else "constant")
        rows.append(np.stack([padded[ys + dy, xs_ + dx] for dy in range(size) for dx in range(size)], axis=1))
        where.append((i, ys, xs_))
    return np.concatenate(rows).reshape(-1, size * size * xs[0].shape[-1]), where


def _targets(ys: list[np.ndarray], where: list) -> np.ndarray:
    return np.concatenate([ys[i][r, c] for i, r, c in where])


def _select(inputs: list[np.ndarray], kernel: np.ndarray, padding: str, keep: int, rng) -> np.ndarray:
    """ThiNet's greedy choice: the input channels of `kernel` whose removal changes its
    output least, on sampled (position, output channel) pairs. Returns the kept, sorted."""
    k, _, cin, cout = kernel.shape
    patches, _ = _patches(inputs, k, padding, 6000, rng)
    patches = patches.reshape(len(patches), k * k, cin)
    outs = rng.integers(0, cout, len(patches))
    contributions = np.einsum("spc,spc->sc", patches, kernel.reshape(k * k, cin, cout)[:, :, outs].transpose(2, 0, 1))
    gram = contributions.T.astype(np.float64) @ contributions
    removed: list[int] = []
    cross = np.zeros(cin)
    alive = np.ones(cin, bool)
    for _ in range(cin - keep):
        cost = np.where(alive, 2 * cross + np.diag(gram), np.inf)
        c = int(np.argmin(cost))
        removed.append(c)
        alive[c] = False
        cross += gram[c]
    return np.flatnonzero(alive)


def _refit(inputs: list[np.ndarray], targets: list[np.ndarray], shape: tuple, padding: str, rng):
    """Least squares (lightly regularised): the kernel and bias on these inputs that best give
    the targets."""
    k, _, cin, cout = shape
    columns = k * k * cin
    x, where = _patches(inputs, k, padding, min(20000, max(6000, 2 * columns)), rng)
    y = _targets(targets, where)
    x = np.concatenate([x, np.ones((len(x), 1), x.dtype)], axis=1)
    gram = (x.T @ x).astype(np.float64)
    gram[np.diag_indices(columns)] += 1e-3 * np.mean(np.diag(gram)[:columns]) + 1e-8
    solution = np.linalg.solve(gram, (x.T @ y).astype(np.float64))
    return solution[:-1].reshape(shape).astype(np.float32), solution[-1].astype(np.float32)


def _prune_chain(out: dict, original: dict, steps: list, widths: dict, orig_in: list, pruned_in: list) -> dict:
    """Prune and refit the convs of one chain, layer by layer, on the calibration inputs."""
    rng = np.random.default_rng(0)
    kept = None
    for i, (name, padding, relu, post) in enumerate(steps):
        kernel, bias = original[f"{name}/kernel"], original[f"{name}/bias"]
        orig_y = [_conv(x, kernel, bias, padding) for x in orig_in]
        new_kernel, new_bias = out[f"{name}/kernel"], out[f"{name}/bias"]
        # Refit a conv whose inputs were pruned, and the chain's first when its inputs differ.
        if kept is not None or (i == 0 and any(a is not b for a, b in zip(orig_in, pruned_in))):
            cin = pruned_in[0].shape[-1]
            new_kernel, new_bias = _refit(pruned_in, orig_y, kernel.shape[:2] + (cin, kernel.shape[3]), padding, rng)
        orig_next = [_after(y, relu, post) for y in orig_y]
        kept = None
        if name in widths and widths[name] < kernel.shape[3]:
            following = original[f"{steps[i + 1][0]}/kernel"]
            kept = _select(orig_next, following, steps[i + 1][1], widths[name], rng)
            new_kernel, new_bias = new_kernel[..., kept], new_bias[kept]
        out[f"{name}/kernel"], out[f"{name}/bias"] = new_kernel, new_bias
        responses = [_conv(x, new_kernel, new_bias, padding) for x in pruned_in]
        if f"{name}/rank" in widths:
            targets = [y[..., kept] for y in orig_y] if kept is not None else orig_y
            responses = _factor(out, name, responses, targets, widths[f"{name}/rank"], rng)
        pruned_in = [_after(y, relu, post) for y in responses]
        orig_in = orig_next
        if kept is not None:
            # The next conv's own kernel is refitted; until then it reads the kept channels.
            out[f"{steps[i + 1][0]}/kernel"] = original[f"{steps[i + 1][0]}/kernel"][:, :, kept]
    return out


def _factor(out: dict, name: str, responses: list[np.ndarray], targets: list[np.ndarray], rank: int,
            rng) -> list[np.ndarray]:
    """A 3x3 conv to `rank` channels, then a 1x1 conv back to its width (Zhang et al. 2015): the
    rank-r linear map of this conv's responses (on the compressed network's inputs) that best
    gives the original network's responses, i.e. reduced-rank regression. Returns the factored
    conv's responses."""
    flat = np.concatenate([y.reshape(-1, y.shape[-1]) for y in responses])
    goal = np.concatenate([y.reshape(-1, y.shape[-1]) for y in targets])
    rows = rng.choice(len(flat), size=min(len(flat), 200000), replace=False)
    x = np.concatenate([flat[rows], np.ones((len(rows), 1), np.float32)], axis=1).astype(np.float64)
    gram = x.T @ x
    gram[np.diag_indices(len(gram) - 1)] += 1e-6 * np.mean(np.diag(gram)[:-1])
    mapping = np.linalg.solve(gram, x.T @ goal[rows].astype(np.float64))  # (d + 1, d)
    fitted = x @ mapping
    mean = fitted.mean(0)
    _, vectors = np.linalg.eigh((fitted - mean).T @ (fitted - mean))
    basis = vectors[:, ::-1][:, :rank]  # (d, rank)
    kernel, bias = out[f"{name}/kernel"].astype(np.float64), out[f"{name}/bias"].astype(np.float64)
    out[f"{name}/kernel"] = (kernel @ mapping[:-1] @ basis).astype(np.float32)
    out[f"{name}/bias"] = ((bias @ mapping[:-1] + mapping[-1] - mean) @ basis).astype(np.float32)
    out[f"{name}/expand/kernel"] = basis.T.reshape(1, 1, rank, -1).astype(np.float32)
    out[f"{name}/expand/bias"] = mean.astype(np.float32)
    project = mapping[:-1] @ basis
    shift = (mapping[-1] - mean) @ basis
    return [((y @ project + shift) @ basis.T + mean).astype(np.float32) for y in responses]


def _preprocess(encoder: str, image: np.ndarray) -> np.ndarray:
    if arch.ENCODERS[encoder].preprocessing == "caffe":
        return (image[..., ::-1] * 255.0 - np.array(arch.CAFFE_MEAN_BGR, np.float32)).astype(np.float32)
    return image.astype(np.float32)


def _prune_encoder(out: dict, encoder: str, widths: dict, images: list[np.ndarray]) -> dict:
    steps = _encoder_chain(encoder)
    inputs = [_preprocess(encoder, image) for image in images]
    inputs += [x[:, ::-1].copy() for x in inputs]  # mirrored: twice the positions
    return _prune_chain(out, dict(out), steps, widths, inputs, list(inputs))


def _model(weights: dict, encoder: str):
    from .model import SANet

    return SANet(weights, encoder)


def _resize(image: np.ndarray, max_size: int | None) -> np.ndarray:
    from . import images

    return images.shrink_style(image, max_size) if max_size else image


def _features(model, image: np.ndarray):
    import tensorflow as tf

    out = model.encode(tf.constant(image[None]))
    return out["relu4_1"].numpy()[0], out["relu5_1"].numpy()[0]


def _mvn(x: np.ndarray) -> np.ndarray:
    flat = x.reshape(-1, x.shape[-1]).astype(np.float64)
    n = len(flat)
    return (flat - flat.mean(0)) / np.sqrt(flat.var(0) * n / (n - 1) + arch.MVN_EPS)


def _root(moment: np.ndarray, inverse: bool) -> np.ndarray:
    values, vectors = np.linalg.eigh(moment)
    values = np.maximum(values, 1e-6 * values.max())
    return (vectors * values ** (-0.5 if inverse else 0.5)) @ vectors.T


def _factor_attention(out: dict, original: dict, encoder: str, widths: dict, contents, styles, style_max) -> dict:
    """f.g^T and h.out_conv of each block as rank-r products, fitted to the statistics of the
    (compressed) encoder's features on the calibration images."""
    blocks = [b for b in arch.SANET_BLOCKS if f"transform/{b}/f" in widths]
    if not blocks:
        return out
    model = _model(out, encoder)
    content_feats = [_features(model, image) for image in contents + styles]
    style_feats = [_features(model, _resize(image, style_max)) for image in styles + contents]
    for index, block in enumerate(blocks):
        rank = widths[f"transform/{block}/f"]
        w = lambda conv, kind: original[f"transform/{block}/{conv}/{kind}"].reshape(  # noqa: E731
            -1, original[f"transform/{block}/{conv}/bias"].shape[0]).astype(np.float64)
        cn = np.concatenate([_mvn(f[index]) for f in content_feats])
        sn = np.concatenate([_mvn(f[index]) for f in style_feats])
        s = np.concatenate([f[index].reshape(-1, f[index].shape[-1]) for f in style_feats]).astype(np.float64)
        # Logits: cn Wf Wg^T sn^T, plus a per-key term sn.(Wg bf); per-query terms cancel in the softmax.
        left, right = cn.T @ cn / len(cn), sn.T @ sn / len(sn)
        u, sigma, vt = np.linalg.svd(_root(left, False) @ w("f", "kernel") @ w("g", "kernel").T @ _root(right, False))
        p = _root(left, True) @ u[:, :rank] * np.sqrt(sigma[:rank])
        q = _root(right, True) @ vt[:rank].T * np.sqrt(sigma[:rank])
        key_bias = w("g", "kernel") @ w("f", "bias")[0]
        f_bias = np.linalg.lstsq(q, key_bias, rcond=None)[0]
        # Values: the attention averages h(s), so h.out_conv is one 512x512 map, then a bias.
        moment = s.T @ s / len(s)
        u, sigma, vt = np.linalg.svd(_root(moment, False) @ w("h", "kernel") @ w("out_conv", "kernel"))
        h = _root(moment, True) @ u[:, :rank] * sigma[:rank]
        o = vt[:rank]
        # Biases of g and h that change nothing (a per-query logit shift; a shift of the averaged
        # values, taken back in out_conv's bias) but are not zero: the converter drops zero biases.
        g_bias = h_bias = np.full(rank, 1e-2)
        o_bias = (w("h", "bias")[0] @ w("out_conv", "kernel") + w("out_conv", "bias")[0]) - h_bias @ o
        for conv, kernel, bias in (("f", p, f_bias), ("g", q, g_bias), ("h", h, h_bias), ("out_conv", o, o_bias)):
            out[f"transform/{block}/{conv}/kernel"] = kernel.reshape(1, 1, *kernel.shape).astype(np.float32)
            out[f"transform/{block}/{conv}/bias"] = bias.astype(np.float32)
    return out


def _merge_inputs(weights: dict, encoder: str, pairs, style_max) -> list[np.ndarray]:
    import tensorflow as tf

    model = _model(weights, encoder)
    result = []
    for content, style in pairs:
        c = model.encode(tf.constant(content[None]))
        s = model.encode(tf.constant(_resize(style, style_max)[None]))
        x = model.merge_input(c["relu4_1"], c["relu5_1"], s["relu4_1"], s["relu5_1"])
        result.append(x.numpy()[0])
    return result


def _prune_decoder(out: dict, original: dict, encoder: str, widths: dict, contents, styles, style_max) -> dict:
    """The merge conv and the decoder, refitted on the compressed encoder and attention's
    features against the original model's."""
    steps = _decoder_chain()
    if not any(name in widths or f"{name}/rank" in widths for name, *_ in steps):
        return out
    pairs = [(c, s) for c in contents for s in styles]
    orig_in = _merge_inputs(original, encoder, pairs, None)
    pruned_in = _merge_inputs(out, encoder, pairs, style_max)
    return _prune_chain(out, original, steps, widths, orig_in, pruned_in)
