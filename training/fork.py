"""Fork tests: copies of the run's state with a change of recipe, trained side by side on the same
batches (the crops' RNG is in the state), compared on the held-out losses, and the best one
adopted as the run (training/README.md has every fork test so far):

    python -m training.fork new FORK [--set lambdas.content=400 ...]   # a copy of training/state/
    nice -n 19 python -m training.train --state FORK --minutes 40 --eval-minutes 0 --threads 1
    python -m training.fork eval FORK [FORK ...]       # held-out content / style, last and average
                                 [--served]            # ... of the pictures as served (the colour stage)
    python -m training.fork adopt FORK --what "..." --why "..."        # FORK becomes the run

`--set` takes a dotted key of the state's meta (`lambdas.identity2`, `lr`, `identity_samples`,
`schedule.0.until_samples`, `color_match`: the losses on the pictures as served) that exists,
and a JSON value of the same kind. `adopt` takes only a fork of the run as it is now (the run's
sessions are the fork's first), and records the change in the state's `meta.changes`, which the
model card lists.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

from training.train import DATA, ENCODER_FILE, STATE, STATE_FILE, write_atomically


class ForkError(ValueError):
    pass


def read_arrays(state: Path) -> tuple[dict, dict[str, np.ndarray]]:
    path = state / STATE_FILE
    if not path.is_file():
        raise ForkError(f"{path}: no state (a fork is made with: python -m training.fork new FORK)")
    with np.load(path, allow_pickle=False) as data:
        if "meta" not in data.files:
            raise ForkError(f"{path}: no meta in it: not a training state")
        return json.loads(str(data["meta"])), {k: data[k] for k in data.files if k != "meta"}


def write_arrays(state: Path, meta: dict, arrays: dict[str, np.ndarray]) -> None:
    write_atomically(state / STATE_FILE, lambda tmp: np.savez(tmp, meta=np.array(json.dumps(meta)), **arrays))


def set_key(meta: dict, assignment: str) -> str:
    """`a.b.0.c=VALUE` in META, where that key exists and VALUE (JSON) is of its kind."""
    key, sep, text = assignment.partition("=")
    if not sep:
        raise ForkError(f"--set {assignment}: expected KEY=VALUE, e.g. lambdas.content=400")
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise ForkError(f"--set {assignment}: the value is not JSON (a number, true, null, a quoted string)") from None
    *parents, last = key.split(".")
    node = meta
    try:
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        index = int(last) if isinstance(node, list) else last
        old = node[index]
    except (KeyError, IndexError, ValueError, TypeError):
        raise ForkError(f"--set {assignment}: the state's meta has no key {key}") from None
    numbers = (int, float)
    same_kind = (isinstance(old, numbers) and isinstance(value, numbers) and not isinstance(value, bool)) or (
        old is None or value is None or type(old) is type(value))
    if not same_kind:
        raise ForkError(f"--set {assignment}: {key} is {json.dumps(old)}; expected a value of that kind")
    node[index] = value
    return f"{key} {json.dumps(value)} (was {json.dumps(old)})"


def new(fork: Path, source: Path, assignments: list[str]) -> list[str]:
    from training.train import new_meta

    meta, arrays = read_arrays(source)
    for key, value in new_meta(0).items():  # a key newer than the run's state: its default
        meta.setdefault(key, value)
    done = [set_key(meta, a) for a in assignments]
    if fork.exists():
        raise ForkError(f"{fork}: already there; a fork is a new folder")
    fork.mkdir(parents=True)
    shutil.copyfile(source / ENCODER_FILE, fork / ENCODER_FILE)
    write_arrays(fork, meta, arrays)
    return done


def evaluate_fork(fork: Path, vgg16: Path | None, layers: bool = False, color_match: float = 0.0) -> dict:
    from training import evaluate, train

    s = train.load_state(fork)
    row = {"samples": s.meta["samples"],
           "last": evaluate.served_losses(s.model, vgg16, layers=layers, color_match=color_match)}
    if s.has_average():
        row["average"] = evaluate.served_losses(s.averaged_model(), vgg16, color_match=color_match)
    return row


def adopt(fork: Path, state: Path, what: str, why: str) -> dict:
    """FORK's state replaces STATE's, with the change recorded; only a fork of STATE as it is now."""
    fork_meta, arrays = read_arrays(fork)
    meta, _ = read_arrays(state)
    if fork_meta.get("sessions", [])[:len(meta["sessions"])] != meta["sessions"] or fork_meta["samples"] < meta["samples"]:
        raise ForkError(f"{fork}: not a fork of {state} as it is now (the run trained on after the fork was made, "
                        "or the fork comes from another state); nothing was changed")
    # The run's record, which may have grown since the fork was made (a fork of a fork adopted
    # after its parent), and this change.
    fork_meta["changes"] = meta.get("changes", []) + [{"samples": meta["samples"], "what": what, "why": why}]
    write_arrays(state, fork_meta, arrays)
    return fork_meta


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.fork", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    n = sub.add_parser("new", help="a copy of the state with its meta changed")
    n.add_argument("fork", type=Path)
    n.add_argument("--from", dest="source", type=Path, default=STATE)
    n.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE")
    e = sub.add_parser("eval", help="held-out content / style of forks, the last iteration and the average")
    e.add_argument("forks", type=Path, nargs="+")
    e.add_argument("--vgg16", type=Path, default=DATA / "vgg16_encoder.npz")
    e.add_argument("--layers", action="store_true", help="then the last iterate's style loss layer by layer")
    e.add_argument("--served", action="store_true",
                   help="the pictures as served (evaluate.COLOR_MATCH of the painting's colours), not the network's alone")
    a = sub.add_parser("adopt", help="a fork becomes the run, the change in meta.changes")
    a.add_argument("fork", type=Path)
    a.add_argument("--state", type=Path, default=STATE)
    a.add_argument("--what", required=True, help="the change, e.g. 'content weight 400 (was 1000)'")
    a.add_argument("--why", required=True, help="the forks' numbers")
    args = p.parse_args(argv)
    try:
        if args.command == "new":
            done = new(args.fork, args.source, args.assignments)
            print(f"{args.fork}: a fork of {args.source}" + "".join(f"; {d}" for d in done))
        elif args.command == "eval":
            from training import evaluate

            print("| fork | samples | content | style | average: content | style |\n|---|---:|---:|---:|---:|---:|")
            rows = {}
            for fork in args.forks:
                r = rows[fork] = evaluate_fork(fork, args.vgg16 if args.vgg16.is_file() else None, args.layers,
                                               evaluate.COLOR_MATCH if args.served else 0.0)
                avg = r.get("average")
                tail = f"{avg['content']:.3f} | {avg['style']:.1f}" if avg else "- | -"
                print(f"| {fork.name} | {r['samples']:,} | {r['last']['content']:.3f} | {r['last']['style']:.1f} | {tail} |",
                      flush=True)
            if args.layers:
                print("\nthe last iterate's style loss, mean / standard deviation terms:\n\n"
                      "| fork | relu1_1 | relu2_1 | relu3_1 | relu4_1 | relu5_1 |\n|---|---:|---:|---:|---:|---:|")
                for fork, r in rows.items():
                    cells = " | ".join(f"{m:.1f} / {sd:.1f}" for m, sd in r["last"]["style_layers"])
                    print(f"| {fork.name} | {cells} |")
        else:
            meta = adopt(args.fork, args.state, args.what, args.why)
            print(f"{args.state / STATE_FILE}: now {args.fork}'s run, {meta['samples']:,} samples; "
                  f"change recorded: {args.what}")
    except ForkError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
