"""mkdocs-material's blog plugin: a post with a demo, math and a citation above `<!-- more -->`.
The blog's views (index, archive, category) render the excerpt from the post's Markdown, with no
page event of this plugin: the Markdown extension renders it there too, for the view's URL."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from helpers import ROOT, mkdocs_build, write_site

POST = """\
---
date: 2024-01-15
categories:
  - Demos
---

# A demo post

SANet normalizes features, $\\bar{F} = F - \\mu(F)$, as the paper shows <% cite park2019sanet %>.

<% sanet_demo max_size="64" %>

<!-- more -->

Below the fold: $x^2$ and <% cite simonyan2015vgg %>.
"""

MATH_POST = """\
---
date: 2024-01-10
categories:
  - Notes
---

# Only math

$$
\\sigma(F)^2 = \\frac{1}{N} \\sum_i (F_i - \\mu(F))^2
$$

<!-- more -->

The rest.
"""


@pytest.fixture(scope="module")
def blog(tmp_path_factory, model_cache, serve) -> tuple[Path, str, object]:
    root = tmp_path_factory.mktemp("blog")
    url = serve(root / "site")
    config = write_site(root, model_cache, {
        "index.md": "# Home\n\n[The blog](blog/index.md)\n",
        "blog/index.md": "# Blog\n",
        "blog/posts/demo.md": POST,
        "blog/posts/math.md": MATH_POST,
    }, plugin_options=f"backends: [wasm]\nbibliography: {ROOT / 'docs' / 'references.bib'}", site_url=url)
    text = config.read_text().replace("plugins:\n", "plugins:\n  - blog\n", 1)
    config.write_text(text + "markdown_extensions:\n  - pymdownx.arithmatex:\n      generic: true\n")
    result = mkdocs_build(config)
    return root / "site", url, result


def views(site: Path) -> dict[str, str]:
    pages = {"index": site / "blog" / "index.html",
             "archive": site / "blog" / "archive" / "2024" / "index.html",
             "category": site / "blog" / "category" / "demos" / "index.html"}
    for name, path in pages.items():
        assert path.is_file(), f"the blog plugin made no {name} page at {path}"
    return {name: path.read_text() for name, path in pages.items()}


def resolve(site: Path, page: Path, url: str) -> Path:
    return (page.parent / url.split("#")[0]).resolve()


def test_views_render_the_excerpt(blog):
    site = blog[0]
    for name, html in views(site).items():
        assert "SANETTAG" not in html and "data-sanet-tag" not in html, name
        assert "\\(" not in html and "\\[" not in html and 'class="arithmatex"' not in html, name
        # The math post is in the index and the archive, not in the category "Demos".
        assert html.count('class="katex-display"') == (name != "category"), name
        assert html.count('class="katex"') == 1 + (name != "category"), name
        # Above the fold only: the second citation and x^2 belong to the post's page.
        assert "simonyan2015vgg" not in html, name
        # The demo, working: its model, runtime and pictures resolve from this page's URL.
        assert html.count('<sanet-demo class="sanet-demo"') == 1, name
        page = {"index": site / "blog", "archive": site / "blog" / "archive" / "2024",
                "category": site / "blog" / "category" / "demos"}[name] / "index.html"
        model = re.search(r'data-sanet-model="([^"]+)"', html).group(1)
        assert (resolve(site, page, model) / "manifest.json").is_file(), name
        runtime = re.search(r'data-sanet-runtime="([^"]+)"', html).group(1)
        assert (resolve(site, page, runtime) / "tf-backend-wasm.min.js").is_file(), name
        for src in re.findall(r'data-sanet-src="([^"]+)"', html):
            assert resolve(site, page, src).is_file(), (name, src)
        # Its stylesheet and script once, the script after the demo; KaTeX's stylesheet once.
        css = re.findall(r'<link rel="stylesheet" href="([^"]+sanet-demo\.css)">', html)
        js = re.findall(r'<script src="([^"]+sanet-demo\.js)"></script>', html)
        assert len(css) == 1 and len(js) == 1, name
        assert resolve(site, page, js[0]).is_file() and resolve(site, page, css[0]).is_file()
        assert html.index('<sanet-demo class="sanet-demo"') < html.index(js[0])
        assert len(re.findall(r'katex\.min\.css', html)) == 1, name
        # The citation links to the references at the end of the post's page.
        cite = re.search(r'<a class="sanet-cite" href="([^"]+)"[^>]*>\[1\]</a>', html).group(1)
        target, anchor = cite.split("#")
        post = resolve(site, page, target) / "index.html"
        assert f'<li id="{anchor}">' in post.read_text(), name


def test_post_page(blog):
    site, _, result = blog
    post = (site / "blog" / "2024" / "01" / "15" / "a-demo-post" / "index.html").read_text()
    assert post.count('<sanet-demo class="sanet-demo"') == 1 and "SANETTAG" not in post
    assert 'href="#ref-park2019sanet"' in post and 'href="#ref-simonyan2015vgg"' in post
    assert '<ol class="sanet-references">' in post
    assert "WARNING" not in result.stderr, result.stderr


@pytest.mark.browser
def test_demo_on_the_blog_index_stylizes(blog, browser):
    site, url, _ = blog
    browser.get(url + "blog/")
    demo = browser.find_element(By.CSS_SELECTOR, ".sanet-demo")
    demo_id = demo.get_attribute("id")
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, demo_id).get_attribute("data-sanet-ready"))
    state = browser.execute_script("""
        const root = document.getElementById(arguments[0]);
        const style = getComputedStyle(root);
        return {border: style.borderTopStyle, katex: document.querySelectorAll('.katex').length,
                text: document.body.innerText};""", demo_id)
    assert state["border"] == "solid", "the demo's stylesheet is not applied"
    assert state["katex"] >= 2 and "SANETTAG" not in state["text"] and "\\(" not in state["text"]
    button = browser.find_element(By.CSS_SELECTOR, f"#{demo_id} .sanet-demo__run")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", button)
    button.click()
    WebDriverWait(browser, 240).until(
        lambda d: d.find_element(By.ID, demo_id).get_attribute("data-sanet-state") in ("done", "error"))
    result = browser.execute_script("""
        const root = document.getElementById(arguments[0]);
        const canvas = root.querySelector('.sanet-demo__result canvas');
        return {state: root.dataset.sanetState, backend: root.dataset.sanetBackend,
                message: root.querySelector('.sanet-demo__message').textContent,
                width: canvas.width, height: canvas.height};""", demo_id)
    assert result["state"] == "done", result["message"]
    assert result["backend"] == "wasm"
    assert max(result["width"], result["height"]) == 64
