"""A training's run folder: who may write it, what a killed write left in it, and its
checkpoints (``checkpoint.pt``, the one before it, ``best/``).

- :class:`RunLock`: ``run.lock``, held with ``flock`` by the one training writing the folder,
  so a second training on the same ``--out`` fails at once naming the holder's process;
- :func:`lock_run_folder`: take it, then remove the unfinished files a ``kill -9`` during a
  write left (``.checkpoint.pt.*.part``, ``.best.part``, ...);
- :func:`read_run_checkpoint`: ``checkpoint.pt`` read for a resume, its checksums verified;
  when it is damaged, the error says which earlier checkpoint is kept
  (``checkpoint.prev.pt``, written beside it by :func:`keep_previous`, or ``best/``);
- :func:`save_run_checkpoint`, :func:`save_best`: the latest checkpoint (the one before it
  kept) and ``best/`` (a pretrained folder with its checkpoint), each replaced whole;
- :func:`check_resumable`: whether a checkpoint holds the run a model and data can continue;
- :func:`check_new_run` / :func:`clear_run`: a new training into a folder that holds a run
  (finished or not) is refused (:class:`RunExistsError`) unless it is told to replace it, so a
  finished run is never silently overwritten.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import os
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import Any

import torch.distributed as dist

from sketchrnn.io.files import atomic_path
from sketchrnn.models.checkpoint import (
    CHECKPOINT_NAME,
    CheckpointError,
    DamagedCheckpointError,
    checkpoint_model_class,
    checkpoint_model_config,
    load_checkpoint,
    save_checkpoint,
)
from sketchrnn.models.interface import SketchModel

try:  # POSIX; elsewhere run folders are not locked
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "LOCK_NAME",
    "PREVIOUS_CHECKPOINT_NAME",
    "RUN_FILES",
    "RunExistsError",
    "RunLock",
    "RunLockedError",
    "check_new_run",
    "clear_run",
    "keep_previous",
    "lock_run_folder",
    "read_run_checkpoint",
    "save_run_checkpoint",
    "save_best",
    "check_resumable",
]

PREVIOUS_CHECKPOINT_NAME = "checkpoint.prev.pt"
LOCK_NAME = "run.lock"


class RunLockedError(RuntimeError):
    """The run folder is in use by another training (the message names its process)."""


class RunLock:
    """An exclusive lock on a run folder, so that two trainings never write the same files.

    It is ``out_dir/run.lock`` held with ``fcntl.flock``: the kernel lets go of it when its
    process ends however it ends (``kill -9`` included), so a lock left by a dead process is
    simply taken over. The holder writes its pid, host and start time into the file for the
    error a second training gets; releasing empties it. (Where ``flock`` is missing or the
    file system refuses it, the folder is used unlocked, with a note.)
    """

    def __init__(self, out_dir: str | os.PathLike):
        self.path = Path(out_dir) / LOCK_NAME
        self._file: Any = None
        self._created: list[Path] = []  # the folders acquire() made, the run folder first

    @property
    def held(self) -> bool:
        return self._file is not None

    def acquire(self) -> RunLock:
        """Take the lock (creating the folder); :class:`RunLockedError` when another process,
        or another open Trainer of this one, holds it."""
        if self._file is not None:
            return self
        folder, self._created = self.path.parent, []
        while not folder.exists() and folder != folder.parent:
            self._created.append(folder)
            folder = folder.parent
        self.path.parent.mkdir(parents=True, exist_ok=True)
        file = open(self.path, "a+")  # noqa: SIM115 (held open while the lock is)
        if fcntl is None:
            file.close()
            return self
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._holder(file)
            file.close()
            raise RunLockedError(self._locked_message(holder)) from None
        except OSError as e:
            file.close()
            print(f"{self.path}: cannot lock the run folder ({e}); let no other training use it")
            return self
        left = self._read(file)
        if left and left.get("pid") != os.getpid():
            print(
                f"{self.path}: taking over the lock left by {_describe_holder(left)}, "
                "which no longer holds it"
            )
        file.seek(0)
        file.truncate()
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "command": " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]])[:300],
        }
        file.write(json.dumps(holder) + "\n")
        file.flush()
        self._file = file
        return self

    def release(self) -> None:
        """Let go of the lock (emptying the file first: no stale holder is left in it)."""
        file, self._file = self._file, None
        if file is None:
            return
        try:
            file.seek(0)
            file.truncate()
            file.flush()
        finally:
            file.close()  # closing the descriptor releases the flock

    def discard(self) -> None:
        """Release, and remove the folder again if :meth:`acquire` created it and nothing but
        the lock file is in it (a training that failed to start leaves no empty run folder),
        with the folders above it that it created too (``--out new/run``: ``new/`` as well)."""
        held = self.held
        self.release()
        folder = self.path.parent
        if not (held and self._created and self._created[0] == folder):
            return
        if [p.name for p in folder.iterdir()] == [LOCK_NAME]:
            self.path.unlink(missing_ok=True)
            for made in self._created:  # deepest first; one that is not empty stays
                try:
                    made.rmdir()
                except OSError:
                    break

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def __del__(self) -> None:
        try:
            self.release()
        except Exception:  # interpreter shutdown: the kernel drops the lock anyway
            pass

    @staticmethod
    def _read(file: Any) -> dict[str, Any]:
        try:
            file.seek(0)
            text = file.read().strip()
            value = json.loads(text) if text else {}
            return value if isinstance(value, dict) else {}
        except (OSError, ValueError):
            return {}

    def _holder(self, file: Any) -> dict[str, Any]:
        # The holder writes its details right after taking the lock: wait a moment for them.
        for _ in range(20):
            holder = self._read(file)
            if holder:
                return holder
            time.sleep(0.025)
        return {}

    def _locked_message(self, holder: dict[str, Any]) -> str:
        folder = self.path.parent
        if holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
            return (
                f"{folder}: this process (pid {os.getpid()}) is already training into this run "
                "folder with another Trainer; let it finish or close() it first"
            )
        who = _describe_holder(holder) if holder else "another process (it gave no details)"
        return (
            f"{folder}: the run folder is in use by {who}; wait for that training to end or "
            f"stop it, or train into another --out (its lock: {self.path})"
        )


def _describe_holder(holder: dict[str, Any]) -> str:
    """``"pid 123 on host1 since 2026-01-02 03:04:05 UTC (sketchrnn train ...)"``."""
    text = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}"
    if holder.get("started"):
        text += f" since {holder['started']}"
    if holder.get("command"):
        text += f" ({holder['command']})"
    return text


# Files a run folder's writers leave half-done when killed mid-write: the temporary files of
# atomic_path (".NAME.*.part") and the staging folders of best/.
_ORPHAN_PATTERNS = tuple(
    f".{name}.*.part" for name in (CHECKPOINT_NAME, PREVIOUS_CHECKPOINT_NAME, "log.csv")
) + (".best.part", ".best.old")


def _remove_orphans(out_dir: Path) -> list[str]:
    """Remove what a write interrupted by a kill left in ``out_dir`` (call it holding the
    run's lock: then no live writer can own them); returns their names. ``best/`` itself is
    put back from ``.best.old`` if the kill fell between the two renames that replace it."""
    best, old = out_dir / "best", out_dir / ".best.old"
    if old.is_dir() and not best.exists():
        os.replace(old, best)
        print(f"{out_dir}: put back best/ from .best.old (a replacement of it was interrupted)")
    removed = []
    for pattern in _ORPHAN_PATTERNS:
        for path in sorted(out_dir.glob(pattern)):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path.name)
    if removed:
        print(
            f"{out_dir}: removed {len(removed)} unfinished file(s) an interrupted write left: "
            + ", ".join(removed)
        )
    return removed


def keep_previous(path: Path, previous: Path) -> None:
    """Make ``previous`` the file ``path`` is now (a hard link where the file system allows,
    else a copy), atomically: ``path`` is about to be replaced.

    ``previous`` may already be a hard link of ``path`` (a kill fell between this and the
    replacement of ``path``): then there is nothing to do, and renaming a new link onto it
    would do nothing either (POSIX: a rename between two links of one file leaves both), so
    the temporary link would stay behind."""
    with contextlib.suppress(OSError):
        if os.path.samefile(path, previous):
            return
    with atomic_path(previous) as tmp:
        tmp.unlink()
        try:
            os.link(path, tmp)
        except OSError:
            shutil.copyfile(path, tmp)
    tmp.unlink(missing_ok=True)  # in case the rename did nothing after all (see above)


# What a training writes into its run folder (beside run.lock): a folder holding any of them
# holds a run.
RUN_FILES = (CHECKPOINT_NAME, PREVIOUS_CHECKPOINT_NAME, "best", "log.csv", "tensorboard")


class RunExistsError(RuntimeError):
    """A new training would replace the run in its folder (the message names the folder and
    says how to continue it or replace it)."""


def check_new_run(out_dir: str | os.PathLike, overwrite: bool = False) -> list[Path]:
    """The files of an earlier run in ``out_dir`` (:data:`RUN_FILES`, finished or not), which
    a new training there would replace: :class:`RunExistsError` naming the folder when there
    are any and ``overwrite`` is false, else their paths (for :func:`clear_run`)."""
    out_dir = Path(out_dir)
    found = [out_dir / name for name in RUN_FILES if (out_dir / name).exists()]
    if found and not overwrite:
        raise RunExistsError(
            f"{out_dir}: holds a training run{_run_step(out_dir)}; continue it with --resume, "
            "replace it with --overwrite, or train into another --out"
        )
    return found


def _run_step(out_dir: Path) -> str:
    """``" (at step 60 of 60)"`` from the run's checkpoint, or ``""`` when it cannot tell."""
    try:
        state = load_checkpoint(out_dir / CHECKPOINT_NAME)
        step = int(state["step"])
        total = int((state.get("train_config") or {}).get("max_steps", 0))
    except (CheckpointError, KeyError, TypeError, ValueError):
        return ""
    return f" (at step {step:,} of {total:,})" if total else f" (at step {step:,})"


def clear_run(out_dir: str | os.PathLike) -> list[str]:
    """Remove the files of an earlier run from ``out_dir`` (:data:`RUN_FILES`; call it
    holding the folder's lock, once the new training is ready to start); returns their names.
    Anything else in the folder is left."""
    removed = []
    for path in check_new_run(out_dir, overwrite=True):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
        removed.append(path.name)
    return removed


def lock_run_folder(out_dir: str | os.PathLike) -> RunLock | None:
    """Lock ``out_dir`` (:class:`RunLock`, creating it), then remove what a killed write left
    in it; on DDP ranks other than 0 (they write no files) nothing, and ``None``. Pass the lock
    to the :class:`Trainer` (``run_lock``): ``sketchrnn train`` takes it before loading the
    data, so that a second training on the folder fails at once."""
    rank = dist.get_rank() if dist.is_initialized() else int(os.environ.get("RANK", "0"))
    if rank != 0:
        return None
    out_dir = Path(out_dir)
    lock = RunLock(out_dir).acquire()
    try:
        _remove_orphans(out_dir)
    except BaseException:
        lock.release()
        raise
    return lock


def read_run_checkpoint(out_dir: str | os.PathLike) -> dict[str, Any]:
    """``out_dir/checkpoint.pt`` read for a resume (:func:`load_checkpoint`: its checksums
    verified); when it cannot be used the error also says what is kept to resume from instead
    (``checkpoint.prev.pt``, ``best/checkpoint.pt``)."""
    path = Path(out_dir) / CHECKPOINT_NAME
    try:
        return load_checkpoint(path)
    except DamagedCheckpointError as e:
        message = f"{_message_of(e, path)}; {_fallbacks(path.parent)}"
        raise DamagedCheckpointError(path, message) from None


def _message_of(error: CheckpointError, path: Path) -> str:
    """The error's text without the leading ``"path: "``."""
    text, prefix = str(error), f"{os.fspath(path)}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


def _fallbacks(out_dir: Path) -> str:
    """What a resume can use when ``out_dir/checkpoint.pt`` is damaged, checked."""
    for candidate, what in (
        (out_dir / PREVIOUS_CHECKPOINT_NAME, "the previous checkpoint"),
        (out_dir / "best" / CHECKPOINT_NAME, "the best one so far"),
    ):
        if not candidate.is_file():
            continue
        try:
            step = int(load_checkpoint(candidate)["step"])
        except (CheckpointError, KeyError, TypeError, ValueError):
            continue
        return (
            f"{what} is kept and reads fine: {candidate} (step {step}); copy it over "
            f"{CHECKPOINT_NAME} to resume from there, or start afresh without --resume"
        )
    return "no earlier checkpoint is kept here; start afresh without --resume"


def save_run_checkpoint(out_dir: Path, state: dict[str, Any]) -> Path:
    """Write ``state`` as ``out_dir/checkpoint.pt``, the one it replaces kept as
    ``checkpoint.prev.pt``; returns its path."""
    path = out_dir / CHECKPOINT_NAME
    if path.exists():
        keep_previous(path, out_dir / PREVIOUS_CHECKPOINT_NAME)
    save_checkpoint(path, state)
    return path


def save_best(out_dir: Path, model: SketchModel, state: dict[str, Any]) -> None:
    """Replace ``out_dir/best`` by a freshly written directory (never a half-written one): the
    model as a pretrained folder, with ``state`` as its ``checkpoint.pt``."""
    best = out_dir / "best"
    tmp = out_dir / ".best.part"
    old = out_dir / ".best.old"
    for d in (tmp, old):
        shutil.rmtree(d, ignore_errors=True)
    try:
        model.save_pretrained(tmp)
        save_checkpoint(tmp / CHECKPOINT_NAME, state)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if best.exists():
        os.replace(best, old)
    os.replace(tmp, best)
    shutil.rmtree(old, ignore_errors=True)


def check_resumable(
    state: dict[str, Any], path: Path, model: SketchModel, data_scale: float | None
) -> None:
    """CheckpointError unless the checkpoint ``state`` (read from ``path``) holds a run of
    ``model``'s class trained on data of scale factor ``data_scale`` (``None``: unknown)."""
    theirs_class = checkpoint_model_class(state, path)
    if type(model) is not theirs_class:
        raise CheckpointError(
            path,
            f"the checkpoint holds a {theirs_class.__name__}, not a {type(model).__name__}; "
            "resume with the same --model, or use a new --out-dir",
        )
    theirs = checkpoint_model_config(state, path)
    if theirs.scale_factor is not None and data_scale is not None:
        if not math.isclose(theirs.scale_factor, data_scale, rel_tol=1e-6):
            raise CheckpointError(
                path,
                f"trained on data with scale factor {theirs.scale_factor:.6g} but this data "
                f"has {data_scale:.6g}; resume with the same --data",
            )
