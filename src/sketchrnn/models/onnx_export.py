"""Export a drawing model as a portable model: ONNX graphs and a manifest
(``docs/portable-models.md``; the graphs are built by :mod:`sketchrnn.models.onnx_graphs`, the
folder is read back by :mod:`sketchrnn.models.portable`).

Nothing is half-written: the folder is made beside ``OUT`` under a temporary name, checked
(every graph loaded by onnxruntime and run beside the PyTorch model, on other batch and time
sizes than the ones traced) and renamed at the end.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sketchrnn.io.files import SketchFileError, replace_folder, write_error
from sketchrnn.io.raster import image_padding
from sketchrnn.models.interface import SketchModel
from sketchrnn.models.onnx_graphs import OPSET, Drawer, store_float16, trace_graphs
from sketchrnn.models.portable import PortableModel
from sketchrnn.models.portable_format import (
    FORMAT_VERSION,
    MANIFEST_FILE,
    STATE_NAMES,
    GraphSpec,
    Manifest,
    file_digest,
    graph_signatures,
    require_onnx,
)
from sketchrnn.models.sketch_embed_net import SketchEmbedNet
from sketchrnn.models.sketch_rnn import SketchRNN
from sketchrnn.models.units import check_scale_factor

__all__ = [
    "PARITY_TOLERANCE",
    "FLOAT16_TOLERANCE",
    "ExportError",
    "ExportResult",
    "export_portable",
    "export_problem",
]

#: The largest difference between onnxruntime and PyTorch an export accepts (relative where a
#: value is above 1), and with ``float16`` storage, whose rounding of the weights alone moves
#: the outputs by up to 7e-3 (measured: docs/portable-models.md). A graph that computes
#: something else is off by far more.
PARITY_TOLERANCE = 1e-5
FLOAT16_TOLERANCE = 3e-2
_LINE_WIDTH = 1.5  # datasets.render_images' default: the training images' line width


class ExportError(SketchFileError):
    """A model that cannot be exported as asked; the message names the output and why."""


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_portable` wrote: the manifest, each file's size in bytes, the
    largest difference measured between onnxruntime and the torch model (relative above 1),
    and the seconds it took."""

    path: Path
    manifest: Manifest
    sizes: dict[str, int]
    max_difference: float
    seconds: float

    @property
    def total_bytes(self) -> int:
        return sum(self.sizes.values())


def export_problem(model: Any) -> str | None:
    """Why ``model`` cannot be exported as a portable model, or ``None`` when it can."""
    if isinstance(model, SketchRNN | SketchEmbedNet):
        return None
    return (
        f"a {type(model).__name__} cannot be exported: the portable format holds the models "
        "that draw strokes (SketchRNN and SketchEmbedNet)"
    )


def export_portable(
    model: SketchModel,
    out: str | os.PathLike,
    *,
    name: str | None = None,
    scale_factor: float | None = None,
    float16: bool = False,
    with_read: bool = True,
    overwrite: bool = False,
    tolerance: float | None = None,
) -> ExportResult:
    """Write ``model`` (a :class:`SketchRNN` or :class:`SketchEmbedNet`) as the portable model
    folder ``out``: ``encode.onnx``, ``init.onnx``, ``step.onnx`` (and ``read.onnx`` with
    ``with_read``), as the model has them, and ``manifest.json``.

    ``scale_factor`` overrides the model's own (one of them is needed, within
    :data:`SCALE_FACTOR_RANGE`); ``name`` defaults to the model's one class, else ``"model"``.
    ``float16`` stores the weights as float16 (half the bytes; the graphs still compute in
    float32). ``overwrite`` replaces an existing portable model folder (never any other file
    or folder). Before the folder gets its name every graph is loaded by onnxruntime and run
    beside the torch model; a difference above ``tolerance`` (relative above 1; default
    :data:`PARITY_TOLERANCE`, :data:`FLOAT16_TOLERANCE` with ``float16``) refuses the
    export. Raises :class:`ExportError` (nothing written) for a model that cannot be
    exported or an ``out`` that cannot be written.
    """
    start = time.perf_counter()
    out = Path(out)
    problem = export_problem(model)
    if problem or not isinstance(model, SketchRNN | SketchEmbedNet):
        raise ExportError(out, problem or "not a drawing model")
    scale = model.scale_factor if scale_factor is None else scale_factor
    if scale is None:
        raise ExportError(
            out, "the model has no scale_factor, so its pixels are unknown: pass one "
            "(--scale-factor)"
        )  # fmt: skip
    try:
        scale = check_scale_factor(scale)
    except ValueError as e:
        raise ExportError(out, str(e)) from None
    _check_out(out, overwrite)
    require_onnx("onnx", "onnxscript", "onnxruntime")
    try:  # the folder that becomes OUT, made first: an OUT that cannot be written fails fast
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent))
    except OSError as e:
        raise write_error(out, e) from e
    try:
        model = _portable_copy(model)
        manifest_fields = _describe(model, name, scale, float16)
        try:
            graphs = trace_graphs(model, manifest_fields, with_read)
        except Exception as e:  # the exporter's own errors run to pages: the first line
            first = (str(e).strip().splitlines() or [""])[0][:300]
            raise ExportError(out, f"the ONNX exporter failed ({type(e).__name__}: {first})") from e
        if float16:
            try:
                for proto in graphs.values():
                    store_float16(proto)
            except ValueError as e:
                raise ExportError(out, str(e)) from None
        specs, sizes = {}, {}
        signatures = graph_signatures(
            manifest_fields["kind"], manifest_fields["state"], manifest_fields["num_mixtures"],
            manifest_fields["latent_size"], manifest_fields["num_classes"],
            manifest_fields["image"], with_read,
        )  # fmt: skip
        for graph_name, proto in graphs.items():
            data = proto.SerializeToString()
            file = f"{graph_name}.onnx"
            (tmp / file).write_bytes(data)
            inputs, outputs = signatures[graph_name]
            specs[graph_name] = GraphSpec(file, len(data), file_digest(data), inputs, outputs)
            sizes[file] = len(data)
        manifest = Manifest(**manifest_fields, graphs=specs, extra={"opset": OPSET})
        text = _manifest_text(manifest)
        (tmp / MANIFEST_FILE).write_text(text, encoding="utf-8")
        sizes[MANIFEST_FILE] = len(text.encode("utf-8"))
        reader = PortableModel(tmp)  # every check a runtime makes, before the folder is named
        difference = measure_difference(model, reader)
        if tolerance is None:
            tolerance = FLOAT16_TOLERANCE if float16 else PARITY_TOLERANCE
        if not difference <= tolerance:  # NaN too
            raise ExportError(
                out, f"onnxruntime and PyTorch differ by {difference:.3g} (more than "
                f"{tolerance:g}): not written"
            )  # fmt: skip
        _move_into_place(tmp, out, overwrite)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError) and not isinstance(e, SketchFileError):
            raise write_error(out, e) from e
        raise
    return ExportResult(out, manifest, sizes, difference, time.perf_counter() - start)


# ----------------------------------------------------------------------------- the folder


def _check_out(out: Path, overwrite: bool) -> None:
    """``out`` is free, or (with ``overwrite``) a portable model folder to replace."""
    if not out.exists() and not out.is_symlink():
        return
    if not overwrite:
        raise ExportError(out, "exists; name a new folder (or --overwrite a portable model)")
    if out.is_symlink() or not out.is_dir() or not (out / MANIFEST_FILE).is_file():
        raise ExportError(out, "exists and is not a portable model folder: not replaced")


def _move_into_place(tmp: Path, out: Path, overwrite: bool) -> None:
    """Name the finished folder ``out`` (:func:`~sketchrnn.io.files.replace_folder`); a folder
    that appeared at ``out`` while the model was exported is not replaced."""
    try:
        replace_folder(tmp, out, replace=overwrite and out.is_dir())
    except OSError:
        if out.exists():
            raise ExportError(out, "appeared while the model was exported: not replaced") from None
        raise


def _manifest_text(manifest: Manifest) -> str:
    return json.dumps(manifest.to_json(), indent=2) + "\n"


# ----------------------------------------------------------------------------- what it is


def _portable_copy(model: Drawer) -> Drawer:
    """A float32 CPU copy in eval mode (the caller's model is left as it was)."""
    copied = copy.deepcopy(model)
    return copied.to(device="cpu", dtype=torch.float32).eval()


def _describe(model: Drawer, name: str | None, scale: float, float16: bool) -> dict:
    """The manifest's fields but ``graphs``."""
    config: Any = model.config
    cell = str(config.cell)
    state_sizes = model.decoder.cell.state_sizes
    state = tuple(zip(STATE_NAMES[cell], (int(s) for s in state_sizes), strict=True))
    classes = [str(c) for c in model.classes]
    if name is None:
        name = classes[0] if len(classes) == 1 else "model"
    config_dict = config.to_dict()
    config_dict["scale_factor"] = scale
    if isinstance(model, SketchEmbedNet):
        kind, latent, num_classes = "sketchembednet", int(config.z_size), 0
        side = int(config.image_size)
        image: dict[str, Any] | None = {
            "size": side,
            "channels": int(config.in_channels),
            "line_width": _LINE_WIDTH,
            "padding": image_padding(side),
            "levels": 255,
            "ink": 1.0,
            "background": 0.0,
        }
        capabilities = ["encode", "decode", "interpolate", "imitate", "embed"]
    else:
        assert isinstance(model, SketchRNN)
        kind, image = "sketch-rnn", None
        latent = int(config.z_size) if model.has_encoder else 0
        num_classes = model.num_classes
        capabilities = ["sample", "complete"]
        if latent:
            capabilities += ["encode", "decode", "interpolate", "embed"]
    return dict(
        kind=kind,
        name=str(name),
        config=config_dict,
        scale_factor=scale,
        classes=classes,
        max_len=int(config.max_seq_len),
        num_mixtures=int(config.num_mixtures),
        latent_size=latent,
        num_classes=num_classes,
        image=image,
        state=state,
        capabilities=tuple(capabilities),
        dtype="float16" if float16 else "float32",
        format_version=FORMAT_VERSION,
    )


# ----------------------------------------------------------------------------- parity


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    """Largest ``|a - b|``, divided by ``|b|`` where that is above 1."""
    if a.size == 0:
        return 0.0
    return float((np.abs(a - b) / np.maximum(np.abs(b), 1.0)).max())


@torch.no_grad()
def measure_difference(
    model: Drawer, reader: PortableModel, batch: int = 2, steps: int = 12, seed: int = 0
) -> float:
    """The largest difference (relative above 1) between the torch model and the portable
    one over ``steps`` decoder steps of a random batch from its initial state (and the
    encoder's outputs, and ``read`` against ``read_prefix``): every output, every step."""
    m = reader.manifest
    generator = torch.Generator().manual_seed(seed)
    worst = 0.0
    z = label = None
    if m.latent_size > 0:
        z = torch.randn(batch, m.latent_size, generator=generator)
    if m.num_classes > 0:
        label = torch.randint(0, m.num_classes, (batch,), generator=generator)
    if "encode" in m.graphs:
        if m.kind == "sketchembednet":
            assert m.image is not None
            side, channels = int(m.image["size"]), int(m.image["channels"])
            images = torch.rand(batch, channels, side, side, generator=generator)
            assert isinstance(model, SketchEmbedNet)
            expected = model.encode(images)
            got = reader.encode(images.numpy())
        else:
            rows = torch.randn(batch, steps, 5, generator=generator)
            lengths = torch.arange(steps, 0, -max(1, steps // batch))[:batch]
            assert isinstance(model, SketchRNN)
            expected = model.encoder(rows, lengths)
            got = reader.encode(rows.numpy(), lengths.numpy())
        worst = max(worst, *(_relative(g, e.numpy()) for g, e in zip(got, expected, strict=True)))
    state = model.initial_state(z, batch)
    np_state = reader.initial_state(None if z is None else z.numpy(), batch)
    for name, tensor in zip(reader.state_names, state, strict=True):
        worst = max(worst, _relative(np_state[name], tensor.numpy()))
    np_z = None if z is None else z.numpy()
    np_label = None if label is None else label.numpy()
    xs = torch.randn(batch, steps, 5, generator=generator)
    start = np_state
    for t in range(steps):
        mixture, state = model.decode_step(xs[:, t], state, z=z, labels=label)
        np_mixture, np_state = reader.step(xs[:, t].numpy(), np_state, np_z, np_label)
        for got_part, part in zip(np_mixture, mixture, strict=True):
            worst = max(worst, _relative(got_part, part.numpy()))
        for name, tensor in zip(reader.state_names, state, strict=True):
            worst = max(worst, _relative(np_state[name], tensor.numpy()))
    if reader.has_graph("read"):
        read = reader.read(xs.numpy(), start, np_z, np_label)
        for name, tensor in zip(reader.state_names, state, strict=True):
            worst = max(worst, _relative(read[name], tensor.numpy()))
    return worst
