"""The ASGI app: the page, its static files, the JSON API (docs/web-api.md) and the catalog of
official models.

In front of every route, :class:`~sketchrnn.web.guard.Guard` (Host allowlist, Origin check,
JSON-only POSTs, security headers) and :class:`~sketchrnn.web.timeouts.BodyDeadline` (a body
late by more than ``limits.body_timeout_s`` is a 408). Handlers only read and check the
request (:mod:`sketchrnn.web.limits`), hand the model call to the inference queue
(:mod:`sketchrnn.web.inference`) and write the answer; the drawing is
:mod:`sketchrnn.generate`'s, through :mod:`sketchrnn.web.drawing`. A request whose client
goes away stops its drawing at the next step, streamed or not. Every error is a JSON object
``{"error": {"code", "message"}}`` with a 4xx status (503 when the queue is full), and the
server keeps serving after it. The options a request leaves out are not restated here: the
library's defaults apply.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from sketchrnn import generate
from sketchrnn.models import zoo
from sketchrnn.web import answers, drawing
from sketchrnn.web.catalog import Catalog
from sketchrnn.web.drawing import ServedModel
from sketchrnn.web.files import STATIC_DIR, ModelFiles
from sketchrnn.web.guard import Guard
from sketchrnn.web.inference import InferenceQueue
from sketchrnn.web.limits import ApiError, Fields, Limits, parse_json
from sketchrnn.web.listing import page_constants
from sketchrnn.web.portable_cache import PortableStore
from sketchrnn.web.timeouts import BodyDeadline

__all__ = ["create_app", "STATIC_DIR"]


# Fields every drawing endpoint takes besides its own.
_COMMON = ("model", "temperature", "seed", "max_len", "label", "canvas")

# ----------------------------------------------------------------------------- helpers


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


async def _client_gone(request: Request) -> None:
    """Return once the client has disconnected (call it after the body is read: the server
    answers ``receive`` with ``http.disconnect`` then)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _parameter_default(function: Callable[..., Any], name: str) -> Any:
    """The library's default of ``function``'s parameter ``name`` (never restated here)."""
    return inspect.signature(function).parameters[name].default


def _library_temperatures() -> Sequence[float]:
    """:func:`sketchrnn.generate.reconstruct`'s default temperatures (the paper's Fig. 5)."""
    return _parameter_default(generate.reconstruct, "temperatures")


def _given(**options: Any) -> dict[str, Any]:
    """The options a request gave (not None): the rest keep the library's defaults."""
    return {k: v for k, v in options.items() if v is not None}


class _Api:
    """The handlers, bound to one table of models, one queue and one set of limits."""

    def __init__(
        self,
        table: dict[str, ServedModel],
        queue: InferenceQueue,
        limits: Limits,
        catalog: Catalog,
        files: ModelFiles,
    ):
        self.table, self.queue, self.limits, self.catalog = table, queue, limits, catalog
        self.files = files

    async def fields(self, request: Request, allowed: tuple[str, ...]) -> Fields:
        body = parse_json(await read_body(request, self.limits.max_body_bytes))
        return Fields(body, allowed, self.limits)

    async def compute(self, request: Request, fn: Callable[[], Any]) -> Any:
        """``fn()`` on the inference queue; if the client goes away first, the job is
        cancelled (skipped if it waits, stopped at its next decoding step if it runs) and
        :class:`ClientDisconnect` raised."""
        job = asyncio.ensure_future(self.queue.submit(fn))
        gone = asyncio.ensure_future(_client_gone(request))
        try:
            await asyncio.wait({job, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            if not job.done():
                job.cancel()  # InferenceQueue.submit sets the job's cancel event
        if job.cancelled():
            raise ClientDisconnect()
        return job.result()

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

    def options(self, fields: Fields, served: ServedModel) -> dict[str, Any]:
        """The drawing options every route takes, under :mod:`sketchrnn.generate`'s names;
        only those the request gave."""
        info = served.info
        return _given(
            temperature=fields.temperature(),
            seed=fields.seed(),
            max_len=fields.max_len(info.max_seq_len),
            labels=fields.label(info.classes, info.num_classes),
        )

    def ending_options(self, fields: Fields, served: ServedModel) -> dict[str, Any]:
        """What a continuation takes besides :meth:`options`: where z comes from, and the
        strokes an ending draws before it may end the sketch."""
        return _given(
            z_from=fields.choice("z_from", ("prefix", "prior")),
            min_strokes=fields.integer("min_strokes", None, 0, int(served.info.max_seq_len or 0)),
        )

    # ------------------------------------------------------------------------- routes

    async def models(self, request: Request) -> Response:
        limits = self.limits
        entries = [await self.files.entry(m) for m in list(self.table.values())]
        return JSONResponse(
            {
                "models": entries,
                "catalog": True,
                "runtime": self.files.runtime_status(),
                "page": page_constants(),
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
        kw, n, canvas = self.options(f, served), f.count(), f.canvas()
        out = await self.compute(request, lambda: drawing.sample(served, n, canvas=canvas, **kw))
        return JSONResponse(answers.drawings_json(served.name, out))

    async def complete(self, request: Request) -> Response:
        f = await self.fields(request, (*_COMMON, "sketch", "n", "z_from", "min_strokes"))
        served = self.model(f)
        served.require("complete")
        kw = self.options(f, served) | self.ending_options(f, served)
        sketch, n, canvas = f.sketch("sketch"), f.count(), f.canvas()
        prefix, endings, stopped = await self.compute(
            request, lambda: drawing.complete(served, sketch, n, canvas=canvas, **kw)
        )
        empty = drawing.empty_indices(endings)
        answer = {
            "model": served.name,
            "prefix": answers.sketch_json(prefix),
            "endings": [answers.sketch_json(e) for e in endings],
            "sketches": [answers.sketch_json(np.concatenate([prefix, e])) for e in endings],
            "stopped": stopped,
            "empty": empty,
        }
        if empty:
            answer["note"] = answers.EMPTY_ENDINGS_NOTE.format(count=len(empty))
        return JSONResponse(answer)

    async def complete_stream(self, request: Request) -> Response:
        f = await self.fields(request, (*_COMMON, "sketch", "z_from", "min_strokes"))
        served = self.model(f)
        served.require("complete")
        kw = self.options(f, served) | self.ending_options(f, served)
        sketch, canvas = f.sketch("sketch"), f.canvas()
        started = time.perf_counter()

        def make(cancel):
            # Scaled, simplified and checked on the worker, before the stream starts: a
            # drawing the model cannot take is a plain 4xx answer, not an event in a 200.
            points, limit, strokes = drawing.stream_complete(served, sketch, canvas=canvas, **kw)
            yield points, limit
            yield from strokes

        stream = self.queue.stream(make)
        try:
            prefix_points, limit = await stream.__anext__()
        except BaseException:
            stream.cancel()
            raise

        async def events():
            strokes, points = 0, 0
            try:
                yield answers.sse("start", {"model": served.name, "prefix_points": prefix_points})
                async for stroke in stream:
                    yield answers.sse(
                        "stroke", {"index": strokes, "stroke": answers.sketch_json(stroke)}
                    )
                    strokes += 1
                    points += len(stroke)
                elapsed = round((time.perf_counter() - started) * 1000.0, 1)
                stopped = "max_len" if prefix_points + points >= limit else "end_of_sketch"
                done = {"strokes": strokes, "points": points, "ms": elapsed, "stopped": stopped}
                if strokes == 0:
                    done["note"] = answers.EMPTY_ENDING_NOTE
                yield answers.sse("done", done)
            except Exception as error:
                yield answers.sse("error", answers.as_api_error(error).to_json())
            finally:
                stream.cancel()  # the client left, or the stream ended: stop the worker

        return answers.event_stream(events())

    async def reconstruct(self, request: Request) -> Response:
        f = await self.fields(request, (*_COMMON, "sketch", "n"))
        served = self.model(f)
        served.require("reconstruct")
        kw = self.options(f, served)
        tau = kw.pop("temperature", None)
        if tau is not None:
            kw["temperatures"] = [tau]
        temperatures = len(kw.get("temperatures", _library_temperatures()))
        most = max(1, self.limits.max_n // temperatures)
        sketch, canvas = f.sketch("sketch"), f.canvas()
        kw |= _given(n=f.count(default=None, most=most))
        out = await self.compute(
            request, lambda: drawing.reconstruct(served, sketch, canvas=canvas, **kw)
        )
        return JSONResponse(answers.drawings_json(served.name, out))

    async def interpolate(self, request: Request) -> Response:
        f = await self.fields(request, (*_COMMON, "a", "b", "steps", "method"))
        served = self.model(f)
        served.require("interpolate")
        kw = self.options(f, served) | _given(
            steps=f.integer("steps", None, 1, self.limits.max_n),
            method=f.choice("method", ("slerp", "linear")),
        )
        a, b, canvas = f.sketch("a"), f.sketch("b"), f.canvas()
        out = await self.compute(
            request, lambda: drawing.interpolate(served, a, b, canvas=canvas, **kw)
        )
        return JSONResponse(answers.drawings_json(served.name, out))

    async def grid(self, request: Request) -> Response:
        f = await self.fields(request, (*_COMMON, "corners", "size", "method"))
        served = self.model(f)
        served.require("interpolate")
        kw = self.options(f, served) | _given(
            size=f.integer("size", None, 2, self.limits.max_grid_size),
            method=f.choice("method", ("slerp", "linear")),
        )
        corners, canvas = f.sketches("corners", 4, 4), f.canvas()
        out = await self.compute(
            request, lambda: drawing.grid(served, corners, canvas=canvas, **kw)
        )
        size = round(len(out) ** 0.5)
        return JSONResponse(answers.drawings_json(served.name, out, size=size))

    async def imitate(self, request: Request) -> Response:
        f = await self.fields(request, ("model", "temperature", "seed", "max_len", "sketch", "n"))
        served = self.model(f)
        served.require("imitate")
        kw = self.options(f, served) | _given(n=f.count(default=None))
        sketch = f.sketch("sketch")
        out = await self.compute(request, lambda: drawing.imitate(served, sketch, **kw))
        return JSONResponse(answers.drawings_json(served.name, out))

    async def embed(self, request: Request) -> Response:
        f = await self.fields(request, ("model", "sketches", "canvas"))
        served = self.model(f)
        served.require("embed")
        sketches = f.sketches("sketches", 1, self.limits.max_sketches)
        canvas = f.canvas()
        vectors = await self.compute(
            request, lambda: drawing.embed(served, sketches, canvas=canvas)
        )
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
        concepts = f.concepts()
        if f.has("query") == f.has("queries"):
            raise ApiError(422, "invalid_field", "give either query (one drawing) or queries")
        queries: list[np.ndarray]
        if f.has("query"):
            queries = [f.sketch("query")]
        else:
            queries = f.sketches("queries", 1, self.limits.max_sketches)
        canvas = f.canvas()
        out = await self.compute(
            request, lambda: drawing.classify(served, concepts, queries, canvas=canvas)
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

    async def catalog_listing(self, request: Request) -> Response:
        return JSONResponse(self.catalog.listing())

    async def fetch(self, request: Request) -> Response:
        f = await self.fields(request, ("name", "kind"))
        name = f.string("name", required=True)
        kind = f.choice("kind", zoo.KINDS, _parameter_default(zoo.download_model, "kind"))
        self.catalog.check(name, kind)

        async def events():
            yield answers.sse(
                "start", {"name": name, "kind": kind, "url": zoo.model_url(name, kind)}
            )
            async for event, data in self.catalog.fetch(name, kind):
                yield answers.sse(event, data)

        return answers.event_stream(events())


# ----------------------------------------------------------------------------- the app


def create_app(
    models: Mapping[str, Any],
    *,
    limits: Limits | None = None,
    workers: int = 2,
    max_pending: int = 32,
    allowed_hosts: Sequence[str] = (),
    device: str = "cpu",
    portable: PortableStore | None = None,
    runtime: str | os.PathLike | None | Literal["installed"] = "installed",
    prepare: bool = False,
) -> Starlette:
    """The web app serving ``models`` (name -> a loaded model or a :class:`ServedModel`).

    Requests name a model by its key here; nothing a request says is used as a path.
    ``workers`` threads run model calls; ``max_pending`` more may wait before 503. Requests
    must name the server by a loopback name or one of ``allowed_hosts``
    (:class:`~sketchrnn.web.guard.Guard`); official models fetched through the catalog are
    loaded on ``device``.

    The page draws in the browser: each model's portable folder comes from ``portable``
    (default: a :class:`PortableStore` in the model cache), exported on first use, or for
    every model in a thread at start with ``prepare``; onnxruntime-web's files from the
    folder ``runtime`` (default: where ``sketchrnn runtime install`` put them; None: none).
    """
    if not models:
        raise ValueError("no models to serve")
    table = {
        name: m if isinstance(m, ServedModel) else ServedModel(name, m)
        for name, m in models.items()
    }
    limits = limits or Limits()
    queue = InferenceQueue(workers=workers, max_pending=max_pending)
    store = portable or PortableStore()
    if runtime == "installed":
        from sketchrnn.io.js_runtime import installed_runtime

        runtime = installed_runtime()
    files = ModelFiles(table, store, Path(runtime) if runtime else None)
    catalog = Catalog(table, device=device, describe=files.export_and_describe)
    api = _Api(table, queue, limits, catalog, files)
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
        ("/api/fetch", api.fetch),
    ]
    routes = [
        *files.routes(),
        Route("/api/models", answers.endpoint(api.models)),
        Route("/api/health", answers.endpoint(api.health)),
        Route("/api/catalog", answers.endpoint(api.catalog_listing)),
        *(Route(path, answers.endpoint(handler), methods=["POST"]) for path, handler in post),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        code = "method_not_allowed" if status == 405 else "not_found"
        text = "method not allowed" if status == 405 else f"no such page: {request.url.path}"
        return JSONResponse({"error": {"code": code, "message": text}}, status_code=status)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        preparing = asyncio.ensure_future(asyncio.to_thread(files.prepare_all)) if prepare else None
        yield
        if preparing is not None:
            preparing.cancel()  # the thread finishes the export it is in; nothing is half-written
        queue.close()

    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(Guard, allowed_hosts=allowed_hosts),
            Middleware(BodyDeadline, seconds=limits.body_timeout_s),
        ],
        exception_handlers={404: not_found, 405: not_found},
        lifespan=lifespan,
    )
    app.state.models = table
    app.state.queue = queue
    app.state.limits = api.limits
    app.state.catalog = api.catalog
    app.state.files = files
    return app
