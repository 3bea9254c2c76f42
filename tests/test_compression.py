"""Compression without retraining: settings, errors, the cache key, compressed original
checkpoints, and the compressed model in Chromium against the Python pipeline."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from helpers import PRESETS, full_width_model, mkdocs_build, painting, psnr, save_png, write_site
from mkdocs_sanet import architecture, cache, compression, pipeline, weights

# Small enough to test quickly, and every method in it: pruning of each chain, rank, uint8,
# the style shrunk below the demo's size.
SETTING = ("style_max_size=64 encoder=0.5 encoder/conv3_2/rank=32 merge=0.5 decoder=0.5 decoder/conv2_2/rank=16 "
           "rank=64 uint8=encoder+decoder")


def test_presets_and_spellings():
    fast = compression.parse("fast")
    assert compression.parse(fast.canonical()) == fast
    assert compression.parse("none").is_none and compression.parse("").is_none
    assert compression.parse("fast rank=64").rank == 64  # a preset, then overrides
    assert set(compression.parse("uint8=all").uint8) == set(architecture.PARTS)


@pytest.mark.parametrize("text, message", [
    ("rank=600", "compression: rank=600: larger than the attention's 512 channels"),
    ("encoder/conv3_2/rank=300", "compression: encoder/conv3_2/rank=300: the rank must be below the 256 output"),
    ("encoder/conv3_2=64 encoder/conv3_2/rank=64",
     "compression: encoder/conv3_2/rank=64: the rank must be below the 64"),
    ("transform/merge_conv/rank=8", "compression: transform/merge_conv/rank=8: .* not a 3x3 conv of the encoder"),
    ("encoder/conv1_2=96", "compression: encoder/conv1_2=96: more channels than the 64 the layer has"),
    ("encoder/conv4_1=0.5", "compression: encoder/conv4_1=0.5: encoder/conv4_1 keeps its width"),
    ("encoder=1.5", "compression: encoder=1.5: a fraction must be above 0 and at most 1"),
    ("quick", "compression: unknown preset 'quick'"),
    ("speed=2", "compression: 'speed=2': unknown key 'speed'"),
    ("style_max_size=8", "compression: style_max_size=8: expected a whole number of at least 32"),
])
def test_impossible_settings_name_the_option(text, message):
    with pytest.raises(compression.CompressionError, match=message):
        compression.channels(compression.parse(text), "vgg16")


def test_impossible_setting_fails_the_build(tmp_path):
    config = write_site(tmp_path / "project", tmp_path / "cache", {"index.md": "# Demo\n\n<% sanet_demo %>\n"},
                        plugin_options="compression: rank=600")
    result = mkdocs_build(config, check=False)
    assert result.returncode != 0
    assert "mkdocs.yml: sanet: compression: rank=600: larger than the attention's 512 channels" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_cli_info_reports_each_layer():
    result = subprocess.run([sys.executable, "-m", "mkdocs_sanet.cli", "info", "--compression", "fast"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "encoder/conv2_2" in result.stdout and "channels kept" in result.stdout
    assert "rank 128" in result.stdout and "uint8" in result.stdout
    # The served default's FLOPs (its own widths, shallow skips included), against its full width.
    served = architecture.flops("vgg16", 512, 512, weights.resolve("default").widths(), style=(256, 256))
    found = re.search(r"GFLOPs for a 512x512 pair (\d+) -> (\d+)", result.stdout)
    assert found and int(found.group(2)) == round(sum(served.values()) / 1e9) < int(found.group(1)), result.stdout
    bad = subprocess.run([sys.executable, "-m", "mkdocs_sanet.cli", "info", "--compression", "rank=600"],
                         capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "mkdocs-sanet: error: compression: rank=600: larger than the attention's 512 channels"


def test_cache_key_changes_with_the_setting_and_only_then():
    source = weights.untrained_source()
    none = cache.model_key(source, "float16", "none")
    fast = cache.model_key(source, "float16", "fast")
    assert none != fast
    assert cache.model_key(source, "float16", "fast") == fast
    # The same setting spelled out (another order, commas) is the same entry.
    spelled = compression.parse("fast").canonical().split()
    assert cache.model_key(source, "float16", ", ".join(reversed(spelled))) == fast
    assert cache.model_key(source, "float16", "fast rank=64") not in (none, fast)
    assert cache.model_key(source, "float16", "") == none


def test_tables_follow_the_compressed_widths():
    widths = compression.channels(compression.parse(SETTING), "vgg19")
    shapes = architecture.weight_shapes("vgg19", widths)
    assert shapes["encoder/conv1_2/kernel"] == (3, 3, 32, 32)
    assert shapes["encoder/conv4_1/kernel"][3] == 512  # the taps keep their width
    assert shapes["transform/sanet4_1/out_conv/kernel"] == (1, 1, 64, 512)
    assert shapes["decoder/conv4_1/kernel"] == (3, 3, 256, 128)
    assert architecture.feature_shapes("vgg19", 512, 512, widths)["conv3_4"] == (128, 128, 128)
    # A factored conv: 3x3 to the rank, 1x1 back to the conv's width.
    assert shapes["encoder/conv3_2/kernel"] == (3, 3, 128, 32)
    assert shapes["encoder/conv3_2/expand/kernel"] == (1, 1, 32, 128)
    assert architecture.feature_shapes("vgg19", 512, 512, widths)["conv3_2"] == (128, 128, 128)
    full = sum(architecture.flops("vgg19", 512, 512).values())
    assert sum(architecture.flops("vgg19", 512, 512, widths, (64, 64)).values()) < full / 3


@pytest.fixture(scope="module")
def original_checkpoints(tmp_path_factory):
    """The original SANet layout (VGG19 encoder), written by torch as the importer's tests do."""
    pytest.importorskip("torch", reason="these tests write checkpoints with torch (the test extra has it)")
    import original_sanet
    from test_checkpoints import as_tensor

    folder = tmp_path_factory.mktemp("pair")
    pair = (save_png(PRESETS / "content-coffee.jpg", folder / "c.png", (128, 96)),
            save_png(painting("wave.jpg"), folder / "s.png", (112, 144)))
    original = original_sanet.random_original(seed=5, calibration=(as_tensor(pair[0]), as_tensor(pair[1])))
    return original_sanet.save_checkpoints(original, tmp_path_factory.mktemp("original") / "sanet")


def test_original_checkpoints_compress(original_checkpoints):
    source = weights.resolve(str(original_checkpoints))
    widths = compression.channels(compression.parse(SETTING), source.encoder)
    stylizer = pipeline.Stylizer(source, SETTING)
    compressed = {v.name.split(":")[0].replace("__", "/"): v.numpy() for v in stylizer.model.w.values()}
    weights.check(compressed, source.encoder, "compressed", widths)
    assert sum(v.size for v in compressed.values()) == sum(architecture.parameter_counts("vgg19", widths).values())
    # uint8 layers hold at most 256 distinct values, as TF.js stores them.
    assert len(np.unique(compressed["encoder/conv3_1/kernel"])) <= 256
    content = pipeline.load_image(PRESETS / "content-cat.jpg", 128)
    style = pipeline.load_image(painting("wave.jpg"), 128)
    full = pipeline.Stylizer(source, "none")(content, style)
    small = stylizer(content, style)
    assert small.shape == full.shape == content.shape
    assert small.std() > 0.01 and np.isfinite(small).all()
    # The same pipeline, so the compressed picture stays near the original one.
    assert psnr(pipeline.to_uint8(small), pipeline.to_uint8(full)) > 12


@pytest.mark.browser
@pytest.mark.slow
def test_compressed_model_in_browser_matches_python(tmp_path, model_cache, serve, browser):
    """Chromium (WASM) and the Python pipeline with the same compression: the same picture."""
    from helpers import canvas_rgb, stylize

    images = {"c.png": save_png(PRESETS / "content-coffee.jpg", tmp_path / "c.png", (150, 100)),
              "s.png": save_png(painting("Starry.jpg"), tmp_path / "s.png", (128, 112))}
    url = serve(tmp_path / "site" / "site")
    full = full_width_model(tmp_path / "full")  # the trained default takes fast's widths only
    config = write_site(tmp_path / "site", model_cache, {
        "index.md": '# Compressed\n\n<% sanet_demo content="/c.png" style="/s.png" max_size="160" %>\n'},
        plugin_options=f"model: {full}\ncompression: {SETTING}\nbackends: [wasm]", images=images, site_url=url)
    build = mkdocs_build(config)
    assert "sanet: compression: " in build.stderr and "channels kept" in build.stderr
    manifest = json.loads(next((tmp_path / "site" / "site").rglob("manifest.json")).read_text())
    assert manifest["style_max_size"] == 64
    assert manifest["compression"]["channels"]["encoder/conv1_1"] == 32
    browser.get(url)
    result = stylize(browser, "sanet-demo-1")
    assert result["state"] == "done", result["message"]
    stylizer = pipeline.Stylizer(weights.resolve(str(full)), SETTING)
    content, style = (pipeline.load_image(images[name], 0) for name in ("c.png", "s.png"))
    expected = pipeline.to_uint8(stylizer(content, style))
    out = canvas_rgb(result)
    assert out.std() > 5, "the picture is flat: the comparison would mean nothing"
    assert psnr(out, expected) >= 30


def test_compressed_weights_are_kept_between_builds(tmp_path, monkeypatch):
    """Building a model again (a damaged entry, a results grid) takes the kept weights: no second
    compression; another setting, or damaged kept weights, compress again."""
    source = weights.untrained_source()
    setting = compression.parse("uint8=all")
    calls = []
    apply = compression.apply
    monkeypatch.setattr(compression, "apply", lambda *a, **k: calls.append(1) or apply(*a, **k))
    first = compression.compressed_weights(source, setting, lambda line: None, tmp_path)
    second = compression.compressed_weights(source, setting, lambda line: None, tmp_path)
    assert len(calls) == 1
    assert all(np.array_equal(first[name], second[name]) for name in first)
    kept, = tmp_path.glob("*.npz")
    kept.write_bytes(kept.read_bytes()[:1000])  # damaged: compressed again, and kept again
    compression.compressed_weights(source, setting, lambda line: None, tmp_path)
    compression.compressed_weights(source, compression.parse("uint8=decoder/conv1_1"), lambda line: None, tmp_path)
    assert len(calls) == 3 and len(list(tmp_path.glob("*.npz"))) == 2


def test_forged_kept_weights_are_compressed_again(tmp_path, monkeypatch):
    """The kept compressed weights are checked where they are read: other shapes, a NaN, a link."""
    source = weights.untrained_source()
    setting = compression.parse("uint8=all")
    calls = []
    apply = compression.apply
    monkeypatch.setattr(compression, "apply", lambda *a, **k: calls.append(1) or apply(*a, **k))
    good = compression.compressed_weights(source, setting, lambda line: None, tmp_path)
    kept, = tmp_path.glob("*.npz")
    forged = dict(good)
    forged["decoder/conv1_1/bias"] = np.array([np.nan, 0, 0], np.float32)
    np.savez(kept, **forged)
    again = compression.compressed_weights(source, setting, lambda line: None, tmp_path)
    assert np.isfinite(again["decoder/conv1_1/bias"]).all() and len(calls) == 2
    forged = {k: v for k, v in good.items() if k != "decoder/conv1_1/kernel"}
    np.savez(kept, **forged)
    compression.compressed_weights(source, setting, lambda line: None, tmp_path)
    assert len(calls) == 3
