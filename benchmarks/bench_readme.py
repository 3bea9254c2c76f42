"""Prints every size and time that README.md states, beside the README's value (issue 31).

    .venv/bin/python benchmarks/bench_readme.py [--wheel] [--no-browser] [--runs N]

Sizes (which do not vary; tests/test_readme_figures.py asserts them within a few percent):
the plugin's browser files (`sanet*.js`, `sanet*.css`, also gzipped), `sanet-sw.js`, the built-in
presets, KaTeX's stylesheet and fonts, the TF.js runtime, from the package and node_modules; then
a site built with a fresh cache (a material site with a demo page, a formula and a model card,
as the README's table says): its `assets/sanet/` folders, the default model converted, the
whole; the export; with --wheel, the wheel that `pip install .` builds, into a temporary folder, and its bytes.

Times (printed, never asserted): the first build of a source checkout (compression and
conversion with TensorFlow, then the site), a warm build, and one WASM stylization at the
README's picture size in headless Chromium (the first run, kernels included, then the median of
--runs). The README's value is parsed from README.md itself, so a figure changed there is
compared here at once.
"""

from __future__ import annotations

import argparse
import gzip
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

README = ROOT / "README.md"
MB, KB = 1e6, 1e3

# name -> (regular expression on README.md capturing the stated number, its unit in bytes).
STATED = {
    "wheel": (r"the wheel \(([\d.]+) MB\)", MB),
    "default model converted": (r"the default\s+model already converted to TF\.js \(([\d.]+) MB\)", MB),
    "models/<key>/": (r"\| `models/<key>/` \| ([\d.]+) MB", MB),
    "tfjs/": (r"\| `tfjs/` \| ([\d.]+) MB", MB),
    "presets/": (r"\| `presets/` \| ([\d.]+) MB", MB),
    "katex/": (r"\| `katex/` \| ([\d.]+) MB", MB),
    "sanet*.js, sanet*.css": (r"\| `sanet\*\.js`, `sanet\*\.css` \| ([\d.]+) kB", KB),
    "sanet*.js, sanet*.css gzipped": (r"\| `sanet\*\.js`, `sanet\*\.css` \| [\d.]+ kB \(([\d.]+) kB gzipped\)", KB),
    "sanet-sw.js": (r"\| `site/sanet-sw\.js` \(the site's root\) \| ([\d.]+) kB", KB),
    "a site with a demo, in all": (r"In all about ([\d.]+) MB for a site with a demo", MB),
    "export": (r"mkdocs-sanet export static/sanet .*# about ([\d.]+) MB", MB),
}
STATED_TIMES = {
    "first build, source checkout": r"the first\s+build compresses and converts the model with TensorFlow in a separate process: "
                                    r"about ([\d.]+) s",
    "first build (./dev build)": r"The first build compresses and converts\s+the model \(about ([\d.]+) s here\)",
    "first build, default model from the wheel": r"the whole build takes about ([\d.]+) s for a small site",
    "WASM, one picture": r"for a ([\d]+) px picture where WASM takes ([\d.]+) s",
}


def stated(name: str) -> float | None:
    """The README's value of a size, in bytes (None: the README no longer states it)."""
    pattern, unit = STATED[name]
    match = re.search(pattern, README.read_text(encoding="utf-8"))
    return float(match.group(1)) * unit if match else None


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def static_sizes(runtime_dir: Path = ROOT / "node_modules") -> dict[str, int]:
    """The sizes measured without a build: the files the plugin copies as they are."""
    from mkdocs_sanet import page_assets

    code = [page_assets.STATIC / name for name in (*page_assets.DEMO_FILES, *page_assets.ARTICLE_FILES)]
    presets = page_assets.demo_files(runtime_dir, presets=True)
    katex = runtime_dir / "katex" / "dist"
    return {
        "tfjs/": sum(p.stat().st_size for name, p in presets.items() if name.startswith("tfjs/")),
        "presets/": sum(p.stat().st_size for name, p in presets.items() if name.startswith("presets/")),
        "katex/": (katex / "katex.min.css").stat().st_size + sum(p.stat().st_size for p in (katex / "fonts").glob("*.woff2")),
        "sanet*.js, sanet*.css": sum(p.stat().st_size for p in code),
        "sanet*.js, sanet*.css gzipped": sum(len(gzip.compress(p.read_bytes(), 9)) for p in code),
        "sanet-sw.js": (page_assets.STATIC / "sanet-sw.js").stat().st_size,
    }


def site_sizes(site: Path) -> dict[str, int]:
    """The sizes of a built site's assets/sanet/ folders (and the root's sanet-sw.js)."""
    assets = site / "assets" / "sanet"
    sizes = {"models/<key>/": folder_bytes(assets / "models") if (assets / "models").is_dir() else 0}
    for name in ("tfjs", "presets", "katex"):
        sizes[f"{name}/"] = folder_bytes(assets / name) if (assets / name).is_dir() else 0
    code = [p for p in assets.glob("sanet*") if p.suffix in (".js", ".css")]
    sizes["sanet*.js, sanet*.css"] = sum(p.stat().st_size for p in code)
    sizes["sanet*.js, sanet*.css gzipped"] = sum(len(gzip.compress(p.read_bytes(), 9)) for p in code)
    sizes["a site with a demo, in all"] = folder_bytes(assets) + sum(
        p.stat().st_size for p in site.glob("sanet-sw.js"))
    return sizes


def row(name: str, measured: float, readme: float | None, unit: float, label: str) -> None:
    shown = "not stated" if readme is None else f"{readme / unit:.2f} {label}"
    off = "" if not readme else f" ({(measured - readme) / readme * 100:+.1f} %)"
    print(f"{name:34s} README {shown:>12s}   measured {measured / unit:8.2f} {label} ({int(measured):,} bytes){off}")


def size_row(name: str, measured: int) -> None:
    unit = STATED[name][1]
    row(name, measured, stated(name), unit, "MB" if unit == MB else "kB")


def time_row(name: str, seconds: float, readme: str | None = None) -> None:
    text = README.read_text(encoding="utf-8")
    match = re.search(STATED_TIMES[name], text)
    shown = "not stated" if match is None else " / ".join(match.groups()) + (readme or " s")
    print(f"{name:34s} README {shown:>12s}   measured {seconds:8.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wheel", action="store_true", help="also build the wheel (pip wheel .) and weigh it")
    parser.add_argument("--no-browser", action="store_true", help="skip the WASM timing")
    parser.add_argument("--runs", type=int, default=2, help="timed WASM runs after the first (median)")
    args = parser.parse_args()

    from helpers import export, mkdocs_build, start_chromium, start_server, write_site
    from mkdocs_sanet import cache, weights

    print("== sizes, from the package and node_modules")
    for name, measured in static_sizes().items():
        size_row(name, measured)

    work = Path(tempfile.mkdtemp(prefix="sanet-readme-"))
    cache_dir = work / "cache"
    server, url = start_server(work / "site" / "site")
    config = write_site(work / "site", cache_dir, {
        "index.md": "# Demo\n\n<% sanet_demo %>\n\nA formula: $x^2$.\n\n<% sanet_model_card %>\n",
        "other.md": "# Other\n\nNo tag.\n",
    }, plugin_options="backends: [wasm]", site_url=url)
    with open(config, "a") as f:
        f.write("markdown_extensions:\n  - pymdownx.arithmatex:\n      generic: true\n")
    started = time.perf_counter()
    mkdocs_build(config)
    cold = time.perf_counter() - started
    started = time.perf_counter()
    mkdocs_build(config)
    warm = time.perf_counter() - started

    print("== sizes, a site built with a demo, a formula and a model card (site/assets/sanet/)")
    sizes = site_sizes(work / "site" / "site")
    for name, measured in sizes.items():
        size_row(name, measured)
    key = cache.model_key(weights.resolve("default"), "float16")
    size_row("default model converted", folder_bytes(cache_dir / key))

    result = export(work / "export", "--cache-dir", str(cache_dir), "--runtime-dir", str(ROOT / "node_modules"))
    if result.returncode == 0:
        size_row("export", folder_bytes(work / "export"))
    else:
        print(f"export failed: {result.stderr[-500:]}")

    if args.wheel:
        out = work / "dist"
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)], check=True)
        wheel = next(out.glob("*.whl"))
        size_row("wheel", wheel.stat().st_size)

    print("== times (printed, never asserted)")
    time_row("first build, source checkout", cold)
    time_row("first build (./dev build)", cold)
    print(f"{'warm build':34s} {'':19s}   measured {warm:8.2f} s")
    if not args.no_browser:
        from bench_model import browser_figures

        match = re.search(STATED_TIMES["WASM, one picture"], README.read_text(encoding="utf-8"))
        size = int(match.group(1)) if match else 448
        driver = start_chromium()
        try:
            figures = browser_figures(driver, url, key, size, max(1, args.runs))
        finally:
            driver.quit()
        print(f"{'WASM, one picture':34s} README {(match.group(2) + ' s') if match else 'not stated':>12s}   "
              f"measured {statistics.median(figures['seconds']):8.2f} s at {size}x{size} "
              f"(median of {len(figures['seconds'])} after a first run; backend {figures['backend']})")
    server.shutdown()


if __name__ == "__main__":
    main()
