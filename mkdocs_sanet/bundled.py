"""What the package carries besides code, committed in the repository so that every install
(`pip install .`, `pip install git+URL`, an sdist, a wheel) has it without Node.js or TensorFlow,
as mkdocs-material keeps its built assets: the npm files that built sites serve (vendor/, in
node_modules' layout, from package-lock.json), the default model converted (prebuilt/model/,
with prebuilt/release.json saying what made it), and the repository's model_assets/ (presets,
weights), which pyproject.toml maps to mkdocs_sanet/model_assets/ in a wheel. `./dev assets`
(release.py) writes vendor/ and prebuilt/; tests/test_assets.py checks that they are what it writes.

Imports nothing of the package, so that every module can ask it.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
VENDOR = PACKAGE / "vendor"
PREBUILT = PACKAGE / "prebuilt"
RELEASE_FILE = PREBUILT / "release.json"
MODEL_ASSETS = PACKAGE / "model_assets"
BUILD_EXTRA = 'pip install "mkdocs-sanet[build]"'
# What building a model or a results grid imports (the `build` extra of pyproject.toml).
BUILD_MODULES = ("tensorflow", "tensorflowjs")


class BuildExtraMissing(RuntimeError):
    """A build step needs TensorFlow, which a light install leaves out."""


@functools.cache
def release_info() -> dict:
    """prebuilt/release.json: the prebuilt model's key and the inputs that made it; {} without it."""
    return json.loads(RELEASE_FILE.read_text()) if RELEASE_FILE.is_file() else {}


def runtime_dir(configured: Path | None) -> Path:
    """Where the npm files (TF.js, KaTeX) are: the configured folder (the plugin's runtime_dir,
    the CLI's --runtime-dir) when one is given, else the package's own copy."""
    return configured if configured is not None else VENDOR


def source_checkout() -> bool:
    """Whether the package runs from a source checkout (pyproject.toml beside it): `pip install -e .`."""
    return (PACKAGE.parent / "pyproject.toml").is_file()


def prebuilt_model(key: str) -> Path | None:
    """The converted model that the package carries for this key (cache.prebuilt_key), if any. A
    source checkout that can build (TensorFlow installed) builds from the weights instead: its code
    may have changed since `./dev assets` made the committed model."""
    entry = PREBUILT / "model"
    if release_info().get("key") != key or not (entry / "manifest.json").is_file():
        return None
    if source_checkout() and all(importlib.util.find_spec(name) for name in BUILD_MODULES):
        return None
    return entry


def require_build_extra(what: str) -> None:
    """Raise a clear error when TensorFlow or its converter is not installed."""
    missing = [name for name in BUILD_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise BuildExtraMissing(f"sanet: {what} needs TensorFlow ({', '.join(missing)} not installed): "
                                f"{BUILD_EXTRA}")
