"""SANet in TensorFlow (Park & Lee, arXiv 1812.02342), laid out as the original code.

Three parts, each exported as its own TF.js graph so that the browser can reuse an encoded
content or style image and run the strength trade-off without encoding twice:
    encode(image)                 -> relu4_1, relu5_1
    transform(c4, c5, s4, s5)     -> features: sanet4_1(c4, s4) + up(sanet5_1(c5, s5)), through merge_conv
    decode(features)              -> RGB in [0, 1]
A model with shallow skips (architecture.SKIPS, its weights hold "transform/skip3_1" ...) has more
inputs and outputs, each named after its tap:
    encode(image)                 -> relu4_1, relu5_1, relu3_1, relu2_1
    transform(c4, c5, s4, s5, content3_1, content2_1, style3_1, style2_1)
                                  -> features, skip3_1 = 1x1(adain(c3, s3)), skip2_1 = 1x1(adain(c2, s2))
    decode(features, skip3_1, skip2_1): each skip added right after the decoder's upsample that
                                  reaches its resolution (1/4, 1/2)
Every output of transform is linear in its own way through the strength and mixing steps, so
those steps (pipeline.py, static/sanet.js) run over all of them alike.
Images are NHWC, RGB in [0, 1], sides multiples of 16 (see pipeline.py for sizing).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from . import architecture as arch

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


def tap_number(tap: str) -> str:
    """"conv3_1" -> "3_1": the suffix of the inputs and outputs that carry the tap's relu output."""
    return tap.removeprefix("conv")


def adain(content, style):
    """The content's channels given the style's means and standard deviations (training/net.py's
    adain: torch's unbiased variance + eps, as mean_variance_norm)."""
    mean, var = tf.nn.moments(style, axes=[1, 2], keepdims=True)
    n = tf.cast(tf.shape(style)[1] * tf.shape(style)[2], style.dtype)
    return mean_variance_norm(content) * tf.sqrt(var * n / (n - 1.0) + arch.MVN_EPS) + mean


class SANet(tf.Module):
    def __init__(self, weights: dict[str, np.ndarray], encoder: str = "vgg16"):
        super().__init__(name="sanet")
        self.encoder = arch.ENCODERS[encoder]
        # Plain names (no "/") keep tf.Module happy; one variable per weight, captured once.
        self.w = {name: tf.Variable(value, trainable=False, name=name.replace("/", "__"))
                  for name, value in weights.items()}
        # The shallow skips the weights hold, and the encoder taps: the attention's, then the skips'.
        self.skips = tuple(skip for skip in arch.SKIPS if f"transform/{skip.name}/kernel" in weights)
        self.taps = ("conv4_1", "conv5_1") + tuple(skip.tap for skip in self.skips)
        numbers = [tap_number(tap) for tap in self.taps]
        # The graphs' signatures, named as the browser feeds them (static/sanet.js).
        self.transform_inputs = ([f"content{n}" for n in numbers[:2]] + [f"style{n}" for n in numbers[:2]]
                                 + [f"content{n}" for n in numbers[2:]] + [f"style{n}" for n in numbers[2:]])
        spec = lambda name, channels=None: tf.TensorSpec([1, None, None, channels], tf.float32, name=name)  # noqa: E731
        self.encode = tf.function(self._encode, input_signature=[IMAGE])
        self.transform = tf.function(self._transform, input_signature=[
            spec(name, 512 if name[-3:] in ("4_1", "5_1") else None) for name in self.transform_inputs])
        self.decode = tf.function(self._decode, input_signature=[spec("features")] + [
            spec(skip.name) for skip in self.skips])

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

    def _encode(self, image):
        return {f"relu{tap_number(tap)}": x for tap, x in zip(self.taps, self.encode_taps(image, self.taps))}

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

    def _transform(self, *inputs):
        x = dict(zip(self.transform_inputs, inputs))
        merged = self.merge_input(x["content4_1"], x["content5_1"], x["style4_1"], x["style5_1"])
        out = {"features": self.conv(merged, "transform/merge_conv", "reflect", relu=False)}
        for skip in self.skips:
            n = tap_number(skip.tap)
            out[skip.name] = self.conv(adain(x[f"content{n}"], x[f"style{n}"]), f"transform/{skip.name}", relu=False)
        return out

    def _decode(self, features, *skips):
        added = {skip.upsample: x for skip, x in zip(self.skips, skips)}
        x, upsampled = features, 0
        for layer in arch.DECODER:
            if layer == arch.UPSAMPLE:
                x = upsample(x)
                upsampled += 1
                if upsampled in added:
                    x = x + added[upsampled]
            else:
                x = self.conv(x, f"decoder/{layer.name}", "reflect", layer.relu)
        return {"image": tf.clip_by_value(x, 0.0, 1.0)}

    def transformed(self, content: dict, style: dict) -> dict:
        """T(content, style): encode's outputs in, every output of transform out, by name."""
        both = {f"content{k[4:]}": v for k, v in content.items()} | {f"style{k[4:]}": v for k, v in style.items()}
        return self.transform(*[both[name] for name in self.transform_inputs])

    def decoded(self, outputs: dict):
        """The picture of transform's outputs (or a blend of them), (1, H, W, 3)."""
        return self.decode(outputs["features"], *[outputs[skip.name] for skip in self.skips])["image"]

    def stylize(self, content, style, strength=1.0):
        """The full pass, with the paper's trade-off: strength * T(c, s) + (1 - strength) * T(c, c),
        over every output of transform."""
        c = self.encode(content)
        s = self.encode(style)
        outputs = self.transformed(c, s)
        if strength < 1.0:
            identity = self.transformed(c, c)
            outputs = {k: strength * v + (1.0 - strength) * identity[k] for k, v in outputs.items()}
        return self.decoded(outputs)
