"""Serving: the table of models (loaded once, named by the server) and ``serve()`` under uvicorn.

``sketchrnn serve [MODEL...]`` calls :func:`serve`. A MODEL is anything
:func:`sketchrnn.models.load_model` opens (a pretrained folder, a run folder or checkpoint, a
magenta.js ``.json``), optionally named ``NAME=PATH``; with none, :func:`default_models`:
the built-in models and every model folder in the cache.
"""

from __future__ import annotations

import importlib
import ipaddress
import os
import re
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from sketchrnn.extras import MissingExtraError
from sketchrnn.models.builtin import builtin_models
from sketchrnn.models.zoo import models_cache_dir
from sketchrnn.web.drawing import ServedModel, unique_name
from sketchrnn.web.limits import Limits

__all__ = [
    "BUILTIN_MODELS",
    "MAX_WORKERS",
    "default_models",
    "load_models",
    "model_name",
    "serve",
    "server_config",
    "is_loopback",
    "require_web_extra",
]

#: The built-in models served when no MODEL is given (``NAME=PATH`` of each folder of
#: :mod:`sketchrnn.models.builtin`).
BUILTIN_MODELS: list[str] = [f"{name}={path}" for name, path in builtin_models().items()]
#: The most drawing threads: each holds a model call and its torch threads; more only
#: queue inside torch on a machine with fewer cores (and each holds memory).
MAX_WORKERS = 32


def require_web_extra() -> None:
    """:class:`~sketchrnn.extras.MissingExtraError`, in one line saying what to install,
    unless Starlette and uvicorn (the ``web`` extra) can be imported."""
    missing = []
    for module in ("starlette", "uvicorn"):
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise MissingExtraError(
            f"the web server needs the web extra ({' and '.join(missing)} missing): "
            "pip install 'sketchrnn[web]'"
        )


def _is_model(path: Path) -> bool:
    if path.is_dir():
        return (path / "config.json").exists() or (path / "checkpoint.pt").exists()
    return path.suffix.lower() == ".json" and path.name.endswith(".gen.json")


def default_models() -> list[str]:
    """What ``serve`` serves without arguments: :data:`BUILTIN_MODELS`, then every model in
    the model cache (:func:`sketchrnn.models.zoo.models_cache_dir`: folders with
    ``config.json`` or ``checkpoint.pt``, and magenta.js ``*.gen.json`` files), sorted by
    name."""
    specs = list(BUILTIN_MODELS)
    cache = models_cache_dir()
    if cache.is_dir():
        specs += [str(p) for p in sorted(cache.iterdir()) if _is_model(p)]
    return specs


def model_name(spec: str) -> str:
    """The name a model is served under: ``NAME`` of ``NAME=PATH``, else the file or folder
    name without ``.gen.json``/``.json``/``.pt`` (``checkpoint.pt``: its folder's name)."""
    if "=" in spec and not Path(spec).exists():
        return spec.split("=", 1)[0].strip()
    path = Path(spec.rstrip("/\\"))
    if path.name == "checkpoint.pt":
        path = path.parent
    name = path.name
    for suffix in (".gen.json", ".vae.json", ".json", ".pt"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return re.sub(r"[^\w.\-]+", "_", name) or "model"


def load_models(
    specs: Sequence[str], *, device: str = "cpu", log: TextIO | None = None
) -> dict[str, ServedModel]:
    """Load each model once: ``{name: ServedModel}``; names are unique (``-2``, ``-3`` added)."""
    table: dict[str, ServedModel] = {}
    for spec in specs:
        name = unique_name(model_name(spec), table)
        path = spec.split("=", 1)[1] if "=" in spec and not Path(spec).exists() else spec
        table[name] = ServedModel.load(name, path, device=device)
        if log is not None:
            print(f"  {name}: {table[name].info.kind} ({path})", file=log)
    return table


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def server_config(app: Any, host: str, port: int, limits: Limits, **kwargs: Any) -> Any:
    """The uvicorn config serving ``app``: its HTTP protocol closes a connection whose request
    headers are later than ``limits.header_timeout_s`` (:mod:`sketchrnn.web.timeouts`), and
    at most ``limits.max_connections`` connections are served at once (503 beyond)."""
    import uvicorn
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    from sketchrnn.web.timeouts import header_deadline_protocol

    protocol = header_deadline_protocol(AutoHTTPProtocol, limits.header_timeout_s)
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,
        limit_concurrency=limits.max_connections,
        **kwargs,
    )


def browser_runtime(out: TextIO) -> Path | None:
    """The folder of onnxruntime-web's files (the page draws with them in the browser),
    installed now from npm (verified against the pinned lock, once:
    :func:`sketchrnn.io.js_runtime.install_runtime`) if they are not in the cache yet. None,
    with a line saying what to do, when that fails (offline): the page then says it too."""
    from sketchrnn.io.js_runtime import install_runtime, installed_runtime

    folder = installed_runtime()
    if folder is not None:
        return folder
    print("sketchrnn serve: fetching the browser runtime (onnxruntime-web, once)", file=out)
    try:
        return install_runtime(progress=False)
    except OSError as e:
        print(
            f"WARNING: the browser runtime could not be installed ({e}); the page cannot draw "
            "until `sketchrnn runtime install` succeeds",
            file=out,
        )
        return None


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``(host, port)`` (port 0: a free one), for uvicorn to serve on.
    Bound here rather than by uvicorn, which exits with a log line when the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise SystemExit(
            f"sketchrnn serve: cannot listen on {host} port {port}: {e.strerror or e}"
        ) from None
    sock.set_inheritable(True)
    return sock


def serve(
    model_specs: Sequence[str] | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    allow_hosts: Sequence[str] = (),
    workers: int = 2,
    max_pending: int = 32,
    torch_threads: int | None = None,
    limits: Limits | None = None,
    device: str = "cpu",
    log_level: str = "warning",
    out: TextIO | None = None,
) -> None:
    """Serve the page and the API until Ctrl-C.

    ``model_specs`` as :func:`load_models` takes them (``None`` or empty:
    :func:`default_models`). Binds ``host`` (loopback by default; any other host prints a
    warning: the server has no authentication) and ``port`` (0: a free one; the address
    printed has the port actually bound). Requests must name the server by a loopback name,
    the bound address or one of ``allow_hosts`` (:class:`sketchrnn.web.guard.Guard`). The
    page draws in the visitor's browser: the models are exported to portable form in a
    thread at start (once: they are kept in the model cache) and onnxruntime-web's files are
    installed on first use (:func:`browser_runtime`).
    ``workers`` threads (1 to :data:`MAX_WORKERS`) draw, each with ``torch_threads``
    intra-op threads (default: the CPU count divided among the workers).
    """
    require_web_extra()
    import torch
    import uvicorn

    from sketchrnn.web.app import create_app

    if isinstance(workers, bool) or not 1 <= workers <= MAX_WORKERS:
        raise ValueError(f"workers must be between 1 and {MAX_WORKERS}, got {workers!r}")
    out = out or sys.stdout
    limits = limits or Limits()
    specs = list(model_specs or default_models())
    if not specs:
        raise SystemExit(
            "sketchrnn serve: no models to serve. Pass MODEL paths (a pretrained folder, a "
            f"run folder, a magenta.js .json), or put models in {models_cache_dir()}"
        )
    threads = torch_threads or max(1, (os.cpu_count() or 1) // workers)
    torch.set_num_threads(threads)
    print(f"sketchrnn serve: loading {len(specs)} model(s)", file=out)
    table = load_models(specs, device=device, log=out)
    wildcard = host in ("0.0.0.0", "::", "")
    names = [*allow_hosts, *([] if wildcard else [host])]
    app = create_app(
        table,
        limits=limits,
        workers=workers,
        max_pending=max_pending,
        allowed_hosts=names,
        runtime=browser_runtime(out),
        prepare=True,
    )
    sock = listen(host, port)
    try:
        bound = sock.getsockname()[1]
        if not is_loopback(host):
            print(
                f"WARNING: serving on {host}, not loopback: anyone who can reach this machine "
                "can use the models (there is no authentication). Use --host 127.0.0.1 to keep "
                "it local.",
                file=out,
            )
            if wildcard and not allow_hosts:
                print(
                    "  Requests must name this server localhost or 127.0.0.1: let visitors in "
                    "by the name or address they use with --allow-host NAME.",
                    file=out,
                )
        shown = f"[{host}]" if ":" in host else host
        if wildcard:
            shown = "127.0.0.1"
        print(f"sketchrnn serve: open http://{shown}:{bound}/  (Ctrl-C to stop)", file=out)
        out.flush()
        config = server_config(app, host, bound, limits, log_level=log_level)
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
