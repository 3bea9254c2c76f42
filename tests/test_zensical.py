"""A site built by a real `zensical build` from a mkdocs.yml that lists the sanet plugin (which
Zensical skips) and the mkdocs_sanet.zensical extension, with `mkdocs-sanet export docs/sanet`:
the demo and a citation rendered, a tag that needs MkDocs refused with its page and line, the
demo run in headless Chromium (WASM, 128 px).

zensical is in the test extra (./dev test installs it); SANET_ZENSICAL may name another
`zensical` executable (one in a separate virtual environment, say)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from helpers import PRESETS, ROOT, export, save_png, stylize

SIZE = 128
BIB = """\
@misc{park2019,
  author = {Park, Dae Young and Lee, Kwang Hee},
  title = {Arbitrary Style Transfer with Style-Attentional Networks},
  year = {2019},
  eprint = {1812.02342},
  archiveprefix = {arXiv},
  url = {https://arxiv.org/abs/1812.02342}
}
"""
MKDOCS_YML = """\
site_name: Zensical test
theme:
  name: material
plugins:
  - search
  - sanet
markdown_extensions:
  - admonition
  - pymdownx.arithmatex:
      generic: true
  - mkdocs_sanet.zensical:
      assets: sanet/
      bibliography: docs/references.bib
      backends: wasm
"""


def zensical() -> str:
    """The zensical executable: $SANET_ZENSICAL, else the one beside this Python, else on PATH."""
    named = os.environ.get("SANET_ZENSICAL")
    if named:
        if not os.access(named, os.X_OK):
            pytest.fail(f"SANET_ZENSICAL={named}: not an executable")
        return named
    beside = Path(sys.executable).parent / "zensical"
    found = str(beside) if beside.is_file() else shutil.which("zensical")
    if not found:
        pytest.skip("zensical is not installed: pip install zensical (the test extra has it; ./dev test installs it), "
                    "or point SANET_ZENSICAL at a zensical executable")
    return found


def zensical_build(root: Path) -> subprocess.CompletedProcess:
    """`zensical build --clean` in root, importing mkdocs_sanet from this checkout."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    return subprocess.run([zensical(), "build", "--clean"], cwd=root, env=env, capture_output=True, text=True,
                          timeout=300)


def write_site(root: Path, pages: dict[str, str]) -> None:
    (root / "docs").mkdir(parents=True, exist_ok=True)
    (root / "mkdocs.yml").write_text(MKDOCS_YML)
    (root / "docs" / "references.bib").write_text(BIB)
    for name, text in pages.items():
        (root / "docs" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "docs" / name).write_text(textwrap.dedent(text))


@pytest.fixture(scope="module")
def zensical_site(tmp_path_factory, model_cache) -> Path:
    """The export in docs/sanet/, a post in a subfolder with a demo, a citation and math; built."""
    zensical()
    root = tmp_path_factory.mktemp("zensical-site")
    write_site(root, {
        "index.md": "# Home\n\nNo demo here. [The post](blog/post.md)\n",
        "blog/post.md": f"""\
            ---
            title: A post
            ---

            # A post

            SANet <% cite park2019 %> puts a painting's style on a photo, $x^2$ included:

            !!! example "Try it"

                <% sanet_demo content="photo.png" max_size="{SIZE}" strength="0.9" %>

            The syntax, shown as code: `<% sanet_demo %>`.
            """,
        # A '%', '#' and spaces in a picture's name (issue 30): the URLs encode them.
        "names.md": f'# Names\n\n<% sanet_demo id="odd" contents="{ODD}.png" styles="/blog/photo.png" '
                    f'max_size="{SIZE}" %>\n',
    })
    save_png(PRESETS / "content-cat.jpg", root / "docs" / "blog" / "photo.png", (150, 100))
    save_png(PRESETS / "content-coffee.jpg", root / "docs" / f"{ODD}.png", (96, 64))
    result = export(root / "docs" / "sanet", "--cache-dir", str(model_cache), "--runtime-dir", str(ROOT / "node_modules"))
    assert result.returncode == 0, result.stderr[-3000:]
    result = zensical_build(root)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return root / "site"


ODD = "50% off #1"


def page_html(site: Path, url: str) -> str:
    return (site / url / "index.html").read_text()


@pytest.mark.slow
def test_zensical_page_has_the_demo_its_script_and_the_citation(zensical_site):
    html = page_html(zensical_site, "blog/post")
    assert "<%" not in html and "&lt;%" not in html.replace("<code>&lt;% sanet_demo %&gt;</code>", "")
    assert "<code>&lt;% sanet_demo %&gt;</code>" in html  # in code it stays as written
    demos = re.findall(r"<sanet-demo\b[^>]*>", html)
    # The picture relative to the site's root, which href names (relative to the page, as Zensical
    # rewrites it for each page the element lands on).
    assert demos == ['<sanet-demo id="sanet-demo-1" href="../.." max-size="128" strength="0.9" backends="wasm" '
                     'content-src="blog/photo.png">'], demos
    # Inside its admonition, with the one script (and stylesheet) of the export.
    assert re.search(r'<div class="admonition example">.*<sanet-demo .*</sanet-demo>.*</div>', html, re.S)
    scripts = re.findall(r'<script src="([^"]*sanet[^"]*)"', html)
    assert len(scripts) == 1, scripts
    page_url = "http://site.test/blog/post/"
    for url in [scripts[0], *re.findall(r'<link rel="stylesheet" href="([^"]*sanet-demo\.css)"', html),
                urljoin(urljoin(page_url, "../.."), re.search(r'content-src="([^"]*)"', demos[0]).group(1))]:
        path = urlparse(urljoin(page_url, url)).path.lstrip("/")
        assert (zensical_site / path).is_file(), f"{url} -> {path}: not in the site"
    assert urlparse(urljoin(page_url, scripts[0])).path == "/sanet/sanet-demo.js"
    # The citation, and the references at the page's end.
    assert '<a class="sanet-cite" href="#ref-park2019" id="cite-park2019-1">[1]</a>' in html
    references = re.search(r'<ol class="sanet-references"><li id="ref-park2019">(.*?)</li></ol>', html, re.S)
    assert references and "Arbitrary style transfer with style-attentional networks" in references.group(1)
    # Math: Zensical leaves arithmatex's output for a script in the browser (README: Zensical).
    assert r'<span class="arithmatex">\(x^2\)</span>' in html


@pytest.mark.slow
def test_zensical_site_keeps_the_export_as_files(zensical_site):
    """The export's README is no page: the export's own index.html is still at /sanet/."""
    assert "<sanet-demo max-size=" in (zensical_site / "sanet" / "index.html").read_text()
    assert (zensical_site / "sanet" / "README.txt").is_file()
    assert (zensical_site / "sanet" / "model").is_dir()


@pytest.mark.slow
def test_zensical_site_has_no_page_from_the_export_presets(zensical_site):
    assert not (zensical_site / "sanet" / "presets" / "index.html").exists()
    assert (zensical_site / "sanet" / "presets" / "README.txt").is_file()


def test_zensical_refuses_a_tag_it_cannot_render(tmp_path):
    """sanet_results needs the MkDocs plugin's build: the build stops, naming page, line and what to do."""
    write_site(tmp_path, {"results.md": """\
        ---
        title: Results
        ---

        # Results

        <% sanet_results contents="a.jpg" styles="b.jpg" %>
        """})
    result = zensical_build(tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert ("ERROR   -  sanet: docs/results.md:7: 'sanet_results' cannot be rendered by Zensical (its pictures are "
            "stylized at build time, which only the MkDocs plugin does): build this site with MkDocs (mkdocs build, "
            "with the sanet plugin), or remove the tag (under Zensical, mkdocs_sanet.zensical renders sanet_demo "
            "and cite)\n") in output, output[-3000:]
    assert not (tmp_path / "site" / "results" / "index.html").exists()


def test_zensical_without_the_export_says_how_to_make_it(tmp_path):
    write_site(tmp_path, {"index.md": "# Home\n\n<% sanet_demo %>\n"})
    result = zensical_build(tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert ("ERROR   -  sanet: docs/index.md:3: sanet_demo: no export in docs/sanet/ (looked for sanet-demo.js and "
            "model/): run `mkdocs-sanet export docs/sanet` first, or set the assets option of mkdocs_sanet.zensical "
            "to the folder of docs_dir that holds the export\n") in output, output[-3000:]


def test_zensical_unknown_citation_key(tmp_path):
    write_site(tmp_path, {"index.md": "# Home\n\nSee <% cite nobody2020 %>.\n"})
    result = zensical_build(tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert (f"ERROR   -  sanet: docs/index.md:3: unknown citation key 'nobody2020' (not in "
            f"{tmp_path / 'docs' / 'references.bib'})\n") in output, output[-3000:]


@pytest.mark.browser
@pytest.mark.slow
def test_zensical_demo_stylizes_with_wasm(browser, zensical_site, serve):
    url = serve(zensical_site)
    browser.get(url + "blog/post/")
    result = stylize(browser, "sanet-demo-1")
    assert result["state"] == "done", result["message"]
    assert result["backend"] == "wasm"
    assert max(result["width"], result["height"]) == SIZE
    assert len(set(result["pixels"][0::4])) > 10  # a picture, not a blank canvas
    assert browser.execute_script("return document.querySelectorAll('sanet-demo[data-sanet-ready]').length") == 1


@pytest.mark.slow
def test_zensical_encodes_odd_picture_names(zensical_site):
    html = page_html(zensical_site, "names")
    assert 'href="../." ' in html and 'contents="50%25%20off%20%231.png"' in html and 'styles="blog/photo.png"' in html, \
        html[-3000:]


@pytest.mark.browser
@pytest.mark.slow
def test_zensical_demo_starts_with_odd_picture_names(browser, zensical_site, serve):
    """decodeURIComponent on a raw '%' stopped the demo ("URI malformed")."""
    browser.get(serve(zensical_site) + "names/")
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#odd[data-sanet-ready]"))
    facts = browser.execute_script("""
        const demo = document.getElementById('odd');
        return (async () => {
          const images = [...demo.querySelectorAll('.sanet-demo__pickers .sanet-demo__preset img')];
          await Promise.all(images.map((img) => img.decode().catch(() => null)));
          return {state: demo.dataset.sanetState, pictures: images.map((img) => [
            img.closest('.sanet-demo__preset').dataset.sanetTitle, img.naturalWidth > 0])};
        })();""")
    assert facts["state"] != "error" and facts["pictures"] == [[ODD, True], ["Photo", True]], facts


@pytest.mark.parametrize("assets", ["../outside/", "/srv/sanet/"])
def test_zensical_assets_outside_docs_dir(tmp_path, assets):
    """Zensical copies only docs_dir into the site: an export elsewhere is refused at build time."""
    write_site(tmp_path, {"index.md": "# Home\n\n<% sanet_demo %>\n"})
    (tmp_path / "mkdocs.yml").write_text(MKDOCS_YML.replace("assets: sanet/", f"assets: {assets}"))
    result = zensical_build(tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert output.count(f"ERROR   -  sanet: mkdocs.yml: mkdocs_sanet.zensical: assets: '{assets}': expected the "
                        f"export's folder inside docs_dir, relative to it (such as sanet/): Zensical copies only "
                        f"docs_dir ({tmp_path / 'docs'}) into the site\n") == 1, output[-3000:]


def test_zensical_unknown_backend_option(tmp_path):
    write_site(tmp_path, {"index.md": "# Home\n\n<% sanet_demo %>\n"})
    (tmp_path / "mkdocs.yml").write_text(MKDOCS_YML.replace("backends: wasm", "backends: wasm,gl"))
    result = zensical_build(tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert output.count("ERROR   -  sanet: mkdocs.yml: mkdocs_sanet.zensical: backends: unknown backend gl: expected "
                        "some of webgpu, webgl, wasm, cpu, comma-separated\n") == 1, output[-3000:]


BLOG_YML = """\
site_name: Zensical blog
site_url: https://example.org/my-project/
theme:
  name: material
plugins:
  - blog
markdown_extensions:
  - mkdocs_sanet.zensical:
      assets: sanet/
      backends: wasm
"""
# Where a post's excerpt lands (issue 31): the blog's index, its archive and its category page.
BLOG_VIEWS = ["blog/", "blog/archive/2024/", "blog/category/space/", "blog/2024/01/01/rocket/"]


@pytest.fixture(scope="module")
def zensical_blog(tmp_path_factory, model_cache) -> Path:
    """A Zensical blog with a post whose excerpt holds a demo with its own pictures, served under
    a sub-path (/my-project/, as GitHub Pages serves a project): returns the served folder."""
    zensical()
    root = tmp_path_factory.mktemp("zensical-blog")
    (root / "docs" / "blog" / "posts").mkdir(parents=True)
    (root / "docs" / "images").mkdir()
    (root / "mkdocs.yml").write_text(BLOG_YML)
    (root / "docs" / "index.md").write_text("# Home\n")
    (root / "docs" / "blog" / "index.md").write_text("# Blog\n")
    (root / "docs" / "blog" / "posts" / "rocket.md").write_text(textwrap.dedent(f"""\
        ---
        date: 2024-01-01
        categories:
          - Space
        ---

        # Rocket

        <% sanet_demo content="../../images/rocket.png" styles="/images/painting.png" max_size="{SIZE}" %>

        <!-- more -->

        The rest of the post.
        """))
    save_png(PRESETS / "content-cat.jpg", root / "docs" / "images" / "rocket.png", (150, 100))
    save_png(PRESETS / "content-coffee.jpg", root / "docs" / "images" / "painting.png", (96, 64))
    result = export(root / "docs" / "sanet", "--cache-dir", str(model_cache), "--runtime-dir", str(ROOT / "node_modules"))
    assert result.returncode == 0, result.stderr[-3000:]
    result = zensical_build(root)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    served = root / "served"
    served.mkdir()
    (root / "site").rename(served / "my-project")
    return served


@pytest.mark.slow
def test_zensical_excerpt_pictures_resolve_on_every_view(zensical_blog):
    """The excerpt's pictures, resolved as the element resolves them (its href against the page,
    then each picture against that), are the site's files on each view, under the sub-path."""
    site = zensical_blog / "my-project"
    for view in BLOG_VIEWS:
        html = (site / view / "index.html").read_text()
        demos = re.findall(r"<sanet-demo\b[^>]*>", html)
        assert len(demos) == 1, (view, demos)
        page_url = "https://example.org/my-project/" + view
        base = urljoin(page_url, re.search(r' href="([^"]*)"', demos[0]).group(1))
        for attribute in ("content-src", "styles"):
            url = urljoin(base, re.search(rf'{attribute}="([^"]*)"', demos[0]).group(1))
            assert url.startswith("https://example.org/my-project/"), (view, demos[0], url)
            assert (site / urlparse(url).path.removeprefix("/my-project/")).is_file(), (view, demos[0], url)


@pytest.mark.browser
@pytest.mark.slow
def test_zensical_excerpt_under_a_sub_path_stylizes(browser, zensical_blog, serve):
    """On the blog's index and archive under /my-project/, the excerpt's photo and painting load
    and Stylize runs (it said "could not load the image": the URL left the sub-path)."""
    url = serve(zensical_blog)
    for view in BLOG_VIEWS[:2]:
        browser.get(url + "my-project/" + view)
        WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "sanet-demo[data-sanet-ready]"))
        pictures = browser.execute_script("""
            const demo = document.querySelector('sanet-demo');
            return (async () => {
              const images = [...demo.querySelectorAll('.sanet-demo__pickers .sanet-demo__preset img')];
              await Promise.all(images.map((img) => img.decode().catch(() => null)));
              return images.map((img) => [new URL(img.src).pathname, img.naturalWidth > 0]);
            })();""")
        # The post's photo beside the built-in ones (the export's presets), its painting alone.
        assert ["/my-project/images/rocket.png", True] in pictures, (view, pictures)
        assert ["/my-project/images/painting.png", True] in pictures, (view, pictures)
        assert all(loaded and path.startswith("/my-project/") for path, loaded in pictures), (view, pictures)
    demo_id = browser.execute_script("return document.querySelector('sanet-demo').id")
    result = stylize(browser, demo_id)
    assert result["state"] == "done", result["message"]
    assert max(result["width"], result["height"]) == SIZE
    assert len(set(result["pixels"][0::4])) > 10
