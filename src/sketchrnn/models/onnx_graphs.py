"""The ONNX graphs of a portable model (``docs/portable-models.md``), built from a PyTorch
model for :mod:`sketchrnn.models.onnx_export`.

Traced with PyTorch's ``torch.export``-based ONNX exporter (``torch.onnx.export(...,
dynamo=True)``, which needs ``onnxscript``), opset :data:`OPSET`: the TorchScript-based one is
deprecated since PyTorch 2.9 and cannot export the LayerNorm and HyperLSTM cells (their
``layer_norm`` takes its shape from a tensor size, which its tracing records as a value); this
one exports all three cells with dynamic ``batch`` and ``time`` dimensions, and the stroke
encoder as an ONNX ``LSTM``.

What each graph runs is the model's own code, in eval mode, with the cells' plain PyTorch loops
(:func:`sketchrnn.nn.cells.set_loop_compiler` ``"python"``: the fused C++ kernels cannot be
exported): ``encode`` is the model's encoder, ``init`` its ``initial_state``, ``step`` one row
of ``read_prefix`` (the decoder's cell over a sequence of one) and the decoder's output layer
through :func:`sketchrnn.nn.mixture.mixture_params`. ``read`` is not traced: it is an ONNX
``Scan`` whose body is the ``step`` graph itself (its state part), so reading a prefix in one
call gives the state of as many ``step`` calls, for every cell.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from sketchrnn.models.portable_format import TensorSpec, graph_signatures
from sketchrnn.models.sketch_embed_net import SketchEmbedNet
from sketchrnn.models.sketch_rnn import SketchRNN
from sketchrnn.nn import cells
from sketchrnn.nn.mixture import mixture_params

__all__ = ["OPSET", "Drawer", "trace_graphs", "read_graph", "store_float16"]

#: The ONNX opset of every graph (onnxruntime >= 1.17, onnxruntime-web included, reads it).
OPSET = 20
#: The models that draw strokes: what a portable model holds.
Drawer = SketchRNN | SketchEmbedNet


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

    def __init__(self, model: Drawer):
        super().__init__()
        self.model = model

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        (z,) = inputs
        return tuple(self.model.initial_state(z, z.shape[0]))


class _Step(nn.Module):
    """``step``: previous point, state (and z, label) -> the mixture and the new state."""

    def __init__(self, model: Drawer, n_state: int, has_z: bool, has_label: bool):
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


def trace_graphs(model: Drawer, fields: dict[str, Any], with_read: bool) -> dict[str, Any]:
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
        protos["read"] = read_graph(protos["step"], state_names)
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


def read_graph(step: Any, state_names: list[str]) -> Any:
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


def store_float16(proto: Any) -> None:
    """Store the float32 weights (initializers of two or more values: scalars are constants
    of the maths, left exact) as float16, each read back to float32 by a ``Cast``: half the
    bytes, the same float32 arithmetic. ValueError for a weight beyond float16's range."""
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
            raise ValueError(f"weight {init.name} exceeds float16's range: export without float16")
        half = numpy_helper.from_array(values.astype(np.float16), init.name + "_float16")
        kept.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=onnx.TensorProto.FLOAT))
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
