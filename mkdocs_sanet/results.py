"""Stylizations made at build time for `<% sanet_results %>` grids, cached like the model:
each picture is a PNG named by a hash of the model key, both images' bytes, the size and the
strength. Missing ones are computed in one separate process (the only one that imports
TensorFlow), each written to a temporary name and renamed into place.

A cached picture is not trusted (a cache restored in CI may come from anywhere): once per
process it must be a regular file holding a PNG as this module writes it (only IHDR, IDAT and
IEND chunks, nothing after IEND, 8-bit RGB) that decodes fully at the size the content photo
gets (`problem`). One that fails is computed again, with a warning."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import os
import stat
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .bundled import require_build_extra
from .outputs import remove_tree
from .weights import ModelSource

log = logging.getLogger("mkdocs.plugins.sanet")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The chunks of a PNG that Pillow writes for an RGB picture without metadata.
_PNG_CHUNKS = {b"IHDR", b"IDAT", b"IEND"}
# Pictures checked (or written) by this process: path -> its stat then.
_checked: dict[Path, tuple] = {}


@dataclass(frozen=True)
class Job:
    content: Path
    style: Path
    size: int
    strength: float

    def key(self, model_key: str) -> str:
        digest = hashlib.sha256(f"{model_key}\0{self.size}\0{self.strength}\0".encode())
        for path in (self.content, self.style):
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        return digest.hexdigest()[:32]

    def picture_size(self) -> tuple[int, int]:
        """(width, height) of its picture: the content photo upright, within size."""
        from . import pipeline

        width, height = pipeline.check_image(self.content)
        height, width = pipeline.fit_size(height, width, self.size)
        return width, height


def _stamp(st: os.stat_result) -> tuple:
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def problem(path: Path, size: tuple[int, int]) -> str | None:
    """What is wrong with a cached picture, or None: not a regular file, not a PNG as this
    module writes it, damaged or truncated data, another size than (width, height)."""
    from PIL import Image

    if not stat.S_ISREG(path.lstat().st_mode):
        return "not a regular file"
    # Not through a link, and never waiting on a FIFO put there after the lstat.
    with os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK), "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            return "not a regular file"
        data = file.read()
    if not data.startswith(PNG_SIGNATURE):
        return "not a PNG"
    position = len(PNG_SIGNATURE)
    while True:
        if position + 12 > len(data):
            return "truncated: no IEND chunk"
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        if kind not in _PNG_CHUNKS:
            return f"a {kind!r} chunk, which this plugin does not write"
        position += 12 + length
        if kind == b"IEND":
            break
    if position != len(data):
        return f"{len(data) - position:,} bytes after its end"
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()  # the chunks' checksums
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "PNG" or image.mode != "RGB":
                return f"a {image.format} picture in mode {image.mode}, expected an RGB PNG"
            if image.size != size:
                return f"{image.size[0]}x{image.size[1]}, expected {size[0]}x{size[1]}"
            image.load()  # verify() does not decode: this catches truncated and damaged pixels
    except Exception as error:  # Pillow raises many kinds on damaged files: each one is "damaged"
        return f"not a picture Pillow can decode ({error or type(error).__name__})"
    return None


def _intact(job: Job, path: Path) -> bool:
    """Whether the job's cached picture is there and intact. A damaged one is described in a
    warning and removed, so that it is computed again."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return False
    if stat.S_ISREG(st.st_mode) and _checked.get(path) == _stamp(st):
        return True
    try:
        why = problem(path, job.picture_size())
    except OSError as error:
        why = f"unreadable: {error.strerror or error}"
    if why is None:
        _checked[path] = _stamp(st)
        return True
    log.warning(f"sanet: the cached results picture {path} is damaged ({why}): computing it again")
    if stat.S_ISDIR(st.st_mode):
        remove_tree(path)  # iterative: a forged folder may nest thousands deep
    else:
        path.unlink()
    return False


def ensure(jobs: list[Job], source: ModelSource, model_key: str, root: Path,
           compression: str = "none") -> tuple[dict[Job, Path], int]:
    """The cached PNG of every job, computing the missing ones with the model the site serves
    (its resolved source, handed to the child); and how many were computed."""
    root.mkdir(parents=True, exist_ok=True)
    paths = {job: root / f"{job.key(model_key)}.png" for job in jobs}
    missing = [job for job, path in paths.items() if not _intact(job, path)]
    if missing:
        require_build_extra("computing a results grid")
        spec = [{"content": str(j.content), "style": str(j.style), "size": j.size, "strength": j.strength,
                 "output": str(paths[j])} for j in missing]
        result = subprocess.run([sys.executable, "-m", "mkdocs_sanet.results", "--source", source.to_json(),
                                 "--compression", compression,
                                 "--compressed-cache", str(root.parent / "compressed")],
                                input=json.dumps(spec), capture_output=True, text=True)
        if result.returncode != 0:
            tail = "\n".join(result.stderr.strip().splitlines()[-10:])
            raise RuntimeError(f"computing the results grid failed:\n{tail}")
        for job in missing:  # what a later build will check: a picture that fails it is a bug here
            why = problem(paths[job], job.picture_size())
            if why is not None:
                raise RuntimeError(f"computing the results grid wrote {paths[job]}, which is {why}")
            _checked[paths[job]] = _stamp(paths[job].lstat())
    return paths, len(missing)


def main(argv=None) -> int:
    """Reads the jobs as JSON on stdin and writes each PNG."""
    parser = argparse.ArgumentParser(prog="python -m mkdocs_sanet.results")
    parser.add_argument("--source", required=True, help="the resolved model source, as JSON")
    parser.add_argument("--compression", default="none")
    parser.add_argument("--compressed-cache", type=Path, default=None)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from PIL import Image

    from . import pipeline

    jobs = json.load(sys.stdin)
    pictures = []
    for job in jobs:  # all read before TensorFlow starts; the build checked them already: a last guard
        try:
            pair = [pipeline.load_image(job[role], job["size"]) for role in ("content", "style")]
            for role, image in zip(("content", "style"), pair):
                pipeline.pad(image, role)
        except (OSError, ValueError) as error:
            print(f"{job['content']} with {job['style']}: {error}", file=sys.stderr)
            return 1
        pictures.append(pair)
    stylizer = pipeline.Stylizer(ModelSource.from_json(args.source), args.compression,
                                args.compressed_cache)
    for job, (content, style) in zip(jobs, pictures):
        out = stylizer(content, style, job["strength"])
        tmp = f"{job['output']}.tmp-{os.getpid()}"
        Image.fromarray(pipeline.to_uint8(out)).save(tmp, format="PNG")
        os.replace(tmp, job["output"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
