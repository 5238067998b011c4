"""What the web server asks of a model, as plain functions over stroke-3 arrays (no HTTP here).

Each function takes a :class:`ServedModel` and drawings as stroke-3 ``(n, 3)`` arrays in the
*request's* pixels, and answers in the same pixels. With a ``canvas`` (the width and height of
the surface the drawing was made on) a drawing is brought to the model's own size first: the
canvas is mapped so that :data:`DRAWING_FILL` of its shorter side is the model's typical
drawing size (:func:`sketchrnn.generate.typical_extent`), so a drawing on a big canvas is not
fed to the model huge, and half a drawing stays half a drawing (scaling each input to the
model's size, as ``fit_to_model_size`` does, would blow a first stroke up to a whole
sketch). Without a canvas the pixels are the model's own. Then the drawing is simplified as
the Quick, Draw! training data was (Ramer-Douglas-Peucker, epsilon 2 pixels for the released
models, :data:`RDP_EPSILON_UNITS` of the model's scale factor in general) and moved to start
at the origin (those files carry no absolute start). Results go back through the same map.

The drawing itself is :mod:`sketchrnn.generate`'s (sample, complete, encode, decode,
interpolate, four_corner_grid); the few-shot classifier is :mod:`sketchrnn.fewshot`'s
(L2-normalised embeddings, logistic regression).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from sketchrnn import generate, strokes
from sketchrnn.web import streaming
from sketchrnn.web.capabilities import (
    ModelInfo,
    describe,
    has_stroke_encoder,
    model_scale_factor,
)

__all__ = [
    "ServedModel",
    "DrawingTooLong",
    "Unsupported",
    "DRAWING_FILL",
    "RDP_EPSILON_UNITS",
    "prepare",
    "completion_prefix",
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

#: The part of the canvas's shorter side that maps to the model's typical drawing size (a
#: person drawing a whole object on a canvas fills about this much of it).
DRAWING_FILL = 0.6
#: RDP epsilon in model units: 2 pixels (the Quick, Draw! simplification) over the scale
#: factors of the released models (57-152 pixels, median about 80), i.e. 2/64.
RDP_EPSILON_UNITS = 2.0 / 64.0
#: How much harder than the training data a drawing too long for the model may be simplified.
MAX_EPSILON_GROWTH = 8.0
#: Bounds of the typical extent in model units, against untrained models whose samples
#: are dots or fly off the page (the released models' are 6-16 units).
EXTENT_BOUNDS_UNITS = (3.0, 40.0)
#: Sketches sampled to measure the typical extent (as generate.typical_extent).
EXTENT_SAMPLES = 16


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

    @property
    def scale_factor(self) -> float:
        return model_scale_factor(self.model)

    def require(self, capability: str) -> None:
        if not self.info.capabilities.get(capability, False):
            reason = self.info.reasons.get(capability, "it cannot")
            raise Unsupported(f"model {self.name!r} cannot {capability}: {reason}")

    def typical_extent(self) -> float:
        """The longer side of the model's typical drawing, in its pixels (measured once, from
        16 of its own sketches; image models: the scale factor times 10)."""
        with self._lock:
            if self._extent is None:
                self._extent = self._measure_extent()
            return self._extent

    def _measure_extent(self) -> float:
        scale = self.scale_factor
        lo, hi = (b * scale for b in EXTENT_BOUNDS_UNITS)
        if not self.info.capabilities["sample"]:
            return 10.0 * scale
        classes = self.info.num_classes
        labels = [i % classes for i in range(EXTENT_SAMPLES)] if classes else None
        sketches = generate.sample(
            self.model, EXTENT_SAMPLES, temperature=0.5, labels=labels, seed=0
        )
        sides = [_extent(s) for s in sketches if len(s)]
        extent = float(np.median(sides)) if sides else 0.0
        return min(max(extent, lo), hi) if math.isfinite(extent) else 10.0 * scale

    def canvas_scale(self, canvas: tuple[float, float] | None) -> float:
        """Model pixels per request pixel for a drawing on ``canvas`` (1 without one)."""
        if canvas is None:
            return 1.0
        return self.typical_extent() / (DRAWING_FILL * min(canvas))


def _extent(s3: np.ndarray) -> float:
    lo_x, hi_x, lo_y, hi_y = strokes.bounds(s3)
    return max(hi_x - lo_x, hi_y - lo_y)


# ----------------------------------------------------------------------------- conversion


def prepare(
    served: ServedModel, s3: np.ndarray, k: float, max_points: int | None = None
) -> np.ndarray:
    """A request drawing -> what the model reads, in its pixels: offsets times ``k``,
    moved to start at the origin, RDP-simplified stroke by stroke.

    With ``max_points``, a drawing still longer than that is simplified harder (epsilon
    times 1.5, up to :data:`MAX_EPSILON_GROWTH` times the training data's) before it is
    refused: a model trained on short sketches (32 points) can still take a drawing made
    with a steady hand, and a long drawing together keeps going a little longer."""
    s3 = strokes.validate_stroke3(s3)
    polylines = strokes.stroke3_to_polylines(s3)
    origin = polylines[0][0].copy()
    lines = [(p - origin) * k for p in polylines]
    epsilon = RDP_EPSILON_UNITS * served.scale_factor
    limit = epsilon * MAX_EPSILON_GROWTH
    while True:
        out = strokes.polylines_to_stroke3([strokes.rdp_line_distance(p, epsilon) for p in lines])
        if max_points is None or len(out) <= max_points or epsilon * 1.5 > limit:
            return out
        epsilon *= 1.5


def _back(s3: np.ndarray, k: float) -> np.ndarray:
    """Model pixels -> request pixels (a new array)."""
    out = np.array(s3, dtype=np.float32, copy=True).reshape(-1, 3)
    out[:, 0:2] /= k
    return out


def _check_length(served: ServedModel, s3: np.ndarray, what: str, room: int = 0) -> None:
    limit = int(served.info.max_seq_len or 0) - room
    if len(s3) > limit:
        raise DrawingTooLong(len(s3), limit, what)


def completion_prefix(
    served: ServedModel, sketch: np.ndarray, k: float, max_len: int | None = None
) -> np.ndarray:
    """The drawing as the model reads it before continuing it; :class:`DrawingTooLong`
    unless it leaves room for at least one more point (``max_len``, default the model's
    ``max_seq_len``, bounds the whole sketch)."""
    limit = int(max_len or served.info.max_seq_len or 0)
    prefix = prepare(served, sketch, k, limit - 1)
    if len(prefix) >= limit:
        raise DrawingTooLong(len(prefix), limit - 1, "a drawing to continue has")
    return prefix


def _labels(label: int | None, n: int) -> list[int] | None:
    return None if label is None else [int(label)] * n


def _decode(model: Any, z: torch.Tensor, **kwargs: Any) -> list[np.ndarray]:
    return generate.decode(model, z, **kwargs)


# ----------------------------------------------------------------------------- drawing


def sample(
    served: ServedModel,
    n: int = 1,
    *,
    temperature: float = 0.5,
    label: int | None = None,
    seed: int | None = None,
    max_len: int | None = None,
    canvas: tuple[float, float] | None = None,
) -> list[np.ndarray]:
    """``n`` drawings from scratch, each starting at the origin."""
    served.require("sample")
    k = served.canvas_scale(canvas)
    out = generate.sample(
        served.model,
        n,
        temperature=temperature,
        labels=_labels(label, n),
        seed=seed,
        max_len=max_len,
    )
    return [_back(s, k) for s in out]


def complete(
    served: ServedModel,
    sketch: np.ndarray,
    n: int = 1,
    *,
    temperature: float = 0.5,
    label: int | None = None,
    seed: int | None = None,
    max_len: int | None = None,
    z_from: str = "prefix",
    canvas: tuple[float, float] | None = None,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """``n`` endings of ``sketch``: ``(prefix, endings)``, the prefix as the model read it
    and each ending's first offset from the prefix's last point (so an ending can be appended
    to the drawing as it was sent)."""
    served.require("complete")
    k = served.canvas_scale(canvas)
    prefix = completion_prefix(served, sketch, k, max_len)
    full = generate.complete(
        served.model,
        prefix,
        n,
        temperature,
        z_from=z_from,  # type: ignore[arg-type]
        labels=_labels(label, n),
        max_len=max_len,
        seed=seed,
    )
    return _back(prefix, k), [_back(s[len(prefix) :], k) for s in full]


def stream_complete(
    served: ServedModel,
    sketch: np.ndarray,
    *,
    temperature: float = 0.5,
    label: int | None = None,
    seed: int | None = None,
    max_len: int | None = None,
    z_from: str = "prefix",
    canvas: tuple[float, float] | None = None,
    cancelled: Callable[[], bool] = lambda: False,
) -> tuple[int, Iterator[np.ndarray]]:
    """One ending of ``sketch``, a stroke at a time: ``(points, strokes)``, the number of
    points the model reads and an iterator of the new strokes (request pixels; the first
    offset from the drawing's last point). The drawing is checked here, before the first
    stroke is asked for."""
    served.require("complete")
    k = served.canvas_scale(canvas)
    prefix = completion_prefix(served, sketch, k, max_len)
    strokes_out = streaming.stream_ending(
        served.model,
        prefix,
        temperature=temperature,
        label=label,
        z_from=z_from,
        max_len=max_len,
        seed=seed,
        cancelled=cancelled,
    )
    return len(prefix), (_back(s, k) for s in strokes_out)


def _encode(served: ServedModel, sketches: Sequence[np.ndarray], k: float) -> torch.Tensor:
    limit = int(served.info.max_seq_len or 0)
    prepared = [prepare(served, s, k, limit) for s in sketches]
    for s in prepared:
        _check_length(served, s, "the model encodes")
    return generate.encode(served.model, prepared)


def reconstruct(
    served: ServedModel,
    sketch: np.ndarray,
    n: int = 6,
    *,
    temperature: float = 0.3,
    label: int | None = None,
    seed: int | None = None,
    max_len: int | None = None,
    canvas: tuple[float, float] | None = None,
) -> list[np.ndarray]:
    """A VAE redraws ``sketch`` ``n`` times: its mean encoding decoded at ``temperature``
    (the paper's Fig. 5, one temperature; a model of another class draws it as its class)."""
    served.require("reconstruct")
    k = served.canvas_scale(canvas)
    prefix = prepare(served, sketch, k, int(served.info.max_seq_len or 0))
    _check_length(served, prefix, "the model encodes")
    if label is None:  # generate.reconstruct takes no labels
        out = generate.reconstruct(
            served.model, prefix, [temperature] * n, max_len=max_len, seed=seed
        )
    else:
        z = generate.encode(served.model, [prefix]).expand(n, -1).contiguous()
        out = _decode(
            served.model,
            z,
            temperature=temperature,
            labels=_labels(label, n),
            max_len=max_len,
            seed=seed,
        )
    return [_back(s, k) for s in out]


def interpolate(
    served: ServedModel,
    a: np.ndarray,
    b: np.ndarray,
    steps: int = 7,
    *,
    temperature: float = 0.1,
    method: str = "slerp",
    label: int | None = None,
    seed: int | None = None,
    max_len: int | None = None,
    canvas: tuple[float, float] | None = None,
) -> list[np.ndarray]:
    """``steps`` drawings along the latent path from ``a`` to ``b`` (spherical by default)."""
    served.require("interpolate")
    k = served.canvas_scale(canvas)
    z = _encode(served, [a, b], k)
    if label is None:
        out = generate.interpolate(
            served.model,
            z[0],
            z[1],
            steps,
            method=method,  # type: ignore[arg-type]
            temperature=temperature,
            max_len=max_len,
            seed=seed,
        )
    else:
        path = generate.interpolate_latents(z[0], z[1], steps, method)  # type: ignore[arg-type]
        out = _decode(
            served.model,
            path,
            temperature=temperature,
            labels=_labels(label, steps),
            max_len=max_len,
            seed=seed,
        )
    return [_back(s, k) for s in out]


def grid(
    served: ServedModel,
    corners: Sequence[np.ndarray],
    size: int = 5,
    *,
    temperature: float = 0.1,
    method: str = "slerp",
    label: int | None = None,
    seed: int | None = None,
    max_len: int | None = None,
    canvas: tuple[float, float] | None = None,
) -> list[np.ndarray]:
    """The ``size x size`` four-corner grid (row-major), corners top-left, top-right,
    bottom-left, bottom-right."""
    served.require("interpolate")
    if len(corners) != 4:
        raise ValueError(f"expected 4 corners, got {len(corners)}")
    k = served.canvas_scale(canvas)
    z = _encode(served, corners, k)
    if label is None:
        out = generate.four_corner_grid(
            served.model,
            list(z),
            size,
            method=method,  # type: ignore[arg-type]
            temperature=temperature,
            max_len=max_len,
            seed=seed,
        )
    else:
        lerp = generate.interpolate_latents
        left, right = lerp(z[0], z[2], size, method), lerp(z[1], z[3], size, method)  # type: ignore[arg-type]
        path = torch.cat([lerp(left[r], right[r], size, method) for r in range(size)])  # type: ignore[arg-type]
        out = _decode(
            served.model,
            path,
            temperature=temperature,
            labels=_labels(label, size * size),
            max_len=max_len,
            seed=seed,
        )
    return [_back(s, k) for s in out]


# ----------------------------------------------------------------------------- images


def _images(served: ServedModel, sketches: Sequence[np.ndarray]) -> torch.Tensor:
    """Drawings rasterised as the model's training images (``image_data.render_images``:
    fitted, centred, 10% margin, ink 1): ``(n, C, S, S)`` float32."""
    from sketchrnn.image_data import render_images

    config = served.model.config
    checked = [strokes.validate_stroke3(s) for s in sketches]
    pixels = render_images(checked, int(config.image_size)).astype(np.float32) / 255.0
    images = torch.from_numpy(pixels).unsqueeze(1)
    return images.expand(-1, int(getattr(config, "in_channels", 1)), -1, -1).contiguous()


def imitate(
    served: ServedModel,
    sketch: np.ndarray,
    n: int = 4,
    *,
    temperature: float = 0.3,
    seed: int | None = None,
    max_len: int | None = None,
) -> list[np.ndarray]:
    """SketchEmbedNet draws the *image* of ``sketch`` ``n`` times (decoded from its
    embedding); each result is scaled to the drawing's size (the image has no scale)."""
    served.require("imitate")
    z = served.model.embed(_images(served, [sketch])).expand(n, -1).contiguous()
    out = _decode(served.model, z, temperature=temperature, max_len=max_len, seed=seed)
    target = _extent(strokes.validate_stroke3(sketch))
    results = []
    for s in out:
        side = _extent(s) if len(s) else 0.0
        results.append(_back(s, side / target) if side > 0 and target > 0 else s)
    return results


def embed(
    served: ServedModel,
    sketches: Sequence[np.ndarray],
    *,
    canvas: tuple[float, float] | None = None,
) -> np.ndarray:
    """One vector per drawing, ``(n, D)``: a VAE's latent mean of the drawing, or
    SketchEmbedNet's embedding of its image."""
    served.require("embed")
    if has_stroke_encoder(served.model):
        vectors = _encode(served, sketches, served.canvas_scale(canvas))
    else:
        vectors = served.model.embed(_images(served, sketches))
    return vectors.detach().cpu().numpy().astype(np.float64)


def classify(
    served: ServedModel,
    examples: Sequence[tuple[str, Sequence[np.ndarray]]],
    queries: Sequence[np.ndarray],
    *,
    canvas: tuple[float, float] | None = None,
    regularization: float = 1.0,
) -> list[dict[str, float]]:
    """Few-shot classification taught by example (SketchEmbedNet's use, section 4): a
    logistic regression on the L2-normalised embeddings of the ``examples`` (name, drawings)
    of two or more concepts, as ``sketchrnn.fewshot`` scores episodes. Returns, per query,
    each concept's probability."""
    from sklearn.linear_model import LogisticRegression

    from sketchrnn.fewshot import l2_normalise

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
