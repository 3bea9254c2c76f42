"""WASM on several threads: static/sanet-sw.js makes the pages with a demo cross-origin isolated.
Built sites (threads on and off) and an export, served over HTTP on 127.0.0.1 (a secure context),
each test in a fresh headless Chromium, so that each starts without a service worker."""

from __future__ import annotations

import pytest
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from helpers import (DEMO_MAX_SIZE, ROOT, canvas_rgb, export, mkdocs_build, plain_page, psnr, start_chromium,
                     stylize, write_site)

pytestmark = pytest.mark.slow
browser = pytest.mark.browser

DEMO = f'<% sanet_demo content="images/photo.png" style="images/painting.png" max_size="{DEMO_MAX_SIZE}" %>'
# The demo page's state once it is ready: isolation, the service worker, the cross-origin picture.
STATE = """return {isolated: crossOriginIsolated, controlled: !!navigator.serviceWorker.controller,
    note: document.querySelector('sanet-demo') ? document.querySelector('sanet-demo').dataset.sanetThreadsNote : null,
    reloads: Object.keys(sessionStorage).filter(k => k.startsWith('sanet-sw-reloaded:')),
    elsewhere: document.getElementById('elsewhere') ? document.getElementById('elsewhere').naturalWidth : null};"""


# TF.js's WASM backend runs on half the logical cores that the browser reports: this machine's 2
# would give one thread. Chromium reports 4 instead, so that an isolated page runs on 2.
CORES = 4


@pytest.fixture
def fresh_browser():
    driver = start_chromium()
    driver.execute_cdp_cmd("Emulation.setHardwareConcurrencyOverride", {"hardwareConcurrency": CORES})
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def elsewhere(tmp_path_factory, serve) -> str:
    """A picture on another origin that sends no Cross-Origin-Resource-Policy."""
    folder = tmp_path_factory.mktemp("elsewhere")
    Image.new("RGB", (6, 4), (200, 40, 40)).save(folder / "pic.png")
    return serve(folder).replace("127.0.0.1", "localhost") + "pic.png"


def build(root, model_cache, demo_images, serve, elsewhere, threads: bool) -> str:
    url = serve(root / "site")
    config = write_site(root, model_cache, {
        "index.md": "# Home\n\nNo demo here. [To the demo](demo.md)\n",
        "demo.md": f'# Demo\n\n{DEMO}\n\n<img id="elsewhere" src="{elsewhere}" alt="from another origin">\n',
    }, plugin_options="backends: [wasm]", images=demo_images, site_url=url, threads=threads)
    mkdocs_build(config)
    assert (root / "site" / "sanet-sw.js").is_file() == threads
    assert ('service-worker="../sanet-sw.js"' in (root / "site" / "demo" / "index.html").read_text()) == threads
    return url


@pytest.fixture(scope="module")
def threads_site(tmp_path_factory, model_cache, demo_images, serve, elsewhere) -> str:
    return build(tmp_path_factory.mktemp("threads-site"), model_cache, demo_images, serve, elsewhere, True)


@pytest.fixture(scope="module")
def one_thread_site(tmp_path_factory, model_cache, demo_images, serve, elsewhere) -> str:
    return build(tmp_path_factory.mktemp("one-thread-site"), model_cache, demo_images, serve, elsewhere, False)


def ready(driver, url: str, selector: str = "sanet-demo") -> dict:
    driver.get(url)
    WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, f"{selector}[data-sanet-ready]"))
    return driver.execute_script(STATE)


def run(driver, demo_id: str) -> dict:
    result = stylize(driver, demo_id)
    assert result["state"] == "done", result["message"]
    assert result["backend"] == "wasm"
    demo = driver.find_element(By.ID, demo_id)
    result["threads"] = int(demo.get_attribute("data-sanet-threads"))
    result["timing"] = demo.find_element(By.CSS_SELECTOR, ".sanet-demo__timing").text
    return result


@pytest.fixture(scope="module")
def one_thread(one_thread_site) -> dict:
    """threads: false: no service worker, the demo as before (one thread); its picture."""
    driver = start_chromium()
    driver.execute_cdp_cmd("Emulation.setHardwareConcurrencyOverride", {"hardwareConcurrency": CORES})
    try:
        state = ready(driver, one_thread_site + "demo/")
        result = run(driver, "sanet-demo-1")
        registrations = driver.execute_async_script(
            "navigator.serviceWorker.getRegistrations().then(r => arguments[0](r.length));")
        has_attribute = driver.execute_script("return document.querySelector('sanet-demo').hasAttribute('service-worker')")
    finally:
        driver.quit()
    return {"state": state, "result": result, "registrations": registrations, "has_attribute": has_attribute}


def test_worker_at_the_root_only_with_a_demo(tmp_path, model_cache):
    """The worker is written at the site's root and each demo names it relative to its page;
    a site without a demo gets no worker."""
    config = write_site(tmp_path / "demo", model_cache, {
        "index.md": "# Home\n", "a/b/deep.md": "# Deep\n\n<% sanet_demo %>\n"}, threads=True)
    mkdocs_build(config)
    site = config.parent / "site"
    assert (site / "sanet-sw.js").read_bytes() == (ROOT / "mkdocs_sanet" / "static" / "sanet-sw.js").read_bytes()
    assert 'service-worker="../../../sanet-sw.js"' in (site / "a" / "b" / "deep" / "index.html").read_text()
    assert "service-worker" not in (site / "index.html").read_text()
    config = write_site(tmp_path / "plain", model_cache, {"index.md": "# Home\n"}, threads=True)
    mkdocs_build(config)
    assert not (config.parent / "site" / "sanet-sw.js").exists()


@browser
def test_threads_off_registers_nothing_and_runs_one_thread(one_thread):
    assert one_thread["registrations"] == 0
    assert not one_thread["has_attribute"]
    assert one_thread["state"]["isolated"] is False
    assert one_thread["state"]["note"] is None  # no attempt, so nothing to explain
    assert one_thread["result"]["threads"] == 1
    assert one_thread["result"]["timing"].endswith("on WASM, 1 thread")
    assert canvas_rgb(one_thread["result"]).std() > 5


@browser
def test_demo_page_gets_threads_and_the_same_picture(fresh_browser, threads_site, one_thread):
    state = ready(fresh_browser, threads_site + "demo/")
    # The first visit registered the worker and reloaded once, before the demo was ready.
    assert state == {"isolated": True, "controlled": True, "note": "", "reloads": ["sanet-sw-reloaded:/demo/"],
                     "elsewhere": 6}, "credentialless lets the cross-origin picture load"
    assert fresh_browser.execute_script("return performance.getEntriesByType('navigation')[0].type") == "reload"
    result = run(fresh_browser, "sanet-demo-1")
    assert result["threads"] == CORES // 2
    assert result["timing"].endswith(f"on WASM, {result['threads']} threads")
    out, single = canvas_rgb(result), canvas_rgb(one_thread["result"])
    assert out.shape == single.shape
    print(f"PSNR, {result['threads']} threads against one: {psnr(out, single):.1f} dB")
    assert psnr(out, single) >= 40
    # A later visit is isolated from the start: no second reload.
    state = ready(fresh_browser, threads_site + "demo/")
    assert state["isolated"] and state["reloads"] == ["sanet-sw-reloaded:/demo/"]
    assert fresh_browser.execute_script("return performance.getEntriesByType('navigation')[0].type") == "navigate"


@browser
def test_page_without_demo_is_not_isolated(fresh_browser, threads_site):
    assert ready(fresh_browser, threads_site + "demo/")["isolated"]
    fresh_browser.get(threads_site)
    state = fresh_browser.execute_script(STATE)
    # The worker serves the page (it controls the whole site) and leaves it as it was.
    assert state["controlled"] and not state["isolated"]
    assert fresh_browser.execute_script("return document.title").startswith("sanet test site")
    # A redirect passes through as it came (the server's /demo -> /demo/), and the page it leads to is isolated.
    fresh_browser.get(threads_site + "demo")
    assert fresh_browser.current_url == threads_site + "demo/"
    assert fresh_browser.execute_script("return crossOriginIsolated")
    # An error page passes through too.
    fresh_browser.get(threads_site + "missing/")
    assert fresh_browser.execute_script("return !crossOriginIsolated && !!navigator.serviceWorker.controller")
    assert "404" in fresh_browser.page_source or "not found" in fresh_browser.page_source.lower()


def plain_site(root, model_cache, worker_url: str) -> None:
    """An export at /static/sanet/ and a page at /blog/post.html whose demo names this worker."""
    result = export(root / "static" / "sanet", "--cache-dir", str(model_cache),
                    "--runtime-dir", str(ROOT / "node_modules"))
    assert result.returncode == 0, result.stderr[-3000:]
    (root / "blog").mkdir()
    (root / "blog" / "post.html").write_text(
        plain_page(f'id="plain" max-size="128" backends="wasm" service-worker="{worker_url}"'))


@browser
def test_export_page_gets_threads_with_the_worker_at_the_root(fresh_browser, tmp_path, model_cache, serve):
    """An export at /static/sanet/, its sanet-sw.js copied to the site's root, as its README says."""
    plain_site(tmp_path, model_cache, "/sanet-sw.js")
    assert "sanet-sw.js" in (tmp_path / "static" / "sanet" / "README.txt").read_text()
    (tmp_path / "sanet-sw.js").write_bytes((tmp_path / "static" / "sanet" / "sanet-sw.js").read_bytes())
    url = serve(tmp_path)
    state = ready(fresh_browser, url + "blog/post.html")
    assert (state["isolated"], state["note"], state["reloads"]) == (True, "", ["sanet-sw-reloaded:/blog/post.html"])
    result = run(fresh_browser, "plain")
    assert result["threads"] == CORES // 2
    assert canvas_rgb(result).std() > 5


@browser
def test_a_worker_that_cannot_be_registered_leaves_one_thread(fresh_browser, tmp_path, model_cache, serve):
    """A wrong service-worker URL: the demo gets ready as without it, and says why (no model run)."""
    plain_site(tmp_path, model_cache, "/missing-sw.js")
    state = ready(fresh_browser, serve(tmp_path) + "blog/post.html")
    assert (state["isolated"], state["controlled"], state["reloads"]) == (False, False, [])
    assert state["note"].startswith("the service worker could not be registered ("), state["note"]
    assert fresh_browser.find_element(By.CSS_SELECTOR, "#plain .sanet-demo__run").is_enabled()
