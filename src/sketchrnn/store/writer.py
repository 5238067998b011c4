"""Writing a store: :class:`StoreWriter`, streaming, atomic, resumable per source.

A writer appends each source's sketches to growing files in ``<out>.part/``. After each
source, the files are flushed to disk and a progress record (``progress.json``, replaced
atomically) notes how many bytes of each file are committed. A writer that is killed leaves
``<out>`` as it was; a new writer for the same job truncates the files to the last commit and
continues with the next source. Only when every source is in are the ``.npy`` headers written
(the data start at a fixed offset, so the header holding the final length can come last),
the digest of every file taken, the manifest written, and ``<out>.part`` renamed to
``<out>``: a store that opens is a complete one. :meth:`StoreWriter.discard` removes the
``.part`` folder (what a failed :func:`~sketchrnn.store.packing.pack` does).

The train split's offset sums are gathered per sketch length, so that the scale factor of any
length filter is exact at open without reading the points.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import sketchrnn
from sketchrnn import strokes as S
from sketchrnn.io.files import SketchFileError
from sketchrnn.io.sketchset import SPLITS
from sketchrnn.store.digest import DIGEST_ALGORITHM, file_digest
from sketchrnn.store.format import HEADER_BYTES, npy_header
from sketchrnn.store.manifest import (
    ARRAY_FILES,
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST_NAME,
    SPLIT_CODES,
    manifest_digest,
    offset_std,
)

__all__ = ["StoreWriter"]

logger = logging.getLogger(__name__)

PROGRESS_NAME = "progress.json"
_LOCAL_LABELS = "labels-local.part"  # int32 ids into the writer's first-seen class order
_CHUNK_ROWS = 1 << 22  # rows per chunk when a file is rewritten (dtype upgrade, labels)
_INT16 = np.iinfo(np.int16)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can open a folder
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _append(path: Path, committed: int, data: np.ndarray) -> int:
    """Write ``data`` at byte ``committed`` of ``path`` (cutting anything after it: the
    remains of an interrupted append), flush it to disk, return the new committed size."""
    with open(path, "r+b") as f:
        f.truncate(committed)
        f.seek(committed)
        f.write(np.ascontiguousarray(data).data)
        f.flush()
        os.fsync(f.fileno())
    return committed + data.nbytes


def _new_file(path: Path) -> None:
    with open(path, "wb") as f:
        f.write(b"\0" * HEADER_BYTES)  # room for the .npy header, written last


def _train_offset_stats(
    points: np.ndarray, lengths: np.ndarray, train: np.ndarray, offset_limit: float | None
) -> dict[int, list[float]]:
    """``{length: [count, sum, sum of squares]}`` of the ``dx, dy`` values of the train
    sketches, clipped as :func:`sketchrnn.strokes.clamp_offsets` clips them (in float32).
    Worked through in chunks of about :data:`_CHUNK_ROWS` points (bounded extra memory)."""
    if not train.any():
        return {}
    ends = np.cumsum(lengths)
    top = int(lengths[train].max()) + 1
    sums, squares = np.zeros(top), np.zeros(top)
    counts = np.bincount(lengths[train], minlength=top)
    first = 0
    while first < len(lengths):
        base = ends[first] - lengths[first]
        last = max(int(np.searchsorted(ends, base + _CHUNK_ROWS, side="right")), first + 1)
        xy = np.array(points[base : ends[last - 1], 0:2], dtype=np.float32)
        if offset_limit is not None:
            np.clip(xy, -offset_limit, offset_limit, out=xy)
        values = xy.astype(np.float64)
        starts = ends[first:last] - lengths[first:last] - base
        mine = train[first:last]
        n = lengths[first:last][mine]
        per_sum = np.add.reduceat(values[:, 0] + values[:, 1], starts)[mine]
        per_sq = np.add.reduceat(values[:, 0] ** 2 + values[:, 1] ** 2, starts)[mine]
        sums += np.bincount(n, weights=per_sum, minlength=top)
        squares += np.bincount(n, weights=per_sq, minlength=top)
        first = last
    return {
        int(k): [float(2 * k * counts[k]), float(sums[k]), float(squares[k])]
        for k in np.flatnonzero(counts)
    }


class StoreWriter:
    """A store under construction in ``<out_dir>.part``, filled one source at a time.

    ``job`` describes the whole pack (sources with fingerprints, options); a writer finding a
    ``.part`` folder from the same job continues it (:attr:`completed` sources are in),
    otherwise it starts afresh. :meth:`append` adds one source and commits it;
    :meth:`finish` writes headers and manifest and renames the folder to ``out_dir``.
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        job: dict[str, Any],
        *,
        overwrite: bool = False,
        resume: bool = True,
    ):
        self.out_dir = Path(out_dir)
        self.part = self.out_dir.with_name(self.out_dir.name + ".part")
        self.overwrite = overwrite
        self.job = json.loads(json.dumps(job))  # as it will read back from progress.json
        self.offset_limit = job.get("options", {}).get("offset_limit", 1000.0)
        self._check_out_dir()
        # Folders made for the store, removed again if the pack fails (nothing left behind).
        self._made = [p for p in self.out_dir.parents if not p.exists()][::-1]
        self.out_dir.parent.mkdir(parents=True, exist_ok=True)
        self._lock = self._take_lock()
        try:
            resumed = self._resume() if resume else None
            self.state: dict[str, Any] = resumed if resumed is not None else self._start()
        except Exception:
            self.discard()
            raise
        except BaseException:
            self._release_lock()
            raise

    # -- setup

    def _check_out_dir(self) -> None:
        if not self.out_dir.exists():
            return
        if not self.overwrite:
            raise SketchFileError(
                self.out_dir, "already exists (overwrite=True, or --overwrite, replaces it)"
            )
        # Only a folder with a store's manifest is replaced (not any folder with a points.npy).
        if not (self.out_dir.is_dir() and os.path.lexists(self.out_dir / MANIFEST_NAME)):
            raise SketchFileError(
                self.out_dir, "exists and is not a packed store: refusing to replace it"
            )

    def _take_lock(self):
        lock_path = self.out_dir.with_name(f".{self.out_dir.name}.pack.lock")
        handle = open(lock_path, "a+b")  # noqa: SIM115 (held until finish or close)
        try:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # no fcntl (Windows): no protection against two packs at once
            pass
        except OSError:
            handle.close()
            raise SketchFileError(
                self.out_dir, "another pack into this store is running (its lock is held)"
            ) from None
        return (lock_path, handle)

    def _release_lock(self) -> None:
        if self._lock is None:
            return
        lock_path, handle = self._lock
        self._lock = None
        with contextlib.suppress(OSError):
            lock_path.unlink()
        handle.close()

    def close(self) -> None:
        """Stop writing (the ``.part`` folder stays, to be resumed)."""
        self._release_lock()

    def discard(self) -> None:
        """Stop writing and remove the ``.part`` folder (and the folders made for the store,
        when empty): what a pack that failed does, leaving nothing behind."""
        shutil.rmtree(self.part, ignore_errors=True)
        self._release_lock()
        for folder in reversed(self._made):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if empty

    def _start(self) -> dict[str, Any]:
        if self.part.exists():
            shutil.rmtree(self.part)
        self.part.mkdir()
        state = {
            "job": self.job,
            "points_dtype": "int16",
            "num_sketches": 0,
            "num_points": 0,
            "class_order": [],
            "stats": {},
            "sources": [],
            "bytes": {},
        }
        for name in (self._points_name("int16"), ARRAY_FILES["offsets"], ARRAY_FILES["splits"]):
            _new_file(self.part / name)
        _new_file(self.part / _LOCAL_LABELS)
        state["bytes"] = {
            self._points_name("int16"): HEADER_BYTES,
            ARRAY_FILES["offsets"]: _append(
                self.part / ARRAY_FILES["offsets"], HEADER_BYTES, np.zeros(1, np.int64)
            ),
            ARRAY_FILES["splits"]: HEADER_BYTES,
            _LOCAL_LABELS: HEADER_BYTES,
        }
        _write_json_atomic(self.part / PROGRESS_NAME, state)
        return state

    def _resume(self) -> dict[str, Any] | None:
        record = self.part / PROGRESS_NAME
        if not record.is_file():
            return None
        try:
            state = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            logger.warning("%s: unreadable progress record, packing from the start", record)
            return None
        if state.get("job") != self.job:
            logger.info("%s: a different pack (sources or options changed): starting over", record)
            return None
        for name, size in state["bytes"].items():
            file = self.part / name
            if not file.is_file() or file.stat().st_size < size:
                logger.warning("%s: shorter than its last commit: starting over", file)
                return None
        for name, size in state["bytes"].items():
            with open(self.part / name, "r+b") as f:
                f.truncate(size)
        for file in self.part.iterdir():  # e.g. an interrupted dtype upgrade's other file
            if file.name not in state["bytes"] and file.name != PROGRESS_NAME:
                file.unlink()
        logger.info(
            "%s: resuming after %d of %d sources",
            self.part,
            len(state["sources"]),
            len(self.job.get("sources", [])),
        )
        return state

    @property
    def completed(self) -> int:
        """How many sources are committed (a resumed pack skips that many)."""
        return len(self.state["sources"])

    @staticmethod
    def _points_name(dtype: str) -> str:
        return f"points-{dtype}.part"

    # -- appending

    def _commit(self) -> None:
        _write_json_atomic(self.part / PROGRESS_NAME, self.state)

    def _upgrade_points(self) -> None:
        """int16 -> float32 for all points so far (chunked), then commit the new file."""
        old, new = self._points_name("int16"), self._points_name("float32")
        source = np.memmap(
            self.part / old,
            dtype=np.int16,
            mode="r",
            offset=HEADER_BYTES,
            shape=(self.state["num_points"], 3),
        )
        _new_file(self.part / new)
        size = HEADER_BYTES
        with open(self.part / new, "r+b") as f:
            f.seek(size)
            for a in range(0, len(source), _CHUNK_ROWS):
                chunk = np.asarray(source[a : a + _CHUNK_ROWS], dtype=np.float32)
                f.write(chunk.data)
                size += chunk.nbytes
            f.flush()
            os.fsync(f.fileno())
        del source
        self.state["points_dtype"] = "float32"
        self.state["bytes"].pop(old)
        self.state["bytes"][new] = size
        self._commit()
        (self.part / old).unlink()

    def append(
        self,
        entry: dict[str, Any],
        points: np.ndarray,
        lengths: np.ndarray,
        label_names: Sequence[str],
        label_ids: np.ndarray,
        split_codes: np.ndarray,
    ) -> None:
        """Add one source's sketches and commit them.

        ``points`` ``(sum(lengths), 3)`` stroke-3 rows (validated: finite, pen 0/1);
        ``lengths`` ``(k,)`` >= 1; ``label_ids`` ``(k,)`` indices into ``label_names``;
        ``split_codes`` ``(k,)`` uint8 (:data:`SPLIT_CODES`). ``entry`` is the source's
        provenance record for the manifest (its sketch range is added here).
        """
        k = len(lengths)
        lengths = np.asarray(lengths, dtype=np.int64)
        split_codes = np.asarray(split_codes, dtype=np.uint8)
        if points.shape != (int(lengths.sum()), 3) or len(label_ids) != k or len(split_codes) != k:
            raise ValueError("points, lengths, labels and splits of a source do not agree")
        state = self.state
        integral = points.dtype.kind in "iu" or bool(np.array_equal(points, np.round(points)))
        fits = len(points) == 0 or (points.min() >= _INT16.min and points.max() <= _INT16.max)
        if state["points_dtype"] == "int16" and not (integral and fits):
            self._upgrade_points()
        dtype = np.dtype(state["points_dtype"])
        # Class ids in first-seen order (renumbered to sorted order at finish).
        order = state["class_order"]
        known = {name: i for i, name in enumerate(order)}
        for name in label_names:
            if name not in known:
                known[name] = len(order)
                order.append(name)
        lut = np.array([known[name] for name in label_names], dtype=np.int32)
        ids = lut[np.asarray(label_ids, dtype=np.int64)] if k else np.zeros(0, np.int32)
        stats = _train_offset_stats(
            points, lengths, split_codes == SPLIT_CODES["train"], self.offset_limit
        )
        b = state["bytes"]
        pname = self._points_name(state["points_dtype"])
        offsets = state["num_points"] + np.cumsum(lengths)
        b[pname] = _append(self.part / pname, b[pname], points.astype(dtype, copy=False))
        b[ARRAY_FILES["offsets"]] = _append(
            self.part / ARRAY_FILES["offsets"], b[ARRAY_FILES["offsets"]], offsets
        )
        b[_LOCAL_LABELS] = _append(self.part / _LOCAL_LABELS, b[_LOCAL_LABELS], ids)
        b[ARRAY_FILES["splits"]] = _append(
            self.part / ARRAY_FILES["splits"], b[ARRAY_FILES["splits"]], split_codes
        )
        counts = np.bincount(split_codes, minlength=len(SPLITS))
        entry = dict(entry)
        entry.update(
            first=state["num_sketches"],
            count=k,
            points=int(len(points)),
            splits={name: int(counts[c]) for name, c in SPLIT_CODES.items()},
        )
        for length, row in stats.items():
            old = state["stats"].setdefault(str(length), [0.0, 0.0, 0.0])
            state["stats"][str(length)] = [x + y for x, y in zip(old, row, strict=True)]
        state["sources"].append(entry)
        state["num_sketches"] += k
        state["num_points"] += int(len(points))
        self._commit()

    # -- finishing

    def finish(self) -> Path:
        """Write the headers and the manifest, and rename ``<out>.part`` to ``<out>``."""
        state, part = self.state, self.part
        n, total = state["num_sketches"], state["num_points"]
        if n == 0:
            raise SketchFileError(self.out_dir, "nothing to pack: no sketches in the sources")
        classes = sorted(state["class_order"])
        rank = {name: i for i, name in enumerate(classes)}
        labels_dtype = np.int16 if len(classes) <= _INT16.max else np.int32
        lut = np.array([rank[name] for name in state["class_order"]], dtype=labels_dtype)
        local = np.memmap(
            part / _LOCAL_LABELS, dtype=np.int32, mode="r", offset=HEADER_BYTES, shape=(n,)
        )
        with open(part / ARRAY_FILES["labels"], "wb") as f:
            f.write(npy_header((n,), labels_dtype))
            for a in range(0, n, _CHUNK_ROWS):
                f.write(lut[local[a : a + _CHUNK_ROWS]].data)
            f.flush()
            os.fsync(f.fileno())
        del local
        pname = self._points_name(state["points_dtype"])
        headers = {
            pname: npy_header((total, 3), state["points_dtype"]),
            ARRAY_FILES["offsets"]: npy_header((n + 1,), np.int64),
            ARRAY_FILES["splits"]: npy_header((n,), np.uint8),
        }
        for name, header in headers.items():
            with open(part / name, "r+b") as f:
                f.write(header)
                f.flush()
                os.fsync(f.fileno())
        # Each file's digest as it lies on disk (read back once, in bounded memory).
        digests = {"algorithm": DIGEST_ALGORITHM}
        for key, name in ARRAY_FILES.items():
            digests[key] = file_digest(part / (pname if key == "points" else name))
        manifest = self._manifest(classes, labels_dtype, digests)
        _write_json_atomic(part / MANIFEST_NAME, manifest)
        os.replace(part / pname, part / ARRAY_FILES["points"])
        (part / _LOCAL_LABELS).unlink()
        (part / PROGRESS_NAME).unlink()
        _fsync_dir(part)
        self._check_out_dir()
        if self.out_dir.exists():
            old = self.out_dir.with_name(self.out_dir.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(self.out_dir, old)
            os.replace(part, self.out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(part, self.out_dir)
        _fsync_dir(self.out_dir.parent)
        self._release_lock()
        return self.out_dir

    def _manifest(
        self, classes: list[str], labels_dtype: type, digests: dict[str, str]
    ) -> dict[str, Any]:
        state = self.state
        by_length = sorted(
            [int(length), *row] for length, row in state["stats"].items() if row[0] > 0
        )
        split_counts = {name: 0 for name in SPLITS}
        dropped: dict[str, int] = {}
        for source in state["sources"]:
            for name, count in source["splits"].items():
                split_counts[name] += count
            for why, count in source.get("dropped", {}).items():
                dropped[why] = dropped.get(why, 0) + count
        totals = [sum(r[i] for r in by_length) for i in (1, 2, 3)]
        try:
            scale = offset_std(*totals)
        except S.SketchError:
            scale = None
        manifest = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "created_by": f"sketchrnn {sketchrnn.__version__}",
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "num_sketches": state["num_sketches"],
            "num_points": state["num_points"],
            "points_dtype": state["points_dtype"],
            "labels_dtype": np.dtype(labels_dtype).name,
            "files": dict(ARRAY_FILES),
            "classes": classes,
            "split_names": list(SPLITS),
            "split_counts": split_counts,
            "options": self.job.get("options", {}),
            "scale_factor": scale,
            "train_offset_stats": {"offset_limit": self.offset_limit, "by_length": by_length},
            "dropped": dropped,
            "sources": state["sources"],
            "digests": digests,
        }
        # Read back as JSON first: the digest is of what open_store will read.
        manifest = json.loads(json.dumps(manifest))
        manifest["manifest_digest"] = manifest_digest(manifest)
        return manifest
