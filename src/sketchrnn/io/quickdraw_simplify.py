"""Simplifying raw Quick, Draw! drawings: Google's published steps into the simplified data
set's 0-255 box (:func:`simplify_raw_drawing`), or as sketch-rnn's Quick, Draw! ``.npz``
files were made, in the drawing's own pixels (:func:`simplify_raw_drawing_sketchrnn`).
"""

from __future__ import annotations

import numpy as np

from sketchrnn.io.files import env_limit
from sketchrnn.strokes import SketchError, rdp_line_distance

__all__ = ["RAW_SIMPLIFY_EPSILON", "simplify_raw_drawing", "simplify_raw_drawing_sketchrnn"]

RAW_SIMPLIFY_EPSILON = 2.0  # Google's RDP epsilon for the simplified data set
_SIMPLIFIED_MAX = 255.0


def _resample(points: np.ndarray, spacing: float) -> np.ndarray:
    """Points every ``spacing`` along a polyline ``(k, 2)``, keeping both ends.

    A stroke that does not move (one point, or all points equal) comes back as its point
    twice: Google's simplified data never has single-point strokes, it keeps such dots so.
    """
    moved = np.ones(len(points), dtype=bool)
    moved[1:] = np.any(np.diff(points, axis=0) != 0, axis=1)
    points = points[moved]  # repeated points would give zero-length segments
    if len(points) < 2:
        return np.repeat(points, 2, axis=0)
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(points, axis=0).T))])
    where = np.arange(0.0, arc[-1], spacing)
    if arc[-1] - where[-1] > 1e-9:
        where = np.append(where, arc[-1])
    return np.column_stack(
        [np.interp(where, arc, points[:, 0]), np.interp(where, arc, points[:, 1])]
    )


def simplify_raw_drawing(polylines: list[np.ndarray]) -> list[np.ndarray]:
    """Google's simplification of a raw drawing into the simplified data set's form.

    The steps published with the Quick, Draw! data: align to the top-left corner (minimum 0),
    scale uniformly so the largest coordinate is 255, resample each stroke at 1-pixel spacing,
    Ramer-Douglas-Peucker with epsilon 2.0 (distance to the line through the end points),
    round to integers. Input and output are lists of absolute ``(k, 2)`` polylines; every
    output stroke has at least two points (a dot is its point twice, as in Google's data).
    Raises :class:`SketchError` for a drawing whose points all coincide (nothing to scale).
    """
    lines = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in polylines]
    lines = [p for p in lines if len(p)]
    if not lines:
        raise SketchError("empty drawing (no points)")
    everything = np.concatenate(lines)
    origin = everything.min(axis=0)
    extent = float((everything - origin).max())
    if extent <= 0:
        raise SketchError("all points of the drawing coincide (nothing to scale)")
    scale = _SIMPLIFIED_MAX / extent
    scaled = [(p - origin) * scale for p in lines]
    # Resampling at 1 pixel makes a point per pixel of ink: bound it before allocating.
    length = sum(float(np.hypot(*np.diff(p, axis=0).T).sum()) for p in scaled if len(p) > 1)
    limit = env_limit("SKETCHRNN_MAX_POINTS")
    if length > limit:
        raise SketchError(
            f"strokes {length:,.0f} pixels long in the 0-255 box would resample to more points "
            f"than the limit of {limit:,} ($SKETCHRNN_MAX_POINTS raises it)"
        )
    return [np.round(rdp_line_distance(_resample(p, 1.0), RAW_SIMPLIFY_EPSILON)) for p in scaled]


def simplify_raw_drawing_sketchrnn(polylines: list[np.ndarray]) -> list[np.ndarray]:
    """A raw drawing simplified as sketch-rnn's Quick, Draw! ``.npz`` files were made.

    Those files (and the magenta.js models trained on them) keep the drawing's own pixel
    units: Ramer-Douglas-Peucker with epsilon 2.0 on the recorded points, no rescale to a
    0-255 box, integer coordinates (the files hold int16). The drawing is moved so that its
    first point is the origin, because those files carry no absolute start position: their
    first offset is a small move (the released models sample first offsets of about
    +-20 pixels), not the position of the pen on the screen.

    On the shared raw files of the 20 classes that have a released model, this gives the
    released models a better likelihood than Google's 0-255 simplification for 14 of the 20
    (the 6 others are models with near-degenerate mixtures, poor on both); the offset std of
    drawings simplified so is 0.58x the model's ``scale_factor`` (median over classes), of
    0-255 drawings 0.43x. Scaling the pixel-unit drawings by 1.25-1.5 raises the
    (Jacobian-corrected) likelihood a little further: the models' training drawings were
    somewhat larger still (from other screens, or simplified otherwise).
    """
    lines = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in polylines]
    lines = [p for p in lines if len(p)]
    if not lines:
        raise SketchError("empty drawing (no points)")
    origin = lines[0][0]
    return [np.round(rdp_line_distance(p - origin, RAW_SIMPLIFY_EPSILON)) for p in lines]
