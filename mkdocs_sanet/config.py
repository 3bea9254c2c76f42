"""The plugin's options (mkdocs.yml: plugins: - sanet: ...)."""

from __future__ import annotations

from mkdocs.config import base
from mkdocs.config import config_options as c

from .architecture import MIN_SIZE, QUANTIZATIONS
from .compression import DEFAULT as DEFAULT_COMPRESSION, CompressionError, parse

BACKENDS = ("webgpu", "webgl", "wasm", "cpu")

# The longest side the demo may offer, measured in headless Chromium, TF.js WASM backend, square
# pictures (benchmarks/bench_max_size.py). With the style image at the picture's size (compression
# `none`): 512 px: 27 s, peak tensors 245 MiB, WASM heap 458 MiB; 768 px: 84 s, 825 MiB, 1358 MiB;
# 1024 px: still running after 10 minutes, the page frozen. The attention's two N x N matrices
# (N: positions at 1/8 scale) grow with the square of the area: at 1024 px they alone take 2 GiB,
# and the heap would reach the 4 GiB that WASM can address. A compression that shrinks the style
# image (`style_max_size`, the default `fast`: 256 px) makes them grow with the area alone:
# 768 px: 6.8 s, 235 MiB, 447 MiB; 1024 px: 14.3 s, 405 MiB, 768 MiB.
MAX_SIZE = 1024
MAX_SIZE_WHY = ("the browser's memory: at 1024 px the default compression needs 0.8 GB and about 15 s without "
                "a GPU; without a smaller style image (compression: none) the cap is 768")
MAX_SIZE_FULL_STYLE = 768
MAX_SIZE_FULL_STYLE_WHY = ("the attention's memory grows with the square of the picture's area when the style "
                           "image is not shrunk: at 768 px a browser needs 1.4 GB and 1.5 minutes, at 1024 px "
                           "about 4 GB, the most TF.js's WASM backend can use (a compression with style_max_size, "
                           "such as the default fast, allows 1024)")


def check_max_size(value: int) -> int:
    if not MIN_SIZE <= value <= MAX_SIZE:
        raise ValueError(f"expected a whole number from {MIN_SIZE} to {MAX_SIZE}: {MAX_SIZE_WHY}")
    return value


def max_size_value(value: str) -> int:
    """A tag's max_size="..." (then checked against the site's compression: max_size_cap)."""
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"expected a whole number from {MIN_SIZE} to {MAX_SIZE}") from None
    return check_max_size(number)


def max_size_cap(compression: str) -> tuple[int, str]:
    """The largest max_size for a compression setting, and why."""
    try:
        shrunk = parse(compression).style_max_size is not None
    except CompressionError:
        shrunk = True  # reported by the plugin's on_config
    return (MAX_SIZE, MAX_SIZE_WHY) if shrunk else (MAX_SIZE_FULL_STYLE, MAX_SIZE_FULL_STYLE_WHY)


def over_the_cap(value: int, compression: str) -> str | None:
    """What is wrong with a max_size under this compression, or None."""
    cap, why = max_size_cap(compression)
    if value > cap:
        return f"expected a whole number from {MIN_SIZE} to {cap} with compression: {compression}: {why}"
    return None


class MaxSize(c.Type):
    def __init__(self, default: int):
        super().__init__(int, default=default)

    def run_validation(self, value):
        try:
            return check_max_size(super().run_validation(value))
        except ValueError as error:
            raise c.ValidationError(str(error)) from None

    def post_validation(self, config, key_name):
        problem = over_the_cap(config[key_name], config["compression"])
        if problem is not None:
            raise c.ValidationError(problem)


class Backends(c.ListOfItems):
    """Auto's order of backends: at least one (an empty list would leave the demo nothing to start)."""

    def __init__(self):
        super().__init__(c.Choice(BACKENDS), default=list(BACKENDS))

    def run_validation(self, value):
        value = super().run_validation(value)
        if not value:
            raise c.ValidationError(f"expected at least one of {', '.join(BACKENDS)} (an empty list leaves the "
                                    f"demo no backend to run on; leave the option out for all of them)")
        return value


class ResultsSize(c.Type):
    """The longest side of the sanet_results pictures: a whole number of at least MIN_SIZE."""

    def __init__(self, default: int):
        super().__init__(int, default=default)

    def run_validation(self, value):
        # bool is an int to Python: `results_size: true` must not pass as 1.
        if isinstance(value, bool) or not isinstance(value, int) or value < MIN_SIZE:
            raise c.ValidationError(f"expected a whole number of at least {MIN_SIZE} (the longest side of the "
                                    f"sanet_results pictures, in px), got {value!r}")
        return value


class PresetsConfig(base.Config):
    # Images offered in the demo's pickers: paths inside docs_dir. Empty: the built-in presets.
    content = c.ListOfItems(c.Type(str), default=[])
    style = c.ListOfItems(c.Type(str), default=[])


class SANetConfig(base.Config):
    enabled = c.Type(bool, default=True)
    # "default" (VGG16 encoder, the weights in model_assets/; the wheel carries it converted) or a folder
    # with weights.npz or the original checkpoints (these need the `build` extra).
    model = c.Type(str, default="default")
    cache_dir = c.Type(str, default=".cache/plugin/sanet")
    # Longest side used for stylization; readers can pick a smaller one in the demo.
    max_size = MaxSize(default=512)
    quantization = c.Choice(QUANTIZATIONS, default="float16")
    # Compression without retraining: a preset (none, light, fast) and/or key=value items,
    # see mkdocs_sanet/compression.py.
    compression = c.Type(str, default=DEFAULT_COMPRESSION)
    presets = c.SubConfig(PresetsConfig)
    # Where the npm packages @tensorflow/tfjs* and katex were installed (npm ci), relative to mkdocs.yml.
    # Unset (""): the package's own copy (mkdocs_sanet/vendor/, made from package-lock.json).
    runtime_dir = c.Type(str, default="")
    # Tried in this order in the reader's browser (Auto): the first that starts, is not
    # software-rendered or 16-bit, and whose first run works is used; the reader can override it.
    backends = Backends()
    # A BibTeX file for <% cite key %>, relative to mkdocs.yml.
    bibliography = c.Optional(c.Type(str))
    # Longest side of the pictures that <% sanet_results %> computes at build time.
    results_size = ResultsSize(default=256)
    # WASM on several threads: sanet-sw.js at the site's root, a service worker that makes the pages
    # with a demo cross-origin isolated (needs HTTPS or localhost). Off: no worker, one thread.
    threads = c.Type(bool, default=True)
