"""The assets that the repository commits in mkdocs_sanet/ (bundled.py) are what `./dev assets`
writes: the converted default model is named by the key of the current weights, converter and
export (cache.prebuilt_key: no conversion here, so the check is cheap) and is intact; the npm
files are node_modules' (package-lock.json), byte for byte, and no others."""

from __future__ import annotations

import json

import pytest

from helpers import ROOT
from mkdocs_sanet import bundled, cache, export, release

REGENERATE = "run ./dev assets and commit mkdocs_sanet/vendor/ and mkdocs_sanet/prebuilt/"


def test_prebuilt_model_is_the_default_weights_converted():
    recorded = json.loads((bundled.PREBUILT / "release.json").read_text())
    expected = release.expected_release()
    assert {name: recorded.get(name) for name in expected} == expected, REGENERATE


def test_prebuilt_model_is_intact():
    assert sorted(p.name for p in bundled.PREBUILT.iterdir()) == ["model", "release.json"], REGENERATE
    assert cache.Cache(bundled.PREBUILT).problem("model", export.SIGNATURES) is None, REGENERATE


def test_vendor_is_node_modules():
    runtime = ROOT / "node_modules"
    if not (runtime / "katex").is_dir():
        pytest.skip("no node_modules (npm ci): nothing to compare the committed npm files with")
    expected = {path.as_posix() for path in release.vendor_files(runtime)}
    committed = {p.relative_to(bundled.VENDOR).as_posix() for p in bundled.VENDOR.rglob("*") if p.is_file()}
    assert committed == expected, REGENERATE
    changed = [name for name in sorted(expected) if (runtime / name).read_bytes() != (bundled.VENDOR / name).read_bytes()]
    assert not changed, f"{changed}: {REGENERATE}"
