"""Serving: the table of models (loaded once, named by the server) and ``serve()`` under uvicorn.

``sketchrnn serve [MODEL...]`` calls :func:`serve`. A MODEL is anything
:func:`sketchrnn.models.load_model` opens (a pretrained folder, a run folder or checkpoint, a
magenta.js ``.json``), optionally named ``NAME=PATH``; with none, :func:`default_models`:
the built-in models and every model folder in the cache.
"""

from __future__ import annotations

import ipaddress
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from sketchrnn.models.builtin import builtin_models
from sketchrnn.web.drawing import ServedModel
from sketchrnn.web.limits import Limits

__all__ = [
    "BUILTIN_MODELS",
    "default_models",
    "model_cache_dir",
    "load_models",
    "model_name",
    "serve",
    "is_loopback",
]

#: The built-in models served when no MODEL is given (``NAME=PATH`` of each folder of
#: :mod:`sketchrnn.models.builtin`).
BUILTIN_MODELS: list[str] = [f"{name}={path}" for name, path in builtin_models().items()]


def model_cache_dir() -> Path:
    """``$SKETCHRNN_CACHE_DIR/models`` (or ``$SKETCHRNN_CACHE/models``, the data downloads'
    variable), else ``~/.cache/sketchrnn/models``."""
    root = os.environ.get("SKETCHRNN_CACHE_DIR") or os.environ.get("SKETCHRNN_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "sketchrnn"
    return base / "models"


def _is_model(path: Path) -> bool:
    if path.is_dir():
        return (path / "config.json").exists() or (path / "checkpoint.pt").exists()
    return path.suffix.lower() == ".json" and path.name.endswith(".gen.json")


def default_models() -> list[str]:
    """What ``serve`` serves without arguments: :data:`BUILTIN_MODELS`, then every model in
    :func:`model_cache_dir` (folders with ``config.json`` or ``checkpoint.pt``, and
    magenta.js ``*.gen.json`` files), sorted by name."""
    specs = list(BUILTIN_MODELS)
    cache = model_cache_dir()
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
    from sketchrnn.models import load_model

    table: dict[str, ServedModel] = {}
    for spec in specs:
        name = model_name(spec)
        path = spec.split("=", 1)[1] if "=" in spec and not Path(spec).exists() else spec
        model = load_model(path, device=device)
        unique, k = name, 1
        while unique in table:
            k += 1
            unique = f"{name}-{k}"
        table[unique] = ServedModel(unique, model, source=str(path))
        if log is not None:
            info = table[unique].info
            print(f"  {unique}: {info.kind} ({path})", file=log)
    return table


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(
    model_specs: Sequence[str] | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
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
    warning: the server has no authentication). ``workers`` threads draw, each with
    ``torch_threads`` intra-op threads (default: the CPU count divided among the workers).
    """
    import torch
    import uvicorn

    from sketchrnn.web.app import create_app

    out = out or sys.stdout
    specs = list(model_specs or default_models())
    if not specs:
        raise SystemExit(
            "sketchrnn serve: no models to serve. Pass MODEL paths (a pretrained folder, a "
            f"run folder, a magenta.js .json), or put models in {model_cache_dir()}"
        )
    threads = torch_threads or max(1, (os.cpu_count() or 1) // max(workers, 1))
    torch.set_num_threads(threads)
    print(f"sketchrnn serve: loading {len(specs)} model(s)", file=out)
    table = load_models(specs, device=device, log=out)
    for served in table.values():  # measured once now, so no request waits for it
        if served.info.capabilities["sample"]:
            served.typical_extent()
    app = create_app(table, limits=limits, workers=workers, max_pending=max_pending)
    if not is_loopback(host):
        print(
            f"WARNING: serving on {host}, not loopback: anyone who can reach this machine can "
            "use the models (there is no authentication). Use --host 127.0.0.1 to keep it "
            "local.",
            file=out,
        )
    shown = f"[{host}]" if ":" in host else host
    if host in ("0.0.0.0", "::"):
        shown = "127.0.0.1"
    print(f"sketchrnn serve: open http://{shown}:{port}/  (Ctrl-C to stop)", file=out)
    out.flush()
    config: Any = uvicorn.Config(app, host=host, port=port, log_level=log_level)
    uvicorn.Server(config).run()
