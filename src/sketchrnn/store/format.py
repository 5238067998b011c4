"""The packed store's layout on disk, and opening it with validation.

A store is a folder::

    manifest.json   format name and version, counts, dtypes, the class list, the split
                    settings, the train offset statistics (for the scale factor), the
                    provenance of every source file, the digest of every array file and one
                    of the manifest itself (:mod:`~sketchrnn.store.manifest` declares it)
    points.npy      (total_points, 3) int16, or float32 when some value is not a whole number
                    in int16's range: the stroke-3 rows (dx, dy, pen_lifted) of all sketches,
                    one after the other, in the sources' units (not normalised, not clipped)
    offsets.npy     (n + 1,) int64: sketch i is points[offsets[i]:offsets[i + 1]]
    labels.npy      (n,) int16 (int32 beyond 32767 classes): index into manifest "classes"
    splits.npy      (n,) uint8: 0 train, 1 valid, 2 test (see :data:`SPLIT_CODES`)

Plain numpy ``.npy`` files opened with ``np.load(mmap_mode="r")``: no new dependency, any
numpy reads them, and a read-only mapping is zero-copy: the kernel keeps one copy of each page
in its page cache, shared by every process that maps the file (DataLoader workers, DDP ranks
on one machine, several runs), and pages no one touches are never read. Arrow/Parquet or zarr
would add a dependency for nothing here: the data are four flat arrays, the access pattern is
random gathers of short row ranges, and compression would defeat the zero-copy mapping.

**What is checked when.** :func:`open_store` checks everything that can be checked without
reading the points: the manifest against its schema and itself, that each file is a whole
regular file (its size matches its header) whose shape and dtype agree with the manifest, that
the offsets start at 0, increase, and end at the number of points, that labels and splits are
in range and agree with the manifest's counts (per split, per source, the train sketches'
lengths with the offset statistics), the manifest's own digest, and the digests of the three
index arrays; all vectorised (a few passes over the ``(n,)`` index arrays, no Python object
per sketch). The points' digest (the one big file) is checked by :meth:`PackedStore.verify`
(``sketchrnn data verify``, ``data info``, and the Trainer before its first step), and every
batch refuses a non-finite coordinate or a pen other than 0 and 1, naming the sketch. Any
failure is a :class:`~sketchrnn.io.files.SketchFileError` naming the file.
"""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sketchrnn.io.files import SketchFileError
from sketchrnn.io.sketchset import SPLITS
from sketchrnn.store.digest import file_digest, read_error, regular_file_size
from sketchrnn.store.manifest import (
    ARRAY_FILES,
    MANIFEST_NAME,
    SPLIT_CODES,
    check_manifest_digest,
    offset_std,
    read_manifest,
)

__all__ = ["INDEX_ARRAYS", "PackedStore", "open_store", "is_store"]

INDEX_ARRAYS = ("offsets", "labels", "splits")  # their digests are checked at open
CHUNK_SKETCHES = 1 << 20  # sketches per chunk of the whole-store passes at open
_LONG = 1 << 16  # sketch lengths from here up are counted one by one at open

# Every array file starts with a .npy header padded to exactly this many bytes, so that the
# writer can stream the data first and write the header (which holds the final length) last.
HEADER_BYTES = 128
_MAGIC = b"\x93NUMPY\x01\x00"


def npy_header(shape: Sequence[int], dtype: np.dtype | type) -> bytes:
    """A version 1.0 ``.npy`` header for a C-order array, padded to :data:`HEADER_BYTES`."""
    header = repr(
        {
            "descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
            "fortran_order": False,
            "shape": tuple(int(s) for s in shape),
        }
    )
    room = HEADER_BYTES - len(_MAGIC) - 2
    if len(header) + 1 > room:
        raise ValueError(f"npy header {header!r} does not fit in {HEADER_BYTES} bytes")
    text = header.ljust(room - 1) + "\n"
    return _MAGIC + struct.pack("<H", room) + text.encode("latin1")


def is_store(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder holding a packed store's manifest or its points or offsets
    (no validation: a store that lost its manifest, or whose manifest is a broken link, counts,
    for :func:`open_store` to say what is wrong with it)."""
    path = Path(path)
    names = (MANIFEST_NAME, ARRAY_FILES["points"], ARRAY_FILES["offsets"])
    return path.is_dir() and any(os.path.lexists(path / name) for name in names)


class PackedStore:
    """An opened store: read-only memory-mapped arrays and the manifest.

    ``points`` ``(total_points, 3)`` int16/float32, ``offsets`` ``(n + 1,)`` int64, ``labels``
    ``(n,)`` int16/int32, ``splits`` ``(n,)`` uint8 are plain ndarray views of the mappings
    (nothing is read until touched). :meth:`lengths_of` gives sketch lengths from the offsets;
    no per-sketch array is kept beyond the mappings.
    Pickling a store pickles its path: the receiver maps the same files again (and validates
    them) instead of receiving a copy of the data.
    """

    def __init__(self, path: Path, manifest: dict[str, Any], arrays: dict[str, np.ndarray]):
        self.path = path
        self.manifest = manifest
        self.points = arrays["points"]
        self.offsets = arrays["offsets"]
        self.labels = arrays["labels"]
        self.splits = arrays["splits"]
        self.classes: list[str] = list(manifest["classes"])
        self._verified: set[str] = set()  # arrays whose digest was checked in this process

    def __reduce__(self):
        return (open_store, (os.fspath(self.path.resolve()),))

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        return (
            f"PackedStore({os.fspath(self.path)!r}, {len(self)} sketches, "
            f"{len(self.points)} points ({self.points.dtype}), {len(self.classes)} classes)"
        )

    @property
    def num_points(self) -> int:
        return int(len(self.points))

    @property
    def sources(self) -> list[dict[str, Any]]:
        """Provenance of every source file, in packing order (``first``/``count`` give the
        range of sketch indices it filled)."""
        return list(self.manifest["sources"])

    @property
    def offset_limit(self) -> float | None:
        """The clipping limit the train offset statistics were gathered with."""
        return self.manifest["train_offset_stats"]["offset_limit"]

    @property
    def nbytes(self) -> int:
        """Bytes on disk of the store's files."""
        return sum(p.stat().st_size for p in self.path.iterdir() if p.is_file())

    def sketch(self, i: int) -> np.ndarray:
        """Sketch ``i`` as float32 stroke-3 ``(n, 3)`` in source units (a copy; checked as a
        batch is: :meth:`check_points`)."""
        i = range(len(self))[i]
        points = np.asarray(self.points[self.offsets[i] : self.offsets[i + 1]], dtype=np.float32)
        self.check_points(np.array([i]), np.array([len(points)]), points)
        return points

    # -- content

    def verify(self, names: Iterable[str] = tuple(ARRAY_FILES)) -> None:
        """Check the array files ``names`` (keys of :data:`ARRAY_FILES`; all by default)
        against the digests recorded when the store was packed, reading each whole file once
        (the index arrays were checked at open; a file checked once in this process is not
        read again). Raises :class:`SketchFileError` naming the first file that differs."""
        for name in names:
            if name in self._verified:
                continue
            file = self.path / ARRAY_FILES[name]
            if file_digest(file) != self.manifest["digests"][name]:
                raise SketchFileError(
                    file,
                    "content differs from the digest recorded when the store was packed "
                    "(damaged, or replaced by another file): pack the store again",
                )
            self._verified.add(name)

    def describe_sketch(self, i: int) -> str:
        """``sketch 1234 (#12 of cat.npz)``: store position ``i`` and where it came from."""
        firsts = [s["first"] for s in self.manifest["sources"]]
        k = int(np.searchsorted(firsts, i, side="right")) - 1
        source = self.manifest["sources"][max(k, 0)]
        return f"sketch {i} (#{i - source['first']} of {source['path']})"

    def check_points(self, rows: np.ndarray, lengths: np.ndarray, points: np.ndarray) -> None:
        """Refuse gathered ``points`` (float32 ``(lengths.sum(), 3)``: the sketches at store
        positions ``rows``, one after the other, as read) holding a coordinate that is not
        finite or a pen other than 0 and 1, naming the sketch and the point. A few vectorised
        comparisons: every batch pays them."""
        pen = points[:, 2]
        bad = (pen != 0) & (pen != 1)  # NaN too
        if self.points.dtype.kind == "f":
            bad |= ~(np.isfinite(points[:, 0]) & np.isfinite(points[:, 1]))
        if not bad.any():
            return
        at = int(np.argmax(bad))
        ends = np.cumsum(lengths)
        k = int(np.searchsorted(ends, at, side="right"))
        x, y, p = (float(v) for v in points[at])
        what = (
            f"pen value {p:g} (a pen is 0 or 1)"
            if p not in (0.0, 1.0)
            else f"coordinates ({x:g}, {y:g}) are not finite"
        )
        raise SketchFileError(
            self.path / ARRAY_FILES["points"],
            f"{self.describe_sketch(int(rows[k]))}, point {at - int(ends[k] - lengths[k])}: "
            f"{what}: the store is damaged (sketchrnn data verify tells which file)",
        )

    def lengths_of(self, rows: np.ndarray | Sequence[int]) -> np.ndarray:
        """``(len(rows),)`` int64: the number of points of the sketches at ``rows``."""
        rows = np.asarray(rows, dtype=np.int64)
        return self.offsets[rows + 1] - self.offsets[rows]

    @property
    def lengths(self) -> np.ndarray:
        """``(n,)`` int64 number of points of every sketch (computed on each call: 8 bytes
        a sketch; :meth:`length_chunks` walks them in bounded memory)."""
        return np.diff(self.offsets)

    def length_chunks(self, chunk: int = CHUNK_SKETCHES) -> Iterator[tuple[int, np.ndarray]]:
        """``(first, lengths)`` of consecutive ranges of ``chunk`` sketches."""
        for first in range(0, len(self), chunk):
            yield first, np.diff(self.offsets[first : first + chunk + 1])

    def length_percentiles(self, percents: Sequence[float]) -> np.ndarray:
        """``(len(percents),)`` int64: sketch lengths at those percentiles (0-100; the lower
        of two neighbours), from a histogram of the lengths built chunk by chunk (bounded
        memory, however many sketches)."""
        if not len(self):
            raise ValueError("an empty store has no lengths")
        counts = np.zeros(0, dtype=np.int64)
        for _, lengths in self.length_chunks():
            chunk = np.bincount(lengths)
            if len(chunk) > len(counts):
                counts = np.pad(counts, (0, len(chunk) - len(counts)))
            counts[: len(chunk)] += chunk
        cumulative = np.cumsum(counts)
        ranks = np.floor(np.asarray(percents, dtype=np.float64) / 100.0 * (len(self) - 1))
        return np.searchsorted(cumulative, ranks.astype(np.int64) + 1).astype(np.int64)

    def class_counts(self) -> np.ndarray:
        """``(len(classes),)`` int64: the number of sketches of each class."""
        counts = np.zeros(len(self.classes), dtype=np.int64)
        for first in range(0, len(self), CHUNK_SKETCHES):
            labels = self.labels[first : first + CHUNK_SKETCHES]
            counts += np.bincount(labels, minlength=len(self.classes))
        return counts

    def split_of(self, i: int) -> str:
        return SPLITS[int(self.splits[i])]

    def train_offset_sums(self, max_len: int | None = None) -> tuple[float, float, float]:
        """``(count, sum, sum of squares)`` of the train sketches' ``dx, dy`` values (clipped
        to :attr:`offset_limit`), over sketches of at most ``max_len`` points (all if None)."""
        table = self.manifest["train_offset_stats"]["by_length"]
        rows = [r for r in table if max_len is None or r[0] <= max_len]
        # math.fsum: the table is summed exactly, whatever its order.
        return (
            math.fsum(r[1] for r in rows),
            math.fsum(r[2] for r in rows),
            math.fsum(r[3] for r in rows),
        )

    def scale_factor(self, max_len: int | None = None) -> float:
        """The std of the train offsets (see :meth:`train_offset_sums`)."""
        return offset_std(*self.train_offset_sums(max_len))


def _map_array(file: Path, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    """Map one ``.npy`` file read-only after checking it is whole and what the manifest says."""
    size = regular_file_size(file)
    try:
        with open(file, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                found_shape, fortran, found_dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                found_shape, fortran, found_dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f"unsupported .npy version {version}")
            data_offset = f.tell()
    except OSError as e:
        raise read_error(file, e) from None
    except Exception as e:  # numpy's header parser raises many kinds, all of them damage
        raise SketchFileError(
            file, f"not a valid .npy array, damaged or truncated ({type(e).__name__}: {e})"
        ) from None
    if found_dtype != np.dtype(dtype) or tuple(found_shape) != shape or fortran:
        raise SketchFileError(
            file,
            f"holds {found_dtype} of shape {tuple(found_shape)}, but the manifest says "
            f"{np.dtype(dtype)} of shape {shape}: the store's files do not belong together",
        )
    expected = data_offset + math.prod(shape) * np.dtype(dtype).itemsize
    if size < expected:
        raise SketchFileError(
            file, f"truncated: {size:,} bytes, its header promises {expected:,} (pack it again)"
        )
    if size > expected:
        raise SketchFileError(file, f"{size - expected:,} unexpected bytes after its data")
    try:
        array = np.load(file, mmap_mode="r", allow_pickle=False)
    except OSError as e:
        raise read_error(file, e) from None
    # A plain ndarray over the mapping: the memmap subclass adds overhead to every slice.
    return array.view(np.ndarray)


def open_store(path: str | os.PathLike) -> PackedStore:
    """Open the packed store in folder ``path`` (read-only, memory-mapped), validating it.

    Raises :class:`SketchFileError` naming the file for a missing, unreadable or damaged
    manifest (naming the field: :func:`~sketchrnn.store.manifest.read_manifest`), a store
    format other than this sketchrnn's ("upgrade sketchrnn", or "pack it again"), a missing,
    truncated or not regular array file, shapes or dtypes that disagree with the manifest,
    offsets that are not increasing from 0 to the number of points, labels or splits out of
    range or disagreeing with the manifest's counts, a manifest changed since the pack, and
    index arrays whose digests do not match. Costs a few vectorised passes over the ``(n,)``
    index arrays; the points are not read (:meth:`PackedStore.verify` reads them).
    """
    path = Path(path)
    manifest = read_manifest(path)
    n, total = manifest["num_sketches"], manifest["num_points"]
    arrays = {
        "points": _map_array(path / ARRAY_FILES["points"], manifest["points_dtype"], (total, 3)),
        "offsets": _map_array(path / ARRAY_FILES["offsets"], "int64", (n + 1,)),
        "labels": _map_array(path / ARRAY_FILES["labels"], manifest["labels_dtype"], (n,)),
        "splits": _map_array(path / ARRAY_FILES["splits"], "uint8", (n,)),
    }
    _check_arrays(path, manifest, arrays)
    check_manifest_digest(path / MANIFEST_NAME, manifest)
    store = PackedStore(path, manifest, arrays)
    store.verify(INDEX_ARRAYS)
    return store


def _check_arrays(path: Path, manifest: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """The index arrays against each other and against the manifest, chunk by chunk (no
    ``(n,)`` temporary)."""
    n, total = manifest["num_sketches"], manifest["num_points"]
    offsets, labels, splits = arrays["offsets"], arrays["labels"], arrays["splits"]
    ofile, lfile, sfile = (path / ARRAY_FILES[k] for k in ("offsets", "labels", "splits"))
    if offsets[0] != 0 or offsets[-1] != total:
        raise SketchFileError(
            ofile,
            f"offsets run from {int(offsets[0])} to {int(offsets[-1])}, but the points array "
            f"has {total} rows: the index disagrees with the data",
        )
    classes = len(manifest["classes"])
    split_counts = np.zeros(len(SPLITS), dtype=np.int64)
    train_lengths = np.zeros(1, dtype=np.int64)  # sketches of each length in the train split
    long_train: dict[int, int] = {}  # ... and of lengths from _LONG up
    longest = 0
    for first in range(0, n, CHUNK_SKETCHES):
        lengths = np.diff(offsets[first : first + CHUNK_SKETCHES + 1])
        if int(lengths.min()) < 1:
            bad = first + int(np.argmax(lengths < 1))
            raise SketchFileError(
                ofile, f"offsets do not increase at sketch {bad}: the index disagrees with the data"
            )
        longest = max(longest, int(lengths.max()))
        chunk = labels[first : first + CHUNK_SKETCHES]
        if int(chunk.min()) < 0 or int(chunk.max()) >= classes:
            bad = first + int(np.argmax((chunk < 0) | (chunk >= classes)))
            raise SketchFileError(
                lfile,
                f"label {int(labels[bad])} of sketch {bad} is outside the {classes} classes",
            )
        codes = splits[first : first + CHUNK_SKETCHES]
        if int(codes.max()) >= len(SPLITS):
            bad = first + int(np.argmax(codes >= len(SPLITS)))
            raise SketchFileError(
                sfile, f"split code {int(codes[bad - first])} of sketch {bad} is not 0, 1 or 2"
            )
        split_counts += np.bincount(codes, minlength=len(SPLITS))
        train = lengths[codes == SPLIT_CODES["train"]]
        # A histogram up to _LONG points; the rare longer sketches counted one by one (a
        # bincount of one huge length would allocate 8 bytes for every length below it).
        long = train >= _LONG
        if long.any():
            for length in train[long].tolist():
                long_train[length] = long_train.get(length, 0) + 1
            train = train[~long]
        counts = np.bincount(train)
        if len(counts) > len(train_lengths):
            train_lengths = np.pad(train_lengths, (0, len(counts) - len(train_lengths)))
        train_lengths[: len(counts)] += counts
    limit = manifest["options"].get("max_length")
    if limit is not None and longest > limit:
        raise SketchFileError(
            ofile, f"a sketch of {longest} points, over the pack's max_length {limit}"
        )
    recorded = [manifest["split_counts"][name] for name in SPLITS]
    if split_counts.tolist() != recorded:
        raise SketchFileError(
            sfile,
            f"{_split_text(split_counts)} sketches, but the manifest's split_counts say "
            f"{_split_text(recorded)}",
        )
    for i, source in enumerate(manifest["sources"]):
        a, b = source["first"], source["first"] + source["count"]
        if int(offsets[b] - offsets[a]) != source["points"]:
            raise SketchFileError(
                ofile,
                f"the sketches of sources[{i}] ({source['path']}) hold "
                f"{int(offsets[b] - offsets[a]):,} points, the manifest says {source['points']:,}",
            )
        in_source = np.bincount(splits[a:b], minlength=len(SPLITS))
        if in_source.tolist() != [source["splits"][name] for name in SPLITS]:
            raise SketchFileError(
                sfile,
                f"the sketches of sources[{i}] ({source['path']}) are split "
                f"{_split_text(in_source)}, the manifest says {_split_text(source['splits'])}",
            )
    found = {int(k): int(train_lengths[k]) for k in np.flatnonzero(train_lengths)}
    found.update(long_train)
    expected = {
        length: int(count) // (2 * length)
        for length, count, _, _ in manifest["train_offset_stats"]["by_length"]
    }
    if found != expected:
        length = min(k for k in found.keys() | expected.keys() if found.get(k) != expected.get(k))
        raise SketchFileError(
            ofile,
            f"{found.get(length, 0):,} train sketches of {length} points, but the manifest's "
            f"train_offset_stats count {expected.get(length, 0):,}: the index disagrees with the "
            "manifest",
        )


def _split_text(counts: Any) -> str:
    """``train 80 / valid 10 / test 10``, from three counts or a dict of them."""
    values = [counts[name] for name in SPLITS] if isinstance(counts, dict) else list(counts)
    return " / ".join(f"{name} {int(v):,}" for name, v in zip(SPLITS, values, strict=True))
