"""The content-addressed cache of built TF.js models.

An entry is a folder named by a hash of everything that changes the result: the weights,
the code of the architecture and the export, the quantization, the TensorFlow and
tensorflowjs versions. It is built in a temporary folder beside it and renamed into place
in one step, so an interrupted build never leaves a folder that looks complete. Its
manifest records the size and sha256 of each of its files, and an entry is checked against
them before it is used: a damaged one is moved aside and built again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path

from . import bundled
from .compression import DEFAULT, parse
from .weights import ModelSource

# 2: the manifest lists each file's size and sha256.
FORMAT_VERSION = 2
MANIFEST = "manifest.json"
# The source files whose code decides what an entry (and a results picture) holds.
_CODE = ("architecture.py", "model.py", "export.py", "weights.py", "checkpoints.py", "pipeline.py", "compression.py")
_TMP_PREFIX = ".tmp-"
_TRASH_PREFIX = ".trash-"

# Entries whose hashes this process has checked (or written), by folder: the stat of each
# file then. Hashing the default model's 14 files (35 MB) takes about 75 ms here (200 ms
# from a cold disk), against 0.1 ms to stat them: so every process (each `mkdocs build`)
# hashes an entry once, and `mkdocs serve` rebuilds only compare sizes and stats.
_verified: dict[Path, tuple] = {}


class CacheError(RuntimeError):
    """The cache folder cannot be used (not a folder, not writable)."""


def _version(package: str) -> str:
    """The installed version; in a light install (no TensorFlow), the one that converted the
    wheel's prebuilt model, so that `model: default` finds it under the same key."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return bundled.release_info().get("versions", {}).get(package, "missing")


def model_key(source: ModelSource, quantization: str, compression: str = DEFAULT) -> str:
    """The entry's name: a hash of the weights, the code, the compression setting (its
    canonical spelling) and the tool versions."""
    here = Path(__file__).parent
    parts = {
        "format": FORMAT_VERSION,
        "weights": source.fingerprint(),
        "encoder": source.encoder,
        "code": hashlib.sha256(b"".join((here / name).read_bytes() for name in _CODE)).hexdigest(),
        "quantization": quantization,
        "compression": parse(compression).canonical(),
        "tensorflow": _version("tensorflow"),
        "tensorflowjs": _version("tensorflowjs"),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files(folder: Path) -> list[str]:
    """The entry's files but its manifest, as POSIX paths relative to the folder."""
    names = (p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    return sorted(name for name in names if name != MANIFEST)


def _stats(folder: Path, names: Iterable[str]) -> tuple:
    """What changes when a file is written, renamed or replaced (ctime cannot be set back)."""
    stats = []
    for name in names:
        s = (folder / name).stat()
        stats.append((name, s.st_size, s.st_mtime_ns, s.st_ctime_ns, s.st_ino))
    return tuple(stats)


class Cache:
    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key

    def get(self, key: str, graphs: Iterable[str] = (), warn: Callable[[str], None] | None = None) -> Path | None:
        """The intact entry for the key, or None. A damaged entry (see `problem`) is described to
        warn, moved aside and removed, so that the caller builds it again."""
        entry = self.path(key)
        if not entry.is_dir():
            return None
        problem = self.problem(key, graphs)
        if problem is None:
            return entry
        if warn is not None:
            warn(f"the cached model {entry} is damaged ({problem}): building it again")
        self.discard(key)
        return None

    def problem(self, key: str, graphs: Iterable[str] = ()) -> str | None:
        """What is wrong with the entry, or None: an unreadable manifest, a graph it lacks, a file
        missing, added, of another size, or (once per process) with another sha256."""
        entry = self.path(key)
        try:
            manifest = json.loads((entry / MANIFEST).read_text())
        except FileNotFoundError:
            return f"no {MANIFEST}"
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            return f"{MANIFEST} is unreadable: {error}"
        files = manifest.get("files") if isinstance(manifest, dict) else None
        if not (isinstance(files, dict) and isinstance(manifest.get("graphs"), dict) and all(
                isinstance(f, dict) and isinstance(f.get("size"), int) and isinstance(f.get("sha256"), str)
                for f in files.values())):
            return f"{MANIFEST} does not list the graphs, and each file's size and sha256"
        for graph in graphs:
            if graph not in manifest["graphs"] or f"{graph}/model.json" not in files:
                return f"{MANIFEST} has no graph '{graph}'"
        try:
            present = _files(entry)
            missing, added = sorted(set(files) - set(present)), sorted(set(present) - set(files))
            if missing:
                return f"{missing[0]} is missing"
            if added:
                return f"{added[0]} is not in {MANIFEST}"
            stats = _stats(entry, present)
            for name, size, *_ in stats:
                if size != files[name]["size"]:
                    return f"{name} has {size:,} bytes, expected {files[name]['size']:,}"
            if _verified.get(entry) == stats:
                return None
            for name in present:
                if _sha256(entry / name) != files[name]["sha256"]:
                    return f"{name} has another sha256 than when it was written"
        except OSError as error:
            return f"unreadable: {error}"
        _verified[entry] = stats
        return None

    def manifest(self, key: str) -> dict:
        return json.loads((self.path(key) / MANIFEST).read_text())

    def put(self, key: str, build, graphs: Iterable[str] = ()) -> Path:
        """Run build(tmp_folder), record its files' sizes and hashes in its manifest, and move it
        into place atomically. Raises CacheError when the cache folder cannot be written."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self.remove_stale()
            tmp = self.root / f"{_TMP_PREFIX}{key}-{uuid.uuid4().hex[:8]}"
            tmp.mkdir()
        except OSError as error:
            raise CacheError(f"{self.root}: expected a writable folder ({error.strerror or error})") from None
        try:
            build(tmp)
            if not (tmp / MANIFEST).is_file():
                raise RuntimeError(f"the build wrote no {MANIFEST} in {tmp}")
            self._record(tmp)
            for attempt in range(2):
                try:
                    os.rename(tmp, self.path(key))
                    break
                except OSError:
                    # Another build finished the same entry first: keep theirs. A damaged
                    # entry in the way (no manifest, say) is moved aside by get().
                    if self.get(key, graphs) is not None:
                        break
                    if attempt:
                        raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        _verified[self.path(key)] = _stats(self.path(key), _files(self.path(key)))
        return self.path(key)

    @staticmethod
    def _record(folder: Path) -> None:
        """Add each file's size and sha256 to the manifest (replaced in one step: it stays last)."""
        manifest = json.loads((folder / MANIFEST).read_text())
        manifest["files"] = {name: {"size": (folder / name).stat().st_size, "sha256": _sha256(folder / name)}
                             for name in _files(folder)}
        partial = folder / f"{MANIFEST}.partial"
        partial.write_text(json.dumps(manifest, indent=2))
        os.replace(partial, folder / MANIFEST)

    def discard(self, key: str) -> None:
        """Move an entry aside in one step (so that its name is free at once), then delete it."""
        trash = self.root / f"{_TRASH_PREFIX}{key}-{uuid.uuid4().hex[:8]}"
        try:
            os.rename(self.path(key), trash)
        except FileNotFoundError:
            return  # another build moved it first
        except OSError as error:
            raise CacheError(f"{self.root}: expected a writable folder ({error.strerror or error})") from None
        shutil.rmtree(trash, ignore_errors=True)

    def remove_stale(self, older_than_s: float = 24 * 3600) -> None:
        """Delete what interrupted builds left behind: temporary folders older than older_than_s,
        and any damaged entry moved aside."""
        if not self.root.is_dir():
            return
        for prefix, age in ((_TMP_PREFIX, older_than_s), (_TRASH_PREFIX, 0)):
            for folder in self.root.glob(f"{prefix}*"):
                try:
                    if time.time() - folder.stat().st_mtime >= age:
                        shutil.rmtree(folder, ignore_errors=True)
                except FileNotFoundError:
                    pass
