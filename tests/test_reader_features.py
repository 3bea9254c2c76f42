"""What readers can do with a picture: passes, two styles, a mask, the photo's colours, the webcam.
Each in the Python pipeline, the CLI and the browser's API (static/sanet.js), with the same results."""

from __future__ import annotations

import os
import re
from urllib.request import urlopen

import numpy as np
import pytest
from PIL import Image

from helpers import CHROMEDRIVER, CHROMIUM, PRESETS, mkdocs_build, painting, psnr, skip_model, write_site
from mkdocs_sanet import cli, pipeline, tags

CONTENT = (96, 72)  # width, height: pads to 96x80
STYLE = (64, 64)
STYLE2 = (80, 64)


def rgb(source, size) -> np.ndarray:
    with Image.open(source) as image:
        return np.asarray(image.convert("RGB").resize(size, Image.Resampling.LANCZOS), np.float32) / 255.0


@pytest.fixture(scope="module")
def pictures() -> dict[str, np.ndarray]:
    """8-bit pictures as float32, so that the browser gets exactly the same pixels."""
    mask = np.zeros(CONTENT[::-1], np.float32)
    yy, xx = np.mgrid[:CONTENT[1], :CONTENT[0]]
    mask[(xx - 60) ** 2 + (yy - 30) ** 2 < 28**2] = 1.0
    return {"content": rgb(PRESETS / "content-cat.jpg", CONTENT), "style": rgb(painting("Starry.jpg"), STYLE),
            "style2": rgb(painting("wave.jpg"), STYLE2), "mask": mask}


@pytest.fixture(scope="module")
def stylizer(model_cache):
    """The Python pipeline of the model a default site serves (the default compression too)."""
    from mkdocs_sanet import compression, weights

    return pipeline.Stylizer(weights.resolve("default"), compression.DEFAULT, model_cache / "compressed")


# The modes: keyword arguments of pipeline.Stylizer and of the API's stylize (mask and style2 by name).
MODES = {
    "passes": {"passes": 3},
    "two-styles": {"style2": "style2", "mix": 0.3},
    "mask": {"style2": "style2", "mask": "mask"},
    "keep-colors": {"keep_colors": True},
    "strength-0": {"strength": 0.0},  # the photo back (test_evaluation: as the identity test measured)
    "all": {"passes": 2, "style2": "style2", "mask": "mask", "keep_colors": True, "strength": 0.6},
}


def python_options(mode: dict, pictures: dict) -> dict:
    return {key: pictures[value] if key in ("style2", "mask") else value for key, value in mode.items()}


# -- the pipeline --------------------------------------------------------------------------------

def test_two_styles_and_mask_reduce_to_one_style(stylizer, pictures):
    c, s, s2 = pictures["content"], pictures["style"], pictures["style2"]
    first, second = stylizer(c, s), stylizer(c, s2)
    assert np.abs(stylizer(c, s, style2=s2, mix=0.0) - first).max() < 1e-6
    assert np.abs(stylizer(c, s, style2=s2, mix=1.0) - second).max() < 1e-6
    black = np.zeros(c.shape[:2], np.float32)
    assert np.abs(stylizer(c, s, style2=s2, mask=black) - first).max() < 1e-6
    assert np.abs(stylizer(c, s, style2=s2, mask=black + 1) - second).max() < 1e-6
    # A half mask: the left takes the first style, the right the second (away from the edge).
    half = black.copy()
    half[:, 48:] = 1
    out = stylizer(c, s, style2=s2, mask=half)
    assert np.abs(out[:, :24] - first[:, :24]).mean() < np.abs(out[:, :24] - second[:, :24]).mean() / 4
    assert np.abs(out[:, 72:] - second[:, 72:]).mean() < np.abs(out[:, 72:] - first[:, 72:]).mean() / 4


def test_passes_restylize_the_result(stylizer, pictures):
    c, s = pictures["content"], pictures["style"]
    once = stylizer(c, s)
    assert np.abs(stylizer(c, s, passes=2) - stylizer(once, s)).max() < 1e-6


def test_keep_colors_takes_luminance_from_the_result(stylizer, pictures):
    c, s = pictures["content"], pictures["style"]
    result, kept = stylizer(c, s), stylizer(c, s, keep_colors=True)
    luma = np.array(pipeline.LUMA, np.float32)
    inside = np.all((kept > 0.01) & (kept < 0.99), axis=2)  # not clipped
    assert inside.mean() > 0.5
    assert np.abs((kept @ luma - result @ luma)[inside]).max() < 1e-5
    # Chroma (colour minus luminance) is the photo's.
    assert np.abs((kept - (kept @ luma)[..., None]) - (c - (c @ luma)[..., None]))[inside].max() < 1e-5


def test_match_colors_moves_the_statistics_by_the_share():
    rng = np.random.default_rng(4)
    picture = rng.uniform(0.3, 0.7, (40, 30, 3)).astype(np.float32)
    target = (np.array([0.5, 0.4, 0.6], np.float32), np.array([0.05, 0.1, 0.08], np.float32))
    assert pipeline.match_colors(picture, target, 0.0) is picture
    mean, std = pipeline.color_stats(pipeline.match_colors(picture, target, 1.0))
    np.testing.assert_allclose(mean, target[0], atol=1e-5)
    np.testing.assert_allclose(std, target[1], atol=1e-5)
    half = pipeline.match_colors(picture, target, 0.5)
    np.testing.assert_allclose(half, (picture + pipeline.match_colors(picture, target, 1.0)) / 2, atol=1e-6)
    # A flat picture stays flat (the variance floor), moved to the target's mean.
    flat = np.full((8, 8, 3), 0.2, np.float32)
    np.testing.assert_allclose(pipeline.match_colors(flat, target, 1.0), np.broadcast_to(target[0], flat.shape),
                               atol=1e-5)


def test_the_default_model_gives_the_picture_the_paintings_colours(stylizer, pictures, monkeypatch):
    """Its color_match share of the way, times the strength; with two paintings their blend."""
    c, s, s2 = pictures["content"], pictures["style"], pictures["style2"]
    share = stylizer.color_match
    assert share > 0, "the default model ships a color_match"
    with monkeypatch.context() as m:
        m.setattr(stylizer, "color_match", 0.0)
        alone, alone_half, alone_two = stylizer(c, s), stylizer(c, s, 0.5), stylizer(c, s, style2=s2, mix=0.3)
    np.testing.assert_allclose(stylizer(c, s), pipeline.match_colors(alone, pipeline.color_stats(s), share),
                               atol=1e-6)
    np.testing.assert_allclose(stylizer(c, s, 0.5),
                               pipeline.match_colors(alone_half, pipeline.color_stats(s), share * 0.5), atol=1e-6)
    blend = tuple(0.7 * a + 0.3 * b for a, b in zip(pipeline.color_stats(s), pipeline.color_stats(s2)))
    np.testing.assert_allclose(stylizer(c, s, style2=s2, mix=0.3), pipeline.match_colors(alone_two, blend, share),
                               atol=1e-6)
    # Nearer the painting's colours than the network alone.
    gap = lambda x: sum(np.abs(a - b).sum() for a, b in zip(pipeline.color_stats(x), pipeline.color_stats(s)))  # noqa: E731
    assert gap(stylizer(c, s)) < 0.5 * gap(alone)


def test_bad_pipeline_arguments(stylizer, pictures):
    c, s = pictures["content"], pictures["style"]
    with pytest.raises(pipeline.ImageSizeError, match="mask is 64x64: expected a second style and the content's"):
        stylizer(c, s, style2=s, mask=np.zeros((64, 64), np.float32))
    with pytest.raises(ValueError, match="passes is 0: expected 1, 2 or 3"):
        stylizer(c, s, passes=0)


# -- the command line ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def files(tmp_path_factory, pictures) -> dict:
    folder = tmp_path_factory.mktemp("cli")
    paths = {}
    for name in ("content", "style", "style2"):
        paths[name] = folder / f"{name}.png"
        Image.fromarray(pipeline.to_uint8(pictures[name])).save(paths[name])
    paths["mask"] = folder / "mask.png"
    Image.fromarray(pipeline.to_uint8(pictures["mask"])).save(paths["mask"])
    paths["small-mask"] = folder / "small-mask.png"
    Image.new("L", (64, 48)).save(paths["small-mask"])
    return paths


def run_cli(capsys, *args) -> tuple[int, str]:
    code = cli.main(["stylize", *map(str, args)])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("flags, mode", [
    (["--passes", "3"], "passes"),
    (["--style", "{style2}", "--style-weights", "0.7,0.3"], "two-styles"),
    (["--style", "{style2}", "--mask", "{mask}"], "mask"),
    (["--keep-colors"], "keep-colors"),
    (["--passes", "2", "--style", "{style2}", "--mask", "{mask}", "--keep-colors", "--strength", "0.6"], "all"),
])
def test_cli_matches_the_pipeline(capsys, tmp_path, files, pictures, stylizer, flags, mode, model_cache):
    output = tmp_path / "out.png"
    flags = [flag.format(**files) for flag in flags]
    code, err = run_cli(capsys, "--content", files["content"], "--style", files["style"], *flags,
                        "--output", output, "--cache-dir", model_cache)
    assert code == 0, err
    expected = pipeline.to_uint8(stylizer(pictures["content"], pictures["style"],
                                          **python_options(MODES[mode], pictures)))
    assert np.array_equal(np.asarray(Image.open(output)), expected)


@pytest.mark.parametrize("flags, message", [
    (["--style", "{style2}", "--style-weights", "0,0"], "--style-weights is '0,0': expected two finite numbers of at least 0 with a positive (finite) sum"),
    (["--style", "{style2}", "--style-weights", "1,-1"], "--style-weights is '1,-1': expected two finite numbers of at least 0"),
    (["--style", "{style2}", "--style-weights", "0.7"], "--style-weights is '0.7': expected two numbers, such as 0.7,0.3"),
    (["--style-weights", "0.7,0.3"], "--style-weights needs two --style paintings"),
    (["--style", "{style2}", "--mask", "{small-mask}"], "mask {small-mask} is 64x48: expected the content's size, 96x72"),
    (["--mask", "{mask}"], "--mask needs two --style paintings"),
    (["--style", "{style2}", "--mask", "{mask}", "--style-weights", "1,1"], "--mask and --style-weights: give one"),
    (["--passes", "0"], "--passes is 0: expected 1, 2 or 3"),
    (["--passes", "4"], "--passes is 4: expected 1, 2 or 3"),
    (["--style", "{style2}", "--style", "{style}"], "--style is given 3 times: expected one or two paintings"),
])
def test_cli_bad_values(capsys, tmp_path, files, flags, message):
    output = tmp_path / "out.png"
    flags = [flag.format(**files) for flag in flags]
    code, err = run_cli(capsys, "--content", files["content"], "--style", files["style"], *flags, "--output", output)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"mkdocs-sanet: error: {message.format(**files)}"), err
    assert not output.exists()


# -- the tag -------------------------------------------------------------------------------------

def test_tag_attributes():
    _, found = tags.extract('<% sanet_demo passes="2" style2="b.png" mix="0.25" keep_colors="true" '
                            'webcam="false" %>\n', tags.SPECS)
    assert found[0].attributes == {"passes": 2, "style2": "b.png", "mix": 0.25, "keep_colors": True, "webcam": False}


@pytest.mark.parametrize("attribute, expected", [
    ('passes="0"', "expected a whole number from 1 to 3"),
    ('passes="two"', "expected a whole number from 1 to 3"),
    ('keep_colors="yes"', "expected true or false"),
    ('webcam="on"', "expected true or false"),
    ('mix="1.5"', "expected a number from 0 to 1"),
    ('style2=""', "expected a path to an image inside docs_dir"),
])
def test_tag_attribute_errors(attribute, expected):
    with pytest.raises(tags.TagError) as error:
        tags.extract(f"# Demo\n\n<% sanet_demo {attribute} %>\n", tags.SPECS)
    assert error.value.line == 3
    assert error.value.message == f"'sanet_demo' attribute {attribute}: {expected}"


# -- the browser's API ---------------------------------------------------------------------------

JS_HELPERS = """
window.readerTest = {
  canvas(values, width, height, channels) {
    const canvas = document.createElement('canvas');
    canvas.width = width;
    canvas.height = height;
    const context = canvas.getContext('2d');
    const image = context.createImageData(width, height);
    for (let i = 0; i < width * height; i++) {
      for (let k = 0; k < 3; k++) image.data[4 * i + k] = values[channels * i + (channels === 3 ? k : 0)];
      image.data[4 * i + 3] = 255;
    }
    context.putImageData(image, 0, 0);
    return canvas;
  },
};
"""


def uint8_list(image: np.ndarray) -> list[int]:
    return pipeline.to_uint8(image).reshape(-1).tolist()


@pytest.fixture(scope="module", params=["default", "skips"])
def served(request, tmp_path_factory, model_cache, serve, demo_site, stylizer) -> dict:
    """The model the API runs, with its site (a demo page at demo/), its cache key and its Python
    pipeline: the default; the default with shallow skips (helpers.skip_model)."""
    from mkdocs_sanet import architecture, compression, weights

    def key(site):  # the model the demo page names (the code may change while the tests run)
        return re.search(r'data-sanet-model="[^"]*models/([0-9a-f]+)/"', urlopen(site + "demo/").read().decode())[1]

    if request.param == "default":
        return {"site": demo_site, "key": key(demo_site), "stylizer": stylizer}
    root = tmp_path_factory.mktemp("skip-site")
    source = weights.resolve(str(skip_model(root / "model")))
    assert [skip.name for skip in architecture.model_skips(source.widths())] == ["skip3_1", "skip2_1"]
    url = serve(root / "site" / "site")
    mkdocs_build(write_site(root / "site", model_cache, {"demo.md": "# Demo\n\n<% sanet_demo %>\n"},
                            plugin_options=f"model: {root / 'model'}\nbackends: [wasm]", site_url=url))
    return {"site": url, "key": key(url),
            "stylizer": pipeline.Stylizer(source, compression.DEFAULT, model_cache / "compressed")}


@pytest.fixture(scope="module")
def api(browser, served, pictures):
    """The demo page with the API loaded and the model prepared on WASM; the pictures as canvases."""
    assets = served["site"] + "assets/sanet/"
    browser.get(served["site"] + "demo/")
    browser.execute_script(JS_HELPERS)
    error = browser.execute_async_script("""
        const [assets, key, pictures, done] = arguments;
        (async () => {
          if (!window.sanet) await new Promise((resolve, reject) => {
            const script = document.createElement('script');
            script.src = assets + 'sanet.js';
            script.onload = resolve;
            script.onerror = reject;
            document.head.appendChild(script);
          });
          const {model} = await sanet.prepare(assets + 'tfjs/', assets + 'models/' + key + '/', ['wasm'],
                                              {choice: 'wasm'});
          window.readerModel = model;
          window.readerPictures = {};
          for (const [name, [values, width, height, channels]] of Object.entries(pictures)) {
            readerPictures[name] = readerTest.canvas(values, width, height, channels);
          }
          return '';
        })().then(done, (error) => done(String(error)));
    """, assets, served["key"],
        {name: [uint8_list(image), image.shape[1], image.shape[0], 1 if image.ndim == 2 else 3]
         for name, image in pictures.items()})
    assert error == ""
    return browser


def js_stylize(driver, mode: dict, runs: int = 1) -> dict:
    """The API's result for a mode (the last of `runs`), and tf.memory().numTensors before and after."""
    options = {"keepColors" if key == "keep_colors" else key: value for key, value in mode.items()}
    return driver.execute_async_script("""
        const [options, runs, done] = arguments;
        (async () => {
          for (const key of ['style2', 'mask']) if (options[key]) options[key] = readerPictures[options[key]];
          const before = tf.memory().numTensors;
          let values;
          for (let i = 0; i < runs; i++) {
            const out = await readerModel.stylize(readerPictures.content, readerPictures.style, options);
            values = Array.from(await out.data());
            out.dispose();
          }
          return {values, before, after: tf.memory().numTensors};
        })().then(done, (error) => done({error: String(error)}));
    """, options, runs)


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("name", list(MODES))
def test_api_matches_the_pipeline(api, served, pictures, name):
    """Each mode, for the default and for a model with shallow skips (every transform output mixed,
    masked at its own resolution, traded off and decoded alike)."""
    stylizer = served["stylizer"]
    result = js_stylize(api, MODES[name])
    assert "error" not in result, result.get("error")
    got = pipeline.to_uint8(np.array(result["values"], np.float32).reshape(CONTENT[1], CONTENT[0], 3))
    expected = pipeline.to_uint8(stylizer(pictures["content"], pictures["style"], **python_options(MODES[name], pictures)))
    assert expected.std() > 5, "a flat picture: the comparison would mean nothing"
    print(f"{name}: PSNR against the Python pipeline {psnr(got, expected):.1f} dB")
    assert psnr(got, expected) >= 30
    plain = pipeline.to_uint8(stylizer(pictures["content"], pictures["style"]))
    assert psnr(got, expected) > psnr(got, plain), "the option changed nothing"


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("name", ["passes", "two-styles", "mask", "keep-colors"])
def test_api_frees_its_tensors(api, name):
    result = js_stylize(api, MODES[name], runs=10)
    assert "error" not in result, result.get("error")
    assert result["after"] == result["before"]


@pytest.mark.browser
def test_api_refuses_bad_options(api):
    errors = api.execute_async_script("""
        const done = arguments[0];
        (async () => {
          const errors = [];
          const before = tf.memory().numTensors;
          for (const options of [{passes: 0}, {passes: 4}, {style2: readerPictures.style2, mask: readerPictures.style},
                                 {mask: readerPictures.mask}]) {
            try {
              (await readerModel.stylize(readerPictures.content, readerPictures.style, options)).dispose();
              errors.push('');
            } catch (error) {
              errors.push(error.message);
            }
          }
          errors.push(tf.memory().numTensors - before);
          return errors;
        })().then(done, (error) => done([String(error)]));
    """)
    assert errors == ["passes is 0: expected 1, 2 or 3", "passes is 4: expected 1, 2 or 3",
                      "the mask is 64x64: expected the photo's size, 96x72",
                      "a mask needs a second painting (white: the second)", 0]


# -- the webcam ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def camera_browser():
    """A Chromium of its own with a fake camera that it may use without asking."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.skip("Debian's chromium and chromium-driver are not installed")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # conftest.start_chromium's flags, and the fake camera.
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--window-size=1280,900",
                 "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(600)
    yield driver
    driver.quit()


@pytest.mark.browser
@pytest.mark.slow
def test_webcam_api(camera_browser, served, pictures):
    assets = served["site"] + "assets/sanet/"
    camera_browser.get(served["site"] + "demo/")
    camera_browser.execute_script(JS_HELPERS)
    result = camera_browser.execute_async_script("""
        const [assets, key, style, done] = arguments;
        (async () => {
          if (!window.sanet) await new Promise((resolve) => {
            const script = document.createElement('script');
            script.src = assets + 'sanet.js';
            script.onload = resolve;
            document.head.appendChild(script);
          });
          const {model} = await sanet.prepare(assets + 'tfjs/', assets + 'models/' + key + '/', ['wasm'], {choice: 'wasm'});
          const painting = readerTest.canvas(style[0], style[1], style[2], 3);
          const canvas = document.createElement('canvas');
          const requests = performance.getEntriesByType('resource').length;
          const cycles = [];
          for (let i = 0; i < 5; i++) {
            const before = tf.memory().numTensors;
            const live = await sanet.startWebcam(model, canvas, painting, {size: 64, keepColors: i % 2 === 1});
            while (live.frames < 2 && live.running) await new Promise((r) => setTimeout(r, 50));
            await live.stop();
            const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
            let sum = 0, squares = 0;
            for (let k = 0; k < data.length; k += 4) { sum += data[k]; squares += data[k] * data[k]; }
            const mean = sum / (data.length / 4);
            cycles.push({frames: live.frames, fps: live.fps, error: live.error && String(live.error),
                         tracks: live.stream.getTracks().map((t) => t.readyState),
                         width: canvas.width, height: canvas.height,
                         std: Math.sqrt(squares / (data.length / 4) - mean * mean),
                         leaked: tf.memory().numTensors - before});
          }
          return {cycles, requests: performance.getEntriesByType('resource').length - requests};
        })().then(done, (error) => done({error: String(error)}));
    """, assets, served["key"],
        [uint8_list(pictures["style"]), STYLE[0], STYLE[1]])
    assert "error" not in result, result.get("error")
    for cycle in result["cycles"]:
        assert cycle["error"] is None
        assert cycle["frames"] >= 2 and cycle["fps"] > 0
        assert cycle["tracks"] == ["ended"]
        assert max(cycle["width"], cycle["height"]) == 64
        assert cycle["std"] > 2
        assert cycle["leaked"] == 0
    assert result["requests"] == 0, "the webcam made requests"


# -- the demo's controls -------------------------------------------------------------------------

UI_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def reader_site(tmp_path_factory, model_cache, serve, pictures) -> str:
    """A site whose demo has the reader options' defaults set by the tag; PNGs at their own sizes,
    so that the browser gets exactly the pipeline's pixels."""
    from helpers import mkdocs_build, write_site

    root = tmp_path_factory.mktemp("reader-site")
    images = {}
    for name, file in (("content", "photo.png"), ("style", "painting.png"), ("style2", "wave.png")):
        images[f"images/{file}"] = root / file
        Image.fromarray(pipeline.to_uint8(pictures[name])).save(root / file)
    url = serve(root / "site")
    config = write_site(root, model_cache, {"demo.md": """\
        # Demo

        <% sanet_demo content="images/photo.png" style="images/painting.png" style2="images/wave.png" max_size="96" passes="2" mix="0.25" keep_colors="true" id="reader" %>

        <% sanet_demo id="plain" webcam="false" max_size="64" %>
        """}, plugin_options="backends: [wasm]", images=images, site_url=url)
    mkdocs_build(config)
    return url + "demo/"


SET_CONTROLS = """
const [settings, done] = arguments;
(async () => {
  const root = document.getElementById('reader');
  const control = (name) => root.querySelector(`[data-sanet-control="${name}"]`);
  for (const name of ['passes', 'mix', 'strength']) {
    control(name).value = String(settings[name]);
    control(name).dispatchEvent(new Event('input', {bubbles: true}));
  }
  if (control('keep-colors').checked !== settings.keepColors) control('keep-colors').click();
  root.querySelector(`[data-sanet-role="style2"] .sanet-demo__preset[data-sanet-src${settings.style2 ? '$="wave.png"' : '=""'}]`).click();
  const mask = root.querySelector('.sanet-demo__mask');
  if (settings.style2) {
    while (!mask.width) await new Promise((r) => setTimeout(r, 20));
    control('clear-mask').click();
  }
  if (settings.draw) {
    // A stroke with the brush, then a bit of it erased: real pointer events on the canvas.
    const box = mask.getBoundingClientRect();
    const at = (type, x, y) => mask.dispatchEvent(new PointerEvent(type, {
      bubbles: true, pointerId: 1, pointerType: 'mouse', isPrimary: true, buttons: type === 'pointerup' ? 0 : 1,
      clientX: box.left + x * box.width, clientY: box.top + y * box.height}));
    control('brush-size').value = '20';
    control('brush').click();
    at('pointerdown', 0.55, 0.2); at('pointermove', 0.8, 0.2); at('pointermove', 0.8, 0.8); at('pointerup', 0.8, 0.8);
    control('eraser').click();
    at('pointerdown', 0.8, 0.75); at('pointermove', 0.8, 0.9); at('pointerup', 0.8, 0.9);
  }
  return '';
})().then(done, (error) => done(String(error)));
"""

READ_RESULT = """
const root = document.getElementById('reader');
const read = (canvas) => canvas ? {width: canvas.width, height: canvas.height,
  pixels: Array.from(canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data)} : null;
return {state: root.dataset.sanetState, message: root.querySelector('.sanet-demo__message').textContent,
        result: read(root.querySelector('.sanet-demo__result canvas')), mask: read(root.lastMask),
        tensors: tf.memory().numTensors};
"""


def ui_stylize(driver, settings: dict) -> dict:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    assert driver.execute_async_script(SET_CONTROLS, settings) == ""
    driver.execute_script("document.getElementById('reader').dataset.sanetState = 'clicked';")
    button = driver.find_element(By.CSS_SELECTOR, "#reader .sanet-demo__run")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", button)
    button.click()
    WebDriverWait(driver, UI_TIMEOUT_S).until(
        lambda d: d.find_element(By.ID, "reader").get_attribute("data-sanet-state") in ("done", "error"))
    return driver.execute_script(READ_RESULT)


def rgba(canvas: dict) -> np.ndarray:
    return np.array(canvas["pixels"], np.uint8).reshape(canvas["height"], canvas["width"], 4)


UI_MODES = {
    "passes": {"passes": 3, "style2": False, "mix": 0.5, "strength": 1, "keepColors": False, "draw": False},
    "two-styles": {"passes": 1, "style2": True, "mix": 0.3, "strength": 1, "keepColors": False, "draw": False},
    "mask": {"passes": 1, "style2": True, "mix": 0.5, "strength": 1, "keepColors": False, "draw": True},
    "keep-colors": {"passes": 1, "style2": False, "mix": 0.5, "strength": 1, "keepColors": True, "draw": False},
    "all": {"passes": 2, "style2": True, "mix": 0.5, "strength": 0.6, "keepColors": True, "draw": True},
}


@pytest.mark.browser
def test_ui_defaults_from_the_tag(browser, reader_site):
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(reader_site)
    WebDriverWait(browser, 30).until(lambda d: d.execute_script(
        "return document.querySelectorAll('sanet-demo[data-sanet-ready]').length === 2"))
    state = browser.execute_script("""
        const read = (id) => {
          const root = document.getElementById(id);
          const control = (name) => root.querySelector(`[data-sanet-control="${name}"]`);
          const pressed = root.querySelector('[data-sanet-role="style2"] [aria-pressed="true"]');
          return {passes: control('passes').value, mix: control('mix').value, keep: control('keep-colors').checked,
                  style2: pressed && pressed.dataset.sanetSrc, webcam: !!root.querySelector('.sanet-demo__webcam'),
                  brush: !root.querySelector('.sanet-demo__brush').hidden};
        };
        return [read('reader'), read('plain')];""")
    assert state[0] == {"passes": "2", "mix": "0.25", "keep": True, "style2": "../images/wave.png", "webcam": True,
                        "brush": True}
    assert state[1] == {"passes": "1", "mix": "0.5", "keep": False, "style2": "", "webcam": False, "brush": False}


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("name", list(UI_MODES))
def test_ui_options_match_the_pipeline(browser, reader_site, stylizer, pictures, name):
    settings = UI_MODES[name]
    browser.get(reader_site)
    out = ui_stylize(browser, settings)
    assert out["state"] == "done", out["message"]
    got = rgba(out["result"])[..., :3]
    assert got.shape == pictures["content"].shape
    mask = None
    if settings["draw"]:
        drawn = rgba(out["mask"])[..., :3].mean(axis=2) / 255.0
        # White along the stroke, black where nothing was painted and where the eraser went.
        assert drawn[int(0.2 * 72), int(0.7 * 96)] == 1.0 and drawn[int(0.5 * 72), int(0.8 * 96)] == 1.0
        assert drawn[int(0.6 * 72), int(0.2 * 96)] == 0.0 and drawn[int(0.85 * 72), int(0.8 * 96)] == 0.0
        mask = drawn.astype(np.float32)
    else:
        assert out["mask"] is None
    expected = pipeline.to_uint8(stylizer(
        pictures["content"], pictures["style"], settings["strength"], passes=settings["passes"],
        style2=pictures["style2"] if settings["style2"] else None, mix=settings["mix"], mask=mask,
        keep_colors=settings["keepColors"]))
    print(f"{name}: PSNR against the Python pipeline {psnr(got, expected):.1f} dB")
    assert psnr(got, expected) >= 30


@pytest.mark.browser
@pytest.mark.slow
def test_ui_compare_download_and_tensors(browser, reader_site):
    browser.get(reader_site)
    counts = [ui_stylize(browser, UI_MODES["all"])["tensors"] for _ in range(3)]
    assert counts == [counts[0]] * 3
    state = browser.execute_async_script("""
        const done = arguments[0];
        const root = document.getElementById('reader');
        const slider = root.querySelector('[data-sanet-control="compare"]');
        slider.value = '40';
        slider.dispatchEvent(new Event('input', {bubbles: true}));
        const before = root.querySelector('.sanet-demo__before');
        const canvas = root.querySelector('.sanet-demo__result canvas');
        fetch(root.querySelector('.sanet-demo__download').href).then((r) => r.blob()).then(createImageBitmap)
          .then((bitmap) => done({clip: before.style.clipPath, before: [before.width, before.height],
                                  shown: before.getBoundingClientRect().width === canvas.getBoundingClientRect().width,
                                  result: [canvas.width, canvas.height], download: [bitmap.width, bitmap.height]}));
    """)
    assert state["clip"] == "inset(0px 60% 0px 0px)"
    assert state["before"] == state["result"] == state["download"] == list(CONTENT)
    assert state["shown"]


@pytest.mark.browser
@pytest.mark.slow
def test_ui_webcam(camera_browser, reader_site):
    """Start and stop through the button, with Chromium's fake camera: frames come, the frames per
    second are shown, the track is stopped, the tensors come back, no request is made."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    camera_browser.get(reader_site)
    WebDriverWait(camera_browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#reader[data-sanet-ready]"))
    camera_browser.execute_script("""
        const getUserMedia = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
        window.streams = [];
        navigator.mediaDevices.getUserMedia = async (constraints) => {
          const stream = await getUserMedia(constraints);
          streams.push(stream);
          return stream;
        };""")
    button = camera_browser.find_element(By.CSS_SELECTOR, "#reader .sanet-demo__webcam")
    counts = []
    for cycle in range(6):
        button.click()
        WebDriverWait(camera_browser, UI_TIMEOUT_S).until(lambda d: d.execute_script(
            "return document.getElementById('reader').dataset.sanetState") in ("live", "error"))
        WebDriverWait(camera_browser, 120).until(lambda d: "frames/s" in d.find_element(
            By.CSS_SELECTOR, "#reader .sanet-demo__timing").text)
        if cycle == 0:
            requests = camera_browser.execute_script("return performance.getEntriesByType('resource').length")
        assert button.get_attribute("aria-pressed") == "true"
        button.click()
        WebDriverWait(camera_browser, 120).until(lambda d: d.execute_script(
            "return document.getElementById('reader').dataset.sanetState") == "idle")
        counts.append(camera_browser.execute_script("return tf.memory().numTensors"))
    state = camera_browser.execute_script("""
        const canvas = document.querySelector('#reader .sanet-demo__result canvas');
        return {tracks: streams.map((s) => s.getTracks().map((t) => t.readyState)),
                requests: performance.getEntriesByType('resource').length,
                size: [canvas.width, canvas.height], pressed: document.querySelector('#reader .sanet-demo__webcam').getAttribute('aria-pressed')};""")
    assert state["tracks"] == [["ended"]] * 6
    assert counts[1:] == [counts[0]] * 5, counts
    assert state["requests"] == requests, "the webcam made requests"
    assert max(state["size"]) == 160 and state["pressed"] == "false"
