"""Packing sketch files into a store: :func:`pack`, one source file at a time.

:func:`pack` reads one source file at a time with :func:`sketchrnn.io.formats.read_sketches`
and hands its sketches to a :class:`~sketchrnn.store.writer.StoreWriter` (memory: one source
file at a time, whatever the number of sources), which commits them to ``<out>.part/``; a
pack that is interrupted (Ctrl-C) or killed continues after the last committed source when
run again, one that fails on its own (a bad or empty source, no space left) removes
``<out>.part``: nothing is left behind.

The same file given twice (the same path twice, two paths to one file, a file inside a folder
also given) is refused before anything is written: its sketches would be packed twice, some
in train and their copies in test.

Labels and splits follow :func:`sketchrnn.data.load_datasets` exactly: the reader's label,
else the file stem; the file's own split, else :func:`sketchrnn.datasets.assign_splits` with
``split_fractions`` and ``split_seed`` keyed by the file name (so a store holds no unsplit
sketch, and the same files give the same splits either way). Points are stored as read (not
clipped, not normalised).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sketchrnn import strokes as S
from sketchrnn.datasets import assign_splits
from sketchrnn.io.files import SketchFileError
from sketchrnn.io.formats import read_sketches
from sketchrnn.io.sketchset import SPLITS, SketchSet
from sketchrnn.progress import progress_bar
from sketchrnn.store.manifest import FORMAT_VERSION, MANIFEST_NAME, SPLIT_CODES
from sketchrnn.store.writer import StoreWriter

__all__ = ["PackReport", "pack", "source_fingerprint"]

MAX_SKIPPED_KEPT = 100  # skipped-invalid messages kept per source in the manifest


@dataclass
class PackReport:
    """What :func:`pack` built: counts, the split sizes, the train scale factor (all lengths,
    offsets clipped to the pack's ``offset_limit``) and the provenance of every source."""

    out_dir: Path
    num_sketches: int
    num_points: int
    classes: list[str]
    points_dtype: str
    split_counts: dict[str, int]
    scale_factor: float | None
    sources: list[dict[str, Any]]
    resumed_sources: int = 0
    bytes_on_disk: int = 0
    seconds: float = 0.0
    dropped: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        splits = ", ".join(f"{k} {v:,}" for k, v in self.split_counts.items())
        scale = "none" if self.scale_factor is None else f"{self.scale_factor:.4g}"
        classes = _count(len(self.classes), "class", "classes")
        sources = _count(len(self.sources), "source", "sources")
        return (
            f"{self.out_dir}: {self.num_sketches:,} sketches ({splits}), {self.num_points:,} "
            f"points ({self.points_dtype}), {classes}, scale factor {scale}, "
            f"{self.bytes_on_disk / 2**20:,.1f} MiB, from {sources} "
            f"({self.resumed_sources} resumed) in {self.seconds:.1f} s"
        )


def _count(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


def source_fingerprint(path: str | os.PathLike) -> dict[str, Any]:
    """Size and modification time of a source file (of all files, for a folder): a pack
    resumes only over sources whose fingerprints are unchanged."""
    path = Path(path)
    if path.is_dir():
        files = [p for p in sorted(path.rglob("*")) if p.is_file()]
        stats = [p.stat() for p in files]
        return {
            "files": len(files),
            "bytes": sum(s.st_size for s in stats),
            "mtime_ns": max((s.st_mtime_ns for s in stats), default=0),
        }
    stat = path.stat()
    return {"bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _prepare(
    path: str,
    sketches: SketchSet,
    split_fractions: tuple[float, float, float],
    split_seed: int,
    max_length: int | None,
) -> tuple[dict[str, Any], np.ndarray, np.ndarray, list[str], np.ndarray, np.ndarray]:
    """One source's sketches as the writer's arrays, labelled and split as load_datasets does."""

    name, stem = Path(path).name, Path(path).stem
    unsplit = sum(1 for s in sketches.splits if s == "")
    labelled = SketchSet(
        list(sketches.strokes),
        [label or stem for label in sketches.labels],
        list(sketches.splits),
    )
    labelled = assign_splits(labelled, split_fractions, split_seed, name=name)
    checked = []
    for i, (s3, split) in enumerate(zip(labelled.strokes, labelled.splits, strict=True)):
        try:
            checked.append(S.validate_stroke3(s3, where=f"sketch #{i}"))
        except S.SketchError as error:
            raise SketchFileError(path, str(error)) from None
        if split not in SPLITS:
            raise SketchFileError(path, f"sketch #{i} has an unknown split {split!r}")
    lengths = np.fromiter((len(s) for s in checked), dtype=np.int64, count=len(checked))
    labels = np.asarray(labelled.labels, dtype=str)
    codes = np.fromiter(
        (SPLIT_CODES[s] for s in labelled.splits), dtype=np.uint8, count=len(checked)
    )
    dropped = {"invalid": len(sketches.skipped)}
    if max_length is not None:
        keep = lengths <= max_length
        dropped["too_long"] = int((~keep).sum())
        checked = [s for s, k in zip(checked, keep, strict=True) if k]
        lengths, labels, codes = lengths[keep], labels[keep], codes[keep]
    points = np.concatenate(checked) if checked else np.zeros((0, 3), np.float32)
    names, ids = np.unique(labels, return_inverse=True)
    entry = {
        "path": path,
        "resolved": os.fspath(Path(path).resolve()),
        **source_fingerprint(path),
        "read": len(sketches),
        "splits_assigned": unsplit,
        "scale_factor_in_file": sketches.scale_factor,
        "dropped": dropped,
        "skipped_invalid": list(sketches.skipped[:MAX_SKIPPED_KEPT]),
    }
    return entry, points, lengths, [str(x) for x in names], ids, codes


def _refuse_the_same_source_twice(paths: Sequence[str]) -> None:
    """Each source once: not the same path twice, nor two paths to one file (links, other
    spellings), nor a file or folder inside a folder also given."""
    seen: dict[tuple[int, int], str] = {}
    folders: list[tuple[Path, str]] = []
    for p in paths:
        try:
            info = os.stat(p)
        except FileNotFoundError:
            raise SketchFileError(p, "no such file or folder") from None
        except OSError as e:
            raise SketchFileError(p, f"cannot read file ({e.strerror or e})") from None
        key = (info.st_dev, info.st_ino)
        if key in seen:
            same = "given twice" if seen[key] == p else f"the same file as {seen[key]}"
            raise SketchFileError(p, f"{same}: give each source once")
        seen[key] = p
        if Path(p).is_dir():
            folders.append((Path(p).resolve(), p))
    for p in paths:
        resolved = Path(p).resolve()
        for folder, name in folders:
            if resolved != folder and resolved.is_relative_to(folder):
                raise SketchFileError(
                    p, f"inside the folder {name}, also given: give each source once"
                )


def pack(
    sources: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    split_seed: int = 0,
    skip_invalid: bool = False,
    raw_simplification: str = "quickdraw",
    offset_limit: float | None = 1000.0,
    max_length: int | None = None,
    overwrite: bool = False,
    resume: bool = True,
    progress: bool = True,
) -> PackReport:
    """Pack the sketch files ``sources`` (anything :func:`read_sketches` reads: ``.npz``,
    ``.ndjson`` raw or simplified, ``.bin``, ``.svg``, folders of SVG) into the store ``out_dir``.

    Labels and splits are those :func:`sketchrnn.data.load_datasets` gives the same files with
    the same ``split_fractions``/``split_seed``/``skip_invalid``/``raw_simplification``.
    ``offset_limit`` is the clipping the train offset statistics are gathered with (the
    points themselves are stored unclipped). ``max_length`` drops longer sketches at pack time
    (counted per source as ``too_long``); by default every sketch is kept and the length
    filter is applied when the store is opened.

    The store appears under ``out_dir`` only when complete (an existing store is replaced only
    with ``overwrite=True``). A pack that is interrupted (Ctrl-C) or killed can be run again
    with the same arguments: it continues after the last source it finished (``resume=False``
    starts over); one that fails leaves nothing behind. Raises :class:`SketchFileError`
    naming the source for unreadable or invalid input, or one given twice.
    """
    started = time.perf_counter()
    paths = [os.fspath(p) for p in sources]
    if not paths:
        raise ValueError("no source files given")
    if not os.fspath(out_dir):
        raise ValueError("the store's path is empty: name the folder to pack into")
    if Path(out_dir).name in ("", ".."):  # "." and "x/.." name a folder too
        out_dir = os.path.abspath(out_dir)
    _refuse_the_same_source_twice(paths)
    options = {
        "split_fractions": [float(x) for x in split_fractions],
        "split_seed": int(split_seed),
        "skip_invalid": bool(skip_invalid),
        "raw_simplification": raw_simplification,
        "offset_limit": None if offset_limit is None else float(offset_limit),
        "max_length": max_length,
    }
    job = {
        "format_version": FORMAT_VERSION,
        "sources": [
            {"path": p, "resolved": os.fspath(Path(p).resolve()), **source_fingerprint(p)}
            for p in paths
        ],
        "options": options,
    }
    writer = StoreWriter(out_dir, job, overwrite=overwrite, resume=resume)
    resumed = writer.completed
    try:
        bar = progress_bar(
            total=len(paths), initial=resumed, desc="packing", unit="file", disable=not progress
        )
        with bar:
            for path in paths[resumed:]:
                bar.set_postfix_str(Path(path).name, refresh=False)
                sketches = read_sketches(
                    path, skip_invalid=skip_invalid, raw_simplification=raw_simplification
                )
                entry, points, lengths, names, ids, codes = _prepare(
                    path, sketches, split_fractions, split_seed, max_length
                )
                del sketches
                writer.append(entry, points, lengths, names, ids, codes)
                bar.update(1)
        out = writer.finish()
    except Exception:
        writer.discard()  # a failure leaves nothing behind; an interruption can be resumed
        raise
    finally:
        writer.close()
    manifest = json.loads((out / MANIFEST_NAME).read_text(encoding="utf-8"))
    return PackReport(
        out_dir=out,
        num_sketches=manifest["num_sketches"],
        num_points=manifest["num_points"],
        classes=manifest["classes"],
        points_dtype=manifest["points_dtype"],
        split_counts=manifest["split_counts"],
        scale_factor=manifest["scale_factor"],
        sources=manifest["sources"],
        resumed_sources=resumed,
        bytes_on_disk=sum(p.stat().st_size for p in out.iterdir() if p.is_file()),
        seconds=time.perf_counter() - started,
        dropped=manifest["dropped"],
    )
