"""SANet in PyTorch for training, layer for layer the model the plugin exports for `default`
(mkdocs_sanet/model.py): VGG16 encoder with Caffe preprocessing and zero padding, SANet blocks
at relu4_1 and relu5_1, reflection-padded merge conv and decoder, nearest upsampling, torch's
unbiased variance in the mean-variance normalisation. Weights go in and out in the plugin's
layout (names from mkdocs_sanet.architecture, HWIO kernels).

`channels` gives the widths of a compressed model (architecture.Channels, as
compression.channels computes them): the served default is `fast`'s, with the factored encoder
("<conv>/rank", then a 1x1 "<conv>/expand"), rank-128 attention, a narrow merge conv and decoder."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mkdocs_sanet import architecture as arch
from mkdocs_sanet.pipeline import COLOR_VARIANCE_FLOOR


def calc_mean_std(feat, eps=arch.MVN_EPS):
    n, c = feat.shape[:2]
    var = feat.reshape(n, c, -1).var(dim=2) + eps  # unbiased, as the original code
    return feat.reshape(n, c, -1).mean(dim=2).reshape(n, c, 1, 1), var.sqrt().reshape(n, c, 1, 1)


def mean_variance_norm(feat):
    mean, std = calc_mean_std(feat)
    return (feat - mean) / std


def adain(content, style):
    """The content's channels given the style's means and standard deviations (the shallow skips)."""
    mean, std = calc_mean_std(style)
    return mean_variance_norm(content) * std + mean


def key(name: str) -> str:  # ModuleDict keys cannot hold "/" or "."
    return name.replace("/", "__")


class SANetTorch(nn.Module):
    def __init__(self, encoder: str = "vgg16", channels: arch.Channels | None = None):
        super().__init__()
        self.encoder_spec = arch.ENCODERS[encoder]
        self.encoder_name, self.channels = encoder, dict(channels or {})
        self.skips = arch.model_skips(self.channels)
        self.convs = nn.ModuleDict()
        for part, convs in arch.part_convs(encoder, channels).items():
            for conv in convs:
                self.convs[key(f"{part}/{conv.name}")] = nn.Conv2d(conv.cin, conv.cout, conv.size)
        for name, p in self.named_parameters():
            if name.startswith("convs.encoder__"):
                p.requires_grad = False  # the encoder stays frozen

    def conv(self, x, name, padding):
        layer = self.convs[key(name)]
        if layer.kernel_size[0] == 3:
            if padding == "reflect":
                x = layer(F.pad(x, (1, 1, 1, 1), mode="reflect"))
            else:
                x = F.conv2d(x, layer.weight, layer.bias, padding=1)  # zero padding inside the conv
        else:
            x = layer(x)
        expand = self.convs[key(name + "/expand")] if key(name + "/expand") in self.convs else None
        return x if expand is None else expand(x)  # a factored conv: back to its width by a 1x1 conv

    def encode(self, image):
        """relu1_1 .. relu5_1 of an NCHW RGB image in [0, 1]."""
        if self.encoder_spec.preprocessing == "caffe":
            mean = torch.tensor(arch.CAFFE_MEAN_BGR, device=image.device).reshape(1, 3, 1, 1)
            x = image.flip(1) * 255.0 - mean
        else:
            x = image
        taps = []
        for layer in self.encoder_spec.layers:
            if layer == arch.POOL:
                x = F.max_pool2d(x, 2, 2)
                continue
            x = self.conv(x, f"encoder/{layer.name}", self.encoder_spec.padding)
            x = F.relu(x) if layer.relu else x
            if layer.name in arch.STYLE_TAPS:
                taps.append(x)
        return taps

    def attention(self, block, content, style):
        def one_by_one(x, name):
            return self.convs[key(f"transform/{block}/{name}")](x)

        n, c, h, w = content.shape
        f = one_by_one(mean_variance_norm(content), "f").flatten(2).transpose(1, 2)  # (N, Nc, C)
        g = one_by_one(mean_variance_norm(style), "g").flatten(2)  # (N, C, Ns)
        v = one_by_one(style, "h").flatten(2).transpose(1, 2)  # (N, Ns, C)
        attended = torch.bmm(torch.softmax(torch.bmm(f, g), dim=-1), v)  # (N, Nc, C)
        return one_by_one(attended.transpose(1, 2).reshape(n, -1, h, w), "out_conv") + content

    def transform(self, c, s):
        """c, s: the content's and the style's relu1_1 .. relu5_1. Returns the decoder's inputs: the
        merge conv's output, then each skip's (the content's tap with the style's statistics, 1x1 conv)."""
        merged = self.attention("sanet4_1", c[3], s[3]) + F.interpolate(
            self.attention("sanet5_1", c[4], s[4]), scale_factor=2, mode="nearest")
        out = [self.conv(merged, "transform/merge_conv", "reflect")]
        for skip in self.skips:
            tap = arch.STYLE_TAPS.index(skip.tap)
            out.append(self.convs[key(f"transform/{skip.name}")](adain(c[tap], s[tap])))
        return out

    def decode(self, features):
        x, upsampled = features[0], 0
        added = {skip.upsample: f for skip, f in zip(self.skips, features[1:])}
        for layer in arch.DECODER:
            if layer == arch.UPSAMPLE:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
                upsampled += 1
                if upsampled in added:
                    x = x + added[upsampled]
            else:
                x = self.conv(x, f"decoder/{layer.name}", "reflect")
                x = F.relu(x) if layer.relu else x
        return x

    def stylize(self, content, style):
        c, s = self.encode(content), self.encode(style)
        return self.decode(self.transform(c, s)).clamp(0, 1)

    # -- weights in the plugin's layout ---------------------------------------------------

    def load_plugin_weights(self, weights: dict[str, np.ndarray]) -> None:
        state = {}
        for name in self.convs:
            plugin = name.replace("__", "/")
            state[f"convs.{name}.weight"] = torch.from_numpy(
                np.ascontiguousarray(np.asarray(weights[f"{plugin}/kernel"], np.float32).transpose(3, 2, 0, 1)))
            state[f"convs.{name}.bias"] = torch.from_numpy(np.asarray(weights[f"{plugin}/bias"], np.float32))
        self.load_state_dict(state)

    def plugin_weights(self, parts=("transform", "decoder"), dtype=np.float16) -> dict[str, np.ndarray]:
        out = {}
        for name, layer in self.convs.items():
            plugin = name.replace("__", "/")
            if plugin.split("/")[0] in parts:
                out[f"{plugin}/kernel"] = layer.weight.detach().cpu().numpy().transpose(2, 3, 1, 0).astype(dtype)
                out[f"{plugin}/bias"] = layer.bias.detach().cpu().numpy().astype(dtype)
        return out


def match_colors(picture, target, share: float):
    """pipeline.match_colors on NCHW batches, differentiably: each picture's RGB mean and standard
    deviation moved `share` of the way to its target picture's (no clipping: the losses see the
    decoder's own range, as they do without the stage)."""
    mean, var = picture.mean((2, 3), keepdim=True), picture.var((2, 3), unbiased=False, keepdim=True)
    t_mean, t_std = target.mean((2, 3), keepdim=True), target.std((2, 3), unbiased=False, keepdim=True)
    matched = (picture - mean) / torch.sqrt(var.clamp_min(COLOR_VARIANCE_FLOOR)) * t_std + t_mean
    return (1.0 - share) * picture + share * matched


def content_loss(generated, content):
    """On the mean-variance-normalised relu4_1 and relu5_1."""
    return sum(F.mse_loss(mean_variance_norm(g), mean_variance_norm(c))
               for g, c in zip(generated[3:], content[3:]))


def style_terms(generated, style) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The style loss's terms, layer by layer (relu1_1 .. relu5_1): (means, standard deviations)."""
    terms = []
    for g, s in zip(generated, style):
        g_mean, g_std = calc_mean_std(g)
        s_mean, s_std = calc_mean_std(s)
        terms.append((F.mse_loss(g_mean, s_mean), F.mse_loss(g_std, s_std)))
    return terms


def style_loss(generated, style, layer_weights=None):
    """On the means and standard deviations of relu1_1 .. relu5_1, each layer's terms weighed by
    `layer_weights` (None: 1 each, as the paper)."""
    total = 0.0
    weights = layer_weights or [1.0] * len(generated)
    for weight, (mean_term, std_term) in zip(weights, style_terms(generated, style)):
        total = total + weight * (mean_term + std_term)
    return total


# As the original code, style weighs 3, identity 1 (pixels) 50, identity 2 (features) 1; content
# 1000, not 1: the original's 1 is for AdaIN's normalised VGG19, and on this unnormalised VGG16
# the style and identity-2 terms are so large that content at 1 had no gradient to speak of
# (training/README.md, "The weights of the terms"). A run takes the weights in its state.
LAMBDA_C, LAMBDA_S, LAMBDA_ID1, LAMBDA_ID2 = 1000.0, 3.0, 50.0, 1.0


def losses(model: SANetTorch, content, style, lambdas: dict[str, float] | None = None,
           identity_samples: int | None = None, color_match: float = 0.0,
           loss_net=None, style_layers=None) -> dict[str, torch.Tensor]:
    """The paper's four terms and their weighted sum (`lambdas` by term name; default the LAMBDA_*
    constants; a run takes those in its state). The three pictures the decoder makes (the
    stylized one and the two identities) go through one transform, one decode and one encode
    as a batch: the same sums as three passes, in larger (faster) convolutions.
    `identity_samples` k < batch: the identity terms on the first k pairs only (the same
    expectation, since the pairs are random; 2k instead of 2n of the decoder's pictures); k = 0:
    none (a worker's share of a batch without identity pairs: the terms are 0). `color_match`:
    the losses on the pictures as served with that share of the painting's colours (each
    decoded picture matched to the picture it takes its style from: match_colors). `loss_net`:
    the network whose relu1_1 .. relu5_1 the losses compare (training.lossnet); None: the
    model's own encoder. `style_layers`: the style loss's weight of each layer (style_loss)."""
    n = content.shape[0]
    k = n if identity_samples is None else max(0, min(n, int(identity_samples)))
    with torch.no_grad():
        inputs = model.encode(torch.cat([content, style]))
        feats = inputs if loss_net is None else loss_net(torch.cat([content, style]))
    c_in, s_in = [f[:n] for f in inputs], [f[n:] for f in inputs]
    c_feats, s_feats = [f[:n] for f in feats], [f[n:] for f in feats]
    # The decoder's three pictures' content and style sides: (c, s), (c, c), (s, s).
    decoded = model.decode(model.transform([torch.cat([c, c[:k], s[:k]]) for c, s in zip(c_in, s_in)],
                                           [torch.cat([s, c[:k], s[:k]]) for c, s in zip(c_in, s_in)]))
    if color_match:
        decoded = match_colors(decoded, torch.cat([style, content[:k], style[:k]]), color_match)
    out_feats = (model.encode if loss_net is None else loss_net)(decoded)
    g_feats = [f[:n] for f in out_feats]
    f_cc, f_ss = [f[n:n + k] for f in out_feats], [f[n + k:] for f in out_feats]
    i_cc, i_ss = decoded[n:n + k], decoded[n + k:]
    if k:
        identity1 = F.mse_loss(i_cc, content[:k]) + F.mse_loss(i_ss, style[:k])
        identity2 = sum(F.mse_loss(a, b[:k]) for a, b in zip(f_cc, c_feats)) + sum(
            F.mse_loss(a, b[:k]) for a, b in zip(f_ss, s_feats))
    else:
        identity1 = identity2 = decoded.new_zeros(())
    out = {"content": content_loss(g_feats, c_feats), "style": style_loss(g_feats, s_feats, style_layers),
           "identity1": identity1, "identity2": identity2}
    weights = lambdas or {"content": LAMBDA_C, "style": LAMBDA_S, "identity1": LAMBDA_ID1, "identity2": LAMBDA_ID2}
    out["total"] = sum(weights[name] * out[name] for name in ("content", "style", "identity1", "identity2"))
    return out
