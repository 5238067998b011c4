"""Run a portable model (a folder of ONNX graphs and ``manifest.json``, format:
:mod:`sketchrnn.models.portable_format`, ``docs/portable-models.md``) with onnxruntime:
:class:`PortableModel` checks the folder and calls its graphs, numpy in and out.

Everything it refuses is a :class:`~sketchrnn.models.portable_format.PortableModelError`
naming the file: what :func:`~sketchrnn.models.portable_format.read_manifest` refuses, a graph
file whose size or SHA-256 differs from the manifest, a file onnxruntime cannot load, or a graph
whose own inputs and outputs differ from the manifest's lists. A model that passes computes
what the PyTorch model it came from computes
(each step to 1e-5, tested for every kind).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from sketchrnn.models.portable_format import (
    MIXTURE_OUTPUTS,
    GraphSpec,
    PortableModelError,
    TensorSpec,
    file_digest,
    read_manifest,
    require_onnx,
    signature_text,
)

__all__ = [
    "PortableModel",
    "PortableMixture",
]

# onnxruntime's names of the tensor types the graphs use.
_ORT_DTYPES = {"tensor(float)": "float32", "tensor(int64)": "int64"}


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

    ``PortableModel(folder)`` reads the manifest
    (:func:`~sketchrnn.models.portable_format.read_manifest`), checks each graph file's size and
    SHA-256 against it before onnxruntime sees a byte, then checks each graph's inputs and
    outputs against the manifest; any mismatch is a
    :class:`~sketchrnn.models.portable_format.PortableModelError`
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
                f"the graph's {what} {signature_text(got)} differ from the manifest's "
                f"{signature_text(want)}",
            )
