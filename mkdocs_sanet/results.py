"""Stylizations made at build time for `<% sanet_results %>` grids, cached like the model:
each picture is a PNG named by a hash of the model key, both images' bytes, the size and the
strength. Missing ones are computed in one separate process (the only one that imports
TensorFlow), each written to a temporary name and renamed into place."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .bundled import require_build_extra
from .weights import ModelSource


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


def ensure(jobs: list[Job], source: ModelSource, model_key: str, root: Path,
           compression: str = "none") -> tuple[dict[Job, Path], int]:
    """The cached PNG of every job, computing the missing ones with the model the site serves
    (its resolved source, handed to the child); and how many were computed."""
    root.mkdir(parents=True, exist_ok=True)
    paths = {job: root / f"{job.key(model_key)}.png" for job in jobs}
    missing = [job for job, path in paths.items() if not path.is_file()]
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
