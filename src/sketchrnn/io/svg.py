"""SVG in and out.

Reading turns every drawable element (``path`` with all its commands including arcs, ``line``,
``polyline``, ``polygon``, ``rect``, ``circle``, ``ellipse``) into strokes, with ``transform``
attributes applied (svgpathtools). Each continuous subpath is one stroke; curves and arcs are
sampled densely and then simplified with RDP. Coordinates stay in SVG user units, whose y axis
points down like our image convention.

Writing draws one sketch or a grid of sketches as plain SVG text, one ``<path>`` per stroke.
"""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from sketchrnn.io.files import (
    MAX_ABS_OFFSET,
    SketchFileError,
    atomic_path,
    env_limit,
    limit_hint,
    size_text,
)
from sketchrnn.io.raster import check_prefix_points, colored_lines, fit_polylines, grid_shape
from sketchrnn.io.sketchset import SketchSet
from sketchrnn.strokes import (
    polylines_to_stroke3,
    rdp_polylines,
    stroke3_to_polylines,
    validate_stroke3,
)

__all__ = ["read_svg", "read_svg_set", "write_svg", "write_svg_drawing"]

# Points used to estimate a curve's length before sampling it (cheaper than exact arc length).
_LENGTH_PROBES = 16
# An untrusted file could hold a curve millions of units long: cap its samples, and memory.
_MAX_SAMPLES_PER_CURVE = 10_000
# ... or millions of segments (svgpathtools is pure Python, ~3 us a segment), or of elements:
# cap the path data before it is parsed, the segments, and the elements.
_MAX_PATH_DATA = 1 << 20  # characters of path data (d, points, ...) in a file
_MAX_SEGMENTS = 100_000
_MAX_ELEMENTS = 200_000


def _sample_segment(segment, samples_per_unit: float) -> np.ndarray:
    """Points ``(k, 2)`` along one svgpathtools segment, its start included."""
    from svgpathtools import Line

    if isinstance(segment, Line):
        pts = np.array([segment.start, segment.end])
    else:
        # svgpathtools evaluates Bezier curves and arcs at an array of t at once
        probe = np.asarray(segment.point(np.linspace(0, 1, _LENGTH_PROBES + 1)))
        length = float(np.abs(np.diff(probe)).sum())
        count = min(
            max(_LENGTH_PROBES, math.ceil(length * samples_per_unit)), _MAX_SAMPLES_PER_CURVE
        )
        pts = np.asarray(segment.point(np.linspace(0, 1, count + 1)))
    return np.column_stack([pts.real, pts.imag]).astype(np.float64)


def _subpath_polyline(subpath, samples_per_unit: float) -> np.ndarray:
    """One continuous subpath as a ``(k, 2)`` polyline without repeated consecutive points."""
    parts = [_sample_segment(seg, samples_per_unit) for seg in subpath]
    pts = np.concatenate([parts[0]] + [p[1:] for p in parts[1:]])
    keep = np.ones(len(pts), dtype=bool)
    keep[1:] = np.any(np.diff(pts, axis=0) != 0, axis=1)
    return pts[keep]


# Elements whose content is never drawn where it stands (definitions, metadata, text).
_NOT_DRAWN = {
    "defs",
    "clipPath",
    "mask",
    "symbol",
    "marker",
    "pattern",
    "title",
    "desc",
    "metadata",
    "style",
    "script",
    "text",
}


def _drawn_paths(path: Path, root: ET.Element) -> list:
    """svgpathtools Paths of every drawable element, in document order, transforms applied."""
    from svgpathtools import parse_path
    from svgpathtools.document import CONVERSIONS
    from svgpathtools.parser import parse_transform
    from svgpathtools.path import transform

    found = []
    data = 0
    # depth-first in document order: (element, transform of its parent), children pushed reversed
    stack = [(root, np.identity(3))]
    while stack:
        element, parent_tf = stack.pop()
        tag = element.tag.rsplit("}", 1)[-1] if isinstance(element.tag, str) else ""
        if tag in _NOT_DRAWN:
            continue
        own = element.get("transform")
        tf = parent_tf if own is None else parent_tf.dot(parse_transform(own))
        if tag in CONVERSIONS:
            d = CONVERSIONS[tag](element)
            if d and d.strip():
                data += len(d)
                if data > _MAX_PATH_DATA:
                    raise SketchFileError(
                        path, f"more than {_MAX_PATH_DATA:,} characters of path data: too complex"
                    )
                found.append((d, tf))
        stack.extend((child, tf) for child in reversed(element))
    return [transform(parse_path(d), tf) for d, tf in found]


def _parse_xml(path: Path) -> ET.Element:
    """The root element, refusing a file of more than ``_MAX_ELEMENTS`` elements as it is
    parsed (so an element bomb never builds its whole tree)."""
    root = None
    for count, (_event, element) in enumerate(ET.iterparse(path, events=("start",)), 1):
        if root is None:
            root = element
        if count > _MAX_ELEMENTS:
            raise SketchFileError(path, f"more than {_MAX_ELEMENTS:,} XML elements: too complex")
    assert root is not None
    return root


def read_svg(
    path: str | os.PathLike, *, epsilon: float = 0.5, samples_per_unit: float = 1.0
) -> np.ndarray:
    """Read the drawing of an SVG file as a stroke-3 float32 array ``(n, 3)``.

    Strokes come in document order. ``samples_per_unit`` is how many points per user unit
    of length curves and arcs are sampled with (at least 17 per curve); ``epsilon`` is the
    RDP tolerance in user units applied to every stroke afterwards (0 keeps every point).
    Fills, text and images are ignored. Raises :class:`SketchFileError` for a missing file, a
    file that is not XML, or an SVG with nothing drawable.
    """
    if samples_per_unit <= 0 or epsilon < 0:
        raise ValueError("samples_per_unit must be positive and epsilon not negative")
    path = Path(path)
    if not path.is_file():
        raise SketchFileError(path, "no such file")
    size = path.stat().st_size
    if size > env_limit("SKETCHRNN_MAX_SVG_BYTES"):
        raise SketchFileError(path, f"{size_text(size)}, " + limit_hint("SKETCHRNN_MAX_SVG_BYTES"))
    try:
        root = _parse_xml(path)
    except SketchFileError:
        raise
    except ET.ParseError as e:
        raise SketchFileError(path, f"not an XML/SVG file ({e})") from None
    except (OSError, RecursionError, MemoryError, ValueError) as e:
        raise SketchFileError(path, f"cannot read as XML ({type(e).__name__}: {e})") from None
    if root.tag.rsplit("}", 1)[-1] != "svg":
        raise SketchFileError(path, f"root element is <{root.tag}>, not <svg>")
    polylines = []
    max_points = env_limit("SKETCHRNN_MAX_POINTS")
    points = segments = 0
    try:
        for element_path in _drawn_paths(path, root):
            segments += len(element_path)
            if segments > _MAX_SEGMENTS:
                raise SketchFileError(
                    path, f"more than {_MAX_SEGMENTS:,} path segments: too complex to read"
                )
            for subpath in element_path.continuous_subpaths():
                if len(subpath):
                    polylines.append(_subpath_polyline(subpath, samples_per_unit))
                    points += len(polylines[-1])
                    if points > max_points:
                        raise SketchFileError(
                            path,
                            f"more than {max_points:,} points once sampled, "
                            + limit_hint("SKETCHRNN_MAX_POINTS"),
                        )
    except SketchFileError:
        raise
    except Exception as e:  # svgpathtools raises many kinds on malformed attributes
        raise SketchFileError(path, f"cannot read SVG drawing: {type(e).__name__}: {e}") from None
    polylines = [p for p in polylines if len(p) and np.isfinite(p).all()]
    if not polylines:
        raise SketchFileError(path, "SVG has no drawable paths")
    if epsilon > 0:
        polylines = rdp_polylines(polylines, epsilon)
    with np.errstate(over="ignore"):  # overflow to inf is checked just below
        s3 = polylines_to_stroke3(polylines)
    if not np.isfinite(s3).all():
        raise SketchFileError(path, "coordinates too large for float32 stroke offsets")
    peak = float(np.abs(s3[:, 0:2]).max())
    if peak > MAX_ABS_OFFSET:  # as every reader and writer: beyond this it is not a drawing
        raise SketchFileError(
            path,
            f"an offset of {peak:.3g} user units, beyond +-{MAX_ABS_OFFSET:g} (coordinates or "
            "a transform too large)",
        )
    return s3


def read_svg_set(
    path: str | os.PathLike, *, epsilon: float = 0.5, samples_per_unit: float = 1.0
) -> SketchSet:
    """Read one SVG file, or every ``*.svg`` under a folder (sorted, recursive), as a SketchSet.

    Labels are the folder of each file relative to ``path`` (``""`` for files directly in it
    or for a single file), so ``root/cat/1.svg`` gets the label ``"cat"``.
    """
    root = Path(path)
    if root.is_dir():
        files = sorted(root.rglob("*.svg"))
        if not files:
            raise SketchFileError(root, "folder holds no .svg files")
        labels = [f.parent.relative_to(root).as_posix() for f in files]
        labels = ["" if label == "." else label for label in labels]
    else:
        files, labels = [root], [""]
    strokes = [read_svg(f, epsilon=epsilon, samples_per_unit=samples_per_unit) for f in files]
    sketches = SketchSet(strokes, labels)
    sketches.notes.append(
        f"{os.fspath(path)}: SVG shapes are sampled into points"
        + (f" and simplified (RDP epsilon {epsilon:g} user units)" if epsilon > 0 else "")
        + "; fills, colours and text are not kept"
    )
    return sketches


def _number(v: float) -> str:
    text = f"{v:.3f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def write_svg(
    path: str | os.PathLike,
    sketches: np.ndarray | Sequence[np.ndarray],
    *,
    ncols: int | None = None,
    cell_size: float = 256.0,
    canvas_size: float | tuple[float, float] | None = None,
    padding: float = 0.1,
    stroke_width: float = 2.0,
    colors: Sequence[str] | None = None,
    color_by: Literal["stroke", "sketch"] = "stroke",
    prefix_points: Sequence[int] | None = None,
) -> None:
    """Write one stroke-3 sketch ``(n, 3)`` or a list of them as an SVG grid.

    Each sketch is scaled to fit its cell (``cell_size`` user units square, or the canvas
    divided evenly when ``canvas_size`` - a number or ``(width, height)`` - fixes the whole
    canvas), keeping its aspect ratio, centred, with ``padding`` (a fraction of the cell) as
    margin. ``colors`` are CSS colours indexed by stroke number within each sketch
    (``color_by="stroke"``, so colour shows drawing order) or by sketch number
    (``"sketch"``), cycling when too short; default black. The file appears only once it is
    completely written. Raises :class:`SketchError` naming the sketch for an invalid one (or
    a lone empty one; in a grid an empty sketch leaves its cell blank), before anything is
    written. ``prefix_points`` draws completions: see :func:`sketchrnn.io.raster.render_grid`.
    """
    if color_by not in ("stroke", "sketch"):
        raise ValueError(f"color_by must be 'stroke' or 'sketch', got {color_by!r}")
    items = [sketches] if isinstance(sketches, np.ndarray) else list(sketches)
    check_prefix_points(prefix_points, len(items), colors)
    rows, cols = grid_shape(len(items), ncols)
    if canvas_size is None:
        width, height = cols * cell_size, rows * cell_size
    elif isinstance(canvas_size, int | float):
        width = height = float(canvas_size)
    else:
        width, height = (float(v) for v in canvas_size)
    cell_w, cell_h = width / cols, height / rows
    palette = list(colors) if colors else ["black"]

    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_number(width)}" '
        f'height="{_number(height)}" viewBox="0 0 {_number(width)} {_number(height)}">',
    ]
    for i, s3 in enumerate(items):
        if len(items) > 1 and len(s3) == 0:  # in a grid, no points leaves the cell blank
            continue
        lines = stroke3_to_polylines(validate_stroke3(s3, where=f"sketch {i}"))
        r, c = divmod(i, cols)
        lines = [
            p + (c * cell_w, r * cell_h) for p in fit_polylines(lines, cell_w, cell_h, padding)
        ]
        out.append(
            f'<g fill="none" stroke-width="{_number(stroke_width)}" '
            'stroke-linecap="round" stroke-linejoin="round">'
        )
        prefix = None if prefix_points is None else prefix_points[i]
        for line, color in colored_lines(lines, i, palette, color_by, prefix):
            if len(line) == 1:  # a dot: a zero-length line shows as a round cap
                line = np.repeat(line, 2, axis=0)
            points = " L".join(f"{_number(x)},{_number(y)}" for x, y in line)
            out.append(f'<path stroke="{_escape(color)}" d="M{points}"/>')
        out.append("</g>")
    out.append("</svg>\n")
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(out), encoding="utf-8")


def write_svg_drawing(
    path: str | os.PathLike, s3: np.ndarray, *, stroke_width: float = 2.0
) -> None:
    """Write one stroke-3 sketch as SVG in its own coordinates, atomically.

    Unlike :func:`write_svg` nothing is scaled or moved: one ``<path>`` per stroke at the
    sketch's absolute coordinates (written to 0.001), and a ``viewBox`` around them, so that
    :func:`read_svg` with ``epsilon=0`` reads back the same points. A single-point stroke is
    written as a zero-length line (a dot), which reads back as its one point.
    """
    lines = stroke3_to_polylines(validate_stroke3(s3, where="sketch"))
    xy = np.concatenate(lines)
    pad = stroke_width
    lo = xy.min(axis=0) - pad
    size = np.maximum(xy.max(axis=0) + pad - lo, 1.0)
    x0, y0, w, h = (_number(v) for v in (lo[0], lo[1], size[0], size[1]))
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'viewBox="{x0} {y0} {w} {h}">',
        f'<g fill="none" stroke="black" stroke-width="{_number(stroke_width)}" '
        'stroke-linecap="round" stroke-linejoin="round">',
    ]
    for line in lines:
        if len(line) == 1:
            line = np.repeat(line, 2, axis=0)
        out.append(f'<path d="M{" L".join(f"{_number(x)},{_number(y)}" for x, y in line)}"/>')
    out += ["</g>", "</svg>\n"]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(out), encoding="utf-8")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
