"""End to end: the built site served over HTTP, the demo run in headless Chromium (WASM), the
canvas compared with the Python pipeline's output for the same inputs."""

from __future__ import annotations


import numpy as np
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from helpers import CONTENT_SIZE, PRESETS, canvas_rgb, default_stylizer, mkdocs_build, painting, psnr, requested_hosts, save_png, stylize, write_site
from helpers import alpha_png, exif_jpeg

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def reference(demo_images):
    """The Python pipeline's output for the demo's pictures, as 8-bit RGB."""
    from mkdocs_sanet import compression, pipeline, weights

    stylizer = pipeline.Stylizer(weights.resolve("default"), compression.DEFAULT)
    content = pipeline.load_image(demo_images["images/photo.png"], 0)
    style = pipeline.load_image(demo_images["images/painting.png"], 0)
    return {strength: pipeline.to_uint8(stylizer(content, style, strength)) for strength in (1.0, 0.5)}


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


# -- pictures as phones make them, and the choice of backend ----------------------------------

# Makes this headless Chromium's software WebGL (SwiftShader) look like a GPU's, for the probes of
# static/sanet.js: no performance caveat, a hardware renderer's name.
PRETEND_HARDWARE_WEBGL = """
const getContext = HTMLCanvasElement.prototype.getContext;
HTMLCanvasElement.prototype.getContext = function (type, attributes) {
  if (attributes && attributes.failIfMajorPerformanceCaveat) {
    attributes = Object.assign({}, attributes, {failIfMajorPerformanceCaveat: false});
  }
  return getContext.call(this, type, attributes);
};
const getParameter = WebGL2RenderingContext.prototype.getParameter;
WebGL2RenderingContext.prototype.getParameter = function (name) {
  return name === 0x9246 ? "Test GPU" : getParameter.call(this, name);  // UNMASKED_RENDERER_WEBGL
};
"""


@pytest.fixture(scope="module")
def inputs_site(tmp_path_factory, model_cache, serve) -> tuple[str, dict]:
    """A site whose demos take an EXIF-turned JPEG and a transparent PNG, and tiny pictures for
    WebGL (software-rendered here: slow); backends webgl, then wasm."""
    folder = tmp_path_factory.mktemp("input-images")
    images = {
        "images/turned.jpg": exif_jpeg(folder / "turned.jpg", 6, (96, 64)),
        "images/alpha.png": alpha_png(folder / "alpha.png", (80, 72)),
        "images/small-photo.png": save_png(PRESETS / "content-cat.jpg", folder / "small-photo.png", (64, 64)),
        "images/small-painting.png": save_png(painting("Starry.jpg"), folder / "small-painting.png", (64, 64)),
    }
    root = tmp_path_factory.mktemp("inputs-site")
    url = serve(root / "site")
    config = write_site(root, model_cache, {
        "index.md": "# Home\n",
        "inputs.md": """\
            # Inputs

            <% sanet_demo id="turned" content="images/turned.jpg" style="images/alpha.png" max_size="128" %>

            <% sanet_demo id="alpha" content="images/alpha.png" style="images/turned.jpg" max_size="128" %>
            """,
        "small.md": '# Small\n\n<% sanet_demo content="images/small-photo.png" style="images/small-painting.png" '
                    'max_size="64" %>\n',
    }, plugin_options="backends: [webgl, wasm]", images=images, site_url=url)
    mkdocs_build(config)
    return url, images


def python_output(content, style, background=None) -> np.ndarray:
    """The Python pipeline's picture; background: lay transparency on this colour instead."""
    from PIL import Image

    from mkdocs_sanet import pipeline

    def load(path):
        if background is None:
            return pipeline.load_image(path, 0)
        with Image.open(path) as image:
            rgba = image.convert("RGBA")
        flat = Image.alpha_composite(Image.new("RGBA", rgba.size, background + (255,)), rgba).convert("RGB")
        return np.asarray(flat, np.float32) / 255

    return pipeline.to_uint8(default_stylizer()(load(content), load(style)))


def timing_text(driver, demo_id: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, f"#{demo_id} .sanet-demo__timing").text


def test_exif_orientation_and_transparency_match_python(browser, inputs_site):
    url, images = inputs_site
    turned, alpha = images["images/turned.jpg"], images["images/alpha.png"]
    browser.get(url + "inputs/")
    result = stylize(browser, "turned")
    assert result["state"] == "done", result["message"]
    assert (result["width"], result["height"]) == (64, 96), "the photo was not turned upright"
    assert psnr(canvas_rgb(result), python_output(turned, alpha)) >= 30

    result = stylize(browser, "alpha")
    assert result["state"] == "done", result["message"]
    out = canvas_rgb(result)
    on_white = python_output(alpha, turned)
    assert psnr(out, on_white) >= 30
    assert psnr(out, python_output(alpha, turned, background=(0, 0, 0))) < psnr(out, on_white) - 3

    # The reader's own file (createImageBitmap) is turned the same way.
    browser.find_element(By.CSS_SELECTOR, '#alpha input[data-sanet-file="content"]').send_keys(str(turned))
    browser.find_element(By.CSS_SELECTOR, '#alpha input[data-sanet-file="style"]').send_keys(str(alpha))
    result = stylize(browser, "alpha")
    assert result["state"] == "done", result["message"]
    assert (result["width"], result["height"]) == (64, 96)
    assert psnr(canvas_rgb(result), python_output(turned, alpha)) >= 30


def test_auto_passes_over_software_webgl_and_the_reader_can_choose(browser, inputs_site):
    url, _ = inputs_site
    browser.get(url + "small/")
    auto = stylize(browser, "sanet-demo-1")
    assert auto["state"] == "done", auto["message"]
    assert auto["backend"] == "wasm"
    assert "on WASM (WebGL is software-rendered here (SwiftShader))" in timing_text(browser, "sanet-demo-1")

    # The reader picks WebGL anyway: slow here, but the same picture.
    browser.execute_script("""
        const select = document.querySelector('#sanet-demo-1 [data-sanet-control="backend"]');
        select.value = 'webgl';
        select.dispatchEvent(new Event('change'));""")
    chosen = stylize(browser, "sanet-demo-1")
    assert chosen["state"] == "done", chosen["message"]
    assert chosen["backend"] == "webgl"
    assert "on WebGL (your choice)" in timing_text(browser, "sanet-demo-1")
    assert psnr(canvas_rgb(chosen), canvas_rgb(auto)) >= 30


def test_16_bit_webgl_falls_back_and_says_so(browser, inputs_site):
    """On a GPU whose textures are 16-bit floats (TF.js's WEBGL_FORCE_F16_TEXTURES, as on many
    phones) the features overflow: Auto runs WASM and says why; chosen by hand, WebGL's first run
    is caught giving non-finite numbers."""
    url, _ = inputs_site
    script = browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": PRETEND_HARDWARE_WEBGL})
    try:
        browser.get(url + "small/")
        browser.execute_async_script("""
            const done = arguments[0];
            const base = new URL(document.querySelector('.sanet-demo').dataset.sanetRuntime, location.href).href;
            (async () => {
              await sanet.loadScript(base + 'tf-core.min.js');
              await sanet.loadScript(base + 'tf-backend-webgl.min.js');
              tf.env().set('WEBGL_FORCE_F16_TEXTURES', true);
            })().then(done, (error) => done(String(error)));""")
        auto = stylize(browser, "sanet-demo-1")
        assert auto["state"] == "done", auto["message"]
        assert auto["backend"] == "wasm"
        assert ("on WASM (WebGL has only 16-bit float textures here, too narrow for this model's features)"
                in timing_text(browser, "sanet-demo-1"))
        browser.execute_script("""
            const select = document.querySelector('#sanet-demo-1 [data-sanet-control="backend"]');
            select.value = 'webgl';""")
        chosen = stylize(browser, "sanet-demo-1")
        assert chosen["state"] == "error"
        assert "WebGL's first run gave non-finite numbers: choose Auto or another backend" in chosen["message"]
    finally:
        browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": script["identifier"]})
