"""A demo starts whatever its pictures are called, and names a file it cannot use (issue 30, item 4):
a '%', '#' or space in a picture's name under the plugin (the site's presets and a demo's own) and
in an export's presets/presets.json (Zensical's: test_zensical.py); an SVG, a text file or an empty
file picked as the reader's own picture is said so at once, and a good one picked next clears it."""

from __future__ import annotations

import json
import re

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from helpers import PRESETS, ROOT, export, mkdocs_build, plain_page, save_png, stylize, write_site

# decodeURIComponent("50% off") throws "URI malformed"; '#' would end a raw URL's path.
ODD = "50% off #1"

PAGE = f"""\
# Names

<% sanet_demo id="site" max_size="128" %>

<% sanet_demo id="own" contents="img/{ODD}.png" styles="img/night.png" max_size="128" %>
"""

# Each picker's pictures: whether each is loaded and drawn, its URL and title; the demo's state.
PICTURES_JS = """
const demo = document.getElementById(arguments[0]);
const images = [...demo.querySelectorAll('.sanet-demo__pickers .sanet-demo__preset img')];
await Promise.all(images.map((img) => img.decode().catch(() => null)));
return {state: demo.dataset.sanetState, message: demo.querySelector('.sanet-demo__message').textContent,
        pictures: images.map((img) => ({loaded: img.complete && img.naturalWidth > 0, src: img.getAttribute('src'),
                                        title: img.closest('.sanet-demo__preset').dataset.sanetTitle}))};
"""


def pictures(browser, demo_id: str) -> dict:
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, f"#{demo_id}[data-sanet-ready]"))
    return browser.execute_script(f"return (async () => {{ {PICTURES_JS} }})()", demo_id)


@pytest.fixture(scope="module")
def odd_site(tmp_path_factory, model_cache, serve) -> tuple:
    root = tmp_path_factory.mktemp("odd-names")
    folder = tmp_path_factory.mktemp("odd-images")
    images = {f"img/{ODD}.png": save_png(PRESETS / "content-cat.jpg", folder / "odd.png", (96, 64)),
              "img/night.png": save_png(PRESETS / "style-night-cafe.jpg", folder / "night.png", (96, 76))}
    url = serve(root / "site")
    config = write_site(root, model_cache, {"index.md": "# Home\n", "names.md": PAGE}, images=images, site_url=url,
                        plugin_options=f"backends: [wasm]\npresets:\n  content: ['img/{ODD}.png']\n"
                                       f"  style: [img/night.png]")
    mkdocs_build(config)
    return root, url


def test_odd_names_are_encoded_in_the_plugins_html(odd_site):
    root, _ = odd_site
    html = (root / "site" / "names" / "index.html").read_text()
    for demo in ("site", "own"):
        part = html[html.index(f'id="{demo}"'):]
        part = part[:part.index("</sanet-demo>")]
        assert 'data-sanet-src="../img/50%25%20off%20%231.png"' in part, demo
        assert f'data-sanet-title="{ODD}"' in part, demo
    urls = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert not [u for u in urls if re.search(r"%(?![0-9A-Fa-f]{2})|[ #]1", u)], "a raw name left in a URL"


@pytest.mark.browser
def test_odd_names_start_the_plugins_demo(browser, odd_site):
    _, url = odd_site
    browser.get(url + "names/")
    for demo in ("site", "own"):
        facts = pictures(browser, demo)
        assert facts["state"] != "error", facts["message"]
        odd = [p for p in facts["pictures"] if p["title"] == ODD]
        assert odd and all(p["loaded"] for p in facts["pictures"]), facts
    result = stylize(browser, "own")
    assert result["state"] == "done", result["message"]
    assert (result["width"], result["height"]) == (96, 64)


@pytest.mark.browser
def test_odd_names_in_an_exports_presets_json(browser, tmp_path, model_cache, serve):
    """presets.json lists file names, which the demo encodes: an author's own preset named with a
    '%' (its title from the name), and another from its titles."""
    export_dir = tmp_path / "static" / "sanet"
    result = export(export_dir, "--cache-dir", str(model_cache), "--runtime-dir", str(ROOT / "node_modules"))
    assert result.returncode == 0, result.stderr[-3000:]
    presets = export_dir / "presets"
    (presets / "content-cat.jpg").rename(presets / f"{ODD}.jpg")
    (presets / "style-night-cafe.jpg").rename(presets / "100%.jpg")
    index = json.loads((presets / "presets.json").read_text())
    index["content"] = [f"{ODD}.jpg"]
    index["style"] = ["100%.jpg"]
    index["titles"] = {"100%.jpg": {"title": "The Night Café", "artist": "Vincent van Gogh", "year": "1888"}}
    (presets / "presets.json").write_text(json.dumps(index))
    (tmp_path / "blog").mkdir()
    (tmp_path / "blog" / "post.html").write_text(plain_page('id="plain" max-size="128" backends="wasm"'))
    browser.get(serve(tmp_path) + "blog/post.html")
    facts = pictures(browser, "plain")
    assert facts["state"] != "error", facts["message"]
    assert [(p["title"], p["loaded"]) for p in facts["pictures"]] == [(ODD, True), ("The Night Café", True)], facts
    assert facts["pictures"][0]["src"].endswith("/static/sanet/presets/50%25%20off%20%231.jpg"), facts


# -- the reader's own file ------------------------------------------------------------------------

PICK_JS = """
const [demoId, name, type, base64] = arguments;
const demo = document.getElementById(demoId);
const input = demo.querySelector('input[data-sanet-file="content"]');
const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
const transfer = new DataTransfer();
transfer.items.add(new File([bytes], name, {type}));
input.files = transfer.files;
input.dispatchEvent(new Event('change', {bubbles: true}));
"""
STATE_JS = """
const demo = document.getElementById(arguments[0]);
return {message: demo.querySelector('.sanet-demo__message').textContent, state: demo.dataset.sanetState,
        own: demo.querySelectorAll('[data-sanet-role="content"] .sanet-demo__preset--own').length,
        pressed: [...demo.querySelectorAll('[data-sanet-role="content"] .sanet-demo__preset')]
          .filter((b) => b.getAttribute('aria-pressed') === 'true').map((b) => b.title)};
"""
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64"/></svg>'


def pick(browser, name: str, type_: str, data: bytes) -> None:
    import base64

    browser.execute_script(PICK_JS, "site", name, type_, base64.b64encode(data).decode())


@pytest.mark.browser
@pytest.mark.parametrize("name, type_, data, said", [
    ("drawing.svg", "image/svg+xml", SVG,
     "“drawing.svg” is an SVG drawing, not a picture the demo can use: pick a JPEG, PNG, WebP or GIF picture."),
    ("notes.txt", "text/plain", b"not a picture",
     "“notes.txt” is not a picture (text/plain): pick a JPEG, PNG, WebP or GIF picture."),
    ("broken.png", "image/png", b"\x89PNG\r\n\x1a\nbroken",
     "“broken.png” is not a picture this browser can read: pick a JPEG, PNG, WebP or GIF picture."),
    ("empty.jpg", "image/jpeg", b"", "“empty.jpg” is empty: pick a JPEG, PNG, WebP or GIF picture."),
])
def test_an_unusable_upload_is_named_when_picked_and_cleared_by_a_good_one(browser, odd_site, name, type_, data, said):
    _, url = odd_site
    browser.get(url + "names/")
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#site[data-sanet-ready]"))
    WebDriverWait(browser, 30).until(
        lambda d: d.execute_script(STATE_JS, "site")["message"].startswith("Pick a photo and a painting"))
    idle = browser.execute_script(STATE_JS, "site")
    pick(browser, name, type_, data)
    WebDriverWait(browser, 10).until(lambda d: d.execute_script(STATE_JS, "site")["message"] != idle["message"])
    refused = browser.execute_script(STATE_JS, "site")
    assert refused["message"] == said
    assert refused["own"] == 0 and refused["pressed"] == idle["pressed"], refused  # not picked
    good = (PRESETS / "content-cat.jpg").read_bytes()
    pick(browser, "cat.jpg", "image/jpeg", good)
    WebDriverWait(browser, 10).until(lambda d: d.execute_script(STATE_JS, "site")["own"] == 1)
    picked = browser.execute_script(STATE_JS, "site")
    assert picked["message"] == idle["message"] and picked["pressed"] == ["cat.jpg"], picked
