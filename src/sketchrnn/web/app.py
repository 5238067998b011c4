"""The ASGI app: the page, its static files and the JSON API (docs/web-api.md).

Handlers only read and check the request (:mod:`sketchrnn.web.limits`), hand the model call
to the inference queue (:mod:`sketchrnn.web.inference`) and write the answer; the drawing is
:mod:`sketchrnn.web.drawing`'s. Every error is a JSON object ``{"error": {"code", "message"}}``
with a 4xx status (503 when the queue is full), and the server keeps serving after it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from sketchrnn.strokes import SketchError
from sketchrnn.web import drawing
from sketchrnn.web.drawing import DrawingTooLong, ServedModel, Unsupported
from sketchrnn.web.inference import InferenceQueue, QueueFull
from sketchrnn.web.limits import ApiError, Fields, Limits, parse_json

__all__ = ["create_app", "STATIC_DIR"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
log = logging.getLogger("sketchrnn.web")

# The page loads nothing from anywhere but this server.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; "
        "script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

Handler = Callable[[Request], Awaitable[Response]]

# Fields every drawing endpoint takes besides its own.
_COMMON = ("model", "temperature", "seed", "max_len", "label", "canvas")


# ----------------------------------------------------------------------------- helpers


def sketch_json(s3: np.ndarray) -> list[list[float]]:
    """A stroke-3 array as JSON rows ``[dx, dy, pen]``, offsets to 0.01 pixel."""
    a = np.asarray(s3, dtype=np.float64).reshape(-1, 3)
    return [[round(dx, 2), round(dy, 2), int(p > 0.5)] for dx, dy, p in a.tolist()]


def _error_response(error: ApiError) -> JSONResponse:
    headers = {"Retry-After": "1"} if error.status == 503 else None
    return JSONResponse(error.to_json(), status_code=error.status, headers=headers)


def as_api_error(error: BaseException) -> ApiError:
    """The answer to an exception raised while serving a request."""
    if isinstance(error, ApiError):
        return error
    if isinstance(error, QueueFull):
        return ApiError(503, "busy", str(error))
    if isinstance(error, DrawingTooLong):
        return ApiError(422, "too_many_points", str(error), points=error.points, limit=error.limit)
    if isinstance(error, Unsupported):
        return ApiError(422, "unsupported", str(error))
    if isinstance(error, SketchError | ValueError):
        return ApiError(422, "invalid_input", str(error))
    log.exception("internal error", exc_info=error)
    return ApiError(500, "internal", f"internal error ({type(error).__name__}); see the server log")


def _endpoint(handler: Handler) -> Handler:
    """Answer any exception of ``handler`` as a JSON error."""

    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except ClientDisconnect:
            return Response(status_code=499)
        except Exception as error:  # every failure is an answer, never a dead server
            return _error_response(as_api_error(error))

    wrapped.__name__ = handler.__name__
    return wrapped


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing more than ``limit`` bytes (413) without reading it all."""
    declared = request.headers.get("content-length")
    too_big = ApiError(
        413,
        "body_too_large",
        f"the request body is larger than {limit} bytes; send a smaller drawing",
        limit=limit,
    )
    if declared is not None:
        try:
            if int(declared) > limit:
                raise too_big
        except ValueError:
            raise ApiError(400, "bad_request", "invalid Content-Length header") from None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


class _Api:
    """The handlers, bound to one table of models, one queue and one set of limits."""

    def __init__(self, table: dict[str, ServedModel], queue: InferenceQueue, limits: Limits):
        self.table, self.queue, self.limits = table, queue, limits

    async def fields(self, request: Request, allowed: tuple[str, ...]) -> Fields:
        body = parse_json(await read_body(request, self.limits.max_body_bytes))
        return Fields(body, allowed, self.limits)

    def model(self, fields: Fields) -> ServedModel:
        name = fields.string("model", required=True)
        served = self.table.get(name)  # a name in the server's own table, never a path
        if served is None:
            raise ApiError(
                404,
                "unknown_model",
                f"unknown model {name!r}; this server has {', '.join(sorted(self.table))}",
                models=sorted(self.table),
            )
        return served

    def common(self, fields: Fields, served: ServedModel, temperature: float) -> dict[str, Any]:
        info = served.info
        return {
            "temperature": fields.temperature(temperature),
            "seed": fields.seed(),
            "max_len": fields.max_len(info.max_seq_len),
        }

    def label(self, fields: Fields, served: ServedModel) -> int | None:
        return fields.label(served.info.classes, served.info.num_classes)

    # ------------------------------------------------------------------------- routes

    async def models(self, request: Request) -> Response:
        limits = self.limits
        return JSONResponse(
            {
                "models": [m.info.to_json() for m in self.table.values()],
                "limits": {
                    "max_body_bytes": limits.max_body_bytes,
                    "max_points": limits.max_points,
                    "max_n": limits.max_n,
                    "max_grid_size": limits.max_grid_size,
                    "max_temperature": limits.max_temperature,
                    "max_concepts": limits.max_concepts,
                },
            }
        )

    async def health(self, request: Request) -> Response:
        return JSONResponse(
            {"status": "ok", "models": len(self.table), "queue": self.queue.stats()}
        )

    async def sample(self, request: Request) -> Response:
        f = await self.fields(request, (*_COMMON, "n"))
        served = self.model(f)
        served.require("sample")
        kw = self.common(f, served, 0.5)
        n, label, canvas = f.count(), self.label(f, served), f.canvas()
        out = await self.queue.submit(
            lambda: drawing.sample(served, n, label=label, canvas=canvas, **kw)
        )
        return JSONResponse({"model": served.name, "sketches": [sketch_json(s) for s in out]})

    async def complete(self, request: Request) -> Response:
        f = await self.fields(request, (*_COMMON, "sketch", "n", "z_from"))
        served = self.model(f)
        served.require("complete")
        kw = self.common(f, served, 0.5)
        sketch, n, label = f.sketch("sketch"), f.count(), self.label(f, served)
        z_from, canvas = f.choice("z_from", ("prefix", "prior"), "prefix"), f.canvas()
        prefix, endings = await self.queue.submit(
            lambda: drawing.complete(
                served, sketch, n, label=label, z_from=z_from, canvas=canvas, **kw
            )
        )
        return JSONResponse(
            {
                "model": served.name,
                "prefix": sketch_json(prefix),
                "endings": [sketch_json(e) for e in endings],
                "sketches": [sketch_json(np.concatenate([prefix, e])) for e in endings],
            }
        )

    async def complete_stream(self, request: Request) -> Response:
        f = await self.fields(request, (*_COMMON, "sketch", "z_from"))
        served = self.model(f)
        served.require("complete")
        kw = self.common(f, served, 0.5)
        sketch, label = f.sketch("sketch"), self.label(f, served)
        z_from, canvas = f.choice("z_from", ("prefix", "prior"), "prefix"), f.canvas()
        started = time.perf_counter()

        def make(cancel):
            # Scaled, simplified and checked on the worker, before the stream starts: a
            # drawing the model cannot take is a plain 4xx answer, not an event in a 200.
            points, strokes = drawing.stream_complete(
                served,
                sketch,
                label=label,
                z_from=z_from,
                canvas=canvas,
                cancelled=cancel.is_set,
                **kw,
            )
            yield points
            yield from strokes

        stream = self.queue.stream(make)
        try:
            prefix_points = await stream.__anext__()
        except BaseException:
            stream.cancel()
            raise

        async def events():
            strokes, points = 0, 0
            try:
                yield _sse("start", {"model": served.name, "prefix_points": prefix_points})
                async for stroke in stream:
                    yield _sse("stroke", {"index": strokes, "stroke": sketch_json(stroke)})
                    strokes += 1
                    points += len(stroke)
                elapsed = round((time.perf_counter() - started) * 1000.0, 1)
                yield _sse("done", {"strokes": strokes, "points": points, "ms": elapsed})
            except Exception as error:
                yield _sse("error", as_api_error(error).to_json())
            finally:
                stream.cancel()  # the client left, or the stream ended: stop the worker

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def reconstruct(self, request: Request) -> Response:
        f = await self.fields(request, (*_COMMON, "sketch", "n"))
        served = self.model(f)
        served.require("reconstruct")
        kw = self.common(f, served, 0.3)
        sketch, n = f.sketch("sketch"), f.count(default=6)
        label, canvas = self.label(f, served), f.canvas()
        out = await self.queue.submit(
            lambda: drawing.reconstruct(served, sketch, n, label=label, canvas=canvas, **kw)
        )
        return JSONResponse({"model": served.name, "sketches": [sketch_json(s) for s in out]})

    async def interpolate(self, request: Request) -> Response:
        f = await self.fields(request, (*_COMMON, "a", "b", "steps", "method"))
        served = self.model(f)
        served.require("interpolate")
        kw = self.common(f, served, 0.1)
        a, b = f.sketch("a"), f.sketch("b")
        steps = f.integer("steps", 7, 1, self.limits.max_n)
        method = f.choice("method", ("slerp", "linear"), "slerp")
        label, canvas = self.label(f, served), f.canvas()
        out = await self.queue.submit(
            lambda: drawing.interpolate(
                served, a, b, steps, method=method, label=label, canvas=canvas, **kw
            )
        )
        return JSONResponse({"model": served.name, "sketches": [sketch_json(s) for s in out]})

    async def grid(self, request: Request) -> Response:
        f = await self.fields(request, (*_COMMON, "corners", "size", "method"))
        served = self.model(f)
        served.require("interpolate")
        kw = self.common(f, served, 0.1)
        corners = f.sketches("corners", 4, 4)
        size = f.integer("size", 5, 2, self.limits.max_grid_size)
        method = f.choice("method", ("slerp", "linear"), "slerp")
        label, canvas = self.label(f, served), f.canvas()
        out = await self.queue.submit(
            lambda: drawing.grid(
                served, corners, size, method=method, label=label, canvas=canvas, **kw
            )
        )
        return JSONResponse(
            {"model": served.name, "size": size, "sketches": [sketch_json(s) for s in out]}
        )

    async def imitate(self, request: Request) -> Response:
        f = await self.fields(request, ("model", "temperature", "seed", "max_len", "sketch", "n"))
        served = self.model(f)
        served.require("imitate")
        kw = self.common(f, served, 0.3)
        sketch, n = f.sketch("sketch"), f.count(default=4)
        out = await self.queue.submit(lambda: drawing.imitate(served, sketch, n, **kw))
        return JSONResponse({"model": served.name, "sketches": [sketch_json(s) for s in out]})

    async def embed(self, request: Request) -> Response:
        f = await self.fields(request, ("model", "sketches", "canvas"))
        served = self.model(f)
        served.require("embed")
        sketches = f.sketches("sketches", 1, self.limits.max_sketches)
        canvas = f.canvas()
        vectors = await self.queue.submit(lambda: drawing.embed(served, sketches, canvas=canvas))
        return JSONResponse(
            {
                "model": served.name,
                "size": int(vectors.shape[1]),
                "embeddings": np.round(vectors, 6).tolist(),
            }
        )

    async def classify(self, request: Request) -> Response:
        f = await self.fields(request, ("model", "concepts", "query", "queries", "canvas"))
        served = self.model(f)
        served.require("classify")
        concepts = self._concepts(f)
        if f.has("query") == f.has("queries"):
            raise ApiError(422, "invalid_field", "give either query (one drawing) or queries")
        queries: list[np.ndarray]
        if f.has("query"):
            queries = [f.sketch("query")]
        else:
            queries = f.sketches("queries", 1, self.limits.max_sketches)
        canvas = f.canvas()
        out = await self.queue.submit(
            lambda: drawing.classify(served, concepts, queries, canvas=canvas)
        )
        predictions = []
        for probabilities in out:
            best = max(probabilities, key=probabilities.__getitem__)
            predictions.append(
                {
                    "label": best,
                    "probability": round(probabilities[best], 4),
                    "probabilities": {k: round(v, 4) for k, v in probabilities.items()},
                }
            )
        return JSONResponse({"model": served.name, "predictions": predictions})

    def _concepts(self, f: Fields) -> list[tuple[str, list[np.ndarray]]]:
        value = f.body.get("concepts")
        hi = self.limits.max_concepts
        if not isinstance(value, list) or not 2 <= len(value) <= hi:
            raise ApiError(
                422,
                "invalid_field",
                f"concepts: must be an array of 2 to {hi} objects "
                '{"name": ..., "examples": [drawings]}',
                field="concepts",
            )
        out, names = [], set()
        for i, concept in enumerate(value):
            where = f"concepts[{i}]"
            if not isinstance(concept, dict) or set(concept) - {"name", "examples"}:
                raise ApiError(
                    422,
                    "invalid_field",
                    f'{where}: must be {{"name": ..., "examples": [drawings]}}',
                    field=where,
                )
            sub = Fields(concept, ("name", "examples"), self.limits)
            sub._points, sub._sketches = f._points, f._sketches  # one budget per request
            name = sub.string("name", required=True).strip()
            if not name or name in names:
                raise ApiError(
                    422, "invalid_field", f"{where}.name: empty or repeated", field=where
                )
            names.add(name)
            examples = sub.sketches("examples", 1, self.limits.max_sketches)
            f._points, f._sketches = sub._points, sub._sketches
            out.append((name, examples))
        return out


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


# ----------------------------------------------------------------------------- the app


async def _page(request: Request) -> Response:
    return FileResponse(STATIC_DIR / "index.html", headers=SECURITY_HEADERS)


def create_app(
    models: Mapping[str, Any],
    *,
    limits: Limits | None = None,
    workers: int = 2,
    max_pending: int = 32,
) -> Starlette:
    """The web app serving ``models`` (name -> a loaded model or a :class:`ServedModel`).

    Requests name a model by its key here; nothing a request says is used as a path.
    ``workers`` threads run model calls; ``max_pending`` more may wait before 503.
    """
    if not models:
        raise ValueError("no models to serve")
    table = {
        name: m if isinstance(m, ServedModel) else ServedModel(name, m)
        for name, m in models.items()
    }
    queue = InferenceQueue(workers=workers, max_pending=max_pending)
    api = _Api(table, queue, limits or Limits())
    post = [
        ("/api/sample", api.sample),
        ("/api/complete", api.complete),
        ("/api/complete/stream", api.complete_stream),
        ("/api/reconstruct", api.reconstruct),
        ("/api/interpolate", api.interpolate),
        ("/api/grid", api.grid),
        ("/api/imitate", api.imitate),
        ("/api/embed", api.embed),
        ("/api/classify", api.classify),
    ]
    routes = [
        Route("/", _page),
        Route("/api/models", _endpoint(api.models)),
        Route("/api/health", _endpoint(api.health)),
        *(Route(path, _endpoint(handler), methods=["POST"]) for path, handler in post),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        code = "method_not_allowed" if status == 405 else "not_found"
        text = "method not allowed" if status == 405 else f"no such page: {request.url.path}"
        return JSONResponse({"error": {"code": code, "message": text}}, status_code=status)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        queue.close()

    app = Starlette(
        routes=routes,
        exception_handlers={404: not_found, 405: not_found},
        lifespan=lifespan,
    )
    app.state.models = table
    app.state.queue = queue
    app.state.limits = api.limits
    return app
