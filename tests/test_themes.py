"""MkDocs' own themes, `mkdocs` and `readthedocs`: the demo builds, fits the content column, shows
its controls, and stylizes. Its CSS does not need mkdocs-material's variables."""

from __future__ import annotations

import re
import shutil

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from helpers import ROOT, mkdocs_build, write_site

PAGE = """\
# Demo

Some text before the demo, long enough to wrap in the content column of the theme, so that the
demo's width can be compared with the paragraph's.

<% sanet_demo max_size="64" %>

Text after.
"""


def theme_site(root, cache, theme: str, url: str):
    config = write_site(root, cache, {"index.md": "# Home\n", "demo.md": PAGE},
                        plugin_options="backends: [wasm]", site_url=url)
    text = re.sub(r"theme:\n(?:  .*\n)+", f"theme:\n  name: {theme}\n", config.read_text())
    config.write_text(text)
    return config


def test_css_needs_no_material_variables():
    css = (ROOT / "mkdocs_sanet" / "static" / "sanet-demo.css").read_text()
    assert "var(--md-" in css and not re.search(r"var\(--md-[\w-]+\)", css), "a material variable without fallback"


@pytest.mark.browser
@pytest.mark.parametrize("theme", ["mkdocs", "readthedocs"])
def test_demo_in_theme(theme, tmp_path, model_cache, serve, browser):
    root = tmp_path / theme
    url = serve(root / "site")
    result = mkdocs_build(theme_site(root, model_cache, theme, url))
    assert "WARNING" not in result.stderr, result.stderr
    browser.set_window_size(1280, 900)
    browser.get(url + "demo/")
    WebDriverWait(browser, 30).until(
        lambda d: d.execute_script("return document.querySelector('.sanet-demo').dataset.sanetReady"))
    browser.execute_script("document.querySelector('.sanet-demo').scrollIntoView()")
    browser.save_screenshot(str(tmp_path / f"{theme}.png"))
    shutil.copy(tmp_path / f"{theme}.png", root / f"{theme}-demo.png")
    facts = browser.execute_script("""
        const demo = document.querySelector('.sanet-demo');
        const paragraph = demo.previousElementSibling.tagName === 'P' ? demo.previousElementSibling
            : [...demo.parentElement.querySelectorAll('p')].find(p => p.textContent.startsWith('Some text'));
        const box = (el) => { const b = el.getBoundingClientRect(); return [b.left, b.right, b.width, b.height]; };
        const button = demo.querySelector('.sanet-demo__run');
        const style = getComputedStyle(demo);
        const buttonStyle = getComputedStyle(button);
        return {demo: box(demo), paragraph: box(paragraph), button: box(button),
                buttonVisible: buttonStyle.visibility === 'visible' && buttonStyle.display !== 'none',
                buttonColors: [buttonStyle.color, buttonStyle.backgroundColor],
                presets: [...demo.querySelectorAll('.sanet-demo__preset img')].map(box),
                presetButtons: [...demo.querySelectorAll('.sanet-demo__preset')].map(box),
                legend: parseFloat(getComputedStyle(demo.querySelector('legend')).fontSize),
                font: parseFloat(style.fontSize),
                border: style.borderTopStyle, color: style.color,
                scrollWidth: document.documentElement.scrollWidth, width: window.innerWidth};""")
    left, right, width, _ = facts["demo"]
    p_left, p_right, p_width, _ = facts["paragraph"]
    assert facts["border"] == "solid", "the demo's stylesheet is not applied"
    assert abs(left - p_left) <= 2 and right <= p_right + 2, f"the demo leaves the content column: {facts}"
    assert width >= 0.9 * p_width, facts
    assert facts["scrollWidth"] <= facts["width"], "the page scrolls sideways"
    b_left, b_right, b_width, b_height = facts["button"]
    assert facts["buttonVisible"] and b_width >= 40 and b_height >= 16 and left <= b_left and b_right <= right
    assert facts["buttonColors"][0] != facts["buttonColors"][1], "the button's text is invisible"
    assert facts["presets"] and all(28 <= w <= 80 and 28 <= h <= 80 for _, _, w, h in facts["presets"]), facts
    # The theme's styles for images and legends do not reach into the demo.
    assert all(h <= 90 for _, _, _, h in facts["presetButtons"]), facts["presetButtons"]
    assert facts["legend"] <= 1.2 * facts["font"], facts
    # It stylizes.
    button = browser.find_element(By.CSS_SELECTOR, ".sanet-demo .sanet-demo__run")
    button.click()
    WebDriverWait(browser, 240).until(lambda d: d.execute_script(
        "return ['done', 'error'].includes(document.querySelector('.sanet-demo').dataset.sanetState)"))
    state = browser.execute_script("""
        const demo = document.querySelector('.sanet-demo');
        const canvas = demo.querySelector('.sanet-demo__result canvas');
        return {state: demo.dataset.sanetState, message: demo.querySelector('.sanet-demo__message').textContent,
                canvas: canvas.getBoundingClientRect().width, size: [canvas.width, canvas.height]};""")
    assert state["state"] == "done", state["message"]
    assert max(state["size"]) == 64 and state["canvas"] > 0
    browser.execute_script("document.querySelector('.sanet-demo__result').scrollIntoView({block: 'center'})")
    browser.save_screenshot(str(root / f"{theme}-result.png"))
