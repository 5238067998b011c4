"""Portable models: a folder of ONNX graphs and a ``manifest.json`` that any ONNX runtime can
draw with (the contract, format version 1: ``docs/portable-models.md``). This module holds the
contract's names, reads and checks a folder (:func:`read_manifest`, :class:`PortableModel`) and
runs its graphs with onnxruntime; :mod:`sketchrnn.models.onnx_export` writes one.

Everything a reader refuses is a :class:`PortableModelError` naming the file: another
``format``, a newer ``format_version``, a missing field or one of the wrong type, graph lists
that are not what the model's kind, state, latent and classes call for, a graph file whose size
or SHA-256 differs from the manifest, or a graph whose inputs and outputs differ from its lists.
A model that passes draws exactly as the torch model it came from (to 1e-5, tested).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from sketchrnn.models.pretrained import ModelFileError

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST_FILE",
    "KINDS",
    "GRAPHS",
    "MIXTURE_OUTPUTS",
    "STATE_NAMES",
    "PortableModelError",
    "MissingExtraError",
    "require_onnx",
    "TensorSpec",
    "GraphSpec",
    "Manifest",
    "PortableMixture",
    "graph_signatures",
    "read_manifest",
    "PortableModel",
]

FORMAT = "sketchrnn-portable"
FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
#: ``kind`` of a sketch-rnn model (VAE or decoder-only) and of a SketchEmbedNet.
KINDS = ("sketch-rnn", "sketchembednet")
#: Every graph a folder may hold, by name (its file is ``NAME.onnx``).
GRAPHS = ("encode", "init", "step", "read")
#: The mixture outputs of ``step``, in the order of :class:`sketchrnn.nn.mixture.MixtureParams`.
MIXTURE_OUTPUTS = ("log_pi", "mu_x", "mu_y", "log_sigma_x", "log_sigma_y", "rho", "pen_logits")
#: The decoder state's tensors by cell: the order of the cells' state tuples.
STATE_NAMES = {
    "lstm": ("h", "c"),
    "layernorm": ("h", "c"),
    "hyper": ("h", "c", "hyper_h", "hyper_c"),
}
DTYPES = ("float32", "float16")
_TENSOR_DTYPES = ("float32", "int64")
# onnxruntime's names of the tensor types the graphs use.
_ORT_DTYPES = {"tensor(float)": "float32", "tensor(int64)": "int64"}


class PortableModelError(ModelFileError):
    """A portable model folder that cannot be used: the message names the file (the manifest
    or a graph) and what is wrong with it."""


class MissingExtraError(ImportError):
    """The optional packages of portable models are not installed."""


def require_onnx(*modules: str) -> None:
    """Import ``modules`` (of the ``onnx`` extra) or raise :class:`MissingExtraError` saying
    how to install them."""
    import importlib

    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            raise MissingExtraError(
                f"portable models need {module}: pip install 'sketchrnn[onnx]'"
            ) from None


Dim = int | str


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a graph: ``shape`` holds sizes and the names of the dynamic
    dimensions (``"batch"``, ``"time"``)."""

    name: str
    dtype: str
    shape: tuple[Dim, ...]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}


@dataclass(frozen=True)
class GraphSpec:
    """One graph of the folder: its file, size in bytes, SHA-256 and signature."""

    file: str
    bytes: int
    sha256: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "bytes": self.bytes,
            "sha256": self.sha256,
            "inputs": [t.to_json() for t in self.inputs],
            "outputs": [t.to_json() for t in self.outputs],
        }


@dataclass(frozen=True)
class Manifest:
    """``manifest.json`` as read and checked (fields as in ``docs/portable-models.md``)."""

    kind: str
    name: str
    config: dict[str, Any]
    scale_factor: float
    classes: list[str]
    max_len: int
    num_mixtures: int
    latent_size: int
    num_classes: int
    image: dict[str, Any] | None
    state: tuple[tuple[str, int], ...]
    capabilities: tuple[str, ...]
    dtype: str
    graphs: dict[str, GraphSpec]
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] | None = None

    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.state)

    def to_json(self) -> dict[str, Any]:
        """The manifest as written to ``manifest.json`` (the contract's field order)."""
        out: dict[str, Any] = {
            "format": FORMAT,
            "format_version": self.format_version,
            "kind": self.kind,
            "name": self.name,
            "config": self.config,
            "units": {"scale_factor": self.scale_factor, "classes": list(self.classes)},
            "max_len": self.max_len,
            "num_mixtures": self.num_mixtures,
            "latent_size": self.latent_size,
            "num_classes": self.num_classes,
            "image": self.image,
            "state": [{"name": n, "size": s} for n, s in self.state],
            "capabilities": list(self.capabilities),
            "dtype": self.dtype,
            "graphs": {name: spec.to_json() for name, spec in self.graphs.items()},
        }
        out.update(self.extra or {})
        return out


def graph_signatures(
    kind: str,
    state: tuple[tuple[str, int], ...],
    num_mixtures: int,
    latent_size: int,
    num_classes: int,
    image: dict[str, Any] | None,
    with_read: bool,
) -> dict[str, tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]]:
    """Graph name -> (inputs, outputs) that the contract requires of a model with these
    properties: what the exporter writes and what a reader demands of a manifest."""
    f32, i64 = "float32", "int64"
    states = tuple(TensorSpec(n, f32, ("batch", s)) for n, s in state)
    next_states = tuple(TensorSpec("next_" + n, f32, ("batch", s)) for n, s in state)
    conditioning: tuple[TensorSpec, ...] = ()
    if latent_size > 0:
        conditioning += (TensorSpec("z", f32, ("batch", latent_size)),)
    if num_classes > 0:
        conditioning += (TensorSpec("label", i64, ("batch",)),)
    mixture = tuple(
        TensorSpec(n, f32, ("batch", 3 if n == "pen_logits" else num_mixtures))
        for n in MIXTURE_OUTPUTS
    )
    out: dict[str, tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]] = {}
    latent = (
        TensorSpec("mu", f32, ("batch", latent_size)),
        TensorSpec("sigma_hat", f32, ("batch", latent_size)),
    )
    if kind == "sketchembednet" and image is not None:
        side, channels = int(image["size"]), int(image["channels"])
        out["encode"] = ((TensorSpec("image", f32, ("batch", channels, side, side)),), latent)
    elif latent_size > 0:
        strokes = TensorSpec("strokes", f32, ("batch", "time", 5))
        out["encode"] = ((strokes, TensorSpec("lengths", i64, ("batch",))), latent)
    if latent_size > 0:
        out["init"] = ((TensorSpec("z", f32, ("batch", latent_size)),), next_states_named(state))
    x = TensorSpec("x", f32, ("batch", 5))
    out["step"] = ((x, *states, *conditioning), (*mixture, *next_states))
    if with_read:
        xs = TensorSpec("xs", f32, ("batch", "time", 5))
        out["read"] = ((xs, *states, *conditioning), next_states)
    return out


def next_states_named(state: tuple[tuple[str, int], ...]) -> tuple[TensorSpec, ...]:
    """``init``'s outputs: the state tensors by their own names (``h``, ``c``, ...)."""
    return tuple(TensorSpec(n, "float32", ("batch", s)) for n, s in state)


# ----------------------------------------------------------------------------- reading


class _Fields:
    """Typed access to one JSON object of the manifest; each error names the field."""

    def __init__(self, path: Path, data: Any, where: str = ""):
        if not isinstance(data, dict):
            raise PortableModelError(path, f"{where or 'the manifest'} must be a JSON object")
        self.path, self.data, self.where = path, data, where

    def _fail(self, key: str, what: str) -> PortableModelError:
        return PortableModelError(self.path, f"field {self.where}{key} {what}")

    def get(self, key: str, types: type | tuple[type, ...], what: str) -> Any:
        if key not in self.data:
            raise self._fail(key, "is missing")
        value = self.data[key]
        # bool is an int to isinstance; a manifest's true is never a number here.
        if isinstance(value, bool) and bool not in (
            types if isinstance(types, tuple) else (types,)
        ):
            raise self._fail(key, f"must be {what}, got {value!r:.60}")
        if not isinstance(value, types):
            raise self._fail(key, f"must be {what}, got {value!r:.60}")
        return value

    def integer(self, key: str, low: int = 0) -> int:
        value = self.get(key, int, "an integer")
        if value < low:
            raise self._fail(key, f"must be >= {low}, got {value}")
        return int(value)

    def text(self, key: str) -> str:
        return str(self.get(key, str, "a string"))

    def names(self, key: str) -> list[str]:
        value = self.get(key, list, "a list of strings")
        if not all(isinstance(v, str) for v in value):
            raise self._fail(key, "must be a list of strings")
        return list(value)

    def child(self, key: str) -> _Fields:
        return _Fields(self.path, self.get(key, dict, "an object"), f"{self.where}{key}.")


def _tensor_specs(fields: _Fields, key: str) -> tuple[TensorSpec, ...]:
    items = fields.get(key, list, "a list")
    specs = []
    for i, item in enumerate(items):
        t = _Fields(fields.path, item, f"{fields.where}{key}[{i}].")
        dtype = t.text("dtype")
        if dtype not in _TENSOR_DTYPES:
            raise t._fail("dtype", f"must be one of {', '.join(_TENSOR_DTYPES)}, got {dtype!r:.40}")
        shape = t.get("shape", list, "a list")
        if not all(
            isinstance(d, str) or (isinstance(d, int) and not isinstance(d, bool) and d > 0)
            for d in shape
        ):
            raise t._fail("shape", "must list positive sizes or dimension names")
        specs.append(TensorSpec(t.text("name"), dtype, tuple(shape)))
    return tuple(specs)


def read_manifest(folder: str | os.PathLike) -> Manifest:
    """The checked manifest of the portable model in ``folder`` (the graphs themselves are
    checked by :class:`PortableModel`). PortableModelError names what is wrong."""
    path = Path(folder) / MANIFEST_FILE
    if not Path(folder).is_dir():
        raise PortableModelError(
            folder,
            "not a folder; a portable model is a folder with "
            f"{MANIFEST_FILE} and .onnx graphs (sketchrnn export MODEL OUT)",
        )
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise PortableModelError(
            path, "missing; a portable model folder holds it beside its .onnx graphs"
        ) from None
    if len(text) > 16 << 20:
        raise PortableModelError(path, f"{len(text)} bytes: too large for a manifest")
    try:
        data = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PortableModelError(path, f"not valid JSON ({e})") from None
    top = _Fields(path, data)
    fmt = top.get("format", str, "a string")
    if fmt != FORMAT:
        raise PortableModelError(path, f"format is {fmt!r:.60}, not {FORMAT!r}")
    version = top.integer("format_version", low=1)
    if version > FORMAT_VERSION:
        raise PortableModelError(
            path,
            f"format_version {version} is newer than this sketchrnn reads ({FORMAT_VERSION}); "
            "upgrade sketchrnn",
        )
    kind = top.text("kind")
    if kind not in KINDS:
        raise top._fail("kind", f"must be one of {', '.join(KINDS)}, got {kind!r:.40}")
    units = top.child("units")
    scale = units.get("scale_factor", (int, float), "a number")
    if not math.isfinite(scale) or scale <= 0:
        raise units._fail("scale_factor", f"must be finite and > 0, got {scale!r}")
    state = []
    for i, item in enumerate(top.get("state", list, "a list")):
        entry = _Fields(path, item, f"state[{i}].")
        state.append((entry.text("name"), entry.integer("size", low=1)))
    image = top.get("image", (dict, type(None)), "an object or null")
    if kind == "sketchembednet":
        if image is None:
            raise top._fail("image", "must describe the input image of a sketchembednet")
        im = _Fields(path, image, "image.")
        im.integer("size", low=1), im.integer("channels", low=1)
    dtype = top.text("dtype")
    if dtype not in DTYPES:
        raise top._fail("dtype", f"must be one of {', '.join(DTYPES)}, got {dtype!r:.40}")
    graphs_field = top.child("graphs")
    graphs: dict[str, GraphSpec] = {}
    for name in graphs_field.data:
        if name not in GRAPHS:
            raise graphs_field._fail(
                name, f"is not a graph of format {FORMAT_VERSION} ({', '.join(GRAPHS)})"
            )
        g = graphs_field.child(name)
        file = g.text("file")
        if file != f"{name}.onnx":
            raise g._fail("file", f"must be {name}.onnx, got {file!r:.60}")
        sha = g.text("sha256")
        if len(sha) != 64 or any(ch not in "0123456789abcdef" for ch in sha):
            raise g._fail("sha256", "must be 64 lowercase hex digits")
        graphs[name] = GraphSpec(
            file, g.integer("bytes", low=1), sha, _tensor_specs(g, "inputs"),
            _tensor_specs(g, "outputs"),
        )  # fmt: skip
    known = {"format", "format_version", "kind", "name", "config", "units", "max_len",
             "num_mixtures", "latent_size", "num_classes", "image", "state", "capabilities",
             "dtype", "graphs"}  # fmt: skip
    manifest = Manifest(
        kind=kind,
        name=top.text("name"),
        config=top.get("config", dict, "an object"),
        scale_factor=float(scale),
        classes=units.names("classes"),
        max_len=top.integer("max_len", low=1),
        num_mixtures=top.integer("num_mixtures", low=1),
        latent_size=top.integer("latent_size"),
        num_classes=top.integer("num_classes"),
        image=image,
        state=tuple(state),
        capabilities=tuple(top.names("capabilities")),
        dtype=dtype,
        graphs=graphs,
        format_version=version,
        extra={k: v for k, v in data.items() if k not in known},
    )
    _check_graph_lists(path, manifest)
    return manifest


def _check_graph_lists(path: Path, manifest: Manifest) -> None:
    """The manifest's graphs are those the contract calls for, with its exact signatures."""
    if not manifest.state:
        raise PortableModelError(path, "field state lists no state tensor")
    if manifest.kind == "sketchembednet" and manifest.latent_size < 1:
        raise PortableModelError(path, "field latent_size must be > 0 for a sketchembednet")
    wanted = graph_signatures(
        manifest.kind, manifest.state, manifest.num_mixtures, manifest.latent_size,
        manifest.num_classes, manifest.image, "read" in manifest.graphs,
    )  # fmt: skip
    missing = [name for name in wanted if name not in manifest.graphs]
    if missing:
        raise PortableModelError(
            path, f"field graphs lacks {', '.join(missing)}, which this model needs"
        )
    for name, spec in manifest.graphs.items():
        if name not in wanted:
            raise PortableModelError(path, f"field graphs.{name}: this model has no {name} graph")
        inputs, outputs = wanted[name]
        for what, have, want in (
            ("inputs", spec.inputs, inputs),
            ("outputs", spec.outputs, outputs),
        ):
            if have != want:
                raise PortableModelError(
                    path,
                    f"field graphs.{name}.{what} is {_signature(have)}; this model's {name} "
                    f"graph takes {_signature(want)}",
                )


def _signature(specs: tuple[TensorSpec, ...]) -> str:
    return "(" + ", ".join(f"{t.name} {t.dtype}{list(t.shape)}" for t in specs) + ")"


def file_digest(data: bytes) -> str:
    """The SHA-256 of ``data`` as 64 lowercase hex digits."""
    return hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------------------- running


class PortableMixture(NamedTuple):
    """``step``'s mixture outputs as numpy arrays (the fields of
    :class:`sketchrnn.nn.mixture.MixtureParams`): ``(batch, M)`` each, ``pen_logits``
    ``(batch, 3)``."""

    log_pi: np.ndarray
    mu_x: np.ndarray
    mu_y: np.ndarray
    log_sigma_x: np.ndarray
    log_sigma_y: np.ndarray
    rho: np.ndarray
    pen_logits: np.ndarray


State = dict[str, np.ndarray]


class PortableModel:
    """A checked portable model folder, its graphs run by onnxruntime (CPU).

    ``PortableModel(folder)`` reads the manifest (:func:`read_manifest`), checks each graph
    file's size and SHA-256 against it before onnxruntime sees a byte, then checks each graph's
    inputs and outputs against the manifest; any mismatch is a :class:`PortableModelError`
    naming the file. Arrays in and out are numpy, in the model's units (as the graphs)."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)
        require_onnx("onnxruntime")
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: warnings would go to stderr
        self._sessions: dict[str, Any] = {}
        for name, spec in self.manifest.graphs.items():
            path = self.folder / spec.file
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                raise PortableModelError(path, "missing; the manifest lists it") from None
            if len(data) != spec.bytes:
                raise PortableModelError(
                    path, f"{len(data)} bytes, the manifest says {spec.bytes}: truncated or "
                    "replaced; export the model again"
                )  # fmt: skip
            if file_digest(data) != spec.sha256:
                raise PortableModelError(
                    path, "SHA-256 differs from the manifest's: the file was altered; export "
                    "the model again"
                )  # fmt: skip
            try:
                session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
            except Exception as e:  # onnxruntime raises its own classes for a bad graph
                raise PortableModelError(path, f"not a graph onnxruntime can run: {e}") from None
            _check_session(path, session, spec)
            self._sessions[name] = session

    @property
    def state_names(self) -> tuple[str, ...]:
        return self.manifest.state_names

    def has_graph(self, name: str) -> bool:
        return name in self._sessions

    def run(self, graph: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one graph: ``inputs`` by name -> outputs by name (ValueError for a graph the
        model does not have)."""
        session = self._sessions.get(graph)
        if session is None:
            raise ValueError(f"{self.folder}: this model has no {graph} graph")
        names = [o.name for o in session.get_outputs()]
        return dict(zip(names, session.run(names, inputs), strict=True))

    def encode(self, strokes_or_image: np.ndarray, lengths: np.ndarray | None = None):
        """``(mu, sigma_hat)`` ``(batch, latent)``: of stroke-5 rows ``(batch, time, 5)`` (no
        start token, padded) and ``lengths`` ``(batch,)`` for a sketch-rnn VAE, or of images
        ``(batch, C, S, S)`` for a SketchEmbedNet."""
        if self.manifest.kind == "sketchembednet":
            out = self.run("encode", {"image": _f32(strokes_or_image)})
        else:
            if lengths is None:
                raise ValueError("a sketch-rnn encoder needs the lengths of the sketches")
            lengths = np.asarray(lengths, dtype=np.int64)
            steps = np.shape(strokes_or_image)[1]
            if lengths.size and (lengths.min() < 1 or lengths.max() > steps):
                raise ValueError(f"lengths must lie in 1..{steps} (the rows given)")
            out = self.run("encode", {"strokes": _f32(strokes_or_image), "lengths": lengths})
        return out["mu"], out["sigma_hat"]

    def initial_state(self, z: np.ndarray | None = None, batch_size: int = 1) -> State:
        """The decoder state before the first step: from ``z`` ``(batch, latent)`` through the
        ``init`` graph, or zeros for a model without z."""
        if self.manifest.latent_size == 0:
            return {n: np.zeros((batch_size, s), np.float32) for n, s in self.manifest.state}
        if z is None:
            raise ValueError("this model starts from z: pass z")
        return self.run("init", {"z": _f32(z)})

    def _conditioning(self, z: np.ndarray | None, label: np.ndarray | None) -> State:
        feed: State = {}
        if self.manifest.latent_size > 0:
            if z is None:
                raise ValueError("this model's decoder reads z: pass z")
            feed["z"] = _f32(z)
        if self.manifest.num_classes > 0:
            if label is None:
                raise ValueError("this model is class-conditional: pass label")
            label = np.asarray(label, dtype=np.int64)
            if label.size and (label.min() < 0 or label.max() >= self.manifest.num_classes):
                raise ValueError(f"labels must lie in 0..{self.manifest.num_classes - 1}")
            feed["label"] = label
        return feed

    def step(
        self,
        x: np.ndarray,
        state: State,
        z: np.ndarray | None = None,
        label: np.ndarray | None = None,
    ) -> tuple[PortableMixture, State]:
        """One decoder step: previous point ``x`` ``(batch, 5)`` -> the next point's mixture
        and the new state (by the state's names)."""
        feed = {"x": _f32(x), **{n: state[n] for n in self.state_names}}
        out = self.run("step", {**feed, **self._conditioning(z, label)})
        mixture = PortableMixture(*(out[n] for n in MIXTURE_OUTPUTS))
        return mixture, {n: out["next_" + n] for n in self.state_names}

    def read(
        self,
        xs: np.ndarray,
        state: State,
        z: np.ndarray | None = None,
        label: np.ndarray | None = None,
    ) -> State:
        """The state after reading ``xs`` ``(batch, time, 5)``: one call of ``read`` where the
        model has it, else ``time`` calls of ``step``."""
        if not self.has_graph("read"):
            for t in range(np.shape(xs)[1]):
                _, state = self.step(xs[:, t], state, z, label)
            return state
        feed = {"xs": _f32(xs), **{n: state[n] for n in self.state_names}}
        out = self.run("read", {**feed, **self._conditioning(z, label)})
        return {n: out["next_" + n] for n in self.state_names}


def _f32(a: Any) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


def _check_session(path: Path, session: Any, spec: GraphSpec) -> None:
    """The graph's own inputs and outputs are the manifest's, names, types and shapes."""
    for what, have, want in (
        ("inputs", session.get_inputs(), spec.inputs),
        ("outputs", session.get_outputs(), spec.outputs),
    ):
        got = tuple(
            TensorSpec(a.name, _ORT_DTYPES.get(a.type, a.type), tuple(a.shape)) for a in have
        )
        if got != want:
            raise PortableModelError(
                path,
                f"the graph's {what} {_signature(got)} differ from the manifest's "
                f"{_signature(want)}",
            )
