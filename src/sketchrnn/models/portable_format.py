"""The portable model format (version 1, ``docs/portable-models.md``): the contract's names,
the graphs each kind of model has and their signatures (:func:`graph_signatures`), and the
checked reading of ``manifest.json`` (:func:`read_manifest`). :mod:`sketchrnn.models.portable`
runs a folder's graphs; :mod:`sketchrnn.models.onnx_export` writes one.

Everything a reader refuses is a :class:`PortableModelError` naming the file: another
``format``, a newer ``format_version``, a missing field or one of the wrong type, or graph lists
that are not what the model's kind, state, latent size and classes call for.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sketchrnn.extras import MissingExtraError
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
    "require_onnx",
    "TensorSpec",
    "GraphSpec",
    "Manifest",
    "graph_signatures",
    "read_manifest",
    "file_digest",
    "signature_text",
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


class PortableModelError(ModelFileError):
    """A portable model folder that cannot be used: the message names the file (the manifest
    or a graph) and what is wrong with it."""


def require_onnx(*modules: str) -> None:
    """Import ``modules`` (of the ``onnx`` extra) or raise :class:`MissingExtraError` saying
    how to install them."""
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
        out["init"] = ((TensorSpec("z", f32, ("batch", latent_size)),), _init_outputs(state))
    x = TensorSpec("x", f32, ("batch", 5))
    out["step"] = ((x, *states, *conditioning), (*mixture, *next_states))
    if with_read:
        xs = TensorSpec("xs", f32, ("batch", "time", 5))
        out["read"] = ((xs, *states, *conditioning), next_states)
    return out


def _init_outputs(state: tuple[tuple[str, int], ...]) -> tuple[TensorSpec, ...]:
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
                    f"field graphs.{name}.{what} is {signature_text(have)}; this model's {name} "
                    f"graph takes {signature_text(want)}",
                )


def signature_text(specs: tuple[TensorSpec, ...]) -> str:
    return "(" + ", ".join(f"{t.name} {t.dtype}{list(t.shape)}" for t in specs) + ")"


def file_digest(data: bytes) -> str:
    """The SHA-256 of ``data`` as 64 lowercase hex digits."""
    return hashlib.sha256(data).hexdigest()
