"""The tests' fixtures: a test site built by the real plugin, served over HTTP, opened in
Chromium. The helpers they are made of (and that tests import) are in helpers.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import (CHROMEDRIVER, CHROMIUM, CONTENT_SIZE, DEMO_MAX_SIZE, PRESETS, STYLE_SIZE, mkdocs_build, painting,
                     save_png, start_chromium, start_server, write_site)


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


