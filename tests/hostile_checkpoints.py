"""Hostile and damaged checkpoints, written the way torch writes them (a zip of data.pkl and raw
storages) but with whatever declarations a test wants: for the tests and benchmarks/bench_hostile.py."""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
from pathlib import Path

import torch


class Storage:
    """A storage as the pickle declares it; the zip entry holds data (bytes), or zeros of
    entry_bytes written in chunks (so that a 2 GiB entry never sits in memory)."""

    def __init__(self, key="0", numel=1, dtype="FloatStorage", data: bytes | None = None, entry_bytes=None):
        self.key, self.numel, self.dtype = key, numel, dtype
        self.data = data
        self.entry_bytes = entry_bytes


class Tensor:
    """A tensor as the pickle declares it: any values, right or wrong."""

    def __init__(self, storage, offset=0, size=(1,), stride=(1,), extra=(False, collections.OrderedDict())):
        # size=0: a record of the storage and offset only (a damaged tensor).
        self.args = (storage, offset, size, stride, *extra) if size != 0 else (storage, offset)


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", getattr(torch, obj.dtype), obj.key, "cpu", obj.numel)
        return None

    def reducer_override(self, obj):
        if isinstance(obj, Tensor):
            return torch._utils._rebuild_tensor_v2, obj.args
        return NotImplemented


def storages_in(value) -> list[Storage]:
    if isinstance(value, Storage):
        return [value]
    if isinstance(value, Tensor):
        return storages_in(list(value.args))
    if isinstance(value, dict):
        return storages_in(list(value.values()))
    if isinstance(value, (list, tuple)):
        return [s for item in value for s in storages_in(item)]
    return []


def write_pth(path: Path, state, compress: bool = False) -> Path:
    """A zip checkpoint holding the pickle of state and the storages it names."""
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=2).dump(state)
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", method, compresslevel=1 if compress else None) as archive:
        archive.writestr("archive/data.pkl", buffer.getvalue())
        archive.writestr("archive/byteorder", "little")
        done = set()
        for storage in storages_in(state):
            if storage.key in done or not isinstance(storage.key, str):
                continue
            done.add(storage.key)
            with archive.open(f"archive/data/{storage.key}", "w", force_zip64=True) as entry:
                if storage.entry_bytes is None:
                    entry.write(storage.data if storage.data is not None else bytes(4 * storage.numel))
                else:
                    chunk = bytes(1 << 20)
                    for start in range(0, storage.entry_bytes, len(chunk)):
                        entry.write(chunk[: storage.entry_bytes - start])
        archive.writestr("archive/version", "3\n")
    return path


def zero_stride_bomb(path: Path, side: int) -> Path:
    """vgg_normalised's first key as a side x side tensor viewing one stored value."""
    return write_pth(path, {"0.weight": Tensor(Storage(numel=1), size=(side, side), stride=(0, 0))})


def inflating_entry(path: Path, nbytes: int) -> Path:
    """A consistent float32 tensor whose zip entry is nbytes of deflated zeros."""
    numel = nbytes // 4
    return write_pth(path, {"0.weight": Tensor(Storage(numel=numel, entry_bytes=nbytes), size=(numel,))},
                     compress=True)
