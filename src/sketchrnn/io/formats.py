"""Choosing a reader or writer by file extension: the one dispatch every caller uses.

:func:`convert_file` converts one file into another and returns what it could not keep;
:func:`write_sketches` documents what each format holds. Readers and writers are imported
inside the functions so that reading one format does not load every other format's
dependencies.
"""

from __future__ import annotations

import colorsys
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from sketchrnn import strokes as S
from sketchrnn.io.files import SketchFileError
from sketchrnn.io.raster import parse_color
from sketchrnn.io.sketchset import META_FIELDS, SPLITS, SketchSet

__all__ = [
    "read_sketches",
    "write_sketches",
    "convert_file",
    "Notes",
    "write_grid",
    "position_colors",
    "READ_FORMATS",
    "WRITE_FORMATS",
]

READ_FORMATS = (".npz", ".ndjson", ".bin", ".svg", ".zip")
WRITE_FORMATS = (".npz", ".ndjson", ".bin", ".svg", ".png")


def read_sketches(
    path: str | os.PathLike,
    *,
    skip_invalid: bool = False,
    raw_simplification: str = "quickdraw",
    label: str | None = None,
) -> SketchSet:
    """Read any supported sketch file into a :class:`SketchSet`, choosing the reader by extension.

    ``.npz`` (sketch-rnn), ``.ndjson`` (Quick, Draw! raw or simplified), ``.bin`` (Quick,
    Draw! binary), ``.svg`` or a folder of SVG files, ``.zip`` (Omniglot stroke files). Raises
    :class:`SketchFileError` for a missing, empty or unsupported file, or one holding no sketches.
    ``skip_invalid=True`` passes over invalid drawings in ndjson files instead of failing; they
    are listed in the result's ``skipped``. ``raw_simplification`` says how *raw* ndjson
    drawings are simplified (see :func:`sketchrnn.io.quickdraw.read_ndjson`). ``label`` names
    the class of files that hold none (a ``.bin``, an npz without labels; default: the file's
    stem). What reading changed or filled in is listed in the result's ``notes``.
    """
    path = Path(path)
    if not path.exists():
        raise SketchFileError(path, "no such file or folder")
    if path.is_dir():
        from sketchrnn.io.svg import read_svg_set

        sketches = read_svg_set(path)
    else:
        if path.stat().st_size == 0:
            raise SketchFileError(path, "empty file")
        suffix = path.suffix.lower()
        if suffix == ".npz":
            from sketchrnn.io.npz import read_npz

            sketches = read_npz(path, label=label)
        elif suffix == ".ndjson":
            from sketchrnn.io.quickdraw import read_quickdraw_ndjson

            sketches = read_quickdraw_ndjson(
                path, skip_invalid=skip_invalid, raw_simplification=raw_simplification
            )
        elif suffix == ".bin":
            from sketchrnn.io.quickdraw_bin import read_quickdraw_bin

            sketches = read_quickdraw_bin(path, word=label)
        elif suffix == ".svg":
            from sketchrnn.io.svg import read_svg_set

            sketches = read_svg_set(path)
        elif suffix == ".zip":
            from sketchrnn.io.omniglot import read_omniglot_strokes

            sketches = read_omniglot_strokes(path)
        else:
            raise SketchFileError(
                path,
                f"unsupported file type {suffix!r} (use {', '.join(READ_FORMATS)} or a folder)",
            )
    if len(sketches) == 0:
        raise SketchFileError(path, "no sketches in it")
    return sketches


class Notes(list[str]):
    """What :func:`write_sketches` and :func:`convert_file` return: the notes, one line each
    (a ``list[str]``), and ``written``, how many sketches went into the file."""

    def __init__(self, notes: list[str] | None = None, written: int = 0) -> None:
        super().__init__(notes or [])
        self.written = written


def convert_file(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    skip_invalid: bool = False,
    raw_simplification: str = "quickdraw",
    label: str | None = None,
) -> Notes:
    """Convert the sketch file ``src`` to ``dst`` (formats by extension), atomically.

    Returns the notes of the conversion, one line each (``"file: what"``): what reading
    changed or filled in (raw drawings simplified, labels taken from a file name, invalid
    drawings skipped with ``skip_invalid``), and what the target cannot hold and was dropped
    or changed (see :func:`write_sketches`). No notes means the target holds exactly what was
    read: reading ``dst`` back gives the same sketches, labels, splits, metadata and scale
    factor. The keyword arguments are :func:`read_sketches`'s. Errors are
    :class:`SketchFileError`, and on any error ``dst`` is left as it was.
    """
    sketches = read_sketches(
        src, skip_invalid=skip_invalid, raw_simplification=raw_simplification, label=label
    )
    notes = list(sketches.notes)
    if sketches.skipped:
        notes.append(
            f"{os.fspath(src)}: skipped {len(sketches.skipped)} invalid drawings "
            f"(first: {sketches.skipped[0]})"
        )
    written = write_sketches(dst, sketches)
    return Notes(notes + written, written.written)


def write_sketches(path: str | os.PathLike, sketches: SketchSet) -> Notes:
    """Write a :class:`SketchSet` in the format named by ``path``'s extension, atomically,
    and return what the format could not hold, one line each (``[]``: all of it is kept), as
    :class:`Notes` (whose ``written`` counts the sketches written).

    What each format keeps (the rest is dropped or changed, and a note says so):

    * ``.npz``: everything. Offsets, labels, splits, scale factor, and the Quick, Draw!
      metadata (as extra keys; a field is kept when every sketch has it). Unsplit sketches go to
      ``train`` and sketches are grouped by split (notes say so).
    * ``.ndjson``: offsets exactly (absolute coordinates, integers or floats as they are, not
      moved into the 0-255 box: a note counts the sketches outside it, which tools made for
      Google's simplified files may not expect), labels (``word``), splits (a ``"split"``
      field), metadata. Not the scale factor.
    * ``.bin``: metadata (unknown fields become 0, ``""``, false) and whole-second timestamps;
      coordinates must be integers 0-255, so other sketches are moved or scaled into that box.
      No labels (the file name names the class), splits or scale factor.
    * ``.svg``: one sketch is drawn in its own coordinates, which :func:`read_svg` reads back
      (to 0.001); several sketches, and ``.png`` always, become one picture of a grid.

    Single-point sketches cannot go to ndjson or .bin (their readers refuse them): they are
    left out, with a note. Nothing is written when a sketch is invalid (SketchFileError).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in WRITE_FORMATS:
        raise SketchFileError(
            path, f"unsupported output type {suffix!r} (use {', '.join(WRITE_FORMATS)})"
        )
    if len(sketches) == 0:
        raise SketchFileError(path, "nothing to write: no sketches")
    strokes = []
    for i, s in enumerate(sketches.strokes):
        try:
            strokes.append(S.validate_stroke3(s, where=f"sketch {i}"))
        except S.SketchError as e:
            raise SketchFileError(path, f"cannot write: {e}") from None
    if suffix == ".npz":
        from sketchrnn.io.npz import write_npz

        notes = _npz_notes(path, sketches)
        write_npz(path, sketches)
        return Notes(notes, len(strokes))
    if suffix in (".ndjson", ".bin"):
        from sketchrnn.io.quickdraw import write_ndjson
        from sketchrnn.io.quickdraw_bin import write_bin

        drawings, notes = _quickdraw_drawings(path, sketches, strokes, box=suffix == ".bin")
        if not drawings:
            raise SketchFileError(path, "nothing to write: no sketch has two points or more")
        (write_ndjson if suffix == ".ndjson" else write_bin)(path, drawings)
        return Notes(notes, len(drawings))
    if suffix == ".svg" and len(strokes) == 1:
        from sketchrnn.io.svg import write_svg_drawing

        notes = _drawing_only_notes(path, sketches, "svg")
        notes += _svg_notes(path, strokes[0])
        write_svg_drawing(path, strokes[0])
        return Notes(notes, 1)
    write_grid(path, strokes)
    return Notes(
        [
            f"{path}: {suffix[1:]} is a picture: {len(strokes)} sketches drawn as one grid, each "
            "scaled into its cell; the strokes are not kept as data, nor labels, splits or metadata"
        ],
        len(strokes),
    )


def _count(n: int, what: str) -> str:
    """``"3 sketches"``, ``"1 sketch"``."""
    plural = {"sketch": "sketches"}.get(what, what + "s")
    return f"{n} {what if n == 1 else plural}"


def _npz_notes(path: Path, sketches: SketchSet) -> list[str]:
    notes = []
    unsplit = sketches.splits.count("")
    if unsplit:
        notes.append(
            f"{path}: npz keeps sketches in train/valid/test: {_count(unsplit, 'sketch')} "
            "without a split written to 'train'"
        )
    order = [SPLITS.index(s or "train") for s in sketches.splits if (s or "train") in SPLITS]
    if order != sorted(order):
        notes.append(f"{path}: npz stores sketches grouped by split: their order is changed")
    meta = sketches.metadata
    for name in META_FIELDS:
        have = sum(1 for m in meta if name in m)
        if 0 < have < len(meta):
            notes.append(
                f"{path}: npz keeps {name} only when every sketch has one: "
                f"{len(meta) - have} of {len(meta)} have none, so it is dropped"
            )
    return notes


def _drawing_only_notes(path: Path, sketches: SketchSet, fmt: str) -> list[str]:
    dropped = []
    if any(sketches.labels):
        dropped.append("label")
    if any(sketches.splits):
        dropped.append("split")
    if any(sketches.metadata):
        dropped.append("metadata")
    if sketches.scale_factor is not None:
        dropped.append("scale factor")
    if not dropped:
        return []
    return [f"{path}: {fmt} holds a drawing only: its {', '.join(dropped)} dropped"]


def _svg_notes(path: Path, s3: np.ndarray) -> list[str]:
    notes = []
    xy = np.cumsum(s3[:, 0:2].astype(np.float64), axis=0)
    if not np.array_equal(np.round(xy, 3), xy):
        notes.append(f"{path}: svg coordinates are written to 0.001: the sketch is rounded so")
    starts = np.concatenate([[True], s3[:-1, 2] > 0.5])
    if np.any(~starts & np.all(s3[:, 0:2] == 0, axis=1)):
        notes.append(f"{path}: svg readers merge repeated points: the sketch's repeats are lost")
    if s3[-1, 2] != 1:
        notes.append(f"{path}: the sketch does not end with the pen lifted: svg ends it lifted")
    return notes


def _in_box(lines: list[np.ndarray]) -> bool:
    xy = np.concatenate(lines)
    return bool(np.array_equal(xy, np.round(xy)) and xy.min() >= 0 and xy.max() <= 255)


def _into_box(lines: list[np.ndarray]) -> tuple[list[np.ndarray], str]:
    """Polylines in Quick, Draw!'s integer 0-255 box, and how they got there ("" unchanged,
    "moved", "scaled"). Whole numbers spanning at most 255 are only moved (every offset kept);
    others are also scaled uniformly so the largest side spans 0-255, and rounded."""
    if _in_box(lines):
        return lines, ""
    xy = np.concatenate(lines)
    lo = xy.min(axis=0)
    span = float((xy.max(axis=0) - lo).max())
    if np.array_equal(xy, np.round(xy)) and span <= 255:
        return [p - lo for p in lines], "moved"
    scale = 255.0 / span if span > 0 else 1.0
    return [np.round((p - lo) * scale) for p in lines], "scaled"


def _quickdraw_drawings(path: Path, sketches: SketchSet, strokes: list[np.ndarray], box: bool):
    """The sketches as QuickDrawDrawings for ``.ndjson`` (``box=False``, coordinates kept)
    or ``.bin`` (``box=True``), and the notes of what the format cannot hold."""
    from sketchrnn.io.quickdraw import QuickDrawDrawing

    fmt = "bin" if box else "ndjson"
    notes = []
    drawings = []
    single = moved = scaled = outside = inexact = unlifted = no_meta = fractions = 0
    worst = 0.0
    for i, s3 in enumerate(strokes):
        lines = S.stroke3_to_polylines(s3)
        if len(s3) < 2:
            single += 1
            continue
        unlifted += s3[-1, 2] != 1  # every polyline stroke ends lifted
        if not np.array_equal(s3[:, 0:2], np.round(s3[:, 0:2])):  # whole numbers: exact
            back = S.polylines_to_stroke3(lines)
            if not np.array_equal(back[:, 0:2], s3[:, 0:2]):
                inexact += 1
                worst = max(worst, float(np.abs(back[:, 0:2] - s3[:, 0:2]).max()))
        meta = sketches.metadata[i] if i < len(sketches.metadata) else {}
        if box:
            lines, how = _into_box(lines)
            moved += how == "moved"
            scaled += how == "scaled"
            no_meta += any(f not in meta for f in META_FIELDS)
            ts = meta.get("timestamp")
            fractions += isinstance(ts, float) and not ts.is_integer()
        elif not _in_box(lines):
            outside += 1
        drawings.append(
            QuickDrawDrawing(
                key_id=meta.get("key_id"),
                word=sketches.labels[i],
                countrycode=meta.get("countrycode"),
                recognized=meta.get("recognized"),
                timestamp=meta.get("timestamp"),
                polylines=lines,
                split="" if box else sketches.splits[i],
            )
        )
    n = len(strokes)
    if single:
        notes.append(
            f"{path}: {fmt} readers refuse drawings of one point: "
            f"{_count(single, 'sketch')} of {n} left out"
        )
    if unlifted:
        notes.append(
            f"{path}: {_count(unlifted, 'sketch')} do not end with the pen lifted: "
            f"{fmt} ends every stroke lifted"
        )
    if inexact and not box:
        notes.append(
            f"{path}: {fmt} holds absolute coordinates: the float offsets of "
            f"{_count(inexact, 'sketch')} change by up to {worst:.3g} on the way"
        )
    if outside:
        notes.append(
            f"{path}: {_count(outside, 'sketch')} of {n} lie outside Quick, Draw!'s integer "
            "0-255 box: written as they are (read back exactly here; tools made for Google's "
            "simplified files may expect the box)"
        )
    if moved:
        notes.append(
            f"{path}: bin holds integers 0-255: {_count(moved, 'sketch')} moved into the box "
            "(offsets kept, first point changed)"
        )
    if scaled:
        notes.append(
            f"{path}: bin holds integers 0-255: {_count(scaled, 'sketch')} scaled and rounded "
            "into the box (their largest side spans 0-255)"
        )
    if box:
        words = sorted({d.word for d in drawings} - {path.stem})
        if words:
            shown = ", ".join(repr(w) for w in words[:5]) + (", ..." if len(words) > 5 else "")
            notes.append(
                f"{path}: bin holds no class word (the file name names the class): "
                f"{shown} read back as {path.stem!r}"
            )
        if any(sketches.splits):
            notes.append(f"{path}: bin holds no train/valid/test split: splits dropped")
        if no_meta:
            notes.append(
                f"{path}: bin records need key_id, countrycode, recognized and timestamp: "
                f"{_count(no_meta, 'sketch')} lack some, written as 0, '', false and 0"
            )
        if fractions:
            notes.append(
                f"{path}: bin holds whole-second timestamps: the fractions of "
                f"{_count(fractions, 'timestamp')} dropped"
            )
    if sketches.scale_factor is not None:
        notes.append(f"{path}: {fmt} holds no scale factor: {sketches.scale_factor:g} dropped")
    return drawings, notes


#: A completion's colours: the given prefix, then what the model drew (the paper's Fig. 7 style).
PREFIX_COLORS = ("black", "red")


def write_grid(
    path: str | os.PathLike,
    sketches: list[np.ndarray],
    *,
    ncols: int | None = None,
    color_by: Literal["none", "stroke", "position"] = "none",
    prefix_points: Sequence[int] | None = None,
) -> None:
    """Draw sketches as one grid to ``.svg`` or ``.png`` (by extension), atomically.

    ``color_by="stroke"`` colours strokes by drawing order (red through blue over the stroke
    index), ``"position"`` colours each sketch by its place in the list (for interpolations),
    ``"none"`` draws in black. ``prefix_points`` (completions, one count per sketch) draws the
    first ``prefix_points[i]`` points of each sketch, the given prefix, in black and the
    model's strokes after them in red, whatever ``color_by`` says.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    by: Literal["stroke", "sketch"]
    colors: list[str] | None
    if color_by == "stroke":
        n = max((int(np.asarray(s)[:, 2].sum()) + 1 for s in sketches), default=1)
        colors, by = _rainbow(n), "stroke"
    elif color_by == "position":
        colors, by = position_colors(len(sketches)), "sketch"
    elif color_by == "none":
        colors, by = None, "stroke"
    else:
        raise ValueError(f"color_by must be 'none', 'stroke' or 'position', got {color_by!r}")
    if prefix_points is not None:
        colors = list(PREFIX_COLORS)
    if suffix == ".svg":
        from sketchrnn.io.svg import write_svg

        write_svg(
            path,
            list(sketches),
            ncols=ncols,
            colors=colors,
            color_by=by,
            prefix_points=prefix_points,
        )
    elif suffix == ".png":
        from sketchrnn.io.png import write_png

        write_png(
            path,
            list(sketches),
            ncols=ncols,
            colors=colors,
            color_by=by,
            prefix_points=prefix_points,
        )
    else:
        raise SketchFileError(path, f"unknown picture format {suffix!r}: use .svg or .png")


def position_colors(count: int, start: str = "#1f4fd8", end: str = "#d81f4f") -> list[str]:
    """``count`` colours blending from ``start`` to ``end``: colour by interpolation position."""
    a, b = parse_color(start), parse_color(end)
    out = []
    for t in np.linspace(0.0, 1.0, max(count, 1))[:count]:
        rgb = np.clip(np.round(((1 - t) * a + t * b) * 255), 0, 255).astype(int)
        out.append("#{:02x}{:02x}{:02x}".format(*rgb))
    return out


def _rainbow(n: int) -> list[str]:
    """``n`` distinct colours from red through blue, as ``#rrggbb``."""
    out = []
    for i in range(n):
        r, g, b = colorsys.hsv_to_rgb(0.75 * i / max(n - 1, 1), 0.9, 0.85)
        out.append(f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}")
    return out
