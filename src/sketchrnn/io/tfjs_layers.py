"""Reading a TensorFlow.js *layers* model (``model.json`` + weight shards) with numpy alone.

The format (what ``tensorflowjs_converter`` writes for a Keras model) is a JSON file with
``format: "layers-model"``, the Keras ``modelTopology`` (a ``Sequential`` model's layer list:
class name and config each) and a ``weightsManifest``: groups of shard files (``paths``,
relative to the JSON file, read one after the other) and the weights they hold, each
``{name, shape, dtype}``, stored back to back as little-endian values in that order. Keras
layouts are kept: a conv kernel is ``(kh, kw, in, out)``, a dense kernel ``(in, out)``.

Only float32 weights without quantisation are read (what DoodleNet holds); anything else is
refused with a one-line :class:`SketchFileError` naming the file, as are a missing shard, a
shard of the wrong size, a path that leaves the model's folder and a topology that is not a
``Sequential`` layer list. Nothing here imports torch (a reader never does).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sketchrnn.io.files import SketchFileError, read_json_document

__all__ = ["LayersModel", "read_tfjs_layers"]

# Bytes one weight file may hold: DoodleNet's is 2.2 MB; a layers model for this job is small.
_MAX_SHARD_BYTES = 1 << 30


@dataclass(frozen=True, eq=False)  # eq would compare numpy arrays element-wise
class LayersModel:
    """A TF.js layers model as read: ``layers`` (``{"class_name", "config"}`` dicts in order),
    ``input_shape`` (without the batch: ``(28, 28, 1)`` for DoodleNet) and ``weights`` (name
    -> float32 array in its Keras layout, in the manifest's order)."""

    path: Path
    layers: list[dict[str, Any]]
    input_shape: tuple[int, ...]
    weights: dict[str, np.ndarray]


def _layer_list(path: Path, doc: dict) -> list[dict[str, Any]]:
    topology = doc.get("modelTopology")
    if not isinstance(topology, dict):
        raise SketchFileError(path, "not a TF.js layers model: no 'modelTopology' object")
    model = topology.get("model_config", topology)
    if not isinstance(model, dict) or model.get("class_name") != "Sequential":
        found = model.get("class_name") if isinstance(model, dict) else type(model).__name__
        raise SketchFileError(path, f"only Sequential models are read, not {found!r}")
    config = model.get("config")
    layers = config.get("layers") if isinstance(config, dict) else config  # Keras 2.2: a list
    if not isinstance(layers, list) or not layers:
        raise SketchFileError(path, "the Sequential model has no layer list")
    for i, layer in enumerate(layers):
        if not (
            isinstance(layer, dict)
            and isinstance(layer.get("class_name"), str)
            and isinstance(layer.get("config"), dict)
        ):
            raise SketchFileError(path, f"layer {i} is not a {{class_name, config}} object")
    return layers


def _input_shape(path: Path, layers: list[dict[str, Any]]) -> tuple[int, ...]:
    shape = layers[0]["config"].get("batch_input_shape")
    if (
        not isinstance(shape, list)
        or len(shape) < 2
        or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape[1:])
    ):
        raise SketchFileError(path, "the first layer has no batch_input_shape [null, ...sizes]")
    return tuple(shape[1:])


def _shard_path(path: Path, name: Any) -> Path:
    # The manifest names files beside model.json: refuse anything that could leave the folder.
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name[0] == ".":
        raise SketchFileError(path, f"weight file name {name!r} is not a plain file name")
    return path.parent / name


def _weight_specs(path: Path, group: Any, number: int) -> list[tuple[str, tuple[int, ...]]]:
    if not isinstance(group, dict) or not isinstance(group.get("weights"), list):
        raise SketchFileError(path, f"weightsManifest[{number}] has no 'weights' list")
    specs = []
    for spec in group["weights"]:
        name = spec.get("name") if isinstance(spec, dict) else None
        if not isinstance(name, str):
            raise SketchFileError(path, f"weightsManifest[{number}]: a weight without a name")
        if spec.get("dtype", "float32") != "float32" or "quantization" in spec:
            what = "quantised" if "quantization" in spec else repr(spec.get("dtype"))
            raise SketchFileError(path, f"weight {name}: {what} weights are not read (float32)")
        shape = spec.get("shape")
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise SketchFileError(path, f"weight {name}: shape {shape!r} is not a list of sizes")
        specs.append((name, tuple(shape)))
    return specs


def read_tfjs_layers(path: str | os.PathLike) -> LayersModel:
    """Read ``model.json`` of a TF.js layers model and the weight files it names (beside it).

    Raises :class:`SketchFileError` (one line naming the file) for a file that is not such a
    model, weights that are not plain float32, a missing or short weight file, or a weight
    file with bytes left over.
    """
    path = Path(path)
    doc = read_json_document(path)
    if not isinstance(doc, dict) or doc.get("format", "layers-model") != "layers-model":
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise SketchFileError(path, f"not a TF.js layers model (format {found!r})")
    layers = _layer_list(path, doc)
    input_shape = _input_shape(path, layers)
    manifest = doc.get("weightsManifest")
    if not isinstance(manifest, list) or not manifest:
        raise SketchFileError(path, "no 'weightsManifest' list")
    weights: dict[str, np.ndarray] = {}
    for number, group in enumerate(manifest):
        specs = _weight_specs(path, group, number)
        names = group.get("paths")
        if not isinstance(names, list) or not names:
            raise SketchFileError(path, f"weightsManifest[{number}] has no 'paths' list")
        data = bytearray()
        for name in names:
            shard = _shard_path(path, name)
            try:
                if shard.stat().st_size > _MAX_SHARD_BYTES:
                    raise SketchFileError(shard, "weight file over 1 GiB: not a judge's weights")
                data += shard.read_bytes()
            except OSError as e:
                reason = e.strerror or e
                raise SketchFileError(shard, f"cannot read weight file ({reason})") from None
        wanted = sum(4 * math.prod(shape) for _, shape in specs)
        if len(data) != wanted:
            raise SketchFileError(
                path.parent / names[0],
                f"weight file{'s' if len(names) > 1 else ''} hold {len(data):,} bytes, the "
                f"manifest's {len(specs)} float32 weights take {wanted:,}",
            )
        values = np.frombuffer(bytes(data), dtype="<f4")
        start = 0
        for name, shape in specs:
            count = math.prod(shape)
            if name in weights:
                raise SketchFileError(path, f"weight {name} is listed twice")
            weights[name] = values[start : start + count].astype(np.float32).reshape(shape)
            start += count
    for name, array in weights.items():
        if not np.isfinite(array).all():
            raise SketchFileError(path, f"weight {name} holds NaN or infinite values")
    return LayersModel(path=path, layers=layers, input_shape=input_shape, weights=weights)
