"""Prints the figures of the served model: size, parameters, build times, browser speed, memory.

    ./dev bench                 (or .venv/bin/python benchmarks/bench_model.py [--runs N] [--no-vgg19])

- model bytes and parameters, from the cache entry's manifest
- cold model build (TensorFlow + converter, empty cache) and a warm `mkdocs build` of a site with
  the tag next to the same site without it
- in-browser stylization, headless Chromium, WASM backend: median of N runs at 256x256 and
  512x512, and the peak tf.memory().numBytes (tf.profile) during one 512x512 run
- the same 512x512 figure for the original architecture (VGG19 encoder, float32 weights),
  the reference of the compression targets (<= 8 MB, >= 8x faster)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from helpers import PICTURE_JS, mkdocs_build, start_chromium, start_server, write_site  # noqa: E402
from mkdocs_sanet import architecture, cache, weights  # noqa: E402

# Each call stays well under Selenium's 120 s command timeout: set-up, then one call per run.
BROWSER_SETUP = """
const [modelUrl, runtimeUrl, size, done] = arguments;
(async () => {
  const backend = await sanet.loadRuntime(runtimeUrl, ["wasm"]);
  const model = await sanet.load(modelUrl);
  await model.warmUp();
""" + PICTURE_JS + """  const content = picture(1), style = picture(2);
  window.benchOnce = async () => {
    const out = await model.stylize(content, style);
    await out.data();
    out.dispose();
  };
  done({backend});
})().catch((error) => done({error: String(error)}));
"""
BROWSER_TIMED = """
const done = arguments[0];
const started = performance.now();
benchOnce().then(() => done({seconds: (performance.now() - started) / 1000}),
                 (error) => done({error: String(error)}));
"""
BROWSER_PEAK = """
const done = arguments[0];
tf.profile(benchOnce).then((profile) => done({peakBytes: profile.peakBytes}),
                           (error) => done({error: String(error)}));
"""


def time_build(config: Path) -> float:
    started = time.perf_counter()
    mkdocs_build(config)
    return time.perf_counter() - started


def browser_call(driver, script, *args) -> dict:
    result = driver.execute_async_script(script, *args)
    if "error" in result:
        raise RuntimeError(result["error"])
    return result


def browser_figures(driver, base_url: str, model_key: str, size: int, runs: int) -> dict:
    driver.get(base_url)
    setup = browser_call(driver, BROWSER_SETUP, f"assets/sanet/models/{model_key}/", "assets/sanet/tfjs/", size)
    browser_call(driver, BROWSER_TIMED)  # kernels for this size
    seconds = [browser_call(driver, BROWSER_TIMED)["seconds"] for _ in range(runs)]
    return {"backend": setup["backend"], "seconds": seconds, "peakBytes": browser_call(driver, BROWSER_PEAK)["peakBytes"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3, help="timed runs per size (median)")
    parser.add_argument("--no-vgg19", action="store_true", help="skip the original-architecture reference")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="sanet-bench-"))
    cache_dir = work / "cache"
    demo = {"index.md": "# Demo\n\n<% sanet_demo %>\n", "other.md": "# Other\n\nText.\n"}
    plain = {"index.md": "# Demo\n\nNo tag.\n", "other.md": "# Other\n\nText.\n"}
    server, base_url = start_server(work / "with" / "site")
    with_tag = write_site(work / "with", cache_dir, demo, plugin_options="backends: [wasm]", site_url=base_url)
    without_tag = write_site(work / "without", cache_dir, plain)

    cold = time_build(with_tag)
    warm = statistics.median(time_build(with_tag) for _ in range(3))
    baseline = statistics.median(time_build(without_tag) for _ in range(3))
    key = cache.model_key(weights.resolve("default"), "float16")
    manifest = json.loads((cache_dir / key / "manifest.json").read_text())

    print(f"model: {manifest['name']}, {manifest['encoder']}, {manifest['quantization']}")
    print(f"model bytes: {manifest['bytes']:,} ({manifest['bytes'] / 1e6:.1f} MB)")
    print(f"parameters: {manifest['parameters']:,} "
          "(" + ", ".join(f"{g}: {v['parameters']:,}" for g, v in manifest["graphs"].items()) + ")")
    flops = architecture.flops("vgg16", 512, 512)
    print(f"FLOPs for a 512x512 pair: {sum(flops.values()) / 1e9:.0f} G "
          "(" + ", ".join(f"{p}: {v / 1e9:.0f} G" for p, v in flops.items()) + ")")
    print(f"cold build (convert + site): {cold:.1f} s; model conversion alone: {manifest['build_seconds']} s")
    print(f"warm mkdocs build: {warm:.2f} s; same site without the tag: {baseline:.2f} s; "
          f"ratio {warm / baseline:.2f}")

    driver = start_chromium()
    try:
        for size in (256, 512):
            result = browser_figures(driver, base_url, key, size, args.runs)
            print(f"browser {result['backend']} {size}x{size}: median {statistics.median(result['seconds']):.2f} s "
                  "(runs: " + ", ".join(f"{s:.2f}" for s in result["seconds"]) + "); "
                  f"peak tf.memory().numBytes {result['peakBytes'] / 1e6:.0f} MB")
        if not args.no_vgg19:
            # The original architecture: VGG19-normalised encoder, float32 weights (random: speed only).
            folder = work / "vgg19-float32"
            folder.mkdir()
            weights.save(folder / "weights.npz", weights.untrained("vgg19", 0, parts=architecture.PARTS), "vgg19")
            server19, url19 = start_server(work / "vgg19" / "site")
            config = write_site(work / "vgg19", cache_dir, demo, site_url=url19,
                                plugin_options=f"model: {folder}\nquantization: none\nbackends: [wasm]")
            mkdocs_build(config)
            key19 = cache.model_key(weights.resolve(str(folder)), "none")
            manifest19 = json.loads((cache_dir / key19 / "manifest.json").read_text())
            result = browser_figures(driver, url19, key19, 512, max(1, args.runs - 1))
            median19 = statistics.median(result["seconds"])
            print(f"original architecture (VGG19, float32): {manifest19['bytes'] / 1e6:.1f} MB, "
                  f"{manifest19['parameters']:,} parameters; browser wasm 512x512: median {median19:.2f} s")
            server19.shutdown()
    finally:
        driver.quit()
        server.shutdown()


if __name__ == "__main__":
    main()
