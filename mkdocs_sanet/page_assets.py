"""The files a site (or an export) serves itself: the TF.js runtime, the plugin's JS and CSS,
the preset pictures; copied, never linked. The demo's HTML is in demo_html.py.

In a MkDocs site they are `SiteAsset`s, MkDocs `File`s that the plugin adds to the build's files:
MkDocs copies them with the site's other static files, and other plugins see them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from mkdocs.structure.files import File

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
# Served at the site's root, not in SITE_FOLDER: a service worker controls only the pages at or
# below its own folder. sanet-sw.js makes the pages with a demo cross-origin isolated (WASM threads).
ROOT_FILES = {"sanet-sw.js": STATIC / "sanet-sw.js"}


def builtin_presets() -> dict[str, list[dict[str, str]]]:
    """The built-in pictures a demo offers, by role, in their order: presets/presets.json, each
    {"file", "title"} and a painting's "artist" and "year" (a photo's "credit"). The folder holds
    more pictures than it lists (the compression's calibration uses the generated styles)."""
    listed = json.loads((BUILTIN_PRESETS / "presets.json").read_text(encoding="utf-8"))
    return {role: listed[role] for role in ("content", "style")}


def presets_by_role() -> dict[str, list[str]]:
    """The built-in preset pictures' file names, by role."""
    return {role: [entry["file"] for entry in entries] for role, entries in builtin_presets().items()}


def presets_index() -> dict:
    """presets/presets.json as an export writes it (static/sanet-demo.js reads it): the file
    names by role, and each one's title, artist, year or credit."""
    index: dict = presets_by_role()
    index["titles"] = {entry["file"]: {k: v for k, v in entry.items() if k != "file"}
                       for entries in builtin_presets().values() for entry in entries}
    return index


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


# What `mkdocs-sanet export` writes besides what a demo loads (demo_files) and the model (model/).
# The READMEs are .txt: an export inside a site's docs_dir (Zensical, MkDocs) must not become pages.
EXPORT_EXTRAS = {"README.txt": "export-README.md", "index.html": "export-index.html", "sanet-sw.js": "sanet-sw.js"}
# The export's files that work only as written (the demo's code and runtime, the model): an
# author's edit of one of them is refused by the next export rather than kept. Their edits of
# the pages and presets (README.txt, index.html, presets/) are kept.
EXPORT_CODE = (*DEMO_FILES, "sanet-sw.js")
EXPORT_CODE_FOLDERS = ("model/", "tfjs/")


def export_files(runtime_dir: Path, model: Path) -> dict[str, Path | bytes]:
    """What `export` writes, by path in its folder: the source file, or the bytes."""
    files: dict[str, Path | bytes] = dict(demo_files(runtime_dir))
    files["presets/README.txt"] = files.pop("presets/README.md")
    files.update({name: STATIC / source for name, source in EXPORT_EXTRAS.items()})
    files.update({f"model/{path.relative_to(model).as_posix()}": path for path in model.rglob("*") if path.is_file()})
    files["presets/presets.json"] = (json.dumps(presets_index(), indent=2, ensure_ascii=False) + "\n").encode()
    return files


def export_keeps(name: str) -> bool:
    """Whether an author's version of this file of an export stays when exporting again."""
    return not name.startswith(EXPORT_CODE_FOLDERS) and name not in EXPORT_CODE


class SiteAsset(File):
    """A file of the plugin's in the site: never a page (presets/README.md included), copied by
    copy_file above (a copy, never a link; unchanged ones left alone)."""

    def is_documentation_page(self) -> bool:
        return False

    def is_static_page(self) -> bool:
        return False

    def copy_file(self, dirty: bool = False) -> None:
        copy_file(Path(self.abs_src_path), Path(self.abs_dest_path))


def site_files(assets: dict[str, Path], config) -> list[File]:
    """The assets (by their path in the site) as MkDocs files of the site."""
    return [SiteAsset.generated(config, name, abs_src_path=str(path)) for name, path in assets.items()]
