"""The loss network that is not the served encoder (training/lossnet.py): its file checked where it
is read, the stlpips layout read in VGG16's order, the blurred downsampling, and the run's losses
computed on it while the model's inputs stay the served encoder's features."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers import PRESETS  # noqa: E402
from training import evaluate, lossnet, train  # noqa: E402
from training.net import losses, style_loss, style_terms  # noqa: E402
from test_training import random_loss_network, run_tiny, tiny_data, tiny_state  # noqa: E402


@pytest.fixture
def network_file(tmp_path) -> Path:
    return random_loss_network(tmp_path / lossnet.FILE)


def stlpips_layout(arrays: dict[str, np.ndarray]) -> bytes:
    """A state dict laid out as stlpips-pytorch's vgg_shift_tolerant.pth: slices of a Sequential
    (conv, relu, ..., max-pool, blur filter, conv, ...), the blur filters 1 channel in, then
    the LPIPS heads; conv5_2 and conv5_3 present."""
    state, index = {}, 0
    convs = [n for n in lossnet.NAMES] + ["conv5_2", "conv5_3"]
    for name in convs:
        block = int(name[4]) - 1
        if name.endswith("_1") and block:
            index += 1  # the max-pool
            state[f"net.slice{block + 1}.{index}.filt"] = torch.ones(lossnet.WIDTHS[block - 1], 1, 3, 3) / 9
            index += 1
        if name in lossnet.NAMES:
            w, b = torch.from_numpy(arrays[f"{name}/weight"]), torch.from_numpy(arrays[f"{name}/bias"])
        else:
            w, b = torch.zeros(512, 512, 3, 3), torch.zeros(512)
        state[f"net.slice{block + 1}.{index}.weight"], state[f"net.slice{block + 1}.{index}.bias"] = w, b
        index += 2  # the conv and its relu
    state["scaling_layer.shift"] = torch.from_numpy(arrays["shift"]).reshape(1, 3, 1, 1)
    state["scaling_layer.scale"] = torch.from_numpy(arrays["scale"]).reshape(1, 3, 1, 1)
    state["lin0.model.1.weight"] = torch.ones(1, 64, 1, 1)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def test_the_stlpips_file_is_read_in_vgg16_order(tmp_path):
    """Convolutions ordered by their index in the Sequential (slice2.6 after slice1.2, not as
    text sorts them), the blur filters and the heads left out."""
    arrays = {k: v.astype(np.float32) for k, v in np.load(random_loss_network(tmp_path / "n.npz", 1)).items()}
    converted = lossnet.convert(stlpips_layout(arrays))
    assert set(converted) == set(lossnet.SHAPES)
    for name, value in arrays.items():
        np.testing.assert_array_equal(converted[name], value, err_msg=name)


def test_taps_at_each_scale_and_the_blurred_downsampling(network_file):
    net = lossnet.load(network_file)
    taps = net(torch.rand(2, 3, 64, 48))
    # Each downsampling: max over 2x2 at stride 1 (one less), padding 2 a side, 3x3 at stride 2.
    assert [tuple(t.shape) for t in taps] == [(2, 64, 64, 48), (2, 128, 33, 25), (2, 256, 17, 13),
                                              (2, 512, 9, 7), (2, 512, 5, 4)]
    assert not any(p.requires_grad for p in net.parameters())
    flat = torch.full((1, 3, 16, 16), 2.5)
    np.testing.assert_allclose(net.downsample(flat).numpy(), 2.5, rtol=1e-6)  # a normalised blur
    # A one-pixel shift moves relu2_1's picture less than a plain stride-2 max-pool would.
    picture = torch.rand(1, 3, 64, 64)
    moved = torch.roll(picture, 1, dims=3)
    x, y = net.downsample(picture), net.downsample(moved)
    a, b = torch.nn.functional.max_pool2d(picture, 2), torch.nn.functional.max_pool2d(moved, 2)
    assert float((x[..., 4:-4] - y[..., 4:-4]).abs().mean()) < 0.7 * float((a[..., 2:-2] - b[..., 2:-2]).abs().mean())


@pytest.mark.parametrize("case, expected", [
    ("missing", "no such file; make it with: python -m training.lossnet"),
    ("not npz", "not a readable .npz"),
    ("wrong shape", "conv3_1/weight is float16 (256, 3, 3, 3); expected float (256, 128, 3, 3)"),
    ("nan", "conv1_1/bias holds a non-finite number"),
    ("missing key", "scale is missing"),
])
def test_a_damaged_file_is_one_line_naming_it(tmp_path, network_file, case, expected):
    path = tmp_path / "damaged.npz"
    arrays = {k: v for k, v in np.load(network_file).items()}
    if case == "not npz":
        path.write_bytes(b"PK\x03\x04 not really")
    elif case == "wrong shape":
        arrays["conv3_1/weight"] = np.zeros((256, 3, 3, 3), np.float16)
    elif case == "nan":
        arrays["conv1_1/bias"][3] = np.nan
    elif case == "missing key":
        del arrays["scale"]
    if case not in ("missing", "not npz"):
        np.savez(path, **arrays)
    with pytest.raises(lossnet.LossNetworkError) as error:
        lossnet.read(path)
    message = str(error.value)
    assert message.startswith(str(path)) and expected in message and "\n" not in message


def test_style_layers_weigh_each_layers_terms():
    model = train.build_model(train.STATE)
    content = evaluate.center_crop(PRESETS / "content-cat.jpg", 32)
    style = evaluate.center_crop(PRESETS / "style-mosaic.jpg", 32)
    with torch.no_grad():
        g, s = model.encode(model.stylize(content, style)), model.encode(style)
        terms = [float(a + b) for a, b in style_terms(g, s)]
        assert float(style_loss(g, s)) == pytest.approx(sum(terms), rel=1e-5)
        assert float(style_loss(g, s, [1.0] * 5)) == pytest.approx(sum(terms), rel=1e-5)
        weights = [0.0, 2.0, 0.0, 0.0, 10.0]
        assert float(style_loss(g, s, weights)) == pytest.approx(2 * terms[1] + 10 * terms[4], rel=1e-5)


def test_the_losses_on_another_network_keep_the_models_inputs(network_file):
    """loss_net: content, style and identity 2 on its features; the decoder's pictures (and so
    identity 1, in pixels) are those of the served encoder's features, as without it."""
    model = train.build_model(train.STATE)
    content = torch.cat([evaluate.center_crop(PRESETS / n, 32) for n in ("content-cat.jpg", "content-coffee.jpg")])
    style = torch.cat([evaluate.center_crop(PRESETS / n, 32) for n in ("style-mosaic.jpg", "style-swirls.jpg")])
    net = lossnet.load(network_file)
    with torch.no_grad():
        own = losses(model, content, style)
        same = losses(model, content, style, loss_net=model.encode)
        other = losses(model, content, style, loss_net=net)
    for name in own:
        assert float(same[name]) == pytest.approx(float(own[name]), rel=1e-6), name
    assert float(other["identity1"]) == pytest.approx(float(own["identity1"]), rel=1e-6)
    for name in ("content", "style", "identity2"):
        assert float(other[name]) != pytest.approx(float(own[name]), rel=1e-2), name


def set_meta(state: Path, **changes) -> None:
    from training import fork

    meta, arrays = fork.read_arrays(state)
    meta.update(changes)
    fork.write_arrays(state, meta, arrays)


def test_a_run_trains_on_the_loss_network_its_state_names(tmp_path, monkeypatch, network_file):
    data = tiny_data(tmp_path)
    state = tiny_state(tmp_path)
    run_tiny(monkeypatch, state, data, 1)
    assert train.load_state(state).meta["loss_network"] == "served"
    set_meta(state, loss_network="stvgg16", style_layers=[1.0, 2.0, 3.0, 4.0, 0.5])
    with pytest.raises(train.TrainingError, match=r"stvgg16\.npz: no such file; make it with: python -m training.lossnet"):
        run_tiny(monkeypatch, state, data, 2)
    (data / lossnet.FILE).write_bytes(network_file.read_bytes())
    s = run_tiny(monkeypatch, state, data, 2)
    assert s.meta["iteration"] == 2 and isinstance(s.loss_net, lossnet.ShiftTolerantVGG16)
    row = s.meta["history"][-1]
    assert all(np.isfinite(row[k]) for k in ("content", "style", "identity1", "identity2", "total"))


@pytest.mark.parametrize("changes, expected", [
    ({"loss_network": "vgg19"}, 'meta.loss_network is "vgg19"; expected one of served, stvgg16'),
    ({"style_layers": [1, 2, 3]}, "meta.style_layers is [1, 2, 3]; expected 5 numbers at least 0"),
    ({"style_layers": [1, 2, 3, 4, -1]}, "expected 5 numbers at least 0"),
])
def test_a_recipe_the_trainer_cannot_run_is_one_line(tmp_path, monkeypatch, changes, expected):
    data = tiny_data(tmp_path)
    state = tiny_state(tmp_path)
    run_tiny(monkeypatch, state, data, 1)
    set_meta(state, **changes)
    with pytest.raises(train.TrainingError) as error:
        run_tiny(monkeypatch, state, data, 2)
    assert expected in str(error.value) and "\n" not in str(error.value)
    assert json.dumps(changes[next(iter(changes))]) in str(error.value)


def test_the_model_card_names_the_loss_network_and_its_licence():
    assert evaluate.loss_network_text({}) == "losses on the served encoder's features"
    text = evaluate.loss_network_text({"loss_network": "stvgg16", "style_layers": [136, 277, 951, 83, 0.66]})
    assert "shift-tolerant VGG16 of stlpips-pytorch 0.0.2 (BSD-2-Clause" in text
    assert "the model's inputs on the served encoder's features" in text
    assert "relu1_1 .. relu5_1 weighed 136, 277, 951, 83, 0.66" in text
