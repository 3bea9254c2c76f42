"""The training code: a few CPU iterations on tiny crops, the architecture identical to the
plugin's, weights written in the layout the plugin reads, random sampling, atomic checkpoints,
clear errors; the Debian sources' .rcc reader and licence lookup."""

from __future__ import annotations

import hashlib
import json
import os
import random
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch", reason="the training tests need torch (the test extra installs 2.13.0)")

from helpers import PRESETS, ROOT, SHARED_PAINTINGS, painting  # noqa: E402
from mkdocs_sanet import pipeline, weights  # noqa: E402
from training import evaluate, sources, train  # noqa: E402
from training.data import Crops  # noqa: E402
from training.net import LAMBDA_ID1, LAMBDA_ID2, SANetTorch, style_loss  # noqa: E402


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


@pytest.mark.skipif(not weights.DEFAULT_WEIGHTS.is_file(),
                    reason="no trained default yet: model_assets/sanet-vgg16/weights.npz comes from issue 8's GPU run")
def test_trained_default_moves_a_held_out_photo_towards_the_painting():
    """A regression back to random weights fails: the output's style loss is well below the photo's own."""
    net = SANetTorch("vgg16")
    net.load_plugin_weights(weights.load(weights.resolve("default")))
    content = evaluate.center_crop(PRESETS / "content-cat.jpg", 128)  # scikit-image's chelsea: held out
    style = evaluate.center_crop(painting("wave.jpg"), 128)
    with torch.no_grad():
        s_feats = net.encode(style)
        own = float(style_loss(net.encode(content), s_feats))
        stylized = float(style_loss(net.encode(net.stylize(content, style)), s_feats))
    assert stylized < 0.3 * own, (stylized, own)


def test_recipe_weighs_identity_as_the_original_code():
    """loss = content + 3 style + 50 identity1 (pixels) + 1 identity2 (features)."""
    assert (LAMBDA_ID1, LAMBDA_ID2) == (50.0, 1.0)


def photos_folder(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for photo in PRESETS.glob("content-*.jpg"):  # presets hold photos and the project's own paintings
        (folder / photo.name).write_bytes(photo.read_bytes())
    return folder


def tiny_args(tmp_path, output, *extra):
    painting("Starry.jpg")  # skips with a message when ../shared is absent
    return train.parser().parse_args([
        "--content", str(photos_folder(tmp_path)), "--style", str(SHARED_PAINTINGS), "--output", str(output),
        "--batch", "2", "--resize", "80", "--crop", "64", "--workers", "0", "--device", "cpu",
        "--log-every", "1", *extra])


def test_a_few_cpu_iterations_write_plugin_weights(tmp_path):
    output = tmp_path / "model"
    args = tiny_args(tmp_path, output, "--iterations", "3", "--held-out", "1")
    record = train.train(args)
    assert record["iterations"] == 3 and record["finished"]
    assert record["lambdas"] == {"content": 1.0, "style": 3.0, "identity1": 50.0, "identity2": 1.0}
    assert all(np.isfinite(row["total"]) for row in record["history"])
    assert record["images_per_second"] > 0
    assert len(record["held_out"]["content"]) == 1 and len(record["held_out"]["style"]) == 1
    # The plugin reads what training wrote: float16, under 16 MiB (what comes back from the GPU machine).
    assert (output / "weights.npz").stat().st_size < 16 * 2**20
    source = weights.resolve(str(output))
    assert source.trained and source.encoder == "vgg16"
    loaded = weights.load(source)
    assert loaded["decoder/conv1_1/kernel"].shape == (3, 3, 64, 3)
    assert json.loads((output / "training.json").read_text())["final_losses"]["iteration"] == 3
    assert sorted(p.name for p in output.iterdir()) == ["training.json", "weights.npz"]

    results = evaluate.evaluate([args.content[0] / "content-cat.jpg"], [painting("wave.jpg")], output, size=64)
    assert set(results) == {"untrained", "trained", "content unchanged"}
    assert results["content unchanged"]["content"] == pytest.approx(0.0, abs=1e-6)
    assert all(np.isfinite(v) for row in results.values() for v in row.values())


def test_the_wall_clock_budget_stops_before_the_iterations(tmp_path):
    record = train.train(tiny_args(tmp_path, tmp_path / "model", "--minutes", "0"))
    assert record["iterations"] == 1 and record["finished"]


def test_each_sample_draws_a_random_file(tmp_path):
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    files = []
    for i, colour in enumerate(colours):
        files.append(tmp_path / f"{i}.png")
        Image.new("RGB", (40, 40), colour).save(files[-1])
    crops = Crops(files, resize=40, crop=32)
    random.seed(0)
    drawn = [colours.index(tuple(int(round(v * 255)) for v in crops[i][:, 0, 0].tolist())) for i in range(40)]
    assert drawn != [i % 4 for i in range(40)]  # not the files in a fixed cycle
    assert set(drawn) == {0, 1, 2, 3}
    random.seed(0)
    assert [colours.index(tuple(int(round(v * 255)) for v in crops[0][:, 0, 0].tolist())) for _ in range(40)] \
        == drawn  # the index plays no part: the draw is random


def test_checkpoint_is_atomic(tmp_path, monkeypatch):
    """A write that breaks off leaves the previous weights readable, and no temporary file is read."""
    model = SANetTorch("vgg16")
    model.load_plugin_weights(weights.load(weights.resolve("default")))
    train.checkpoint(tmp_path, model, {"iterations": 1})
    before = hashlib.sha256((tmp_path / "weights.npz").read_bytes()).hexdigest()

    def broken_save(path, arrays, encoder):
        path.write_bytes(b"half a file")
        raise KeyboardInterrupt  # the run is stopped mid-write

    monkeypatch.setattr(weights, "save", broken_save)
    with torch.no_grad():
        model.convs["decoder__conv1_1"].bias += 1
    with pytest.raises(KeyboardInterrupt):
        train.checkpoint(tmp_path, model, {"iterations": 2})
    assert hashlib.sha256((tmp_path / "weights.npz").read_bytes()).hexdigest() == before
    assert json.loads((tmp_path / "training.json").read_text()) == {"iterations": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["training.json", "weights.npz"]
    weights.load(weights.resolve(str(tmp_path)))  # still the complete earlier checkpoint


def test_missing_encoder_file_is_an_error(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "training.train", "--content", str(PRESETS), "--style", str(PRESETS),
         "--output", str(tmp_path / "out"), "--encoder", str(tmp_path / "missing.npz"), "--device", "cpu"],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode != 0
    assert "missing.npz: no such encoder file" in run.stderr
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "out").exists()


def test_gpu_run_needs_the_carried_data(tmp_path):
    run = subprocess.run(["bash", str(ROOT / "training" / "gpu_run.sh")], cwd=tmp_path, capture_output=True,
                         text=True, env={**os.environ, "OUT": str(tmp_path / "out")})
    assert run.returncode == 2
    assert "vgg16_encoder.npz is missing: carry .train" in run.stdout
    assert (tmp_path / "out" / "train.log").is_file()


def rcc_archive(files: dict[str, tuple[bytes, int]]) -> bytes:
    """A Qt resource archive (format 3) holding /dir/NAME for each name: (contents, flags)."""
    names, payload = b"", b""
    name_offsets = {}
    for name in ["dir", *files]:
        name_offsets[name] = len(names)
        names += struct.pack(">HI", len(name), 0) + name.encode("utf-16-be")
    nodes = [struct.pack(">IHII", 0, 2, 1, 1) + b"\0" * 8,  # root: one child, node 1
             struct.pack(">IHII", name_offsets["dir"], 2, len(files), 2) + b"\0" * 8]
    for name, (data, flags) in files.items():
        stored = struct.pack(">I", len(data)) + zlib.compress(data) if flags & 1 else data
        nodes.append(struct.pack(">IHHHI", name_offsets[name], flags, 0, 0, len(payload)) + b"\0" * 8)
        payload += struct.pack(">I", len(stored)) + stored
    tree = b"".join(nodes)
    header = 24
    return (b"qres" + struct.pack(">5I", 3, header, header + len(tree), header + len(tree) + len(payload), 0)
            + tree + payload + names)


def test_rcc_reader_reads_plain_and_zlib_entries():
    archive = rcc_archive({"a.webp": (b"plain bytes", 0), "b.jpg": (b"compressed " * 20, 1)})
    assert dict(sources.read_rcc(archive)) == {"dir/a.webp": b"plain bytes", "dir/b.jpg": b"compressed " * 20}
    with pytest.raises(sources.SourceError, match="not a Qt resource archive"):
        list(sources.read_rcc(b"PK\3\4 not an rcc"))


def test_licence_is_the_last_matching_copyright_stanza(tmp_path):
    copyright = tmp_path / "copyright"
    copyright.write_text(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
        "Files: *\nCopyright: someone\nLicense: GPL-3+\n\n"
        "Files: images/land/*\nCopyright: various\nLicense: public-domain\n Photographs.\n\n"
        "Files:\n images/land/bwerner*\n src/erase/cat.jpg\nCopyright: B. W.\nLicense: CC-BY-SA-3.0\n")
    stanzas = sources.copyright_stanzas(copyright)
    assert sources.licence_of(stanzas, "usr/share/games/x/images/land/beach0.jpg") == "public-domain"
    assert sources.licence_of(stanzas, "usr/share/games/x/images/land/bwerner2.jpg") == "CC-BY-SA-3.0"
    assert sources.licence_of(stanzas, "usr/share/x/rcc/erase.rcc!gcompris/src/erase/cat.webp") == "CC-BY-SA-3.0"
    assert sources.licence_of(stanzas, "usr/share/x/other.png") == "GPL-3+"
    (tmp_path / "free").write_text("This package was debianized by someone.\n")
    assert sources.copyright_stanzas(tmp_path / "free") is None
