"""The original SANet code's module structure (GlebSBrykin/SANET: vgg_normalised, decoder,
Transform), written out for the tests: checkpoints in the original layout with random weights,
and the PyTorch forward pass that the converted model must reproduce."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


def _conv(cin, cout):
    return [nn.ReflectionPad2d((1, 1, 1, 1)), nn.Conv2d(cin, cout, (3, 3)), nn.ReLU()]


def _pool():
    return nn.MaxPool2d((2, 2), (2, 2), (0, 0), ceil_mode=True)


def vgg_normalised() -> nn.Sequential:
    """VGG19 as one Sequential: a 1x1 conv first, reflection padding, ceil-mode pools, to relu5_4."""
    layers = [nn.Conv2d(3, 3, (1, 1))]
    layers += _conv(3, 64) + _conv(64, 64) + [_pool()]
    layers += _conv(64, 128) + _conv(128, 128) + [_pool()]
    layers += _conv(128, 256) + _conv(256, 256) + _conv(256, 256) + _conv(256, 256) + [_pool()]
    layers += _conv(256, 512) + _conv(512, 512) + _conv(512, 512) + _conv(512, 512) + [_pool()]
    layers += _conv(512, 512) + _conv(512, 512) + _conv(512, 512) + _conv(512, 512)
    return nn.Sequential(*layers)


def decoder() -> nn.Sequential:
    up = nn.Upsample(scale_factor=2, mode="nearest")
    layers = _conv(512, 256) + [up] + _conv(256, 256) + _conv(256, 256) + _conv(256, 256) + _conv(256, 128)
    layers += [nn.Upsample(scale_factor=2, mode="nearest")] + _conv(128, 128) + _conv(128, 64)
    layers += [nn.Upsample(scale_factor=2, mode="nearest")] + _conv(64, 64)
    layers += [nn.ReflectionPad2d((1, 1, 1, 1)), nn.Conv2d(64, 3, (3, 3))]
    return nn.Sequential(*layers)


def calc_mean_std(feat, eps=1e-5):
    n, c = feat.size()[:2]
    var = feat.view(n, c, -1).var(dim=2) + eps
    return feat.view(n, c, -1).mean(dim=2).view(n, c, 1, 1), var.sqrt().view(n, c, 1, 1)


def mean_variance_norm(feat):
    mean, std = calc_mean_std(feat)
    return (feat - mean.expand(feat.size())) / std.expand(feat.size())


class SANet(nn.Module):
    def __init__(self, in_planes):
        super().__init__()
        self.f = nn.Conv2d(in_planes, in_planes, (1, 1))
        self.g = nn.Conv2d(in_planes, in_planes, (1, 1))
        self.h = nn.Conv2d(in_planes, in_planes, (1, 1))
        self.sm = nn.Softmax(dim=-1)
        self.out_conv = nn.Conv2d(in_planes, in_planes, (1, 1))

    def forward(self, content, style):
        F = self.f(mean_variance_norm(content))
        G = self.g(mean_variance_norm(style))
        H = self.h(style)
        b, c, h, w = F.size()
        F = F.view(b, -1, w * h).permute(0, 2, 1)
        b, c, h, w = G.size()
        G = G.view(b, -1, w * h)
        S = self.sm(torch.bmm(F, G))
        b, c, h, w = H.size()
        H = H.view(b, -1, w * h)
        O = torch.bmm(H, S.permute(0, 2, 1))
        b, c, h, w = content.size()
        O = self.out_conv(O.view(b, c, h, w))
        return O + content


class Transform(nn.Module):
    def __init__(self, in_planes=512):
        super().__init__()
        self.sanet4_1 = SANet(in_planes)
        self.sanet5_1 = SANet(in_planes)
        self.upsample5_1 = nn.Upsample(scale_factor=2, mode="nearest")
        self.merge_conv_pad = nn.ReflectionPad2d((1, 1, 1, 1))
        self.merge_conv = nn.Conv2d(in_planes, in_planes, (3, 3))

    def forward(self, content4_1, style4_1, content5_1, style5_1):
        return self.merge_conv(self.merge_conv_pad(
            self.sanet4_1(content4_1, style4_1) + self.upsample5_1(self.sanet5_1(content5_1, style5_1))))


class Original(nn.Module):
    """The original test script's pass: enc_1..enc_4 to relu4_1, enc_5 to relu5_1."""

    def __init__(self):
        super().__init__()
        self.vgg, self.decoder, self.transform = vgg_normalised(), decoder(), Transform()

    @torch.no_grad()
    def forward(self, content, style, raw=False):
        enc_4, enc_5 = self.vgg[:31], self.vgg[31:44]
        c4, s4 = enc_4(content), enc_4(style)
        c5, s5 = enc_5(c4), enc_5(s4)
        out = self.decoder(self.transform(c4, s4, c5, s5))
        return out if raw else out.clamp(0, 1)


def random_original(seed: int, calibration: tuple[torch.Tensor, torch.Tensor]) -> Original:
    """Random weights that still give mid-grey pictures with structure (not a saturated canvas)."""
    torch.manual_seed(seed)
    model = Original()
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            fan_in = module.in_channels * module.kernel_size[0] * module.kernel_size[1]
            nn.init.normal_(module.weight, std=(2.0 / fan_in) ** 0.5)
            nn.init.normal_(module.bias, std=0.01)
    for block in (model.transform.sanet4_1, model.transform.sanet5_1):
        block.out_conv.weight.data *= 0.1
    last = model.decoder[-1]
    raw = model(*calibration, raw=True)
    last.weight.data *= 0.15 / float(raw.std())
    last.bias.data += 0.5 - float(model(*calibration, raw=True).mean())
    return model


def save_checkpoints(model: Original, folder: Path, safetensors: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    parts = {"vgg_normalised": model.vgg, "decoder_iter_500000": model.decoder,
             "transformer_iter_500000": model.transform}
    for name, module in parts.items():
        if safetensors:
            from safetensors.torch import save_file

            save_file({k: v.contiguous() for k, v in module.state_dict().items()}, folder / f"{name}.safetensors")
        else:
            torch.save(module.state_dict(), folder / f"{name}.pth")
    return folder
