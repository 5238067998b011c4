"""The packed store's layout on disk, its format version, and opening it with validation.

A store is a folder::

    manifest.json   format name and version, counts, dtypes, the class list, the split
                    settings, the train offset statistics (for the scale factor) and the
                    provenance of every source file
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

:func:`open_store` checks everything that can be checked without reading every point: the
format version, that each file is whole (its size matches its header), that shapes and dtypes
agree with the manifest and with each other, that the offsets start at 0, increase, and end at
the number of points, and that labels and splits are in range; all vectorised (a few passes
over the index arrays, no Python object per sketch). Any failure is a
:class:`~sketchrnn.io.files.SketchFileError` naming the file.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sketchrnn.io.files import SketchFileError
from sketchrnn.io.sketchset import SPLITS

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "ARRAY_FILES",
    "SPLIT_CODES",
    "PackedStore",
    "open_store",
    "is_store",
    "offset_std",
]

FORMAT_NAME = "sketchrnn-packed-store"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
ARRAY_FILES = {
    "points": "points.npy",
    "offsets": "offsets.npy",
    "labels": "labels.npy",
    "splits": "splits.npy",
}
SPLIT_CODES = {name: code for code, name in enumerate(SPLITS)}  # train 0, valid 1, test 2

CHUNK_SKETCHES = 1 << 20  # sketches per chunk of the whole-store passes at open

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


def offset_std(count: float, total: float, total_sq: float) -> float:
    """The standard deviation of ``count`` values from their sum and sum of squares, as
    :func:`sketchrnn.strokes.scale_factor` would compute it from the values themselves."""
    from sketchrnn.strokes import SketchError

    if count <= 0:
        raise SketchError("cannot compute a scale factor from no sketches")
    mean = total / count
    std = math.sqrt(max(total_sq / count - mean * mean, 0.0))
    if not np.isfinite(std) or std <= 0:
        raise SketchError(f"degenerate scale factor {std} (all offsets equal?)")
    return std


def is_store(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder holding a packed store's manifest (no validation)."""
    path = Path(path)
    return path.is_dir() and (path / MANIFEST_NAME).is_file()


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
        """Sketch ``i`` as float32 stroke-3 ``(n, 3)`` in source units (a copy)."""
        i = range(len(self))[i]
        return np.asarray(self.points[self.offsets[i] : self.offsets[i + 1]], dtype=np.float32)

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


def _read_manifest(path: Path) -> dict[str, Any]:
    file = path / MANIFEST_NAME
    if not path.exists():
        raise SketchFileError(path, "no such store (folder missing)")
    if not path.is_dir():
        raise SketchFileError(path, "not a packed store (a store is a folder)")
    if not file.is_file():
        raise SketchFileError(
            file, "missing: not a packed store, or an unfinished one (pack it again)"
        )
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SketchFileError(file, f"not a readable store manifest ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise SketchFileError(file, f"not a sketchrnn packed store manifest (no {FORMAT_NAME!r})")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise SketchFileError(file, f"invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise SketchFileError(
            file,
            f"written in store format version {version} by a newer sketchrnn "
            f"({manifest.get('created_by', 'unknown')}); this one reads up to version "
            f"{FORMAT_VERSION}: upgrade sketchrnn",
        )
    required = ("num_sketches", "num_points", "points_dtype", "labels_dtype", "classes")
    for key in required + ("sources", "train_offset_stats"):
        if key not in manifest:
            raise SketchFileError(file, f"manifest has no {key!r}")
    return manifest


def _map_array(file: Path, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    """Map one ``.npy`` file read-only after checking it is whole and what the manifest says."""
    try:
        size = file.stat().st_size
    except FileNotFoundError:
        raise SketchFileError(file, "missing from the store") from None
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
    except (OSError, ValueError, SyntaxError) as e:
        raise SketchFileError(file, f"not a valid .npy array, damaged or truncated ({e})") from None
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
    array = np.load(file, mmap_mode="r", allow_pickle=False)
    # A plain ndarray over the mapping: the memmap subclass adds overhead to every slice.
    return array.view(np.ndarray)


def open_store(path: str | os.PathLike) -> PackedStore:
    """Open the packed store in folder ``path`` (read-only, memory-mapped), validating it.

    Raises :class:`SketchFileError` naming the file for a missing or unreadable manifest, a
    newer format version ("upgrade sketchrnn"), a missing or truncated array file, shapes or
    dtypes that disagree with the manifest, offsets that are not increasing from 0 to the
    number of points, labels or splits out of range, and source ranges that do not tile the
    sketches. Costs a few vectorised passes over the ``(n,)`` index arrays.
    """
    path = Path(path)
    manifest = _read_manifest(path)
    mfile = path / MANIFEST_NAME
    n, total = int(manifest["num_sketches"]), int(manifest["num_points"])
    classes = manifest["classes"]
    if manifest["points_dtype"] not in ("int16", "float32"):
        raise SketchFileError(mfile, f"unknown points_dtype {manifest['points_dtype']!r}")
    if manifest["labels_dtype"] not in ("int16", "int32"):
        raise SketchFileError(mfile, f"unknown labels_dtype {manifest['labels_dtype']!r}")
    arrays = {
        "points": _map_array(path / ARRAY_FILES["points"], manifest["points_dtype"], (total, 3)),
        "offsets": _map_array(path / ARRAY_FILES["offsets"], "int64", (n + 1,)),
        "labels": _map_array(path / ARRAY_FILES["labels"], manifest["labels_dtype"], (n,)),
        "splits": _map_array(path / ARRAY_FILES["splits"], "uint8", (n,)),
    }
    offsets = arrays["offsets"]
    ofile = path / ARRAY_FILES["offsets"]
    if offsets[0] != 0 or offsets[-1] != total:
        raise SketchFileError(
            ofile,
            f"offsets run from {int(offsets[0])} to {int(offsets[-1])}, but the points array "
            f"has {total} rows: the index disagrees with the data",
        )
    for first in range(0, n, CHUNK_SKETCHES):  # in chunks: no (n,) temporary
        lengths = np.diff(offsets[first : first + CHUNK_SKETCHES + 1])
        if int(lengths.min()) < 1:
            bad = first + int(np.argmax(lengths < 1))
            raise SketchFileError(
                ofile, f"offsets do not increase at sketch {bad}: the index disagrees with the data"
            )
    labels = arrays["labels"]
    if n and (int(labels.min()) < 0 or int(labels.max()) >= len(classes)):
        raise SketchFileError(
            path / ARRAY_FILES["labels"], f"labels outside the {len(classes)} classes"
        )
    if n and int(arrays["splits"].max()) >= len(SPLITS):
        raise SketchFileError(path / ARRAY_FILES["splits"], "split codes other than 0, 1, 2")
    position = 0
    for source in manifest["sources"]:
        if source.get("first") != position or int(source.get("count", -1)) < 0:
            raise SketchFileError(mfile, "the sources' sketch ranges do not tile the store")
        position += int(source["count"])
    if position != n:
        raise SketchFileError(mfile, f"the sources hold {position} sketches, the store {n}")
    return PackedStore(path, manifest, arrays)
