"""Tags where authors put them: in admonitions, details, content tabs and list items (with or
without a blank line after the opener), in headings; code in those blocks stays literal; the
demo's UI and the formulas' duplicates stay out of the search index; a placeholder that reaches
a built page fails the build with the page's name."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from html import unescape
from html.parser import HTMLParser

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from helpers import ROOT, mkdocs_build, write_site
from mkdocs_sanet import tags

CONTAINERS = """\
# Containers

!!! note "With a blank line"

    <% sanet_demo id="in-note" %>

!!! tip "Without one"
    <% sanet_demo id="in-tip" strength="-0" %>
    After the demo, still in the tip.

??? details "Open me"
    <% sanet_demo id="in-details" %>

=== "Demo"
    <% sanet_demo id="in-tab" %>

=== "Other"

    Another tab.

- A list item
    <% sanet_demo id="in-item" %>
- Another item

Between the lists.

1. A numbered item

    <% sanet_demo id="in-numbered" %>

2. Another

Code stays code:

    <% sanet_demo id="indented-code" %>

!!! example "Code inside"

        <% sanet_demo id="code-in-note" %>

    ```markdown
    <% sanet_demo id="fence-in-note" %>
    ```

- An item with a fence

    ```markdown
    <% sanet_demo id="fence-in-item" %>
    ```
"""

HEADINGS = """\
# Title <% cite park2019sanet %>

## Results <% cite park2019sanet %>

Math: $\\alpha + \\beta$ and

$$
\\frac{a}{b}
$$

## Sanet demo 1

<% sanet_demo %>
"""

EXTENSIONS = """\
markdown_extensions:
  - toc:
      permalink: true
  - admonition
  - pymdownx.details
  - pymdownx.superfences
  - pymdownx.tabbed:
      alternate_style: true
  - pymdownx.arithmatex:
      generic: true
  - footnotes
  - def_list
"""

PLACEHOLDER = re.compile(rf"{tags.TOKEN}|data-sanet-tag")


def placement_site(root, cache, pages, hooks: str | None = None, site_url="https://example.org/"):
    options = f"bibliography: {ROOT / 'docs' / 'references.bib'}\nbackends: [wasm]"
    config = write_site(root, cache, pages, plugin_options=options, site_url=site_url)
    text = config.read_text().replace("plugins:\n", "plugins:\n  - search\n") + EXTENSIONS
    if hooks:
        (root / "hooks.py").write_text(hooks)
        text += "hooks:\n  - hooks.py\n"
    config.write_text(text)
    return config


class Tree(HTMLParser):
    """Each element with an id: the (tag, classes) of its ancestors, innermost first."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self, html: str):
        super().__init__()
        self.stack: list[tuple[str, set[str]]] = []
        self.ancestors: dict[str, list[tuple[str, set[str]]]] = {}
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ancestors.setdefault(attrs["id"], list(reversed(self.stack)))
        if tag not in self.VOID:
            self.stack.append((tag, set((attrs.get("class") or "").split())))

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break


def inside(tree: Tree, element_id: str, tag: str, css_class: str | None = None) -> bool:
    return any(t == tag and (css_class is None or css_class in classes) for t, classes in tree.ancestors[element_id])


@pytest.fixture(scope="module")
def placed(tmp_path_factory, model_cache, serve):
    root = tmp_path_factory.mktemp("placement")
    url = serve(root / "site")
    config = placement_site(root, model_cache, {"index.md": "# Home\n", "containers.md": CONTAINERS,
                                                "headings.md": HEADINGS}, site_url=url)
    mkdocs_build(config)
    site = root / "site"
    return site, url, (site / "containers" / "index.html").read_text(), (site / "headings" / "index.html").read_text()


def test_demos_render_inside_their_blocks(placed):
    html = placed[2]
    tree = Tree(html)
    assert inside(tree, "in-note", "div", "admonition") and inside(tree, "in-note", "div", "note")
    assert inside(tree, "in-tip", "div", "tip")
    assert inside(tree, "in-details", "details")
    assert inside(tree, "in-tab", "div", "tabbed-block") and inside(tree, "in-tab", "div", "tabbed-set")
    assert inside(tree, "in-item", "li") and inside(tree, "in-item", "ul")
    assert inside(tree, "in-numbered", "li") and inside(tree, "in-numbered", "ol")
    # The blocks are whole: the tip keeps its text after the demo, the two tabs are one set.
    tip = re.search(r'<div class="admonition tip">.*?After the demo, still in the tip\.</p>\s*</div>', html, re.S)
    assert tip and 'id="in-tip"' in tip.group(0)
    assert html.count('class="tabbed-set') == 1 and re.search(r'<label for="__tabbed_1_2">Other</label>', html)
    assert len(re.findall(r'<sanet-demo class="sanet-demo"', html)) == 6
    # -0 is 0.
    assert re.search(r'id="in-tip".*?<output>0\.00</output>', html, re.S)


def test_code_in_blocks_stays_literal(placed):
    html = placed[2]
    code = [unescape(re.sub(r"<[^>]+>", "", block)) for block in re.findall(r"<code>(.*?)</code>", html, re.S)]
    for demo_id in ("indented-code", "code-in-note", "fence-in-note", "fence-in-item"):
        assert f'class="sanet-demo" id="{demo_id}"' not in html
        assert any(f'<% sanet_demo id="{demo_id}" %>' in block for block in code), demo_id
    assert "```" not in html  # the fences are code blocks, not paragraphs with backticks
    tree = Tree(html)
    assert inside(tree, "in-note", "article")  # (the parser follows the page)


def test_cite_in_headings_stays_out_of_title_toc_and_ids(placed):
    html = placed[3]
    title = re.search(r"<title>(.*?)</title>", html, re.S).group(1)
    assert title.startswith("Title") and "SANET" not in title and "span" not in title
    assert re.search(r'<h1 id="title">Title <a class="sanet-cite" href="#ref-park2019sanet"', html)
    assert re.search(r'<h2 id="results">Results <a class="sanet-cite" href="#ref-park2019sanet"', html)
    toc = re.findall(r'<a href="#([^"]*)" class="md-nav__link">\s*<span class="md-ellipsis">\s*(.*?)\s*</span>',
                     html, re.S)
    assert ("results", "Results") in toc
    assert not PLACEHOLDER.search(html)


def test_demo_id_is_unique_against_headings(placed):
    html = placed[3]
    assert re.search(r'<h2 id="sanet-demo-1">Sanet demo 1', html)
    assert re.search(r'<sanet-demo class="sanet-demo" id="sanet-demo-2"', html)
    ids = re.findall(r'\sid="([^"]+)"', html.split('<article')[1].split("</article>")[0])
    assert len(ids) == len(set(ids))


def test_given_demo_id_that_a_heading_has_is_an_error(tmp_path, model_cache):
    config = placement_site(tmp_path, model_cache, {"page.md": "# A\n\n## Results\n\n<% sanet_demo id=\"results\" %>\n"})
    result = mkdocs_build(config, check=False)
    assert result.returncode != 0
    assert 'docs/page.md:5: id "results" is already the id of a heading' in result.stderr, result.stderr[-1500:]
    assert "Traceback" not in result.stderr


def test_no_placeholder_anywhere(placed):
    for page in placed[0].rglob("*.html"):
        assert not PLACEHOLDER.search(page.read_text()), page


def test_search_index_leaves_out_the_demo_and_indexes_each_formula_once(placed):
    index = json.loads((placed[0] / "search" / "search_index.json").read_text())
    text = " ".join(doc["title"] + " " + doc["text"] for doc in index["docs"])
    for ui in ("Stylize", "Your own photo", "Nothing leaves your browser", "Download PNG"):
        assert ui not in text
    headings = " ".join(doc["text"] for doc in index["docs"] if doc["location"].startswith("headings/"))
    assert headings.count("α") == 1 and headings.count("β") == 1
    assert "\\alpha" not in headings and "\\frac" not in headings
    assert "After the demo, still in the tip." in text  # the author's text is still indexed


HOOK = '''\
import markdown


def on_page_content(html, page, config, files):
    """Like the blog plugin's excerpts: the page's Markdown rendered again, without the sanet plugin."""
    return html + markdown.markdown(page.markdown)
'''


@pytest.mark.parametrize("strict", [False, True])
def test_surviving_placeholder_fails_the_build(tmp_path, model_cache, strict):
    config = placement_site(tmp_path, model_cache, {"index.md": "# Home\n", "post.md": "# Post\n\n<% sanet_architecture %>\n"},
                            hooks=HOOK)
    command = [sys.executable, "-m", "mkdocs", "build", "-f", str(config)] + (["--strict"] if strict else [])
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode != 0
    assert re.search(r"docs/post\.md: a sanet tag was not rendered: its placeholder '<p>SANET[0-9a-f]{12}T\d+X</p>'",
                     result.stderr), result.stderr[-1500:]
    assert "Traceback" not in result.stderr


# -- issue 19: footnotes, definitions, blockquotes, HTML comments, text that reads like a placeholder --

PLACES = """\
# Places

A claim[^demo] and another[^first].

[^demo]: A note with a demo.

    <% sanet_demo id="in-footnote" %>

[^first]: <% sanet_demo id="first-in-footnote" %>

Term
:   A definition.
    <% sanet_demo id="in-definition" %>

Other term
:   <% sanet_demo id="first-in-definition" %>

> A quote.
> <% sanet_demo id="in-quote" %>
> After the demo, still quoted.

Between the quotes.

> > <% sanet_demo id="in-nested-quote" %>

And again.

> - A list in a quote
>     <% sanet_demo id="in-quoted-item" %>

- <% sanet_demo id="first-in-item" %>
- Another item
"""

COMMENTS = """\
# Comments

<!-- <% sanet_demo id="hidden" %> -->

<!--
<% sanet_demo id="hidden-too" %>
<% cite park2019sanet %>
-->

Text <!-- <% cite park2019sanet %> --> text.
"""

LOOKALIKES = """\
# Lookalikes

SANETTAG0X is a word here, and so is SANETTAG1X.

```text
SANETTAG0X
SANETTAG1X
```

    SANETTAG2X

<% sanet_demo id="real" %>
"""


@pytest.fixture(scope="module")
def places(tmp_path_factory, model_cache):
    root = tmp_path_factory.mktemp("places")
    config = placement_site(root, model_cache, {"index.md": "# Home\n", "places.md": PLACES,
                                                "comments.md": COMMENTS, "lookalikes.md": LOOKALIKES})
    result = mkdocs_build(config, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return {name: (root / "site" / name / "index.html").read_text() for name in ("places", "comments", "lookalikes")}


def test_demos_in_footnotes_definitions_and_blockquotes(places):
    html = places["places"]
    tree = Tree(html)
    for demo_id in ("in-footnote", "first-in-footnote"):
        assert inside(tree, demo_id, "li") and inside(tree, demo_id, "div", "footnote"), demo_id
    for demo_id in ("in-definition", "first-in-definition"):
        assert inside(tree, demo_id, "dd") and inside(tree, demo_id, "dl"), demo_id
    assert inside(tree, "in-quote", "blockquote")
    assert [t for t, _ in tree.ancestors["in-nested-quote"]].count("blockquote") == 2
    assert inside(tree, "in-quoted-item", "li") and inside(tree, "in-quoted-item", "blockquote")
    assert inside(tree, "first-in-item", "li") and inside(tree, "first-in-item", "ul")
    assert len(re.findall(r'<sanet-demo class="sanet-demo"', html)) == 8
    assert "&lt;%" not in html and "sanet_demo" not in html  # no tag printed as text
    # The blocks are whole: the quote keeps its text after the demo; each footnote its link back.
    assert re.search(r'<blockquote>\s*<p>A quote\.</p>(?:(?!</blockquote>).)*id="in-quote"(?:(?!</blockquote>).)*'
                     r'<p>After the demo, still quoted\.</p>\s*</blockquote>\s*<p>Between the quotes', html, re.S)
    for demo_id, note in (("in-footnote", "demo"), ("first-in-footnote", "first")):
        assert re.search(rf'<li id="fn:{note}">(?:(?!</li>).)*id="{demo_id}"(?:(?!</li>).)*'
                         rf'<a class="footnote-backref" href="#fnref:{note}"', html, re.S), demo_id


def test_tags_in_html_comments_do_nothing(places):
    html = places["comments"]
    assert "<sanet-demo" not in html and "sanet-cite" not in html and 'id="references"' not in html
    assert '<!-- <% sanet_demo id="hidden" %> -->' in html
    assert 'Text <!-- <% cite park2019sanet %> --> text.' in html
    assert "sanet-demo.js" not in html and "sanet-article" not in html


def test_a_demo_only_in_a_comment_ships_nothing(tmp_path, model_cache):
    config = placement_site(tmp_path, model_cache, {"index.md": COMMENTS})
    mkdocs_build(config)
    assert not (tmp_path / "site" / "assets" / "sanet").exists()
    assert "<sanet-demo" not in (tmp_path / "site" / "index.html").read_text()


def test_text_that_reads_like_a_placeholder_is_text(places):
    """SANETTAG0X (what a placeholder looked like) in a paragraph and in code: it stays as it is,
    and the code blocks get no demo."""
    html = places["lookalikes"]
    assert "SANETTAG0X is a word here, and so is SANETTAG1X." in html
    code = re.findall(r"<code>(.*?)</code>", html, re.S)
    assert any("SANETTAG0X" in block and "SANETTAG1X" in block for block in code)
    assert any("SANETTAG2X" in block for block in code)
    assert all("sanet-demo" not in block for block in code)
    assert re.findall(r'<sanet-demo class="sanet-demo" id="([^"]+)"', html) == ["real"]


@pytest.mark.browser
@pytest.mark.slow
def test_demo_in_a_tab_stylizes(placed, browser):
    """A demo in a content tab is wired up and stylizes (WASM, 128 px)."""
    browser.get(placed[1] + "containers/")
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#in-tab[data-sanet-ready]"))
    browser.execute_script("""
        const root = document.getElementById('in-tab');
        root.querySelector('[data-sanet-control="max-size"]').value = '128';""")
    button = browser.find_element(By.CSS_SELECTOR, "#in-tab .sanet-demo__run")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", button)
    button.click()
    WebDriverWait(browser, 240).until(
        lambda d: d.find_element(By.ID, "in-tab").get_attribute("data-sanet-state") in ("done", "error"))
    state = browser.execute_script("""
        const root = document.getElementById('in-tab');
        const canvas = root.querySelector('.sanet-demo__result canvas');
        return {state: root.dataset.sanetState, message: root.querySelector('.sanet-demo__message').textContent,
                width: canvas.width, visible: canvas.getBoundingClientRect().width > 0};""")
    assert state["state"] == "done", state["message"]
    assert state["width"] > 0 and state["visible"]
