"""A reader's controls (issue 18, part 3), in headless Chromium under mkdocs-material (light and
its dark `slate` scheme), MkDocs' default theme `mkdocs` and `readthedocs`: axe-core finds no
WCAG A/AA violation in the demo; every control shows a focus ring when the keyboard reaches it
(at least 2 px, 3:1 on the page); the keyboard's focus stays in the demo through a run; the result
canvas and the progress bar have names; the live region says a handful of stages, not each chunk
of the download; without JavaScript, one message and no controls; Stylize is on the first screen.
Screenshots of each theme land in the test's temporary folder (printed)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from helpers import ROOT, STYLIZE_TIMEOUT_S, mkdocs_build, write_site

pytestmark = [pytest.mark.browser]

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
PAGE = """\
# Demo

Some text before the demo.

<% sanet_demo max_size="64" %>

Text after.
"""
# (theme, colour scheme): material's light and slate schemes follow prefers-color-scheme (helpers.write_site).
LOOKS = [("material", "light"), ("material", "dark"), ("mkdocs", "light"), ("readthedocs", "light")]
LOOK_IDS = ["material", "slate", "mkdocs", "readthedocs"]
# A 1280x900 screen shows about 780 px of a page in a browser window (tabs, address bar);
# mkdocs-material's header takes 48 px of them.
FIRST_SCREEN_PX = 700


@pytest.fixture(scope="module")
def sites(tmp_path_factory, model_cache, serve) -> dict[str, str]:
    """theme -> the URL of its demo page."""
    urls = {}
    for theme in ("material", "mkdocs", "readthedocs"):
        root = tmp_path_factory.mktemp(f"a11y-{theme}")
        url = serve(root / "site")
        config = write_site(root, model_cache, {"index.md": "# Home\n", "demo.md": PAGE},
                            plugin_options="backends: [wasm]", site_url=url)
        if theme != "material":
            config.write_text(re.sub(r"theme:\n(?:  .*\n)+", f"theme:\n  name: {theme}\n", config.read_text()))
        mkdocs_build(config)
        urls[theme] = url + "demo/"
    return urls


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("a11y-screenshots")
    print(f"screenshots in {folder}")
    return folder


@pytest.fixture
def look(request, browser, sites):
    """Opens the demo page of (theme, scheme) at 1280x900; returns the theme."""
    theme, scheme = request.param
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False})
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia",
                            {"features": [{"name": "prefers-color-scheme", "value": scheme}]})
    try:
        open_demo(browser, sites[theme])
        if theme == "material":
            expected = "slate" if scheme == "dark" else "default"
            assert browser.execute_script("return document.body.dataset.mdColorScheme") == expected
        yield theme
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})


def open_demo(browser, url: str) -> None:
    browser.get(url)
    # mkdocs-material keeps the palette of earlier visits in localStorage: start afresh.
    browser.execute_script("localStorage.clear();")
    browser.get(url)
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "sanet-demo[data-sanet-ready]"))


# Opens "More options" and picks a second painting, so that every control of the demo is there.
ALL_CONTROLS = """
const demo = document.querySelector('sanet-demo');
const more = demo.querySelector('.sanet-demo__more');
if (more) more.open = true;
demo.querySelectorAll('[data-sanet-role="style2"] .sanet-demo__preset')[1].click();
"""


def run_axe(browser, selector: str = "sanet-demo") -> list[dict]:
    """axe-core's WCAG 2.x A and AA rules on the element: the violations, with their elements."""
    if not browser.execute_script("return !!window.axe"):
        browser.execute_script(AXE.read_text())
    return browser.execute_async_script("""
        const [selector, done] = arguments;
        axe.run(document.querySelector(selector),
                {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa']},
                 resultTypes: ['violations']})
          .then((results) => done(results.violations.map((v) => ({
              id: v.id, help: v.help,
              nodes: v.nodes.map((n) => [n.target.join(' '), n.failureSummary])}))),
                (error) => done([{id: 'axe failed', help: String(error), nodes: []}]));""", selector)


@pytest.mark.parametrize("look", LOOKS, ids=LOOK_IDS, indirect=True)
def test_axe_finds_no_violation(look, browser, screenshots):
    browser.execute_script(ALL_CONTROLS)
    WebDriverWait(browser, 30).until(lambda d: d.execute_script(
        "return document.querySelector('.sanet-demo__mask').width > 0"))
    assert run_axe(browser) == []
    browser.execute_script("document.querySelector('sanet-demo').scrollIntoView()")
    scheme = browser.execute_script("return document.body.dataset.mdColorScheme") or "light"
    browser.save_screenshot(str(screenshots / f"{look}-{scheme}-all-options.png"))


# The focused element, its outline and the backgrounds behind it (nearest first).
FOCUSED = """
const demo = document.querySelector('sanet-demo');
const el = document.activeElement;
if (!demo.contains(el)) return null;
const style = getComputedStyle(el);
const backgrounds = [];
for (let node = el.parentElement; node; node = node.parentElement) {
  backgrounds.push(getComputedStyle(node).backgroundColor);
}
const box = el.getBoundingClientRect();
return {what: el.tagName.toLowerCase() + (el.type && el.tagName === 'INPUT' ? `[${el.type}]` : '') +
              (el.className ? '.' + el.className.split(' ').pop() : ''),
        focusVisible: el.matches(':focus-visible'), outlineStyle: style.outlineStyle,
        outlineWidth: parseFloat(style.outlineWidth), outlineColor: style.outlineColor,
        backgrounds, shown: box.width > 0 && box.height > 0};
"""


def rgba(text: str) -> tuple[float, float, float, float]:
    numbers = [float(n) for n in re.findall(r"[\d.]+", text)]
    assert text.startswith("rgb") and len(numbers) in (3, 4), f"unexpected colour {text!r}"
    return (*numbers[:3], numbers[3] if len(numbers) == 4 else 1.0)


def over(top: tuple, bottom: tuple) -> tuple:
    """`top` composited over an opaque `bottom`."""
    a = top[3]
    return (*(top[i] * a + bottom[i] * (1 - a) for i in range(3)), 1.0)


def luminance(colour: tuple) -> float:
    def linear(c):
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (linear(c) for c in colour[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: tuple, b: tuple) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def page_colour(backgrounds: list[str]) -> tuple:
    """The backgrounds (nearest first) composited over the canvas's white."""
    colour = (255.0, 255.0, 255.0, 1.0)
    for background in reversed(backgrounds):
        colour = over(rgba(background), colour)
    return colour


@pytest.mark.parametrize("look", LOOKS, ids=LOOK_IDS, indirect=True)
def test_focus_ring_on_every_control(look, browser, screenshots):
    """Tab from the paragraph before the demo through all of it: each control shows an outline of
    at least 2 px whose colour has 3:1 against the page behind it."""
    browser.execute_script(ALL_CONTROLS)
    WebDriverWait(browser, 30).until(lambda d: d.execute_script(
        "return document.querySelector('.sanet-demo__mask').width > 0"))
    before = browser.find_element(By.XPATH, "//p[starts-with(normalize-space(), 'Some text before the demo')]")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", before)
    ActionChains(browser).move_to_element(before).click().perform()
    seen = []
    for _ in range(80):
        ActionChains(browser).send_keys(Keys.TAB).perform()
        focused = browser.execute_script(FOCUSED)
        if focused is None:
            if seen:
                break  # out of the demo
            continue
        seen.append(focused)
        if len(seen) == 1:
            scheme = browser.execute_script("return document.body.dataset.mdColorScheme") or "light"
            browser.save_screenshot(str(screenshots / f"{look}-{scheme}-focus.png"))
    for focused in seen:
        colour = rgba(focused["outlineColor"])
        behind = page_colour(focused["backgrounds"])
        ratio = contrast(over(colour, behind), behind)
        assert focused["shown"] and focused["focusVisible"], focused
        assert focused["outlineStyle"] not in ("none", "hidden") and focused["outlineWidth"] >= 2, focused
        assert ratio >= 3, f"{focused['what']}: the ring has {ratio:.2f}:1 on the page ({focused})"
    kinds = {f["what"].split(".")[0] for f in seen}
    assert {"button", "input[file]", "select", "input[range]", "input[checkbox]", "input[radio]",
            "summary"} <= kinds, kinds
    assert len(seen) >= 20, [f["what"] for f in seen]


# The outline buttons (not filled) and their text's contrast on the page.
OUTLINE_BUTTONS = """
const demo = document.querySelector('sanet-demo');
return [...demo.querySelectorAll('.md-button:not(.md-button--primary)')]
  .filter((b) => b.getClientRects().length)
  .map((b) => {
    const backgrounds = [getComputedStyle(b).backgroundColor];
    for (let node = b.parentElement; node; node = node.parentElement) backgrounds.push(getComputedStyle(node).backgroundColor);
    return {text: b.textContent, color: getComputedStyle(b).color, border: getComputedStyle(b).borderTopColor, backgrounds};
  });
"""


@pytest.mark.parametrize("look", [("material", "dark"), ("material", "light")], ids=["slate", "material"], indirect=True)
def test_outline_buttons_contrast(look, browser):
    """mkdocs-material's outline buttons (the webcam, Clear) are the primary colour, 2.3:1 on
    slate: in the demo their text and border have at least 4.5:1."""
    browser.execute_script(ALL_CONTROLS)
    buttons = browser.execute_script(OUTLINE_BUTTONS)
    assert {b["text"] for b in buttons} >= {"Start the webcam", "Clear"}, buttons
    for button in buttons:
        behind = page_colour(button["backgrounds"])
        for part in ("color", "border"):
            ratio = contrast(over(rgba(button[part]), behind), behind)
            assert ratio >= 4.5, f"{button['text']}: {part} {ratio:.2f}:1"


# Records, from now on: the live region's texts, the progress amounts shown, and whether the
# keyboard's focus is in the demo (every 20 ms).
WATCH = """
const demo = document.querySelector('sanet-demo');
const live = demo.querySelectorAll('[aria-live], [role="status"], [role="alert"], [role="log"]');
window.watch = {live: live.length, said: [], amounts: 0, focus: []};
const region = live[0];
new MutationObserver(() => watch.said.push(region.textContent))
  .observe(region, {childList: true, characterData: true, subtree: true});
new MutationObserver(() => { watch.amounts++; })
  .observe(demo.querySelector('.sanet-demo__amount'), {childList: true, characterData: true, subtree: true});
setInterval(() => watch.focus.push(demo.contains(document.activeElement) ? 'demo' : document.activeElement.tagName), 20);
return [...live].map((el) => el.querySelector('progress') !== null);
"""


def test_keyboard_run_keeps_focus_names_and_few_announcements(browser, sites, screenshots):
    """Stylize pressed with the keyboard on a first visit (the model downloads): the focus stays
    on the button the whole time, the live region says a few stages (one for the download), the
    canvas and the progress bar have names, and axe-core finds nothing with the result shown."""
    browser.set_window_size(1280, 900)
    open_demo(browser, sites["material"])
    assert browser.execute_script("return performance.getEntriesByType('resource')"
                                  ".filter(e => e.name.endsWith('.bin')).length") == 0
    assert browser.execute_script(WATCH) == [False], "one live region, without the progress bar in it"
    progress = browser.find_element(By.CSS_SELECTOR, "sanet-demo .sanet-demo__status progress")
    assert progress.get_attribute("aria-label") == "Model download"
    button = browser.find_element(By.CSS_SELECTOR, "sanet-demo .sanet-demo__run")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
    # Keyboard focus: Tab onto Stylize from the control before it, then Enter.
    browser.execute_script("document.querySelector('sanet-demo [data-sanet-control=\"backend\"]').focus()")
    ActionChains(browser).send_keys(Keys.TAB).perform()
    assert browser.execute_script("return document.activeElement") == button
    assert browser.execute_script("return document.activeElement.matches(':focus-visible')")
    browser.execute_script("watch.focus = [];")  # from the key press on
    ActionChains(browser).send_keys(Keys.ENTER).perform()
    WebDriverWait(browser, STYLIZE_TIMEOUT_S).until(lambda d: d.execute_script(
        "return ['done', 'error'].includes(document.querySelector('sanet-demo').dataset.sanetState)"))
    browser.execute_script("return new Promise((resolve) => setTimeout(resolve, 100))")
    watch = browser.execute_script("return watch")
    state = browser.execute_script("""
        const demo = document.querySelector('sanet-demo');
        const canvas = demo.querySelector('.sanet-demo__result canvas');
        return {state: demo.dataset.sanetState, message: demo.querySelector('.sanet-demo__message').textContent,
                role: canvas.getAttribute('role'), label: canvas.getAttribute('aria-label'),
                size: [canvas.width, canvas.height], focusOnButton: document.activeElement === demo.querySelector('.sanet-demo__run')};""")
    assert state["state"] == "done", state["message"]
    assert state["focusOnButton"], "the focus left Stylize"
    assert set(watch["focus"]) == {"demo"}, f"the focus left the demo during the run: {set(watch['focus'])}"
    # The download was shown (many amounts), and said once.
    assert watch["amounts"] >= 5, watch
    said = watch["said"]
    print("announced:", said)
    assert sum("Download" in text for text in said) == 1, said
    assert 3 <= len(said) <= 10, said
    assert said[-1].startswith("Done."), said
    # The result's name says what it is.
    assert state["role"] == "img"
    assert state["label"] == "The result, the photo “Astronaut” in the style of “Café Terrace at Night”, 64×64 pixels", state
    assert run_axe(browser) == []
    browser.execute_script("document.querySelector('.sanet-demo__result').scrollIntoView({block: 'center'})")
    browser.save_screenshot(str(screenshots / "material-light-result.png"))


def test_without_javascript_one_message_and_no_controls(browser, sites, screenshots):
    """JavaScript off: the demo shows the <noscript> message only. Script blocked (JavaScript on):
    the status line only. In both, no control is displayed."""
    visible = """
        const demo = document.querySelector('sanet-demo');
        return {text: demo.innerText.trim(),
                controls: [...demo.querySelectorAll('input, select, button, a, summary, progress, canvas')]
                  .filter((el) => el.getClientRects().length).map((el) => el.outerHTML.slice(0, 80))};"""
    browser.set_window_size(1280, 900)
    browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": True})
    try:
        browser.get(sites["material"])
        off = browser.execute_script(visible)
        browser.save_screenshot(str(screenshots / "material-no-javascript.png"))
    finally:
        browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": False})
    assert off == {"controls": [], "text": "This demo stylizes pictures in your browser and needs JavaScript, "
                                          "which is off or blocked here."}

    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*sanet-demo.js"]})
    try:
        browser.get(sites["material"])
        blocked = browser.execute_script(visible)
    finally:
        browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
        browser.execute_cdp_cmd("Network.disable", {})
    assert blocked == {"controls": [], "text": "Loading the demo…"}


@pytest.mark.parametrize("look", LOOKS, ids=LOOK_IDS, indirect=True)
def test_stylize_on_the_first_screen(look, browser, screenshots):
    """With the demo's top at the top of the window, Stylize is on screen at 1280x900, with room
    for a browser's own bars: at most FIRST_SCREEN_PX below the demo's top."""
    box = browser.execute_script("""
        const demo = document.querySelector('sanet-demo');
        const header = document.querySelector('.md-header, .navbar.fixed-top');
        window.scrollBy(0, demo.getBoundingClientRect().top - (header ? header.getBoundingClientRect().bottom : 0));
        const top = demo.getBoundingClientRect().top;
        const button = demo.querySelector('.sanet-demo__run').getBoundingClientRect();
        return {top, bottom: button.bottom, left: button.left, right: button.right,
                height: innerHeight, width: innerWidth};""")
    assert (box["width"], box["height"]) == (1280, 900)
    assert box["bottom"] <= box["height"] and 0 <= box["left"] and box["right"] <= box["width"], box
    assert box["bottom"] - box["top"] <= FIRST_SCREEN_PX, f"Stylize ends {box['bottom'] - box['top']:.0f} px below the demo's top"
    scheme = browser.execute_script("return document.body.dataset.mdColorScheme") or "light"
    browser.save_screenshot(str(screenshots / f"{look}-{scheme}-first-screen.png"))


def test_phone_screenshot(browser, sites, screenshots):
    """At 390x844 (a phone): Stylize within the first screen and a half, nothing sideways."""
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True})
    try:
        open_demo(browser, sites["material"])
        box = browser.execute_script("""
            const demo = document.querySelector('sanet-demo');
            demo.scrollIntoView();
            window.scrollBy(0, -document.querySelector('.md-header').getBoundingClientRect().height);
            const button = demo.querySelector('.sanet-demo__run').getBoundingClientRect();
            return {below: button.bottom - demo.getBoundingClientRect().top,
                    scroll: document.documentElement.scrollWidth};""")
        browser.save_screenshot(str(screenshots / "material-phone.png"))
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    assert box["scroll"] <= 390
    assert box["below"] <= 844 - 48, box
