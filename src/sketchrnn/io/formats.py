"""Choosing a reader or writer by file extension: the one dispatch every caller uses.

Readers and writers are imported inside the functions so that reading one format does not
load every other format's dependencies.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import numpy as np

from sketchrnn import strokes as S
from sketchrnn.io.files import SketchFileError
from sketchrnn.io.sketchset import SketchSet

__all__ = [
    "read_sketches",
    "write_sketches",
    "write_grid",
    "position_colors",
    "READ_FORMATS",
    "WRITE_FORMATS",
]

READ_FORMATS = (".npz", ".ndjson", ".bin", ".svg", ".zip")
WRITE_FORMATS = (".npz", ".ndjson", ".bin", ".svg", ".png")


def read_sketches(
    path: str | os.PathLike, *, skip_invalid: bool = False, raw_simplification: str = "quickdraw"
) -> SketchSet:
    """Read any supported sketch file into a :class:`SketchSet`, choosing the reader by extension.

    ``.npz`` (sketch-rnn), ``.ndjson`` (Quick, Draw! raw or simplified), ``.bin`` (Quick,
    Draw! binary), ``.svg`` or a folder of SVG files, ``.zip`` (Omniglot stroke files). Raises
    :class:`SketchFileError` for a missing, empty or unsupported file, or one holding no sketches.
    ``skip_invalid=True`` passes over invalid drawings in ndjson files instead of failing; they
    are listed in the result's ``skipped``. ``raw_simplification`` says how *raw* ndjson
    drawings are simplified (see :func:`sketchrnn.io.quickdraw.read_ndjson`).
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

            sketches = read_npz(path)
        elif suffix == ".ndjson":
            from sketchrnn.io.quickdraw import read_quickdraw_ndjson

            sketches = read_quickdraw_ndjson(
                path, skip_invalid=skip_invalid, raw_simplification=raw_simplification
            )
        elif suffix == ".bin":
            from sketchrnn.io.quickdraw import read_quickdraw_bin

            sketches = read_quickdraw_bin(path)
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


def _to_quickdraw_box(s3: np.ndarray) -> list[np.ndarray]:
    """Absolute polylines of a sketch in the simplified format's integer 0-255 box.

    A sketch of whole numbers that fits in the box is only moved to the top-left corner (its
    offsets are kept exactly); any other is also scaled uniformly so that its largest side
    spans 0-255, as Quick, Draw! did for its simplified files.
    """
    lines = S.stroke3_to_polylines(s3)
    xy = np.concatenate(lines)
    lo = xy.min(axis=0)
    span = float((xy.max(axis=0) - lo).max())
    if np.all(xy == np.round(xy)) and span <= 255:
        return [p - lo for p in lines]
    scale = 255.0 / span if span > 0 else 1.0
    return [np.round((p - lo) * scale) for p in lines]


def write_sketches(path: str | os.PathLike, sketches: SketchSet) -> None:
    """Write a :class:`SketchSet` in the format named by ``path``'s extension, atomically.

    ``.npz`` keeps splits, labels and the scale factor; ``.ndjson`` and ``.bin`` store each
    sketch in Quick, Draw!'s 0-255 integer box (see :func:`_to_quickdraw_box`), ``.bin`` keeps
    no label (the format names the class by the file); ``.svg`` and ``.png`` draw all sketches
    as one grid.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in WRITE_FORMATS:
        raise SketchFileError(
            path, f"unsupported output type {suffix!r} (use {', '.join(WRITE_FORMATS)})"
        )
    if len(sketches) == 0:
        raise SketchFileError(path, "nothing to write: no sketches")
    for i, s in enumerate(sketches.strokes):
        S.validate_stroke3(s, where=f"sketch {i}")
    if suffix == ".npz":
        from sketchrnn.io.npz import write_npz

        write_npz(path, sketches)
    elif suffix in (".ndjson", ".bin"):
        from sketchrnn.io.quickdraw import QuickDrawDrawing, write_bin, write_ndjson

        drawings = [
            QuickDrawDrawing(
                key_id=i,
                word=label,
                countrycode="",
                recognized=True,
                timestamp=0,
                polylines=_to_quickdraw_box(s),
            )
            for i, (s, label) in enumerate(zip(sketches.strokes, sketches.labels, strict=True))
        ]
        (write_ndjson if suffix == ".ndjson" else write_bin)(path, drawings)
    else:
        write_grid(path, sketches.strokes)


def write_grid(
    path: str | os.PathLike,
    sketches: list[np.ndarray],
    *,
    ncols: int | None = None,
    color_by: Literal["none", "stroke", "position"] = "none",
) -> None:
    """Draw sketches as one grid to ``.svg`` or ``.png`` (by extension), atomically.

    ``color_by="stroke"`` colours strokes by drawing order (red through blue over the stroke
    index), ``"position"`` colours each sketch by its place in the list (for interpolations),
    ``"none"`` draws in black.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if color_by == "stroke":
        n = max((int(np.asarray(s)[:, 2].sum()) + 1 for s in sketches), default=1)
        colors, by = _rainbow(n), "stroke"
    elif color_by == "position":
        colors, by = position_colors(len(sketches)), "sketch"
    elif color_by == "none":
        colors, by = None, "stroke"
    else:
        raise ValueError(f"color_by must be 'none', 'stroke' or 'position', got {color_by!r}")
    if suffix == ".svg":
        from sketchrnn.io.svg import write_svg

        write_svg(path, list(sketches), ncols=ncols, colors=colors, color_by=by)
    elif suffix == ".png":
        from sketchrnn.io.png import write_png

        write_png(path, list(sketches), ncols=ncols, colors=colors, color_by=by)
    else:
        raise SketchFileError(path, f"unknown picture format {suffix!r}: use .svg or .png")


def position_colors(count: int, start: str = "#1f4fd8", end: str = "#d81f4f") -> list[str]:
    """``count`` colours blending from ``start`` to ``end``: colour by interpolation position."""
    from sketchrnn.raster import parse_color

    a, b = parse_color(start), parse_color(end)
    out = []
    for t in np.linspace(0.0, 1.0, max(count, 1))[:count]:
        rgb = np.clip(np.round(((1 - t) * a + t * b) * 255), 0, 255).astype(int)
        out.append("#{:02x}{:02x}{:02x}".format(*rgb))
    return out


def _rainbow(n: int) -> list[str]:
    """``n`` distinct colours from red through blue, as ``#rrggbb``."""
    import colorsys

    out = []
    for i in range(n):
        r, g, b = colorsys.hsv_to_rgb(0.75 * i / max(n - 1, 1), 0.9, 0.85)
        out.append(f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}")
    return out
