"""Quick, Draw!'s ``.bin`` binary format: the documented little-endian record layout
``key_id`` uint64, ``countrycode`` 2 ASCII bytes, ``recognized`` uint8, ``timestamp`` uint32
(unix seconds), ``n_strokes`` uint16, then per stroke ``n_points`` uint16, ``n_points`` uint8 x,
``n_points`` uint8 y. Its drawings are :class:`sketchrnn.io.quickdraw.QuickDrawDrawing`, checked
as the ndjson reader checks them.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from sketchrnn.io.files import SketchFileError, atomic_path
from sketchrnn.io.quickdraw import (
    _UINT64_MAX,
    QuickDrawDrawing,
    _drawing_problem,
    _drawings_to_sketchset,
    _InvalidDrawing,
)
from sketchrnn.io.sketchset import SketchSet

__all__ = ["read_bin", "write_bin", "read_quickdraw_bin"]

_BIN_HEADER = struct.Struct("<Q2sBIH")  # key_id, countrycode, recognized, timestamp, n_strokes
_BIN_COUNT = struct.Struct("<H")  # n_points of one stroke
_UINT32_MAX = 2**32 - 1
_UINT16_MAX = 2**16 - 1


def read_bin(path: str | os.PathLike, word: str | None = None) -> list[QuickDrawDrawing]:
    """Read a Quick, Draw! ``.bin`` file; every drawing's ``word`` is ``word``, else the file
    stem (the format names the class by its file and stores no word).

    Raises :class:`SketchFileError` naming the file, record and byte offset for a truncated
    record, a non-ASCII country code, or a drawing with fewer than two points. Empty strokes
    are dropped.
    """
    path = Path(path)
    if not path.is_file():
        raise SketchFileError(path, "no such file")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise SketchFileError(path, f"cannot read file ({e.strerror or e})") from None
    word = path.stem if word is None else word
    drawings: list[QuickDrawDrawing] = []
    position = 0

    def take(n_bytes: int, what: str) -> int:
        """Claim the next ``n_bytes`` and return their offset, or say the file ends early."""
        nonlocal position
        if position + n_bytes > len(data):
            raise SketchFileError(
                path,
                f"{where}: truncated: {what} needs {n_bytes} bytes, {len(data) - position} left",
            )
        position += n_bytes
        return position - n_bytes

    while position < len(data):
        where = f"record {len(drawings)} (byte offset {position})"
        header = _BIN_HEADER.unpack_from(data, take(_BIN_HEADER.size, "the record header"))
        key_id, country, recognized, timestamp, n_strokes = header
        polylines = []
        for stroke in range(n_strokes):
            offset = take(_BIN_COUNT.size, f"stroke {stroke}'s point count")
            (n_points,) = _BIN_COUNT.unpack_from(data, offset)
            offset = take(2 * n_points, f"stroke {stroke}'s {n_points} points")
            if n_points:
                xy = np.frombuffer(data, dtype=np.uint8, count=2 * n_points, offset=offset)
                polylines.append(xy.reshape(2, n_points).T.astype(np.float64))
        try:
            countrycode = country.rstrip(b"\0").decode("ascii")
        except UnicodeDecodeError:
            raise SketchFileError(path, f"{where}: country code {country!r} is not ASCII") from None
        problem = _drawing_problem(polylines)
        if problem:
            raise SketchFileError(path, f"{where}: {problem}")
        if recognized > 1:
            raise SketchFileError(path, f"{where}: recognized must be 0 or 1, got {recognized}")
        drawings.append(
            QuickDrawDrawing(key_id, word, countrycode, bool(recognized), timestamp, polylines)
        )
    return drawings


def _bin_record(d: QuickDrawDrawing) -> bytes:
    """One drawing in the .bin layout; raises _InvalidDrawing saying what does not fit.

    Unknown metadata (``None``) is written as 0, ``""``, false and 0 (the layout has no way to
    say "unknown"); a timestamp's fraction of a second is dropped."""
    key_id = 0 if d.key_id is None else d.key_id
    timestamp = 0 if d.timestamp is None else d.timestamp
    if not (isinstance(key_id, int) and 0 <= key_id <= _UINT64_MAX):
        raise _InvalidDrawing(f"key_id {key_id} does not fit uint64")
    if isinstance(timestamp, bool) or not (
        isinstance(timestamp, int | float) and 0 <= timestamp <= _UINT32_MAX
    ):
        raise _InvalidDrawing(f"timestamp {timestamp} does not fit uint32")
    try:
        country = (d.countrycode or "").encode("ascii")
    except UnicodeEncodeError:
        raise _InvalidDrawing(f"country code {d.countrycode!r} is not ASCII") from None
    if len(country) > 2:
        raise _InvalidDrawing(f"country code {d.countrycode!r} is longer than 2 characters")
    polylines = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in d.polylines]
    polylines = [p for p in polylines if len(p)]
    problem = _drawing_problem(polylines)
    if problem:
        raise _InvalidDrawing(problem)
    if len(polylines) > _UINT16_MAX:
        raise _InvalidDrawing(f"{len(polylines)} strokes, more than {_UINT16_MAX}")
    parts = [
        _BIN_HEADER.pack(
            key_id, country.ljust(2, b"\0"), int(bool(d.recognized)), int(timestamp), len(polylines)
        )
    ]
    for i, p in enumerate(polylines):
        if len(p) > _UINT16_MAX:
            raise _InvalidDrawing(f"stroke {i} has {len(p)} points, more than {_UINT16_MAX}")
        if p.min() < 0 or p.max() > 255 or not np.array_equal(p, np.round(p)):
            raise _InvalidDrawing(
                f"stroke {i} has coordinates outside the integers 0-255 "
                f"(range {p.min():g} to {p.max():g}); simplify the drawing first"
            )
        parts.append(_BIN_COUNT.pack(len(p)))
        parts.append(p.T.astype(np.uint8).tobytes())
    return b"".join(parts)


def write_bin(path: str | os.PathLike, drawings: list[QuickDrawDrawing]) -> None:
    """Write drawings in the Quick, Draw! ``.bin`` layout, atomically.

    Coordinates must be integers 0-255 (the simplified form); anything that does not fit the
    layout raises :class:`SketchFileError` naming the drawing, and nothing is written. The
    ``word`` and ``split`` are not stored (the format names the class by the file name);
    unknown metadata is written as 0 / ``""`` / false (see :func:`_bin_record`).
    """
    path = Path(path)
    records = []
    for i, d in enumerate(drawings):
        try:
            records.append(_bin_record(d))
        except _InvalidDrawing as e:
            raise SketchFileError(path, f"cannot write drawing {i}: {e}") from None
    with atomic_path(path) as tmp:
        tmp.write_bytes(b"".join(records))


def read_quickdraw_bin(path: str | os.PathLike, word: str | None = None) -> SketchSet:
    """A Quick, Draw! ``.bin`` file as a :class:`SketchSet` labelled ``word`` (default: the
    file stem, and the set's ``notes`` say so), with every record's metadata."""
    sketches = _drawings_to_sketchset(read_bin(path, word))
    if word is None:
        sketches.notes.append(
            f"{os.fspath(path)}: .bin files hold no class word: drawings labelled "
            f"{Path(path).stem!r} after the file name"
        )
    return sketches
