"""`mkdocs serve` with a cold model cache: the site is served while the model builds (the demo
says so), then serve rebuilds the site by itself and the demo is there, with its model."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from helpers import write_site
from helpers import DEMO_PAGE, free_port


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""


def test_serve_does_not_wait_for_a_cold_model_build(tmp_path):
    config = write_site(tmp_path / "project", tmp_path / "cold-cache", DEMO_PAGE)
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONUNBUFFERED": "1"}
    signal_folders = set(Path(tempfile.gettempdir()).glob("sanet-serve-*"))
    process = subprocess.Popen(
        [sys.executable, "-m", "mkdocs", "serve", "-f", str(config), "-a", f"127.0.0.1:{port}"],
        cwd=config.parent, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(process.stderr.readline, "")), daemon=True).start()

    def wait_for(condition, what: str, seconds: float = 300):
        deadline = time.time() + seconds
        while not condition():
            assert process.poll() is None, f"mkdocs serve ended:\n{''.join(lines)}"
            assert time.time() < deadline, f"no {what} after {seconds} s:\n{''.join(lines)}"
            time.sleep(0.2)

    try:
        wait_for(lambda: any("Serving on" in line for line in lines), "'Serving on'")
        log = "".join(lines)
        assert "building the TF.js model" in log and "mkdocs serve serves the site meanwhile" in log, log
        assert "model built in" not in log, "serve waited for the model build"
        status, page = get(base)
        assert status == 200
        assert "The model is being built." in page and 'data-sanet-state="building"' in page
        assert "data-sanet-model" not in page and "sanet-demo.js" not in page

        # When the model is built, serve rebuilds the site by itself: the demo, and its model, are there.
        wait_for(lambda: "data-sanet-model" in get(base)[1], "demo after the model build")
        page = get(base)[1]
        assert "The model is being built." not in page
        model = re.search(r'data-sanet-model="([^"]+)"', page).group(1)
        status, manifest = get(base + model + "manifest.json")
        assert status == 200 and '"graphs"' in manifest
        log = "".join(lines)
        assert log.index("Serving on") < log.index("model built in") < log.index("the model is ready: rebuilding")
        # One rebuild for the model, no more. Counted by serve's and livereload's lines: mkdocs drops
        # a "Documentation built in N seconds" that repeats an earlier one (see test_cache.py).
        wait_for(lambda: any("Reloading browsers" in line for line in lines), "'Reloading browsers'")
        time.sleep(4)
        log = "".join(lines)
        assert log.count("Building documentation...") == 2 and log.count("Reloading browsers") == 1, log
    finally:
        process.terminate()  # SIGTERM
        process.wait(timeout=60)
    assert set(Path(tempfile.gettempdir()).glob("sanet-serve-*")) <= signal_folders, "serve left its folder"
    assert "".join(lines).count("UNTRAINED") <= 1
