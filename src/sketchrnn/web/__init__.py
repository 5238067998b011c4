"""Draw together: the web server and its page (plain HTML/CSS/JS in ``static/``, no build).

``serve(["sheep.gen.json"])`` starts it (``sketchrnn serve`` on the command line);
``create_app({"sheep": model})`` is the ASGI app, for tests or another server. The page and
the HTTP API it uses are described in docs/web-api.md. Needs the ``web`` extra (Starlette,
uvicorn). The API draws through :mod:`sketchrnn.generate` only (:mod:`sketchrnn.web.drawing`
converts the request's pixels); :mod:`sketchrnn.web.guard` and :mod:`sketchrnn.web.timeouts`
decide who may ask and how long a request may take to arrive; :mod:`sketchrnn.web.catalog`
offers the official models.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app", "serve", "default_models", "BUILTIN_MODELS", "Limits"]

from sketchrnn.web.limits import Limits
from sketchrnn.web.server import BUILTIN_MODELS, default_models, serve


def create_app(models: Any, **kwargs: Any) -> Any:
    """The ASGI app serving ``models`` (name -> model); see :func:`sketchrnn.web.app.create_app`."""
    from sketchrnn.web.app import create_app as _create_app

    return _create_app(models, **kwargs)
