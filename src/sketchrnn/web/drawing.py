"""The API's drawings: a request's pixels in, :mod:`sketchrnn.generate` in the middle, the
request's pixels out (no HTTP here, and no drawing of its own).

Each function takes a :class:`ServedModel` and drawings as stroke-3 ``(n, 3)`` arrays in the
*request's* pixels, and answers in the same pixels. With a ``canvas`` (the width and height
of the surface the drawing was made on) the drawing is brought to the model's size by
:func:`sketchrnn.generate.canvas_scale` (the model's typical size measured once per served
model), then read as :func:`sketchrnn.generate.prepare_drawing` prepares it (moved to the
origin, simplified as the training data was). ``options`` are the request's drawing options
under :mod:`sketchrnn.generate`'s names (``temperature``, ``labels``, ``seed``, ``max_len``,
...), only those the request gave: every default is the library's.

A model that ends a drawing at once gives an empty one: :func:`sample` draws those again
(up to :data:`EMPTY_RETRIES` times, as a new sample is as good as the first) and the answers
list what is still empty (:func:`empty_indices`) with the reason.
"""

from __future__ import annotations

import inspect
import os
import threading
from collections.abc import Container, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sketchrnn import generate, strokes
from sketchrnn.embeddings import l2_normalise
from sketchrnn.models import load_model
from sketchrnn.web.capabilities import ModelInfo, describe, has_stroke_encoder

__all__ = [
    "ServedModel",
    "unique_name",
    "DrawingTooLong",
    "Unsupported",
    "EMPTY_RETRIES",
    "empty_indices",
    "sample",
    "complete",
    "stream_complete",
    "reconstruct",
    "interpolate",
    "grid",
    "imitate",
    "embed",
    "classify",
]

#: How many more times :func:`sample` draws a sketch that came out empty before answering it
#: empty (and saying so): a model may end a sketch at its first step (omniglot_vae does about
#: 19 times in 64).
EMPTY_RETRIES = 3


class DrawingTooLong(ValueError):
    """A drawing with more points (after simplification) than the model can take."""

    def __init__(self, points: int, limit: int, what: str):
        super().__init__(
            f"the drawing has {points} points after simplification; {what} at most {limit} "
            "(the model's max_seq_len): undo some strokes"
        )
        self.points, self.limit = points, limit


class Unsupported(ValueError):
    """The model cannot do what was asked (e.g. Mimic with a decoder-only model)."""


@dataclass
class ServedModel:
    """A model loaded once and shared by every request, with what the page says about it."""

    name: str
    model: Any
    source: str = ""
    info: ModelInfo = field(init=False)
    _extent: float | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self.info = describe(self.name, self.model)

    @classmethod
    def load(cls, name: str, path: str | os.PathLike, *, device: str = "cpu") -> ServedModel:
        """The model at ``path`` (anything :func:`sketchrnn.models.load_model` opens) to be
        served as ``name``, its typical size measured now, so that no request waits for it."""
        served = cls(name, load_model(path, device=device), source=str(path))
        if served.info.capabilities["sample"]:
            served.typical_extent()
        return served

    def require(self, capability: str) -> None:
        if not self.info.capabilities.get(capability, False):
            reason = self.info.reasons.get(capability, "it cannot")
            raise Unsupported(f"model {self.name!r} cannot {capability}: {reason}")

    def typical_extent(self) -> float:
        """:func:`sketchrnn.generate.typical_extent` of the model, measured once."""
        with self._lock:
            if self._extent is None:
                self._extent = generate.typical_extent(self.model)
            return self._extent

    def canvas_scale(self, canvas: tuple[float, float] | None) -> float:
        """Model pixels per request pixel for a drawing on ``canvas`` (1 without one)."""
        if canvas is None:
            return 1.0
        return generate.canvas_scale(self.model, canvas, extent=self.typical_extent())


def unique_name(name: str, taken: Container[str]) -> str:
    """``name``, or ``name-2``, ``name-3``, ...: the first not in ``taken``."""
    unique, k = name, 1
    while unique in taken:
        k += 1
        unique = f"{name}-{k}"
    return unique


# ----------------------------------------------------------------------------- conversion


def _back(sketches: Sequence[np.ndarray], k: float) -> list[np.ndarray]:
    """Model pixels -> request pixels (new arrays)."""
    return strokes.normalize(sketches, k) if k != 1.0 else [np.array(s) for s in sketches]


def _read(
    served: ServedModel, s3: np.ndarray, k: float, what: str, limit: int | None = None
) -> np.ndarray:
    """A request drawing as the model reads it (:func:`sketchrnn.generate.prepare_drawing`);
    :class:`DrawingTooLong` when it has more than ``limit`` points (default the model's
    ``max_seq_len``)."""
    limit = int(served.info.max_seq_len or 0) if limit is None else limit
    prepared = generate.prepare_drawing(served.model, s3, k, max_points=limit)
    if len(prepared) > limit:
        raise DrawingTooLong(len(prepared), limit, what)
    return prepared


def empty_indices(sketches: Sequence[np.ndarray]) -> list[int]:
    """Where ``sketches`` has an empty drawing (no points)."""
    return [i for i, s in enumerate(sketches) if len(s) == 0]


# ----------------------------------------------------------------------------- drawing


def sample(
    served: ServedModel, n: int, *, canvas: tuple[float, float] | None = None, **options: Any
) -> list[np.ndarray]:
    """``n`` drawings from scratch, each starting at the origin; an empty one is drawn again
    (with ``seed + 1000 * attempt`` when seeded) up to :data:`EMPTY_RETRIES` times."""
    served.require("sample")
    k = served.canvas_scale(canvas)
    out = generate.sample(served.model, n, **options)
    seed = options.get("seed")
    for attempt in range(1, EMPTY_RETRIES + 1):
        empty = empty_indices(out)
        if not empty:
            break
        again_seed = None if seed is None else seed + 1000 * attempt
        again = generate.sample(served.model, len(empty), **{**options, "seed": again_seed})
        for i, s in zip(empty, again, strict=True):
            out[i] = s
    return _back(out, k)


def complete(
    served: ServedModel,
    sketch: np.ndarray,
    n: int,
    *,
    canvas: tuple[float, float] | None = None,
    **options: Any,
) -> tuple[np.ndarray, list[np.ndarray], list[str]]:
    """``n`` endings of ``sketch``: ``(prefix, endings, stopped)``, the prefix as the model
    read it, each ending's first offset from the prefix's last point (so it can be appended
    to the drawing as it was sent), and why each ending stopped: ``"end_of_sketch"`` (the
    model ended the drawing: empty when it takes it as finished) or ``"max_len"``."""
    served.require("complete")
    k = served.canvas_scale(canvas)
    limit = int(options.get("max_len") or served.info.max_seq_len or 0)
    prefix = _read(served, sketch, k, "a drawing to continue has", limit - 1)
    full = generate.complete(served.model, prefix, n, **options)
    stopped = ["max_len" if len(s) >= limit else "end_of_sketch" for s in full]
    endings = [s[len(prefix) :] for s in full]
    return _back([prefix], k)[0], _back(endings, k), stopped


def stream_complete(
    served: ServedModel,
    sketch: np.ndarray,
    *,
    canvas: tuple[float, float] | None = None,
    **options: Any,
) -> tuple[int, int, Iterator[np.ndarray]]:
    """One ending of ``sketch``, a stroke at a time: ``(points, limit, strokes)``, the number
    of points the model reads, the most points of the whole drawing, and the new strokes
    (request pixels; the first offset from the drawing's last point). The drawing is checked
    here, before the first stroke is asked for."""
    served.require("complete")
    k = served.canvas_scale(canvas)
    limit = int(options.get("max_len") or served.info.max_seq_len or 0)
    prefix = _read(served, sketch, k, "a drawing to continue has", limit - 1)
    ending = generate.complete_stream(served.model, prefix, **options)
    return len(prefix), limit, (_back([s], k)[0] for s in ending)


def _encodable(served: ServedModel, sketches: Sequence[np.ndarray], k: float) -> list[np.ndarray]:
    return [_read(served, s, k, "the model encodes") for s in sketches]


def reconstruct(
    served: ServedModel,
    sketch: np.ndarray,
    *,
    canvas: tuple[float, float] | None = None,
    **options: Any,
) -> list[np.ndarray]:
    """A VAE redraws ``sketch`` from its mean encoding (:func:`sketchrnn.generate.reconstruct`:
    ``n`` times per temperature); with ``labels``, a class-conditional model draws it as
    that class."""
    served.require("reconstruct")
    k = served.canvas_scale(canvas)
    (prepared,) = _encodable(served, [sketch], k)
    return _back(generate.reconstruct(served.model, prepared, **options), k)


def interpolate(
    served: ServedModel,
    a: np.ndarray,
    b: np.ndarray,
    *,
    canvas: tuple[float, float] | None = None,
    **options: Any,
) -> list[np.ndarray]:
    """Drawings along the latent path from ``a`` to ``b``
    (:func:`sketchrnn.generate.interpolate`)."""
    served.require("interpolate")
    k = served.canvas_scale(canvas)
    pa, pb = _encodable(served, [a, b], k)
    return _back(generate.interpolate(served.model, pa, pb, **options), k)


def grid(
    served: ServedModel,
    corners: Sequence[np.ndarray],
    *,
    canvas: tuple[float, float] | None = None,
    **options: Any,
) -> list[np.ndarray]:
    """The four-corner grid, row-major (:func:`sketchrnn.generate.four_corner_grid`)."""
    served.require("interpolate")
    k = served.canvas_scale(canvas)
    prepared = _encodable(served, corners, k)
    return _back(generate.four_corner_grid(served.model, prepared, **options), k)


def imitate(served: ServedModel, sketch: np.ndarray, **options: Any) -> list[np.ndarray]:
    """SketchEmbedNet draws the *image* of ``sketch`` (:func:`sketchrnn.generate.imitate`:
    each drawing at the sketch's size)."""
    served.require("imitate")
    return generate.imitate(served.model, sketch, **options)


# ----------------------------------------------------------------------------- few-shot


def embed(
    served: ServedModel,
    sketches: Sequence[np.ndarray],
    *,
    canvas: tuple[float, float] | None = None,
) -> np.ndarray:
    """One vector per drawing, ``(n, D)`` (:func:`sketchrnn.generate.embed`); a VAE reads
    each drawing as it reads drawings to continue (canvas, simplification)."""
    served.require("embed")
    if has_stroke_encoder(served.model):
        sketches = _encodable(served, sketches, served.canvas_scale(canvas))
    return generate.embed(served.model, sketches)


def classify(
    served: ServedModel,
    examples: Sequence[tuple[str, Sequence[np.ndarray]]],
    queries: Sequence[np.ndarray],
    *,
    canvas: tuple[float, float] | None = None,
) -> list[dict[str, float]]:
    """Few-shot classification taught by example (SketchEmbedNet's use, section 4): a
    logistic regression on the L2-normalised embeddings of the ``examples`` (name, drawings)
    of two or more concepts, as ``sketchrnn.fewshot`` scores episodes (its regularization).
    Returns, per query, each concept's probability."""
    # scikit-learn takes seconds to import: the server starts without it, until a page asks.
    from sklearn.linear_model import LogisticRegression

    from sketchrnn.fewshot import evaluate_embedded

    regularization = inspect.signature(evaluate_embedded).parameters["regularization"].default

    served.require("classify")
    names = [name for name, _ in examples]
    if len(set(names)) < 2 or len(set(names)) != len(names):
        raise ValueError("teach at least two concepts, each with its own name")
    support = [s for _, drawings in examples for s in drawings]
    labels = np.concatenate([np.full(len(d), i) for i, (_, d) in enumerate(examples)])
    vectors = l2_normalise(embed(served, [*support, *queries], canvas=canvas))
    classifier = LogisticRegression(C=regularization, max_iter=1000)
    classifier.fit(vectors[: len(support)], labels)
    probabilities = classifier.predict_proba(vectors[len(support) :])
    order = [int(c) for c in classifier.classes_]
    return [{names[c]: float(p[j]) for j, c in enumerate(order)} for p in probabilities]
