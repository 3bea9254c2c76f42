"""The demo's HTML, as the MkDocs plugin renders it: the <sanet-demo> element with its pickers
and controls (static/sanet-demo.js upgrades it, and builds the same for a page written by hand),
the stylesheet and script tags, and the notice shown while `mkdocs serve` builds the model.
The files a site serves are in page_assets.py."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

from .page_assets import SITE_FOLDER


@dataclass
class Preset:
    label: str  # the title
    url: str
    path: Path | None = None  # the file in docs_dir, when the page named one
    by: str = ""  # a painting's artist and year ("Vincent van Gogh, 1888"), shown under its title

    @property
    def credit(self) -> str:
        """'Title, Artist, year': the button's name and tooltip."""
        return f"{self.label}, {self.by}" if self.by else self.label


def byline(entry: dict) -> str:
    """A built-in painting's artist and year (presets.json), '' for a photo."""
    return ", ".join(str(entry[k]) for k in ("artist", "year") if entry.get(k))


def preset_label(path: str) -> str:
    stem = Path(path).stem
    for prefix in ("content-", "style-"):
        stem = stem.removeprefix(prefix)
    return stem.replace("_", " ").replace("-", " ").strip().capitalize()


def _picker(role: str, legend: str, file_label: str, presets: list[Preset], selected: str | None) -> str:
    e = html.escape
    selected = selected or (presets[0].url if presets else None)
    # Each picture with its title (and a painting's artist and year) under it; the caption is the
    # button's name again (the image's alt), so screen readers skip it.
    buttons = "".join(
        f'<span class="sanet-demo__option">'
        f'<button type="button" class="sanet-demo__preset" data-sanet-src="{e(p.url)}" '
        f'aria-pressed="{"true" if p.url == selected else "false"}" title="{e(p.credit)}" '
        f'data-sanet-title="{e(p.label)}" data-sanet-by="{e(p.by)}">'
        f'<img src="{e(p.url)}" alt="{e(p.credit)}" loading="lazy" decoding="async"></button>'
        f'<span class="sanet-demo__caption" aria-hidden="true">{e(p.label)}'
        + (f'<span class="sanet-demo__by">{e(p.by)}</span>' if p.by else "")
        + '</span></span>'
        for p in presets)
    return (
        f'<fieldset class="sanet-demo__picker" data-sanet-role="{role}"><legend>{legend}</legend>'
        f'<div class="sanet-demo__presets">{buttons}</div>'
        f'<label class="sanet-demo__file">{file_label} '
        f'<input type="file" accept="image/*" data-sanet-file="{role}"></label></fieldset>')


BACKEND_LABELS = {"webgpu": "WebGPU", "webgl": "WebGL", "wasm": "WASM", "cpu": "CPU"}


BACKEND_TITLE = "Where the model runs: Auto picks the fastest that works here"


# The status line: the progress bar (the model's download) and its amount, then the live region,
# which says each stage once (static/sanet-demo.js `say`), not each chunk of the download.
STATUS_HTML = (
    '<div class="sanet-demo__status">'
    '<progress aria-label="Model download" hidden></progress>'
    '<span class="sanet-demo__amount" hidden></span> '
    '<span class="sanet-demo__message" role="status" aria-live="polite" aria-atomic="true">{message}</span></div>')
# The result: the canvas is named (role img) after each run; the label here is for the first one.
# The caption says which photo and painting (with its artist and year) it is, its size and what the
# run took (download, warm-up, stylization); the download's file name names the two pictures.
RESULT_HTML = (
    '<figure class="sanet-demo__result" hidden>'
    '<canvas role="img" aria-label="The stylized picture"></canvas>'
    '<figcaption><span class="sanet-demo__credit"></span> <span class="sanet-demo__timing"></span> '
    '<a class="md-button sanet-demo__download" download="stylized.png" href="#">Download PNG</a>'
    '</figcaption></figure>')
# With JavaScript off, the stylesheet hides everything but this (sanet-demo:not(:defined)).
NOSCRIPT_TEXT = ("This demo stylizes pictures in your browser and needs JavaScript, "
                 "which is off or blocked here.")


def size_choices(max_size: int) -> list[int]:
    return sorted({s for s in (128, 256, 384, 512, 768, 1024) if s < max_size} | {max_size})


def render_demo(*, demo_id: str, model_url: str, runtime_url: str, backends: list[str], max_size: int,
                strength: float, trained: bool, model_name: str, contents: list[Preset],
                styles: list[Preset], content: str | None, style: str | None, passes: int = 1,
                style2: str | None = None, mix: float = 0.5, keep_colors: bool = False,
                webcam: bool = True, service_worker: str | None = None) -> str:
    """The <sanet-demo> element with its UI already in it, so that the page looks right and search
    can leave it out before the script (static/sanet-demo.js) upgrades it. The script renders the
    same markup itself for an element written by hand (`render` there): keep the two alike.
    service_worker: static/sanet-sw.js's URL, relative to the page (WASM threads); None: no attempt."""
    e = html.escape
    sizes = "".join(
        f'<option value="{s}"{" selected" if s == max_size else ""}>{s} px</option>'
        for s in size_choices(max_size))
    engines = "".join(f'<option value="{b}">{BACKEND_LABELS[b]}</option>' for b in backends)
    worker = f'service-worker="{e(service_worker)}" ' if service_worker else ""
    notice = "" if trained else (
        f'<p class="sanet-demo__notice"><strong>Untrained model.</strong> This demo runs '
        f'“{e(model_name)}”, whose attention and decoder weights are random: the pipeline works '
        f'end to end, but the pictures it makes are not stylizations yet.</p>')
    return (
        # mkdocs-material's search leaves out an element with data-search-exclude that has no
        # descendant of the same tag.
        f'<sanet-demo class="sanet-demo" id="{e(demo_id)}" data-sanet-model="{e(model_url)}" '
        f'data-sanet-runtime="{e(runtime_url)}" data-sanet-backends="{e(",".join(backends))}" '
        f'data-sanet-trained="{"true" if trained else "false"}" data-sanet-max-size="{max_size}" '
        f'data-sanet-passes="{passes}" data-sanet-style2="{e(style2 or "")}" data-sanet-mix="{mix:g}" '
        f'data-sanet-keep-colors="{"true" if keep_colors else "false"}" '
        f'data-sanet-webcam="{"true" if webcam else "false"}" '
        f'{worker}'
        f'data-sanet-state="idle" data-search-exclude>'
        f'{notice}'
        f'<div class="sanet-demo__pickers">'
        f'{_picker("content", "Photo", "Your own photo", contents, content)}'
        f'{_picker("style", "Painting", "Your own painting", styles, style)}'
        f'</div>'
        f'<div class="sanet-demo__controls">'
        f'<label>Size <select data-sanet-control="max-size">{sizes}</select></label>'
        f'<label>Strength <input type="range" min="0" max="1" step="0.05" value="{strength:g}" '
        f'data-sanet-control="strength"><output>{strength:.2f}</output></label>'
        f'<label>Backend <select data-sanet-control="backend" title="{e(BACKEND_TITLE)}">'
        f'<option value="auto" selected>Auto</option>{engines}</select></label>'
        f'<button type="button" class="md-button md-button--primary sanet-demo__run" disabled>Stylize</button>'
        f'</div>'
        f'{STATUS_HTML.format(message="Loading the demo…")}'
        f'{RESULT_HTML}'
        f'<noscript><p class="sanet-demo__noscript">{NOSCRIPT_TEXT}</p></noscript>'
        f'</sanet-demo>')


def asset_tags(assets_url: str) -> tuple[str, str]:
    """The demo's stylesheet (put before it) and script (after it; the script loads the TF.js
    runtime itself). Every demo brings both, so that it works wherever its HTML lands;
    `once_per_page` then keeps one of each."""
    e = html.escape
    return (f'<link rel="stylesheet" href="{e(assets_url)}/sanet-demo.css">',
            f'<script src="{e(assets_url)}/sanet-demo.js"></script>')


def render_building(element_id: str, what: str = "demo") -> str:
    """In place of a demo (or the model card) while `mkdocs serve` builds the model. No script
    sets it up (data-sanet-ready); the rebuild that follows the model's replaces it."""
    return (f'<section class="sanet-demo sanet-demo--building" id="{html.escape(element_id)}" data-sanet-ready="true" '
            f'data-sanet-state="building" data-search-exclude><p class="sanet-demo__notice">'
            f'<strong>The model is being built.</strong> <code>mkdocs serve</code> builds the SANet model '
            f'once (about half a minute); this {what} appears when it is ready: the page reloads by itself, '
            f'or reload it in a moment.</p></section>')


# The plugin's own <link> and <script> tags (their URLs go through SITE_FOLDER).
ASSET_TAG = re.compile(rf'<link rel="stylesheet" href="[^"<>]*{SITE_FOLDER}/[^"<>]*">|'
                       rf'<script src="[^"<>]*{SITE_FOLDER}/[^"<>]*"></script>')


def once_per_page(page_html: str) -> str:
    """Each of the plugin's stylesheets once, where it first appears; each script once, where it
    last appears (after every demo that it sets up)."""
    matches = list(ASSET_TAG.finditer(page_html))
    keep: dict[str, int] = {}
    for i, match in enumerate(matches):
        if match.group(0) not in keep or match.group(0).startswith("<script"):
            keep[match.group(0)] = i
    drop = [m for i, m in enumerate(matches) if keep[m.group(0)] != i]
    if not drop:
        return page_html
    # The kept text between the dropped tags, joined once: linear in the page's length.
    pieces, position = [], 0
    for match in drop:
        pieces.append(page_html[position:match.start()])
        position = match.end()
    pieces.append(page_html[position:])
    return "".join(pieces)
