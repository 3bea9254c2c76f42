"""The demo's pictures and what it tells the reader: the built-in paintings (real public-domain
paintings, each with its title, artist and year under it and in the result's caption), a demo's own
presets (contents="…", styles="…", checked at build time), the progress of the runtime's and the
model's downloads, the status line at a phone's 390 px, the result's file name and its size."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from helpers import PRESETS, SHARED_PAINTINGS, mkdocs_build, save_png, stylize, write_site

PAINTINGS = {
    "style-cafe-terrace.jpg": ("Café Terrace at Night", "Vincent van Gogh, 1888"),
    "style-night-cafe.jpg": ("The Night Café", "Vincent van Gogh, 1888"),
    "style-church-at-auvers.jpg": ("The Church at Auvers", "Vincent van Gogh, 1890"),
    "style-harvest.jpg": ("The Harvest", "Vincent van Gogh, 1888"),
}
SMALL_PHOTO = (120, 80)  # the demo's own photo: smaller than its largest size (128)

PAGE = """\
# Presets

<% sanet_demo id="builtin" %>

A demo with its own pictures:

<% sanet_demo id="own" contents="img/small-photo.png, img/bridge.png" styles="img/night.png" max_size="128" %>
"""


# -- the shipped files (no browser) --------------------------------------------------------------

def test_builtin_presets_are_listed_paintings_with_credits():
    from mkdocs_sanet import page_assets

    listed = page_assets.builtin_presets()
    assert [e["file"] for e in listed["style"]] == list(PAINTINGS)
    readme = (PRESETS / "README.md").read_text()
    total = 0
    for entry in listed["style"]:
        assert (entry["title"], f"{entry['artist']}, {entry['year']}") == PAINTINGS[entry["file"]]
        path = PRESETS / entry["file"]
        with Image.open(path) as image:
            assert image.format == "JPEG" and 380 <= max(image.size) <= 512, (path, image.size)
        total += path.stat().st_size
        assert f"`{entry['file']}`" in readme, f"{entry['file']}: no source and licence in presets/README.md"
    assert total <= 400_000, f"the built-in paintings take {total} bytes"
    # The generated patterns are no longer offered, and no evaluation painting is shipped.
    assert not {"style-mosaic.jpg", "style-swirls.jpg", "style-composition.jpg"} & set(page_assets.presets_by_role()["style"])
    shipped = {p.read_bytes() for p in PRESETS.glob("*.jpg")}
    for evaluation in SHARED_PAINTINGS.glob("*"):
        assert evaluation.read_bytes() not in shipped, evaluation
    # The export's index carries the titles, for a page written by hand.
    index = page_assets.presets_index()
    assert index["titles"]["style-night-cafe.jpg"] == {"title": "The Night Café", "artist": "Vincent van Gogh",
                                                      "year": "1888"}


# -- a demo's own presets, checked at build time -------------------------------------------------

@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("preset-images")
    return {
        "img/small-photo.png": save_png(PRESETS / "content-cat.jpg", folder / "small-photo.png", SMALL_PHOTO),
        "img/bridge.png": save_png(PRESETS / "content-coffee.jpg", folder / "bridge.png", (96, 64)),
        "img/night.png": save_png(PRESETS / "style-night-cafe.jpg", folder / "night.png", (96, 76)),
    }


@pytest.fixture(scope="module")
def site(tmp_path_factory, model_cache, images, serve) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("presets-site")
    url = serve(root / "site")
    config = write_site(root, model_cache, {"index.md": "# Home\n", "demo.md": PAGE},
                        plugin_options="backends: [wasm]", images=images, site_url=url)
    mkdocs_build(config)
    return root, url + "demo/"


def test_per_demo_presets_in_the_html(site):
    root, _ = site
    html = (root / "site" / "demo" / "index.html").read_text()
    own = html[html.index('id="own"'):]
    own = own[:own.index("</sanet-demo>")]
    content = own[own.index('data-sanet-role="content"'):own.index('data-sanet-role="style"')]
    style = own[own.index('data-sanet-role="style"'):]
    assert content.count('class="sanet-demo__preset"') == 2 and "../img/small-photo.png" in content
    assert "presets/content-" not in content
    assert style.count('class="sanet-demo__preset"') == 1 and "../img/night.png" in style
    builtin = html[html.index('id="builtin"'):html.index('id="own"')]
    for title, by in PAINTINGS.values():
        assert f'data-sanet-title="{title}" data-sanet-by="{by}"' in builtin
        assert f'<span class="sanet-demo__by">{by}</span>' in builtin
    assert "style-mosaic" not in html and "Swirls" not in html
    shipped = {p.name for p in (root / "site" / "assets" / "sanet" / "presets").iterdir()}
    assert shipped == {"README.md", *PAINTINGS, "content-astronaut.jpg", "content-cat.jpg", "content-coffee.jpg"}


@pytest.mark.parametrize("attribute, expected", [
    ('styles="img/missing.png"', 'styles="img/missing.png": no such file in docs_dir'),
    ('contents="img/small-photo.png,"', "expected comma-separated paths to images inside docs_dir"),
    ('contents="../outside.png"', 'contents="../outside.png" leaves docs_dir'),
    ('styles="img/notes.txt"', 'styles="img/notes.txt"'),
])
def test_per_demo_presets_errors_name_page_and_line(tmp_path, model_cache, images, attribute, expected):
    (tmp_path / "docs" / "img").mkdir(parents=True)
    (tmp_path / "docs" / "img" / "notes.txt").write_text("not a picture")
    config = write_site(tmp_path, model_cache, {"demo.md": f"# Demo\n\nText.\n\n<% sanet_demo {attribute} %>\n"},
                        images=images)
    result = mkdocs_build(config, check=False)
    assert result.returncode != 0
    assert f"docs{os.sep}demo.md:5: " in result.stderr and expected in result.stderr, result.stderr[-1500:]


# -- in Chromium ---------------------------------------------------------------------------------

# Records, while the demo loads and runs, the widest the page gets and each progress bar shown.
WATCH_JS = """
const demo = document.getElementById(arguments[0]);
window.sanetWatch = {scroll: 0, bars: {}, messages: []};
const look = () => {
  const w = window.sanetWatch;
  w.scroll = Math.max(w.scroll, document.documentElement.scrollWidth);
  const bar = demo.querySelector('.sanet-demo__status progress');
  if (!bar.hidden) {
    const label = bar.getAttribute('aria-label');
    w.bars[label] = Math.max(w.bars[label] || 0, bar.value);
  }
  const message = demo.querySelector('.sanet-demo__message').textContent;
  if (w.messages[w.messages.length - 1] !== message) w.messages.push(message);
};
new MutationObserver(look).observe(demo, {subtree: true, childList: true, attributes: true, characterData: true});
"""


def phone(browser):
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True})


def test_builtin_paintings_captions_and_result(browser, site, tmp_path_factory):
    """Each painting's title, artist and year under it; the result says which photo and painting it
    is, what the downloads and the run took; the PNG's name says the same; the status line never
    widens the page at 390 px, with the runtime's and the model's progress shown on the way."""
    _, url = site
    shots = tmp_path_factory.mktemp("preset-screenshots")
    phone(browser)
    try:
        browser.get(url)
        WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#builtin[data-sanet-ready]"))
        captions = browser.execute_script("""
            return [...document.querySelectorAll('#builtin [data-sanet-role="style"] .sanet-demo__option')].map(o => ({
                text: o.querySelector('.sanet-demo__caption').innerText.replace(/\\s+/g, ' ').trim(),
                name: o.querySelector('.sanet-demo__preset').title,
                visible: o.querySelector('.sanet-demo__caption').getBoundingClientRect().height > 0}));""")
        assert [c["text"] for c in captions] == [f"{t} {b}" for t, b in PAINTINGS.values()]
        assert [c["name"] for c in captions] == [f"{t}, {b}" for t, b in PAINTINGS.values()]
        assert all(c["visible"] for c in captions)
        browser.execute_script("document.getElementById('builtin').scrollIntoView()")
        browser.save_screenshot(str(shots / "phone-presets.png"))
        # Pick the second photo and The Night Café by their captions, at the smallest size.
        browser.execute_script("""
            const demo = document.getElementById('builtin');
            demo.querySelectorAll('[data-sanet-role="content"] .sanet-demo__caption')[1].click();
            demo.querySelectorAll('[data-sanet-role="style"] .sanet-demo__caption')[1].click();
            const size = demo.querySelector('[data-sanet-control="max-size"]');
            size.value = '128';
            size.dispatchEvent(new Event('change'));""")
        browser.execute_script(WATCH_JS, "builtin")
        result = stylize(browser, "builtin")
        assert result["state"] == "done", result["message"]
        browser.execute_script("document.querySelector('#builtin .sanet-demo__result').scrollIntoView()")
        browser.save_screenshot(str(shots / "phone-result.png"))
        facts = browser.execute_script("""
            const demo = document.getElementById('builtin');
            return {watch: window.sanetWatch, credit: demo.querySelector('.sanet-demo__credit').textContent,
                    timing: demo.querySelector('.sanet-demo__timing').textContent,
                    file: demo.querySelector('.sanet-demo__download').getAttribute('download'),
                    href: demo.querySelector('.sanet-demo__download').href,
                    download: Number(demo.dataset.sanetDownloadSeconds), seconds: Number(demo.dataset.sanetSeconds),
                    label: demo.querySelector('.sanet-demo__result canvas').getAttribute('aria-label')};""")
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    print(json.dumps({k: v for k, v in facts.items() if k != "watch"}, ensure_ascii=False), facts["watch"]["bars"])
    assert facts["credit"] == "Cat in the style of The Night Café (Vincent van Gogh, 1888)"
    assert facts["file"] == "cat-in-the-style-of-the-night-cafe.png"
    assert facts["href"].startswith("blob:"), "Done was said before the PNG was ready"
    assert "“The Night Café”" in facts["label"]
    # The time split: the downloads (runtime and model), then the stylization.
    assert facts["download"] > 0 and facts["seconds"] > 0
    assert "downloaded in" in facts["timing"] and "stylized in" in facts["timing"], facts["timing"]
    # Progress for the runtime, then for the model, and the page never wider than the phone.
    bars = facts["watch"]["bars"]
    assert bars.get("The TF.js runtime's download", 0) > 100_000, bars
    assert bars.get("The model's download", 0) > 100_000, bars
    assert facts["watch"]["scroll"] <= 390, facts["watch"]


def test_status_line_worst_case_at_390(browser, site):
    """The longest status the demo shows (both amounts, a backend's long note) wraps inside the
    demo at 390 px instead of widening the page."""
    _, url = site
    phone(browser)
    try:
        browser.get(url)
        WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#builtin[data-sanet-ready]"))
        facts = browser.execute_script("""
            const demo = document.getElementById('builtin');
            demo.showProgress(12.345e6, 14.5e6, "The model's download");
            demo.say('Warming up (WASM (WebGL is software-rendered here (SwiftShader); WebGPU has no adapter here), '
                     + '1 thread)… https://example.org/a/very/long/unbroken/address/of/a/model/folder/manifest.json');
            const status = demo.querySelector('.sanet-demo__status').getBoundingClientRect();
            const box = demo.getBoundingClientRect();
            return {scroll: document.documentElement.scrollWidth, right: status.right, demoRight: box.right};""")
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    assert facts["scroll"] <= 390 and facts["right"] <= facts["demoRight"] + 0.5, facts


def test_size_given_is_the_size_said(browser, site):
    """A photo smaller than the size chosen is not enlarged, and the caption says so; the demo's own
    presets are the ones offered; the file name names its pictures."""
    _, url = site
    browser.get(url)
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#own[data-sanet-ready]"))
    offered = browser.execute_script("""
        return [...document.querySelectorAll('#own [data-sanet-role="style"] .sanet-demo__preset')].map(b => b.title);""")
    assert offered == ["Night"]
    result = stylize(browser, "own")
    assert result["state"] == "done", result["message"]
    assert (result["width"], result["height"]) == SMALL_PHOTO
    facts = browser.execute_script("""
        const demo = document.getElementById('own');
        return {timing: demo.querySelector('.sanet-demo__timing').textContent,
                file: demo.querySelector('.sanet-demo__download').getAttribute('download'),
                credit: demo.querySelector('.sanet-demo__credit').textContent};""")
    assert facts["timing"].startswith("120×80 (the photo is smaller than 128 px and is not enlarged)"), facts
    assert facts["file"] == "small-photo-in-the-style-of-night.png"
    assert facts["credit"] == "Small photo in the style of Night"
