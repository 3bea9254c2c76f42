"""End to end: the built site served over HTTP, the demo run in headless Chromium (WASM), the
canvas compared with the Python pipeline's output for the same inputs."""

from __future__ import annotations

from urllib.parse import urlparse

import numpy as np
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from conftest import CONTENT_SIZE, psnr

pytestmark = [pytest.mark.browser, pytest.mark.slow]

STYLIZE_TIMEOUT_S = 240


@pytest.fixture(scope="module")
def reference(demo_images):
    """The Python pipeline's output for the demo's pictures, as 8-bit RGB."""
    from mkdocs_sanet import compression, pipeline, weights

    stylizer = pipeline.Stylizer(weights.resolve("default"), compression.DEFAULT)
    content = pipeline.load_image(demo_images["images/photo.png"], 0)
    style = pipeline.load_image(demo_images["images/painting.png"], 0)
    return {strength: pipeline.to_uint8(stylizer(content, style, strength)) for strength in (1.0, 0.5)}


def stylize(driver, demo_id: str) -> dict:
    """Click Stylize in the demo and wait until it is done; return the canvas pixels and state."""
    driver.execute_script("document.getElementById(arguments[0]).dataset.sanetState = 'clicked';", demo_id)
    button = driver.find_element(By.CSS_SELECTOR, f"#{demo_id} .sanet-demo__run")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", button)
    button.click()
    WebDriverWait(driver, STYLIZE_TIMEOUT_S).until(
        lambda d: d.find_element(By.ID, demo_id).get_attribute("data-sanet-state") in ("done", "error"))
    return driver.execute_script("""
        const root = document.getElementById(arguments[0]);
        const canvas = root.querySelector('canvas');
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


def test_demo_matches_python_pipeline(browser, demo_site, reference):
    browser.get(demo_site + "demo/")
    result = stylize(browser, "sanet-demo-1")
    assert result["state"] == "done", result["message"]
    assert result["backend"] == "wasm"
    assert (result["width"], result["height"]) == CONTENT_SIZE
    out = canvas_rgb(result)
    assert out.std() > 5, "the picture is flat: the comparison would mean nothing"
    assert psnr(out, reference[1.0]) >= 30
    assert requested_hosts(browser) == {"127.0.0.1"}


def test_strength_matches_python_pipeline(browser, demo_site, reference):
    browser.get(demo_site + "demo/")
    browser.execute_script("""
        const range = document.querySelector('#sanet-demo-1 [data-sanet-control="strength"]');
        range.value = '0.5';
        range.dispatchEvent(new Event('input'));""")
    result = stylize(browser, "sanet-demo-1")
    assert result["state"] == "done", result["message"]
    out = canvas_rgb(result)
    assert psnr(out, reference[0.5]) >= 30
    assert psnr(out, reference[1.0]) < psnr(out, reference[0.5])


def test_demo_after_instant_navigation(browser, demo_site, reference):
    """Arriving by an instant-navigation click: the demo's scripts run and it works."""
    browser.get(demo_site)
    assert not browser.find_elements(By.CSS_SELECTOR, ".sanet-demo")
    # Pages without the tag carry no runtime.
    assert not browser.execute_script("return !!window.tf || !!document.querySelector('script[src*=sanet]')")
    browser.execute_script("window.notReloaded = true;")
    # mkdocs-material intercepts clicks once it has read the sitemap.
    WebDriverWait(browser, 30).until(lambda d: d.execute_script(
        "return performance.getEntriesByType('resource').some(e => e.name.endsWith('sitemap.xml'))"))
    browser.find_element(By.LINK_TEXT, "To the demo").click()
    WebDriverWait(browser, 30).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#sanet-demo-1[data-sanet-ready]"))
    assert browser.execute_script("return window.notReloaded === true"), "the click reloaded the page"
    result = stylize(browser, "sanet-demo-1")
    assert result["state"] == "done", result["message"]
    assert psnr(canvas_rgb(result), reference[1.0]) >= 30
    assert requested_hosts(browser) == {"127.0.0.1"}


def test_tensors_are_disposed(browser, demo_site):
    browser.get(demo_site + "demo/")
    counts = [stylize(browser, "second")["tensors"] for _ in range(10)]
    assert counts[0] is not None
    assert counts == [counts[0]] * 10


def test_own_file_and_shared_download(browser, demo_site, demo_images):
    """A reader's own file through the file input; a second demo reuses the loaded model."""
    browser.get(demo_site + "demo/")
    browser.find_element(By.CSS_SELECTOR, '#second input[data-sanet-file="content"]').send_keys(
        str(demo_images["images/photo.png"]))
    first = stylize(browser, "second")
    assert first["state"] == "done", first["message"]
    assert (first["width"], first["height"]) == (128, 85)  # 150x100 scaled into 128
    second = stylize(browser, "sanet-demo-1")
    assert second["state"] == "done", second["message"]
    model_files = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name).filter(n => n.endsWith('.bin'));")
    assert len(model_files) == len(set(model_files)), "a weights file was downloaded twice"


def test_phone_width_and_dark_palette(browser, demo_site):
    """At 390 px nothing overflows sideways; in the dark palette the demo takes the theme's colours."""
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True})
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia",
                            {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    try:
        browser.get(demo_site + "demo/")
        # mkdocs-material keeps the palette of earlier visits in localStorage: start afresh.
        browser.execute_script("localStorage.clear();")
        browser.get(demo_site + "demo/")
        WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#sanet-demo-1[data-sanet-ready]"))
        layout = browser.execute_script("""
            const demo = document.getElementById('sanet-demo-1');
            const box = demo.getBoundingClientRect();
            return {scroll: document.documentElement.scrollWidth, left: box.left, right: box.right,
                    resultShown: getComputedStyle(demo.querySelector('.sanet-demo__result')).display !== 'none',
                    scheme: document.body.getAttribute('data-md-color-scheme'),
                    demoColour: getComputedStyle(demo).color, bodyColour: getComputedStyle(document.body).color};""")
        assert layout["scroll"] <= 390
        assert 0 <= layout["left"] and layout["right"] <= 390
        assert not layout["resultShown"], "the result area shows before any run"
        assert layout["scheme"] == "slate"
        assert layout["demoColour"] == layout["bodyColour"]
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
