"""TensorFlow -> TF.js: each part of the model becomes a graph model with quantized weights.

Runs in its own process (`python -m mkdocs_sanet.export`), so that MkDocs never imports
TensorFlow and its memory is returned as soon as the model is built.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from . import architecture, compression as compression_mod, weights as weights_mod  # noqa: E402
from .cache import MANIFEST, _version, model_key  # noqa: E402

SIGNATURES = ("encode", "transform", "decode")
# Which architecture part's weights each graph holds.
PART_OF = {"encode": "encoder", "transform": "transform", "decode": "decoder"}
QUANTIZATIONS = architecture.QUANTIZATIONS
# TF.js kernels that take a fused bias accept only rank 1 (see check_graph).
_FUSED_OPS = ("_FusedConv2D", "FusedDepthwiseConv2dNative", "_FusedMatMul")


class ExportError(RuntimeError):
    pass


def stored_weights(graph_dir: Path) -> tuple[dict, dict]:
    """From a graph model's model.json: weight name -> shape, and the graph nodes by name."""
    model = json.loads((graph_dir / "model.json").read_text())
    shapes: dict[str, list[int]] = {}
    for group in model["weightsManifest"]:
        for entry in group["weights"]:
            if entry["name"] in shapes:
                raise ExportError(f"{graph_dir}/model.json stores weight {entry['name']} twice")
            shapes[entry["name"]] = entry["shape"]
    nodes = {node["name"]: node for node in model["modelTopology"]["node"]}
    return shapes, nodes


def check_graph(graph_dir: Path, expected_params: int) -> dict:
    """Refuse what TF.js would fail on or waste bytes on: a weight stored twice, more
    parameters than the architecture has, a fused op with a bias of rank above 1."""
    shapes, nodes = stored_weights(graph_dir)
    count = sum(int(_product(shape)) for shape in shapes.values())
    # A few small constants (the VGG mean, shape tensors) come on top of the convs.
    if count > expected_params + 4096:
        raise ExportError(
            f"{graph_dir}/model.json holds {count} parameters, the architecture has {expected_params}: "
            "a weight is stored more than once")
    for node in nodes.values():
        if node["op"] in _FUSED_OPS:
            for name in node.get("input", [])[2:]:
                shape = shapes.get(name.split(":")[0])
                if shape is not None and len(shape) > 1:
                    raise ExportError(
                        f"{graph_dir}/model.json: {node['op']} {node['name']} has a rank-{len(shape)} "
                        "bias, which TF.js refuses at run time")
    files = [graph_dir / "model.json"] + [graph_dir / p for g in json.loads(
        (graph_dir / "model.json").read_text())["weightsManifest"] for p in g["paths"]]
    return {"parameters": count, "bytes": sum(f.stat().st_size for f in files)}


def name_outputs(graph_dir: Path, function) -> None:
    """List the graph's outputs in model.json under their names, sorted. The converter keys an
    output by its tensor's name where two share a shape (relu4_1 and relu5_1, or a skip model's
    four encoder taps), in no set order, and GraphModel.predict pairs the outputs, in the order
    model.json lists them, with the sorted names: the exported function's own outputs say which is which."""
    path = graph_dir / "model.json"
    model = json.loads(path.read_text())
    by_tensor = {entry["name"]: entry for entry in model["signature"]["outputs"].values()}
    # The function's outputs are its structured outputs flattened: in the order of their sorted names.
    tensors = dict(zip(sorted(function.structured_outputs), (t.name for t in function.outputs)))
    if sorted(by_tensor) != sorted(tensors.values()):
        raise ExportError(f"{graph_dir}/model.json lists the outputs {sorted(by_tensor)}, the function has "
                          f"{sorted(tensors.values())}")
    model["signature"]["outputs"] = {key: by_tensor[tensor] for key, tensor in tensors.items()}
    path.write_text(json.dumps(model))


def _product(shape) -> int:
    result = 1
    for dim in shape:
        result *= dim
    return result


def quantization_map(quantization: str, uint8_convs: list[str]) -> dict | None:
    """The converter's map: the uint8 convs by their name scope (see SANet.conv), the rest as asked."""
    result: dict = {"uint8": [f"*/{name}/*" for name in uint8_convs]} if uint8_convs else {}
    if quantization != "none":
        if quantization == "uint8":
            return {"uint8": True}
        result[quantization] = True  # everything the patterns do not match
    return result or None


def export(source: weights_mod.ModelSource, out_dir: Path, quantization: str = "float16", log=print,
           compression: str = "none", compressed_cache: Path | None = None) -> dict:
    """Build the TF model from the source's weights (compressed as the setting says) and write
    the three graphs and a manifest."""
    import tensorflow as tf
    from tensorflowjs.converters import tf_saved_model_conversion_v2 as converter

    from .model import SANet

    started = time.time()
    setting = compression_mod.parse(compression)
    model = SANet(compression_mod.compressed_weights(source, setting, log, compressed_cache), source.encoder)
    # The model's shallow skips, if its weights have them: in its widths, stored as the setting says.
    info = compression_mod.report(setting, source.encoder, skips=architecture.model_skips(source.widths()))
    expected = architecture.parameter_counts(source.encoder, info["channels"])
    manifest = {
        "name": source.name,
        "encoder": source.encoder,
        "trained": source.trained,
        "quantization": quantization,
        "graphs": {},
        "tensorflow": tf.__version__,
        "tensorflowjs": _version("tensorflowjs"),
        "size_multiple": architecture.SIZE_MULTIPLE,
        "min_size": architecture.MIN_SIZE,
        # Read by sanet.js and pipeline.py: the style image is shrunk to this (longest side).
        "style_max_size": setting.style_max_size,
        # Read by sanet.js and pipeline.py: the share of the painting's colours (matchColors).
        "color_match": source.color_match,
        "compression": {key: info[key] for key in ("setting", "channels", "uint8", "parameters", "gflops")},
    }
    with tempfile.TemporaryDirectory() as saved:
        tf.saved_model.save(model, saved, signatures={name: getattr(model, name) for name in SIGNATURES})
        loaded = tf.saved_model.load(saved)
        for name in SIGNATURES:
            graph_dir = out_dir / name
            converter.convert_tf_saved_model(
                saved, str(graph_dir), signature_def=name,
                quantization_dtype_map=quantization_map(quantization, info["uint8"]),
                weight_shard_size_bytes=4 * 1024 * 1024, use_structured_outputs_names=True)
            name_outputs(graph_dir, loaded.signatures[name])
            manifest["graphs"][name] = {"part": PART_OF[name], **check_graph(graph_dir, expected[PART_OF[name]])}
            log(f"converted {name}: {manifest['graphs'][name]['parameters']:,} parameters, "
                f"{manifest['graphs'][name]['bytes'] / 1e6:.1f} MB")
    manifest["parameters"] = sum(g["parameters"] for g in manifest["graphs"].values())
    manifest["bytes"] = sum(g["bytes"] for g in manifest["graphs"].values())
    manifest["build_seconds"] = round(time.time() - started, 1)
    # Written last: its presence marks a complete entry.
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def main(argv=None) -> int:
    """The child process of builder.ModelBuild: it builds the source it is handed, and refuses
    when those weights no longer give the key it was asked for (they changed meanwhile)."""
    parser = argparse.ArgumentParser(prog="python -m mkdocs_sanet.export")
    parser.add_argument("--source", required=True, help="the resolved model source, as JSON")
    parser.add_argument("--key", required=True, help="the cache key of the model to build")
    parser.add_argument("--quantization", default="float16", choices=QUANTIZATIONS)
    parser.add_argument("--compression", default="none")
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument("--compressed-cache", type=Path, help="where compressed weights are kept between builds")
    args = parser.parse_args(argv)
    try:
        source = weights_mod.ModelSource.from_json(args.source)
        if model_key(source, args.quantization, args.compression) != args.key:
            raise ExportError(f"the weights of '{source.name}' ({', '.join(map(str, source.files))}) "
                              "changed while the model was being built: build again")
        export(source, args.output, args.quantization, log=lambda m: print(m, file=sys.stderr, flush=True),
               compression=args.compression, compressed_cache=args.compressed_cache)
    except (weights_mod.WeightsError, ExportError, compression_mod.CompressionError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
