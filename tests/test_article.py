"""The explainer tags on a real build: math, figure rows, the architecture SVG, the results grid
(cached like the model), the model card, citations; their errors; the layout in Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest
from selenium.webdriver.support.ui import WebDriverWait

from helpers import PRESETS, ROOT, mkdocs_build, write_site
from mkdocs_sanet import architecture, article, compression, weights

ARTICLE = """\
# Article

Inline $\\mu(F)$ and a cite <% cite park2019sanet %>, then VGG <% cite simonyan2015vgg %>.

$$
\\bar{F} = \\frac{F - \\mu(F)}{\\sigma(F)}
$$

<% row %>
<% figure src="img/content-cat.jpg" caption="A cat & a <caption>." width="1/3" alt="Cat" %>
<% figure src="img/content-coffee.jpg" caption="Coffee." width="1/3" alt="Coffee" %>
<% figure src="/img/style-mosaic.jpg" caption="Mosaic." width="1/3" %>
<% endrow %>

<% sanet_architecture %>

<% sanet_results contents="img/content-cat.jpg" styles="img/style-mosaic.jpg,img/style-swirls.jpg" %>

<% sanet_model_card %>

Again the SANet paper <% cite park2019sanet %>.
"""

PLUGIN = f"""\
bibliography: {ROOT / 'docs' / 'references.bib'}
results_size: 64
"""
MARKDOWN = """\
markdown_extensions:
  - pymdownx.arithmatex:
      generic: true
"""


def article_site(root, cache, page=ARTICLE, site_url="https://example.org/"):
    images = {f"img/{p.name}": p for p in PRESETS.glob("*.jpg")}
    config = write_site(root, cache, {"index.md": "# Home\n", "article.md": page}, plugin_options=PLUGIN,
                        images=images, site_url=site_url)
    config.write_text(config.read_text() + MARKDOWN)
    return config


@pytest.fixture(scope="module")
def built(tmp_path_factory, model_cache):
    root = tmp_path_factory.mktemp("article")
    config = article_site(root, model_cache)
    first = mkdocs_build(config)
    return root, config, first, (root / "site" / "article" / "index.html").read_text()


def test_math_is_rendered(built):
    html = built[3]
    assert "$$" not in html and "\\(" not in html and 'class="arithmatex"' not in html
    assert html.count('class="katex"') >= 2 and html.count('class="katex-display"') == 1
    assert "<math" in html  # MathML for screen readers
    site = built[0] / "site"
    assert (site / "assets" / "sanet" / "katex" / "katex.min.css").is_file()
    assert list((site / "assets" / "sanet" / "katex" / "fonts").glob("KaTeX_Main-Regular.woff2"))
    assert not re.search(r'(src|href)="https?://', html.split('<div class="md-content"')[1].split("</article>")[0])


def test_figure_row(built):
    html = built[3]
    row = re.search(r'<div class="sanet-row">(.*?)</div>', html, re.S).group(1)
    figures = re.findall(r'<figure class="sanet-figure sanet-figure--third">.*?</figure>', row, re.S)
    assert len(figures) == 3
    assert '<figcaption>A cat &amp; a &lt;caption&gt;.</figcaption>' in figures[0]
    assert 'alt="Cat" loading="lazy"' in figures[0] and 'href="../img/content-cat.jpg"' in figures[0]
    assert 'alt="Mosaic."' in figures[2]  # alt defaults to the caption


def test_architecture_svg_has_the_real_counts(built):
    """The site's model (the default, compressed as served): its counts."""
    html = built[3]
    svg = re.search(r"<svg viewBox=\"0 0 980 300\".*?</svg>", html, re.S).group(0)
    counts = architecture.parameter_counts("vgg16", weights.resolve("default").widths())  # its shallow skips too
    assert "64×64×512" in svg and "32×32×512" in svg and "VGG16" in svg
    caption = re.search(r'<figure class="sanet-architecture">.*?<figcaption>(.*?)</figcaption>', html, re.S).group(1)
    for part in architecture.PARTS:
        assert f"{counts[part]:,}" in caption
    assert f"{sum(counts.values()):,} parameters in all" in svg


def test_architecture_of_imported_checkpoints():
    """The figure follows the model in use: the original checkpoints' VGG19 encoder."""
    svg = article.architecture_svg("vgg19", "sanet")
    counts = architecture.parameter_counts("vgg19")
    assert "VGG19-normalised" in svg and "14 convs to relu5_1" in svg
    assert f"encoder {counts['encoder']:,}" in svg and counts["encoder"] != architecture.parameter_counts("vgg16")["encoder"]


def test_architecture_draws_the_compressed_model():
    """With the site's compression setting the figure shows what is served: the compressed
    widths, ranks and counts, and the preset; without compression the original widths."""
    widths = compression.channels(compression.parse("fast"), "vgg16")
    counts = architecture.parameter_counts("vgg16", widths)
    svg = article.architecture_svg("vgg16", "default", compression="fast")
    assert widths["encoder/conv1_2/rank"] < 64 and f"conv1_2 rank {widths['encoder/conv1_2/rank']}/64" in svg
    assert f"conv2_2 {widths['encoder/conv2_2']}/128 ch" in svg
    assert f"3×3 conv, {widths['transform/merge_conv']} ch" in svg
    assert f"attention, rank {widths['transform/sanet4_1/f']}" in svg
    assert f"{widths['decoder/conv4_1']} → " in svg and "256 → 128 → 64 ch" not in svg
    assert f"default, compression fast: {sum(counts.values()):,} parameters in all" in svg
    assert f"encoder {counts['encoder']:,}, transform {counts['transform']:,}" in svg
    assert "compression preset fast" in svg and "64×64×512" in svg  # the taps keep their width

    plain = article.architecture_svg("vgg16", "default", compression="none")
    assert plain == article.architecture_svg("vgg16", "default")
    assert "3×3 conv, 512 ch" in plain and "256 → 128 → 64 ch" in plain and "1×1 f g h out" in plain
    assert " rank " not in plain and "compression" not in plain
    assert f"{sum(architecture.parameter_counts('vgg16').values()):,} parameters in all" in plain


def test_model_card(built):
    html = built[3]
    card = re.search(r'<div class="sanet-model-card">(.*?)</div>', html, re.S).group(1)
    trained = weights.resolve("default").trained
    assert "weights stored as uint8;" in card and ("untrained" in card) is not trained  # fast: uint8=all
    widths = compression.channels(compression.parse("fast"), "vgg16")
    encoder = architecture.parameter_counts("vgg16", widths)["encoder"]
    flops = architecture.flops("vgg16", 512, 512, widths, (256, 256))["encoder"] / 1e9
    assert re.search(rf"<td>encoder</td><td>{encoder:,}</td><td>[0-9.]+ MB</td><td>{flops:.1f}</td>", card), card


def test_architecture_and_card_show_a_models_shallow_skips():
    """A model with shallow skips: the figure draws them (taps, widths) and counts them; the card
    names them and counts their parameters; a model without them shows none."""
    widths = compression.channels(compression.parse("fast"), "vgg16", architecture.SKIPS)
    assert widths["transform/skip3_1"] == widths["decoder/conv4_1"] and widths["transform/skip2_1"] == widths["decoder/conv3_1"]
    counts = architecture.parameter_counts("vgg16", widths)
    svg = article.architecture_svg("vgg16", "default", compression="fast", skips=architecture.SKIPS)
    line = f"relu3_1, relu2_1 → {widths['transform/skip3_1']}, {widths['transform/skip2_1']} ch"
    assert "shallow skips" in svg and line in svg and "relu3_1 and relu2_1 given the painting" in svg
    assert f"transform {counts['transform']:,}" in svg and f"{sum(counts.values()):,} parameters in all" in svg
    assert "skip" not in article.architecture_svg("vgg16", "default", compression="fast")
    manifest = {"graphs": {g: {"part": part, "bytes": 1000} for g, part in
                           (("encode", "encoder"), ("transform", "transform"), ("decode", "decoder"))},
                "bytes": 3000, "trained": True, "quantization": "float16", "tensorflow": "2", "tensorflowjs": "4",
                "style_max_size": 256, "compression": {"channels": widths, "uint8": []}}
    card = article.model_card("vgg16", manifest, "default")
    assert f"shallow skips {line}" in card and f"<td>transform</td><td>{counts['transform']:,}</td>" in card
    without = {k: v for k, v in widths.items() if "skip" not in k}
    assert "skips" not in article.model_card("vgg16", {**manifest, "compression": {"channels": without}}, "default")


def test_citations(built):
    html = built[3]
    assert html.count('href="#ref-park2019sanet"') == 2 and ">[1]</a>" in html and ">[2]</a>" in html
    references = re.search(r'<ol class="sanet-references">(.*?)</ol>', html, re.S).group(1)
    items = re.findall(r'<li id="ref-([\w.:-]+)">(.*?)</li>', references, re.S)
    assert [key for key, _ in items] == ["park2019sanet", "simonyan2015vgg"]
    assert "Style-Attentional" in items[0][1] or "style-attentional" in items[0][1]


def test_results_grid_comes_from_the_cache(built, model_cache):
    root, config, first, html = built
    urls = re.findall(r'<a class="sanet-figure__zoom" href="([^"]+/results/[0-9a-f]+\.png)"', html)
    assert len(urls) == 2
    for url in urls:
        assert (root / "site" / "article" / url).resolve().is_file()
    assert "results grid: computed 2 pictures" in first.stderr or "results grid: 2 pictures from the cache" in first.stderr
    # A second build: the pictures and formulas come from the cache; TensorFlow is never imported.
    script = ("import logging, sys; logging.basicConfig(level=logging.INFO)\n"
              "from mkdocs.commands.build import build; from mkdocs.config import load_config\n"
              "build(load_config(sys.argv[1]))\n"
              "print('IMPORTED:' + ','.join(m for m in ('tensorflow', 'tensorflowjs') if m in sys.modules))")
    # No node on the PATH either: the formulas come from the cache too.
    warm = subprocess.run([sys.executable, "-c", script, str(config)], capture_output=True, text=True, cwd=root,
                          env={**os.environ, "PATH": "/nonexistent"})
    assert warm.returncode == 0, warm.stderr[-2000:]
    assert "results grid: 2 pictures from the cache" in warm.stderr
    assert "IMPORTED:\n" in warm.stdout
    assert list((model_cache / "math").glob("*.html")), "rendered formulas are cached too"


@pytest.mark.parametrize("line, tag, message", [
    (3, '<% cite nobody2020 %>', "docs/article.md:3: unknown citation key 'nobody2020'"),
    (3, '<% figure src="img/missing.png" caption="x" %>',
     'docs/article.md:3: src="img/missing.png": no such file in docs_dir'),
    (3, '<% figure src="img/content-cat.jpg" %>', "docs/article.md:3: 'figure' needs caption"),
    (3, '<% figure src="img/content-cat.jpg" caption="x" width="1/4" %>',
     "docs/article.md:3: 'figure' attribute width=\"1/4\": expected one of 1/3, 1/2, 2/3, full"),
    (3, '<% row %>', "docs/article.md:3: row without an endrow after it"),
    (3, '<% sanet_results contents="img/content-cat.jpg" %>', "docs/article.md:3: 'sanet_results' needs styles"),
])
def test_errors_name_page_and_line(tmp_path, line, tag, message):
    config = article_site(tmp_path, tmp_path / "cache", page=f"# A\n\n{tag}\n")
    result = mkdocs_build(config, check=False)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr[-1500:]


def test_math_error_names_page_and_line(tmp_path):
    config = article_site(tmp_path, tmp_path / "cache", page="# A\n\nText.\n\n$$\n\\frac{1}{\n$$\n")
    result = mkdocs_build(config, check=False)
    assert result.returncode != 0
    assert "docs/article.md:6: math error in '\\frac{1}{'" in result.stderr, result.stderr[-1500:]


def test_a_long_formulas_error_is_one_readable_line(tmp_path):
    """A 40,000-character formula that KaTeX refuses gave a 40,079-character error line."""
    tex = "x + " * 10_000 + "\\frac{1}{"
    config = article_site(tmp_path, tmp_path / "cache", page=f"# A\n\nText.\n\n$$\n{tex}\n$$\n")
    result = mkdocs_build(config, check=False)
    assert result.returncode != 0
    line, = (line for line in result.stderr.splitlines() if "math error" in line)
    assert "docs/article.md:6: math error in 'x + x + x + " in line and "… (40,009 characters)': " in line, line
    assert len(line) < 600, len(line)


@pytest.mark.browser
def test_layout_at_desktop_and_phone_width(built, browser, serve, tmp_path):
    """Screenshots at 1280 and 390 px: the row's figures side by side, then stacked."""
    root = built[0]
    # Instant navigation is not needed here: serve the built site as it is.
    url = serve(root / "site")
    tops = {}
    for width in (1280, 390):
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 500})
        try:
            browser.get(url + "article/")
            # A first visit may reload the page once (the threads' service worker): wait for the figures.
            boxes = WebDriverWait(browser, 30).until(lambda d: d.execute_script("""
                if (document.readyState !== 'complete') return null;
                const boxes = [...document.querySelectorAll('.sanet-row .sanet-figure')].map(f => {
                    const b = f.getBoundingClientRect(); return [b.top, b.left, b.width]; });
                return boxes.length ? boxes : null;"""))
            browser.execute_script("document.querySelector('.sanet-row').scrollIntoView()")
            browser.save_screenshot(str(tmp_path / f"article-{width}.png"))
            shutil.copy(tmp_path / f"article-{width}.png", root / f"article-{width}.png")
            overflow = browser.execute_script("return document.documentElement.scrollWidth")
            label = browser.execute_script(
                "return document.querySelector('.sanet-architecture text').getBoundingClientRect().height")
            assert label >= 9, f"the architecture's labels are {label:.1f} px tall at {width} px"
        finally:
            browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        tops[width] = boxes
        assert overflow <= width
    desktop, phone = tops[1280], tops[390]
    assert len({round(top) for top, _, _ in desktop}) == 1, "at 1280 px the figures share a line"
    assert len({round(left) for _, left, _ in desktop}) == 3
    assert [top for top, _, _ in phone] == sorted(top for top, _, _ in phone)
    assert len({round(left) for _, left, _ in phone}) == 1, "at 390 px the figures are stacked"
    assert all(w > 300 for _, _, w in phone)
    # A click gives the larger view; another closes it.
    browser.get(url + "article/")
    browser.execute_script("document.querySelector('.sanet-row .sanet-figure__zoom').click()")
    shown = browser.execute_script(
        "const d = document.querySelector('dialog.sanet-lightbox'); return d && d.open && d.querySelector('img').src")
    assert shown and shown.endswith("/img/content-cat.jpg")
    browser.execute_script("document.querySelector('dialog.sanet-lightbox').click()")
    WebDriverWait(browser, 5).until(
        lambda d: d.execute_script("return document.querySelector('dialog.sanet-lightbox') === null"))


HOSTILE_BIB = r"""
@misc{hostile1,
  author = {Evil, <script>alert(1)</script>},
  title  = {T <img src=x onerror=alert(2)>},
  year   = {2020},
  url    = {https://x.org/"><img src=x onerror=alert(4)>},
  doi    = {10.1/"><img src=x onerror=alert(5)>},
  eprint = {1234"><img src=x onerror=alert(6)>}
}
@misc{hostile2,
  author = {A, B},
  title  = {J},
  year   = {2020},
  url    = {javascript:alert(3)},
  doi    = {javascript:alert(7)},
  note   = {\href{javascript:alert(8)}{click}}
}
@misc{fine,
  author = {C, D},
  title  = {Fine},
  year   = {2021},
  url    = {https://example.org/a?b=1&c=2}
}
"""


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, model_cache):
    """A site whose references.bib was pasted from a hostile source."""
    root = tmp_path_factory.mktemp("hostile")
    (root / "references.bib").write_text(HOSTILE_BIB)
    config = write_site(root, model_cache, {
        "index.md": "# Refs\n\nSee <% cite hostile1 %>, <% cite hostile2 %> and <% cite fine %>.\n"},
        plugin_options=f"bibliography: {root / 'references.bib'}")
    mkdocs_build(config)
    return root / "site"


def test_bibliography_links_are_http_and_escaped(hostile):
    html = (hostile / "index.html").read_text()
    references = re.search(r'<ol class="sanet-references">(.*?)</ol>', html, re.S).group(1)
    assert "<img" not in references and "<script" not in references
    assert not re.search(r"<[a-z]+[^>]*\son\w+=", references)  # no element with an event handler
    hrefs = re.findall(r'href="([^"]*)"', references)
    assert hrefs and all(href.startswith(("https://", "http://")) for href in hrefs), hrefs
    assert 'href="https://doi.org/10.1/%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert(5)%3E"' in references
    assert 'href="https://example.org/a?b=1&amp;c=2"' in references  # a good URL stays as it was
    assert "javascript:alert(3)" in references  # shown as text, not as a link


@pytest.mark.browser
def test_hostile_bibliography_runs_nothing(hostile, browser, serve):
    """In Chromium: no alert, no injected element, no javascript: link."""
    url = serve(hostile)
    script = browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": (
        "window.__alerts = []; for (const f of ['alert', 'confirm', 'prompt']) "
        "window[f] = (m) => { window.__alerts.push(String(m)); };")})
    try:
        browser.get(url)
        WebDriverWait(browser, 10).until(lambda d: d.execute_script("return document.readyState") == "complete")
        found = browser.execute_script("""
            const refs = document.querySelector('.sanet-references');
            return {alerts: window.__alerts,
                    injected: document.querySelectorAll('img[src="x"], [onerror], .sanet-references script').length,
                    scripts: [...document.querySelectorAll('a[href]')].filter(a => !/^https?:$/.test(a.protocol)
                                                                            && a.protocol !== 'file:').length,
                    items: refs ? refs.children.length : 0};""")
    finally:
        browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": script["identifier"]})
    assert found == {"alerts": [], "injected": 0, "scripts": 0, "items": 3}
