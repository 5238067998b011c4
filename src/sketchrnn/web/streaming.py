"""Completion one stroke at a time: a generator that yields each stroke the moment its pen lifts.

The decoding is :mod:`sketchrnn.models.decoding`'s (``prime`` reads the drawing in one call of
the decoder's cell, ``stream`` yields the model's points one by one); this module groups the
points into strokes in pixels for the page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from sketchrnn import generate, strokes
from sketchrnn.models.decoding import inference, prime, stream
from sketchrnn.web.capabilities import has_stroke_encoder, model_scale_factor

__all__ = ["stream_ending"]


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
    with inference(model):
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
        x, state = prime(model, rows.to(device), 1, z, labels)
        stopped = False

        def stop() -> bool:
            nonlocal stopped
            stopped = cancelled()
            return stopped

        room = limit - len(prefix)
        stroke: list[list[float]] = []
        for row in stream(
            model, x, state, z, labels, room, temperature, pen_temperature, gen, stop
        ):
            dx, dy, _, lifted, _ = row.tolist()
            stroke.append([dx * scale, dy * scale, 1.0 if lifted > 0.5 else 0.0])
            if lifted > 0.5:
                yield np.asarray(stroke, dtype=np.float32)
                stroke = []
        if stroke and not stopped:
            stroke[-1][2] = 1.0  # the sketch ended (or ran out of room) mid-stroke
            yield np.asarray(stroke, dtype=np.float32)
