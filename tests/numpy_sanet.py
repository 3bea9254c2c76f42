"""SANet in plain NumPy, written from the paper and the original PyTorch code (not from
mkdocs_sanet.model), as the reference the TF model is checked against."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mkdocs_sanet import architecture as arch


def conv(x, kernel, bias, padding):
    """x: (H, W, Cin); kernel: (k, k, Cin, Cout), stride 1, output the size of the input."""
    k = kernel.shape[0]
    if k > 1:
        mode = "reflect" if padding == "reflect" else "constant"
        x = np.pad(x, ((k // 2, k // 2), (k // 2, k // 2), (0, 0)), mode=mode)
    windows = sliding_window_view(x, (k, k), axis=(0, 1))  # (H, W, Cin, k, k)
    return np.einsum("hwcij,ijco->hwo", windows, kernel, optimize=True) + bias


def relu(x):
    return np.maximum(x, 0)


def max_pool(x):
    h, w, c = x.shape
    return x[: h // 2 * 2, : w // 2 * 2].reshape(h // 2, 2, w // 2, 2, c).max(axis=(1, 3))


def upsample(x):
    return x.repeat(2, axis=0).repeat(2, axis=1)


def mean_variance_norm(x):
    flat = x.reshape(-1, x.shape[-1])
    std = np.sqrt(flat.var(axis=0, ddof=1) + arch.MVN_EPS)  # torch's unbiased variance
    return (x - flat.mean(axis=0)) / std


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def encode(w, image, encoder="vgg16"):
    enc = arch.ENCODERS[encoder]
    x = image[..., ::-1] * 255.0 - np.array(arch.CAFFE_MEAN_BGR) if enc.preprocessing == "caffe" else image
    taps = {}
    for layer in enc.layers:
        if layer == arch.POOL:
            x = max_pool(x)
            continue
        x = conv(x, w[f"encoder/{layer.name}/kernel"], w[f"encoder/{layer.name}/bias"], enc.padding)
        x = relu(x) if layer.relu else x
        taps[layer.name] = x
    return taps["conv4_1"], taps["conv5_1"]


def sanet_block(w, block, content, style):
    def one_by_one(x, name):
        return conv(x, w[f"transform/{block}/{name}/kernel"], w[f"transform/{block}/{name}/bias"], "zero")

    c = content.shape[-1]
    f = one_by_one(mean_variance_norm(content), "f").reshape(-1, c)
    g = one_by_one(mean_variance_norm(style), "g").reshape(-1, c)
    h = one_by_one(style, "h").reshape(-1, c)
    attended = (softmax(f @ g.T) @ h).reshape(content.shape)
    return one_by_one(attended, "out_conv") + content


def stylize(w, content, style, encoder="vgg16", strength=1.0):
    c4, c5 = encode(w, content, encoder)
    s4, s5 = encode(w, style, encoder)

    def transform(s4, s5):
        merged = sanet_block(w, "sanet4_1", c4, s4) + upsample(sanet_block(w, "sanet5_1", c5, s5))
        return conv(merged, w["transform/merge_conv/kernel"], w["transform/merge_conv/bias"], "reflect")

    x = transform(s4, s5)
    if strength < 1:
        x = strength * x + (1 - strength) * transform(c4, c5)
    for layer in arch.DECODER:
        if layer == arch.UPSAMPLE:
            x = upsample(x)
        else:
            x = conv(x, w[f"decoder/{layer.name}/kernel"], w[f"decoder/{layer.name}/bias"], "reflect")
            x = relu(x) if layer.relu else x
    return np.clip(x, 0, 1)
