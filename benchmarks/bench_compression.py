"""One row per compression setting: bytes, parameters, GFLOPs, fidelity, browser speed.

    .venv/bin/python benchmarks/bench_compression.py [--settings none light fast ...] [--browser] [--runs N]
        [--threads [--cores N]]

- bytes and parameters: the built TF.js model's manifest (float16, uint8 where the setting says)
- GFLOPs for a 512x512 content and style (the style shrunk as the setting says)
- fidelity against the uncompressed model, at 512x512, on pairs the calibration never saw
  (content-cat.jpg and the paintings in ../shared/data/paintings): SSIM and PSNR of the output,
  and the relative error (|a - b| / |a|) of the encoder's relu4_1 and relu5_1 on those pictures
- with --browser: headless Chromium, WASM backend, median of N runs at 256 and 512, and the
  original architecture (VGG19, float32) at 512 in the same session, as bench_model.py does
  (these sites are built with `threads: false`, as helpers.write_site does by default: one thread)
- with --threads (implies --browser): the same at 512 on a site built with `threads: true`, made
  cross-origin isolated by its service worker (sanet-sw.js), so that the WASM backend runs on
  several threads: TF.js 4.22 takes half the logical cores the browser reports (at most 8);
  --cores N makes Chromium report N instead (this machine's 2 cores report 2: one thread)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from bench_model import browser_figures  # noqa: E402
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402
from helpers import PRESETS, SHARED_PAINTINGS, mkdocs_build, start_chromium, start_server, write_site  # noqa: E402
from mkdocs_sanet import architecture, cache, compression, pipeline, weights  # noqa: E402

# (content, style): none of these pictures is in compression.CALIBRATION_*.
HELD_OUT_PAIRS = (("content-cat.jpg", "Starry.jpg"), ("content-cat.jpg", "udnie.jpg"), ("wreck.jpg", "wave.jpg"),
                  ("Composition-VII.jpg", "Starry.jpg"))
FEATURE_PICTURES = ("content-cat.jpg", "Starry.jpg", "wave.jpg", "udnie.jpg", "wreck.jpg", "Composition-VII.jpg")


def picture(name: str, size: int) -> np.ndarray:
    path = PRESETS / name if name.startswith("content-") else SHARED_PAINTINGS / name
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB").resize((size, size), Image.Resampling.LANCZOS), np.float32) / 255


def fidelity(source, setting: str, reference: dict) -> dict:
    import tensorflow as tf

    stylizer = pipeline.Stylizer(source, setting)
    outputs = [stylizer(picture(c, 512), picture(s, 512)) for c, s in HELD_OUT_PAIRS]
    ssim = [float(tf.image.ssim(tf.constant(a), tf.constant(b), 1.0)) for a, b in zip(outputs, reference["outputs"])]
    psnr = [float(tf.image.psnr(tf.constant(a), tf.constant(b), 1.0)) for a, b in zip(outputs, reference["outputs"])]
    errors = {"relu4_1": [], "relu5_1": []}
    for name, ref in zip(FEATURE_PICTURES, reference["features"]):
        got = stylizer.model.encode(tf.constant(picture(name, 512)[None]))
        for tap in errors:
            errors[tap].append(float(np.linalg.norm(got[tap] - ref[tap]) / np.linalg.norm(ref[tap])))
    return {"ssim": float(np.mean(ssim)), "psnr": float(np.mean(psnr)),
            "relu4_1": float(np.mean(errors["relu4_1"])), "relu5_1": float(np.mean(errors["relu5_1"])),
            "relu4_1_photo": errors["relu4_1"][0], "relu5_1_photo": errors["relu5_1"][0]}


DEMO = {"index.md": "# Demo\n\n<% sanet_demo %>\n"}


def threaded_figures(driver, base_url: str, model_key: str, size: int, runs: int) -> dict:
    """browser_figures on a page made cross-origin isolated by sanet-sw.js: the first visit
    registers it and reloads once; the figures come from a later load, isolated from the start."""
    driver.get(base_url)
    WebDriverWait(driver, 60, ignored_exceptions=(WebDriverException,)).until(lambda d: d.execute_script(
        "return crossOriginIsolated && !!document.querySelector('sanet-demo[data-sanet-ready]')"))
    figures = browser_figures(driver, base_url, model_key, size, runs)
    if not driver.execute_script("return crossOriginIsolated"):
        raise RuntimeError(f"{base_url} is not cross-origin isolated: the service worker did not take it")
    figures["threads"] = driver.execute_script("return tf.wasm.getThreadsCount()")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--settings", nargs="+", default=["none", "light", "fast"])
    parser.add_argument("--browser", action="store_true", help="also time the WASM backend (slow)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", action="store_true",
                        help="also time WASM with threads at 512, the page isolated by sanet-sw.js (implies --browser)")
    parser.add_argument("--cores", type=int, help="with --threads: the logical cores Chromium reports")
    args = parser.parse_args()
    args.browser = args.browser or args.threads
    import tensorflow as tf

    # The compression of full-width weights against themselves: the trained default has fast's
    # widths only, so the full-width VGG16 model with seeded attention and decoder stands in.
    work = Path(tempfile.mkdtemp(prefix="sanet-bench-compression-"))
    cache_dir = work / "cache"
    full = work / "vgg16-full-width"
    full.mkdir()
    weights.save(full / "weights.npz", weights.untrained("vgg16", 0), "vgg16")
    source = weights.resolve(str(full))
    plain = pipeline.Stylizer(source, "none")
    reference = {"outputs": [plain(picture(c, 512), picture(s, 512)) for c, s in HELD_OUT_PAIRS],
                 "features": [{k: v.numpy() for k, v in plain.model.encode(tf.constant(picture(n, 512)[None])).items()}
                              for n in FEATURE_PICTURES]}
    rows = {}
    servers = []

    def site(folder: Path, options: str, threads: bool = False) -> str:
        server, url = start_server(folder / "site")
        servers.append(server)
        mkdocs_build(write_site(folder, cache_dir, DEMO, plugin_options=options, site_url=url, threads=threads))
        return url

    for setting in args.settings:
        folder = work / setting.replace(" ", "_")
        options = f"model: {full}\ncompression: {setting}\nbackends: [wasm]"
        url = site(folder, options)
        threaded_url = site(folder / "threads", options, True) if args.threads else None
        key = cache.model_key(source, "float16", setting)
        manifest = json.loads((cache_dir / key / "manifest.json").read_text())
        parsed = compression.parse(setting)
        style = min(512, parsed.style_max_size or 512)
        widths = compression.channels(parsed, source.encoder)
        flops = architecture.flops(source.encoder, 512, 512, widths, (style, style))
        rows[setting] = {"bytes": manifest["bytes"], "parameters": manifest["parameters"], "url": url, "key": key,
                         "threaded_url": threaded_url,
                         "gflops": sum(flops.values()) / 1e9,
                         **(fidelity(source, setting, reference) if setting != "none" else
                            {"ssim": 1.0, "psnr": float("inf"), "relu4_1": 0.0, "relu5_1": 0.0})}
        print(f"{setting}: {json.dumps({k: v for k, v in rows[setting].items() if 'url' not in k and k != 'key'})}",
              flush=True)

    original = original_threaded = threads = None
    if args.browser:
        folder = work / "vgg19-float32"
        folder.mkdir()
        weights.save(folder / "weights.npz", weights.untrained("vgg19", 0, parts=architecture.PARTS), "vgg19")
        options19 = f"model: {folder}\nquantization: none\ncompression: none\nbackends: [wasm]"
        url19 = site(work / "vgg19", options19)
        key19 = cache.model_key(weights.resolve(str(folder)), "none", "none")
        driver = start_chromium()
        if args.cores:
            driver.execute_cdp_cmd("Emulation.setHardwareConcurrencyOverride", {"hardwareConcurrency": args.cores})
        try:
            original = statistics.median(browser_figures(driver, url19, key19, 512, args.runs)["seconds"])
            for row in rows.values():
                for size in (256, 512):
                    row[f"wasm{size}"] = statistics.median(
                        browser_figures(driver, row["url"], row["key"], size, args.runs)["seconds"])
            if args.threads:
                figures = threaded_figures(driver, site(work / "vgg19" / "threads", options19, True), key19, 512, args.runs)
                original_threaded, threads = statistics.median(figures["seconds"]), figures["threads"]
                for row in rows.values():
                    row["threaded512"] = statistics.median(
                        threaded_figures(driver, row["threaded_url"], row["key"], 512, args.runs)["seconds"])
        finally:
            driver.quit()
    for server in servers:
        server.shutdown()

    print()
    threaded_column = f"WASM 512 s, {threads} threads | " if args.threads else ""
    print("| setting | bytes | parameters | GFLOPs 512x512 | WASM 256 s | WASM 512 s | x faster than original | "
          f"{threaded_column}SSIM | PSNR dB | relu4_1 err | relu5_1 err |")
    print("|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if args.threads else ""))
    for setting, row in rows.items():
        timed = "wasm512" in row
        print(f"| `{setting}` | {row['bytes']:,} | {row['parameters']:,} | {row['gflops']:.0f} | "
              f"{row['wasm256']:.2f} | {row['wasm512']:.2f} | {original / row['wasm512']:.1f} | " if timed else
              f"| `{setting}` | {row['bytes']:,} | {row['parameters']:,} | {row['gflops']:.0f} | - | - | - | ", end="")
        if args.threads:
            print(f"{row['threaded512']:.2f} | ", end="")
        print(f"{row['ssim']:.3f} | {row['psnr']:.1f} | {row['relu4_1']:.3f} | {row['relu5_1']:.3f} |")
    if original is not None:
        print(f"\noriginal architecture (VGG19, float32), WASM 512x512: median {original:.2f} s")
    if original_threaded is not None:
        print(f"the same with threads (the page isolated by sanet-sw.js): median {original_threaded:.2f} s "
              f"on {threads} threads")


if __name__ == "__main__":
    main()
