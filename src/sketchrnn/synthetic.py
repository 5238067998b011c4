"""A built-in synthetic sketch data set: simple shapes drawn the way a person would draw them.

Used to train the built-in shapes models, and by ``sketchrnn demo --train`` to train one in
minutes with no download. Each sketch is short (about 5-35 points, in units where a figure is
about 100 across, integer offsets like Quick, Draw! data) and each shape is one stroke, started
at a random point and drawn in a random direction, with a little hand-drawn wobble::

    sketches = synthetic_sketchset(n_per_class=500, seed=0)   # a SketchSet, 6 classes

Numpy only (no torch), and deterministic for a given seed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from sketchrnn.io.sketchset import SketchSet
from sketchrnn.strokes import polylines_to_stroke3

__all__ = ["CLASSES", "MAX_PER_CLASS", "synthetic_sketch", "synthetic_sketchset"]

Polyline = np.ndarray  # (k, 2) absolute points; y grows downwards as on a screen

SIZE = 100.0  # the typical width of a figure, in sketch units


def _rotation(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def _circle(rng: np.random.Generator, center: np.ndarray, radius: float) -> Polyline:
    """One closed loop, a little elliptical and wobbly, overshooting or missing its start."""
    n = int(rng.integers(12, 17))
    start = rng.uniform(0, 2 * np.pi)
    direction = rng.choice([-1.0, 1.0])
    sweep = 2 * np.pi * rng.uniform(0.96, 1.08)
    angles = start + direction * np.linspace(0.0, sweep, n)
    radii = radius * (1.0 + rng.normal(0.0, 0.03, n))
    axes = np.array([rng.uniform(0.9, 1.1), rng.uniform(0.9, 1.1)])
    points = np.column_stack([np.cos(angles), np.sin(angles)]) * radii[:, None] * axes
    return center + points @ _rotation(rng.uniform(0, np.pi)).T


def _polygon(rng: np.random.Generator, corners: np.ndarray, closed: bool = True) -> Polyline:
    """Corners joined by straight-ish edges, from a random corner (when closed) in a random
    direction; some edges get a slightly off-line midpoint as a hand would make."""
    if closed:
        corners = np.roll(corners, -int(rng.integers(len(corners))), axis=0)
        if rng.random() < 0.5:
            corners = corners[::-1]
        corners = np.vstack([corners, corners[:1]])
    elif rng.random() < 0.5:
        corners = corners[::-1]
    scale = np.linalg.norm(np.ptp(corners, axis=0))
    visited = [corners[0]]
    for a, b in zip(corners[:-1], corners[1:], strict=True):
        if rng.random() < 0.35:
            visited.append((a + b) / 2 + rng.normal(0.0, 0.015 * scale, 2))
        visited.append(b)
    points = np.array(visited)
    if closed:  # the pen rarely lands exactly where it started
        points[-1] += rng.normal(0.0, 0.02 * scale, 2)
    return points


def _square_corners(rng: np.random.Generator, center: np.ndarray, side: float) -> np.ndarray:
    """``(4, 2)`` jittered corners: top-left, top-right, bottom-right, bottom-left."""
    half = side / 2
    corners = np.array([[-half, -half], [half, -half], [half, half], [-half, half]])
    return center + corners + rng.normal(0.0, 0.04 * side, corners.shape)


def _square(rng: np.random.Generator, center: np.ndarray, side: float) -> Polyline:
    return _polygon(rng, _square_corners(rng, center, side))


def _triangle(rng: np.random.Generator, center: np.ndarray, size: float) -> Polyline:
    angles = np.radians([-90.0, 30.0, 150.0]) + rng.normal(0.0, 0.08, 3)
    corners = 0.6 * size * np.column_stack([np.cos(angles), np.sin(angles)])
    corners += rng.normal(0.0, 0.03 * size, corners.shape)
    return _polygon(rng, center + corners)


def _draw_circle(rng: np.random.Generator) -> list[Polyline]:
    return [_circle(rng, np.zeros(2), SIZE / 2)]


def _draw_square(rng: np.random.Generator) -> list[Polyline]:
    return [_square(rng, np.zeros(2), SIZE)]


def _draw_triangle(rng: np.random.Generator) -> list[Polyline]:
    return [_triangle(rng, np.zeros(2), SIZE)]


def _draw_snowman(rng: np.random.Generator) -> list[Polyline]:
    """Two stacked circles, a smaller one on top, drawn in either order."""
    bottom = SIZE * rng.uniform(0.3, 0.36)
    top = bottom * rng.uniform(0.55, 0.8)
    gap = (bottom + top) * rng.uniform(0.95, 1.03)
    head = np.array([rng.normal(0.0, 0.04 * SIZE), -gap])
    parts = [_circle(rng, np.zeros(2), bottom), _circle(rng, head, top)]
    return parts if rng.random() < 0.5 else parts[::-1]


def _draw_house(rng: np.random.Generator) -> list[Polyline]:
    """A square body, then a roof stroke from one top corner over the apex to the other."""
    side = SIZE * rng.uniform(0.7, 0.8)
    corners = _square_corners(rng, np.zeros(2), side)
    body = _polygon(rng, corners)
    # The roof starts and ends on (or a little beyond) the body's top corners.
    left, right = corners[0], corners[1]
    overhang = (right - left) * rng.uniform(0.0, 0.12)
    apex = (left + right) / 2 + np.array(
        [rng.normal(0.0, 0.04 * side), -side * rng.uniform(0.45, 0.7)]
    )
    roof_corners = np.array([left - overhang, apex, right + overhang])
    roof_corners += rng.normal(0.0, 0.015 * side, roof_corners.shape)
    roof = _polygon(rng, roof_corners, closed=False)
    return [body, roof] if rng.random() < 0.8 else [roof, body]


def _draw_circle_in_square(rng: np.random.Generator) -> list[Polyline]:
    side = SIZE * rng.uniform(0.85, 1.0)
    inner = side * rng.uniform(0.25, 0.38)
    offset = rng.normal(0.0, 0.04 * side, 2)
    parts = [_square(rng, np.zeros(2), side), _circle(rng, offset, inner)]
    return parts if rng.random() < 0.6 else parts[::-1]


# class name -> (drawing function, largest rotation of the whole figure in degrees)
_DRAWERS: dict[str, tuple[Callable[[np.random.Generator], list[Polyline]], float]] = {
    "circle": (_draw_circle, 0.0),  # a circle carries its own random tilt
    "square": (_draw_square, 20.0),
    "triangle": (_draw_triangle, 20.0),
    "snowman": (_draw_snowman, 12.0),
    "house": (_draw_house, 10.0),
    "circle_in_square": (_draw_circle_in_square, 15.0),
}
CLASSES: tuple[str, ...] = tuple(_DRAWERS)


def synthetic_sketch(name: str, rng: np.random.Generator) -> np.ndarray:
    """One sketch of class ``name`` (see :data:`CLASSES`) as integer-valued stroke-3 ``(n, 3)``.

    The figure is randomly sized (0.7-1.3), rotated and placed; the first row is the offset of
    the first point from the origin, a few units, as in the sketch-rnn data sets.
    """
    if name not in _DRAWERS:
        raise ValueError(f"unknown synthetic class {name!r}; choose from {', '.join(CLASSES)}")
    draw, max_degrees = _DRAWERS[name]
    transform = _rotation(np.radians(rng.uniform(-max_degrees, max_degrees)))
    transform = transform * rng.uniform(0.7, 1.3)
    polylines = [p @ transform.T for p in draw(rng)]
    start = polylines[0][0] - rng.normal(0.0, 2.0, 2)
    return polylines_to_stroke3([np.round(p - start) for p in polylines])


# The most sketches of one shape: 600,000 of the six shapes take about 400 MB in memory.
MAX_PER_CLASS = 100_000


def synthetic_sketchset(
    n_per_class: int = 500,
    seed: int = 0,
    *,
    classes: Sequence[str] = CLASSES,
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
) -> SketchSet:
    """``n_per_class`` sketches of each class, with class labels and train/valid/test splits.

    Of each class, ``round(n * valid_fraction)`` go to valid, as many for test, the rest to
    train. Class ``k`` is drawn from its own generator seeded by ``(seed, k)``, so the set is
    the same for the same arguments on every machine.
    """
    if not 1 <= n_per_class <= MAX_PER_CLASS:
        raise ValueError(f"n_per_class must be in [1, {MAX_PER_CLASS:,}], got {n_per_class}")
    if len(split_fractions) != 3 or min(split_fractions) < 0 or sum(split_fractions) > 1 + 1e-9:
        raise ValueError(f"split fractions must be >= 0 and sum to 1: {split_fractions}")
    n_valid = round(n_per_class * split_fractions[1])
    n_test = min(round(n_per_class * split_fractions[2]), n_per_class - n_valid)
    n_train = n_per_class - n_valid - n_test
    splits = ["train"] * n_train + ["valid"] * n_valid + ["test"] * n_test
    out = SketchSet()
    for name in classes:
        if name not in _DRAWERS:
            raise ValueError(f"unknown synthetic class {name!r}; choose from {', '.join(CLASSES)}")
        rng = np.random.default_rng([seed, CLASSES.index(name)])
        sketches = [synthetic_sketch(name, rng) for _ in range(n_per_class)]
        out.extend(SketchSet(sketches, [name] * n_per_class, list(splits)))
    return out
