"""The training code: a few CPU iterations on tiny crops, the architecture identical to the
plugin's, and weights written in the layout the plugin reads."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the training tests need torch (the test extra installs 2.13.0)")

from conftest import PRESETS, SHARED_PAINTINGS, painting  # noqa: E402
from mkdocs_sanet import pipeline, weights  # noqa: E402
from training import evaluate, train  # noqa: E402
from training.net import SANetTorch  # noqa: E402


def test_torch_model_is_the_plugins_model():
    """Same weights, same picture: the PyTorch network and the exported TF network agree."""
    source = weights.resolve("default")
    loaded = weights.load(source)
    net = SANetTorch("vgg16")
    net.load_plugin_weights(loaded)
    rng = np.random.default_rng(0)
    content = rng.uniform(0, 1, (4, 6, 3)).repeat(16, 0).repeat(16, 1).astype(np.float32)  # 64x96
    style = rng.uniform(0, 1, (6, 3, 3)).repeat(16, 0).repeat(16, 1).astype(np.float32)  # 96x48
    with torch.no_grad():
        expected = net.stylize(torch.from_numpy(content.transpose(2, 0, 1))[None],
                               torch.from_numpy(style.transpose(2, 0, 1))[None])[0].numpy().transpose(1, 2, 0)
    got = pipeline.Stylizer(source)(content, style, pad_images=False)
    assert expected.std() > 0.02
    assert np.abs(got - expected).max() < 2e-3


def test_a_few_cpu_iterations_write_plugin_weights(tmp_path):
    painting("Starry.jpg")  # skips with a message when ../shared is absent
    output = tmp_path / "model"
    args = train.parser().parse_args([
        "--content", str(PRESETS), "--style", str(SHARED_PAINTINGS), "--output", str(output),
        "--iterations", "3", "--batch", "2", "--resize", "80", "--crop", "64", "--held-out", "1",
        "--workers", "0", "--device", "cpu", "--log-every", "1"])
    # Presets hold photos and the project's own paintings: train on the photos only.
    args.content = [tmp_path / "photos"]
    args.content[0].mkdir()
    for photo in PRESETS.glob("content-*.jpg"):
        (args.content[0] / photo.name).write_bytes(photo.read_bytes())
    record = train.train(args)
    assert record["iterations"] == 3
    assert all(np.isfinite(row["total"]) for row in record["history"])
    assert len(record["held_out"]["content"]) == 1 and len(record["held_out"]["style"]) == 1
    # The plugin reads what training wrote.
    source = weights.resolve(str(output))
    assert source.trained and source.encoder == "vgg16"
    loaded = weights.load(source)
    assert loaded["decoder/conv1_1/kernel"].shape == (3, 3, 64, 3)
    assert json.loads((output / "training.json").read_text())["final_losses"]["iteration"] == 3

    results = evaluate.evaluate([args.content[0] / "content-cat.jpg"], [painting("wave.jpg")], output, size=64)
    assert set(results) == {"untrained", "trained", "content unchanged"}
    assert results["content unchanged"]["content"] == pytest.approx(0.0, abs=1e-6)
    assert all(np.isfinite(v) for row in results.values() for v in row.values())
