"""Quick, Draw! ndjson (simplified, raw) and its drawing (.bin: :mod:`sketchrnn.io.quickdraw_bin`).

A drawing is a :class:`QuickDrawDrawing`: the record's metadata plus its strokes as absolute
``(k, 2)`` float64 polylines (the ``strokes`` module's polyline view).

* **Simplified ndjson**: one JSON object a line; ``drawing`` is a list of strokes
  ``[[x0, x1, ...], [y0, y1, ...]]`` with integer coordinates in 0-255.
* **Raw ndjson**: strokes ``[[x...], [y...], [t...]]``, float pixels and millisecond times.
  :func:`read_ndjson` passes raw drawings through :func:`simplify_raw_drawing`, Google's own
  published simplification steps, unless ``simplify_raw=False`` (the times are not kept).

What counts as an invalid drawing (an error, or skipped and counted with ``skip_invalid``):
no ``drawing``, a ``drawing`` that is not a list of ``[x, y]`` / ``[x, y, t]`` number lists of
equal length, NaN/inf, a coordinate beyond +-1e6, **fewer than two points in all** (a
single-point drawing has no extent to normalise and draws no line, so it is refused), more
points than ``SKETCHRNN_MAX_POINTS``, a raw drawing whose points all coincide, JSON nested
deeper than Python's parser allows, a line longer than ``SKETCHRNN_MAX_LINE_BYTES``, and
metadata of the wrong type (``word``/``countrycode`` not strings, ``recognized`` not a boolean,
``key_id`` not a 64-bit unsigned integer, ``timestamp`` not a date). Empty strokes are dropped.

**Nothing is made up.** A field the record lacks (or holds ``null``) is ``None`` in the
:class:`QuickDrawDrawing` and left out when the drawing is written back to ndjson; only a
missing ``word`` falls back to the file stem (the class is named by the file). Timestamps keep
their fractions of a second (``"2017-03-02 23:25:10.07453 UTC"`` reads as a float and writes
back the same). Simplified drawings are never changed, so ndjson -> ndjson is exact.

**Splits.** A record may carry ``"split": "train"`` (or ``valid``/``test``): not part of
Google's files, written by :func:`write_ndjson` for sketches that have a split (so an npz's
train/valid/test survive a trip through ndjson) and read back; other readers ignore it.
"""

from __future__ import annotations

import calendar
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np

from sketchrnn.io.files import SketchFileError, atomic_path, env_limit, limit_hint
from sketchrnn.io.quickdraw_simplify import simplify_raw_drawing, simplify_raw_drawing_sketchrnn
from sketchrnn.io.sketchset import SPLITS, SketchSet
from sketchrnn.strokes import SketchError, polylines_to_stroke3

__all__ = [
    "QuickDrawDrawing",
    "DrawingList",
    "read_ndjson",
    "write_ndjson",
    "read_quickdraw_ndjson",
    "RAW_SIMPLIFICATIONS",
    "MAX_ABS_COORDINATE",
]

MAX_ABS_COORDINATE = 1e6  # beyond this a coordinate is corrupt, not a drawing
# How read_ndjson simplifies raw drawings: as Google's simplified files (0-255 box), or as
# sketch-rnn's Quick, Draw! npz files (the drawing's own pixel units).
RAW_SIMPLIFICATIONS = ("quickdraw", "sketch-rnn")

_UINT64_MAX = 2**64 - 1


@dataclass(eq=False)
class QuickDrawDrawing:
    """One Quick, Draw! drawing; ``polylines`` are absolute ``(k, 2)`` float64 strokes.

    Metadata the source does not hold is ``None`` (a ``.bin`` record always holds all of it).
    ``timestamp`` is unix seconds: an int, or a float when the source has fractions of a
    second. ``split`` is ``"train"``/``"valid"``/``"test"`` or ``""`` (see the module text).
    """

    key_id: int | None
    word: str
    countrycode: str | None
    recognized: bool | None
    timestamp: int | float | None
    polylines: list[np.ndarray] = field(default_factory=list)
    split: str = ""

    def metadata(self) -> dict[str, Any]:
        """The fields this drawing has, as in :data:`sketchrnn.io.sketchset.META_FIELDS`."""
        fields = {
            "key_id": self.key_id,
            "countrycode": self.countrycode,
            "recognized": self.recognized,
            "timestamp": self.timestamp,
        }
        return {k: v for k, v in fields.items() if v is not None}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QuickDrawDrawing):
            return NotImplemented
        mine = (self.key_id, self.word, self.countrycode, self.recognized, self.timestamp)
        theirs = (other.key_id, other.word, other.countrycode, other.recognized, other.timestamp)
        return (
            mine == theirs
            and self.split == other.split
            and len(self.polylines) == len(other.polylines)
            and all(
                np.array_equal(a, b) for a, b in zip(self.polylines, other.polylines, strict=True)
            )
        )

    def to_stroke3(self) -> np.ndarray:
        """The drawing as a stroke-3 ``(n, 3)`` float32 array."""
        return polylines_to_stroke3(self.polylines)


class DrawingList(list[QuickDrawDrawing]):
    """What :func:`read_ndjson` returns: the drawings, plus ``skipped`` (how many invalid lines
    ``skip_invalid=True`` passed over), ``skip_reasons`` (``"line N: why"`` for each),
    ``simplified_raw`` / ``raw_kept`` (raw drawings simplified / kept unsimplified, their
    times dropped) and ``words_from_stem`` (records without a ``word``)."""

    def __init__(self, drawings: list[QuickDrawDrawing] | None = None) -> None:
        super().__init__(drawings or [])
        self.skip_reasons: list[str] = []
        self.simplified_raw = 0
        self.raw_kept = 0
        self.words_from_stem = 0

    @property
    def skipped(self) -> int:
        return len(self.skip_reasons)


class _InvalidDrawing(ValueError):
    """Internal: why one record is not a usable drawing (turned into SketchFileError)."""


# ----------------------------------------------------------------------------- validation


def _drawing_problem(polylines: list[np.ndarray]) -> str | None:
    """Why these polylines are not a usable drawing, or None when they are."""
    n_points = sum(len(p) for p in polylines)
    if n_points == 0:
        return "empty drawing (no points)"
    if n_points == 1:
        return "single-point drawing (at least two points are needed)"
    if n_points > env_limit("SKETCHRNN_MAX_POINTS"):
        return f"{n_points:,} points in one drawing, " + limit_hint("SKETCHRNN_MAX_POINTS")
    xy = np.concatenate([p for p in polylines if len(p)])
    if not np.isfinite(xy).all():
        return "contains NaN or infinite coordinates"
    peak = float(np.abs(xy).max())
    if peak > MAX_ABS_COORDINATE:
        return f"coordinate {peak:g} is beyond +-{MAX_ABS_COORDINATE:g}"
    return None


def _stroke_array(stroke: Any, index: int) -> np.ndarray:
    """One JSON stroke ``[[x...], [y...]]`` or ``[[x...], [y...], [t...]]`` as a float array
    ``(2 or 3, k)``; rejects strings, booleans, nulls and ragged rows."""
    if not isinstance(stroke, list) or len(stroke) not in (2, 3):
        raise _InvalidDrawing(f"stroke {index} is not a list [x, y] or [x, y, t]")
    try:
        rows = np.asarray(stroke)
    except (ValueError, OverflowError):
        raise _InvalidDrawing(f"stroke {index}: x, y (and t) lists differ in length") from None
    if rows.ndim != 2:
        raise _InvalidDrawing(f"stroke {index}: x, y (and t) must be flat lists of numbers")
    if rows.dtype.kind not in "iuf":
        raise _InvalidDrawing(f"stroke {index}: coordinates must be numbers, got {rows.dtype}")
    return rows.astype(np.float64)


# ----------------------------------------------------------------------------- metadata


_MILLISECONDS_FROM = 10**11  # a "unix time" this large is in ms (10**11 s is year 5138)
_MAX_TIMESTAMP = 253402300799  # 9999-12-31 23:59:59 UTC, the last second datetime can write
_DIGITS = re.compile(r"^[0-9]{1,20}$")
_DATE_LAYOUTS = ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f",
                 "%Y-%m-%dT%H:%M:%S")  # fmt: skip


def _seconds(whole: int, micro: int = 0) -> int | float:
    """Unix seconds from whole seconds and microseconds: an int when there is no fraction,
    else the float nearest to the exact value (which formats back to the same microsecond)."""
    if not 0 <= whole <= _MAX_TIMESTAMP:
        raise _InvalidDrawing(f"timestamp {whole} s is not a date between 1970 and 9999")
    return whole if micro == 0 else (whole * 10**6 + micro) / 10**6


def _parse_timestamp(value: Any) -> int | float | None:
    """Unix seconds from a number, a numeric string or ``"2017-03-27 00:14:57.31033 UTC"``
    (numbers of ``10**11`` and more are taken as milliseconds); ``None`` when absent. Anything
    else is an invalid record (no date is made up)."""
    if value is None:
        return None
    if isinstance(value, str) and _DIGITS.match(value.strip()):
        value = int(value.strip())
    if isinstance(value, bool):
        raise _InvalidDrawing(f"timestamp must be a date or a number, got {value!r}")
    if isinstance(value, int):
        if value >= _MILLISECONDS_FROM:
            whole_ms, ms = divmod(value, 1000)
            return _seconds(whole_ms, ms * 1000)
        return _seconds(value)
    if isinstance(value, float):
        if not (np.isfinite(value) and value >= 0):
            raise _InvalidDrawing(f"timestamp {value!r} is not a date")
        given = value
        if value >= _MILLISECONDS_FROM:
            value /= 1000
        if value > _MAX_TIMESTAMP:
            raise _InvalidDrawing(f"timestamp {given!r} is not a date between 1970 and 9999")
        if value.is_integer():
            return _seconds(int(value))
        return _seconds(*divmod(round(value * 10**6), 10**6))
    if not isinstance(value, str):
        raise _InvalidDrawing(f"timestamp must be a date or a number, got {type(value).__name__}")
    text = value.strip().removesuffix("UTC").removesuffix("Z").strip()
    for layout in _DATE_LAYOUTS:
        try:
            when = datetime.strptime(text, layout).replace(tzinfo=UTC)
        except ValueError:
            continue
        return _seconds(calendar.timegm(when.utctimetuple()), when.microsecond)
    raise _InvalidDrawing(f"timestamp {value[:40]!r} is not a date")


def _format_timestamp(seconds: int | float) -> str:
    """Google's layout: ``"2017-03-02 23:25:10.07453 UTC"`` (fraction only when there is one)."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise _InvalidDrawing(f"timestamp {seconds!r:.40} is not a number")
    if not 0 <= seconds < _MAX_TIMESTAMP + 1:  # also false for NaN
        raise _InvalidDrawing(f"timestamp {seconds} is not a date between 1970 and 9999")
    when = datetime.fromtimestamp(seconds, tz=UTC)
    text = when.strftime("%Y-%m-%d %H:%M:%S")
    if when.microsecond:
        text += f".{when.microsecond:06d}".rstrip("0")
    return text + " UTC"


def _parse_recognized(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise _InvalidDrawing(f"recognized must be true or false, got {value!r:.40}")


def _parse_key_id(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and _DIGITS.match(value.strip()):
        value = int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _UINT64_MAX:
        return value
    raise _InvalidDrawing(f"key_id must be a non-negative 64-bit integer, got {value!r:.40}")


def _parse_text(record: dict, name: str) -> str | None:
    value = record.get(name)
    if value is None or isinstance(value, str):
        return value
    raise _InvalidDrawing(f"{name!r} must be a string, got {type(value).__name__}")


def _parse_split(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, str) and value in SPLITS:
        return value
    raise _InvalidDrawing(f"'split' must be train, valid or test, got {value!r:.40}")


# ----------------------------------------------------------------------------- ndjson


def _parse_record(
    record: Any, default_word: str, simplify_raw: bool, raw_simplification: str = "quickdraw"
) -> tuple[QuickDrawDrawing, bool, bool]:
    """The drawing of one record, whether it was raw, and whether its word was missing."""
    if not isinstance(record, dict):
        raise _InvalidDrawing(f"expected a JSON object, got {type(record).__name__}")
    if "drawing" not in record:
        raise _InvalidDrawing("missing 'drawing'")
    strokes = record["drawing"]
    if not isinstance(strokes, list):
        raise _InvalidDrawing("'drawing' must be a list of strokes")
    arrays = [_stroke_array(s, i) for i, s in enumerate(strokes)]
    kinds = {len(a) for a in arrays}
    if len(kinds) > 1:
        raise _InvalidDrawing("mixes [x, y] strokes with raw [x, y, t] strokes")
    polylines = [a[0:2].T.copy() for a in arrays if a.shape[1] > 0]
    problem = _drawing_problem(polylines)
    if problem:
        raise _InvalidDrawing(problem)
    raw = kinds == {3}
    if raw and simplify_raw:
        simplify = (
            simplify_raw_drawing_sketchrnn
            if raw_simplification == "sketch-rnn"
            else simplify_raw_drawing
        )
        try:
            polylines = simplify(polylines)
        except SketchError as e:
            raise _InvalidDrawing(str(e)) from None
    word = _parse_text(record, "word")
    drawing = QuickDrawDrawing(
        key_id=_parse_key_id(record.get("key_id")),
        word=default_word if word is None else word,
        countrycode=_parse_text(record, "countrycode"),
        recognized=_parse_recognized(record.get("recognized")),
        timestamp=_parse_timestamp(record.get("timestamp")),
        polylines=polylines,
        split=_parse_split(record.get("split")),
    )
    return drawing, raw, word is None


def _lines(f: IO[bytes], limit: int) -> Iterator[tuple[int, bytes | None]]:
    """``(line number, bytes)`` of each line; ``None`` for a line longer than ``limit``
    (whose rest is read past in bounded pieces)."""
    number = 0
    while True:
        line = f.readline(limit + 1)
        if not line:
            return
        number += 1
        if len(line) > limit and not (len(line) == limit + 1 and line.endswith(b"\n")):
            while line and not line.endswith(b"\n"):
                line = f.readline(1 << 20)
            yield number, None
        else:
            yield number, line


def read_ndjson(
    path: str | os.PathLike,
    *,
    skip_invalid: bool = False,
    simplify_raw: bool = True,
    raw_simplification: str = "quickdraw",
) -> DrawingList:
    """Read a Quick, Draw! ``.ndjson`` file (simplified or raw) into drawings.

    Raw drawings (strokes with a time row) are simplified when ``simplify_raw`` (else their
    float coordinates are kept and the times dropped): by :func:`simplify_raw_drawing` (into
    the simplified files' 0-255 box) with ``raw_simplification="quickdraw"``, the default, or
    by :func:`simplify_raw_drawing_sketchrnn` (pixel units, as sketch-rnn's npz files and the
    magenta.js models) with ``"sketch-rnn"``. Simplified drawings are never changed. An invalid
    line raises :class:`SketchFileError` naming the file and line; with ``skip_invalid=True``
    it is skipped instead and counted in the result's ``skipped``/``skip_reasons``. Blank
    lines are ignored. See the module docstring for what counts as invalid.
    """
    if raw_simplification not in RAW_SIMPLIFICATIONS:
        raise ValueError(
            f"raw_simplification must be one of {', '.join(RAW_SIMPLIFICATIONS)}, "
            f"got {raw_simplification!r}"
        )
    path = Path(path)
    if not path.is_file():
        raise SketchFileError(path, "no such file")
    out = DrawingList()
    limit = env_limit("SKETCHRNN_MAX_LINE_BYTES")
    try:
        f = open(path, "rb")
    except OSError as e:
        raise SketchFileError(path, f"cannot read file ({e.strerror or e})") from None
    with f:
        for line_number, raw_line in _lines(f, limit):
            try:
                if raw_line is None:
                    hint = limit_hint("SKETCHRNN_MAX_LINE_BYTES")
                    raise _InvalidDrawing(f"line longer than the limit ({hint})")
                if not raw_line.strip():
                    continue
                record = _loads(raw_line)
                drawing, raw, no_word = _parse_record(
                    record, path.stem, simplify_raw, raw_simplification
                )
            except _InvalidDrawing as e:
                if not skip_invalid:
                    raise SketchFileError(path, str(e), line=line_number) from None
                out.skip_reasons.append(f"line {line_number}: {e}")
                continue
            out.append(drawing)
            if raw:
                if simplify_raw:
                    out.simplified_raw += 1
                else:
                    out.raw_kept += 1
            out.words_from_stem += no_word
    return out


def _loads(line: bytes) -> Any:
    try:
        return json.loads(line)
    except UnicodeDecodeError:
        raise _InvalidDrawing("not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise _InvalidDrawing(f"malformed JSON ({e.msg} at column {e.colno})") from None
    except RecursionError:
        raise _InvalidDrawing("malformed JSON (nested too deeply)") from None
    except (ValueError, MemoryError) as e:  # e.g. an integer of more than 4300 digits
        raise _InvalidDrawing(f"malformed JSON ({type(e).__name__}: {str(e)[:80]})") from None


def _drawings_to_sketchset(drawings: list[QuickDrawDrawing]) -> SketchSet:
    return SketchSet(
        [d.to_stroke3() for d in drawings],
        [d.word for d in drawings],
        [d.split for d in drawings],
        metadata=[d.metadata() for d in drawings],
    )


def read_quickdraw_ndjson(path: str | os.PathLike, **kwargs: Any) -> SketchSet:
    """A Quick, Draw! ``.ndjson`` file as a :class:`SketchSet` labelled by ``word``, with the
    records' metadata and splits. Keyword arguments go to :func:`read_ndjson`; lines passed
    over with ``skip_invalid=True`` are listed in the set's ``skipped``, and what reading
    changed (raw drawings simplified, words taken from the file name) in its ``notes``."""
    drawings = read_ndjson(path, **kwargs)
    sketches = _drawings_to_sketchset(drawings)
    sketches.skipped = [
        f"{os.fspath(path)}:{reason.removeprefix('line ')}" for reason in drawings.skip_reasons
    ]
    if drawings.simplified_raw:
        how = (
            "as sketch-rnn's npz files (pixel units, RDP epsilon 2)"
            if kwargs.get("raw_simplification") == "sketch-rnn"
            else "as Google's simplified files (0-255 box, 1-pixel resampling, RDP epsilon 2)"
        )
        sketches.notes.append(
            f"{os.fspath(path)}: {drawings.simplified_raw} raw drawings simplified {how}; "
            "their point times are not kept"
        )
    if drawings.raw_kept:
        sketches.notes.append(
            f"{os.fspath(path)}: the point times of {drawings.raw_kept} raw drawings are not kept"
        )
    no_word = drawings.words_from_stem
    if no_word:
        sketches.notes.append(
            f"{os.fspath(path)}: {no_word} drawings have no 'word': labelled "
            f"{Path(path).stem!r} after the file name"
        )
    return sketches


def _json_strokes(polylines: list[np.ndarray]) -> list[list[list[int]] | list[list[float]]]:
    """``[[x...], [y...]]`` per stroke: integers when the whole drawing is whole numbers (as in
    Google's files), else floats (their shortest repr, which reads back exactly)."""
    xy = np.concatenate(polylines)
    integral = bool(np.array_equal(xy, np.round(xy)))
    return [(p.T.astype(np.int64) if integral else p.T).tolist() for p in polylines]


def write_ndjson(path: str | os.PathLike, drawings: list[QuickDrawDrawing]) -> None:
    """Write drawings in the simplified ndjson format, one JSON object a line, atomically.

    Coordinates are written as integers when the drawing's are all whole numbers (as in
    Google's simplified files), else as floats (exactly: :func:`read_ndjson` reads back the
    same numbers); ``key_id`` as a string and ``timestamp`` as
    ``"YYYY-MM-DD HH:MM:SS[.ffffff] UTC"``, as Google writes them. A field that is ``None``
    is left out, and ``split`` is written when set. An invalid drawing raises
    :class:`SketchFileError` naming its index, and nothing is written.
    """
    path = Path(path)
    lines = []
    for i, d in enumerate(drawings):
        polylines = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in d.polylines]
        polylines = [p for p in polylines if len(p)]
        record: dict[str, Any] = {"word": d.word}
        try:
            problem = _drawing_problem(polylines)
            if problem:
                raise _InvalidDrawing(problem)
            if not isinstance(d.word, str):
                raise _InvalidDrawing(f"word must be a string, got {type(d.word).__name__}")
            if d.countrycode is not None:
                record["countrycode"] = str(d.countrycode)
            if d.timestamp is not None:
                record["timestamp"] = _format_timestamp(d.timestamp)
            if d.recognized is not None:
                record["recognized"] = bool(d.recognized)
            if d.key_id is not None:
                record["key_id"] = str(_parse_key_id(d.key_id))
            if d.split:
                record["split"] = _parse_split(d.split)
        except _InvalidDrawing as e:
            raise SketchFileError(path, f"cannot write drawing {i}: {e}") from None
        record["drawing"] = _json_strokes(polylines)
        lines.append(json.dumps(record, separators=(",", ":")))
    with atomic_path(path) as tmp:
        tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
