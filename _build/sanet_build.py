"""The build backend: setuptools', with one check. A wheel of mkdocs-sanet carries files the
repository does not commit (the npm runtime, KaTeX, the presets, the default model converted),
which the release step adds (`./dev wheel`, mkdocs_sanet/release.py). Built from a plain source
tree (`pip install .`, `pip install git+URL`, `python -m build`) it would install without them
and fail at the first site build, so it stops here with one line saying how to build it.
Editable installs (`pip install -e .`, what ./dev does) run from the checkout's node_modules and
model_assets and are left alone.
"""

from __future__ import annotations

import sys
from pathlib import Path

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F401,F403  (every other hook as setuptools has it)

# What release.py puts into the package before it builds the wheel.
BUNDLED = ("mkdocs_sanet/vendor/katex/package.json", "mkdocs_sanet/vendor/@tensorflow/tfjs-core",
           "mkdocs_sanet/prebuilt/release.json", "mkdocs_sanet/model_assets/presets")
MESSAGE = ("mkdocs-sanet: a wheel built from the plain source tree would lack {missing}: build it with "
           "`./dev wheel` in a checkout (npm ci and the default model converted; see README.md, 'The wheel'), "
           "then `pip install dist/mkdocs_sanet-*.whl`; or install the released wheel")


def _missing() -> list[str]:
    return [name for name in BUNDLED if not Path(name).exists()]


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    missing = _missing()
    if missing:
        print(MESSAGE.format(missing=", ".join(missing)), file=sys.stderr)
        raise SystemExit(1)
    return _setuptools.build_wheel(wheel_directory, config_settings, metadata_directory)
