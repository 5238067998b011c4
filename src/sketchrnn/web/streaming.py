"""Completion one stroke at a time: a generator that yields each stroke the moment its pen lifts.

This duplicates the decoding loop of :mod:`sketchrnn.generate` (``_draw``, batched, which
returns only when every sketch has ended) for a single sketch, because the page shows the
model's strokes as they are drawn. Once the model redesign has landed, the loop belongs in
``generate.py`` / ``models/decoding.py`` as a streaming variant of ``draw``, with this module
calling it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from sketchrnn import generate, strokes
from sketchrnn.nn import mixture
from sketchrnn.web.capabilities import has_stroke_encoder, model_scale_factor

__all__ = ["stream_ending", "prime"]


@contextlib.contextmanager
def _inference(model: Any) -> Iterator[None]:
    """Eval mode and no gradients, restoring the model's mode afterwards (as generate does)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def prime(
    model: Any,
    inputs: torch.Tensor,
    state: Any,
    z: torch.Tensor | None,
    labels: torch.Tensor | None,
) -> Any:
    """The decoder state after reading ``inputs`` ``(T, 5)`` (teacher forcing) from ``state``
    for one sketch.

    A SketchRNN's decoder cell reads the whole sequence in one call (PyTorch's fused LSTM for
    the plain cell, several times faster than ``T`` single steps: it is most of the pen-up
    latency for a long drawing); other models are stepped with ``decode_step``. Both give the
    same state (tests/web/test_streaming.py checks it per cell type).
    """
    steps = inputs.shape[0]
    decoder = getattr(model, "decoder", None)
    cell = getattr(decoder, "cell", None)
    conditioning = getattr(model, "_conditioning", None)
    if steps > 1 and cell is not None and callable(conditioning) and not model.training:
        cond = conditioning(z, labels)
        x = inputs.unsqueeze(0)
        if cond is not None:
            x = torch.cat([x, cond.unsqueeze(1).expand(-1, steps, -1)], dim=-1)
        _, state = cell(x, state)
        return state
    for row in inputs:
        _, state = model.decode_step(row.unsqueeze(0), state, z=z, labels=labels)
    return state


def stream_ending(
    model: Any,
    prefix: np.ndarray,
    *,
    temperature: float = 0.5,
    pen_temperature: float | None = None,
    label: int | None = None,
    z_from: str = "prefix",
    max_len: int | None = None,
    seed: int | None = None,
    cancelled: Callable[[], bool] = lambda: False,
) -> Iterator[np.ndarray]:
    """Continue ``prefix`` (stroke-3 ``(n, 3)`` in the model's pixels), yielding each new
    stroke as stroke-3 ``(k, 3)`` in pixels (its last row has ``pen = 1``) as soon as the pen
    lifts; the first row of the first stroke is an offset from the prefix's last point.

    Stops at the model's end-of-sketch, at ``max_len`` points in all (prefix included; the
    model's ``max_seq_len`` by default), or as soon as ``cancelled()`` is true (checked before
    each step: an interrupted request stops costing compute at once). A VAE's ``z`` is the
    prefix's mean encoding (``z_from="prefix"``) or a draw from the prior (``"prior"``).
    """
    prefix = strokes.validate_stroke3(prefix, where="prefix")
    limit = int(model.config.max_seq_len) if max_len is None else int(max_len)
    if len(prefix) >= limit:
        raise ValueError(
            f"the drawing has {len(prefix)} points; it must be shorter than {limit} to leave "
            "room for an ending"
        )
    if z_from not in ("prefix", "prior"):
        raise ValueError(f"z_from must be 'prefix' or 'prior', got {z_from!r}")
    temperature = float(temperature)
    scale = model_scale_factor(model)
    device = next(model.parameters()).device
    gen = None if seed is None else torch.Generator(device=device).manual_seed(int(seed))
    with _inference(model):
        z = None
        if has_stroke_encoder(model):
            if z_from == "prefix":
                z = generate.encode(model, [prefix]).reshape(1, -1)
            else:
                z_size = int(model.config.z_size)
                z = torch.randn(1, z_size, generator=gen, device=device)
        labels = None if label is None else torch.tensor([int(label)], device=device)
        normalised = strokes.normalize([prefix], scale)[0]
        rows = torch.from_numpy(strokes.stroke3_to_stroke5(normalised, n_max=len(prefix)))
        rows = rows.to(device)
        start = torch.from_numpy(strokes.START_TOKEN).to(device).unsqueeze(0)
        state = model.initial_state(z, 1)
        state = prime(model, torch.cat([start, rows[:-1]]), state, z, labels)
        x = rows[-1:].clone()
        stroke: list[list[float]] = []
        for _ in range(limit - len(prefix)):
            if cancelled():
                return
            params, state = model.decode_step(x, state, z=z, labels=labels)
            x = mixture.sample(params, temperature, pen_temperature, generator=gen)
            dx, dy, _, lifted, ended = x[0].tolist()
            if ended > 0.5:
                break
            stroke.append([dx * scale, dy * scale, 1.0 if lifted > 0.5 else 0.0])
            if lifted > 0.5:
                yield np.asarray(stroke, dtype=np.float32)
                stroke = []
        if stroke and not cancelled():
            stroke[-1][2] = 1.0  # the sketch ended (or ran out of room) mid-stroke
            yield np.asarray(stroke, dtype=np.float32)
