"""SANet in TensorFlow (Park & Lee, arXiv 1812.02342), laid out as the original code.

Three parts, each exported as its own TF.js graph so that the browser can reuse an encoded
content or style image and run the strength trade-off without encoding twice:
    encode(image)                 -> relu4_1, relu5_1
    transform(c4, c5, s4, s5)     -> sanet4_1(c4, s4) + up(sanet5_1(c5, s5)), through merge_conv
    decode(features)              -> RGB in [0, 1]
Images are NHWC, RGB in [0, 1], sides multiples of 16 (see pipeline.py for sizing).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from . import architecture as arch

FEATURES = tf.TensorSpec([1, None, None, 512], tf.float32)
# merge_conv's output: fewer channels in a compressed model.
MERGED = tf.TensorSpec([1, None, None, None], tf.float32)
IMAGE = tf.TensorSpec([1, None, None, 3], tf.float32)


def reflect_pad(x, size=1):
    return tf.pad(x, [[0, 0], [size, size], [size, size], [0, 0]], mode="REFLECT")


def upsample(x):
    """Nearest-neighbour x2, as torch's nn.Upsample(scale_factor=2)."""
    return tf.image.resize(x, tf.shape(x)[1:3] * 2, method="nearest")


def mean_variance_norm(x):
    """Per-channel (x - mean) / std over positions, with torch's unbiased variance + eps."""
    mean, var = tf.nn.moments(x, axes=[1, 2], keepdims=True)
    n = tf.cast(tf.shape(x)[1] * tf.shape(x)[2], x.dtype)
    return (x - mean) * tf.math.rsqrt(var * n / (n - 1.0) + arch.MVN_EPS)


class SANet(tf.Module):
    def __init__(self, weights: dict[str, np.ndarray], encoder: str = "vgg16"):
        super().__init__(name="sanet")
        self.encoder = arch.ENCODERS[encoder]
        # Plain names (no "/") keep tf.Module happy; one variable per weight, captured once.
        self.w = {name: tf.Variable(value, trainable=False, name=name.replace("/", "__"))
                  for name, value in weights.items()}

    def conv(self, x, name, padding="zero", relu=True):
        # The scope names the stored weights "<...>/<part>/<conv>/<...>" (per-layer quantization).
        with tf.name_scope(name):
            kernel = self.w[f"{name}/kernel"]
            if kernel.shape[0] == 3 and padding == "reflect":
                x = tf.nn.conv2d(reflect_pad(x), kernel, 1, "VALID")
            else:
                x = tf.nn.conv2d(x, kernel, 1, "SAME")
            x = tf.nn.bias_add(x, self.w[f"{name}/bias"])
            if f"{name}/expand/kernel" in self.w:  # a factored conv: back to its width by a 1x1 conv
                x = tf.nn.bias_add(tf.nn.conv2d(x, self.w[f"{name}/expand/kernel"], 1, "SAME"),
                                   self.w[f"{name}/expand/bias"])
            return tf.nn.relu(x) if relu else x

    def encode_taps(self, image, taps=("conv4_1", "conv5_1")):
        """The relu outputs after the named encoder convs."""
        if self.encoder.preprocessing == "caffe":
            x = image[..., ::-1] * 255.0 - tf.constant(arch.CAFFE_MEAN_BGR)
        else:
            x = image
        out = {}
        for layer in self.encoder.layers:
            if layer == arch.POOL:
                x = tf.nn.max_pool2d(x, 2, 2, "VALID")
            else:
                x = self.conv(x, f"encoder/{layer.name}", self.encoder.padding, layer.relu)
                if layer.name in taps:
                    out[layer.name] = x
        return [out[t] for t in taps]

    @tf.function(input_signature=[IMAGE])
    def encode(self, image):
        relu4_1, relu5_1 = self.encode_taps(image)
        return {"relu4_1": relu4_1, "relu5_1": relu5_1}

    def attention(self, block, content, style):
        """SANet block: softmax(f(norm c) . g(norm s)^T) applied to h(s), then out_conv, plus c."""
        shape = tf.shape(content)

        def project(x, name):  # a 1x1 conv as a matmul over the flattened positions
            with tf.name_scope(f"transform/{block}/{name}"):
                _, _, cin, cout = self.w[f"transform/{block}/{name}/kernel"].shape
                kernel = tf.reshape(self.w[f"transform/{block}/{name}/kernel"], [cin, cout])
                return tf.matmul(tf.reshape(x, [1, -1, cin]), kernel) + self.w[f"transform/{block}/{name}/bias"]

        f = project(mean_variance_norm(content), "f")  # (1, Nc, C)
        g = project(mean_variance_norm(style), "g")  # (1, Ns, C)
        h = project(style, "h")  # (1, Ns, C)
        attended = tf.matmul(tf.nn.softmax(tf.matmul(f, g, transpose_b=True)), h)  # (1, Nc, C)
        return tf.reshape(project(attended, "out_conv"), shape) + content

    def merge_input(self, content4_1, content5_1, style4_1, style5_1):
        """Both attention blocks' outputs at relu4_1's resolution, summed: merge_conv's input."""
        o4 = self.attention("sanet4_1", content4_1, style4_1)
        o5 = self.attention("sanet5_1", content5_1, style5_1)
        return o4 + upsample(o5)

    @tf.function(input_signature=[FEATURES] * 4)
    def transform(self, content4_1, content5_1, style4_1, style5_1):
        merged = self.merge_input(content4_1, content5_1, style4_1, style5_1)
        return {"features": self.conv(merged, "transform/merge_conv", "reflect", relu=False)}

    @tf.function(input_signature=[MERGED])
    def decode(self, features):
        x = features
        for layer in arch.DECODER:
            if layer == arch.UPSAMPLE:
                x = upsample(x)
            else:
                x = self.conv(x, f"decoder/{layer.name}", "reflect", layer.relu)
        return {"image": tf.clip_by_value(x, 0.0, 1.0)}

    def stylize(self, content, style, strength=1.0):
        """The full pass, with the paper's trade-off: strength * T(c, s) + (1 - strength) * T(c, c)."""
        c = self.encode(content)
        s = self.encode(style)
        features = self.transform(c["relu4_1"], c["relu5_1"], s["relu4_1"], s["relu5_1"])["features"]
        if strength < 1.0:
            identity = self.transform(c["relu4_1"], c["relu5_1"], c["relu4_1"], c["relu5_1"])["features"]
            features = strength * features + (1.0 - strength) * identity
        return self.decode(features)["image"]
