"""The largest picture the browser can stylize: one run per size on the WASM backend.

    .venv/bin/python benchmarks/bench_max_size.py [SIZE ...] [--compression SETTING]
                                                  (default: 512 768 1024, the default compression)

Square content and style pictures (the largest area for a longest side), one run each, in
ascending order on one page, in headless Chromium. Prints for each size the time, the peak
tf.memory().numBytes (tf.profile) and the WASM heap afterwards, or the error. The heap only
grows, so the figure after a size is what that size needed at most. The cap of `max_size`
(mkdocs_sanet/config.py, MAX_SIZE) comes from this.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from helpers import PICTURE_JS, start_chromium, wasm_demo_site  # noqa: E402
from mkdocs_sanet import compression  # noqa: E402

# The run is started here and polled, since one run can outlast Selenium's 120 s command timeout.
START = """
const [modelUrl, runtimeUrl, size] = arguments;
window.benchResult = null;
(async () => {
  await sanet.loadRuntime(runtimeUrl, ["wasm"]);
  const model = await sanet.load(modelUrl);
""" + PICTURE_JS + """  const content = picture(1), style = picture(2);
  const started = performance.now();
  const profile = await tf.profile(async () => {
    const out = await model.stylize(content, style);
    await out.data();
    out.dispose();
  });
  const wasm = tf.backend().wasm;
  return {seconds: (performance.now() - started) / 1000, peakBytes: profile.peakBytes,
          heapBytes: wasm.HEAPU8 ? wasm.HEAPU8.byteLength : null};
})().then((result) => { window.benchResult = result; },
          (error) => { window.benchResult = {error: String(error && error.message || error)}; });
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("sizes", nargs="*", type=int, default=[512, 768, 1024])
    parser.add_argument("--compression", default=compression.DEFAULT, help="the model's compression setting "
                        f"(default: {compression.DEFAULT}; none for the uncompressed model)")
    args = parser.parse_args()
    server, base_url, key = wasm_demo_site("sanet-maxsize-", args.compression)
    print(f"compression: {args.compression}", flush=True)
    driver = start_chromium()
    try:
        driver.get(base_url)
        for size in args.sizes:
            driver.execute_script(START, f"assets/sanet/models/{key}/", "assets/sanet/tfjs/", size)
            started = time.time()
            while (result := driver.execute_script("return window.benchResult")) is None:
                time.sleep(2)
            if "error" in result:
                print(f"{size}x{size}: FAILED after {time.time() - started:.0f} s: {result['error']}", flush=True)
                break
            heap = f"{result['heapBytes'] / 2**20:.0f} MiB" if result["heapBytes"] else "unknown"
            print(f"{size}x{size}: {result['seconds']:.1f} s, peak tf.memory().numBytes "
                  f"{result['peakBytes'] / 2**20:.0f} MiB, WASM heap {heap}", flush=True)
    finally:
        driver.quit()
        server.shutdown()


if __name__ == "__main__":
    main()
