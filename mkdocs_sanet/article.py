"""HTML of the explainer tags: figures and rows, the architecture SVG and the model card drawn
from the model in use, and the grid of build-time results."""

from __future__ import annotations

import html
from dataclasses import dataclass

from . import architecture as arch

e = html.escape
WIDTHS = {"1/3": "third", "1/2": "half", "2/3": "two-thirds", "full": "full"}


def figure(src: str, caption: str, width: str, alt: str) -> str:
    return (f'<figure class="sanet-figure sanet-figure--{WIDTHS[width]}">'
            f'<a class="sanet-figure__zoom" href="{e(src)}" title="Larger view">'
            f'<img src="{e(src)}" alt="{e(alt)}" loading="lazy" decoding="async"></a>'
            f'<figcaption>{e(caption)}</figcaption></figure>')


def row_start() -> str:
    return '<div class="sanet-row">'


def row_end() -> str:
    return "</div>"


def _millions(count: int) -> str:
    return f"{count / 1e6:.2f} M"


@dataclass
class _Box:
    x: int
    y: int
    w: int
    h: int
    title: str
    lines: tuple[str, ...] = ()
    kind: str = "part"

    def svg(self) -> str:
        text = [f'<text x="{self.x + self.w / 2}" y="{self.y + 18}" class="t">{e(self.title)}</text>']
        text += [f'<text x="{self.x + self.w / 2}" y="{self.y + 34 + 14 * i}" class="s">{e(line)}</text>'
                 for i, line in enumerate(self.lines)]
        return (f'<rect x="{self.x}" y="{self.y}" width="{self.w}" height="{self.h}" rx="6" class="{self.kind}"/>'
                + "".join(text))


def _arrow(x1, y1, x2, y2) -> str:
    return f'<path d="M{x1},{y1} L{x2},{y2}" class="a" marker-end="url(#sanet-arrow)"/>'


def _encoder_lines(encoder: str, widths: arch.Channels) -> list[str]:
    """One line per encoder conv that the compression changed: its rank or its kept channels."""
    lines = []
    for layer in arch.ENCODERS[encoder].layers:
        if not isinstance(layer, arch.Conv):
            continue
        name = f"encoder/{layer.name}"
        if f"{name}/rank" in widths:
            lines.append(f"{layer.name} rank {widths[name + '/rank']}/{widths.get(name, layer.cout)}")
        elif name in widths:
            lines.append(f"{layer.name} {widths[name]}/{layer.cout} ch")
    return lines


def _decoder_widths(convs: list[arch.Conv]) -> str:
    """The decoder's output widths from 1/8 scale up, each once: "256 → 128 → 64 ch"."""
    layers = {conv.name.removesuffix("/expand"): conv.cout for conv in convs}  # a factored conv: its 1x1's
    widths: list[int] = []
    for width in list(layers.values())[:-1]:  # not the RGB output
        if not widths or widths[-1] != width:
            widths.append(width)
    return " → ".join(map(str, widths)) + " ch"


def _skips_line(skips: tuple[arch.Skip, ...], widths: arch.Channels) -> str:
    """"relu3_1, relu2_1 → 96, 48 ch": a model's shallow skips, their taps and widths."""
    return (", ".join(f"relu{skip.tap[4:]}" for skip in skips) + " → "
            + ", ".join(str(widths[f"transform/{skip.name}"]) for skip in skips) + " ch")


def architecture_svg(encoder: str, model_name: str, size: int = 512, compression: str = "none",
                     skips: tuple[arch.Skip, ...] = ()) -> str:
    """The model as a diagram: parts, feature shapes for a size x size input, parameters per part;
    with a compression setting (the option's text), the compressed model's widths, ranks and counts;
    the model's shallow skips (architecture.model_skips of its weights' channels) where it has them."""
    from . import compression as compression_mod

    setting = compression_mod.parse(compression)
    widths = compression_mod.channels(setting, encoder, skips)
    enc = arch.ENCODERS[encoder]
    counts = arch.parameter_counts(encoder, widths)
    shapes = arch.feature_shapes(encoder, size, size, widths)
    part_convs = arch.part_convs(encoder, widths)
    table = arch.conv_table(encoder, widths)
    r4, r5 = shapes["conv4_1"], shapes["conv5_1"]
    convs = len([layer for layer in enc.layers if isinstance(layer, arch.Conv)])
    style = min(size, setting.style_max_size or size)
    name = "VGG16" if encoder == "vgg16" else "VGG19-normalised"
    rank = table["transform/sanet4_1/f"].cout
    attention = "1×1 f g h out" if rank == table["transform/sanet4_1/f"].cin else f"rank {rank}"
    boxes = [
        _Box(10, 30, 110, 50, "content", (f"{size}×{size}×3",), "io"),
        _Box(10, 190, 110, 50, "style", (f"{style}×{style}×3",) + (("shrunk",) if style < size else ()), "io"),
        _Box(160, 20, 150, 230, f"encoder: {name}", (f"{convs} convs to relu5_1", *_encoder_lines(encoder, widths),
                                                       "frozen, shared", f"{_millions(counts['encoder'])} parameters"),
             "enc"),
        _Box(350, 30, 130, 50, "relu4_1", (f"{r4[0]}×{r4[1]}×{r4[2]}",), "feat"),
        _Box(350, 190, 130, 50, "relu5_1", (f"{r5[0]}×{r5[1]}×{r5[2]}",), "feat"),
        _Box(520, 30, 130, 50, "SANet 4_1", (f"attention, {attention}",), "tr"),
        _Box(520, 190, 130, 50, "SANet 5_1", ("attention, then ↑×2",), "tr"),
        _Box(520, 110, 130, 50, "add + merge", (f"3×3 conv, {table['transform/merge_conv'].cout} ch",), "tr"),
        _Box(690, 90, 130, 90, "decoder", ("9 convs, 3 ↑×2", _decoder_widths(part_convs["decoder"]),
                                           f"{_millions(counts['decoder'])} parameters"), "dec"),
        _Box(860, 110, 110, 50, "output", (f"{size}×{size}×3",), "io"),
    ]
    if skips:  # below the decoder, into it
        boxes.append(_Box(690, 200, 130, 66, "shallow skips", ("AdaIN, 1×1 conv", _skips_line(skips, widths),
                                                                "added after ↑×2"), "tr"))
    arrows = [
        _arrow(120, 55, 158, 55), _arrow(120, 215, 158, 215),
        _arrow(310, 55, 348, 55), _arrow(310, 215, 348, 215),
        _arrow(480, 55, 518, 55), _arrow(480, 215, 518, 215),
        _arrow(585, 80, 585, 108), _arrow(585, 190, 585, 162),
        _arrow(650, 135, 688, 135), _arrow(820, 135, 858, 135),
    ] + ([_arrow(755, 200, 755, 182)] if skips else [])
    preset = compression.strip()
    named = preset if preset in compression_mod.PRESETS else None
    how = "" if setting.is_none else (f", compression {named}" if named else ", compressed")
    label = (f'<text x="585" y="285" class="s">transform: {_millions(counts["transform"])} parameters</text>'
             f'<text x="490" y="12" class="s">{e(model_name)}{e(how)}: {sum(counts.values()):,} '
             'parameters in all</text>')
    if setting.is_none:
        compressed = ""
    else:
        what = f"the compression preset {named}" if named else f"the compression setting {preset}"
        stored = f"; uint8 weights in the {', '.join(setting.uint8)}" if setting.uint8 else ""
        compressed = (f" Compressed by {what}: factored convs show their rank / width, "
                      f"pruned ones their kept / original channels{stored}.")
    if skips:
        compressed += (" Shallow skips: the photo's " + " and ".join(f"relu{skip.tap[4:]}" for skip in skips)
                       + " given the painting's channel means and deviations, each through a 1×1 conv into "
                       "the decoder where it reaches that resolution.")
    return (
        # A phone scrolls the drawing sideways at a readable size (sanet-article.css) instead of shrinking it.
        f'<figure class="sanet-architecture"><div class="sanet-architecture__scroll" tabindex="0" '
        f'aria-label="The architecture drawing (scrolls sideways)"><svg viewBox="0 0 980 300" role="img" '
        f'aria-label="SANet architecture of {e(model_name)}" xmlns="http://www.w3.org/2000/svg">'
        '<defs><marker id="sanet-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="m"/></marker></defs>'
        '<rect x="505" y="18" width="160" height="250" rx="8" class="group"/>'
        + "".join(box.svg() for box in boxes) + "".join(arrows) + label +
        f'</svg></div><figcaption>The model this site serves, drawn from its definition: feature shapes for a '
        f'{size}×{size} input; encoder {counts["encoder"]:,}, transform {counts["transform"]:,}, decoder '
        f'{counts["decoder"]:,} parameters.{e(compressed)}</figcaption></figure>')


def model_card(encoder: str, manifest: dict, model_name: str) -> str:
    # A compressed model: its widths, and its style image shrunk (manifest of export.py).
    widths = manifest.get("compression", {}).get("channels")
    style = min(512, manifest.get("style_max_size") or 512)
    counts = arch.parameter_counts(encoder, widths)
    flops = arch.flops(encoder, 512, 512, widths, (style, style))
    graph_of = {graph["part"]: graph for graph in manifest["graphs"].values()}
    rows = "".join(
        f"<tr><td>{part}</td><td>{counts[part]:,}</td><td>{graph_of[part]['bytes'] / 1e6:.1f} MB</td>"
        f"<td>{flops[part] / 1e9:.1f}</td></tr>" for part in arch.PARTS)
    total = (f"<tr><th>total</th><th>{sum(counts.values()):,}</th><th>{manifest['bytes'] / 1e6:.1f} MB</th>"
             f"<th>{sum(flops.values()) / 1e9:.1f}</th></tr>")
    status = "trained" if manifest.get("trained") else "untrained (random attention and decoder weights)"
    skips = arch.model_skips(widths)
    if skips:
        status += f"; shallow skips {_skips_line(skips, widths)}"
    if manifest.get("color_match"):
        status += f", then {manifest['color_match']:g} of the way to the painting's colours"
    uint8 = set(manifest.get("compression", {}).get("uint8") or ())
    convs = set(arch.conv_table(encoder, widths))
    if uint8 >= convs:
        storage = "uint8"
    elif uint8:
        storage = f"uint8 ({len(uint8 & convs)} of {len(convs)} convs), {manifest['quantization']} elsewhere"
    else:
        storage = manifest["quantization"]
    return (
        f'<div class="sanet-model-card"><table><caption>{e(model_name)}: {e(arch.ENCODERS[encoder].description)}; '
        f'{status}; weights stored as {e(storage)}; TensorFlow {e(manifest["tensorflow"])}, '
        f'tensorflowjs {e(manifest["tensorflowjs"])}</caption>'
        f"<thead><tr><th>part</th><th>parameters</th><th>download</th><th>GFLOPs, 512×512 pair</th></tr></thead>"
        f"<tbody>{rows}</tbody><tfoot>{total}</tfoot></table></div>")


def results_grid(contents: list[tuple[str, str]], styles: list[tuple[str, str]], cells: list[list[str]],
                 caption: str) -> str:
    """contents/styles: (label, url); cells[i][j]: the URL of content i in style j."""
    columns = len(styles) + 1
    head = '<div class="sanet-results__corner"></div>' + "".join(
        f'<figure><img src="{e(url)}" alt="{e(label)}" loading="lazy"><figcaption>{e(label)}</figcaption></figure>'
        for label, url in styles)
    body = ""
    for (label, url), row in zip(contents, cells):
        body += f'<figure><img src="{e(url)}" alt="{e(label)}" loading="lazy"><figcaption>{e(label)}</figcaption></figure>'
        body += "".join(
            f'<a class="sanet-figure__zoom" href="{e(cell)}"><img src="{e(cell)}" '
            f'alt="{e(label)} in the style of {e(style_label)}" loading="lazy"></a>'
            for cell, (style_label, _) in zip(row, styles))
    return (f'<figure class="sanet-results"><div class="sanet-results__grid" style="--sanet-columns: {columns}">'
            f'{head}{body}</div><figcaption>{e(caption)}</figcaption></figure>')
