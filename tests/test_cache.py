"""The model cache: what its key hashes, warm builds without TensorFlow, interrupted builds."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import mkdocs_build, write_site
from mkdocs_sanet import architecture, cache, export, weights

DEMO_PAGE = {"index.md": "# Home\n\n<% sanet_demo %>\n"}


@pytest.fixture
def weights_folder(tmp_path):
    """A model folder in this project's layout: seeded transform and decoder weights."""
    folder = tmp_path / "my-model"
    folder.mkdir()
    weights.save(folder / "weights.npz", weights.untrained("vgg16", seed=5), "vgg16")
    return folder


def test_key_changes_with_weights_and_options_only(weights_folder, monkeypatch):
    source = weights.resolve(str(weights_folder))
    key = cache.model_key(source, "float16")
    assert cache.model_key(weights.resolve(str(weights_folder)), "float16") == key
    assert cache.model_key(source, "uint8") != key

    changed = weights.untrained("vgg16", seed=5)
    changed["decoder/conv1_1/bias"][0] += 1e-3
    weights.save(weights_folder / "weights.npz", changed, "vgg16")
    changed_key = cache.model_key(weights.resolve(str(weights_folder)), "float16")
    assert changed_key != key

    monkeypatch.setattr(cache, "_version", lambda package: "9.9.9" if package == "tensorflowjs" else "2.19.0")
    assert cache.model_key(weights.resolve(str(weights_folder)), "float16") != changed_key


def test_default_key_is_stable_and_names_untrained():
    source = weights.resolve("default")
    assert cache.model_key(source, "float16") == cache.model_key(weights.resolve("default"), "float16")
    assert source.trained == weights.DEFAULT_WEIGHTS.is_file()


WARM_BUILD = """
import logging, sys
logging.basicConfig(level=logging.INFO)
from mkdocs.commands.build import build
from mkdocs.config import load_config
build(load_config(sys.argv[1]))
print("IMPORTED:" + ",".join(m for m in ("tensorflow", "tensorflowjs", "keras") if m in sys.modules))
"""


def test_warm_build_does_not_import_tensorflow(tmp_path, model_cache):
    config = write_site(tmp_path / "project", model_cache, DEMO_PAGE)
    mkdocs_build(config)  # fills the cache if the session has not yet
    result = subprocess.run([sys.executable, "-c", WARM_BUILD, str(config)], capture_output=True, text=True,
                            cwd=config.parent)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "IMPORTED:\n" in result.stdout
    assert "using the cached model" in result.stderr
    assert "building the TF.js model" not in result.stderr


def test_model_json_stores_each_weight_once(tmp_path, model_cache):
    config = write_site(tmp_path / "project", model_cache, DEMO_PAGE)
    mkdocs_build(config)
    key = cache.model_key(weights.resolve("default"), "float16")
    entry = cache.Cache(model_cache).get(key)
    assert entry is not None
    manifest = json.loads((entry / "manifest.json").read_text())
    expected = architecture.parameter_counts("vgg16", manifest["compression"]["channels"])
    for graph in export.SIGNATURES:
        shapes, _ = export.stored_weights(entry / graph)  # raises on a name stored twice
        stored = sum(int(np.prod(shape)) for shape in shapes.values())
        part = export.PART_OF[graph]
        assert expected[part] <= stored <= expected[part] + 4096, (graph, stored, expected[part])
        assert manifest["graphs"][graph]["parameters"] == stored
    assert manifest["trained"] is False and manifest["quantization"] == "float16"


def test_killed_build_leaves_no_complete_entry(tmp_path):
    cache_dir = tmp_path / "cache"
    config = write_site(tmp_path / "project", cache_dir, DEMO_PAGE)
    process = subprocess.Popen([sys.executable, "-m", "mkdocs", "build", "-f", str(config)],
                               cwd=config.parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.time() + 120
    # Wait until the converter has started writing, then kill the build and its children.
    while time.time() < deadline and not list(cache_dir.glob(".tmp-*/encode/*")):
        assert process.poll() is None, "the build ended before it could be interrupted"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    key = cache.model_key(weights.resolve("default"), "float16")
    store = cache.Cache(cache_dir)
    assert store.get(key) is None
    assert not (cache_dir / key).exists()
    # The next build does the work again and completes the entry.
    mkdocs_build(config)
    assert store.get(key) is not None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_rebuild_reuses_the_cache(tmp_path, model_cache):
    config = write_site(tmp_path / "project", model_cache, DEMO_PAGE)
    mkdocs_build(config)
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "mkdocs", "serve", "-f", str(config), "-a", f"127.0.0.1:{free_port()}"],
        cwd=config.parent, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(process.stderr.readline, "")), daemon=True).start()

    def wait_for(text, count):
        deadline = time.time() + 120
        while sum(text in line for line in lines) < count:
            assert time.time() < deadline, "".join(lines)
            time.sleep(0.1)

    try:
        wait_for("Serving on", 1)
        time.sleep(1)
        page = config.parent / "docs" / "index.md"
        page.write_text(page.read_text() + "\nAn edit.\n")
        wait_for("Documentation built", 2)
    finally:
        process.terminate()
        process.wait()
    log = "".join(lines)
    assert log.count("using the cached model") == 2, log
    assert "building the TF.js model" not in log
