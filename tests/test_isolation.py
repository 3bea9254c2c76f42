"""Cross-origin isolation (WASM threads) only where it helps, never where it hurts: the marker the
plugin writes into a page's head (mkdocs_sanet/isolation.py), the service worker that reads only
the head and streams the rest, and links out of an isolated page loaded in full (mkdocs-material's
instant navigation would carry the isolation to the next pages and break their cross-origin frames)."""

from __future__ import annotations

import functools
import http.server
import threading
import time

import pytest
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from helpers import QuietHandler, mkdocs_build, start_chromium, write_site
from mkdocs_sanet import isolation

MARKER = isolation.MARKER
DEMO = '<% sanet_demo max_size="64" %>'
POST = f"""\
---
date: 2024-01-15
---

# A demo post

{DEMO}

<!-- more -->

The rest.
"""


def test_marker_rules():
    page = "<html><head><title>x</title></head><body>{}</body></html>"
    marked, why = isolation.mark(page.format("<p>demo</p>"), "https://example.org/")
    assert why is None and marked.startswith("<html><head>" + MARKER + "<title>")
    for embed in ('<iframe src="https://www.youtube.com/embed/x"></iframe>',
                  "<iframe width=1 src=//player.vimeo.com/video/1></iframe>",
                  '<object data="https://maps.example.com/m"></object>',
                  '<script src="https://giscus.app/client.js" async></script>'):
        same, why = isolation.mark(page.format(embed), "https://example.org/")
        assert same == page.format(embed) and "from another origin" in why, embed
    # The site's own frames, a cross-origin script that makes no frame, a frame in a comment: isolated.
    for harmless in ('<iframe src="https://example.org/other/"></iframe>', '<iframe src="../other/"></iframe>',
                     '<script src="https://cdn.example.net/lib.js"></script>',
                     '<!-- <iframe src="https://www.youtube.com/embed/x"></iframe> -->'):
        assert isolation.mark(page.format(harmless), "https://example.org/")[1] is None, harmless


@pytest.fixture(scope="module")
def other_origin(tmp_path_factory):
    """A second local origin (localhost, where the site is 127.0.0.1) serving a frame's page."""
    folder = tmp_path_factory.mktemp("other-origin")
    (folder / "frame.html").write_text("<!doctype html><title>frame</title><p id=inside>inside the frame</p>")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://localhost:{server.server_address[1]}/frame.html"
    server.shutdown()


STREAM_FIRST = b"""<!doctype html><html><head><meta charset="utf-8"><title>streamed</title></head><body>
<p id="first">first</p><script>window.firstAt = performance.now()</script>
<!-- a comment that mentions <sanet-demo> isolates nothing -->
"""
STREAM_REST = b"""<p id="last">last</p><script>window.lastAt = performance.now()</script></body></html>"""
STREAM_PAUSE = 3.0
# A page whose head streams: a script at its start, the rest of the head after a pause; and a demo
# page (marked) whose head streams the same way.
HEAD_FIRST = {
    "/stream-head/": b"""<!doctype html><html><head><meta charset="utf-8"><script>window.headAt = performance.now()</script>""",
    "/stream-head-demo/": b"""<!doctype html><html><head>""" + isolation.MARKER.encode()
    + b"""<meta charset="utf-8"><script>window.headAt = performance.now()</script>""",
}
HEAD_REST = b"""<title>streamed head</title></head><body><p id="body">body</p></body></html>"""


class StreamingHandler(QuietHandler):
    """The built site, and /stream/: an app's page whose body streams for a few seconds."""

    def do_GET(self):
        if self.path in HEAD_FIRST:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(HEAD_FIRST[self.path] + b" " * 2048)
            self.wfile.flush()
            time.sleep(STREAM_PAUSE)
            self.wfile.write(HEAD_REST)
            return None
        if self.path != "/stream/":
            return super().do_GET()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(STREAM_FIRST + b" " * 2048)
        self.wfile.flush()
        time.sleep(STREAM_PAUSE)
        self.wfile.write(STREAM_REST)


@pytest.fixture(scope="module")
def site(tmp_path_factory, model_cache, other_origin):
    """A material site with instant navigation and threads on: a demo page, a page without a demo
    that embeds a frame of another origin, a demo page with such a frame, a blog with a demo post."""
    root = tmp_path_factory.mktemp("isolation")
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(StreamingHandler, directory=str(root / "site")))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    frame = f'<iframe id="frame" src="{other_origin}" title="another origin"></iframe>'
    config = write_site(root, model_cache, {
        "index.md": "# Home\n\n[To the demo](demo.md)\n",
        "demo.md": f"# Demo\n\n{DEMO}\n\n[A video page](video.md)\n",
        "video.md": f"# Video\n\nNo demo, a player from elsewhere:\n\n{frame}\n\n[Back to the demo](demo.md)\n",
        "both.md": f"# Both\n\n{DEMO}\n\n{frame}\n",
        "blog/index.md": "# Blog\n",
        "blog/posts/demo.md": POST,
    }, plugin_options="backends: [wasm]", site_url=url, threads=True)
    config.write_text(config.read_text().replace("plugins:\n", "plugins:\n  - blog\n", 1))
    result = mkdocs_build(config)
    yield root / "site", url, result
    server.shutdown()


def test_only_pages_whose_own_content_has_a_demo_are_marked(site):
    folder, _, result = site
    marked = {name: MARKER in (folder / name / "index.html").read_text()
              for name in ("", "demo", "video", "both", "blog", "blog/2024/01/15/a-demo-post")}
    assert marked == {"": False, "demo": True, "video": False, "both": False, "blog": False,
                      "blog/2024/01/15/a-demo-post": True}
    assert 'class="sanet-demo"' in (folder / "blog" / "index.html").read_text()  # the excerpt's demo is there
    assert "sanet: docs/both.md: the demo runs on one thread there: it embeds http://localhost:" in result.stderr


def fresh():
    driver = start_chromium()
    driver.execute_cdp_cmd("Emulation.setHardwareConcurrencyOverride", {"hardwareConcurrency": 4})
    return driver


def ready(driver, url):
    driver.get(url)
    WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "sanet-demo[data-sanet-ready]"))


ISOLATED = "return crossOriginIsolated"


def frame_loaded(driver) -> bool:
    """The frame of the other origin shows its page (not the browser's refusal)."""
    driver.switch_to.frame(driver.find_element(By.ID, "frame"))
    try:
        return bool(driver.find_elements(By.ID, "inside"))
    finally:
        driver.switch_to.default_content()


@pytest.mark.browser
@pytest.mark.slow
def test_isolation_stays_on_the_demo_page(site):
    _, url, _ = site
    driver = fresh()
    try:
        ready(driver, url + "demo/")
        assert driver.execute_script(ISOLATED), "the demo page is isolated (after its one reload)"
        # A click on a link: material would swap the page in place; it is loaded in full instead.
        driver.find_element(By.CSS_SELECTOR, 'article a[href$="video/"]').click()
        WebDriverWait(driver, 30).until(lambda d: d.current_url == url + "video/" and d.find_elements(By.ID, "frame"))
        WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")
        assert driver.execute_script("return performance.getEntriesByType('navigation')[0].name") == url + "video/"
        assert not driver.execute_script(ISOLATED)
        assert frame_loaded(driver)
        # Back to the demo page and forward again: the video page is never isolated.
        driver.back()
        WebDriverWait(driver, 30).until(lambda d: d.current_url == url + "demo/")
        driver.forward()
        WebDriverWait(driver, 30).until(lambda d: d.current_url == url + "video/" and d.find_elements(By.ID, "frame"))
        assert not driver.execute_script(ISOLATED) and frame_loaded(driver)
        # A demo page with a frame of another origin keeps the frame, on one thread.
        ready(driver, url + "both/")
        assert not driver.execute_script(ISOLATED) and frame_loaded(driver)
        note = driver.find_element(By.CSS_SELECTOR, "sanet-demo").get_attribute("data-sanet-threads-note")
        assert note.startswith("this page is not isolated"), note
        # The blog index shows the post's excerpt with its demo: not isolated, no reload for nothing.
        ready(driver, url + "blog/")
        assert not driver.execute_script(ISOLATED)
        assert driver.execute_script("return performance.getEntriesByType('navigation')[0].type") == "navigate"
    finally:
        driver.quit()


@pytest.mark.browser
@pytest.mark.slow
def test_the_worker_streams_what_it_does_not_change(site):
    """Another app's streamed page under the worker's scope shows its first part at once; a
    comment that mentions <sanet-demo> isolates nothing."""
    _, url, _ = site
    driver = fresh()
    try:
        ready(driver, url + "demo/")
        assert driver.execute_script("return !!navigator.serviceWorker.controller")
        driver.get(url + "stream/")
        assert driver.execute_script("return !!navigator.serviceWorker.controller")
        first, last = driver.execute_script("return [window.firstAt, window.lastAt]")
        assert last - first > 0.8 * STREAM_PAUSE * 1000, (first, last)
        assert not driver.execute_script(ISOLATED)
    finally:
        driver.quit()


@pytest.mark.browser
@pytest.mark.slow
def test_the_worker_passes_a_streamed_head_through(site):
    """The worker decides at the head's first element that is not a <meta> (the marker comes
    before it): a script at the start of a streamed head runs at once, as without the worker
    (it ran 5.0 s after the request when the worker waited for </head>), and a marked page whose
    head streams is isolated all the same."""
    _, url, _ = site
    driver = fresh()
    try:
        ready(driver, url + "demo/")
        for path, isolated in (("stream-head/", False), ("stream-head-demo/", True)):
            driver.get(url + path)
            assert driver.execute_script("return !!navigator.serviceWorker.controller"), path
            head_at = driver.execute_script("return window.headAt")
            assert head_at < 0.4 * STREAM_PAUSE * 1000, (path, head_at)
            assert driver.execute_script(ISOLATED) is isolated, path
            assert driver.find_elements(By.ID, "body"), path
    finally:
        driver.quit()
