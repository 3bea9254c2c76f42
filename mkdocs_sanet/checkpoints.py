"""The original SANet checkpoints (GlebSBrykin/SANET), read safely and converted to this
project's layout.

A `.pth` is a zip with a pickle and raw tensor storages. The pickle is read by an unpickler that
knows only tensors and plain containers: any other global (os.system, say) is refused before
anything runs. The pre-2020 non-zip format needs torch (`pip install mkdocs-sanet[torch]`) and is
read with torch.load(weights_only=True). `.safetensors` files with the same keys are taken too.
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
from pathlib import Path

import numpy as np

from . import architecture as arch

# Sequential indices of the convs in vgg_normalised.pth, up to relu5_1 (children [:44]).
VGG19_CONVS = {
    "conv0": 0, "conv1_1": 2, "conv1_2": 5, "conv2_1": 9, "conv2_2": 12, "conv3_1": 16, "conv3_2": 19,
    "conv3_3": 22, "conv3_4": 25, "conv4_1": 29, "conv4_2": 32, "conv4_3": 35, "conv4_4": 38, "conv5_1": 42,
}
# ... and in decoder_iter_500000.pth.
DECODER_CONVS = {
    "conv4_1": 1, "conv3_4": 5, "conv3_3": 8, "conv3_2": 11, "conv3_1": 14, "conv2_2": 18, "conv2_1": 21,
    "conv1_2": 25, "conv1_1": 28,
}
KINDS = ("vgg", "decoder", "transformer")
EXPECTED_FILES = {"vgg": "vgg_normalised.pth", "decoder": "decoder_iter_500000.pth",
                  "transformer": "transformer_iter_500000.pth"}
SUFFIXES = (".pth", ".pt", ".safetensors")


class CheckpointError(ValueError):
    pass


_DTYPES = {
    "FloatStorage": np.float32, "HalfStorage": np.float16, "DoubleStorage": np.float64,
    "BFloat16Storage": None, "LongStorage": np.int64, "IntStorage": np.int32, "ByteStorage": np.uint8,
}


class _StorageType:
    def __init__(self, name):
        self.name = name


def _rebuild_tensor(storage, offset, size, stride, *_):
    if not size:
        return storage[offset].copy()
    # A damaged or hostile file must not make us read outside the storage.
    extent = offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1
    if offset < 0 or min(stride) < 0 or extent > len(storage):
        raise CheckpointError(f"a tensor of size {tuple(size)} does not fit its storage of {len(storage)} values")
    itemsize = storage.itemsize
    return np.lib.stride_tricks.as_strided(
        storage[offset:], shape=tuple(size), strides=tuple(s * itemsize for s in stride)).copy()


def _rebuild_parameter(data, *_):
    return data


class _Shape:
    """A tensor's shape, read without its storage (to recognise a checkpoint cheaply)."""

    def __init__(self, shape):
        self.shape = tuple(shape)


def _rebuild_shape(storage, offset, size, *_):
    return _Shape(size)


class _TensorsOnly(pickle.Unpickler):
    """Knows OrderedDict, tensors and storages; nothing else can be named, let alone called."""

    ALLOWED = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    }

    def __init__(self, data: bytes, read_storage, path: Path, shapes_only: bool = False):
        super().__init__(io.BytesIO(data))
        self.read_storage = read_storage
        self.path = path
        self.shapes_only = shapes_only

    def find_class(self, module, name):
        if self.shapes_only and (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_shape
        if (module, name) in self.ALLOWED:
            return self.ALLOWED[(module, name)]
        if module == "torch" and name in _DTYPES:
            return _StorageType(name)
        raise CheckpointError(
            f"{self.path}: refused to load: its pickle names {module}.{name}, and a checkpoint may hold "
            "only tensors and plain containers")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage"):
            raise CheckpointError(f"{self.path}: unexpected persistent id {pid!r}")
        storage_type, key = pid[1], pid[2]
        dtype = _DTYPES.get(getattr(storage_type, "name", ""))
        if dtype is None:
            raise CheckpointError(f"{self.path}: unsupported storage type {getattr(storage_type, 'name', storage_type)}")
        if self.shapes_only:
            return None
        return np.frombuffer(self.read_storage(str(key)), dtype=np.dtype(dtype).newbyteorder("<"))


def read_pth(path: Path, shapes_only: bool = False) -> dict[str, np.ndarray]:
    """A state dict from a .pth, as NumPy arrays, without running anything in it. With
    shapes_only, objects with just a .shape: the storages are not read."""
    try:
        with open(path, "rb") as f:
            is_zip = f.read(4) == b"PK\x03\x04"
    except OSError as error:
        raise CheckpointError(f"{path}: cannot be read ({error.strerror})") from None
    if not is_zip:
        return _read_legacy(path)
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
            if not pickles:
                raise CheckpointError(f"{path}: a zip without data.pkl: not a PyTorch checkpoint")
            prefix = pickles[0][: -len("data.pkl")]
            byteorder = archive.read(prefix + "byteorder").decode() if prefix + "byteorder" in names else "little"
            if byteorder != "little":
                raise CheckpointError(f"{path}: big-endian checkpoints are not supported")
            state = _TensorsOnly(archive.read(pickles[0]),
                                 lambda key: archive.read(f"{prefix}data/{key}"), path, shapes_only).load()
    except (zipfile.BadZipFile, KeyError, EOFError, pickle.UnpicklingError) as error:
        raise CheckpointError(f"{path}: truncated or damaged checkpoint ({error})") from None
    return _flat_arrays(state, path)


def _read_legacy(path: Path) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise CheckpointError(
            f"{path}: an old (pre-zip) PyTorch checkpoint: reading it needs torch, "
            "pip install mkdocs-sanet[torch]") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(f"{path}: refused to load: not a zip checkpoint, and torch's safe loader "
                              "(weights_only) finds more than tensors and plain containers in it") from None
    except (RuntimeError, EOFError, OSError) as error:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({str(error).splitlines()[0]})") from None
    return _flat_arrays({k: v.numpy() if hasattr(v, "numpy") else v for k, v in state.items()}, path)


def _flat_arrays(state, path: Path) -> dict[str, np.ndarray]:
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a state dict (names to tensors), found {type(state).__name__}")
    return {str(k): v for k, v in state.items() if isinstance(v, (np.ndarray, _Shape))}


def read_file(path: Path, shapes_only: bool = False) -> dict[str, np.ndarray]:
    if path.suffix == ".safetensors" and shapes_only:
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="numpy") as f:
                return {key: _Shape(f.get_slice(key).get_shape()) for key in f.keys()}
        except (SafetensorError, OSError) as error:
            raise CheckpointError(f"{path}: not a readable safetensors file ({error})") from None
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as error:
            raise CheckpointError(f"{path}: not a readable safetensors file ({error})") from None
    return read_pth(path)


def kind_of(state: dict[str, np.ndarray]) -> str | None:
    """Which of the three checkpoints a state dict is, by its keys."""
    if "sanet4_1.f.weight" in state and "merge_conv.weight" in state:
        return "transformer"
    if "0.weight" in state and tuple(state["0.weight"].shape) == (3, 3, 1, 1):
        return "vgg"
    if "1.weight" in state and "0.weight" not in state and state["1.weight"].shape[:2] == (256, 512):
        return "decoder"
    return None


def find(folder: Path) -> dict[str, Path] | None:
    """The three original checkpoints in a folder, recognised by content; None when there are none."""
    found: dict[str, Path] = {}
    candidates = sorted(p for p in folder.iterdir() if p.suffix in SUFFIXES)
    if not candidates:
        return None
    for path in candidates:
        # Keys and shapes only: every build resolves the model, only a cold one reads the weights.
        shapes = read_file(path, shapes_only=True)
        kind = kind_of(shapes)
        if kind is None:
            raise CheckpointError(
                f"{path}: neither vgg_normalised, decoder nor transformer: its keys "
                f"({', '.join(list(shapes)[:4])}, ...) match none of the original SANet checkpoints")
        if kind in found:
            raise CheckpointError(f"{folder}: two {kind} checkpoints: {found[kind].name} and {path.name}")
        found[kind] = path
    missing = [EXPECTED_FILES[k] for k in KINDS if k not in found]
    if missing:
        raise CheckpointError(f"{folder}: missing the {', '.join(missing)} checkpoint (expected all three)")
    return found


def _take(state, key, shape, path: Path) -> np.ndarray:
    if key not in state:
        raise CheckpointError(f"{path}: missing key {key} (expected shape {shape})")
    value = np.asarray(state[key], np.float32)
    if tuple(value.shape) != tuple(shape):
        raise CheckpointError(f"{path}: {key} has shape {tuple(value.shape)}, expected {tuple(shape)}")
    return value


def convert(files: dict[str, Path]) -> dict[str, np.ndarray]:
    """The three checkpoints as this project's weights (HWIO kernels, vgg19 encoder)."""
    out = {}
    sources = {
        "encoder": ("vgg", VGG19_CONVS, lambda name, i: f"{i}"),
        "decoder": ("decoder", DECODER_CONVS, lambda name, i: f"{i}"),
        "transform": ("transformer", None, lambda name, i: name.replace("/", ".")),
    }
    for part, convs in arch.part_convs("vgg19").items():
        kind, indices, prefix = sources[part]
        state = read_file(files[kind])
        for conv in convs:
            base = prefix(conv.name, indices[conv.name] if indices else None)
            kernel = _take(state, f"{base}.weight", (conv.cout, conv.cin, conv.size, conv.size), files[kind])
            out[f"{part}/{conv.name}/kernel"] = kernel.transpose(2, 3, 1, 0)  # OIHW -> HWIO
            out[f"{part}/{conv.name}/bias"] = _take(state, f"{base}.bias", (conv.cout,), files[kind])
    return out
