"""How the API writes its answers: drawings as JSON rows, the empty ones listed and explained,
server-sent events for the streamed routes, and errors (every exception a JSON answer)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import numpy as np
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from sketchrnn.models.decoding import DrawingCancelled
from sketchrnn.strokes import SketchError
from sketchrnn.web.drawing import DrawingTooLong, Unsupported, empty_indices
from sketchrnn.web.inference import QueueFull
from sketchrnn.web.limits import ApiError
from sketchrnn.web.timeouts import RequestTimeout

__all__ = [
    "sketch_json",
    "drawings_json",
    "sse",
    "event_stream",
    "EMPTY_NOTE",
    "EMPTY_ENDINGS_NOTE",
    "EMPTY_ENDING_NOTE",
    "Handler",
    "as_api_error",
    "endpoint",
    "error_response",
]

log = logging.getLogger("sketchrnn.web")
Handler = Callable[[Request], Awaitable[Response]]

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


# ----------------------------------------------------------------------------- errors


def error_response(error: ApiError) -> JSONResponse:
    headers = {"Retry-After": "1"} if error.status == 503 else None
    if error.status == 408:  # the rest of the body may still be on its way: end the connection
        headers = {"Connection": "close"}
    return JSONResponse(error.to_json(), status_code=error.status, headers=headers)


def as_api_error(error: BaseException) -> ApiError:
    """The answer to an exception raised while serving a request."""
    if isinstance(error, ApiError):
        return error
    if isinstance(error, QueueFull):
        return ApiError(503, "busy", str(error))
    if isinstance(error, RequestTimeout):
        return ApiError(408, "request_timeout", str(error))
    if isinstance(error, DrawingTooLong):
        return ApiError(422, "too_many_points", str(error), points=error.points, limit=error.limit)
    if isinstance(error, Unsupported):
        return ApiError(422, "unsupported", str(error))
    if isinstance(error, SketchError | ValueError):
        return ApiError(422, "invalid_input", str(error))
    log.exception("internal error", exc_info=error)
    return ApiError(500, "internal", f"internal error ({type(error).__name__}); see the server log")


def endpoint(handler: Handler) -> Handler:
    """Answer any exception of ``handler`` as a JSON error."""

    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except (ClientDisconnect, DrawingCancelled):
            return Response(status_code=499)  # nobody reads it: the client has gone
        except Exception as error:  # every failure is an answer, never a dead server
            return error_response(as_api_error(error))

    wrapped.__name__ = handler.__name__
    return wrapped
