"""What a wheel carries besides code, put there by the release step (release.py): the npm files
the built sites serve (vendor/, in node_modules' layout), the repository's model_assets/, and
the default model already converted (prebuilt/<key>/, with release.json saying what made it).
A source checkout has none of these and works from node_modules and model_assets/ instead.

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
    """release.json of the wheel: the prebuilt model's key and the inputs that made it; {} in a
    source checkout."""
    return json.loads(RELEASE_FILE.read_text()) if RELEASE_FILE.is_file() else {}


def runtime_dir(configured: Path) -> Path:
    """Where the npm files (TF.js, KaTeX) are: the package's own copy, else the configured folder."""
    return VENDOR if (VENDOR / "katex" / "package.json").is_file() else configured


def prebuilt_model(key: str) -> Path | None:
    """The converted model that the wheel carries for this cache key, if any."""
    entry = PREBUILT / key
    return entry if release_info().get("key") == key and (entry / "manifest.json").is_file() else None


def require_build_extra(what: str) -> None:
    """Raise a clear error when TensorFlow or its converter is not installed."""
    missing = [name for name in BUILD_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise BuildExtraMissing(f"sanet: {what} needs TensorFlow ({', '.join(missing)} not installed): "
                                f"{BUILD_EXTRA}")
