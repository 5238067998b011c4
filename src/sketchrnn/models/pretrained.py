"""The one on-disk form of every model, a pretrained folder: ``config.json`` beside
``model.safetensors`` (:meth:`sketchrnn.models.interface.SketchModel.save_pretrained` writes it).

``config.json`` holds ``format`` (``"sketchrnn."`` + the model's class name), ``format_version``,
``config`` (the model's config dataclass as a dict, its units included) and ``weights_sha256``,
the SHA-256 of ``model.safetensors``: loading checks it, so one flipped byte in the weights is a
:class:`ModelFileError`, not a model that silently draws something else (a folder written
before the digest existed loads without the check). Files written before the units joined the
config keep ``scale_factor`` and ``classes`` beside it; readers fold them in. Every file is
written through :func:`sketchrnn.io.files.atomic_path`, so a failed save never leaves a
half-written model; every problem on loading is a :class:`ModelFileError` naming the file and
what to do.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from sketchrnn.io.files import SketchFileError, atomic_path

__all__ = [
    "CONFIG_FILE",
    "WEIGHTS_FILE",
    "ModelFileError",
    "save_pretrained_files",
    "load_pretrained_files",
    "check_weights_match",
    "read_format",
    "record_weights_digest",
    "weights_digest",
]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
# The key of config.json holding the weights file's SHA-256 (hex).
DIGEST_KEY = "weights_sha256"
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


def weights_digest(path: str | os.PathLike) -> str:
    """The SHA-256 (hex) of the file at ``path``, read in pieces (weights run to hundreds of
    MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


class ModelFileError(SketchFileError):
    """A saved model that cannot be loaded: missing, truncated, foreign, or a config that does
    not match its weights. The message names the file and says what to do."""


def save_pretrained_files(
    directory: str | os.PathLike,
    format_name: str,
    format_version: int,
    config_dict: dict[str, Any],
    state_dict: dict[str, Tensor],
) -> None:
    """Write ``model.safetensors`` (``state_dict`` on the CPU) and ``config.json``
    (``format``, ``format_version``, ``config``) into ``directory``, each replaced
    atomically. The weights go first: a config never points at missing weights."""
    directory = Path(directory)
    meta: dict[str, Any] = {
        "format": format_name,
        "format_version": format_version,
        "config": config_dict,
    }
    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    with atomic_path(directory / WEIGHTS_FILE) as tmp:
        save_file(tensors, os.fspath(tmp), metadata={"format": format_name})
        meta[DIGEST_KEY] = weights_digest(tmp)
    _write_meta(directory / CONFIG_FILE, meta)


def _write_meta(config_path: Path, meta: dict[str, Any]) -> None:
    with atomic_path(config_path) as tmp:
        tmp.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def record_weights_digest(directory: str | os.PathLike) -> str:
    """Record the SHA-256 of ``directory``'s ``model.safetensors`` in its ``config.json``
    (after the weights were rewritten on purpose, e.g. cast to float16); returns it."""
    directory = Path(directory)
    config_path = directory / CONFIG_FILE
    meta = json.loads(config_path.read_text(encoding="utf-8"))
    meta[DIGEST_KEY] = weights_digest(directory / WEIGHTS_FILE)
    _write_meta(config_path, meta)
    return meta[DIGEST_KEY]


def load_pretrained_files(
    directory: str | os.PathLike,
    format_name: str,
    format_version: int,
    *,
    label: str = "model",
) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """Read a directory written by :func:`save_pretrained_files` -> ``(meta, tensors)``.

    Checks that ``config.json`` is JSON of ``format_name`` at a version up to
    ``format_version`` and that the weights are a readable safetensors file; the caller builds
    its config from ``meta["config"]`` and then calls :func:`check_weights_match`
    (``SketchModel.from_pretrained`` does all of it). ``label`` names the model kind in the
    errors.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ModelFileError(
            directory, f"no such {label} directory (write one with save_pretrained)"
        )
    config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    meta = _read_meta(config_path, format_name, format_version)
    if not weights_path.is_file():
        raise ModelFileError(
            weights_path, "missing; copy it from where config.json came from, or re-save"
        )
    _check_weights_digest(meta, config_path, weights_path)
    try:
        tensors = load_file(weights_path)
    except (SafetensorError, OSError, ValueError) as err:
        raise ModelFileError(
            weights_path,
            f"not a readable safetensors file (truncated or foreign?): {err}; "
            "re-save or re-download the model",
        ) from None
    return meta, tensors


def _check_weights_digest(meta: dict[str, Any], config_path: Path, weights_path: Path) -> None:
    """ModelFileError when config.json records a digest of the weights and the file's differs
    (a folder without one, written before digests were recorded, is not checked)."""
    recorded = meta.get(DIGEST_KEY)
    if recorded is None:
        return
    if not isinstance(recorded, str) or not _HEX_DIGEST.fullmatch(recorded):
        raise ModelFileError(
            config_path, f"{DIGEST_KEY} is not a SHA-256 (64 hex digits): {recorded!r:.80}"
        )
    try:
        found = weights_digest(weights_path)
    except OSError as err:
        raise ModelFileError(weights_path, f"cannot read it ({err.strerror or err})") from None
    if found != recorded:
        raise ModelFileError(
            weights_path,
            f"damaged or replaced: its SHA-256 ({found[:12]}...) differs from the one "
            f"{CONFIG_FILE} records ({recorded[:12]}...); re-save or re-download the model, "
            "or copy both files from where they came from",
        )


def _read_meta(config_path: Path, format_name: str, format_version: int) -> dict[str, Any]:
    if not config_path.is_file():
        raise ModelFileError(
            config_path, "missing; a model directory holds config.json and model.safetensors"
        )
    try:
        meta = json.loads(config_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelFileError(config_path, f"not valid JSON ({err}); re-save the model") from None
    if not isinstance(meta, dict) or meta.get("format") != format_name:
        kind = format_name.rsplit(".", 1)[-1]
        raise ModelFileError(config_path, f"not a {kind} config (expected format {format_name!r})")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > format_version:
        raise ModelFileError(
            config_path,
            f"format_version {version!r} is not supported (this sketchrnn reads up to "
            f"{format_version}); upgrade sketchrnn",
        )
    return meta


def check_weights_match(
    directory: str | os.PathLike, expected: dict[str, Tensor], found: dict[str, Tensor]
) -> None:
    """One clear error listing what differs between the config's model (``expected``, its
    state dict) and the weights read from the file (``found``)."""
    weights_path = Path(directory) / WEIGHTS_FILE
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong_shape = [
        f"{k} {tuple(found[k].shape)} vs {tuple(expected[k].shape)}"
        for k in sorted(set(expected) & set(found))
        if found[k].shape != expected[k].shape
    ]
    problems = []
    if missing:
        problems.append(f"missing {', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else ""))
    if unexpected:
        more = " ..." if len(unexpected) > 5 else ""
        problems.append(f"unexpected {', '.join(unexpected[:5])}{more}")
    if wrong_shape:
        more = " ..." if len(wrong_shape) > 5 else ""
        problems.append(f"wrong shape (file vs config) {'; '.join(wrong_shape[:5])}{more}")
    if problems:
        raise ModelFileError(
            weights_path,
            "does not match config.json: "
            + "; ".join(problems)
            + "; save config and weights together with save_pretrained",
        )


def read_format(directory: str | os.PathLike) -> str | None:
    """The ``format`` a pretrained folder's ``config.json`` names, or ``None`` when it cannot
    be read (the loader of the folder then explains what is wrong)."""
    try:
        meta = json.loads((Path(directory) / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    fmt = meta.get("format") if isinstance(meta, dict) else None
    return fmt if isinstance(fmt, str) else None
