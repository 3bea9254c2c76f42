"""The TF model against the NumPy reference, and the sizing rules of the pipeline."""

from __future__ import annotations

import numpy as np
import pytest

import numpy_sanet
from mkdocs_sanet import architecture, pipeline, weights


@pytest.fixture(scope="module")
def default_source():
    """The full-width VGG16 model (seeded attention and decoder): what the TF layers are checked on."""
    return weights.untrained_source()


@pytest.fixture(scope="module")
def stylizer(default_source):
    return pipeline.Stylizer(default_source)


@pytest.fixture(scope="module")
def pair():
    rng = np.random.default_rng(1)
    # Different sizes, not square, smooth enough to look like pictures to VGG.
    content = rng.uniform(0, 1, (6, 8, 3)).repeat(8, 0).repeat(8, 1)[:48, :64]
    style = rng.uniform(0, 1, (10, 5, 3)).repeat(8, 0).repeat(8, 1)[:80, :32]
    return content.astype(np.float32), style.astype(np.float32)


@pytest.mark.parametrize("strength", [1.0, 0.3])
def test_tf_matches_numpy_reference(stylizer, default_source, pair, strength):
    content, style = pair
    w = {k: v.astype(np.float64) for k, v in weights.load(default_source).items()}
    expected = numpy_sanet.stylize(w, content.astype(np.float64), style.astype(np.float64), strength=strength)
    got = stylizer(content, style, strength, pad_images=False)
    assert got.shape == (48, 64, 3)
    assert expected.std() > 0.02, "the reference output is flat: the comparison would mean nothing"
    assert np.abs(got - expected).max() < 2e-3


def test_encoder_taps_match_numpy(stylizer, default_source, pair):
    import tensorflow as tf

    content, _ = pair
    w = {k: v.astype(np.float64) for k, v in weights.load(default_source).items()}
    r4, r5 = numpy_sanet.encode(w, content.astype(np.float64))
    out = stylizer.model.encode(tf.constant(content[None]))
    np.testing.assert_allclose(out["relu4_1"].numpy()[0], r4, rtol=1e-3, atol=1e-2)
    np.testing.assert_allclose(out["relu5_1"].numpy()[0], r5, rtol=1e-3, atol=1e-2)


def test_padding_keeps_content_size_and_aspect(stylizer):
    content = np.random.default_rng(2).uniform(0, 1, (37, 70, 3)).astype(np.float32)
    style = np.random.default_rng(3).uniform(0, 1, (50, 33, 3)).astype(np.float32)
    assert stylizer(content, style).shape == (37, 70, 3)


def test_sizes():
    assert pipeline.fit_size(1000, 500, 512) == (512, 256)
    assert pipeline.fit_size(300, 200, 512) == (300, 200)
    assert pipeline.fit_size(300, 200, 0) == (300, 200)
    assert pipeline.fit_size(100, 150, 128) == (85, 128)  # 85.33: as Math.round in the browser
    assert pipeline.fit_size(3, 5, 2) == (1, 2)  # 1.2 -> 1, 2
    assert pipeline.padded_size(37, 70) == (48, 80)
    assert pipeline.padded_size(16, 64) == (32, 64)


def test_small_or_unaligned_images_are_refused(stylizer):
    tiny = np.zeros((20, 64, 3), np.float32)
    with pytest.raises(pipeline.ImageSizeError, match="content is 64x20: each side must be at least 32 px"):
        stylizer(tiny, np.zeros((64, 64, 3), np.float32))
    with pytest.raises(pipeline.ImageSizeError, match="style is 40x64: .*multiple of 16"):
        stylizer(np.zeros((64, 64, 3), np.float32), np.zeros((64, 40, 3), np.float32), pad_images=False)


def test_parameter_counts_match_the_weights(default_source):
    loaded = weights.load(default_source)
    counts = architecture.parameter_counts("vgg16")
    assert sum(v.size for v in loaded.values()) == sum(counts.values())
    assert counts["transform"] == 8 * (512 * 512 + 512) + 9 * 512 * 512 + 512


def test_the_default_model_holds_the_served_widths():
    """The shipped default (trained at fast's widths): every weight of that architecture, and no other."""
    source = weights.resolve("default")
    if not source.trained:
        pytest.skip("no trained default in this checkout")
    loaded = weights.load(source)
    counts = architecture.parameter_counts("vgg16", source.widths())
    assert sum(v.size for v in loaded.values()) == sum(counts.values())
    assert loaded["transform/sanet4_1/f/kernel"].shape == (1, 1, 512, 128)
