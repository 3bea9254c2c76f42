"""The plugin's options (mkdocs.yml: plugins: - sanet: ...)."""

from __future__ import annotations

from mkdocs.config import base
from mkdocs.config import config_options as c

from .compression import DEFAULT as DEFAULT_COMPRESSION

BACKENDS = ("webgpu", "webgl", "wasm", "cpu")


class PresetsConfig(base.Config):
    # Images offered in the demo's pickers: paths inside docs_dir. Empty: the built-in presets.
    content = c.ListOfItems(c.Type(str), default=[])
    style = c.ListOfItems(c.Type(str), default=[])


class SANetConfig(base.Config):
    enabled = c.Type(bool, default=True)
    # "default" (VGG16 encoder, the weights in model_assets/) or a folder with weights.npz.
    model = c.Type(str, default="default")
    cache_dir = c.Type(str, default=".cache/plugin/sanet")
    # Longest side used for stylization; readers can pick a smaller one in the demo.
    max_size = c.Type(int, default=512)
    quantization = c.Choice(("float16", "uint16", "uint8", "none"), default="float16")
    # Compression without retraining: a preset (none, light, fast) and/or key=value items,
    # see mkdocs_sanet/compression.py.
    compression = c.Type(str, default=DEFAULT_COMPRESSION)
    presets = c.SubConfig(PresetsConfig)
    # Where the npm packages @tensorflow/tfjs* were installed (npm ci), relative to mkdocs.yml.
    runtime_dir = c.Type(str, default="node_modules")
    # Tried in this order in the reader's browser; the first that starts is used.
    backends = c.ListOfItems(c.Choice(BACKENDS), default=list(BACKENDS))
    # A BibTeX file for <% cite key %>, relative to mkdocs.yml.
    bibliography = c.Optional(c.Type(str))
    # Longest side of the pictures that <% sanet_results %> computes at build time.
    results_size = c.Type(int, default=256)
