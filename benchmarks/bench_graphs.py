"""Where the WASM time goes: the seconds of each graph of one stylization (encode the painting,
encode the photo, transform, decode), headless Chromium, median of N runs after one at this size.

    .venv/bin/python benchmarks/bench_graphs.py [--compression SETTING] [--size 512] [--runs 3]

Printed next to each graph's GFLOPs (architecture.conv_flops), so that a graph that runs slower
than its share of the work shows.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_model import browser_call  # noqa: E402
from helpers import PICTURE_JS, start_chromium, wasm_demo_site  # noqa: E402
from mkdocs_sanet import architecture, compression  # noqa: E402

SETUP = """
const [modelUrl, runtimeUrl, size, done] = arguments;
(async () => {
  await sanet.loadRuntime(runtimeUrl, ["wasm"]);
  const model = await sanet.load(modelUrl);
  await model.warmUp();
""" + PICTURE_JS + """  const image = (seed) =>
    tf.tidy(() => tf.div(tf.cast(tf.browser.fromPixels(picture(seed)), "float32"), 255));
  const content = image(1), style = model.shrinkStyle(image(2));
  window.benchGraphs = async () => {
    const seconds = {};
    let started = performance.now();
    const lap = async (name, tensor) => {
      await tensor.data();
      const now = performance.now();
      seconds[name] = (now - started) / 1000;
      started = now;
    };
    const s = model.encode(style);
    await lap("encode painting", s.relu5_1);
    const c = model.encode(content);
    await lap("encode photo", c.relu5_1);
    const outputs = model.transform(c, s);
    await lap("transform", outputs.features);
    const out = tf.tidy(() => model.run("decode", outputs).image);
    await lap("decode", out);
    for (const t of [...Object.values(s), ...Object.values(c), ...Object.values(outputs), out]) t.dispose();
    return seconds;
  };
  done({});
})().catch((error) => done({error: String(error)}));
"""
TIMED = """
const done = arguments[0];
benchGraphs().then(done, (error) => done({error: String(error)}));
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--compression", default=compression.DEFAULT)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    server, url, key = wasm_demo_site("sanet-graphs-", args.compression)
    setting = compression.parse(args.compression)
    style = min(args.size, setting.style_max_size or args.size)
    widths = compression.channels(setting, "vgg16")
    content = architecture.flops("vgg16", args.size, args.size, widths, (style, style))
    photo_only = architecture.flops("vgg16", args.size, args.size, widths, (0, 0))  # the painting's share: 0
    gflops = {"encode painting": (content["encoder"] - photo_only["encoder"]) / 1e9,
              "encode photo": photo_only["encoder"] / 1e9, "transform": content["transform"] / 1e9,
              "decode": content["decoder"] / 1e9}
    driver = start_chromium()
    try:
        driver.get(url)
        browser_call(driver, SETUP, f"assets/sanet/models/{key}/", "assets/sanet/tfjs/", args.size)
        browser_call(driver, TIMED)  # kernels for this size
        runs = [browser_call(driver, TIMED) for _ in range(args.runs)]
    finally:
        driver.quit()
        server.shutdown()
    total = sum(statistics.median(run[name] for run in runs) for name in gflops)
    print(f"compression: {args.compression}; {args.size}x{args.size} photo, {style}x{style} painting; "
          f"median of {args.runs}")
    print("| graph | GFLOPs | share of GFLOPs | WASM s | share of time | GFLOP/s |")
    print("|---|---|---|---|---|---|")
    for name, work_ in gflops.items():
        seconds = statistics.median(run[name] for run in runs)
        print(f"| {name} | {work_:.1f} | {work_ / sum(gflops.values()):.0%} | {seconds:.2f} | {seconds / total:.0%} | "
              f"{work_ / seconds:.1f} |")
    print(f"| total | {sum(gflops.values()):.1f} | | {total:.2f} | | |")


if __name__ == "__main__":
    main()
