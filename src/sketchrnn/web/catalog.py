"""The official model collection in the server: what a page can pick, and fetching a model it
does not serve yet through the server into the cache, then serving it.

:meth:`Catalog.listing` names the served models and every model of the collection
(:data:`sketchrnn.models.zoo.OFFICIAL_MODELS`), with what is cached and under which name it
is served. :meth:`Catalog.fetch` downloads one with :func:`sketchrnn.models.zoo.download_model`
(resumed safely, bounded, checked to be a sketch-rnn model of its kind) in a thread,
reporting the bytes that have arrived (its ``on_progress``), loads it and adds it to the
served table. A fetch runs to the end once begun,
even if the page that asked goes away (the file lands in the cache and the model is served),
and two pages asking for the same model share one download.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from sketchrnn.models import zoo
from sketchrnn.web.drawing import ServedModel, unique_name
from sketchrnn.web.limits import ApiError

__all__ = ["Catalog", "FetchFailed", "failure_code"]

#: Seconds between two progress reports of a download.
PROGRESS_INTERVAL_S = 0.25
#: Downloads that may run at once (each a thread); more wait for a free one.
MAX_DOWNLOADS = 2


class FetchFailed(Exception):
    """A model of the collection that could not be fetched or loaded: ``code`` says why."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def failure_code(message: str) -> str:
    """The API's code for a :class:`sketchrnn.models.zoo.ModelDownloadError` message: the
    collection's own answers (404 ``not_found``, 403 ``forbidden``), ``offline``,
    ``not_a_model``, ``cache_not_writable``, else ``download_failed``."""
    if "HTTP 404" in message:
        return "not_found"
    if "HTTP 403" in message:
        return "forbidden"
    if "cannot reach" in message:
        return "offline"
    if "not a sketch-rnn model" in message:
        return "not_a_model"
    if "not writable" in message:
        return "cache_not_writable"
    return "download_failed"


def _cached_file(name: str, kind: str) -> Path:
    return zoo.models_cache_dir() / f"{name}.{kind}.json"


class Catalog:
    """The collection as the server offers it; ``table`` is the server's own table of served
    models (name -> :class:`~sketchrnn.web.drawing.ServedModel`), to which fetched models
    are added."""

    def __init__(
        self,
        table: dict[str, ServedModel],
        *,
        device: str = "cpu",
        describe: Callable[[ServedModel], dict[str, Any]] | None = None,
    ):
        self.table = table
        self.device = device
        # What the page is told of a model fetched for it (blocking: run in a thread): the
        # server's makes its portable form first; without one, its info.
        self.describe = describe or (lambda served: served.info.to_json())
        self._converting: set[tuple[str, str]] = set()
        self._jobs: dict[tuple[str, str], asyncio.Task] = {}
        self._downloads: asyncio.Semaphore | None = None
        self._loading: set[str] = set()  # names given to models still loading
        # (bytes so far, total or None) of each download, written by its thread
        self._progress: dict[tuple[str, str], tuple[int, int | None]] = {}

    # ------------------------------------------------------------------------- listing

    def served_as(self) -> dict[tuple[str, str], str]:
        """``(name, kind) -> served name`` of the official models this server serves (read
        from where each served model was loaded)."""
        cache = zoo.models_cache_dir().resolve()
        out: dict[tuple[str, str], str] = {}
        for served in self.table.values():
            path = Path(served.source)
            if path.parent.resolve() != cache or not path.name.endswith(".json"):
                continue
            name, _, kind = path.name[: -len(".json")].rpartition(".")
            if name in zoo.OFFICIAL_MODELS and kind in zoo.model_kinds(name):
                out.setdefault((name, kind), served.name)
        return out

    def listing(self) -> dict[str, Any]:
        """What ``GET /api/catalog`` answers (docs/web-api.md)."""
        cached = zoo.cached_models()
        served = self.served_as()
        return {
            "served": sorted(self.table),
            "official": [
                {
                    "name": name,
                    "kinds": list(zoo.model_kinds(name)),
                    "cached": list(cached.get(name, ())),
                    "served": {k: served.get((name, k)) for k in zoo.model_kinds(name)},
                }
                for name in zoo.OFFICIAL_MODELS
            ],
        }

    @staticmethod
    def check(name: str, kind: str) -> None:
        """:class:`ApiError` 404 ``not_in_collection`` unless the collection has ``name``
        of ``kind``."""
        try:
            zoo.parse_model_name(f"{name}.{kind}")
        except zoo.ModelNameError as e:
            raise ApiError(404, "not_in_collection", str(e), name=name, kind=kind) from None

    # ------------------------------------------------------------------------- fetching

    async def fetch(self, name: str, kind: str) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """Events of fetching official model ``name`` of ``kind`` (checked by :meth:`check`):
        ``("progress", {"bytes", "total"})`` while it downloads (``total`` None while the
        collection has not said; also at 0 bytes, once), ``("converting", {})`` once while
        it is made portable for the browser, then ``("done", {"model": served name,
        "fetched": bool, "info"})`` (``info`` as ``describe`` says), or ``("error",
        {"error": {code, message}})``."""
        key = (name, kind)
        served = self.served_as().get(key)
        if served is not None:
            yield "done", await self._done(served, fetched=False)
            return
        job = self._jobs.get(key)
        if job is None:
            job = asyncio.ensure_future(self._obtain(name, kind))
            self._jobs[key] = job
            job.add_done_callback(lambda _t: self._forget(key))
        last = None
        said_converting = False
        while not job.done():
            now = self._progress.get(key, (0, None))
            if now != last:
                yield "progress", {"bytes": now[0], "total": now[1]}
                last = now
            if key in self._converting and not said_converting:
                yield "converting", {}
                said_converting = True
            await asyncio.wait({job}, timeout=PROGRESS_INTERVAL_S)
        try:
            served_name, fetched = job.result()
        except FetchFailed as e:
            yield "error", ApiError(502, e.code, str(e), name=name, kind=kind).to_json()
            return
        yield "done", await self._done(served_name, fetched=fetched)

    def _forget(self, key: tuple[str, str]) -> None:
        self._jobs.pop(key, None)
        self._progress.pop(key, None)
        self._converting.discard(key)

    async def _done(self, served: str, *, fetched: bool) -> dict[str, Any]:
        info = await asyncio.to_thread(self.describe, self.table[served])
        return {"model": served, "fetched": fetched, "info": info}

    async def _obtain(self, name: str, kind: str) -> tuple[str, bool]:
        """Download (unless cached) and serve ``name.kind``: ``(served name, downloaded)``."""
        path = _cached_file(name, kind)
        fetched = False
        if not path.is_file():
            if self._downloads is None:
                self._downloads = asyncio.Semaphore(MAX_DOWNLOADS)

            def on_progress(done: int, total: int | None) -> None:
                self._progress[(name, kind)] = (done, total)

            async with self._downloads:
                try:
                    await asyncio.to_thread(
                        zoo.download_model,
                        name,
                        kind,
                        progress=False,
                        quiet=True,
                        on_progress=on_progress,
                    )
                except zoo.ModelDownloadError as e:
                    raise FetchFailed(failure_code(str(e)), str(e)) from None
            fetched = True
        taken = {*self.table, *self._loading}
        served_name = unique_name(name if name not in taken else f"{name}.{kind}", taken)
        self._loading.add(served_name)
        try:
            served = await asyncio.to_thread(
                ServedModel.load, served_name, path, device=self.device
            )
        except Exception as e:  # a cached file that does not load: say so, keep serving
            raise FetchFailed(
                "not_loadable", f"model {name}.{kind}: {path} does not load ({e})"
            ) from None
        finally:
            self._loading.discard(served_name)
        # The portable form the page draws with, made before the model is listed (the name
        # stays taken meanwhile).
        self._loading.add(served_name)
        self._converting.add((name, kind))
        try:
            await asyncio.to_thread(self.describe, served)
        finally:
            self._loading.discard(served_name)
        self.table[served.name] = served
        return served.name, fetched
