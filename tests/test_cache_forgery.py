"""A cache restored from elsewhere (a CI cache under a shared restore key) is not trusted: each
entry (a model, a formula, a results picture) is checked where it is read by rules that a
forged manifest cannot meet, and a forged one is rebuilt with one warning, never shipped. Each
forgery is made by the test, with the manifest's sizes and hashes recomputed to match, as a
forger would; the site-level tests look at what the built site ships."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from helpers import DEMO_PAGE, PRESETS, ROOT, mkdocs_build, write_site
from mkdocs_sanet import cache, export, formulas, outputs, results

MATH = "markdown_extensions:\n  - pymdownx.arithmatex:\n      generic: true\n"
KATEX = ROOT / "node_modules"


def reseal(entry: Path) -> None:
    """What a forger does after changing an entry: the manifest's sizes and hashes made to match."""
    manifest = json.loads((entry / "manifest.json").read_text())
    files = sorted(top / name for top, _, names in outputs.walk(entry) for name in names  # any depth
                   if (top / name).is_file() and name != "manifest.json")
    manifest["files"] = {p.relative_to(entry).as_posix(): {
        "size": p.stat().st_size, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()} for p in files}
    (entry / "manifest.json").write_text(json.dumps(manifest, indent=2))


def site_model(config: Path) -> Path:
    """The model folder a built site ships."""
    [model] = (config.parent / "site" / "assets" / "sanet" / "models").iterdir()
    return model


@pytest.fixture
def own_cache(tmp_path, model_cache) -> tuple[Path, Path]:
    """A site whose own cache holds a copy of the session's default model: (mkdocs.yml, entry)."""
    warm = write_site(tmp_path / "warm", model_cache, DEMO_PAGE)
    mkdocs_build(warm)  # fills the session cache
    key = site_model(warm).name
    entry = tmp_path / "cache" / key
    shutil.copytree(model_cache / key, entry)
    if (model_cache / "compressed").is_dir():  # a rebuild need not compress the weights again
        shutil.copytree(model_cache / "compressed", entry.parent / "compressed")
    return write_site(tmp_path / "project", tmp_path / "cache", DEMO_PAGE), entry


def set_paths(entry: Path, graph: str, paths: list[str]) -> None:
    model = json.loads((entry / graph / "model.json").read_text())
    model["weightsManifest"][0]["paths"] = paths
    (entry / graph / "model.json").write_text(json.dumps(model))


def assert_plain_model(folder: Path) -> None:
    """Every weights path of every model.json: a plain file name that is in its folder."""
    for model_json in folder.glob("*/model.json"):
        text = model_json.read_text()
        assert "https:" not in text and "../" not in text, model_json
        for group in json.loads(text)["weightsManifest"]:
            for path in group["paths"]:
                assert "/" not in path and "\\" not in path and ".." not in path, (model_json, path)
                assert (model_json.parent / path).is_file(), (model_json, path)


# -- models, by building a site and by build-model -----------------------------------------

def test_forged_weights_paths_are_not_shipped_by_mkdocs_build(own_cache):
    config, entry = own_cache
    set_paths(entry, "encode", ["https://evil.example/weights.bin"])
    set_paths(entry, "decode", ["../../index.html"])
    reseal(entry)
    result = mkdocs_build(config)
    assert (f"WARNING -  sanet: the cached model {entry} is damaged (encode/model.json names the weights file "
            f"'https://evil.example/weights.bin': expected a plain file name in its folder): building it again"
            in result.stderr), result.stderr
    assert result.stderr.count("is damaged") == 1 and "Traceback" not in result.stderr
    shipped = site_model(config)
    assert_plain_model(shipped)
    assert {p.relative_to(shipped) for p in shipped.rglob("*")} == {p.relative_to(entry) for p in entry.rglob("*")}
    # The rebuilt entry is trusted by the next build.
    result = mkdocs_build(config)
    assert "using the cached model" in result.stderr and "WARNING" not in result.stderr, result.stderr


def test_forged_weights_paths_are_not_written_by_build_model(own_cache, tmp_path):
    _, entry = own_cache
    set_paths(entry, "decode", ["../../index.html"])
    reseal(entry)
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "mkdocs_sanet.cli", "build-model", "--cache-dir",
                             str(entry.parent), "--output", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (f"warning: the cached model {entry} is damaged (decode/model.json names the weights file "
            f"'../../index.html': expected a plain file name in its folder): building it again") in result.stderr
    assert "Traceback" not in result.stderr
    assert_plain_model(out)
    assert cache.Cache(entry.parent).problem(entry.name, export.SIGNATURES) is None


def test_entry_replaced_by_a_file(own_cache):
    config, entry = own_cache
    shutil.rmtree(entry)
    entry.write_text("not a model\n")
    result = mkdocs_build(config)
    assert (f"WARNING -  sanet: the cached model {entry} is damaged (not a folder): building it again"
            in result.stderr), result.stderr
    assert "Traceback" not in result.stderr
    assert entry.is_dir() and cache.Cache(entry.parent).problem(entry.name, export.SIGNATURES) is None
    assert_plain_model(site_model(config))


# -- models: each forgery that a manifest can be made to match ------------------------------

def add_file(entry: Path, name: str, data: bytes = b"<script>alert(1)</script>") -> None:
    (entry / name).parent.mkdir(parents=True, exist_ok=True)
    (entry / name).write_bytes(data)


def edit_model(entry: Path, graph: str, change) -> None:
    model = json.loads((entry / graph / "model.json").read_text())
    change(model)
    (entry / graph / "model.json").write_text(json.dumps(model))


def edit_manifest(entry: Path, change) -> None:
    manifest = json.loads((entry / "manifest.json").read_text())
    change(manifest)
    (entry / "manifest.json").write_text(json.dumps(manifest))


def link_shard(entry: Path) -> None:
    """A shard replaced by a link to a file outside with the same bytes: the hashes match."""
    shard = sorted((entry / "encode").glob("group1-shard*.bin"))[0]
    outside = entry.parent.parent / "elsewhere.bin"
    outside.write_bytes(shard.read_bytes())
    shard.unlink()
    shard.symlink_to(outside)


def shard_name(entry: Path, graph: str = "encode") -> str:
    return sorted((entry / graph).glob("group1-shard*.bin"))[0].name


PLAIN = "expected a plain file name in its folder"
# name -> (forge(entry), what the warning says)
FORGERIES = {
    "https path": (lambda e: set_paths(e, "encode", ["https://evil.example/w.bin"]),
                   f"encode/model.json names the weights file 'https://evil.example/w.bin': {PLAIN}"),
    "parent path": (lambda e: set_paths(e, "transform", ["../../index.html"]),
                    f"transform/model.json names the weights file '../../index.html': {PLAIN}"),
    "absolute path": (lambda e: set_paths(e, "encode", ["/etc/passwd"]),
                      f"encode/model.json names the weights file '/etc/passwd': {PLAIN}"),
    "backslash": (lambda e: set_paths(e, "encode", ["..\\..\\index.html"]),
                  f"encode/model.json names the weights file '..\\\\..\\\\index.html': {PLAIN}"),
    "folder in path": (lambda e: set_paths(e, "encode", ["sub/w.bin"]),
                       f"encode/model.json names the weights file 'sub/w.bin': {PLAIN}"),
    "nested folder": (lambda e: add_file(e, "encode/sub/w.bin"), "encode/sub is a folder inside a graph's folder"),
    "escaped dots": (lambda e: set_paths(e, "encode", ["%2e%2e%2findex.html"]),
                     f"encode/model.json names the weights file '%2e%2e%2findex.html': {PLAIN}"),
    "scheme only": (lambda e: set_paths(e, "encode", ["data:,x"]),
                    f"encode/model.json names the weights file 'data:,x': {PLAIN}"),
    "missing weights file": (lambda e: set_paths(e, "encode", ["other.bin"]),
                             "encode/model.json names the weights file 'other.bin', which is not in its folder"),
    "extra file in a graph": (lambda e: add_file(e, "encode/index.html"),
                              "encode/index.html is named by no model.json"),
    "extra file at the top": (lambda e: add_file(e, "evil.html"), "evil.html is outside the graphs' folders"),
    "extra graph": (lambda e: edit_manifest(e, lambda m: m["graphs"].update({"../x": {}})),
                    "manifest.json lists the graphs ['../x', 'decode', 'encode', 'transform'], expected"),
    "not JSON": (lambda e: add_file(e, "decode/model.json", b"<html>"), "decode/model.json is not JSON"),
    "layers model": (lambda e: edit_model(e, "decode", lambda m: m.update(format="layers-model")),
                     "decode/model.json is not a TF.js graph model"),
    "weights of another size": (lambda e: edit_model(
        e, "encode", lambda m: m["weightsManifest"][0]["weights"][0].update(shape=[100000])),
        "encode/model.json has weights of"),
    "linked shard": (link_shard, "is a link"),
    "forged min_size": (lambda e: edit_manifest(e, lambda m: m.update(min_size=100000)),
                        "manifest.json: min_size is 100000, expected 32"),
    "forged bytes": (lambda e: edit_manifest(e, lambda m: m["graphs"]["encode"].update(bytes=1)),
                     "manifest.json: graph 'encode' does not give its files'"),
    # Issue 30: what crashed every build (a RecursionError, the model card's KeyError or TypeError).
    "model.json nested 100,000 deep": (lambda e: add_file(e, "decode/model.json", b"[" * 100_000 + b"]" * 100_000),
                                       "decode/model.json is not JSON (JSON nested more than 64 deep)"),
    "1,100 nested folders": (lambda e: nest(e / "encode", 1100), "encode/d is a folder inside a graph's folder"),
    "1,100 nested folders at the top": (lambda e: nest(e / "x", 1100), "x/d is a folder inside a graph's folder"),
    "a graph's part": (lambda e: edit_manifest(e, lambda m: m["graphs"]["encode"].update(part="renderer")),
                       "manifest.json: graphs.encode.part is 'renderer', expected 'encoder'"),
    "no part": (lambda e: edit_manifest(e, lambda m: m["graphs"]["decode"].pop("part")),
                "manifest.json: graphs.decode.part is None, expected 'decoder'"),
    "uint8 a number": (lambda e: edit_manifest(e, lambda m: m["compression"].update(uint8=5)),
                       "manifest.json: compression.uint8 is not a list of the model's convs"),
    "uint8 of lists": (lambda e: edit_manifest(e, lambda m: m["compression"].update(uint8=[["encoder"]])),
                       "manifest.json: compression.uint8 is not a list of the model's convs"),
    "channels of no conv": (lambda e: edit_manifest(e, lambda m: m["compression"]["channels"].update({"x/y": 3})),
                            "manifest.json: compression.channels names 'x/y', which is no conv of the model"),
    "a huge width": (lambda e: edit_manifest(e, lambda m: m["compression"]["channels"].update(
        {"decoder/conv1_1": 10 ** 12})), "manifest.json: compression.channels holds a width outside 1 to 65,536"),
    "an unknown encoder": (lambda e: edit_manifest(e, lambda m: m.update(encoder="vgg99")),
                           "manifest.json: encoder is 'vgg99', expected one of"),
}


def nest(folder: Path, depth: int) -> None:
    """Folders nested `depth` deep (named d), a file at the bottom."""
    path = folder
    path.mkdir(exist_ok=True)
    for _ in range(depth):  # one at a time: Path.mkdir(parents=True) recurses
        path = path / "d"
        path.mkdir()
    (path / "w.bin").write_bytes(b"x")


def test_a_manifest_nested_100000_deep_is_rebuilt(pristine, tmp_path):
    entry = tmp_path / "cache" / pristine.name
    shutil.copytree(pristine, entry)
    (entry / "manifest.json").write_bytes(b"[" * 100_000 + b"]" * 100_000)
    warnings = []
    assert cache.Cache(entry.parent).get(entry.name, export.SIGNATURES, warn=warnings.append) is None
    assert warnings == [f"the cached model {entry} is damaged (manifest.json is unreadable: JSON nested more than "
                        "64 deep): building it again"]
    assert not entry.exists()


def test_kept_compressed_weights_get_the_header_checks_of_weights_npz(tmp_path, monkeypatch):
    """cache_dir/compressed/*.npz was read by np.load unchecked: a header declaring 4 TiB was a
    MemoryError (a traceback). It is checked as weights.npz is, and compressed again."""
    import zipfile

    from mkdocs_sanet import compression, weights

    source = weights.untrained_source()
    setting = compression.parse("uint8=all")
    calls = []
    apply = compression.apply
    monkeypatch.setattr(compression, "apply", lambda *a, **k: calls.append(1) or apply(*a, **k))
    compression.compressed_weights(source, setting, lambda line: None, tmp_path)
    kept, = tmp_path.glob("*.npz")
    header = {"descr": "<f4", "fortran_order": False, "shape": (1 << 40,)}
    with zipfile.ZipFile(kept, "w") as archive:
        with archive.open("decoder/conv1_1/bias.npy", "w") as member:
            np.lib.format.write_array_header_1_0(member, header)
            member.write(b"\0" * 64)
    again = compression.compressed_weights(source, setting, lambda line: None, tmp_path)
    assert len(calls) == 2 and np.isfinite(again["decoder/conv1_1/bias"]).all()


@pytest.fixture(scope="module")
def pristine(tmp_path_factory, model_cache) -> Path:
    """A copy of the session's default model entry."""
    warm = write_site(tmp_path_factory.mktemp("warm"), model_cache, DEMO_PAGE)
    mkdocs_build(warm)
    key = site_model(warm).name
    copy = tmp_path_factory.mktemp("pristine") / key
    shutil.copytree(model_cache / key, copy)
    return copy


@pytest.mark.parametrize("forgery", FORGERIES)
def test_forged_entry_is_refused(pristine, tmp_path, forgery):
    entry = tmp_path / "cache" / pristine.name
    shutil.copytree(pristine, entry)
    store = cache.Cache(entry.parent)
    cache._verified.clear()  # as in a new process
    assert store.problem(entry.name, export.SIGNATURES) is None
    cache._verified.clear()
    forge, message = FORGERIES[forgery]
    forge(entry)
    reseal(entry)
    warnings = []
    assert store.get(entry.name, export.SIGNATURES, warn=warnings.append) is None
    assert len(warnings) == 1 and message in warnings[0], warnings
    assert warnings[0].startswith(f"the cached model {entry} is damaged (")
    assert not entry.exists() and not list(entry.parent.glob(".trash-*"))


def test_entry_that_is_a_link_is_refused(pristine, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(pristine, elsewhere)
    entry = tmp_path / "cache" / pristine.name
    entry.parent.mkdir()
    entry.symlink_to(elsewhere, target_is_directory=True)
    warnings = []
    assert cache.Cache(entry.parent).get(entry.name, export.SIGNATURES, warn=warnings.append) is None
    assert warnings == [f"the cached model {entry} is damaged (a link, not a folder): building it again"]
    assert not os.path.lexists(entry) and elsewhere.is_dir()  # the link removed, never what it points at


def test_entry_that_is_a_file_is_built_again(tmp_path):
    """On main, put() raised NotADirectoryError here (the traceback of the finding)."""
    (tmp_path / "k").write_text("x")
    store = cache.Cache(tmp_path)
    warnings = []
    assert store.get("k", export.SIGNATURES, warn=warnings.append) is None
    assert warnings == [f"the cached model {tmp_path / 'k'} is damaged (not a folder): building it again"]

    def build(folder):
        (folder / "manifest.json").write_text(json.dumps({"graphs": {}}))

    (tmp_path / "k").write_text("x")  # again, in the way of put()'s rename this time
    assert store.put("k", build).is_dir()


# -- formulas -------------------------------------------------------------------------------

def math_site(root: Path, cache_dir: Path, page: str) -> Path:
    config = write_site(root, cache_dir, {"index.md": page})
    config.write_text(config.read_text() + MATH)
    return config


def test_forged_formula_is_not_shipped(tmp_path):
    config = math_site(tmp_path / "project", tmp_path / "cache", "# Math\n\n$$a^2 + b^2$$\n\nInline $\\sqrt{x}$.\n")
    mkdocs_build(config)
    page = config.parent / "site" / "index.html"
    genuine = page.read_text()
    cached = sorted((tmp_path / "cache" / "math").glob("*.html"))
    assert len(cached) == 2
    for path in cached:
        path.write_text(path.read_text() + '<script>alert("forged")</script>')
    result = mkdocs_build(config)
    assert result.stderr.count("WARNING -  sanet: the cached formula ") == 2, result.stderr
    assert "is damaged (a <script> element): rendering it again" in result.stderr, result.stderr
    assert ": rendering it again" in result.stderr and "Traceback" not in result.stderr
    assert "forged" not in page.read_text() and page.read_text() == genuine
    # Rendered again into the cache, and trusted by the next build.
    assert "forged" not in "".join(p.read_text() for p in cached)
    result = mkdocs_build(config)
    assert "WARNING" not in result.stderr, result.stderr


TEX = r"\frac{a}{b} + \sqrt{x}"
PAGE = f'<p><span class="arithmatex">\\({TEX}\\)</span></p>'


def fresh(tmp_path) -> tuple[Path, str]:
    """A formula rendered into a new cache: its cached file, and the page's HTML."""
    cache_dir = tmp_path / "math"
    page = formulas.render(PAGE, KATEX, cache_dir)
    [path] = cache_dir.glob("*.html")
    formulas._checked.clear()  # as in a new process
    return path, page


def other_formula(tmp_path) -> str:
    formulas.render('<p><span class="arithmatex">\\(x^2\\)</span></p>', KATEX, tmp_path / "other")
    [path] = (tmp_path / "other").glob("*.html")
    return path.read_text()


def make_fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def make_link(path: Path) -> None:
    outside = path.parent.parent / "outside.html"
    outside.write_text(path.read_text())
    path.unlink()
    path.symlink_to(outside)


# name -> (forge(path, tmp_path), what the warning says)
FORMULA_FORGERIES = {
    "script after it": (lambda p, t: p.write_text(p.read_text() + "<script>alert(1)</script>"),
                        "a <script> element"),
    "text after it": (lambda p, t: p.write_text(p.read_text() + "x"), "text outside the formula"),
    "script inside": (lambda p, t: p.write_text(p.read_text().replace(
        '<span class="katex-html"', '<script>alert(1)</script><span class="katex-html"', 1)), "a <script> element"),
    "event handler": (lambda p, t: p.write_text(p.read_text().replace(
        'class="katex-html"', 'class="katex-html" onmouseover="alert(1)"', 1)), "attribute 'onmouseover'"),
    "picture": (lambda p, t: p.write_text(p.read_text().replace(
        '<span class="katex-html"', '<span class="mord"><img src="https://evil.example/t.png"></span>'
        '<span class="katex-html"', 1)), "a <img> element"),
    "link": (lambda p, t: p.write_text(p.read_text().replace(
        '<span class="mord">', '<span class="mord"><a href="https://evil.example/">x</a>', 1)), "a <a> element"),
    "style with url()": (lambda p, t: p.write_text(p.read_text().replace(
        'style="', 'style="background:url(https://evil.example/t.png);', 1)), "style="),
    "quote in a class": (lambda p, t: p.write_text(p.read_text().replace(
        'class="katex-html"', 'class="katex-html&quot; onclick=&quot;alert(1)"', 1)), "class="),
    "single-quoted attribute": (lambda p, t: p.write_text(p.read_text().replace(
        'class="katex-html"', "class='katex-html' onclick='alert(1)'", 1)), "not KaTeX's markup"),
    "comment": (lambda p, t: p.write_text(p.read_text().replace("</annotation>", "</annotation><!-- x -->", 1)),
                "not KaTeX's markup at '<!-- x -->"),
    "closed early": (lambda p, t: p.write_text(
        '<span class="katex"></span></p><script>alert(1)</script><p><span class="katex">' + p.read_text()),
        "</p> does not close anything"),
    "another formula": (lambda p, t: p.write_text(other_formula(t)), "its TeX annotation is not the formula's"),
    "display as inline": (lambda p, t: p.write_text(p.read_text().replace(
        '<span class="katex">', '<span class="katex-display"><span class="katex">', 1) + "</span>"),
        'expected one <span class="katex"> around the formula'),
    "empty": (lambda p, t: p.write_text(""), "empty"),
    "not UTF-8": (lambda p, t: p.write_bytes(b"\xff\xfe<span>"), "codec can't decode"),
    "a link": (lambda p, t: make_link(p), "not a regular file"),
    "a FIFO": (lambda p, t: make_fifo(p), "not a regular file"),
    "a folder": (lambda p, t: (p.unlink(), p.mkdir()), "not a regular file"),
}


@pytest.mark.parametrize("forgery", FORMULA_FORGERIES)
def test_forged_formula_is_rendered_again(tmp_path, monkeypatch, forgery):
    path, genuine = fresh(tmp_path)
    forge, message = FORMULA_FORGERIES[forgery]
    forge(path, tmp_path)
    warnings = []
    monkeypatch.setattr(formulas.log, "warning", warnings.append)
    page = formulas.render(PAGE, KATEX, path.parent)
    assert page == genuine
    [warning] = warnings
    assert warning.startswith(f"sanet: the cached formula {path} is damaged (") and message in warning, warning
    assert warning.endswith(": rendering it again")
    assert path.is_file() and not path.is_symlink()
    formulas._checked.clear()
    assert formulas.render(PAGE, KATEX, path.parent) == genuine and len(warnings) == 1


# Formulas over KaTeX's features: what KaTeX writes for them must pass the check, or each build
# would render them again.
FEATURES = r"""
x^2+\frac ab
\sqrt[3]{y}\overrightarrow{AB}\color{red}{x}\href{https://x.org}{y}\rule{1em}{2em}\textcolor{#f00}{z}
\includegraphics{a.png} \htmlClass{foo}{x} \htmlStyle{color:red}{x}\htmlData{a=b}{y}\htmlId{i}{z} \url{javascript:x}
\text{<script>}\&\'" \verb!<b>&amp;</b>!
\begin{pmatrix}a&b\\c&d\end{pmatrix}\begin{Bmatrix}a\end{Bmatrix}\begin{vmatrix}a\end{vmatrix}
\boxed{x}\fcolorbox{red}{blue}{y}\colorbox{#abc}{z}
\sum_{i=1}^n \int_0^\infty \prod \lim_{x\to 0} \left(\frac{a}{b}\right] \iint \oiint
\begin{array}{|l:r|}\hline a&b\\\hdashline c&d\end{array}
\begin{aligned}a&=b\\c&=d\end{aligned} \begin{cases}a&b\\c&d\end{cases} \begin{smallmatrix}a\end{smallmatrix}
\cancel{x}\bcancel{y}\xcancel{z}\sout{w}\overbrace{abc}^{x}\underbrace{d}_{y}
\xrightarrow[abc]{def}\xleftarrow{x}\widehat{abc}\widetilde{xyz}\overleftrightarrow{AB}\xlongequal{h}
\mathbb{R}\mathcal{C}\mathfrak{g}\mathscr{L}\boldsymbol{\alpha}\operatorname{argmax}
\phase{x}\angl{n}\not= \neq \cdots \KaTeX
\left\lbrace \dfrac{1}{2}\right\rbrace \big( \Big[ \bigg\{ \Bigg\langle \left. a \middle| b \right|
\hspace{1em}\kern2pt\mkern3mu\phantom{x}\hphantom{y}\vphantom{z}\smash{x}\llap{a}\rlap{b}\mathclap{c}
{\Huge x}{\tiny y}\scriptstyle z \displaystyle\sum \textbf{bold}\textit{it}\texttt{tt}
\underline{x}\overline{y}\utilde{z}\overgroup{ab}\undergroup{cd}\overlinesegment{AB}
f'(x) \dot{x}\ddot{y}\vec{v}\bar{z}\hat{a}\check{b}\tilde{f}\mathring{g}
\stackrel{a}{=}\overset{b}{\to}\underset{c}{\leftarrow}\binom{n}{k}\genfrac(]{1pt}{0}{a}{b}
\raisebox{0.25em}{x}\hbox{y}\fbox{w}\vcenter{v}\mathchoice{a}{b}{c}{d}
\begin{matrix}a\\[2em]b\end{matrix} \\ \newline
\text{café – “quotes” — ü ß 中文} \Set{x | x>0} \degree \checkmark \copyright
"""


def test_katex_output_passes_the_check():
    texs = [line for line in FEATURES.strip().splitlines()]
    pairs = [(tex, display) for tex in texs for display in (False, True)]
    script = KATEX / "katex" / "dist" / "katex.min.js"
    rendered = formulas._katex(script, pairs)
    assert not [out for out in rendered if "error" in out]
    for (tex, display), out in zip(pairs, rendered):
        formulas.check_katex_html(out["html"], tex, display)
    display_only = [r"\tag{1} a=b", r"\begin{CD}A @>a>> B\end{CD}", r"\begin{align}a&=b\end{align}",
                    r"\begin{equation}x\end{equation}", r"\begin{gather}a\\b\end{gather}"]
    for tex, out in zip(display_only, formulas._katex(script, [(tex, True) for tex in display_only])):
        formulas.check_katex_html(out["html"], tex, True)


# -- results pictures ----------------------------------------------------------------------

RESULTS_PAGE = '# Results\n\n<% sanet_results contents="img/content-cat.jpg" styles="img/style-mosaic.jpg" %>\n'


def results_site(root: Path, cache_dir: Path) -> Path:
    images = {f"img/{name}": PRESETS / name for name in ("content-cat.jpg", "style-mosaic.jpg")}
    return write_site(root, cache_dir, {"index.md": RESULTS_PAGE},
                      plugin_options="results_size: 64", images=images)


def expected_size(content: Path, size: int = 64) -> tuple[int, int]:
    """The content photo upright, its longest side `size`."""
    with Image.open(content) as image:
        width, height = ImageOps.exif_transpose(image).size
    scale = size / max(width, height)
    return math.floor(width * scale + 0.5), math.floor(height * scale + 0.5)


def test_truncated_results_picture_is_not_shipped(tmp_path):
    config = results_site(tmp_path / "project", tmp_path / "cache")
    mkdocs_build(config)
    [cached] = (tmp_path / "cache" / "results").glob("*.png")
    data = cached.read_bytes()
    cached.write_bytes(data[: len(data) // 2])
    result = mkdocs_build(config)
    assert (f"WARNING -  sanet: the cached results picture {cached} is damaged (truncated: no IEND chunk): "
            f"computing it again") in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    [shipped] = (config.parent / "site" / "assets" / "sanet" / "results").glob("*.png")
    with Image.open(shipped) as image:
        image.verify()
    with Image.open(shipped) as image:
        image.load()
        assert image.size == expected_size(PRESETS / "content-cat.jpg")
    assert shipped.read_bytes() == cached.read_bytes() and len(cached.read_bytes()) > len(data) // 2
    result = mkdocs_build(config)
    assert "WARNING" not in result.stderr and "1 pictures from the cache" in result.stderr, result.stderr


def png(path: Path, size=(48, 32), mode="RGB", **options) -> bytes:
    pixels = np.random.default_rng(1).integers(0, 255, (size[1], size[0], len(mode)), dtype=np.uint8)
    Image.fromarray(pixels, mode).save(path, format=options.pop("format", "PNG"), **options)
    return path.read_bytes()


def flip_pixels(path: Path) -> None:
    data = bytearray(path.read_bytes())
    start = data.index(b"IDAT") + 20
    data[start] ^= 0xFF
    path.write_bytes(data)


# name -> (forge(path), what the problem says)
PICTURE_FORGERIES = {
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[:-30]), "truncated: no IEND chunk"),
    "bytes after its end": (lambda p: p.write_bytes(p.read_bytes() + b"<script>alert(1)</script>"),
                            "25 bytes after its end"),
    "a text chunk": (lambda p: png(p, pnginfo=_text_chunk()), "a b'tEXt' chunk"),
    "another size": (lambda p: png(p, size=(32, 32)), "32x32, expected 48x32"),
    "RGBA": (lambda p: png(p, mode="RGBA"), "mode RGBA, expected an RGB PNG"),
    "a JPEG": (lambda p: png(p, format="JPEG"), "not a PNG"),
    "damaged pixels": (flip_pixels, "not a picture Pillow can decode"),
    "a link": (lambda p: (p.rename(p.with_name("x.png")), p.symlink_to(p.with_name("x.png"))), "not a regular file"),
    "a folder": (lambda p: (p.unlink(), p.mkdir()), "not a regular file"),
    "a FIFO": (lambda p: (p.unlink(), os.mkfifo(p)), "not a regular file"),
}


def _text_chunk():
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "<script>alert(1)</script>")
    return info


@pytest.mark.parametrize("forgery", PICTURE_FORGERIES)
def test_forged_results_picture_is_refused(tmp_path, forgery):
    path = tmp_path / "p.png"
    png(path)
    assert results.problem(path, (48, 32)) is None
    forge, message = PICTURE_FORGERIES[forgery]
    forge(path)
    assert message in results.problem(path, (48, 32))


def test_results_job_removes_a_forged_picture(tmp_path, monkeypatch):
    """What ensure() asks of each cached picture: a forged one is described in one warning and
    removed (then computed again)."""
    content, style = PRESETS / "content-cat.jpg", PRESETS / "style-mosaic.jpg"
    job = results.Job(content, style, 64, 1.0)
    root = tmp_path / "results"
    root.mkdir()
    path = root / f"{job.key('k')}.png"
    png(path, size=job.picture_size())
    results._checked.clear()
    assert results._intact(job, path)
    results._checked.clear()
    path.write_bytes(path.read_bytes() + b"x")
    warnings = []
    monkeypatch.setattr(results.log, "warning", warnings.append)
    assert not results._intact(job, path)
    [warning] = warnings
    assert warning == f"sanet: the cached results picture {path} is damaged (1 bytes after its end): computing it again"
    assert not path.exists()


def test_readme_says_what_is_verified():
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### The cache"):text.index("### Errors")]
    for words in ("plain file names", "KaTeX", "decode", "shared restore key"):
        assert words in section, words
