"""Makes the built-in paintings (style-*.jpg listed in presets.json with an artist) from Debian's
gcompris-qt-data: Van Gogh reproductions that GCompris ships for its "details" activity. Run from
this folder (needs apt-get and dpkg, never installs the package):

    python make_paintings.py

It downloads the package into a temporary folder (apt-get download), unpacks it there (dpkg -x),
reads the activity's Qt resource file (details.rcc), checks each picture's licence where the
package states it, and writes each painting at most SIZE px on its long side, JPEG quality 85.
"""

from __future__ import annotations

import io
import re
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

from PIL import Image

PACKAGE = "gcompris-qt-data"
RCC = "usr/share/gcompris-qt/rcc/details.rcc"
IMAGES = "/gcompris/src/activities/details/resource/image/"
COPYRIGHT = f"usr/share/doc/{PACKAGE}/copyright"
SIZE = 512
QUALITY = 85
# output file -> the picture in the package (details/resource/image/<name>_background.webp)
PAINTINGS = {
    "style-cafe-terrace.jpg": "Gogh4",
    "style-night-cafe.jpg": "Van_Gogh_The_Night_Cafe",
    "style-church-at-auvers.jpg": "Eglise_dAuvers-sur-Oise",
    "style-harvest.jpg": "VincentVanGogh0019",
}


def rcc_files(data: bytes) -> dict[str, bytes]:
    """The files of a Qt binary resource (.rcc, format versions 1 to 3), by path."""
    if data[:4] != b"qres":
        raise ValueError("not a Qt resource file")
    version, tree, payload, names = struct.unpack(">IIII", data[4:20])
    node = 14 if version == 1 else 22

    def name(offset: int) -> str:
        length = struct.unpack(">H", data[names + offset:names + offset + 2])[0]
        return data[names + offset + 6:names + offset + 6 + 2 * length].decode("utf-16-be")

    files: dict[str, bytes] = {}

    def walk(index: int, prefix: str) -> None:
        start = tree + index * node
        name_offset, flags = struct.unpack(">IH", data[start:start + 6])
        path = f"{prefix}/{name(name_offset)}" if index else ""
        if flags & 2:  # a folder
            count, first = struct.unpack(">II", data[start + 6:start + 14])
            for child in range(first, first + count):
                walk(child, path)
            return
        offset = struct.unpack(">I", data[start + 10:start + 14])[0]
        size = struct.unpack(">I", data[payload + offset:payload + offset + 4])[0]
        raw = data[payload + offset + 4:payload + offset + 4 + size]
        if flags & 4:
            raise ValueError(f"{path}: zstd-compressed, not supported")
        files[path] = zlib.decompress(raw[4:]) if flags & 1 else raw

    walk(0, "")
    return files


def upstream_licence(readme: str, stem: str) -> str:
    """The licence that GCompris's README beside the pictures gives the stanza naming this file."""
    for stanza in readme.split("\n\n"):
        if re.search(rf"^{re.escape(stem)}_background\.webp$", stanza, re.M):
            return re.search(r"^License: (.*)$", stanza, re.M).group(1).strip()
    raise ValueError(f"{stem}: not in the README")


def main() -> None:
    here = Path(__file__).parent
    with tempfile.TemporaryDirectory() as temp:
        temp = Path(temp)
        subprocess.run(["apt-get", "download", PACKAGE], cwd=temp, check=True)
        deb = next(temp.glob(f"{PACKAGE}_*.deb"))
        subprocess.run(["dpkg", "-x", str(deb), str(temp / "x")], check=True)
        print(f"from {deb.name}")
        copyright_text = (temp / "x" / COPYRIGHT).read_text()
        stanza = copyright_text[:copyright_text.index("src/activities/details/resource/image/*")]
        stanza = stanza[stanza.rindex("\nFiles:"):] + copyright_text[len(stanza):].split("\n\n")[0]
        debian = re.search(r"^License: (.*)$", stanza, re.M).group(1)
        files = rcc_files((temp / "x" / RCC).read_bytes())
        readme = files[IMAGES + "README"].decode()
        for out, stem in PAINTINGS.items():
            licence = upstream_licence(readme, stem)
            if licence.lower() != "public domain":
                sys.exit(f"{stem}: upstream licence {licence!r}, expected Public domain")
            image = Image.open(io.BytesIO(files[f"{IMAGES}{stem}_background.webp"])).convert("RGB")
            scale = min(1.0, SIZE / max(image.size))
            if scale < 1:
                image = image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS)
            image.save(here / out, quality=QUALITY, optimize=True)
            print(f"{out}: {stem}_background.webp, {image.width}x{image.height}, "
                  f"{(here / out).stat().st_size} bytes; upstream README: {licence}; "
                  f"Debian copyright (folder): {debian}")


if __name__ == "__main__":
    main()
