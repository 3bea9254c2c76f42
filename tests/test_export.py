"""`mkdocs-sanet export DIR`: the demo as <sanet-demo> in a plain HTML page that MkDocs did not
build, served from another folder than the export, run in headless Chromium (WASM, 128 px)."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from helpers import PRESETS, ROOT, export, plain_page, psnr
from helpers import canvas_rgb, default_stylizer, requested_hosts, stylize
from mkdocs_sanet import weights

# The presets at their own size (coffee is 448x299): no resampling, which the browser's canvas and
# Python's Lanczos do differently (a trained model shows the difference; the painting is shrunk
# to the compression's 256 px by the same bilinear resize on both sides).
SIZE = 448


def test_export_refuses_a_folder_that_holds_something_else(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = export(tmp_path, "--runtime-dir", str(ROOT / "node_modules"))
    assert result.returncode == 2
    assert result.stderr == (f"mkdocs-sanet: error: {tmp_path}: the folder is not empty and holds no earlier "
                             "export: expected a new or empty folder (export replaces only an earlier export)\n")
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_export_without_the_runtime_says_where_it_looked(tmp_path):
    result = export(tmp_path / "sanet", "--runtime-dir", str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert result.stderr.startswith(f"mkdocs-sanet: error: --runtime-dir: {tmp_path / 'nowhere'}/@tensorflow/")
    assert "TF.js runtime file not found. Run `npm ci`" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def plain_site(tmp_path_factory, model_cache, serve) -> str:
    """An export at /static/sanet/ (written twice: the second replaces the first) and a page at
    /blog/post.html that uses it. Returns the server's base URL."""
    root = tmp_path_factory.mktemp("plain-site")
    for _ in range(2):
        result = export(root / "static" / "sanet", "--cache-dir", str(model_cache),
                        "--runtime-dir", str(ROOT / "node_modules"))
        assert result.returncode == 0, result.stderr[-3000:]
    assert "<sanet-demo></sanet-demo>" in result.stdout
    assert [p.name for p in (root / "static").iterdir()] == ["sanet"]
    # Its README is no Markdown page in a site whose docs_dir holds the export.
    assert (root / "static" / "sanet" / "README.txt").is_file()
    assert not (root / "static" / "sanet" / "README.md").exists()
    (root / "blog").mkdir()
    (root / "blog" / "post.html").write_text(plain_page(f'id="plain" max-size="{SIZE}" backends="wasm"'))
    return serve(root)


# The UI's elements, in order: tag, classes and data-sanet-* attributes (not the presets' URLs),
# leaving out what only the server renders (the untrained notice, noscript); and the root's settings.
UI_STRUCTURE = """
const structure = (root) => {
  const elements = [];
  for (const el of root.querySelectorAll('*')) {
    if (el.closest('.sanet-demo__notice, noscript')) continue;
    const data = Array.from(el.attributes).filter(a => a.name.startsWith('data-sanet-'))
      .map(a => a.name === 'data-sanet-src' ? a.name : `${a.name}=${a.value}`);
    elements.push([el.tagName.toLowerCase(), el.className, ...data].join(' '));
  }
  const settings = Object.keys(root.dataset).filter(k => !['sanetTrained', 'sanetReady'].includes(k)).sort();
  return {tag: root.tagName, className: root.className, settings, elements};
};
// The plugin's markup upgraded on this page too, so that both have the controls the element adds.
const [markup, done] = arguments;
const holder = document.createElement('div');
holder.innerHTML = markup;
document.body.appendChild(holder);
const server = holder.firstElementChild;
const wait = () => server.dataset.sanetReady
  ? done([structure(document.getElementById('plain')), structure(server)]) : setTimeout(wait, 20);
wait();
"""


@pytest.mark.browser
@pytest.mark.slow
def test_plain_page_from_another_folder_matches_python(browser, plain_site):
    browser.get(plain_site + "blog/post.html")
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#plain[data-sanet-ready]"))
    demo = browser.find_element(By.ID, "plain")
    assert demo.value_of_css_property("display") == "block", "the stylesheet beside the script did not load"
    labels = {role: [b.get_attribute("title") for b in demo.find_elements(
        By.CSS_SELECTOR, f'[data-sanet-role="{role}"] .sanet-demo__preset')] for role in ("content", "style")}
    assert labels == {"content": ["Astronaut", "Cat", "Coffee"],
                      "style": ["Café Terrace at Night, Vincent van Gogh, 1888", "The Night Café, Vincent van Gogh, 1888",
                                "The Church at Auvers, Vincent van Gogh, 1890", "The Harvest, Vincent van Gogh, 1888"]}
    assert ("Untrained model." in demo.text) is not weights.resolve("default").trained

    # Pick presets, stylize through the UI.
    for role, name in (("content", "Coffee"), ("style", "The Night Café, Vincent van Gogh, 1888")):
        demo.find_element(By.CSS_SELECTOR, f'[data-sanet-role="{role}"] [title="{name}"]').click()
    result = stylize(browser, "plain")
    assert result["state"] == "done", result["message"]
    assert result["backend"] == "wasm"
    assert browser.find_element(By.CSS_SELECTOR, "#plain .sanet-demo__download").get_attribute(
        "href").startswith("blob:")

    from mkdocs_sanet import pipeline

    expected = pipeline.to_uint8(default_stylizer()(pipeline.load_image(PRESETS / "content-coffee.jpg", SIZE),
                                                    pipeline.load_image(PRESETS / "style-night-cafe.jpg", SIZE)))
    out = canvas_rgb(result)
    assert out.shape == expected.shape
    assert out.std() > 5, "the picture is flat: the comparison would mean nothing"
    print(f"PSNR against the Python pipeline: {psnr(out, expected):.1f} dB")
    assert psnr(out, expected) >= 30
    assert requested_hosts(browser) == {"127.0.0.1"}


@pytest.mark.browser
@pytest.mark.slow
def test_element_renders_what_the_plugin_renders(browser, plain_site):
    """One demo: the UI the element renders for itself has the structure of the plugin's markup."""
    from mkdocs_sanet import demo_html, page_assets

    browser.get(plain_site + "blog/post.html")
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#plain[data-sanet-ready]"))
    presets = {role: [demo_html.Preset(entry["title"], entry["file"], by=demo_html.byline(entry))
                      for entry in entries] for role, entries in page_assets.builtin_presets().items()}
    server = demo_html.render_demo(
        demo_id="server", model_url="m/", runtime_url="r/", backends=["wasm"], max_size=SIZE, strength=1.0,
        trained=False, model_name="x", contents=presets["content"], styles=presets["style"],
        content=None, style=None)
    own, rendered = browser.execute_async_script(UI_STRUCTURE, server)
    assert own == rendered


@pytest.fixture(scope="module")
def mkdocs_site_with_export(tmp_path_factory, model_cache, serve):
    """A MkDocs site (the plugin) whose docs_dir holds `mkdocs-sanet export docs/sanet`, as a site
    that Zensical builds too does (issue 31): built, served; returns (site folder, URL)."""
    from helpers import mkdocs_build, write_site

    root = tmp_path_factory.mktemp("mkdocs-with-export")
    url = serve(root / "site")
    config = write_site(root, model_cache, {
        "index.md": "# Home\n\nNo demo here.\n",
        "blog/post.md": '# A post\n\n<% sanet_demo max_size="128" %>\n',
    }, plugin_options="backends: [wasm]", site_url=url)
    result = export(root / "docs" / "sanet", "--cache-dir", str(model_cache), "--runtime-dir", str(ROOT / "node_modules"))
    assert result.returncode == 0, result.stderr[-3000:]
    built = mkdocs_build(config)
    assert "the demos load the model of the export in sanet/model/" in built.stderr, built.stderr[-3000:]
    return root / "site", url


@pytest.mark.slow
def test_mkdocs_site_holding_the_export_ships_the_model_once(mkdocs_site_with_export):
    """The plugin's demos load the export's model/ (the same files): no second copy in
    assets/sanet/models/ (18 MB against 11 before)."""
    site, _ = mkdocs_site_with_export
    assert not (site / "assets" / "sanet" / "models").exists()
    graphs = sorted(p.relative_to(site).as_posix() for p in site.rglob("model.json"))
    assert graphs == ["sanet/model/decode/model.json", "sanet/model/encode/model.json",
                      "sanet/model/transform/model.json"], graphs
    html = (site / "blog" / "post" / "index.html").read_text()
    assert 'data-sanet-model="../../sanet/model/"' in html, html[:3000]


@pytest.mark.browser
@pytest.mark.slow
def test_mkdocs_site_holding_the_export_stylizes(browser, mkdocs_site_with_export):
    _, url = mkdocs_site_with_export
    browser.get(url + "blog/post/")
    result = stylize(browser, "sanet-demo-1")
    assert result["state"] == "done", result["message"]
    assert max(result["width"], result["height"]) == 128
