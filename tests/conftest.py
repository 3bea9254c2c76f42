"""Shared fixtures: a test site built by the real plugin, served over HTTP, opened in Chromium."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

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


def save_png(source: Path, target: Path, size: tuple[int, int]) -> Path:
    """PNG, so that the browser and Python decode exactly the same pixels."""
    with Image.open(source) as image:
        image.convert("RGB").resize(size, Image.Resampling.LANCZOS).save(target)
    return target


def write_site(root: Path, cache_dir: Path, pages: dict[str, str], plugin_options: str = "",
               images: dict[str, Path] | None = None, site_url: str = "https://example.org/") -> Path:
    """A small MkDocs project using the plugin (material, instant navigation)."""
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
        """) + options + "\n")
    return root / "mkdocs.yml"


def mkdocs_build(config: Path, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "-f", str(config)],
                            capture_output=True, text=True, cwd=config.parent,
                            env={**os.environ, "NO_MKDOCS_2_WARNING": "1", **(env or {})})
    if check and result.returncode != 0:
        raise AssertionError(f"mkdocs build failed:\n{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    """One model cache for the session: the first build converts, later ones reuse."""
    return tmp_path_factory.mktemp("sanet-cache")


@pytest.fixture(scope="session")
def demo_images(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("images")
    return {
        "images/photo.png": save_png(PRESETS / "content-cat.jpg", folder / "photo.png", CONTENT_SIZE),
        "images/painting.png": save_png(painting("Starry.jpg"), folder / "painting.png", STYLE_SIZE),
    }


@pytest.fixture(scope="session")
def demo_site(tmp_path_factory, model_cache, demo_images, serve) -> str:
    """The built test site, served: a demo page, a page without the tag that links to it.
    Returns its base URL."""
    root = tmp_path_factory.mktemp("site")
    url = serve(root / "site")
    config = write_site(root, model_cache, {
        "index.md": "# Home\n\nNo demo here. [To the demo](demo.md)\n",
        "demo.md": f"""\
            # Demo

            <% sanet_demo content="images/photo.png" style="images/painting.png" max_size="{DEMO_MAX_SIZE}" %>

            A second demo on the same page shares the model download:

            <% sanet_demo id="second" max_size="128" %>
            """,
    }, plugin_options="backends: [wasm]", images=demo_images, site_url=url)
    mkdocs_build(config)
    return url


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


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


@pytest.fixture(scope="session")
def serve():
    """serve(folder) -> base URL of an HTTP server on 127.0.0.1 for that folder."""
    servers = []

    def start(folder: Path) -> str:
        server, url = start_server(folder)
        servers.append(server)
        return url

    yield start
    for server in servers:
        server.shutdown()


@pytest.fixture(scope="session")
def browser():
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.skip("Debian's chromium and chromium-driver are not installed (the README's test command installs them)")
    driver = start_chromium()
    yield driver
    driver.quit()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)
