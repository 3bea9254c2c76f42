"""What a page with a demo gets: the demo's HTML, and the files (TF.js runtime, the demo's
JS and CSS, the preset images) that the built site serves itself."""

from __future__ import annotations

import html
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from .weights import MODEL_ASSETS

STATIC = Path(__file__).parent / "static"
BUILTIN_PRESETS = MODEL_ASSETS / "presets"
# Everything below lives under this folder of the built site.
SITE_FOLDER = "assets/sanet"

# npm package -> files of its dist/ folder that the browser loads (see static/sanet.js).
RUNTIME_FILES = {
    "@tensorflow/tfjs-core": ["tf-core.min.js"],
    "@tensorflow/tfjs-converter": ["tf-converter.min.js"],
    "@tensorflow/tfjs-backend-cpu": ["tf-backend-cpu.min.js"],
    "@tensorflow/tfjs-backend-webgl": ["tf-backend-webgl.min.js"],
    "@tensorflow/tfjs-backend-webgpu": ["tf-backend-webgpu.min.js"],
    "@tensorflow/tfjs-backend-wasm": [
        "tf-backend-wasm.min.js", "tfjs-backend-wasm.wasm", "tfjs-backend-wasm-simd.wasm",
        "tfjs-backend-wasm-threaded-simd.wasm"],
}


class RuntimeMissing(FileNotFoundError):
    pass


def runtime_sources(runtime_dir: Path) -> list[Path]:
    """The runtime files in an npm install, or an error that says how to get them."""
    paths = []
    for package, names in RUNTIME_FILES.items():
        for name in names:
            path = runtime_dir / package / "dist" / name
            if not path.is_file():
                raise RuntimeMissing(
                    f"{path}: TF.js runtime file not found. Run `npm ci` beside package.json "
                    f"(it pins @tensorflow/tfjs and its backends), or point the plugin's runtime_dir "
                    f"at the node_modules folder that has them")
            paths.append(path)
    return paths


def copy_file(source: Path, target: Path) -> None:
    """Copy a file into the built site; never a link, so that editing the site in place cannot
    edit the cache, the package or node_modules. A target of the same size and mtime (copy2
    keeps the mtime) is left as it is, which keeps rebuilds into a kept site cheap."""
    stat = source.stat()
    try:
        old = target.stat()
        if (old.st_size, old.st_mtime_ns, old.st_nlink) == (stat.st_size, stat.st_mtime_ns, 1):
            return
        target.unlink()  # a link from an older version: writing into it would write its source
    except FileNotFoundError:
        target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)


def copy_tree(source: Path, target: Path) -> None:
    for path in source.rglob("*"):
        if path.is_file():
            copy_file(path, target / path.relative_to(source))


# The plugin's own browser files, by what a page uses.
DEMO_FILES = ("sanet.js", "sanet-demo.js", "sanet-demo.css")
ARTICLE_FILES = ("sanet-article.css", "sanet-article.js")


def presets_by_role() -> dict[str, list[str]]:
    """The built-in preset pictures' file names, by role."""
    return {role: sorted(p.name for p in BUILTIN_PRESETS.glob(f"{role}-*.jpg")) for role in ("content", "style")}


def demo_files(runtime_dir: Path, presets: bool = True) -> dict[str, Path]:
    """Everything a demo loads besides the model, by its path in the demo's folder (the site's
    SITE_FOLDER, or an export): the TF.js runtime in tfjs/, the demo's JS and CSS, and the
    built-in presets with their README in presets/. One list for the plugin and `export`."""
    files = {f"tfjs/{path.name}": path for path in runtime_sources(runtime_dir)}
    files.update({name: STATIC / name for name in DEMO_FILES})
    if presets:
        names = [*presets_by_role()["content"], *presets_by_role()["style"], "README.md"]
        files.update({f"presets/{name}": BUILTIN_PRESETS / name for name in names})
    return files


def copy_files(files: dict[str, Path], target: Path) -> None:
    for name, source in files.items():
        copy_file(source, target / name)


@dataclass
class Preset:
    label: str
    url: str
    path: Path | None = None  # the file in docs_dir, when the page named one


def preset_label(path: str) -> str:
    stem = Path(path).stem
    for prefix in ("content-", "style-"):
        stem = stem.removeprefix(prefix)
    return stem.replace("_", " ").replace("-", " ").strip().capitalize()


def _picker(role: str, legend: str, file_label: str, presets: list[Preset], selected: str | None) -> str:
    e = html.escape
    selected = selected or (presets[0].url if presets else None)
    buttons = "".join(
        f'<button type="button" class="sanet-demo__preset" data-sanet-src="{e(p.url)}" '
        f'aria-pressed="{"true" if p.url == selected else "false"}" title="{e(p.label)}">'
        f'<img src="{e(p.url)}" alt="{e(p.label)}" loading="lazy" decoding="async"></button>'
        for p in presets)
    return (
        f'<fieldset class="sanet-demo__picker" data-sanet-role="{role}"><legend>{legend}</legend>'
        f'<div class="sanet-demo__presets">{buttons}</div>'
        f'<label class="sanet-demo__file">{file_label} '
        f'<input type="file" accept="image/*" data-sanet-file="{role}"></label></fieldset>')


BACKEND_LABELS = {"webgpu": "WebGPU", "webgl": "WebGL", "wasm": "WASM", "cpu": "CPU"}
BACKEND_TITLE = "Where the model runs: Auto picks the fastest that works here"


def size_choices(max_size: int) -> list[int]:
    return sorted({s for s in (128, 256, 384, 512, 768, 1024) if s < max_size} | {max_size})


def render_demo(*, demo_id: str, model_url: str, runtime_url: str, backends: list[str], max_size: int,
                strength: float, trained: bool, model_name: str, contents: list[Preset],
                styles: list[Preset], content: str | None, style: str | None, passes: int = 1,
                style2: str | None = None, mix: float = 0.5, keep_colors: bool = False,
                webcam: bool = True) -> str:
    """The <sanet-demo> element with its UI already in it, so that the page looks right and search
    can leave it out before the script (static/sanet-demo.js) upgrades it. The script renders the
    same markup itself for an element written by hand (`render` there): keep the two alike."""
    e = html.escape
    sizes = "".join(
        f'<option value="{s}"{" selected" if s == max_size else ""}>{s} px</option>'
        for s in size_choices(max_size))
    engines = "".join(f'<option value="{b}">{BACKEND_LABELS[b]}</option>' for b in backends)
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
        f'<div class="sanet-demo__status" role="status" aria-live="polite">'
        f'<progress hidden></progress> <span class="sanet-demo__message">'
        f'The demo starts when JavaScript has loaded. Nothing leaves your browser.</span></div>'
        f'<figure class="sanet-demo__result" hidden><canvas></canvas>'
        f'<figcaption><span class="sanet-demo__timing"></span> '
        f'<a class="md-button sanet-demo__download" download="stylized.png" href="#">Download PNG</a>'
        f'</figcaption></figure>'
        f'<noscript><p>This demo runs in your browser and needs JavaScript.</p></noscript>'
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
    for match in reversed(drop):
        page_html = page_html[:match.start()] + page_html[match.end():]
    return page_html
