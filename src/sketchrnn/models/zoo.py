"""The official sketch-rnn model collection (Google's Quick, Draw! models), by name.

Each of the :data:`OFFICIAL_MODELS` names is a ``<name>.gen.json`` (decoder-only) and, for
all but ``everything``, a ``<name>.vae.json`` (VAE) under :data:`OFFICIAL_MODELS_URL`
(``$SKETCHRNN_MODELS_URL`` overrides the base URL). They are downloaded on first use into
:func:`models_cache_dir` (``$SKETCHRNN_CACHE_DIR``, else ``$SKETCHRNN_CACHE/models``, else
``~/.cache/sketchrnn/models``) with the project's resumable, atomic download code, and
checked to be sketch-rnn models before they are kept.

A *model name* is ``cat`` (the cached VAE if there is one, else the cached decoder-only
model, else the decoder-only model is downloaded: every name has one), ``cat.gen`` or
``cat.vae``. :data:`BUILTIN_MODELS` (the package's own models, name -> path) come first.
"""

from __future__ import annotations

import difflib
import os
import sys
from pathlib import Path

from sketchrnn.io.download import DownloadError, fetch_file
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
    "parse_model_name",
    "looks_like_model_name",
    "resolve_model",
    "download_model",
]

OFFICIAL_MODELS_URL = "https://storage.googleapis.com/quickdraw-models/sketchRNN/large_models/"
KINDS = ("gen", "vae")
#: The 114 names of the collection (96 classes, 17 mixed-class models and ``everything``).
OFFICIAL_MODELS: tuple[str, ...] = (
    "alarm_clock", "ambulance", "angel", "ant", "antyoga", "backpack", "barn", "basket",
    "bear", "bee", "beeflower", "bicycle", "bird", "book", "brain", "bridge", "bulldozer",
    "bus", "butterfly", "cactus", "calendar", "castle", "cat", "catbus", "catpig", "chair",
    "couch", "crab", "crabchair", "crabrabbitfacepig", "cruise_ship", "diving_board", "dog",
    "dogbunny", "dolphin", "duck", "elephant", "elephantpig", "everything", "eye", "face",
    "fan", "fire_hydrant", "firetruck", "flamingo", "flower", "floweryoga", "frog", "frogsofa",
    "garden", "hand", "hedgeberry", "hedgehog", "helicopter", "kangaroo", "key", "lantern",
    "lighthouse", "lion", "lionsheep", "lobster", "map", "mermaid", "monapassport", "monkey",
    "mosquito", "octopus", "owl", "paintbrush", "palm_tree", "parrot", "passport", "peas",
    "penguin", "pig", "pigsheep", "pineapple", "pool", "postcard", "power_outlet", "rabbit",
    "rabbitturtle", "radio", "radioface", "rain", "rhinoceros", "rifle", "roller_coaster",
    "sandwich", "scorpion", "sea_turtle", "sheep", "skull", "snail", "snowflake", "speedboat",
    "spider", "squirrel", "steak", "stove", "strawberry", "swan", "swing_set", "the_mona_lisa",
    "tiger", "toothbrush", "toothpaste", "tractor", "trombone", "truck", "whale", "windmill",
    "yoga", "yogabicycle",
)  # fmt: skip
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


def cached_models() -> dict[str, tuple[str, ...]]:
    """Official models already in the cache: name -> kinds present."""
    out: dict[str, tuple[str, ...]] = {}
    for name in OFFICIAL_MODELS:
        kinds = tuple(k for k in model_kinds(name) if _cached_path(name, k).is_file())
        if kinds:
            out[name] = kinds
    return out


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


def _check_model_file(part: Path) -> str | None:
    from sketchrnn.io.files import SketchFileError
    from sketchrnn.io.magenta_json import read_magenta_json

    try:
        read_magenta_json(part)
    except SketchFileError as e:
        text = str(e)
        prefix = os.fspath(part) + ": "
        return "not a sketch-rnn model: " + (
            text[len(prefix) :] if text.startswith(prefix) else text
        )
    return None


def download_model(
    name: str,
    kind: str = "gen",
    *,
    progress: bool = True,
    timeout: float = 60.0,
    quiet: bool = False,
) -> Path:
    """The cached ``<name>.<kind>.json``, downloaded first (one line on stderr saying so)
    if it is not there. Raises :class:`ModelNameError` or :class:`ModelDownloadError` (one
    line naming the model and the URL; nothing but a resumable ``.part`` left in the cache,
    and not even that for a file that is not a sketch-rnn model)."""
    parse_model_name(f"{name}.{kind}")
    target = _cached_path(name, kind)
    if target.is_file():
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
        fetch_file(
            url,
            target,
            check=_check_model_file,
            label=f"{label}.json",
            not_found="not found (HTTP 404); this file is not (or no longer) in the collection",
            progress=progress,
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
            if k in model_kinds(name) and _cached_path(name, k).is_file():
                return _cached_path(name, k)
        kind = "gen"
    return download_model(name, kind, progress=progress)
