"""The training's files read where they are read: a corrupt or hostile state or encoder file gives
one line naming it and what was expected; a state from before the shallow skips resumes with
them at zero (the same pictures); a ship is whole or nothing, and never ships NaN."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch", reason="the training tests need torch (the test extra installs 2.13.0)")

from helpers import PRESETS, ROOT  # noqa: E402
from test_training import run_tiny, tiny_data, tiny_state  # noqa: E402
from training import evaluate, train  # noqa: E402


def arrays_of(path):
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def truncated(path):
    path.write_bytes(path.read_bytes()[:1000])


def emptied(path):
    np.savez(path)


def deep_meta(path):
    np.savez(path, **{**arrays_of(path), "meta": np.array("[" * 100_000 + "]" * 100_000)})


def list_meta(path):
    np.savez(path, **{**arrays_of(path), "meta": np.array("[1, 2]")})


def keyless(path):
    np.savez(path, **{k: v for k, v in arrays_of(path).items() if not k.endswith("conv1_1/kernel")})


def wrong_shape(path):
    arrays = arrays_of(path)
    name = next(k for k in arrays if k.endswith("conv1_1/kernel"))
    arrays[name] = arrays[name][..., :1]
    np.savez(path, **arrays)


def pickled(path):
    np.savez(path, meta=np.array([{"a": 1}], dtype=object))


def huge_header(path):
    """A member whose header declares 8 TiB."""
    import zipfile

    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2199023255552,), }"
    header = header + " " * (63 - len(header) % 64) + "\n"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("meta.npy", b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode())


# case -> (the damage, what the line says for the state, for the encoder)
CASES = {
    "truncated": (truncated, "not a readable .npz weights file", "not a readable .npz weights file"),
    "empty": (emptied, "no meta (a JSON text): expected a training state",
              "no encoder/conv1_1/kernel: expected the served encoder's weights"),
    "nested meta": (deep_meta, "meta is not JSON", None),
    "a list as meta": (list_meta, "meta.iteration is missing or not a whole number", None),
    "keyless": (keyless, "no weights/decoder/conv1_1/kernel: expected the trained weights",
                "no encoder/conv1_1/kernel: expected the served encoder's weights"),
    "wrong shape": (wrong_shape, "weights/decoder/conv1_1/kernel is float32 (3, 3, ",
                    "encoder/conv1_1/kernel is float16 (3, 3, "),
    "pickled": (pickled, "arrays of object are refused", "arrays of object are refused"),
    "8 TiB header": (huge_header, "elements and", "elements and"),
}


@pytest.fixture(scope="module")
def a_state(tmp_path_factory, request):
    """A real state of two tiny iterations, made once."""
    monkeypatch = pytest.MonkeyPatch()
    request.addfinalizer(monkeypatch.undo)
    folder = tmp_path_factory.mktemp("a-state")
    state = tiny_state(folder)
    run_tiny(monkeypatch, state, tiny_data(folder), 2)
    return state


@pytest.mark.parametrize("case,file", [(case, file) for file in (train.STATE_FILE, train.ENCODER_FILE) for case in CASES
                                       if CASES[case][1 if file == train.STATE_FILE else 2]])
def test_a_damaged_state_or_encoder_is_one_line_naming_it(tmp_path, a_state, case, file):
    state = tmp_path / "state"
    state.mkdir()
    for name in (train.STATE_FILE, train.ENCODER_FILE):
        (state / name).write_bytes((a_state / name).read_bytes())
    mutate, for_state, for_encoder = CASES[case]
    message = for_state if file == train.STATE_FILE else for_encoder
    mutate(state / file)
    run = subprocess.run([sys.executable, "-m", "training.ship", "--state", str(state), "--target",
                          str(tmp_path / "shipped"), "--size", "64", "--vgg16", ""],
                         cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 2, run.stderr[-2000:]
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in run.stderr, run.stderr[-2000:]
    assert lines[0].startswith(f"error: {state / file}: ") and message in lines[0]
    assert not (tmp_path / "shipped").exists()


def test_a_state_from_before_the_skips_resumes_with_them_at_zero(tmp_path, a_state):
    """The skips' weights missing (a state from before them): zero, so the pictures are the old ones."""
    state = tmp_path / "old"
    state.mkdir()
    (state / train.ENCODER_FILE).write_bytes((a_state / train.ENCODER_FILE).read_bytes())
    arrays = arrays_of(a_state / train.STATE_FILE)
    np.savez(state / train.STATE_FILE, **{k: v for k, v in arrays.items() if "/transform/skip" not in f"/{k}"})
    s = train.load_state(state)
    assert s.model.skips and all(
        not p.abs().sum() for n, p in s.model.named_parameters() if "skip" in n)
    from training.net import SANetTorch

    old = SANetTorch("vgg16", train.served_channels(skips=False))
    weights = {**train.read_encoder(state), **s.model.plugin_weights(("transform", "decoder"), np.float32)}
    old.load_plugin_weights({k: v for k, v in weights.items() if "skip" not in k})
    content, style = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        assert torch.equal(s.model.eval().stylize(content, style), old.eval().stylize(content, style))


def ship_args(state, target, tmp_path):
    return ["--state", str(state), "--target", str(target), "--size", "64", "--vgg16", "",
            "--sources", str(tmp_path / "none.json"), "--force"]


def test_a_ship_is_whole_or_nothing(tmp_path, a_state, monkeypatch):
    """A failure after the weights are computed leaves every shipped file as it was; a state with
    a NaN weight is refused; nothing half-written stays behind."""
    from training import ship

    monkeypatch.setattr(evaluate, "skimage_photos", lambda: {"cat": Image.open(PRESETS / "content-cat.jpg")})
    target = tmp_path / "shipped"
    assert ship.main(ship_args(a_state, target, tmp_path)) == 0
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    assert set(before) == {"weights.npz", "README.md", "evaluation.json", "training.json", "grid.jpg"}

    def broken_grid(*args, **kwargs):
        class Grid:
            def save(self, path, **options):
                Image.new("RGB", (8, 8)).save(path, **options)
                raise OSError(28, "No space left on device")
        return Grid()

    monkeypatch.setattr(evaluate, "grid", broken_grid)
    with pytest.raises(OSError, match="No space left"):
        ship.main(ship_args(a_state, target, tmp_path))
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    monkeypatch.undo()
    monkeypatch.setattr(evaluate, "skimage_photos", lambda: {"cat": Image.open(PRESETS / "content-cat.jpg")})

    nan = tmp_path / "nan"
    nan.mkdir()
    (nan / train.ENCODER_FILE).write_bytes((a_state / train.ENCODER_FILE).read_bytes())
    arrays = arrays_of(a_state / train.STATE_FILE)
    arrays["weights/decoder/conv1_1/bias"] = np.full_like(arrays["weights/decoder/conv1_1/bias"], np.nan)
    np.savez(nan / train.STATE_FILE, **arrays)
    assert ship.main(ship_args(nan, target, tmp_path)) == 2
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before


def test_a_shipped_evaluation_that_is_not_a_ships_is_refused(tmp_path, a_state, monkeypatch, capsys):
    from training import ship

    monkeypatch.setattr(evaluate, "skimage_photos", lambda: {"cat": Image.open(PRESETS / "content-cat.jpg")})
    target = tmp_path / "shipped"
    target.mkdir()
    (target / "evaluation.json").write_text(json.dumps({"trained": [1, 2]}))
    assert ship.main(ship_args(a_state, target, tmp_path)[:-1]) == 2
    assert "evaluation.json: expected the shipped evaluation" in capsys.readouterr().err
    assert [p.name for p in target.iterdir()] == ["evaluation.json"]


def test_a_ship_over_a_shipped_model_needs_the_judges_preference(tmp_path, a_state, monkeypatch, capsys):
    """Losses are a diagnostic: over a shipped model, a candidate ships where the blind judge preferred
    it (training.judge score --json against the shipped folder), and the card says the verdicts."""
    from training import ship

    monkeypatch.setattr(evaluate, "skimage_photos", lambda: {"cat": Image.open(PRESETS / "content-cat.jpg")})
    target = tmp_path / "shipped"
    args = ship_args(a_state, target, tmp_path)[:-1]  # without --force
    assert ship.main(args) == 0  # nothing shipped yet
    before = {p.name: p.read_bytes() for p in target.iterdir()}

    def verdict(name, wins, other=str(target)):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"/tmp/candidate": {"wins": wins, "pairs": 25, "mean_score": 3.1},
                                    other: {"wins": 25 - wins, "pairs": 25, "mean_score": 2.2}}))
        return ["--judge", str(path)]

    assert ship.main(args) == 1
    assert "no judge's result against the shipped model" in capsys.readouterr().out
    assert ship.main(args + verdict("lost", 12)) == 1
    assert "the judge did not prefer it" in capsys.readouterr().out
    assert ship.main(args + verdict("magenta-only", 20, "magenta")) == 1
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    (tmp_path / "bad.json").write_text(json.dumps({"a": {"wins": 1}}))
    assert ship.main(args + ["--judge", str(tmp_path / "bad.json")]) == 2
    assert "bad.json: expected two models, each with wins, pairs and mean_score" in capsys.readouterr().err

    assert ship.main(args + verdict("won", 12.5) + verdict("magenta", 4, "magenta")) == 0
    card = (target / "README.md").read_text()
    assert "| the model shipped before | 12.5 of 25 | 3.10 | 2.20 |" in card
    assert "| Magenta | 4 of 25 | 3.10 | 2.20 |" in card
    assert json.loads((target / "evaluation.json").read_text())["judged"][0]["against"] == "shipped"


def test_pick_ships_the_weights_asked_for(tmp_path, a_state, monkeypatch, capsys):
    """--pick last / averaged: those weights, whatever the losses say (after a change of loss
    network the real VGG16's losses no longer say which is better); averaged without an average
    yet: one line, nothing written."""
    from training import checkpoint, ship

    monkeypatch.setattr(evaluate, "skimage_photos", lambda: {"cat": Image.open(PRESETS / "content-cat.jpg")})
    target = tmp_path / "shipped"
    assert ship.main(ship_args(a_state, target, tmp_path) + ["--pick", "averaged"]) == 2
    assert "--pick averaged: " in capsys.readouterr().err and not target.exists()
    monkeypatch.setattr(checkpoint, "MIN_AVERAGED", 1)
    s = train.load_state(a_state)
    expected = {"last": s.model.plugin_weights(("decoder",), np.float16),
                "averaged": s.averaged_model().plugin_weights(("decoder",), np.float16)}
    assert any(not np.array_equal(expected["last"][k], expected["averaged"][k]) for k in expected["last"])
    for pick in ("last", "averaged"):
        assert ship.main(ship_args(a_state, target, tmp_path) + ["--pick", pick]) == 0
        assert f"candidate: trained ({'last iteration' if pick == 'last' else 'averaged'})" in capsys.readouterr().out
        shipped = np.load(target / "weights.npz")
        for k, v in expected[pick].items():
            np.testing.assert_array_equal(shipped[k], v, err_msg=f"{pick}: {k}")
