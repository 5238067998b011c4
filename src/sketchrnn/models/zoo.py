"""The official sketch-rnn model collection (Google's Quick, Draw! models), by name.

Each of the :data:`OFFICIAL_MODELS` names is a ``<name>.gen.json`` (decoder-only) and, for
all but ``everything``, a ``<name>.vae.json`` (VAE) under :data:`OFFICIAL_MODELS_URL`
(``$SKETCHRNN_MODELS_URL`` overrides the base URL). They are downloaded on first use into
:func:`models_cache_dir` (``$SKETCHRNN_CACHE_DIR``, else ``$SKETCHRNN_CACHE/models``, else
``~/.cache/sketchrnn/models``) by :func:`sketchrnn.io.download.fetch` (resumed safely,
bounded in time and size, one writer at a time), and kept only when the file reads back as a
sketch-rnn model of the kind its name says: ``cat.vae.json`` must be a VAE, ``cat.gen.json``
decoder-only.

A *model name* is ``cat`` (the cached VAE if there is one, else the cached decoder-only
model, else the decoder-only model is downloaded: every name has one), ``cat.gen`` or
``cat.vae``. :data:`BUILTIN_MODELS` (the package's own models, name -> path) come first.
"""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from sketchrnn.io.download import DownloadError, fetch
from sketchrnn.io.files import SketchFileError
from sketchrnn.io.magenta_json import MagentaVAEWeights, read_magenta_json, read_magenta_kind
from sketchrnn.models.builtin import builtin_models

__all__ = [
    "OFFICIAL_MODELS",
    "OFFICIAL_MODELS_URL",
    "BUILTIN_MODELS",
    "KINDS",
    "ModelNameError",
    "ModelDownloadError",
    "model_kinds",
    "model_url",
    "models_cache_dir",
    "cached_models",
    "cached_model_files",
    "parse_model_name",
    "looks_like_model_name",
    "resolve_model",
    "download_model",
]

OFFICIAL_MODELS_URL = "https://storage.googleapis.com/quickdraw-models/sketchRNN/large_models/"
KINDS = ("gen", "vae")
#: The 114 names of the collection (96 classes, 17 mixed-class models and ``everything``), from
#: ``official_models.txt`` beside this module.
OFFICIAL_MODELS: tuple[str, ...] = tuple(
    name
    for line in resources.files("sketchrnn.models")
    .joinpath("official_models.txt")
    .read_text("utf-8")
    .splitlines()
    if (name := line.strip()) and not name.startswith("#")
)
#: Names that exist as ``.gen.json`` only.
GEN_ONLY = frozenset({"everything"})
#: The package's own built-in models: name -> path of a saved model (any form load_model
#: takes): the folders of :mod:`sketchrnn.models.builtin`.
BUILTIN_MODELS: dict[str, Path] = builtin_models()


class ModelNameError(ValueError):
    """A model name that is not in the collection (or a kind it does not have)."""


class ModelDownloadError(DownloadError):
    """A model of the collection that could not be downloaded or is not a sketch-rnn model;
    the message names the model and the URL."""


def model_kinds(name: str) -> tuple[str, ...]:
    """The kinds (``"gen"``, ``"vae"``) the collection has of ``name``."""
    return ("gen",) if name in GEN_ONLY else KINDS


def model_url(name: str, kind: str) -> str:
    """``<base>/<name>.<kind>.json``, the base from ``$SKETCHRNN_MODELS_URL`` if set."""
    base = os.environ.get("SKETCHRNN_MODELS_URL") or OFFICIAL_MODELS_URL
    return base.rstrip("/") + f"/{name}.{kind}.json"


def models_cache_dir() -> Path:
    """``$SKETCHRNN_CACHE_DIR`` if set, else ``$SKETCHRNN_CACHE/models``, else
    ``~/.cache/sketchrnn/models`` (beside the Quick, Draw! data cache)."""
    given = os.environ.get("SKETCHRNN_CACHE_DIR")
    if given:
        return Path(given).expanduser()
    root = os.environ.get("SKETCHRNN_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "sketchrnn"
    return base / "models"


def _cached_path(name: str, kind: str) -> Path:
    return models_cache_dir() / f"{name}.{kind}.json"


def cached_model_files() -> dict[Path, str | None]:
    """Every ``<name>.<kind>.json`` of the collection in the cache: path -> the kind the file
    really is (``"gen"``, ``"vae"``), or ``None`` when it is not a sketch-rnn model (a quick
    look at its header: :func:`sketchrnn.io.magenta_json.read_magenta_kind`)."""
    out: dict[Path, str | None] = {}
    for name in OFFICIAL_MODELS:
        for kind in model_kinds(name):
            path = _cached_path(name, kind)
            if path.is_file():
                try:
                    out[path] = read_magenta_kind(path)
                except SketchFileError:
                    out[path] = None
    return out


def cached_models() -> dict[str, tuple[str, ...]]:
    """Official models already in the cache: name -> kinds present (a file counts only when
    it is a model of the kind its name says)."""
    out: dict[str, tuple[str, ...]] = {}
    for path, found in cached_model_files().items():
        name, kind = path.name.removesuffix(".json").rsplit(".", 1)
        if found == kind:
            out[name] = out.get(name, ()) + (kind,)
    return out


def _is_cached(name: str, kind: str) -> bool:
    path = _cached_path(name, kind)
    return path.is_file() and _model_file_check(kind, full=False)(path) is None


def parse_model_name(spec: str) -> tuple[str, str | None]:
    """``"cat"`` -> ``("cat", None)``, ``"cat.vae"`` -> ``("cat", "vae")``; raises
    :class:`ModelNameError` for a name not in the collection or a kind it lacks."""
    name, kind = spec, None
    for k in KINDS:
        if spec.endswith("." + k):
            name, kind = spec[: -len(k) - 1], k
    if name not in OFFICIAL_MODELS:
        close = difflib.get_close_matches(name, OFFICIAL_MODELS, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ModelNameError(
            f"{spec!r} is not a model of the official sketch-rnn collection{hint}; "
            "`sketchrnn models list` shows them all"
        )
    if kind is not None and kind not in model_kinds(name):
        raise ModelNameError(
            f"{spec!r}: the official collection has no {kind} model of {name!r} "
            f"(only {', '.join(model_kinds(name))})"
        )
    return name, kind


def looks_like_model_name(spec: str) -> bool:
    """Whether ``spec`` is shaped like a model name (no folder, no ``.json``), so that a
    missing path is better explained as a name that is not in the collection."""
    s = os.fspath(spec)
    return bool(s) and "/" not in s and os.sep not in s and not s.lower().endswith(".json") \
        and not s.startswith(".")  # fmt: skip


_KIND_TEXT = {"gen": "a decoder-only model", "vae": "a VAE"}


def _model_file_check(kind: str, *, full: bool) -> Callable[[Path], str | None]:
    """The check of a ``.<kind>.json`` file: ``None``, or why it is not a sketch-rnn model of
    that kind. ``full`` reads and validates every weight (a new download); otherwise only the
    header is looked at (a file that already passed the full check on arrival)."""

    def check(path: Path) -> str | None:
        try:
            if full:
                found = "vae" if isinstance(read_magenta_json(path), MagentaVAEWeights) else "gen"
            else:
                found = read_magenta_kind(path)
        except SketchFileError as e:
            return "not a sketch-rnn model: " + str(e).removeprefix(os.fspath(path) + ": ")
        if found != kind:
            return f"the file is {_KIND_TEXT[found]}, not {_KIND_TEXT[kind]} (.{kind}.json)"
        return None

    return check


def download_model(
    name: str,
    kind: str = "gen",
    *,
    progress: bool = True,
    timeout: float | None = None,
    quiet: bool = False,
    on_progress: Callable[[int, int | None], None] | None = None,
) -> Path:
    """The cached ``<name>.<kind>.json``, downloaded first (one line on stderr saying so)
    if it is not there, or if the file there is not a model of that kind.

    Raises :class:`ModelNameError` or :class:`ModelDownloadError` (one line naming the model
    and the URL; nothing but a resumable ``.part`` left in the cache, and not even that for
    a file that is not a sketch-rnn model of the kind asked). ``timeout`` overrides the stall
    limit, ``on_progress(bytes so far, total or None)`` follows the transfer (see
    :func:`sketchrnn.io.download.fetch`); the size is capped by
    ``$SKETCHRNN_MAX_MODEL_BYTES`` (64 MiB)."""
    parse_model_name(f"{name}.{kind}")
    target = _cached_path(name, kind)
    look = _model_file_check(kind, full=False)
    if target.is_file() and look(target) is None:
        return target
    url = model_url(name, kind)
    label = f"{name}.{kind}"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if not os.access(target.parent, os.W_OK):
            raise PermissionError(f"cannot write to {target.parent}")
    except OSError as e:
        raise ModelDownloadError(
            f"model {label}: the cache folder {target.parent} is not writable "
            f"({e.strerror or e}); set SKETCHRNN_CACHE_DIR to another folder"
        ) from None
    if not quiet:
        print(f"sketchrnn: downloading model {label} from {url} to {target}", file=sys.stderr)
    try:
        fetch(
            url,
            target,
            check=_model_file_check(kind, full=True),
            check_existing=look,
            limit_name="SKETCHRNN_MAX_MODEL_BYTES",
            label=f"{label}.json",
            not_found="not found (HTTP 404); this file is not (or no longer) in the collection",
            progress=progress,
            on_progress=on_progress,
            timeout=timeout,
        )
    except DownloadError as e:
        reason = str(e)
        if reason.startswith(f"{url}: HTTP 403"):
            reason += " (the collection no longer serves this file)"
        raise ModelDownloadError(f"model {label}: {reason}") from None
    except OSError as e:  # the cache folder filled up or vanished mid-way
        raise ModelDownloadError(f"model {label}: {url}: cannot save ({e.strerror or e})") from None
    return target


def resolve_model(spec: str, *, progress: bool = True) -> Path:
    """The local file of model name ``spec`` (a built-in model, ``cat``, ``cat.gen`` or
    ``cat.vae``), downloading it on first use. A bare official name picks the cached VAE,
    else the cached decoder-only model, else downloads the decoder-only model (``cat.vae``
    asks for the VAE)."""
    if spec in BUILTIN_MODELS:
        return Path(BUILTIN_MODELS[spec])
    name, kind = parse_model_name(spec)
    if kind is None:
        for k in ("vae", "gen"):
            if k in model_kinds(name) and _is_cached(name, k):
                return _cached_path(name, k)
        kind = "gen"
    return download_model(name, kind, progress=progress)
