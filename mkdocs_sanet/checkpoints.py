"""The original SANet checkpoints (GlebSBrykin/SANET), read safely and converted to this
project's layout.

A `.pth` is a zip with a pickle and raw tensor storages; the pre-2020 format is a stream of
pickles followed by the storages. Both are read by an unpickler that knows only tensors and plain
containers: any other global (os.system, say) is refused before anything runs. Every declared
size is checked before anything is allocated: element counts, dimensions, strides and offsets
against the storages, storages against the bytes really in the file (zip entry sizes and
compression ratios included). `.safetensors` files with the same keys are taken too.
"""

from __future__ import annotations

import collections
import io
import math
import pickle
import pickletools
import reprlib
import struct
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


# Limits, far above the real checkpoints (the largest tensor has 2.4M elements, all three 21M).
MAX_ELEMENTS = 64 * 2**20  # per tensor and per storage
MAX_TOTAL_ELEMENTS = 256 * 2**20  # per file
MAX_NDIM = 8
MAX_PICKLE_BYTES = 256 * 2**10  # the real pickles take 2 to 4 KB
MAX_COMPRESSION_RATIO = 100  # torch stores entries uncompressed; deflated float weights give about 1.1

_DTYPES = {
    "FloatStorage": np.float32, "HalfStorage": np.float16, "DoubleStorage": np.float64,
    "BFloat16Storage": None, "LongStorage": np.int64, "IntStorage": np.int32, "ByteStorage": np.uint8,
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60


def _short(value) -> str:
    """A value from a damaged file, shortened for a message."""
    return _REPR.repr(value)


def zip_entry_problem(info: zipfile.ZipInfo, expected_bytes: int) -> str | None:
    """What is wrong with a zip entry that should hold expected_bytes, judged from the central
    directory alone (zipfile never inflates past file_size, and checks the CRC)."""
    if info.file_size != expected_bytes:
        return f"its zip entry holds {info.file_size:,} bytes, expected {expected_bytes:,}"
    if info.file_size > 2**20 and info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1):
        return (f"its zip entry inflates {info.compress_size:,} bytes to {info.file_size:,}: a compression "
                f"ratio above {MAX_COMPRESSION_RATIO} is not weights")
    return None


class _StorageType:
    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name


class _Storage:
    """A storage's declaration: which bytes, of what type, how many values."""

    __slots__ = ("key", "dtype", "numel")

    def __init__(self, key: str, dtype: np.dtype, numel: int):
        self.key, self.dtype, self.numel = key, dtype, numel


class _Tensor:
    """A tensor's declaration, checked and read only once the state dict names it."""

    __slots__ = ("args",)

    def __init__(self, args: tuple):
        self.args = args


def _rebuild_tensor(*args) -> _Tensor:
    return _Tensor(args)


class _Shape:
    """A tensor's shape, read without its storage (to recognise a checkpoint cheaply)."""

    def __init__(self, shape):
        self.shape = tuple(shape)


def _rebuild_parameter(data, *_):
    return data


class _TensorsOnly(pickle.Unpickler):
    """Knows OrderedDict, tensors and storages; nothing else can be named, let alone called."""

    ALLOWED = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    }

    def __init__(self, file, path: Path, declare=None):
        super().__init__(file)
        self.path = path
        self.declare = declare
        self.storages: dict[str, _Storage] = {}
        self.total = 0

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return self.ALLOWED[(module, name)]
        if module == "torch" and name in _DTYPES:
            return _StorageType(name)
        raise CheckpointError(
            f"{self.path}: refused to load: its pickle names {module}.{name}, and a checkpoint may hold "
            "only tensors and plain containers")

    def persistent_load(self, pid):
        """('storage', type, key, location, numel[, view]): checked, and declared to the reader."""
        if self.declare is None or not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise CheckpointError(f"{self.path}: unexpected persistent id {_short(pid)} "
                                  "(expected ('storage', type, key, location, size))")
        storage_type, key, numel = pid[1], pid[2], pid[4]
        if not isinstance(storage_type, _StorageType) or _DTYPES[storage_type.name] is None:
            raise CheckpointError(f"{self.path}: storage {_short(key)}: unsupported storage type "
                                  f"{_short(getattr(storage_type, 'name', storage_type))}")
        if not isinstance(key, str) or not key.isalnum():
            raise CheckpointError(f"{self.path}: storage key {_short(key)}: expected a name of letters and digits")
        if not _is_count(numel) or numel > MAX_ELEMENTS:
            declared = f"{numel:,}" if isinstance(numel, int) else _short(numel)
            raise CheckpointError(f"{self.path}: storage {key} declares {declared} values, expected a "
                                  f"count from 0 to {MAX_ELEMENTS:,}")
        if len(pid) == 6 and pid[5] is not None:
            raise CheckpointError(f"{self.path}: storage {key} is a storage view, which is not supported")
        dtype = np.dtype(_DTYPES[storage_type.name]).newbyteorder("<")
        if key in self.storages:
            known = self.storages[key]
            if (known.dtype, known.numel) != (dtype, numel):
                raise CheckpointError(f"{self.path}: storage {key} is declared twice, differently")
            return known
        self.total += numel
        if self.total > MAX_TOTAL_ELEMENTS:
            raise CheckpointError(f"{self.path}: its storages add up to more than {MAX_TOTAL_ELEMENTS:,} values")
        storage = self.storages[key] = _Storage(key, dtype, numel)
        self.declare(storage)
        return storage


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _unpickle(file: io.BytesIO, path: Path, declare=None):
    """One pickle from file, its opcodes checked first: every counted string really there, and no
    memo index beyond the pickle's length (the unpickler would allocate the memo up to it)."""
    start = file.tell()
    for opcode, arg, _ in pickletools.genops(file):
        if opcode.name in ("PUT", "BINPUT", "LONG_BINPUT") and int(arg) > MAX_PICKLE_BYTES:
            raise CheckpointError(f"{path}: truncated or damaged checkpoint (its pickle stores memo entry {arg:,})")
    file.seek(start)
    unpickler = _TensorsOnly(file, path, declare)
    return unpickler.load(), unpickler.storages


def _layout(args: tuple, path: Path, key: str) -> tuple[_Storage, int, tuple[int, ...], tuple[int, ...]]:
    """A tensor's storage, offset, size and stride, checked against the limits and its storage."""
    where = f"{path}: {key}"
    if len(args) < 4 or not isinstance(args[0], _Storage):
        raise CheckpointError(f"{where}: a damaged tensor (expected storage, offset, size, stride), "
                              f"found {_short(args)}")
    storage, offset, size, stride = args[:4]
    if not _is_count(offset):
        raise CheckpointError(f"{where}: storage offset {_short(offset)}, expected a non-negative integer")
    for name, value in (("size", size), ("stride", stride)):
        if not (isinstance(value, (tuple, list)) and len(value) <= MAX_NDIM and all(map(_is_count, value))):
            raise CheckpointError(f"{where}: {name} {_short(value)}, expected at most {MAX_NDIM} "
                                  "non-negative integers")
    size, stride = tuple(size), tuple(stride)
    if len(stride) != len(size):
        raise CheckpointError(f"{where}: size {size} with stride {stride}, expected one stride per dimension")
    numel = math.prod(size)
    if numel > MAX_ELEMENTS:
        raise CheckpointError(f"{where}: size {size} is {numel:,} elements, more than the limit of "
                              f"{MAX_ELEMENTS:,} per tensor")
    if numel:
        extent = offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1
        if extent > storage.numel:
            raise CheckpointError(f"{where}: size {size}, stride {stride} and offset {offset} reach value "
                                  f"{extent:,} of a storage of {storage.numel:,}")
        if numel > storage.numel - offset:
            raise CheckpointError(f"{where}: {numel:,} elements viewing {storage.numel - offset:,} stored "
                                  "values (zero or overlapping strides): refused")
    return storage, offset, size, stride


def _tensors(state, path: Path, shapes_only: bool, read) -> dict[str, np.ndarray]:
    """The state dict's tensors by name, checked; read (storage -> bytes) only without shapes_only."""
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a state dict (names to tensors), found {type(state).__name__}")
    out, total, data = {}, 0, {}
    for key, value in state.items():
        if not isinstance(value, _Tensor):
            continue
        if not isinstance(key, str):
            raise CheckpointError(f"{path}: key {_short(key)}: expected a name (str), found {type(key).__name__}")
        storage, offset, size, stride = _layout(value.args, path, key)
        total += math.prod(size)
        if total > MAX_TOTAL_ELEMENTS:
            raise CheckpointError(f"{path}: {key}: the tensors add up to more than {MAX_TOTAL_ELEMENTS:,} elements")
        if shapes_only:
            out[key] = _Shape(size)
            continue
        if storage.key not in data:
            data[storage.key] = np.frombuffer(read(storage), storage.dtype)
        itemsize = storage.dtype.itemsize
        out[key] = np.lib.stride_tricks.as_strided(
            data[storage.key][offset:], shape=size, strides=tuple(s * itemsize for s in stride)).copy()
    return out


def read_pth(path: Path, shapes_only: bool = False) -> dict[str, np.ndarray]:
    """A state dict from a .pth, as NumPy arrays, without running anything in it. With
    shapes_only, objects with just a .shape: the storages are checked but not read."""
    try:
        with open(path, "rb") as f:
            if f.read(4) == b"PK\x03\x04":
                return _read_zip(path, f, shapes_only)
            f.seek(0)
            return _read_legacy(path, f, shapes_only)
    except CheckpointError:
        raise
    except OSError as error:
        raise CheckpointError(f"{path}: cannot be read ({error.strerror or error})") from None
    except Exception as error:  # anything else a damaged file can make the zip or pickle readers raise
        raise CheckpointError(f"{path}: truncated or damaged checkpoint ({type(error).__name__}: "
                              f"{_short(str(error))})") from None


def _read_small(archive: zipfile.ZipFile, name: str, limit: int, path: Path) -> bytes:
    info = archive.getinfo(name)
    if info.file_size > limit:
        raise CheckpointError(f"{path}: {name} holds {info.file_size:,} bytes, more than the limit of {limit:,}")
    return archive.read(info)


def _read_zip(path: Path, f, shapes_only: bool) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(f) as archive:
        names = set(archive.namelist())
        pickles = sorted(n for n in names if n.endswith("/data.pkl") or n == "data.pkl")
        if not pickles:
            raise CheckpointError(f"{path}: a zip without data.pkl: not a PyTorch checkpoint")
        prefix = pickles[0][: -len("data.pkl")]
        if prefix + "byteorder" in names and _read_small(archive, prefix + "byteorder", 16, path) != b"little":
            raise CheckpointError(f"{path}: big-endian checkpoints are not supported")

        def declare(storage: _Storage) -> None:
            name = f"{prefix}data/{storage.key}"
            if name not in names:
                raise CheckpointError(f"{path}: storage {storage.key} is missing (no {name} in the zip)")
            problem = zip_entry_problem(archive.getinfo(name), storage.numel * storage.dtype.itemsize)
            if problem:
                raise CheckpointError(f"{path}: storage {storage.key} ({storage.numel:,} values of "
                                      f"{storage.dtype.name}): {problem}")

        data = _read_small(archive, pickles[0], MAX_PICKLE_BYTES, path)
        state, _ = _unpickle(io.BytesIO(data), path, declare)
        return _tensors(state, path, shapes_only, lambda storage: archive.read(f"{prefix}data/{storage.key}"))


def _read_legacy(path: Path, f, shapes_only: bool) -> dict[str, np.ndarray]:
    """The pre-2020 format: pickles of the magic number, the protocol version, the system info,
    the object and the storage keys; then each storage as an int64 count and its values."""
    head = io.BytesIO(f.read(MAX_PICKLE_BYTES))
    try:
        magic = _unpickle(head, path)[0]
    except CheckpointError:
        raise
    except Exception:
        magic = None
    if magic != _LEGACY_MAGIC:
        raise CheckpointError(f"{path}: refused to load: not a zip checkpoint, and not the old PyTorch format "
                              "either (no PyTorch magic number at its start)")
    version, info = _unpickle(head, path)[0], _unpickle(head, path)[0]
    if version != _LEGACY_PROTOCOL or not isinstance(info, dict) or info.get("little_endian") is not True:
        raise CheckpointError(f"{path}: an old-format checkpoint of protocol {_short(version)}, "
                              f"system {_short(info)}: expected protocol {_LEGACY_PROTOCOL}, little-endian")
    state, storages = _unpickle(head, path, declare=lambda storage: None)
    keys = _unpickle(head, path)[0]
    if not isinstance(keys, list) or sorted(keys, key=str) != sorted(storages):
        raise CheckpointError(f"{path}: the storage list {_short(keys)} does not match the storages the "
                              f"tensors use ({_short(sorted(storages))})")
    # Where each storage's values lie, checked against the counts written before them and the file size.
    offsets, position = {}, head.tell()
    end = f.seek(0, 2)
    for key in keys:
        storage = storages[key]
        f.seek(position)
        count = f.read(8)
        nbytes = storage.numel * storage.dtype.itemsize
        if len(count) < 8 or position + 8 + nbytes > end:
            raise CheckpointError(f"{path}: truncated or damaged checkpoint (storage {key} ends past the "
                                  "end of the file)")
        if struct.unpack("<q", count)[0] != storage.numel:
            raise CheckpointError(f"{path}: storage {key} declares {storage.numel:,} values, but its data "
                                  f"holds {struct.unpack('<q', count)[0]:,}")
        offsets[key] = position + 8
        position += 8 + nbytes

    def read(storage: _Storage) -> bytes:
        f.seek(offsets[storage.key])
        return f.read(storage.numel * storage.dtype.itemsize)

    return _tensors(state, path, shapes_only, read)


def read_file(path: Path, shapes_only: bool = False) -> dict[str, np.ndarray]:
    """A checkpoint's tensors by name (.pth, .pt or .safetensors). With shapes_only, only keys and
    shapes are read, and they are checked against the same limits. Only a regular file is opened
    (a FIFO or a device would block the build or never end)."""
    if not path.is_file():
        raise CheckpointError(f"{path}: not a regular file: expected a checkpoint file (.pth or .safetensors)")
    if path.suffix != ".safetensors":
        return read_pth(path, shapes_only)
    from safetensors import safe_open
    from safetensors.numpy import load_file

    try:
        with safe_open(str(path), framework="numpy") as f:
            shapes = {key: tuple(f.get_slice(key).get_shape()) for key in f.keys()}
        total = 0
        for key, shape in shapes.items():
            numel = math.prod(shape)
            total += numel
            if len(shape) > MAX_NDIM or numel > MAX_ELEMENTS or total > MAX_TOTAL_ELEMENTS:
                raise CheckpointError(
                    f"{path}: {key}: size {shape} is beyond the limits ({MAX_NDIM} dimensions, {MAX_ELEMENTS:,} "
                    f"elements per tensor, {MAX_TOTAL_ELEMENTS:,} in all)")
        return {key: _Shape(shape) for key, shape in shapes.items()} if shapes_only else load_file(str(path))
    except CheckpointError:
        raise
    except OSError as error:
        raise CheckpointError(f"{path}: cannot be read ({error.strerror or error})") from None
    except Exception as error:  # SafetensorError, and dtypes NumPy lacks (bfloat16)
        raise CheckpointError(f"{path}: not a readable safetensors file ({_short(str(error))})") from None


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
