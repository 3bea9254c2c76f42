"""The content-addressed cache of built TF.js models.

An entry is a folder named by a hash of everything that changes the result: the weights,
the code of the architecture and the export, the quantization, the TensorFlow and
tensorflowjs versions. It is built in a temporary folder beside it and renamed into place
in one step, so an interrupted build never leaves a folder that looks complete. Its
manifest records the size and sha256 of each of its files, and an entry is checked against
them before it is used: a damaged one is moved aside and built again.

Those hashes catch damage, not forgery: a cache restored in CI (a shared restore key) may hold
an entry made by anyone, with a manifest that matches it. So an entry that this process did not
write is also checked by rules that no manifest can satisfy for a hostile entry (`_content`):
only regular files (no links) in the graphs' folders, each model.json a TF.js graph model
whose weight files are plain file names in its own folder, all of them listed and all of the
bytes the weights need; the manifest's graphs exactly the expected ones, its numbers as the
export writes them.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import stat
import time
import uuid
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path

from . import architecture, bundled, jsonfile
from .outputs import remove_tree, walk
from .outputs import sha256 as _sha256
from .compression import DEFAULT, parse
from .weights import ModelSource

# 2: the manifest lists each file's size and sha256.
FORMAT_VERSION = 2
MANIFEST = "manifest.json"
# The source files whose code decides what an entry (and a results picture) holds.
_CODE = ("architecture.py", "model.py", "export.py", "weights.py", "checkpoints.py", "pipeline.py", "compression.py")
_TMP_PREFIX = ".tmp-"
_TRASH_PREFIX = ".trash-"
# Exactly the names put() and discard() give (a key, a random part): nothing else in the cache
# folder is removed as a leftover, since cache_dir may be a folder of the user's.
_LEFTOVER = re.compile(r"\.(tmp|trash)-[0-9a-f]{32}-[0-9a-f]{8}")
# The part of the model each graph holds (export.PART_OF; the model card reads it).
_PART_OF = {"encode": "encoder", "transform": "transform", "decode": "decoder"}

# Entries whose hashes this process has checked (or written), by folder: the stat of each
# file then. Hashing the default model's 14 files (35 MB) takes about 75 ms here (200 ms
# from a cold disk), against 0.1 ms to stat them: so every process (each `mkdocs build`)
# hashes an entry once, and `mkdocs serve` rebuilds only compare sizes and stats.
_verified: dict[Path, tuple] = {}


# A weights file named in a model.json: a plain file name in the graph's own folder (TF.js
# fetches it relative to model.json: no folder, no '..', no scheme, no query, no escapes).
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
# Bytes per element of the dtypes a graph model stores (quantized ones by their storage dtype).
_DTYPE_BYTES = {"float32": 4, "int32": 4, "bool": 1, "float16": 2, "uint16": 2, "uint8": 1}


class CacheError(RuntimeError):
    """The cache folder cannot be used (not a folder, not writable)."""


def _version(package: str) -> str:
    """The installed version; in a light install (no TensorFlow), the one that converted the
    package's prebuilt model (prebuilt/release.json): the key of its cache entry says so."""
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


# What the export writes, as a number: bump it with a change to the files of _CODE that changes the
# converted model (its graphs, its weights, its manifest), so that the committed prebuilt model
# (mkdocs_sanet/prebuilt/, `./dev assets`) no longer passes for it. tests/test_assets.py then asks
# for `./dev assets`.
EXPORT_REVISION = 1


def prebuilt_key(source: ModelSource, quantization: str, compression: str = DEFAULT) -> str:
    """The name of a converted model that the package carries (mkdocs_sanet/prebuilt/release.json):
    model_key's parts but the hash of the code, which stands for itself by EXPORT_REVISION (a
    committed model would otherwise go stale at every edit of pipeline.py), and TensorFlow's version
    (a range in pyproject.toml: its patch releases do not change the graphs; the converter's, pinned,
    stays). A source checkout with TensorFlow builds from the weights instead (bundled.prebuilt_model),
    so an edit of the code is tried at once; the committed model is for installs."""
    parts = {
        "format": FORMAT_VERSION,
        "export": EXPORT_REVISION,
        "weights": source.fingerprint(),
        "encoder": source.encoder,
        "quantization": quantization,
        "compression": parse(compression).canonical(),
        "tensorflowjs": _version("tensorflowjs"),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]




def _files(folder: Path) -> list[str]:
    """The entry's files but its manifest, as POSIX paths relative to the folder (at any depth:
    no recursion)."""
    names = ((top / name).relative_to(folder).as_posix() for top, _, files in walk(folder) for name in files
             if (top / name).is_file())
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
        try:
            mode = entry.lstat().st_mode
        except FileNotFoundError:
            return None
        except OSError as error:
            raise CacheError(f"{self.root}: expected a writable folder ({error.strerror or error})") from None
        if stat.S_ISDIR(mode):
            problem = self.problem(key, graphs)
            if problem is None:
                return entry
        else:
            problem = "a link, not a folder" if stat.S_ISLNK(mode) else "not a folder"
        if warn is not None:
            warn(f"the cached model {entry} is damaged ({problem}): building it again")
        self.discard(key)
        return None

    def problem(self, key: str, graphs: Iterable[str] = ()) -> str | None:
        """What is wrong with the entry, or None: an unreadable manifest, a graph it lacks, a file
        missing, added, of another size, or not a regular file; or (once per process, for an
        entry that this process did not write) a file with another sha256, or content that the
        export would not have written (see `_content`)."""
        graphs = tuple(graphs)
        entry = self.path(key)
        try:
            odd = _not_regular(entry)
        except OSError as error:
            return f"unreadable: {error}"
        if odd is not None:
            return odd
        try:
            manifest = jsonfile.loads((entry / MANIFEST).read_bytes())
        except FileNotFoundError:
            return f"no {MANIFEST}"
        except (OSError, ValueError) as error:  # UnicodeDecodeError, JSONDecodeError, nested too deep
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
            problem = _content(entry, manifest, present, graphs)
            if problem is not None:
                return problem
        except OSError as error:
            return f"unreadable: {error}"
        _verified[entry] = stats
        return None

    def manifest(self, key: str) -> dict:
        return jsonfile.loads((self.path(key) / MANIFEST).read_bytes())

    def put(self, key: str, build, graphs: Iterable[str] = ()) -> Path:
        """Run build(tmp_folder), record its files' sizes and hashes in its manifest, and move it
        into place atomically. Raises CacheError when the cache folder cannot be written."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self.remove_stale()
            tmp = self.root / f"{_TMP_PREFIX}{key}-{uuid.uuid4().hex[:8]}"
            tmp.mkdir()
            # Locked while this process builds it: remove_stale removes an unlocked one at once
            # (its build was killed), a locked one never (another build is writing it).
            held = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
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
            remove_tree(tmp)
            os.close(held)
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
        _remove(trash)

    def remove_stale(self, older_than_s: float = 24 * 3600) -> None:
        """Delete what interrupted builds left behind: temporary folders that no build holds
        locked (a killed one's) or older than older_than_s (an older version's, unlocked), and
        any damaged entry moved aside. Only names that put() and discard() give are removed
        (a temporary folder: a folder, not a link), never another `.tmp-*` or `.trash-*`: the
        cache folder may be one of the user's (`cache_dir: ''`, `docs`)."""
        try:
            found = os.listdir(self.root)
        except OSError:
            return
        for name in found:
            match = _LEFTOVER.fullmatch(name)
            if match is None:
                continue
            path = self.root / name
            try:
                info = path.lstat()
                if match[1] == "tmp" and (not stat.S_ISDIR(info.st_mode) or (
                        time.time() - info.st_mtime < older_than_s and _locked(path))):
                    continue
                _remove(path)
            except FileNotFoundError:
                pass


def _locked(folder: Path) -> bool:
    """Whether a build holds the temporary folder locked (see put); True when that cannot be told."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    """A folder with what it holds (never what its links point at), or a file or link."""
    try:
        if stat.S_ISDIR(path.lstat().st_mode):
            remove_tree(path)  # iterative: a folder nested 100,000 deep too
        else:
            path.unlink()
    except FileNotFoundError:
        pass


def _not_regular(entry: Path) -> str | None:
    """The first thing in the entry that is neither a folder nor a regular file (a link, a FIFO,
    a device), or a folder inside a folder (the graphs' folders hold files only), described;
    None when there is none. A link could ship a file from anywhere. Walked without recursion
    (a forged entry may nest folders thousands deep)."""
    for folder, folders, names in walk(entry):  # never enters linked folders
        if folder != entry and folders:
            return f"{(folder / folders[0]).relative_to(entry).as_posix()} is a folder inside a graph's folder"
        for name in sorted(folders + names):
            path = folder / name
            mode = path.lstat().st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                kind = "a link" if stat.S_ISLNK(mode) else "not a regular file"
                return f"{path.relative_to(entry).as_posix()} is {kind}"
    return None


def _content(entry: Path, manifest: dict, present: list[str], graphs: tuple[str, ...]) -> str | None:
    """What the export would not have written, or None: graphs other than the expected ones (or
    names that are no plain folder names), a file outside a graph's folder, a model.json that is
    not a TF.js graph model or whose weight files are not plain file names in its own folder, a
    file that no model.json names, weights of another size than their files; manifest numbers
    that the export does not write (the browser's demo reads them)."""
    listed = manifest["graphs"]
    if graphs and set(listed) != set(graphs):
        return f"{MANIFEST} lists the graphs {sorted(listed)}, expected {sorted(graphs)}"
    for graph in listed:
        if not (isinstance(graph, str) and _PLAIN_NAME.fullmatch(graph) and ".." not in graph):
            return f"{MANIFEST} lists a graph named {graph!r}"
    for name in present:
        parts = name.split("/")
        if len(parts) != 2 or parts[0] not in listed:
            return f"{name} is outside the graphs' folders"
    named: set[str] = set()
    for graph, info in listed.items():
        shipped = {name.split("/")[1] for name in present if name.startswith(f"{graph}/")}
        problem = _graph_model(entry / graph, shipped)
        if problem is not None:
            return f"{graph}/model.json {problem}"
        paths = [p for group in jsonfile.loads((entry / graph / "model.json").read_bytes())["weightsManifest"]
                 for p in group["paths"]]
        named.update(f"{graph}/{p}" for p in paths)
        size = sum((entry / graph / name).stat().st_size for name in ["model.json", *paths])
        if not (isinstance(info, dict) and info.get("bytes") == size and _count(info.get("parameters"))):
            return f"{MANIFEST}: graph '{graph}' does not give its files' {size:,} bytes and its parameters"
    unnamed = sorted(set(present) - named - {f"{graph}/model.json" for graph in listed})
    if unnamed:
        return f"{unnamed[0]} is named by no model.json"
    expected = {"bytes": sum(info["bytes"] for info in listed.values()),
                "size_multiple": architecture.SIZE_MULTIPLE, "min_size": architecture.MIN_SIZE}
    for field, value in expected.items():
        if manifest.get(field) != value or isinstance(manifest.get(field), bool):
            return f"{MANIFEST}: {field} is {manifest.get(field)!r}, expected {value!r}"
    style = manifest.get("style_max_size")
    if not (style is None or _count(style) and style >= architecture.MIN_SIZE):
        return f"{MANIFEST}: style_max_size is {style!r}"
    color = manifest.get("color_match")
    if not (isinstance(color, (int, float)) and not isinstance(color, bool) and 0 <= color <= 1):
        return f"{MANIFEST}: color_match is {color!r}, expected a number from 0 to 1"
    if not isinstance(manifest.get("trained"), bool) or not _count(manifest.get("parameters")):
        return f"{MANIFEST}: 'trained' and 'parameters' are not as the export writes them"
    for field in ("name", "encoder", "quantization", "tensorflow", "tensorflowjs"):
        if not isinstance(manifest.get(field), str):
            return f"{MANIFEST}: {field} is not a string"
    compression = manifest.get("compression")
    if not (isinstance(compression, dict) and isinstance(compression.get("channels"), dict) and all(
            isinstance(k, str) and _count(v) for k, v in compression["channels"].items())):
        return f"{MANIFEST}: compression.channels is not a table of convs and channel counts"
    return _card_fields(manifest)


def _card_fields(manifest: dict) -> str | None:
    """What the pages read of the manifest beyond the numbers checked above (the model card:
    each graph's part, the encoder, the compressed widths and uint8 convs), or None when it is
    all as the export writes it."""
    listed = manifest["graphs"]
    for graph, info in listed.items():
        if info.get("part") != _PART_OF.get(graph):
            return f"{MANIFEST}: graphs.{graph}.part is {info.get('part')!r}, expected {_PART_OF.get(graph)!r}"
    encoder = manifest["encoder"]
    if encoder not in architecture.ENCODERS:
        return f"{MANIFEST}: encoder is {encoder!r}, expected one of {sorted(architecture.ENCODERS)}"
    channels = manifest["compression"]["channels"]
    if not all(0 < width <= 65536 for width in channels.values()):
        return f"{MANIFEST}: compression.channels holds a width outside 1 to 65,536"
    try:
        convs = set(architecture.conv_table(encoder, channels))
        architecture.flops(encoder, 512, 512, channels, (512, 512))
    except (ValueError, KeyError, TypeError, ArithmeticError) as error:
        return f"{MANIFEST}: compression.channels do not make a model ({error})"
    unknown = sorted(name for name in channels if name not in convs and name.removesuffix("/rank") not in convs)
    if unknown:
        return f"{MANIFEST}: compression.channels names {unknown[0]!r}, which is no conv of the model"
    uint8 = manifest["compression"].get("uint8", [])
    if not (isinstance(uint8, list) and all(isinstance(name, str) and name in convs for name in uint8)):
        return f"{MANIFEST}: compression.uint8 is not a list of the model's convs"
    return None


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _graph_model(folder: Path, shipped: set[str]) -> str | None:
    """What is wrong with a graph's model.json (its folder holds the files `shipped`), or None."""
    try:
        model = jsonfile.loads((folder / "model.json").read_bytes())
    except ValueError as error:  # UnicodeDecodeError, JSONDecodeError, nested too deep
        return f"is not JSON ({error})"
    if not isinstance(model, dict) or model.get("format") != "graph-model":
        return "is not a TF.js graph model (its format is not 'graph-model')"
    topology, groups = model.get("modelTopology"), model.get("weightsManifest")
    if not (isinstance(topology, dict) and isinstance(topology.get("node"), list)
            and all(isinstance(node, dict) for node in topology["node"])):
        return "has no graph (modelTopology.node)"
    if not (isinstance(groups, list) and groups and all(
            isinstance(g, dict) and isinstance(g.get("paths"), list) and isinstance(g.get("weights"), list)
            for g in groups)):
        return "has no weightsManifest of paths and weights"
    paths = [p for group in groups for p in group["paths"]]
    for path in paths:
        if not (isinstance(path, str) and _PLAIN_NAME.fullmatch(path) and ".." not in path):
            return f"names the weights file {path!r}: expected a plain file name in its folder"
        if path not in shipped or path == "model.json":
            return f"names the weights file {path!r}, which is not in its folder"
    if len(set(paths)) != len(paths):
        return "names a weights file twice"
    needed = 0
    for group in groups:
        for weight in group["weights"]:
            if not (isinstance(weight, dict) and isinstance(weight.get("name"), str)
                    and isinstance(weight.get("shape"), list) and all(map(_count, weight["shape"]))):
                return "has a weight without a name and a shape"
            quantization = weight.get("quantization")
            dtype = quantization.get("dtype") if isinstance(quantization, dict) else weight.get("dtype")
            if dtype not in _DTYPE_BYTES or quantization is not None and not isinstance(quantization, dict):
                return f"has the weight {weight['name']!r} of dtype {dtype!r}"
            elements = 1
            for side in weight["shape"]:
                elements *= side
            needed += elements * _DTYPE_BYTES[dtype]
    size = sum((folder / path).stat().st_size for path in paths)
    if needed != size:
        return f"has weights of {needed:,} bytes in weights files of {size:,}"
    return None
