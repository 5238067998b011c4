"""What the page downloads to draw in the browser: the page itself (``/``), each served model
in portable form and the runtime's own files, sent so that a browser fetches each byte once.

- ``GET /models/NAME-KEY/FILE``: the portable folder of a served model
  (:class:`~sketchrnn.web.portable_cache.PortableStore`; exported on the first request if it
  is not in the cache yet): ``manifest.json`` and the graph files it lists, nothing else. Its
  name changes with its contents, so each file is sent as immutable (cached for a year,
  never revalidated), with its SHA-256 as a strong ETag.
- ``GET /static/ort.wasm.bundle.min.mjs`` and ``/static/ort-wasm-simd-threaded.wasm``:
  onnxruntime-web, from the folder ``sketchrnn runtime install`` fills
  (:mod:`sketchrnn.io.js_runtime`), beside the package's ``sketchrnn.js`` as that module
  expects. Their names do not change with a new version, so they are revalidated
  (``no-cache`` with an ETag: a 304 costs no body).

Every file is offered gzipped to a browser that accepts it when that saves at least a tenth
(the WebAssembly: 14 MB, 3.7 MB gzipped), compressed once per content into ``.gzip/`` of the
portable cache, never per request: a page load must cost the server next to nothing.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from sketchrnn.web.drawing import ServedModel
from sketchrnn.web.listing import STATIC_DIR, model_entry
from sketchrnn.web.portable_cache import PortableStore, PortableUnavailable

__all__ = [
    "ModelFiles",
    "RUNTIME_MEDIA_TYPES",
    "IMMUTABLE",
    "REVALIDATE",
    "STATIC_DIR",
    "runtime_missing",
]


IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
#: The runtime's files and how they are sent (application/wasm lets the browser compile the
#: WebAssembly while it arrives).
RUNTIME_MEDIA_TYPES = {
    "ort.wasm.bundle.min.mjs": "text/javascript; charset=utf-8",
    "ort-wasm-simd-threaded.wasm": "application/wasm",
}
_MODEL_MEDIA_TYPES = {".json": "application/json", ".onnx": "application/octet-stream"}
#: gzip is kept only when it makes a file at least this much smaller (float weights hardly
#: shrink: they are sent as they are).
_GZIP_GAIN = 0.9


@dataclass(frozen=True)
class _Blob:
    """A file as it is sent: its SHA-256 (the ETag) and its gzipped copy if worth one."""

    path: Path
    sha256: str
    gzipped: Path | None


class _Blobs:
    """Digests and gzipped copies of files, made once per content (``(path, size, mtime)``)."""

    def __init__(self, gzip_dir: Path):
        self.gzip_dir = gzip_dir
        self._known: dict[tuple[str, int, int], _Blob] = {}
        self._lock = threading.Lock()

    def get(self, path: Path) -> _Blob:
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        blob = self._known.get(key)
        if blob is None:
            with self._lock:
                blob = self._known.get(key) or self._make(path)
                self._known[key] = blob
        return blob

    def _make(self, path: Path) -> _Blob:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        sha = digest.hexdigest()
        target = self.gzip_dir / f"{sha}.gz"
        skipped = self.gzip_dir / f"{sha}.raw"  # marks "gzip does not pay" for this content
        if target.is_file():
            return _Blob(path, sha, target)
        if skipped.is_file():
            return _Blob(path, sha, None)
        try:
            self.gzip_dir.mkdir(parents=True, exist_ok=True)
            fd, part = tempfile.mkstemp(dir=self.gzip_dir, suffix=".part")
            with os.fdopen(fd, "wb") as raw, open(path, "rb") as src:
                with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as gz:
                    shutil.copyfileobj(src, gz, 1 << 20)
            if os.path.getsize(part) <= _GZIP_GAIN * path.stat().st_size:
                os.replace(part, target)
                return _Blob(path, sha, target)
            os.unlink(part)
            skipped.touch()
        except OSError:  # a read-only cache: send the file as it is
            pass
        return _Blob(path, sha, None)


def _not_modified(request: Request, etag: str) -> bool:
    wanted = request.headers.get("if-none-match", "")
    return any(tag.strip().removeprefix("W/") == etag for tag in wanted.split(",")) or (
        wanted.strip() == "*"
    )


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


async def send_file(
    request: Request, blobs: _Blobs, path: Path, media_type: str, cache_control: str
) -> Response:
    """``path`` with a strong ETag (its SHA-256), ``cache_control``, 304 for a matching
    ``If-None-Match``, and gzipped for a browser that takes it when that pays."""
    blob = await asyncio.to_thread(blobs.get, path)
    etag = f'"{blob.sha256}"'
    headers = {"ETag": etag, "Cache-Control": cache_control, "Vary": "Accept-Encoding"}
    if _not_modified(request, etag):
        return Response(status_code=304, headers=headers)
    accepts = request.headers.get("accept-encoding", "").lower()
    if blob.gzipped is not None and "gzip" in accepts:
        headers["Content-Encoding"] = "gzip"
        return FileResponse(blob.gzipped, media_type=media_type, headers=headers)
    return FileResponse(path, media_type=media_type, headers=headers)


async def page(request: Request) -> Response:
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


async def page_elsewhere(request: Request) -> Response:
    # The page's links are relative to where it lives (the same page is a static site's
    # index.html): its one address here is /.
    return RedirectResponse("/", status_code=308)


def runtime_missing() -> str:
    """What the page and the log say when onnxruntime-web's files are not installed."""
    return (
        "the browser runtime (onnxruntime-web) is not installed on this server: run "
        "`sketchrnn runtime install`, then restart `sketchrnn serve`"
    )


class ModelFiles:
    """The routes of the page, of the portable models of ``table`` (name -> ServedModel, which
    the catalog grows) and of the runtime in ``runtime_dir`` (None: not installed)."""

    def __init__(
        self,
        table: Mapping[str, ServedModel],
        store: PortableStore,
        runtime_dir: Path | None,
    ):
        self.table, self.store = table, store
        self.runtime_dir = runtime_dir
        self.blobs = _Blobs(store.root / ".gzip")

    def routes(self) -> list[Route]:
        return [
            Route("/", page),
            Route("/index.html", page_elsewhere),
            Route("/static/index.html", page_elsewhere),
            Route("/models/{folder}/{file}", self.model_file),
            *(Route(f"/static/{name}", self.runtime_file) for name in RUNTIME_MEDIA_TYPES),
        ]

    def url(self, served: ServedModel) -> str:
        """Where the page finds the served model's portable folder (relative to the page)."""
        return f"models/{self.store.folder_name(served)}/"

    def served_by_folder(self, folder: str) -> ServedModel | None:
        for served in list(self.table.values()):
            if folder.startswith(served.name + "-") and self.store.folder_name(served) == folder:
                return served
        return None

    async def model_file(self, request: Request) -> Response:
        folder, file = request.path_params["folder"], request.path_params["file"]
        served = self.served_by_folder(folder)
        if served is None:
            return _error(404, "not_found", f"no model folder {folder!r} on this server")
        try:
            manifest: dict[str, Any] = await asyncio.to_thread(self.store.manifest, served)
        except PortableUnavailable as e:
            return _error(422, "no_portable_form", str(e))
        allowed = {"manifest.json", *(g["file"] for g in manifest["graphs"].values())}
        if file not in allowed:
            return _error(404, "not_found", f"{folder} has no file {file!r}")
        path = self.store.root / folder / file
        media_type = _MODEL_MEDIA_TYPES[Path(file).suffix]
        return await send_file(request, self.blobs, path, media_type, IMMUTABLE)

    async def runtime_file(self, request: Request) -> Response:
        name = request.url.path.rsplit("/", 1)[-1]
        if self.runtime_dir is None or not (self.runtime_dir / name).is_file():
            return _error(404, "runtime_missing", runtime_missing())
        path = self.runtime_dir / name
        return await send_file(request, self.blobs, path, RUNTIME_MEDIA_TYPES[name], REVALIDATE)

    # ------------------------------------------------------------------------- the listing

    async def entry(self, served: ServedModel) -> dict[str, Any]:
        """What ``/api/models`` says of a served model: its info, the model pixels of its
        typical drawing (``typical_extent``: the page maps its canvas to the model with it,
        as :func:`sketchrnn.generate.canvas_scale`) and its portable folder: ``portable``
        (the folder's URL, or None with ``portable_error`` saying why) and
        ``portable_ready`` (false until the first export has finished)."""

        return await asyncio.to_thread(self.describe, served)

    def describe(self, served: ServedModel) -> dict[str, Any]:
        """:meth:`entry`, blocking (it may measure the typical size: 16 drawings)."""
        problem = self.store.problem(served)
        folder = None if problem else self.store.ready(served)
        return model_entry(served, None if problem else self.url(served), folder, problem)

    def export_and_describe(self, served: ServedModel) -> dict[str, Any]:
        """Export the served model (unless it is in the cache), then :meth:`describe` it:
        for a model the catalog has just fetched (blocking)."""
        try:
            self.store.export(served)
        except PortableUnavailable:
            pass  # describe() says why
        return self.describe(served)

    def runtime_status(self) -> dict[str, Any]:
        """``{"ready", "message"}``: whether the browser runtime's files are here."""
        ready = self.runtime_dir is not None and all(
            (self.runtime_dir / name).is_file() for name in RUNTIME_MEDIA_TYPES
        )
        return {"ready": ready, "message": None if ready else runtime_missing()}

    def prepare_all(self) -> None:
        """Export every served model that is not in the cache yet, one after the other
        (blocking: the server runs it in a thread at start, so that the first visitor does
        not wait); failures are remembered by the store and shown on the page."""
        for served in list(self.table.values()):
            try:
                self.store.export(served)
            except PortableUnavailable:
                continue
