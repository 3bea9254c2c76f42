"""The TF model against the NumPy reference, and the sizing rules of the pipeline."""

from __future__ import annotations

import json

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


# -- a model with shallow skips ------------------------------------------------------------------

@pytest.fixture(scope="module")
def skip_folder(tmp_path_factory):
    from helpers import skip_model

    return skip_model(tmp_path_factory.mktemp("skips"))


def test_a_skip_models_graphs_take_and_give_the_skips(skip_folder):
    """encode gives the skips' taps too, transform takes them and gives the skips, decode takes
    them; T(c, c)'s skips are the projected content taps; strength trades off every output."""
    import tensorflow as tf

    from mkdocs_sanet import compression

    source = weights.resolve(str(skip_folder))
    stylizer = pipeline.Stylizer(source, compression.DEFAULT)
    model = stylizer.model
    assert [skip.name for skip in model.skips] == ["skip3_1", "skip2_1"]
    image = tf.constant(np.random.default_rng(0).uniform(0, 1, (1, 64, 96, 3)).astype(np.float32))
    c = model.encode(image)
    assert {k: tuple(v.shape) for k, v in c.items()} == {
        "relu4_1": (1, 8, 12, 512), "relu5_1": (1, 4, 6, 512), "relu3_1": (1, 16, 24, 256), "relu2_1": (1, 32, 48, 128)}
    assert model.transform_inputs == ["content4_1", "content5_1", "style4_1", "style5_1",
                                      "content3_1", "content2_1", "style3_1", "style2_1"]
    identity = model.transformed(c, c)
    widths = source.widths()
    assert {k: tuple(v.shape) for k, v in identity.items()} == {
        "features": (1, 8, 12, widths["transform/merge_conv"]), "skip3_1": (1, 16, 24, widths["transform/skip3_1"]),
        "skip2_1": (1, 32, 48, widths["transform/skip2_1"])}
    # The content's own statistics: AdaIN gives the tap back (up to eps), then the 1x1 conv.
    w = model.w
    projected = tf.nn.conv2d(c["relu3_1"], w["transform/skip3_1/kernel"], 1, "SAME") + w["transform/skip3_1/bias"]
    np.testing.assert_allclose(identity["skip3_1"].numpy(), projected.numpy(), rtol=1e-3, atol=1e-3)
    # strength 0 decodes T(c, c) with its skips; zero skips would decode another picture.
    content = image.numpy()[0]
    style = np.random.default_rng(1).uniform(0, 1, (64, 64, 3)).astype(np.float32)
    zero = stylizer(content, style, strength=0.0, pad_images=False)
    np.testing.assert_allclose(zero, model.decoded(identity).numpy()[0], atol=1e-5)
    without = model.decoded({**identity, "skip3_1": identity["skip3_1"] * 0, "skip2_1": identity["skip2_1"] * 0})
    assert np.abs(model.decoded(identity).numpy() - without.numpy()).mean() > 0.01


def test_a_skip_width_that_is_not_the_decoders_is_one_line(skip_folder, tmp_path, capsys):
    from mkdocs_sanet import cli

    arrays = dict(np.load(skip_folder / "weights.npz"))
    channels = json.loads(str(arrays["meta/channels"]))
    right = channels["transform/skip3_1"]
    channels["transform/skip3_1"] = right + 8
    arrays["meta/channels"] = np.array(json.dumps(channels))
    np.savez(tmp_path / "weights.npz", **arrays)
    with pytest.raises(weights.WeightsError) as error:
        weights.resolve(str(tmp_path))
    assert str(error.value) == (f"{tmp_path / 'weights.npz'}: meta/channels: transform/skip3_1 is {right + 8}: "
                                f"expected the decoder's width there, {right}")
    assert cli.main(["info", "--model", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"mkdocs-sanet: error: {error.value}\n"


def test_info_counts_the_skips(skip_folder, capsys):
    from mkdocs_sanet import cli, compression

    source = weights.resolve(str(skip_folder))
    widths = source.widths()
    assert cli.main(["info", "--model", str(skip_folder)]) == 0
    out = capsys.readouterr().out
    assert f"shallow skip skip3_1: relu3_1 given the painting's mean and std, 1x1 conv to {widths['transform/skip3_1']} ch" in out
    counts = architecture.parameter_counts("vgg16", widths)
    without = {k: v for k, v in widths.items() if "skip" not in k}
    assert counts["transform"] - architecture.parameter_counts("vgg16", without)["transform"] == (
        256 * widths["transform/skip3_1"] + widths["transform/skip3_1"] + 128 * widths["transform/skip2_1"]
        + widths["transform/skip2_1"])
    assert f"transform  {counts['transform']:12,}" in out
    flops = architecture.flops("vgg16", 512, 512, widths, (256, 256))
    assert f"{sum(flops.values()) / 1e9:15.1f}" in out
    assert compression.report(compression.parse("fast"), "vgg16", skips=architecture.model_skips(widths))[
        "channels"] == widths
