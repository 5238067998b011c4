"""The batched decoding loop every stroke model draws with (SketchRNN, SketchEmbedNet):
:func:`decode` latents, :func:`sample` from the prior, and the pieces :mod:`sketchrnn.generate`
builds completion and the latent-space operations from.

The loop asks a model only for :meth:`~sketchrnn.models.interface.SketchModel.initial_state`
and :meth:`~sketchrnn.models.interface.SketchModel.decode_step`, and returns stroke-3 sketches
in pixels (:func:`sketchrnn.models.units.to_pixels`).

Temperature ``tau`` follows the paper (eq. 8): mixture weights and pen logits are divided by
``tau``, variances multiplied by it. ``tau = 0`` is allowed where sampling happens and means
greedy decoding (the most likely component's mean and the most likely pen state).

All sampling is batched: each sketch stops at its own end-of-sketch and leaves the batch, so
the decoder only runs for the sketches still drawing and the loop ends when the last one has.

A caller that may lose interest in a drawing (a web server whose client went away) wraps the
call in :func:`stop_when`: every decoding step first asks its check, and the drawing stops
with :class:`DrawingCancelled` at the next step, whichever :mod:`sketchrnn.generate`
function started it.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from sketchrnn import strokes
from sketchrnn.models.interface import SketchModel
from sketchrnn.models.units import model_scale_factor, to_pixels
from sketchrnn.nn import mixture
from sketchrnn.progress import progress_bar

__all__ = [
    "DRAW_BATCH",
    "DrawingCancelled",
    "stop_when",
    "decode",
    "sample",
    "draw",
    "prime",
    "stream",
    "inference",
    "rows_to_pixels",
    "check_temperature",
    "check_count",
    "max_length",
    "seeded_generator",
    "class_indices",
]


# ----------------------------------------------------------------------------- checks


def check_temperature(tau: float, name: str = "temperature") -> float:
    """``tau`` as a float; ValueError unless it is finite and >= 0 (0 = greedy)."""
    tau = float(tau)
    if not math.isfinite(tau) or tau < 0:
        raise ValueError(f"{name} must be >= 0 (0 = greedy), got {tau}")
    return tau


def check_count(n: int, name: str = "n") -> int:
    """``n`` as an int; ValueError unless it is a positive integer."""
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"{name} must be a positive integer, got {n!r}")
    return int(n)


def max_length(model: SketchModel, max_len: int | None) -> int:
    """``max_len``, or the model's ``config.max_seq_len`` when it is ``None``."""
    if max_len is None:
        return int(model.config.max_seq_len)
    return check_count(max_len, "max_len")


def seeded_generator(model: SketchModel, seed: int | None) -> torch.Generator | None:
    """A generator on the model's device seeded with ``seed`` (``None``: the global RNG)."""
    if seed is None:
        return None
    return torch.Generator(device=model.device).manual_seed(int(seed))


def class_indices(model: SketchModel, labels: Any, n: int) -> torch.Tensor | None:
    """Class indices ``(n,)`` for a class-conditional model (names or ints, one or ``n``)."""
    num_classes = model.num_classes
    if num_classes <= 0:
        if labels is not None:
            raise ValueError("labels given, but the model is not class-conditional")
        return None
    if labels is None:
        raise ValueError(
            f"the model is class-conditional ({num_classes} classes): pass labels "
            "(class indices or names)"
        )
    if isinstance(labels, torch.Tensor | np.ndarray):
        labels = labels.reshape(-1).tolist()
    items = [labels] if isinstance(labels, int | str | np.integer) else list(labels)
    classes = model.classes
    idx = []
    for item in items:
        if isinstance(item, str):
            if item not in classes:
                raise ValueError(f"unknown class {item!r}; the model knows {classes}")
            item = classes.index(item)
        if not 0 <= int(item) < num_classes:
            raise ValueError(f"class index {item} out of range [0, {num_classes})")
        idx.append(int(item))
    if len(idx) == 1:
        idx = idx * n
    if len(idx) != n:
        raise ValueError(f"expected 1 or {n} labels, got {len(idx)}")
    return torch.tensor(idx, dtype=torch.long, device=model.device)


# ----------------------------------------------------------------------------- stopping


class DrawingCancelled(Exception):
    """A drawing stopped before it ended because the :func:`stop_when` check said so."""


# The check of the innermost stop_when block of this thread (or asyncio task); a context
# variable rather than an argument so that every drawing function can be stopped without
# each of them, and each caller between, passing it on.
_STOP_CHECK: contextvars.ContextVar[Callable[[], bool] | None] = contextvars.ContextVar(
    "sketchrnn_stop_check", default=None
)


@contextlib.contextmanager
def stop_when(check: Callable[[], bool]) -> Iterator[None]:
    """Within the block, each decoding step (of :func:`draw` and :func:`stream`, so of every
    :mod:`sketchrnn.generate` function) first calls ``check()`` and raises
    :class:`DrawingCancelled` once it returns true."""
    token = _STOP_CHECK.set(check)
    try:
        yield
    finally:
        _STOP_CHECK.reset(token)


def _stop_if_asked() -> None:
    check = _STOP_CHECK.get()
    if check is not None and check():
        raise DrawingCancelled("the drawing was cancelled (its caller stopped waiting for it)")


# ----------------------------------------------------------------------------- the loop


@contextlib.contextmanager
def inference(model: SketchModel) -> Iterator[None]:
    """Eval mode (no dropout) and no gradients, restoring the model's mode afterwards, so
    that drawing in the middle of training does not switch training off."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def _select(state: Any, keep: torch.Tensor) -> Any:
    """The rows ``keep`` of every tensor in a decoder state (tensors are ``(batch, ...)``)."""
    if isinstance(state, torch.Tensor):
        return state.index_select(0, keep)
    if isinstance(state, tuple | list):
        return type(state)(_select(s, keep) for s in state)
    return state


def forbid_early_end(
    params: mixture.MixtureParams, drawn: torch.Tensor, min_strokes: int
) -> mixture.MixtureParams:
    """``params`` where the rows that have drawn fewer than ``min_strokes`` strokes
    (``drawn`` ``(B,)``) cannot end the sketch: their end-of-sketch pen logit is -inf, so
    the pen is drawn from the other two states renormalised (for a drawing the model takes
    as finished but should go on; the JavaScript runtime's ``minStrokes``)."""
    if min_strokes <= 0:
        return params
    early = (drawn < min_strokes).unsqueeze(-1) & (torch.arange(3, device=drawn.device) == 2)
    pen = params.pen_logits.masked_fill(early, float("-inf"))
    return params._replace(pen_logits=pen)


def draw(
    model: SketchModel,
    x: torch.Tensor,
    state: Any,
    z: torch.Tensor | None,
    labels: torch.Tensor | None,
    max_len: int,
    temperature: float,
    pen_temperature: float | None,
    generator: torch.Generator | None,
    *,
    min_strokes: int = 0,
) -> list[np.ndarray]:
    """Run the decoder from input rows ``x`` ``(B, 5)`` and ``state`` until every sketch ends.

    Returns ``B`` arrays of sampled stroke-5 rows ``(k, 5)`` in normalised units, each up to
    and excluding its end-of-sketch row (at most ``max_len`` rows). With ``min_strokes`` a
    sketch may not end before it has drawn that many strokes (:func:`forbid_early_end`).
    Call it in :func:`inference`.
    """
    batch = x.shape[0]
    active = torch.arange(batch, device=x.device)  # original index of each row still drawing
    drawn = torch.zeros(batch, device=x.device)  # strokes each sketch has drawn
    step_rows, step_owners = [], []
    for _ in range(max_len):
        _stop_if_asked()
        params, state = model.decode_step(x, state, z=z, labels=labels)
        params = forbid_early_end(params, drawn, min_strokes)
        x = mixture.sample(params, temperature, pen_temperature, generator=generator)
        drawn = drawn + x[:, 3]
        ended = x[:, 4] > 0.5
        going = torch.nonzero(~ended).squeeze(1)
        step_rows.append(x[going])
        step_owners.append(active[going])
        if going.numel() < active.numel():
            if going.numel() == 0:
                break
            active, x, drawn = active[going], x[going], drawn[going]
            state = _select(state, going)
            z = None if z is None else z[going]
            labels = None if labels is None else labels[going]
    # Group the recorded rows by sketch; a stable sort keeps each sketch's rows in order.
    rows = torch.cat(step_rows).cpu().numpy()
    owners = torch.cat(step_owners).cpu().numpy()
    order = np.argsort(owners, kind="stable")
    counts = np.bincount(owners, minlength=batch)
    return np.split(rows[order], np.cumsum(counts)[:-1])


def prime(
    model: SketchModel,
    rows: torch.Tensor,
    n: int,
    z: torch.Tensor | None,
    labels: torch.Tensor | None,
) -> tuple[torch.Tensor, Any]:
    """The decoder ready to continue a prefix ``n`` times: ``rows`` ``(T, 5)`` are the prefix's
    stroke-5 rows in normalised units. The state reads the start token and every row but the
    last in one :meth:`~sketchrnn.models.interface.SketchModel.read_prefix` call; the last row
    ``(n, 5)`` is the input of the first new step. Returns ``(last_row, state)`` for
    :func:`draw` or :func:`stream`. Call it in :func:`inference`."""
    start = torch.from_numpy(strokes.START_TOKEN).to(rows.device).unsqueeze(0)
    inputs = torch.cat([start, rows[:-1]]).unsqueeze(0).expand(n, -1, -1)
    state = model.read_prefix(inputs, model.initial_state(z, n), z=z, labels=labels)
    return rows[-1].expand(n, 5).contiguous(), state


def stream(
    model: SketchModel,
    x: torch.Tensor,
    state: Any,
    z: torch.Tensor | None,
    labels: torch.Tensor | None,
    max_len: int,
    temperature: float,
    pen_temperature: float | None,
    generator: torch.Generator | None,
    *,
    min_strokes: int = 0,
) -> Iterator[np.ndarray]:
    """:func:`draw` for one sketch (``x`` ``(1, 5)``), yielding each sampled stroke-5 row
    ``(5,)`` (normalised units) the moment it is drawn: for a page that shows the model's
    strokes as they come. Stops at end-of-sketch (not yielded) or after ``max_len`` rows;
    :class:`DrawingCancelled` as soon as a :func:`stop_when` check is true (asked before each
    step). Call it in :func:`inference`."""
    drawn = torch.zeros(1, device=x.device)
    for _ in range(max_len):
        _stop_if_asked()
        params, state = model.decode_step(x, state, z=z, labels=labels)
        params = forbid_early_end(params, drawn, min_strokes)
        x = mixture.sample(params, temperature, pen_temperature, generator=generator)
        drawn = drawn + x[:, 3]
        row = x[0].cpu().numpy()
        if row[4] > 0.5:
            return
        yield row


def rows_to_pixels(model: SketchModel, rows: list[np.ndarray]) -> list[np.ndarray]:
    """Stroke-5 rows in normalised units (what :func:`draw` returns) -> stroke-3 in pixels."""
    s3 = [strokes.stroke5_to_stroke3(r) if len(r) else np.zeros((0, 3), np.float32) for r in rows]
    return to_pixels(model, s3)


# ----------------------------------------------------------------------------- sampling

# More sketches than this are drawn in batches of it, so memory stays bounded and a progress
# bar moves.
DRAW_BATCH = 256


def _batches(n: int, progress: bool) -> Iterator[tuple[int, int, int]]:
    """``(k, start, stop)`` of each batch of :data:`DRAW_BATCH` among ``n`` sketches, counted
    on a progress bar on stderr when ``progress`` is true."""
    bar = progress_bar(total=n, unit="sketch", desc="drawing", disable=not progress)
    try:
        for k, start in enumerate(range(0, n, DRAW_BATCH)):
            stop = min(start + DRAW_BATCH, n)
            yield k, start, stop
            bar.update(stop - start)
    finally:
        bar.close()


def decode(
    model: SketchModel,
    z: torch.Tensor | None,
    n: int | None = None,
    *,
    temperature: float = 0.5,
    pen_temperature: float | None = None,
    labels: Any = None,
    max_len: int | None = None,
    seed: int | None = None,
    progress: bool = False,
) -> list[np.ndarray]:
    """Draw one sketch per latent row ``z`` ``(B, z_size)`` (or ``n`` for a decoder-only
    model, ``z=None``). Returns stroke-3 sketches in pixels. More than :data:`DRAW_BATCH` are
    drawn that many at a time (batch ``k`` seeded with ``seed + k``), with a progress bar on
    stderr when ``progress``."""
    model_scale_factor(model)  # no pixels without it: fail before drawing
    temperature = check_temperature(temperature)
    if pen_temperature is not None:
        pen_temperature = check_temperature(pen_temperature, "pen_temperature")
    if z is not None:
        if not model.has_encoder:
            raise ValueError("z given, but the model is decoder-only (no latent space)")
        z = z.to(model.device, dtype=torch.float32)
        if z.ndim == 1:
            z = z.unsqueeze(0)
        if z.ndim != 2 or z.shape[1] != model.config.z_size:
            raise ValueError(f"z must be (n, {model.config.z_size}), got {tuple(z.shape)}")
        n = z.shape[0]
    elif model.has_encoder:
        raise ValueError("the model is a VAE: decode needs z (use sample() to draw z ~ N(0, I))")
    if n is None:
        raise ValueError("decode needs n for a decoder-only model")
    n = check_count(n)
    label_idx, limit = class_indices(model, labels, n), max_length(model, max_len)
    if n > DRAW_BATCH:
        out: list[np.ndarray] = []
        for k, start, stop in _batches(n, progress):
            out += decode(
                model,
                None if z is None else z[start:stop],
                stop - start,
                temperature=temperature,
                pen_temperature=pen_temperature,
                labels=None if label_idx is None else label_idx[start:stop],
                max_len=limit,
                seed=None if seed is None else seed + k,
            )
        return out
    x = torch.from_numpy(np.tile(strokes.START_TOKEN, (n, 1))).to(model.device)
    with inference(model):
        state = model.initial_state(z, n)
        gen = seeded_generator(model, seed)
        rows = draw(model, x, state, z, label_idx, limit, temperature, pen_temperature, gen)
    return rows_to_pixels(model, rows)


def sample(
    model: SketchModel,
    n: int,
    *,
    temperature: float = 0.5,
    pen_temperature: float | None = None,
    z: torch.Tensor | None = None,
    labels: Any = None,
    max_len: int | None = None,
    seed: int | None = None,
    progress: bool = False,
) -> list[np.ndarray]:
    """``n`` unconditional sketches, stroke-3 in pixels.

    A decoder-only model draws from its own prior; a model with a latent space uses ``z``
    ``(n, z_size)`` when given, else ``z ~ N(0, I)``. ``labels`` (class indices or names, one
    or ``n``) are needed for a class-conditional model. ``max_len`` defaults to
    ``model.config.max_seq_len``. A fixed ``seed`` makes the result reproducible;
    ``temperature=0`` is greedy and deterministic. More than :data:`DRAW_BATCH` are drawn
    that many at a time (batch ``k`` seeded with ``seed + 2k``: it draws its ``z`` too), with a
    progress bar on stderr when ``progress``.
    """
    n = check_count(n)
    if z is not None and z.shape[0] != n:
        raise ValueError(f"z has {z.shape[0]} rows, expected n={n}")
    if n > DRAW_BATCH:
        label_idx = class_indices(model, labels, n)
        out: list[np.ndarray] = []
        for k, start, stop in _batches(n, progress):
            out += sample(
                model,
                stop - start,
                temperature=temperature,
                pen_temperature=pen_temperature,
                z=None if z is None else z[start:stop],
                labels=None if label_idx is None else label_idx[start:stop],
                max_len=max_len,
                seed=None if seed is None else seed + 2 * k,
            )
        return out
    if model.has_encoder and z is None:
        gen = seeded_generator(model, seed)
        z = torch.randn(n, model.config.z_size, generator=gen, device=model.device)
    return decode(
        model,
        z,
        n,
        temperature=temperature,
        pen_temperature=pen_temperature,
        labels=labels,
        max_len=max_len,
        seed=None if seed is None else seed + 1,
    )
