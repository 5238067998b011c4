"""How the API writes its answers: drawings as JSON rows, the empty ones listed and explained,
and server-sent events for the streamed routes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import numpy as np
from starlette.responses import StreamingResponse

from sketchrnn.web.drawing import empty_indices

__all__ = [
    "sketch_json",
    "drawings_json",
    "sse",
    "event_stream",
    "EMPTY_NOTE",
    "EMPTY_ENDINGS_NOTE",
    "EMPTY_ENDING_NOTE",
]

# What an answer says of drawings that came out empty.
EMPTY_NOTE = (
    "{count} of the drawings are empty: the model ended them at their first step (it takes "
    "them as finished); ask again with another seed or temperature"
)
EMPTY_ENDINGS_NOTE = (
    "{count} of the endings are empty: the model ended the drawing at once, so it takes the "
    "drawing as finished; draw more, or ask again with another seed or a higher temperature"
)
EMPTY_ENDING_NOTE = (
    "the ending is empty: the model ended the drawing at once, so it takes the drawing as "
    "finished; draw more, or ask again with another seed or a higher temperature"
)


def sketch_json(s3: np.ndarray) -> list[list[float]]:
    """A stroke-3 array as JSON rows ``[dx, dy, pen]``, offsets to 0.01 pixel."""
    a = np.asarray(s3, dtype=np.float64).reshape(-1, 3)
    return [[round(dx, 2), round(dy, 2), int(p > 0.5)] for dx, dy, p in a.tolist()]


def drawings_json(
    model: str, sketches: Sequence[np.ndarray], note: str = EMPTY_NOTE, **extra: Any
) -> dict[str, Any]:
    """An answer of drawings: ``{"model", ..., "sketches", "empty": [indices]}``, with a
    ``"note"`` saying why when some are empty."""
    empty = empty_indices(sketches)
    out: dict[str, Any] = {
        "model": model,
        **extra,
        "sketches": [sketch_json(s) for s in sketches],
        "empty": empty,
    }
    if empty:
        out["note"] = note.format(count=len(empty))
    return out


def sse(event: str, data: Any) -> str:
    """One server-sent event."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def event_stream(events: AsyncIterator[str]) -> StreamingResponse:
    """A ``text/event-stream`` answer of ``events`` (:func:`sse`), never cached or buffered."""
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
