"""One row per compression setting: bytes, parameters, GFLOPs, fidelity, browser speed.

    .venv/bin/python benchmarks/bench_compression.py [--settings none light fast ...] [--browser] [--runs N]

- bytes and parameters: the built TF.js model's manifest (float16, uint8 where the setting says)
- GFLOPs for a 512x512 content and style (the style shrunk as the setting says)
- fidelity against the uncompressed model, at 512x512, on pairs the calibration never saw
  (content-cat.jpg and the paintings in ../shared/data/paintings): SSIM and PSNR of the output,
  and the relative error (|a - b| / |a|) of the encoder's relu4_1 and relu5_1 on those pictures
- with --browser: headless Chromium, WASM backend, median of N runs at 256 and 512, and the
  original architecture (VGG19, float32) at 512 in the same session, as bench_model.py does
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--settings", nargs="+", default=["none", "light", "fast"])
    parser.add_argument("--browser", action="store_true", help="also time the WASM backend (slow)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    import tensorflow as tf

    source = weights.resolve("default")
    work = Path(tempfile.mkdtemp(prefix="sanet-bench-compression-"))
    cache_dir = work / "cache"
    plain = pipeline.Stylizer(source, "none")
    reference = {"outputs": [plain(picture(c, 512), picture(s, 512)) for c, s in HELD_OUT_PAIRS],
                 "features": [{k: v.numpy() for k, v in plain.model.encode(tf.constant(picture(n, 512)[None])).items()}
                              for n in FEATURE_PICTURES]}
    rows = {}
    servers = []
    for setting in args.settings:
        server, url = start_server(work / setting.replace(" ", "_") / "site")
        servers.append(server)
        config = write_site(work / setting.replace(" ", "_"), cache_dir, {"index.md": "# Demo\n\n<% sanet_demo %>\n"},
                            plugin_options=f"compression: {setting}\nbackends: [wasm]", site_url=url)
        mkdocs_build(config)
        key = cache.model_key(source, "float16", setting)
        manifest = json.loads((cache_dir / key / "manifest.json").read_text())
        parsed = compression.parse(setting)
        style = min(512, parsed.style_max_size or 512)
        widths = compression.channels(parsed, source.encoder)
        flops = architecture.flops(source.encoder, 512, 512, widths, (style, style))
        rows[setting] = {"bytes": manifest["bytes"], "parameters": manifest["parameters"], "url": url, "key": key,
                         "gflops": sum(flops.values()) / 1e9,
                         **(fidelity(source, setting, reference) if setting != "none" else
                            {"ssim": 1.0, "psnr": float("inf"), "relu4_1": 0.0, "relu5_1": 0.0})}
        print(f"{setting}: {json.dumps({k: v for k, v in rows[setting].items() if k not in ('url', 'key')})}",
              flush=True)

    original = None
    if args.browser:
        folder = work / "vgg19-float32"
        folder.mkdir()
        weights.save(folder / "weights.npz", weights.untrained("vgg19", 0, parts=architecture.PARTS), "vgg19")
        server, url19 = start_server(work / "vgg19" / "site")
        servers.append(server)
        config = write_site(work / "vgg19", cache_dir, {"index.md": "# Demo\n\n<% sanet_demo %>\n"}, site_url=url19,
                            plugin_options=f"model: {folder}\nquantization: none\ncompression: none\nbackends: [wasm]")
        mkdocs_build(config)
        key19 = cache.model_key(weights.resolve(str(folder)), "none", "none")
        driver = start_chromium()
        try:
            original = statistics.median(browser_figures(driver, url19, key19, 512, args.runs)["seconds"])
            for row in rows.values():
                for size in (256, 512):
                    row[f"wasm{size}"] = statistics.median(
                        browser_figures(driver, row["url"], row["key"], size, args.runs)["seconds"])
        finally:
            driver.quit()
    for server in servers:
        server.shutdown()

    print()
    print("| setting | bytes | parameters | GFLOPs 512x512 | WASM 256 s | WASM 512 s | x faster than original | "
          "SSIM | PSNR dB | relu4_1 err | relu5_1 err |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for setting, row in rows.items():
        timed = "wasm512" in row
        print(f"| `{setting}` | {row['bytes']:,} | {row['parameters']:,} | {row['gflops']:.0f} | "
              f"{row['wasm256']:.2f} | {row['wasm512']:.2f} | {original / row['wasm512']:.1f} | " if timed else
              f"| `{setting}` | {row['bytes']:,} | {row['parameters']:,} | {row['gflops']:.0f} | - | - | - | ", end="")
        print(f"{row['ssim']:.3f} | {row['psnr']:.1f} | {row['relu4_1']:.3f} | {row['relu5_1']:.3f} |")
    if original is not None:
        print(f"\noriginal architecture (VGG19, float32), WASM 512x512: median {original:.2f} s")


if __name__ == "__main__":
    main()
