"""Export a drawing model as a portable model: ONNX graphs and a manifest
(``docs/portable-models.md``; read back by :mod:`sketchrnn.models.portable`).

The graphs are traced with PyTorch's ``torch.export``-based ONNX exporter
(``torch.onnx.export(..., dynamo=True)``, which needs ``onnxscript``): the TorchScript-based
one is deprecated since PyTorch 2.9, and this one gives dynamic ``batch`` and ``time``
dimensions, an ONNX ``LSTM`` for the stroke encoder and ``opset`` :data:`OPSET`, which
onnxruntime (Python, Node and web) reads.

What each graph runs is the model's own code, in eval mode, with the cells' plain PyTorch loops
(:func:`sketchrnn.nn.cells.set_loop_compiler` ``"python"``: the fused C++ kernels cannot be
exported): ``encode`` is the model's encoder, ``init`` its
:meth:`~sketchrnn.models.interface.SketchModel.initial_state`, ``step`` one row of
:meth:`~sketchrnn.models.interface.SketchModel.read_prefix` (the decoder's cell over a
sequence of one) and the decoder's output layer through
:func:`sketchrnn.nn.mixture.mixture_params`. ``read`` is not traced: it is an ONNX ``Scan``
whose body is the ``step`` graph itself (its state part), so reading a prefix in one call gives
exactly the state of as many ``step`` calls, for every cell.

Nothing is half-written: the folder is made beside ``OUT`` under a temporary name, checked
(every graph loaded by onnxruntime and compared with the torch model) and renamed at the end.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import math
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from sketchrnn.io.files import SketchFileError, write_error
from sketchrnn.models import portable
from sketchrnn.models.interface import SketchModel
from sketchrnn.models.portable import (
    FORMAT_VERSION,
    MANIFEST_FILE,
    STATE_NAMES,
    GraphSpec,
    Manifest,
    PortableModel,
    TensorSpec,
    graph_signatures,
    require_onnx,
)
from sketchrnn.models.sketch_embed_net import SketchEmbedNet
from sketchrnn.models.sketch_rnn import SketchRNN
from sketchrnn.models.units import check_scale_factor
from sketchrnn.nn import cells
from sketchrnn.nn.mixture import mixture_params
from sketchrnn.raster import image_padding

__all__ = [
    "OPSET",
    "PARITY_TOLERANCE",
    "FLOAT16_TOLERANCE",
    "ExportError",
    "ExportResult",
    "export_portable",
    "export_problem",
]

#: The ONNX opset of every graph (onnxruntime >= 1.17, onnxruntime-web included, reads it).
OPSET = 20
#: The largest difference between onnxruntime and PyTorch an export accepts (relative where a
#: value is above 1), and with ``float16`` storage, whose rounding of the weights alone moves
#: the outputs by about 1e-3 (measured: docs/portable-models.md). A graph that computes
#: something else is off by far more.
PARITY_TOLERANCE = 1e-5
FLOAT16_TOLERANCE = 3e-2
_LINE_WIDTH = 1.5  # image_data.render_images' default: the training images' line width


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
            graphs = _export_graphs(model, manifest_fields, with_read)
        except Exception as e:  # the exporter's own errors run to pages: the first line
            first = (str(e).strip().splitlines() or [""])[0][:300]
            raise ExportError(out, f"the ONNX exporter failed ({type(e).__name__}: {first})") from e
        if float16:
            for proto in graphs.values():
                _store_float16(proto, out)
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
            specs[graph_name] = GraphSpec(
                file, len(data), portable.file_digest(data), inputs, outputs
            )
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
    """Rename the finished folder ``tmp`` to ``out`` (the old portable model moved aside
    first and removed only once the new one has its name)."""
    old = None
    if overwrite and out.is_dir():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
        os.replace(out, old / out.name)
    try:
        os.rename(tmp, out)
    except OSError:
        if old is not None:
            os.replace(old / out.name, out)
            shutil.rmtree(old, ignore_errors=True)
        if out.exists():
            raise ExportError(out, "appeared while the model was exported: not replaced") from None
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _manifest_text(manifest: Manifest) -> str:
    import json

    return json.dumps(manifest.to_json(), indent=2) + "\n"


# ----------------------------------------------------------------------------- what it is


Drawer = SketchRNN | SketchEmbedNet


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


# ----------------------------------------------------------------------------- the graphs


@contextlib.contextmanager
def _python_loops() -> Iterator[None]:
    """The cells' plain PyTorch loops while the graphs are traced (the fused kernels cannot
    be exported); the previous choice is restored after."""
    previous = getattr(cells, "_loop_compiler", "fused")
    cells.set_loop_compiler("python")
    try:
        yield
    finally:
        cells.set_loop_compiler(previous)


class _Encode(nn.Module):
    """``encode``: the model's encoder (strokes and lengths, or images) -> mu, sigma_hat."""

    def __init__(self, model: Drawer):
        super().__init__()
        self.encoder = model.encoder

    def forward(self, *inputs: Tensor) -> tuple[Tensor, Tensor]:
        mu, sigma_hat = self.encoder(*inputs)
        return mu, sigma_hat


class _Init(nn.Module):
    """``init``: z -> the decoder's initial state."""

    def __init__(self, model: SketchModel):
        super().__init__()
        self.model = model

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        (z,) = inputs
        return tuple(self.model.initial_state(z, z.shape[0]))


class _Step(nn.Module):
    """``step``: previous point, state (and z, label) -> the mixture and the new state."""

    def __init__(self, model: SketchModel, n_state: int, has_z: bool, has_label: bool):
        super().__init__()
        self.model = model
        self.n_state, self.has_z, self.has_label = n_state, has_z, has_label

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        x, rest = inputs[0], inputs[1:]
        state = tuple(rest[: self.n_state])
        extra = list(rest[self.n_state :])
        z = extra.pop(0) if self.has_z else None
        label = extra.pop(0) if self.has_label else None
        # One row of read_prefix is the cell over a sequence of one: the model's own decoder
        # code, whatever its step() does. State tuples start with h (every cell's is (h, ...)).
        new_state = self.model.read_prefix(x.unsqueeze(1), state, z=z, labels=label)
        decoder: Any = self.model.decoder
        mixture = mixture_params(decoder.output(new_state[0]), decoder.num_mixtures)
        return (*mixture, *new_state)


def _example(spec: TensorSpec, generator: torch.Generator, batch: int, steps: int) -> Tensor:
    """An example input of ``spec``'s shape (batch 3 and time 7: neither may be 0 or 1, or
    the exporter specialises the dimension)."""
    shape = [batch if d == "batch" else steps if d == "time" else int(d) for d in spec.shape]
    if spec.dtype == "int64":
        if spec.name == "lengths":
            return torch.full(shape, steps, dtype=torch.int64)
        return torch.zeros(shape, dtype=torch.int64)
    return torch.rand(shape, generator=generator) * 0.5


def _export_graphs(model: Drawer, fields: dict, with_read: bool) -> dict[str, Any]:
    """ONNX ``ModelProto`` of each graph, by name, their inputs and outputs named and shaped
    as the contract says."""
    signatures = graph_signatures(
        fields["kind"], fields["state"], fields["num_mixtures"], fields["latent_size"],
        fields["num_classes"], fields["image"], with_read=False,
    )  # fmt: skip
    modules: dict[str, nn.Module] = {}
    if "encode" in signatures:
        modules["encode"] = _Encode(model)
    if "init" in signatures:
        modules["init"] = _Init(model)
    modules["step"] = _Step(
        model, len(fields["state"]), fields["latent_size"] > 0, fields["num_classes"] > 0
    )
    generator = torch.Generator().manual_seed(0)
    protos: dict[str, Any] = {}
    with _python_loops(), _quiet():
        for graph_name, module in modules.items():
            inputs, outputs = signatures[graph_name]
            args = tuple(_example(spec, generator, batch=3, steps=7) for spec in inputs)
            # eval(): the exporter restores the wrapper's mode afterwards, down to the model.
            protos[graph_name] = _trace(module.eval(), args, inputs, outputs)
    if with_read:
        state_names = [n for n, _ in fields["state"]]
        protos["read"] = _read_graph(protos["step"], state_names)
    return protos


def _trace(module: nn.Module, args: tuple[Tensor, ...], inputs, outputs) -> Any:
    """One graph through ``torch.onnx.export(dynamo=True)``, its signature set exactly."""
    dims = {"batch": torch.export.Dim("batch"), "time": torch.export.Dim("time")}
    dynamic = tuple(
        {i: dims[d] for i, d in enumerate(spec.shape) if isinstance(d, str)} for spec in inputs
    )
    # The exporter traces an LSTM through a while-loop decomposition that it registers for the
    # duration of the export only, but aten.lstm's dispatch cache keeps whichever kernel ran
    # last: without this the second LSTM exported in a process is traced by the C++ kernel,
    # its time axis silently frozen at the example's length.
    cache = getattr(torch.ops.aten.lstm.input, "_dispatch_cache", None)
    if cache is not None:
        cache.clear()
    program = torch.onnx.export(
        module,
        args,
        dynamo=True,
        opset_version=OPSET,
        input_names=[s.name for s in inputs],
        output_names=[s.name for s in outputs],
        dynamic_shapes=(dynamic,),  # the wrappers take *inputs: one tuple
        verbose=False,
    )
    if program is None:  # only when an output file is given
        raise RuntimeError("torch.onnx.export returned no program")
    proto = program.model_proto
    _set_signature(proto.graph, inputs, outputs)
    _strip(proto.graph)
    return proto


def _strip(graph: Any) -> None:
    """Drop what the exporter records for debugging: each node's source lines and module path
    (three quarters of a small graph's bytes, and this machine's file paths) and the shapes of
    intermediate values (some name the example's sizes; runtimes infer them)."""
    del graph.value_info[:]
    graph.doc_string = ""
    for node in graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
        for attribute in node.attribute:
            if attribute.HasField("g"):
                _strip(attribute.g)


def _set_signature(graph: Any, inputs, outputs) -> None:
    """Name the dimensions of the graph's inputs and outputs as the contract does."""
    for values, specs in ((graph.input, inputs), (graph.output, outputs)):
        if [v.name for v in values] != [s.name for s in specs]:
            raise RuntimeError(
                f"exported graph has {[v.name for v in values]}, expected {[s.name for s in specs]}"
            )
        for value, spec in zip(values, specs, strict=True):
            shape = value.type.tensor_type.shape
            frozen = [
                str(d) for d, dim in zip(spec.shape, shape.dim, strict=False)
                if isinstance(d, str) and dim.HasField("dim_value")
            ]  # fmt: skip
            if frozen:
                raise RuntimeError(
                    f"the exporter fixed the {', '.join(frozen)} size of {spec.name}: the graph "
                    "would draw at the example's size only"
                )
            del shape.dim[:]
            for d in spec.shape:
                dim = shape.dim.add()
                if isinstance(d, str):
                    dim.dim_param = d
                else:
                    dim.dim_value = int(d)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporter's progress lines and warnings (it prints to stdout) kept off the output."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch._dynamo", "torch.export")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _read_graph(step: Any, state_names: list[str]) -> Any:
    """``read``: an ONNX ``Scan`` over ``xs``'s time axis whose body is the state part of the
    ``step`` graph (the same nodes, so the same numbers as as many ``step`` calls). The
    weights move to the outer graph (the body reads them from there), z and label too."""
    import onnx
    from onnx import helper

    graph = step.graph
    wanted = ["next_" + n for n in state_names]
    # The nodes the new state depends on (the mixture head is not needed to read).
    needed, keep = set(wanted), []
    for node in reversed(graph.node):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(i for i in node.input if i)
    keep.reverse()
    outer = {i.name for i in graph.initializer} | {"z", "label"}
    prefix = "read_step_"

    def local(name: str) -> str:
        return name if (not name or name in outer) else prefix + name

    body_nodes = []
    for node in keep:
        copied = onnx.NodeProto()
        copied.CopyFrom(node)
        copied.name = prefix + node.name if node.name else ""
        copied.input[:] = [local(i) for i in node.input]
        copied.output[:] = [local(o) for o in node.output]
        body_nodes.append(copied)
    by_name = {v.name: v for v in graph.input}
    by_output = {v.name: v for v in graph.output}

    def renamed(value: Any, new_name: str) -> Any:
        copied = onnx.ValueInfoProto()
        copied.CopyFrom(value)
        copied.name = new_name
        return copied

    body = helper.make_graph(
        body_nodes,
        "read_step",
        [renamed(by_name[n], local(n)) for n in state_names] + [renamed(by_name["x"], local("x"))],
        [renamed(by_output[n], local(n)) for n in wanted],
    )
    scan = helper.make_node(
        "Scan",
        state_names + ["xs"],
        wanted,
        name="read",
        body=body,
        num_scan_inputs=1,
        scan_input_axes=[1],
    )
    xs = helper.make_tensor_value_info("xs", onnx.TensorProto.FLOAT, ["batch", "time", 5])
    conditioning = [v for v in graph.input if v.name in ("z", "label")]
    outer_graph = helper.make_graph(
        [scan],
        "read",
        [xs] + [by_name[n] for n in state_names] + conditioning,
        [by_output[n] for n in wanted],
        initializer=list(graph.initializer),
    )
    model = helper.make_model(outer_graph, opset_imports=list(step.opset_import))
    model.ir_version = step.ir_version
    model.functions.extend(step.functions)
    return model


def _store_float16(proto: Any, out: Path) -> None:
    """Store the float32 weights (initializers of two or more values: scalars are constants
    of the maths, left exact) as float16, each read back to float32 by a ``Cast``: half the
    bytes, the same float32 arithmetic."""
    import onnx
    from onnx import helper, numpy_helper

    graph = proto.graph
    kept, casts = [], []
    for init in graph.initializer:
        dims = list(init.dims)
        if init.data_type != onnx.TensorProto.FLOAT or math.prod(dims) < 2:
            kept.append(init)
            continue
        values = numpy_helper.to_array(init)
        if np.abs(values).max() > np.finfo(np.float16).max:
            raise ExportError(out, f"weight {init.name} exceeds float16's range: export "
                              "without --float16")  # fmt: skip
        half = numpy_helper.from_array(values.astype(np.float16), init.name + "_float16")
        kept.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=onnx.TensorProto.FLOAT))
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)


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
