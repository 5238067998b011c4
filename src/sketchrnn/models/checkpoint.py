"""The training checkpoint, ``checkpoint.pt``: one ``torch.save`` of plain values and tensors
(read back ``weights_only``, so nothing is unpickled) holding

- ``format``, ``version``; ``model_class`` (a name of :data:`MODEL_CLASSES`), ``model_config``
  (its config as a dict, the model's units included) and ``model`` (the weights);
- what resuming needs: ``optimizer``, ``train_config``, ``step``, ``best_valid_loss``,
  ``skipped_steps``, ``batches_per_epoch``, ``max_len``, ``rng``, ``log_window``;
- ``checksum`` (below).

The Trainer (:mod:`sketchrnn.train`) writes it; :func:`model_from_checkpoint` rebuilds the
model from it.

**Damage is caught on load**, twice over:

- ``torch.save`` writes a zip archive holding a CRC-32 of every member (the pickle and each
  tensor's bytes), but ``torch.load`` never checks them, so a flipped byte inside a weight
  loads silently. :func:`load_checkpoint` reads every member with :mod:`zipfile` first, which
  checks each CRC (one extra read of the file). That also covers checkpoints written before
  any of this existed.
- The CRCs do not cover the archive's directory, which torch's reader interprets on its own
  (flipping one bit of a member's "directory" attribute there made ``torch.load`` return
  zeros for a weight, and every CRC passed). So :func:`save_checkpoint` also stores
  ``checksum``: a SHA-256 over every value of the state (tensors by dtype, shape and bytes),
  and :func:`load_checkpoint` recomputes it over what ``torch.load`` returned. Whatever the
  container does, the values trained on are the values written. A checkpoint without one
  (written before it existed, or edited by hand) loads on the CRCs alone.

Both find accidental damage, not deliberate tampering (nothing is unpickled either way).

Checkpoints of version 1 keep ``scale_factor`` and ``classes`` at the top level
and sketch-rnn's KL settings in ``train_config``; they are folded into the model config.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sketchrnn.io.files import SketchFileError, atomic_path
from sketchrnn.models.interface import LEGACY_UNIT_KEYS, SketchModel
from sketchrnn.models.registry import MODEL_CLASSES

__all__ = [
    "CHECKPOINT_NAME",
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "CheckpointError",
    "DamagedCheckpointError",
    "save_checkpoint",
    "load_checkpoint",
    "checkpoint_model_class",
    "checkpoint_model_config",
    "load_weights",
    "model_from_checkpoint",
    "verify_checkpoint_file",
    "content_checksum",
]

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_FORMAT = "sketchrnn.train.checkpoint"
# 2: the model's units (scale_factor, classes) and sketch-rnn's KL settings in model_config.
CHECKPOINT_VERSION = 2
# Version 1 kept sketch-rnn's KL settings in the train config.
_LEGACY_KL_KEYS = ("kl_weight", "kl_min", "kl_decay_rate", "kl_eta_min")


class CheckpointError(SketchFileError):
    """A checkpoint that is missing, unreadable, damaged, foreign, or does not fit the model or
    data."""


class DamagedCheckpointError(CheckpointError):
    """A checkpoint file whose bytes are not those written: it fails its checksums, or cannot
    be read back at all (truncated)."""


# Read members in pieces: a checkpoint of the paper's model is hundreds of MB.
_CHUNK = 1 << 22


_MSDOS_DIRECTORY = 0x10  # a zip member's external attribute bit


def verify_checkpoint_file(path: str | os.PathLike) -> None:
    """Check the CRC-32 of every member of the zip archive ``torch.save`` wrote at ``path``,
    and that none is marked as a folder; :class:`CheckpointError` (naming the file, saying it
    is damaged) where one is.

    A file that is not a zip archive at all (torch's legacy format, or not a torch file) is
    left to ``torch.load`` to judge.
    """
    try:
        if not zipfile.is_zipfile(path):
            return
    except (zipfile.BadZipFile, OSError, ValueError):
        pass  # an end record too damaged to tell: ZipFile below says what is wrong
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.is_dir() or info.external_attr & _MSDOS_DIRECTORY:
                    # torch.save writes no folders; torch's reader gives such a member as no
                    # bytes, and the tensor it held as uninitialised memory (whatever a freed
                    # buffer held: sometimes the very values, so the content checksum
                    # cannot be relied on to catch it)
                    raise DamagedCheckpointError(
                        path,
                        f"the file is damaged: its member {info.filename} is marked as a folder",
                    )
                with archive.open(info) as member:  # zipfile checks the CRC at its end
                    while member.read(_CHUNK):
                        pass
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DamagedCheckpointError(
            path,
            f"the file is damaged: its content no longer matches the checksums (CRC-32) it "
            f"was written with ({reason})",
        ) from None


def content_checksum(state: dict[str, Any]) -> str:
    """``"sha256:<hex>"`` over every value of ``state`` but its ``checksum``: dict keys and
    values in their order, tensors by dtype, shape and bytes, plain values by ``repr`` (exact
    for floats). The same for the state saved and the state ``torch.load`` gives back."""
    digest = hashlib.sha256()
    _hash_value(digest, {k: v for k, v in state.items() if k != "checksum"})
    return "sha256:" + digest.hexdigest()


def _hash_value(digest: Any, value: Any) -> None:
    if torch.is_tensor(value):
        t = value.detach().cpu().contiguous()
        digest.update(f"T{t.dtype}{tuple(t.shape)}|".encode())
        if t.numel():
            digest.update(t.reshape(-1).view(torch.uint8).numpy().data)
    elif isinstance(value, dict):
        digest.update(f"D{len(value)}|".encode())
        for k, v in value.items():
            _hash_value(digest, k)
            _hash_value(digest, v)
    elif isinstance(value, list | tuple):  # one tag for both: pickling may swap them
        digest.update(f"L{len(value)}|".encode())
        for v in value:
            _hash_value(digest, v)
    else:
        text = repr(value)
        digest.update(f"V{type(value).__name__}{len(text)}|{text}".encode())


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write ``state`` with ``torch.save`` atomically (never a half-written file), with its
    ``checksum`` (:func:`content_checksum`) added.

    Refuses (:class:`CheckpointError`) a state whose weights are not all finite.
    """
    for name, t in state.get("model", {}).items():
        if torch.is_tensor(t) and t.is_floating_point() and not torch.isfinite(t).all():
            raise CheckpointError(path, f"refusing to write it: parameter {name} is not finite")
    state = {**state, "checksum": content_checksum(state)}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by the Trainer (``weights_only``: nothing is unpickled).

    ``path`` may be the file or a run directory holding ``checkpoint.pt``.
    Every byte is checked against the checksums written with it first
    (:func:`verify_checkpoint_file`). Raises :class:`CheckpointError` for a missing, damaged,
    truncated or foreign file.
    """
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.exists():
        raise CheckpointError(
            path, "no checkpoint here; check the path, or start a fresh run without --resume"
        )
    verify_checkpoint_file(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, foreign pickle, not a torch file at all
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DamagedCheckpointError(
            path,
            "not a readable checkpoint (damaged, truncated or not written by sketchrnn): " + reason,
        ) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(path, "not a sketchrnn training checkpoint")
    stored = state.pop("checksum", None)
    if stored is not None and stored != content_checksum(state):
        raise DamagedCheckpointError(
            path,
            "the file is damaged: the values read back differ from those written (their "
            "SHA-256 checksum does not match)",
        )
    if state.get("version", 0) > CHECKPOINT_VERSION:
        raise CheckpointError(
            path,
            f"checkpoint format version {state.get('version')} is newer than this sketchrnn "
            f"reads ({CHECKPOINT_VERSION}); upgrade sketchrnn",
        )
    missing = [k for k in ("model", "model_config", "optimizer", "step") if k not in state]
    if missing:
        raise CheckpointError(path, f"checkpoint lacks {', '.join(missing)}")
    return state


def checkpoint_model_class(state: dict[str, Any], path: str | os.PathLike) -> type[SketchModel]:
    """The model class a checkpoint holds (``model_class``; older ones are sketch-rnn)."""
    name = state.get("model_class", "SketchRNN")
    if name not in MODEL_CLASSES:
        raise CheckpointError(
            path, f"unknown model class {name!r} (this sketchrnn knows {', '.join(MODEL_CLASSES)})"
        )
    return MODEL_CLASSES[name]


def checkpoint_model_config(state: dict[str, Any], path: str | os.PathLike) -> Any:
    """The model config a checkpoint holds, as its dataclass (older checkpoints upgraded:
    their top-level units and train-config KL settings folded in)."""
    config_class = checkpoint_model_class(state, path).config_class
    values = dict(state["model_config"])
    fields = {f.name for f in dataclasses.fields(config_class)}
    for key in LEGACY_UNIT_KEYS:
        if key in fields and key not in values and state.get(key) is not None:
            values[key] = state[key]
    if state.get("version", 1) < 2:
        saved_training = state.get("train_config") or {}
        for key in _LEGACY_KL_KEYS:
            if key in fields and key not in values and key in saved_training:
                values[key] = saved_training[key]
    try:
        return config_class.from_dict(values)
    except (TypeError, ValueError, KeyError) as e:
        raise CheckpointError(path, f"model config in the checkpoint is not valid: {e}") from None


def load_weights(model: nn.Module, weights: dict[str, torch.Tensor], path: Path) -> None:
    """``model.load_state_dict(weights)``, a :class:`CheckpointError` when they do not fit."""
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        detail = first[1].strip() if len(first) > 1 else first[0] if first else ""
        raise CheckpointError(
            path, f"weights do not match the model config stored with them ({detail})"
        ) from None


def model_from_checkpoint(
    path: str | os.PathLike, device: str | torch.device = "cpu"
) -> SketchModel:
    """The model a ``checkpoint.pt`` (or a run directory) holds, rebuilt from its class and
    config with its units, in eval mode on ``device``."""
    path = Path(path)
    file = path / CHECKPOINT_NAME if path.is_dir() else path
    state = load_checkpoint(file)
    model = checkpoint_model_class(state, file)(checkpoint_model_config(state, file))
    load_weights(model, state["model"], file)
    return model.to(device).eval()
