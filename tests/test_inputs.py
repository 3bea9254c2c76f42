"""The pictures a page names, checked at build time; max_size capped at what the browser can
do; EXIF orientation and transparency in the Python pipeline (the browser side is in
test_browser_demo.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from helpers import PRESETS, alpha_png, exif_jpeg, full_width_model, mkdocs_build, write_site
from mkdocs_sanet import compression, config, demo_html, images, pipeline, weights


@pytest.fixture
def pictures(tmp_path):
    folder = tmp_path / "pictures"
    folder.mkdir()
    (folder / "notes.jpg").write_text("Not a picture, only text with a .jpg name.\n")
    (folder / "empty.png").write_bytes(b"")
    good = PRESETS / "content-cat.jpg"
    data = good.read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    Image.new("RGB", (20, 40), "white").save(folder / "tiny.png")
    Image.new("RGB", (1200, 40), "white").save(folder / "strip.png")  # 512x17 at 512 px
    Image.new("RGB", (64, 64), "white").save(folder / "picture.tiff")
    Image.new("RGB", (64, 48), "white").save(folder / "good.png")
    return folder


@pytest.mark.parametrize("name, model_size, expected", [
    ("notes.jpg", None, "not an image Pillow can read (cannot identify image file"),
    ("empty.png", None, "not an image Pillow can read (the file is empty)"),
    ("truncated.jpg", None, "not an image Pillow can read (image file is truncated"),
    ("picture.tiff", None, "a TIFF image, which browsers do not show: expected JPEG, PNG, GIF, WebP"),
    ("tiny.png", 512, "20x40: each side must be at least 32 px"),
    ("strip.png", 512, "1200x40 (scaled to 512x17 for the longest side of 512 px): each side must be at least 32 px"),
])
def test_bad_pictures(pictures, name, model_size, expected):
    with pytest.raises(pipeline.ImageCheckError) as error:
        pipeline.check_image(pictures / name, model_size)
    assert expected in str(error.value)


def test_good_pictures_and_sizes(pictures, tmp_path):
    assert pipeline.check_image(pictures / "good.png", 512) == (64, 48)
    assert pipeline.check_image(pictures / "tiny.png") == (20, 40)  # a figure may be small
    assert pipeline.check_image(exif_jpeg(tmp_path / "turned.jpg"), 512) == (64, 96)  # as shown: upright


def test_too_many_pixels(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "MAX_PIXELS", 1000)
    images._inspect.cache_clear()
    Image.new("RGB", (40, 40)).save(tmp_path / "big.png")
    with pytest.raises(pipeline.ImageCheckError, match="40x40 is 0 megapixels: expected at most 0"):
        pipeline.check_image(tmp_path / "big.png")
    images._inspect.cache_clear()


def test_check_is_cached_per_size_and_mtime(pictures, monkeypatch):
    opened = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda *a, **k: opened.append(a[0]) or real_open(*a, **k))
    path = pictures / "good.png"
    pipeline.check_image(path, 512)
    count = len(opened)
    assert count >= 1
    pipeline.check_image(path, 256)
    assert len(opened) == count, "an unchanged file was read again"
    Image.new("RGB", (70, 50)).save(path)
    assert pipeline.check_image(path, 512) == (70, 50)
    assert len(opened) > count


def test_load_image_turns_by_exif(tmp_path):
    path = exif_jpeg(tmp_path / "turned.jpg")
    image = pipeline.load_image(path, 0)
    assert image.shape == (96, 64, 3)
    with Image.open(path) as raw:
        stored = np.asarray(raw.convert("RGB"), np.float32) / 255
    # Orientation 6: the stored picture turned a quarter clockwise.
    assert np.abs(image - np.rot90(stored, k=-1)).max() < 1e-6


def test_load_image_lays_transparency_on_white(tmp_path):
    image = pipeline.load_image(alpha_png(tmp_path / "alpha.png"), 0)
    assert np.allclose(image[:, -10:], 1.0)  # transparent: white, not the hidden black
    assert np.allclose(image[:, :10], np.array([20, 120, 40]) / 255)
    palette = Image.new("P", (40, 40), 0)
    palette.putpalette([0, 0, 0, 255, 0, 0])
    palette.paste(1, (0, 0, 20, 40))
    palette.save(tmp_path / "palette.png", transparency=0)
    image = pipeline.load_image(tmp_path / "palette.png", 0)
    assert np.allclose(image[:, 30], 1.0) and np.allclose(image[:, 5], (1.0, 0, 0))


def test_max_size_cap():
    with pytest.raises(ValueError, match=f"from 32 to {config.MAX_SIZE}: .*memory"):
        config.max_size_value("4096")
    assert config.max_size_value(str(config.MAX_SIZE)) == config.MAX_SIZE
    # The demo never offers a size above its max_size.
    assert max(demo_html.size_choices(config.MAX_SIZE)) == config.MAX_SIZE


def test_demo_offers_the_backends():
    html = demo_html.render_demo(
        demo_id="d", model_url="m/", runtime_url="r/", backends=["webgl", "wasm"], max_size=384, strength=1.0,
        trained=True, model_name="x", contents=[], styles=[], content=None, style=None)
    assert ('<select data-sanet-control="backend"' in html
            and '<option value="auto" selected>Auto</option><option value="webgl">WebGL</option>'
                '<option value="wasm">WASM</option></select>' in html)
    assert 'data-sanet-max-size="384"' in html


# -- real builds: page and line, never a traceback --------------------------------------------

def build_error(tmp_path, pages, images, options="") -> str:
    config_path = write_site(tmp_path / "project", tmp_path / "cache", pages, plugin_options=options, images=images)
    result = mkdocs_build(config_path, check=False)
    assert result.returncode != 0, "the build should have failed"
    assert "Traceback" not in result.stderr
    return result.stderr


@pytest.mark.parametrize("page, expected", [
    ("# T\n\n<% sanet_demo content=\"images/notes.jpg\" %>\n",
     'docs/index.md:3: content="images/notes.jpg": not an image Pillow can read (cannot identify image file'),
    ("# T\n\n\n<% figure src=\"images/empty.png\" caption=\"Empty\" %>\n",
     'docs/index.md:4: src="images/empty.png": not an image Pillow can read (the file is empty)'),
    ("# T\n<% sanet_results contents=\"images/good.png,images/notes.jpg\" styles=\"images/good.png\" %>\n",
     'docs/index.md:2: contents="images/notes.jpg": not an image Pillow can read'),
    ("<% sanet_demo style=\"images/strip.png\" max_size=\"256\" %>\n",
     'docs/index.md:1: style="images/strip.png": 1200x40 (scaled to 256x9 for the longest side of 256 px)'),
    ("# T\n\n<% sanet_demo max_size=\"4096\" %>\n",
     f'docs/index.md:3: \'sanet_demo\' attribute max_size="4096": expected a whole number from 32 to {config.MAX_SIZE}: '),
])
def test_build_errors(tmp_path, pictures, page, expected):
    images = {f"images/{p.name}": p for p in pictures.iterdir()}
    stderr = build_error(tmp_path, {"index.md": page}, images)
    assert expected in stderr


def test_max_size_cap_follows_the_compression(tmp_path):
    """1024 px where the compression shrinks the style image (the default); 768 without."""
    assert config.max_size_cap(compression.DEFAULT)[0] == 1024
    assert config.max_size_cap("none")[0] == config.MAX_SIZE_FULL_STYLE == 768
    full = f"model: {full_width_model(tmp_path / 'full')}\n"  # the trained default takes fast's widths only
    stderr = build_error(tmp_path / "tag", {"index.md": "# T\n\n<% sanet_demo max_size=\"1024\" %>\n"}, {},
                         options=full + "compression: none")
    assert ('docs/index.md:3: \'sanet_demo\' attribute max_size="1024": expected a whole number from 32 to 768 '
            'with compression: none: the attention\'s memory grows with the square') in stderr
    stderr = build_error(tmp_path / "option", {"index.md": "# T\n"}, {}, options=full + "compression: none\nmax_size: 1024")
    assert "expected a whole number from 32 to 768 with compression: none: " in stderr
    assert "Traceback" not in stderr


def test_config_max_size_over_the_cap(tmp_path):
    stderr = build_error(tmp_path, {"index.md": "# T\n"}, {}, options="max_size: 4096")
    assert f"expected a whole number from 32 to {config.MAX_SIZE}: " in stderr and "memory" in stderr


def test_results_process_never_ends_in_a_traceback(tmp_path, pictures):
    """The last guard, behind the build's check: one line naming the file."""
    job = {"content": str(pictures / "notes.jpg"), "style": str(pictures / "good.png"), "size": 64,
           "strength": 1.0, "output": str(tmp_path / "out.png")}
    source = weights.resolve("default").to_json()
    result = subprocess.run([sys.executable, "-m", "mkdocs_sanet.results", "--source", source], input=json.dumps([job]),
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"{pictures / 'notes.jpg'} with {pictures / 'good.png'}: cannot identify image file" in result.stderr
    assert not list(tmp_path.glob("out.png*"))


def test_good_pictures_build(tmp_path, pictures, model_cache):
    """EXIF-turned and transparent pictures pass the check; the demo says how large it may get."""
    images = {"images/turned.jpg": exif_jpeg(tmp_path / "turned.jpg"), "images/alpha.png": alpha_png(tmp_path / "a.png")}
    config_path = write_site(tmp_path / "project", model_cache, {
        "index.md": '# T\n\n<% sanet_demo content="images/turned.jpg" style="images/alpha.png" max_size="96" %>\n'
                    '\n<% figure src="images/alpha.png" caption="A" %>\n'}, images=images)
    mkdocs_build(config_path)
    html = (tmp_path / "project" / "site" / "index.html").read_text()
    assert 'data-sanet-max-size="96"' in html and 'data-sanet-control="backend"' in html


@pytest.mark.parametrize("name, expected", [
    ("notes.jpg", "not an image Pillow can read (cannot identify image file"),
    ("empty.png", "not an image Pillow can read (the file is empty)"),
    ("picture.tiff", "a TIFF image, which browsers do not show"),
    ("tiny.png", "20x40: each side must be at least 32 px"),
    ("page.md", "not an image Pillow can read"),
])
def test_presets_get_the_checks_of_tag_pictures(tmp_path, pictures, name, expected):
    """A preset that would fail at Stylize fails the build instead, naming the option."""
    (pictures / "page.md").write_text("# A page, not a picture\n")
    images = {f"images/{p.name}": p for p in pictures.iterdir()}
    role = "style"
    options = f"presets:\n  content: [images/good.png]\n  {role}: [images/{name}]"
    stderr = build_error(tmp_path, {"index.md": "# T\n\n<% sanet_demo %>\n"}, images, options=options)
    assert f"mkdocs.yml: sanet: presets: {role}: images/{name}: {expected}" in stderr
