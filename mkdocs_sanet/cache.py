"""The content-addressed cache of built TF.js models.

An entry is a folder named by a hash of everything that changes the result: the weights,
the code of the architecture and the export, the quantization, the TensorFlow and
tensorflowjs versions. It is built in a temporary folder beside it and renamed into place
in one step, so an interrupted build never leaves a folder that looks complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from importlib import metadata
from pathlib import Path

from .compression import DEFAULT, parse
from .weights import ModelSource

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
# The source files whose code decides what an entry (and a results picture) holds.
_CODE = ("architecture.py", "model.py", "export.py", "weights.py", "checkpoints.py", "pipeline.py", "compression.py")
_TMP_PREFIX = ".tmp-"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "missing"


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


class Cache:
    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key

    def get(self, key: str) -> Path | None:
        """The complete entry for the key, or None."""
        entry = self.path(key)
        return entry if (entry / MANIFEST).is_file() else None

    def manifest(self, key: str) -> dict:
        return json.loads((self.path(key) / MANIFEST).read_text())

    def put(self, key: str, build) -> Path:
        """Run build(tmp_folder) and move the result into place atomically."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.remove_stale()
        tmp = self.root / f"{_TMP_PREFIX}{key}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            build(tmp)
            if not (tmp / MANIFEST).is_file():
                raise RuntimeError(f"the build wrote no {MANIFEST} in {tmp}")
            try:
                os.rename(tmp, self.path(key))
            except OSError:
                # Another build finished the same entry first: keep theirs.
                if self.get(key) is None:
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return self.path(key)

    def remove_stale(self, older_than_s: float = 24 * 3600) -> None:
        """Delete temporary folders that interrupted builds left behind."""
        if not self.root.is_dir():
            return
        for tmp in self.root.glob(f"{_TMP_PREFIX}*"):
            try:
                if time.time() - tmp.stat().st_mtime > older_than_s:
                    shutil.rmtree(tmp, ignore_errors=True)
            except FileNotFoundError:
                pass
