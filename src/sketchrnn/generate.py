"""Drawing with a trained model: sampling, completion, reconstruction, latent-space tricks.

Every function takes and returns stroke-3 sketches ``(n, 3)`` in the model's *pixel* units:
inputs are divided by the model's ``scale_factor`` before they enter the network and outputs
multiplied by it (:mod:`sketchrnn.models.units`). A model whose scale factor is unknown is an
error, not a silent 1.0: models from :func:`load_model` and from the Trainer carry theirs.
:func:`scale_inputs` brings sketches of another size to the model's.

Temperature ``tau`` follows the paper (eq. 8): mixture weights and pen logits are divided by
``tau``, variances multiplied by it. ``tau = 0`` is allowed where sampling happens and means
greedy decoding (the most likely component's mean and the most likely pen state).

All sampling is batched (:mod:`sketchrnn.models.decoding`): each sketch stops at its own
end-of-sketch and leaves the batch, so the decoder only runs for the sketches still drawing.
A drawing in progress stops at the next step inside :func:`stop_when` once its check is true.

Drawings made on a screen (the web page, any program with a canvas) reach a model through
:func:`canvas_scale` and :func:`prepare_drawing`: the canvas is mapped to the model's own size
(:func:`typical_extent`) and the drawing simplified as the training data was.

This module is longer than 500 lines on purpose: it is the one drawing path of the library,
the command line and the JSON API, and each of its sections calls the others. It also offers
:func:`load_model`, :func:`sample`, :func:`decode` and :func:`stop_when` (of
:mod:`sketchrnn.models`): the drawing API is one import, as the README's quickstart uses it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from typing import Any, Literal, overload

import numpy as np
import torch

from sketchrnn import strokes
from sketchrnn.datasets import SketchDataset, render_images, to_device
from sketchrnn.models import SketchModel, is_magenta_json_model, load_model
from sketchrnn.models.config import Bounds
from sketchrnn.models.decoding import (
    DrawingCancelled,
    check_count,
    check_temperature,
    class_indices,
    decode,
    draw,
    inference,
    max_length,
    prime,
    rows_to_pixels,
    sample,
    seeded_generator,
    stop_when,
    stream,
)
from sketchrnn.models.units import model_scale_factor, to_model_units

__all__ = [
    "load_model",
    "sample",
    "decode",
    "encode",
    "reconstruct",
    "complete",
    "complete_stream",
    "interpolate",
    "interpolate_latents",
    "four_corner_grid",
    "analogy",
    "variations",
    "embed",
    "imitate",
    "stop_when",
    "DrawingCancelled",
    "typical_extent",
    "canvas_scale",
    "prepare_drawing",
    "DRAWING_FILL",
    "RDP_EPSILON_UNITS",
    "fit_to_model_size",
    "input_scale_factor",
    "scale_inputs",
    "INPUT_SCALE_CHOICES",
]

SketchOrLatent = np.ndarray | torch.Tensor


def _require_encoder(model: SketchModel, what: str) -> None:
    if not model.has_encoder:
        raise ValueError(
            f"{what} needs a model with an encoder (a VAE); this model is decoder-only "
            "(config.conditional=False)"
        )


def _as_stroke5_rows(model: SketchModel, s3: np.ndarray, where: str) -> torch.Tensor:
    """A pixel stroke-3 sketch as normalised stroke-5 rows ``(n, 5)`` (no start, no end row)."""
    s3 = strokes.validate_stroke3(s3, where=where)
    s5 = strokes.stroke3_to_stroke5(to_model_units(model, [s3])[0], n_max=len(s3))
    return torch.from_numpy(s5).to(model.device)


# ----------------------------------------------------------------------------- latent space


@overload
def encode(
    model: SketchModel, sketches: Sequence[np.ndarray], *, with_sigma: Literal[False] = False
) -> torch.Tensor: ...


@overload
def encode(
    model: SketchModel, sketches: Sequence[np.ndarray], *, with_sigma: Literal[True]
) -> tuple[torch.Tensor, torch.Tensor]: ...


def encode(
    model: SketchModel, sketches: Sequence[np.ndarray], *, with_sigma: bool = False
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Latent means ``(B, z_size)`` of pixel stroke-3 sketches (and ``sigma_hat`` on request),
    through the model's encoder (:meth:`~sketchrnn.models.interface.SketchModel.posterior` of
    the model's own batch of the sketches: a sketch-rnn VAE reads their strokes, a model of
    images their images).

    The mean of ``q(z | sketch)`` is used so that encoding is deterministic.
    """
    _require_encoder(model, "encoding")
    if len(sketches) == 0:
        raise ValueError("no sketches to encode")
    max_len = model.max_seq_len
    checked = [strokes.validate_stroke3(s, where=f"sketch {i}") for i, s in enumerate(sketches)]
    for i, s in enumerate(checked):
        if max_len is not None and len(s) > max_len:
            raise ValueError(f"sketch {i} has {len(s)} points, more than max_seq_len={max_len}")
    normalised = to_model_units(model, checked)
    longest = max(len(s) for s in normalised)
    labels = np.zeros(len(normalised), dtype=np.int64)  # unused by an encoder
    given = SketchDataset(normalised, labels, ["sketch"], model_scale_factor(model), longest)
    batch = model.dataset(model.config, given).batch(np.arange(len(given)))
    with inference(model):
        mu, sigma_hat = model.posterior(to_device(batch, model.device))
    return (mu, sigma_hat) if with_sigma else mu


def _latent(model: SketchModel, item: SketchOrLatent) -> torch.Tensor:
    """A latent vector ``(z_size,)``: a tensor is used as is, a stroke-3 array is encoded."""
    if isinstance(item, torch.Tensor):
        z = item.detach().to(model.device, dtype=torch.float32).reshape(-1)
        if z.shape[0] != model.config.z_size:
            raise ValueError(f"latent has size {z.shape[0]}, the model's is {model.config.z_size}")
        return z
    return encode(model, [item])[0]


def interpolate_latents(
    z_a: torch.Tensor,
    z_b: torch.Tensor,
    steps: int,
    method: Literal["slerp", "linear"] = "slerp",
) -> torch.Tensor:
    """``steps`` latents ``(steps, z_size)`` from ``z_a`` to ``z_b`` inclusive.

    ``slerp`` (spherical, as in the paper, section 4.2) keeps the norm typical of samples
    from a Gaussian prior; it falls back to linear when the two vectors are (anti)parallel
    enough for the sine to vanish.
    """
    steps = check_count(steps, "steps")
    if method not in ("slerp", "linear"):
        raise ValueError(f"method must be 'slerp' or 'linear', got {method!r}")
    t = torch.linspace(0.0, 1.0, steps, dtype=torch.float64).unsqueeze(1)
    if steps == 1:
        t = torch.zeros(1, 1, dtype=torch.float64)
    a, b = z_a.double().reshape(1, -1), z_b.double().reshape(1, -1)
    out = (1 - t) * a + t * b
    if method == "slerp":
        cos = (a @ b.T / (a.norm() * b.norm()).clamp_min(1e-12)).clamp(-1.0, 1.0)
        omega = torch.arccos(cos)
        sin = torch.sin(omega)
        if float(sin) > 1e-6:
            out = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / sin
    return out.to(z_a.dtype)


def reconstruct(
    model: SketchModel,
    s3: np.ndarray,
    temperatures: Sequence[float] = (0.01, 0.2, 0.4, 0.6, 0.8, 1.0),
    *,
    n: int = 1,
    labels: Any = None,
    max_len: int | None = None,
    seed: int | None = None,
) -> list[np.ndarray]:
    """Decode the encoding of ``s3`` ``n`` times per temperature (paper Fig. 5), one batch
    per temperature (seeded ``seed + k`` for the ``k``-th): ``len(temperatures) * n``
    stroke-3 sketches in pixels, grouped by temperature. ``labels`` (one, or ``n``) for a
    class-conditional model: a model of another class draws the sketch as its class."""
    _require_encoder(model, "reconstruction")
    if len(temperatures) == 0:
        raise ValueError("no temperatures given")
    n = check_count(n)
    z = encode(model, [s3]).expand(n, -1).contiguous()
    out = []
    for k, tau in enumerate(temperatures):
        sub_seed = None if seed is None else seed + k
        out += decode(model, z, temperature=tau, labels=labels, max_len=max_len, seed=sub_seed)
    return out


def variations(
    model: SketchModel,
    s3: np.ndarray,
    n: int,
    temperature: float = 0.3,
    *,
    labels: Any = None,
    max_len: int | None = None,
    seed: int | None = None,
) -> list[np.ndarray]:
    """``n`` sketches "similar but unique" to ``s3``: latents drawn from the posterior
    ``q(z | s3) = N(mu, sigma^2)`` and each decoded at ``temperature``."""
    n = check_count(n)
    mu, sigma_hat = encode(model, [s3], with_sigma=True)
    sigma = torch.exp(sigma_hat / 2)  # sigma_hat is the log variance (paper section 3.1)
    gen = seeded_generator(model, seed)
    eps = torch.randn(n, mu.shape[1], generator=gen, device=mu.device)
    z = mu + sigma * eps
    return decode(
        model,
        z,
        temperature=temperature,
        labels=labels,
        max_len=max_len,
        seed=None if seed is None else seed + 1,
    )


def interpolate(
    model: SketchModel,
    a: SketchOrLatent,
    b: SketchOrLatent,
    steps: int = 10,
    *,
    method: Literal["slerp", "linear"] = "slerp",
    temperature: float = 0.1,
    labels: Any = None,
    max_len: int | None = None,
    seed: int | None = None,
    progress: bool = False,
) -> list[np.ndarray]:
    """``steps`` sketches decoded along the path from ``a`` to ``b`` (sketches in pixels or
    latent vectors), paper section 4.2; in batches, with a progress bar on stderr when
    ``progress`` (:func:`decode`). ``labels`` (one, or ``steps``) for a class-conditional
    model."""
    _require_encoder(model, "interpolation")
    z = interpolate_latents(_latent(model, a), _latent(model, b), steps, method)
    return decode(
        model,
        z,
        temperature=temperature,
        labels=labels,
        max_len=max_len,
        seed=seed,
        progress=progress,
    )


def four_corner_grid(
    model: SketchModel,
    corners: Sequence[SketchOrLatent],
    size: int = 5,
    *,
    method: Literal["slerp", "linear"] = "slerp",
    temperature: float = 0.1,
    labels: Any = None,
    max_len: int | None = None,
    seed: int | None = None,
) -> list[np.ndarray]:
    """A ``size x size`` grid (row-major list) interpolating four corners (supplement 5).

    ``corners`` are top-left, top-right, bottom-left, bottom-right. The left and right
    columns interpolate down from the top corners to the bottom ones, and each row
    interpolates across between them. ``labels`` (one, or ``size * size``) for a
    class-conditional model.
    """
    _require_encoder(model, "a four-corner grid")
    if len(corners) != 4:
        raise ValueError(f"expected 4 corners, got {len(corners)}")
    size = check_count(size, "size")
    tl, tr, bl, br = (_latent(model, c) for c in corners)
    left = interpolate_latents(tl, bl, size, method)
    right = interpolate_latents(tr, br, size, method)
    z = torch.cat([interpolate_latents(left[r], right[r], size, method) for r in range(size)])
    return decode(model, z, temperature=temperature, labels=labels, max_len=max_len, seed=seed)


def analogy(
    model: SketchModel,
    a: SketchOrLatent,
    minus: SketchOrLatent,
    plus: SketchOrLatent,
    n: int = 1,
    *,
    temperature: float = 0.1,
    labels: Any = None,
    max_len: int | None = None,
    seed: int | None = None,
    progress: bool = False,
) -> list[np.ndarray]:
    """Draw ``z_a - z_minus + z_plus`` ``n`` times (paper section 4.3: cat head - pig head +
    full pig = full cat); in batches, with a progress bar on stderr when ``progress``
    (:func:`decode`)."""
    _require_encoder(model, "an analogy")
    n = check_count(n)
    z = _latent(model, a) - _latent(model, minus) + _latent(model, plus)
    return decode(
        model,
        z.expand(n, -1),
        temperature=temperature,
        labels=labels,
        max_len=max_len,
        seed=seed,
        progress=progress,
    )


# ----------------------------------------------------------------------------- completion


def _primed(
    model: SketchModel,
    prefix_s3: np.ndarray,
    n: int,
    z_from: str,
    labels: Any,
    max_len: int | None,
    seed: int | None,
) -> tuple[np.ndarray, torch.Tensor, Any, torch.Tensor | None, Any, int, Any]:
    """The checked prefix and the decoder ready to continue it ``n`` times: ``(s3, last_row,
    state, z, label_idx, room, generator)`` for :func:`draw` or :func:`stream`."""
    s3 = strokes.validate_stroke3(prefix_s3, where="prefix")
    limit = max_length(model, max_len)
    if len(s3) >= limit:
        raise ValueError(
            f"prefix has {len(s3)} points; it must be shorter than max_len={limit} to leave "
            "room for an ending"
        )
    if z_from not in ("prefix", "prior"):
        raise ValueError(f"z_from must be 'prefix' or 'prior', got {z_from!r}")
    gen = seeded_generator(model, seed)
    z = None
    if model.has_encoder:
        if z_from == "prefix":
            z = encode(model, [s3]).expand(n, -1).contiguous()
        else:
            z = torch.randn(n, model.config.z_size, generator=gen, device=model.device)
    label_idx = class_indices(model, labels, n)
    rows = _as_stroke5_rows(model, s3, "prefix")
    with inference(model):
        last, state = prime(model, rows, n, z, label_idx)  # the last row is draw()'s input
    return s3, last, state, z, label_idx, limit - len(s3), gen


def _check_min_strokes(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 0:
        raise ValueError(f"min_strokes must be an integer >= 0, got {k!r}")
    return int(k)


def complete(
    model: SketchModel,
    prefix_s3: np.ndarray,
    n: int,
    temperature: float = 0.8,
    *,
    z_from: Literal["prefix", "prior"] = "prefix",
    pen_temperature: float | None = None,
    labels: Any = None,
    max_len: int | None = None,
    min_strokes: int = 0,
    seed: int | None = None,
) -> list[np.ndarray]:
    """``n`` endings for an incomplete sketch (paper section 4.4, drawn at tau = 0.8 there);
    each result is the prefix followed by its ending, stroke-3 in pixels.

    The prefix is fed through the decoder (after the start token) to build the hidden state,
    then sampling continues from it. A VAE also needs ``z``: ``z_from="prefix"`` uses the
    mean encoding of the prefix (endings that agree with what is drawn), ``"prior"`` draws
    ``z ~ N(0, I)`` per ending (more varied). ``max_len`` bounds the whole sketch, prefix
    included (default ``model.config.max_seq_len``): a result that long ran out of room, a
    shorter one ended where the model put its end-of-sketch (an empty ending: the model
    thinks the drawing is finished). ``min_strokes``: each ending draws at least that many
    strokes before it may end the sketch (:func:`sketchrnn.models.decoding.forbid_early_end`:
    endings for a drawing the model takes as finished).
    """
    n = check_count(n)
    temperature = check_temperature(temperature)
    pen_temperature = None if pen_temperature is None else check_temperature(pen_temperature)
    min_strokes = _check_min_strokes(min_strokes)
    s3, last, state, z, label_idx, room, gen = _primed(
        model, prefix_s3, n, z_from, labels, max_len, seed
    )
    with inference(model):
        endings = draw(
            model, last, state, z, label_idx, room, temperature, pen_temperature, gen,
            min_strokes=min_strokes,
        )  # fmt: skip
    return [np.concatenate([s3, e]) for e in rows_to_pixels(model, endings)]


def complete_stream(
    model: SketchModel,
    prefix_s3: np.ndarray,
    temperature: float = 0.8,
    *,
    z_from: Literal["prefix", "prior"] = "prefix",
    pen_temperature: float | None = None,
    labels: Any = None,
    max_len: int | None = None,
    min_strokes: int = 0,
    seed: int | None = None,
) -> Iterator[np.ndarray]:
    """One ending of an incomplete sketch, a stroke at a time: the same ending as
    :func:`complete` with ``n=1`` and the same seed, each stroke yielded as stroke-3
    ``(k, 3)`` in pixels the moment its pen lifts (its last row has ``pen = 1``, also for a
    last stroke cut short by ``max_len``); the first offset is from the prefix's last point.

    The prefix is checked and read here, before the first stroke is asked for, so a drawing
    the model cannot take is an error of this call, not of the iteration. The iteration
    stops at the model's end-of-sketch or at ``max_len`` points in all, and inside
    :func:`stop_when` with :class:`DrawingCancelled` once its check is true.
    """
    temperature = check_temperature(temperature)
    pen_temperature = None if pen_temperature is None else check_temperature(pen_temperature)
    min_strokes = _check_min_strokes(min_strokes)
    _, last, state, z, label_idx, room, gen = _primed(
        model, prefix_s3, 1, z_from, labels, max_len, seed
    )
    scale = model_scale_factor(model)

    def strokes_of_the_ending() -> Iterator[np.ndarray]:
        stroke: list[list[float]] = []
        with inference(model):
            rows = stream(
                model, last, state, z, label_idx, room, temperature, pen_temperature, gen,
                min_strokes=min_strokes,
            )  # fmt: skip
            for row in rows:
                dx, dy, _, lifted, _ = row.tolist()
                stroke.append([dx * scale, dy * scale, 1.0 if lifted > 0.5 else 0.0])
                if lifted > 0.5:
                    yield np.asarray(stroke, dtype=np.float32)
                    stroke = []
        if stroke:
            stroke[-1][2] = 1.0  # the sketch ended (or ran out of room) mid-stroke
            yield np.asarray(stroke, dtype=np.float32)

    return strokes_of_the_ending()


# ----------------------------------------------------------------------------- input size

# fit_to_model_size brings an input's longer side to the median longer side of this many of
# the model's own sketches (tau 0.5, seed 0). Measured: raw Quick, Draw! drawings in their own
# pixels have a longer side of about 5x their class model's scale factor (median over the 500
# shared raw drawings of the 20 classes with a released model), but the models' own sketches
# about 6-16x (sheep 12.6, bicycle 10.2, rabbit 12.8, calendar 6.1, dog 16.2), and their
# likelihood of the raw drawings improves when those are enlarged 1.25-1.5x: the models were
# trained on larger drawings than the raw files here hold, so the model itself is the measure.
TYPICAL_EXTENT_SAMPLES = 16
TYPICAL_EXTENT_TEMPERATURE = 0.5
# Bounds of the typical extent in model units (times the scale factor), against untrained
# models whose samples are dots, end at once or fly off the page (the released models' are
# 6-16 units).
TYPICAL_EXTENT_BOUNDS = (3.0, 40.0)


def typical_extent(model: SketchModel) -> float:
    """Median longer side of the bounding boxes of a few of the model's own sketches, in
    pixels (a class-conditional model draws its classes in turn), kept within
    :data:`TYPICAL_EXTENT_BOUNDS` times the scale factor. A model that draws from images only
    (no prior to sample) has 10 units."""
    scale = model_scale_factor(model)
    lo, hi = (b * scale for b in TYPICAL_EXTENT_BOUNDS)
    if not model.draws_strokes or model.reads_images:
        return 10.0 * scale
    classes = model.num_classes
    labels = [i % classes for i in range(TYPICAL_EXTENT_SAMPLES)] if classes > 0 else None
    sketches = sample(
        model,
        TYPICAL_EXTENT_SAMPLES,
        temperature=TYPICAL_EXTENT_TEMPERATURE,
        labels=labels,
        seed=0,
    )
    sides = []
    for s3 in sketches:
        if len(s3):
            lo_x, hi_x, lo_y, hi_y = strokes.bounds(s3)
            sides.append(max(hi_x - lo_x, hi_y - lo_y))
    extent = float(np.median(sides)) if sides else 0.0
    return min(max(extent, lo), hi) if math.isfinite(extent) else 10.0 * scale


def fit_to_model_size(model: SketchModel, sketches: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Scale each stroke-3 sketch uniformly so its longer side is the model's
    :func:`typical_extent`: for drawing with a model trained on drawings of another size
    (e.g. a magenta.js model, in raw pixels, given a 0-255 simplified Quick, Draw! drawing)."""
    target = typical_extent(model)
    out = []
    for s3 in sketches:
        s3 = np.array(s3, dtype=np.float32, copy=True)
        lo_x, hi_x, lo_y, hi_y = strokes.bounds(s3)
        extent = max(hi_x - lo_x, hi_y - lo_y)
        if extent > 0 and target > 0:
            s3[:, 0:2] *= target / extent
        out.append(s3)
    return out


# ----------------------------------------------------------------------------- input scale

#: What :func:`scale_inputs` takes besides a positive number.
INPUT_SCALE_CHOICES = ("auto", "none")
# A factor for the inputs' offsets: beyond these a drawing is a dot or overflows the model.
INPUT_SCALE_BOUNDS = Bounds(low=1e-6, high=1e6)


def input_scale_factor(
    model: SketchModel,
    input_scale: str | float = "auto",
    model_path: str | os.PathLike | None = None,
) -> float | None:
    """The factor input sketches' offsets are multiplied by, or ``None`` for "fit each sketch
    to the model's size" (:func:`fit_to_model_size`).

    ``"none"`` is 1; a positive number (or its string) is itself; ``"auto"`` is ``None`` for a
    magenta.js model (``model_path`` a ``.json`` file, the model with a scale factor), whose
    units are the raw drawings' pixels while inputs are often a 0-255 box (simplified ndjson) or
    any other size, and 1 for models trained here, which take their own training files' units.
    ValueError for anything else.
    """
    if isinstance(input_scale, str):
        if input_scale == "none":
            return 1.0
        if input_scale == "auto":
            magenta = model_path is not None and is_magenta_json_model(model_path)
            return None if magenta and model.scale_factor else 1.0
        try:
            factor = float(input_scale)
        except ValueError:
            raise ValueError(
                f"input_scale must be auto, none or a number, got {input_scale!r}"
            ) from None
    elif isinstance(input_scale, bool) or not isinstance(input_scale, int | float):
        raise ValueError(f"input_scale must be auto, none or a number, got {input_scale!r}")
    else:
        factor = float(input_scale)
    problem = INPUT_SCALE_BOUNDS.problem(factor)
    if problem is not None:
        accepted = problem.removeprefix("must be ")
        raise ValueError(
            f"input_scale must be auto, none or a number {accepted}, got {input_scale!r}"
        )
    return factor


def scale_inputs(
    model: SketchModel,
    sketches: Sequence[np.ndarray],
    input_scale: str | float = "auto",
    model_path: str | os.PathLike | None = None,
) -> list[np.ndarray]:
    """Pixel stroke-3 sketches brought to the model's size by ``input_scale`` (see
    :func:`input_scale_factor`): each scaled by the factor, or fitted to the model's
    :func:`typical_extent`. New float32 arrays; ValueError for an invalid sketch or spec."""
    factor = input_scale_factor(model, input_scale, model_path)
    checked = [strokes.validate_stroke3(s, where=f"sketch {i}") for i, s in enumerate(sketches)]
    if factor is None:
        return fit_to_model_size(model, checked)
    out = []
    for s3 in checked:
        s3 = s3.copy()
        s3[:, 0:2] *= factor
        out.append(s3)
    return out


# ----------------------------------------------------------------------------- a canvas

#: The part of a canvas's shorter side that maps to the model's typical drawing size (a
#: person drawing a whole object on a canvas fills about this much of it).
DRAWING_FILL = 0.6
#: RDP epsilon in model units: 2 pixels (the Quick, Draw! simplification) over the scale
#: factors of the released models (57-152 pixels, median about 80), i.e. 2/64.
RDP_EPSILON_UNITS = 2.0 / 64.0
#: How much harder than the training data a drawing too long for the model may be simplified.
MAX_EPSILON_GROWTH = 8.0


def canvas_scale(
    model: SketchModel, canvas: tuple[float, float] | None, *, extent: float | None = None
) -> float:
    """Model pixels per canvas pixel for a drawing made on a ``(width, height)`` canvas:
    :data:`DRAWING_FILL` of its shorter side is the model's :func:`typical_extent` (pass
    ``extent`` when it is known: measuring it draws 16 sketches). 1 without a canvas (the
    drawing is in the model's own pixels).

    Mapping the canvas, not each drawing, keeps half a drawing half a drawing (fitting every
    input to the model's size, as :func:`fit_to_model_size` does, would blow a first stroke up
    to a whole sketch) and a drawing on a bigger canvas the same to the model.
    """
    if canvas is None:
        return 1.0
    width, height = (float(v) for v in canvas)
    if not (math.isfinite(width) and math.isfinite(height) and width > 0 and height > 0):
        raise ValueError(f"canvas must be two positive sizes, got {canvas!r}")
    target = typical_extent(model) if extent is None else float(extent)
    return target / (DRAWING_FILL * min(width, height))


def prepare_drawing(
    model: SketchModel, s3: np.ndarray, scale: float = 1.0, *, max_points: int | None = None
) -> np.ndarray:
    """A drawing as the model reads it: offsets times ``scale`` (:func:`canvas_scale`),
    moved to start at the origin (the training files carry no absolute start) and simplified
    stroke by stroke as the Quick, Draw! data was (Ramer-Douglas-Peucker to the line,
    epsilon :data:`RDP_EPSILON_UNITS` times the scale factor). Stroke-3 ``(k, 3)`` float32.

    With ``max_points``, a drawing still longer is simplified harder (epsilon times 1.5, up
    to :data:`MAX_EPSILON_GROWTH` times the training data's) before it is given up on: a
    model trained on short sketches can still take a drawing made with a steady hand. The
    result may still be longer; the caller decides what to do then.
    """
    s3 = strokes.validate_stroke3(s3)
    polylines = strokes.stroke3_to_polylines(s3)
    origin = polylines[0][0].copy()
    lines = [(p - origin) * float(scale) for p in polylines]
    epsilon = RDP_EPSILON_UNITS * model_scale_factor(model)
    limit = epsilon * MAX_EPSILON_GROWTH
    while True:
        out = strokes.polylines_to_stroke3([strokes.rdp_line_distance(p, epsilon) for p in lines])
        if max_points is None or len(out) <= max_points or epsilon * 1.5 > limit:
            return out
        epsilon *= 1.5


# ----------------------------------------------------------------------------- images


def _images(model: SketchModel, sketches: Sequence[np.ndarray]) -> torch.Tensor:
    """Drawings rendered as an image model's training images were (fitted, centred, 10%
    margin: :func:`sketchrnn.datasets.render_images`): ``(n, C, S, S)`` float32 in [0, 1]."""
    config: Any = model.config
    checked = [strokes.validate_stroke3(s, where=f"sketch {i}") for i, s in enumerate(sketches)]
    pixels = render_images(checked, int(config.image_size)).astype(np.float32) / 255.0
    images = torch.from_numpy(pixels).unsqueeze(1).to(model.device)
    return images.expand(-1, int(getattr(config, "in_channels", 1)), -1, -1).contiguous()


def embed(model: SketchModel, sketches: Sequence[np.ndarray]) -> np.ndarray:
    """One vector per pixel stroke-3 drawing, ``(n, D)`` float64: a sketch-rnn VAE's latent
    mean (:func:`encode`), or an image model's (SketchEmbedNet, Conv-VAE) embedding of the
    drawing's image. ValueError for a decoder-only model."""
    if len(sketches) == 0:
        raise ValueError("no sketches to embed")
    if model.reads_images:
        with inference(model):
            vectors = model.embed(_images(model, sketches))
    else:
        vectors = encode(model, sketches)
    return vectors.detach().cpu().numpy().astype(np.float64)


def imitate(
    model: SketchModel,
    s3: np.ndarray,
    n: int = 1,
    temperature: float = 0.5,
    *,
    max_len: int | None = None,
    seed: int | None = None,
) -> list[np.ndarray]:
    """An image model with a stroke decoder (SketchEmbedNet) draws the *image* of ``s3``
    ``n`` times, decoded from its embedding (the paper's use: pixels in, strokes out). The
    image has no size, so each drawing is scaled to the longer side of ``s3``; stroke-3 in
    the pixels of ``s3``."""
    if not (model.reads_images and model.draws_strokes):
        raise ValueError(
            "imitation needs a model that reads images and draws strokes (SketchEmbedNet)"
        )
    n = check_count(n)
    s3 = strokes.validate_stroke3(s3)
    with inference(model):
        z = model.embed(_images(model, [s3])).expand(n, -1).contiguous()
    drawn = decode(model, z, temperature=temperature, max_len=max_len, seed=seed)
    lo_x, hi_x, lo_y, hi_y = strokes.bounds(s3)
    target = max(hi_x - lo_x, hi_y - lo_y)
    out = []
    for d in drawn:
        lo_x, hi_x, lo_y, hi_y = strokes.bounds(d) if len(d) else (0.0, 0.0, 0.0, 0.0)
        side = max(hi_x - lo_x, hi_y - lo_y)
        out.append(strokes.normalize([d], side / target)[0] if side > 0 and target > 0 else d)
    return out
