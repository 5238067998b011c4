"""Rasterising sketches to images.

The numpy part (this section) draws stroke-3 sketches or absolute polylines as anti-aliased
float32 images in ``[0, 1]`` with ``1 = ink``, for datasets, metrics and PNG output. Each pixel
takes the distance from its centre to the nearest drawn segment; ink falls off linearly over
one pixel at the edge of the line, which is the anti-aliasing. Pen-up moves are not drawn; a
stroke of a single point is drawn as a dot.

Coordinates: image convention, x to the right, y down; pixel ``(row, col)`` has its centre at
``(x, y) = (col + 0.5, row + 0.5)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from sketchrnn.strokes import SketchError, split_polylines, stroke3_to_polylines, validate_stroke3

__all__ = [
    "Sketch",
    "sketch_polylines",
    "fit_polylines",
    "grid_shape",
    "parse_color",
    "rasterize_polylines",
    "rasterize",
    "rasterize_batch",
    "image_padding",
    "rasterize_quickdraw",
    "QUICKDRAW_BITMAP",
    "render_grid",
    "check_prefix_points",
    "colored_lines",
]

# A sketch is a stroke-3 array (n, 3) or a list of absolute (k, 2) polylines.
Sketch = np.ndarray | Sequence[np.ndarray]

# Consecutive segments of a stroke lie close together, so a chunk of them covers a small window
# of the image; distances are computed only inside that window. Small chunks waste time in
# Python, large ones on pixels far from most segments; the best size shrinks as the canvas grows
# (measured by benchmarks/raster_numpy.py). None picks it from the canvas size.
_SEGMENTS_PER_CHUNK: int | None = None


def _segments_per_chunk(height: int, width: int) -> int:
    if _SEGMENTS_PER_CHUNK is not None:
        return _SEGMENTS_PER_CHUNK
    return int(np.clip(2048 // max(height, width, 1), 4, 64))


def sketch_polylines(sketch: Sketch, *, where: str = "sketch") -> list[np.ndarray]:
    """The absolute ``(k, 2)`` float64 polylines of a stroke-3 array or of a polyline list.

    Raises :class:`SketchError` for a sketch with no points or with NaN/inf values.
    """
    if isinstance(sketch, np.ndarray) and sketch.ndim == 2 and sketch.shape[1] == 3:
        return stroke3_to_polylines(validate_stroke3(sketch, where=where))
    if isinstance(sketch, np.ndarray):
        raise SketchError(f"{where}: expected a stroke-3 (n, 3) array, got shape {sketch.shape}")
    lines = []
    for i, p in enumerate(sketch):
        a = np.asarray(p, dtype=np.float64)
        if a.ndim != 2 or a.shape[1] != 2:
            raise SketchError(f"{where}: polyline {i} must have shape (k, 2), got {a.shape}")
        if not np.isfinite(a).all():
            raise SketchError(f"{where}: polyline {i} contains NaN or infinite values")
        if len(a):
            lines.append(a)
    if not lines:
        raise SketchError(f"{where}: empty drawing (no points)")
    return lines


def fit_polylines(
    polylines: Sequence[np.ndarray], width: float, height: float, padding: float = 0.1
) -> list[np.ndarray]:
    """Scale and translate polylines to fit a ``width x height`` box, keeping the aspect ratio.

    The drawing is centred; ``padding`` is the fraction of each side left empty (0.1 leaves a
    10% margin on every edge). A drawing with no extent (a single point) is only centred.
    """
    if not 0 <= padding < 0.5:
        raise ValueError(f"padding must be in [0, 0.5), got {padding}")
    xy = np.concatenate([np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in polylines])
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    extent = hi - lo
    usable = np.array([width, height], dtype=np.float64) * (1 - 2 * padding)
    ratios = [usable[i] / extent[i] for i in range(2) if extent[i] > 0]
    scale = min(ratios) if ratios else 1.0
    shift = np.array([width, height]) / 2 - (lo + hi) / 2 * scale
    return [np.asarray(p, dtype=np.float64) * scale + shift for p in polylines]


def grid_shape(count: int, ncols: int | None = None) -> tuple[int, int]:
    """``(rows, cols)`` of a grid for ``count`` items; ``ncols`` defaults to a near-square grid."""
    if count <= 0:
        raise ValueError("a grid needs at least one item")
    cols = ncols if ncols is not None else math.ceil(math.sqrt(count))
    if cols <= 0:
        raise ValueError(f"ncols must be positive, got {cols}")
    cols = min(cols, count)
    return math.ceil(count / cols), cols


def parse_color(color: str | Sequence[float]) -> np.ndarray:
    """An RGB float array in ``[0, 1]`` from a CSS colour (``"red"``, ``"#ff8800"``) or a triple
    of floats in ``[0, 1]``."""
    if isinstance(color, str):
        from PIL import ImageColor

        try:
            named = ImageColor.getrgb(color)[:3]
        except ValueError as e:
            raise ValueError(f"unknown colour {color!r}") from e
        return np.asarray(named, dtype=np.float32) / 255.0
    rgb = np.asarray(color, dtype=np.float32)
    if rgb.shape != (3,) or not ((rgb >= 0) & (rgb <= 1)).all():
        raise ValueError(f"a colour triple must be 3 floats in [0, 1], got {color!r}")
    return rgb


def _segments(polylines: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Start and end points ``(segments, 2)`` of every drawn segment, in stroke order.

    A single-point stroke becomes a zero-length segment, so it is drawn as a dot.
    """
    starts, ends = [], []
    for p in polylines:
        p = np.asarray(p, dtype=np.float64).reshape(-1, 2)
        if len(p) == 0:
            continue
        if len(p) == 1:
            starts.append(p)
            ends.append(p)
        else:
            starts.append(p[:-1])
            ends.append(p[1:])
    return np.concatenate(starts), np.concatenate(ends)


def _min_squared_distance(
    polylines: Sequence[np.ndarray], height: int, width: int, reach: float
) -> np.ndarray:
    """Squared distance ``(height, width)`` from each pixel centre to the nearest segment,
    exact within ``reach`` of the drawing and ``inf`` where nothing is that close."""
    out = np.full((height, width), np.inf, dtype=np.float32)
    a, b = _segments(polylines)
    a = a.astype(np.float32)
    d = b.astype(np.float32) - a
    length2 = (d**2).sum(axis=1)
    inv_length2 = np.divide(1.0, length2, out=np.zeros_like(length2), where=length2 > 0)
    chunk = _segments_per_chunk(height, width)
    for first in range(0, len(a), chunk):
        sl = slice(first, first + chunk)
        lo = np.minimum(a[sl], a[sl] + d[sl]).min(axis=0) - reach
        hi = np.maximum(a[sl], a[sl] + d[sl]).max(axis=0) + reach
        # pixel centres c + 0.5 within [lo, hi]
        c0, r0 = max(0, math.ceil(lo[0] - 0.5)), max(0, math.ceil(lo[1] - 0.5))
        c1, r1 = min(width, math.floor(hi[0] - 0.5) + 1), min(height, math.floor(hi[1] - 0.5) + 1)
        if c0 >= c1 or r0 >= r1:
            continue
        # (segments, 1, 1) against pixel rows (1, h, 1) and columns (1, 1, w)
        ax, ay = a[sl, 0, None, None], a[sl, 1, None, None]
        dx, dy = d[sl, 0, None, None], d[sl, 1, None, None]
        gx = np.arange(c0, c1, dtype=np.float32)[None, None, :] + 0.5 - ax
        gy = np.arange(r0, r1, dtype=np.float32)[None, :, None] + 0.5 - ay
        t = np.clip((gx * dx + gy * dy) * inv_length2[sl, None, None], 0.0, 1.0)
        dist2 = ((gx - t * dx) ** 2 + (gy - t * dy) ** 2).min(axis=0)
        window = out[r0:r1, c0:c1]
        np.minimum(window, dist2, out=window)
    return out


def rasterize_polylines(
    polylines: Sequence[np.ndarray], height: int, width: int, line_width: float = 1.5
) -> np.ndarray:
    """Draw polylines given in pixel coordinates (no fitting) as a float32 ``(height, width)``
    ink image in ``[0, 1]``. ``line_width`` is in pixels."""
    if line_width <= 0:
        raise ValueError(f"line_width must be positive, got {line_width}")
    radius = line_width / 2
    if not any(len(p) for p in polylines):
        return np.zeros((height, width), dtype=np.float32)
    dist2 = _min_squared_distance(polylines, height, width, reach=radius + 0.5)
    # Full ink inside the line, a linear ramp over the one pixel straddling its edge.
    return np.clip(radius + 0.5 - np.sqrt(dist2), 0.0, 1.0).astype(np.float32)


def rasterize(
    sketch: Sketch, size: int = 64, line_width: float = 1.5, padding: float = 0.1
) -> np.ndarray:
    """Anti-aliased float32 image ``(size, size)`` in ``[0, 1]`` (1 = ink) of one sketch.

    ``sketch`` is a stroke-3 array ``(n, 3)`` or a list of absolute ``(k, 2)`` polylines. It is
    fitted to the square canvas keeping its aspect ratio, centred, with ``padding`` (a fraction
    of the side) left empty on each edge; ``line_width`` is in pixels. Raises
    :class:`SketchError` for an empty or invalid sketch.
    """
    lines = fit_polylines(sketch_polylines(sketch), size, size, padding)
    return rasterize_polylines(lines, size, size, line_width)


def image_padding(image_size: int) -> float:
    """The margin of SketchEmbedNet's training images as a fraction of the side: 10% of
    ``image_size`` rounded to whole pixels (Appendix G), e.g. 3 / 28 at 28 pixels."""
    return round(0.1 * image_size) / image_size


def rasterize_batch(
    sketches: Sequence[Sketch], size: int = 64, line_width: float = 1.5, padding: float = 0.1
) -> np.ndarray:
    """:func:`rasterize` each sketch: float32 ``(batch, size, size)``."""
    out = np.zeros((len(sketches), size, size), dtype=np.float32)
    for i, s in enumerate(sketches):
        lines = fit_polylines(sketch_polylines(s, where=f"sketch {i}"), size, size, padding)
        out[i] = rasterize_polylines(lines, size, size, line_width)
    return out


@dataclass(frozen=True)
class BitmapRecipe:
    """How Quick, Draw!'s 28x28 bitmaps were drawn from the simplified drawings (see
    :func:`rasterize_quickdraw`); lengths in units of the ``box`` the drawing is fitted to."""

    size: int = 28  # pixels of the bitmap's side
    box: float = 256.0  # the drawing's larger side spans 0..box-1, centred in the box
    line_width: float = 16.0  # round lines, this wide
    margin: float = 24.0  # (2 * 16 padding + 16 line) / 2 on each side: a 304-unit canvas
    supersample: int = 4  # drawn at size * supersample, then area-averaged down

    @property
    def canvas(self) -> float:
        return self.box + 2 * self.margin


#: The recipe of Quick, Draw!'s own ``numpy_bitmap`` files, which classifiers trained on the
#: full data (DoodleNet) expect.
QUICKDRAW_BITMAP = BitmapRecipe()


def rasterize_quickdraw(
    sketches: Sequence[Sketch],
    recipe: BitmapRecipe = QUICKDRAW_BITMAP,
    *,
    allow_empty: bool = False,
) -> np.ndarray:
    """Quick, Draw!'s bitmaps of sketches: float32 ``(batch, size, size)``, 1 = ink.

    Each sketch (stroke-3 or polylines, in any units) is scaled so its larger side spans
    ``box - 1`` (0..255, as the simplified drawings are), centred in the ``box``, drawn with
    round lines ``line_width`` wide on a canvas with ``margin`` on every side, and reduced to
    ``size x size`` by area averaging. That is the preprocessing of the Quick, Draw! data's
    28x28 bitmaps: with it DoodleNet classifies the simplified drawings here at ~90% top-5;
    without the centring or with thinner lines it loses 20 points. ``allow_empty`` draws a
    sketch with no points as a blank bitmap (a model that ended at once) instead of raising
    :class:`SketchError`.
    """
    big = recipe.size * recipe.supersample
    # The drawing's larger side, box - 1 units, is this fraction of the canvas.
    padding = (1 - (recipe.box - 1) / recipe.canvas) / 2
    width = recipe.line_width * big / recipe.canvas
    out = np.zeros((len(sketches), recipe.size, recipe.size), dtype=np.float32)
    k = recipe.supersample
    for i, s in enumerate(sketches):
        if allow_empty and len(s) == 0:
            continue
        lines = sketch_polylines(s, where=f"sketch {i}")
        with np.errstate(over="ignore"):
            extent = np.ptp(np.concatenate(lines), axis=0)
        if not np.isfinite(extent).all():  # fitting would squash it to a dot
            raise SketchError(f"sketch {i}: coordinates too large to draw")
        lines = fit_polylines(lines, big, big, padding)
        image = rasterize_polylines(lines, big, big, width)
        out[i] = image.reshape(recipe.size, k, recipe.size, k).mean(axis=(1, 3))
    return out


def render_grid(
    sketches: Sequence[Sketch],
    ncols: int | None = None,
    cell: int = 64,
    line_width: float = 1.5,
    padding: float = 0.1,
    colors: Sequence[str | Sequence[float]] | None = None,
    color_by: Literal["stroke", "sketch"] = "stroke",
    prefix_points: Sequence[int] | None = None,
) -> np.ndarray:
    """Draw sketches in a grid of ``cell x cell`` squares, row by row.

    Without ``colors``: a float32 ink image ``(rows * cell, cols * cell)`` in ``[0, 1]``.
    With ``colors``: a float32 RGB image ``(rows * cell, cols * cell, 3)`` on white, where the
    colour list is indexed by stroke number within each sketch (``color_by="stroke"``, so
    colour shows drawing order) or by sketch number (``"sketch"``), cycling when too short.
    Later strokes are painted over earlier ones.

    ``prefix_points`` (one count per sketch) draws a completion the paper's way: the first
    ``prefix_points[i]`` points of sketch ``i`` (what was given) in ``colors[0]`` and the rest
    (what the model drew) in ``colors[1]``; ``color_by`` is then not used.
    """
    if color_by not in ("stroke", "sketch"):
        raise ValueError(f"color_by must be 'stroke' or 'sketch', got {color_by!r}")
    check_prefix_points(prefix_points, len(sketches), colors)
    rows, cols = grid_shape(len(sketches), ncols)
    palette = [parse_color(c) for c in colors] if colors else None
    if palette is None:
        image = np.zeros((rows * cell, cols * cell), dtype=np.float32)
    else:
        image = np.ones((rows * cell, cols * cell, 3), dtype=np.float32)
    for i, s in enumerate(sketches):
        r, c = divmod(i, cols)
        target = image[r * cell : (r + 1) * cell, c * cell : (c + 1) * cell]
        if len(s) == 0:  # no points (a model that ended at once): the cell stays blank
            continue
        lines = fit_polylines(sketch_polylines(s, where=f"sketch {i}"), cell, cell, padding)
        if palette is None:
            target[...] = rasterize_polylines(lines, cell, cell, line_width)
            continue
        prefix = None if prefix_points is None else prefix_points[i]
        for line, color in colored_lines(lines, i, palette, color_by, prefix):
            ink = rasterize_polylines([line], cell, cell, line_width)[..., None]
            target[...] = target * (1 - ink) + color * ink
    return image


def colored_lines(
    lines: Sequence[np.ndarray],
    index: int,
    palette: Sequence[Any],
    color_by: str,
    prefix_points: int | None = None,
) -> list[tuple[np.ndarray, Any]]:
    """``(polyline, colour)`` pairs of sketch number ``index`` in painting order: colours from
    ``palette`` by stroke number (``color_by="stroke"``) or by sketch number (``"sketch"``),
    cycling; with ``prefix_points``, the first that many points in ``palette[0]`` (the given
    prefix) and the rest in ``palette[1]`` (what the model drew)."""
    if prefix_points is not None:
        given, drawn = split_polylines(lines, prefix_points)
        return [(x, palette[0]) for x in given] + [(x, palette[1]) for x in drawn]
    return [
        (line, palette[(k if color_by == "stroke" else index) % len(palette)])
        for k, line in enumerate(lines)
    ]


def check_prefix_points(
    prefix_points: Sequence[int] | None, n_sketches: int, colors: Sequence[Any] | None
) -> None:
    """Refuse a ``prefix_points`` list that does not fit the grid it colours."""
    if prefix_points is None:
        return
    if len(prefix_points) != n_sketches:
        raise ValueError(f"prefix_points has {len(prefix_points)} counts for {n_sketches} sketches")
    if not colors or len(colors) < 2:
        raise ValueError("prefix_points needs two colours: the given prefix's, the model's")
    if min(prefix_points, default=0) < 0:
        raise ValueError("prefix_points must be >= 0")
