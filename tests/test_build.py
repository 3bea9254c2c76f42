"""Real `mkdocs build` runs: errors with page and line, paths, escaping, what pages get."""

from __future__ import annotations

import json
import re

import pytest

from helpers import PRESETS, mkdocs_build, write_site
from mkdocs_sanet import weights


@pytest.fixture
def empty_cache(tmp_path):
    return tmp_path / "cache"


def build_error(tmp_path, cache, pages, **kwargs) -> str:
    config = write_site(tmp_path / "project", cache, pages, **kwargs)
    result = mkdocs_build(config, check=False)
    assert result.returncode != 0, "the build should have failed"
    return result.stderr


@pytest.mark.parametrize("page, expected", [
    ("# T\n\nok\n\n<% sanet_demo max_size=\"huge\" %>\n",
     "docs/bad.md:5: 'sanet_demo' attribute max_size=\"huge\": expected a whole number from 32 to 1024"),
    ("# T\n<% sanet_demo colour=\"red\" %>\n", "docs/bad.md:2: unknown attribute 'colour' for 'sanet_demo'"),
    ("<% sanet_demos %>\n", "docs/bad.md:1: unknown tag 'sanet_demos'"),
    ("\n<% sanet_demo content=\"../../etc/passwd\" %>\n",
     "docs/bad.md:2: content=\"../../etc/passwd\" leaves docs_dir"),
    ("---\ntitle: Front matter\n---\n\n<% sanet_demo style=\"/missing.png\" %>\n",
     "docs/bad.md:5: style=\"/missing.png\": no such file in docs_dir"),
    ("<% sanet_demo id=\"a\" %>\n\n<% sanet_demo id=\"a\" %>\n", "docs/bad.md:3: id \"a\" is used twice on this page"),
])
def test_bad_tags_fail_with_page_and_line(tmp_path, empty_cache, page, expected):
    stderr = build_error(tmp_path, empty_cache, {"index.md": "# Home\n", "bad.md": page})
    assert expected in stderr
    # Nothing half-written in the cache: no entry, no temporary folder left behind.
    assert not any(empty_cache.glob("*")) if empty_cache.exists() else True


def test_bad_model_option(tmp_path, empty_cache):
    stderr = build_error(tmp_path, empty_cache, {"index.md": "# Home\n"}, plugin_options="model: no/such/folder")
    assert "mkdocs.yml: sanet: model:" in stderr and "no/such/folder" in stderr
    assert "expected 'default', or a folder with weights.npz or with the original SANet checkpoints" in stderr


@pytest.mark.parametrize("options, expected", [
    ("backends: []", "Plugin 'sanet' option 'backends': expected at least one of webgpu, webgl, wasm, cpu (an empty "
                     "list leaves the demo no backend to run on; leave the option out for all of them)"),
    ("results_size: 0", "Plugin 'sanet' option 'results_size': expected a whole number of at least 32 (the longest "
                        "side of the sanet_results pictures, in px), got 0"),
    ("results_size: -64", "option 'results_size': expected a whole number of at least 32 (the longest side of the "
                          "sanet_results pictures, in px), got -64"),
    ("results_size: true", "option 'results_size': expected a whole number of at least 32 (the longest side of the "
                           "sanet_results pictures, in px), got True"),
])
def test_impossible_options_are_refused_naming_them(tmp_path, empty_cache, options, expected):
    """Refused where the option is read, not in the reader's browser ("undefined did not start")."""
    stderr = build_error(tmp_path, empty_cache, {"index.md": "<% sanet_demo %>\n"}, plugin_options=options)
    assert expected in stderr and "Traceback" not in stderr, stderr[-2000:]


@pytest.mark.parametrize("path, expected", [
    ("/a.jpg", "mkdocs.yml: sanet: presets: content: /a.jpg: an absolute path: expected a path relative to "
               "docs_dir, such as img/photo.jpg (for {docs}/a.jpg, write a.jpg)"),
    ("/elsewhere/b.jpg", "mkdocs.yml: sanet: presets: content: /elsewhere/b.jpg: an absolute path: expected a path "
                         "relative to docs_dir, such as img/photo.jpg\n"),
    ("../a.jpg", "mkdocs.yml: sanet: presets: content: ../a.jpg: leaves docs_dir: expected a path relative to "
                 "docs_dir, such as img/photo.jpg\n"),
    ("img/../a.jpg", None),  # inside docs_dir after all: used
])
def test_presets_paths_say_what_the_option_expects(tmp_path, model_cache, path, expected):
    """A file that exists is never "no such file": the option takes paths relative to docs_dir."""
    config = write_site(tmp_path / "project", model_cache, {"index.md": "<% sanet_demo %>\n"},
                        plugin_options=f"presets:\n  content: ['{path}']",
                        images={"a.jpg": PRESETS / "content-cat.jpg"})
    (tmp_path / "a.jpg").write_bytes((PRESETS / "content-cat.jpg").read_bytes())
    result = mkdocs_build(config, check=False)
    if expected is None:
        assert result.returncode == 0, result.stderr[-2000:]
        return
    assert result.returncode != 0
    assert expected.format(docs=tmp_path / "project" / "docs") in result.stderr, result.stderr[-2000:]
    assert "no such file" not in result.stderr


def test_bad_runtime_dir(tmp_path, model_cache):
    stderr = build_error(tmp_path, model_cache, {"index.md": "<% sanet_demo %>\n"},
                         plugin_options="runtime_dir: nowhere")
    assert "mkdocs.yml: sanet: runtime_dir:" in stderr
    assert "tf-core.min.js: TF.js runtime file not found. Run `npm ci`" in stderr


def test_pages_and_assets(tmp_path, model_cache):
    """Only pages with the tag get the runtime; values are escaped; code shows the tag."""
    config = write_site(tmp_path / "project", model_cache, {
        "index.md": "# Home\n\nShow the tag: `<% sanet_demo %>`\n\n```\n<% sanet_demo %>\n```\n",
        "posts/demo.md": "# Demo\n\n<% sanet_demo content='../img/a \"b\" & <c>.jpg' id=\"first\" %>\n",
    }, images={'img/a "b" & <c>.jpg': PRESETS / "content-cat.jpg"})
    mkdocs_build(config)
    site = tmp_path / "project" / "site"
    index = (site / "index.html").read_text()
    assert "&lt;% sanet_demo %&gt;" in index
    assert "sanet-demo.js" not in index and 'class="sanet-demo"' not in index
    demo = (site / "posts" / "demo" / "index.html").read_text()
    assert demo.count('class="sanet-demo"') == 1
    assert 'data-sanet-src="../../img/a%20%22b%22%20%26%20%3Cc%3E.jpg"' in demo
    assert 'title="A &quot;b&quot; &amp; &lt;c&gt;"' in demo and "<c>" not in demo
    assert '<script src="../../assets/sanet/sanet-demo.js"></script>' in demo
    assert ("Untrained model." in demo) is not weights.resolve("default").trained
    model_url = re.search(r'data-sanet-model="([^"]+)"', demo).group(1)
    model_dir = site / "posts" / "demo" / model_url
    assert (model_dir / "manifest.json").is_file()
    for graph in ("encode", "transform", "decode"):
        assert (model_dir / graph / "model.json").is_file()
    for name in ("tf-core.min.js", "tf-converter.min.js", "tf-backend-wasm.min.js", "tfjs-backend-wasm-simd.wasm"):
        assert (site / "assets" / "sanet" / "tfjs" / name).is_file()
    injected = demo[demo.index('class="sanet-demo"'):demo.index('sanet-demo.js"></script>')]
    assert not re.search(r'(src|href)="(https?:)?//', injected), \
        "the demo refers to another host"


HOOK = '''
import json
from pathlib import Path

from mkdocs.plugins import event_priority


@event_priority(-100)  # after the sanet plugin's on_env
def on_env(env, config, files):
    names = {f.src_uri: [f.is_documentation_page(), f.url] for f in files if f.src_uri.startswith("assets/sanet/")}
    Path(config.config_file_path).with_name("files.json").write_text(json.dumps(names))
'''


def test_assets_are_mkdocs_files(tmp_path, model_cache):
    """What the pages load joins MkDocs' files (other plugins and hooks see it), none of it a page;
    the site holds copies."""
    config = write_site(tmp_path / "project", model_cache, {
        "index.md": "# Demo\n\n<% sanet_demo %>\n\n<% figure src=\"cat.jpg\" caption=\"A cat\" %>\n",
    }, images={"cat.jpg": PRESETS / "content-cat.jpg"})
    (config.parent / "hook.py").write_text(HOOK)
    config.write_text(config.read_text() + "hooks:\n  - hook.py\n")
    mkdocs_build(config)
    files = json.loads((config.parent / "files.json").read_text())
    site = config.parent / "site"
    key = re.search(r'data-sanet-model="assets/sanet/models/([0-9a-f]+)/"', (site / "index.html").read_text()).group(1)
    for name in ("tfjs/tf-core.min.js", "sanet-demo.js", "sanet-article.css", "presets/README.md",
                 f"models/{key}/manifest.json", f"models/{key}/encode/model.json"):
        assert files[f"assets/sanet/{name}"] == [False, f"assets/sanet/{name}"], name
        copy = site / "assets" / "sanet" / name
        assert copy.is_file() and copy.stat().st_nlink == 1 and not copy.is_symlink(), name
    assert not (site / "assets" / "sanet" / "presets" / "README" / "index.html").exists()
