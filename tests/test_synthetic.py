"""The built-in synthetic data set: deterministic, short, labelled, split, and shaped right."""

from __future__ import annotations

import numpy as np
import pytest

from sketchrnn.data import datasets_from_sketchset
from sketchrnn.strokes import simplify_stroke3, stroke3_to_polylines, validate_stroke3
from sketchrnn.synthetic import CLASSES, synthetic_sketch, synthetic_sketchset

STROKES_PER_CLASS = {
    "circle": 1,
    "square": 1,
    "triangle": 1,
    "snowman": 2,
    "house": 2,
    "circle_in_square": 2,
}


@pytest.fixture(scope="module")
def sketches():
    return synthetic_sketchset(n_per_class=40, seed=0)


def of_class(sketches, name):
    return [s for s, label in zip(sketches.strokes, sketches.labels, strict=True) if label == name]


def radius_spread(points: np.ndarray) -> float:
    """Relative spread of the distances of points from their centroid (0 for a circle)."""
    r = np.linalg.norm(points - points.mean(axis=0), axis=1)
    return float(r.std() / r.mean())


def test_classes_labels_and_splits(sketches):
    assert set(CLASSES) == set(STROKES_PER_CLASS)
    assert sketches.classes == sorted(CLASSES)
    assert len(sketches) == 40 * len(CLASSES)
    for name in CLASSES:
        splits = [
            sp for sp, label in zip(sketches.splits, sketches.labels, strict=True) if label == name
        ]
        assert (splits.count("train"), splits.count("valid"), splits.count("test")) == (32, 4, 4)


def test_deterministic_per_seed():
    a = synthetic_sketchset(5, seed=3)
    b = synthetic_sketchset(5, seed=3)
    c = synthetic_sketchset(5, seed=4)
    assert all(np.array_equal(x, y) for x, y in zip(a.strokes, b.strokes, strict=True))
    assert not all(
        x.shape == y.shape and np.array_equal(x, y)
        for x, y in zip(a.strokes, c.strokes, strict=True)
    )
    # A class does not change when other classes are left out.
    only = synthetic_sketchset(5, seed=3, classes=["house"])
    houses = of_class(a, "house")
    assert all(np.array_equal(x, y) for x, y in zip(only.strokes, houses, strict=True))


def test_sketches_are_short_canonical_integer_stroke3(sketches):
    for name in CLASSES:
        for s3 in of_class(sketches, name):
            validate_stroke3(s3)
            assert 4 <= len(s3) <= 40
            assert s3[-1, 2] == 1
            np.testing.assert_array_equal(s3, np.round(s3))
            assert len(stroke3_to_polylines(s3)) == STROKES_PER_CLASS[name]
            assert np.abs(s3[0, :2]).max() <= 10  # starts near the origin
            width = np.ptp(np.cumsum(s3[:, :2], axis=0), axis=0).max()
            assert 40 <= width <= 200


def test_circles_are_round_and_closed(sketches):
    for s3 in of_class(sketches, "circle"):
        (loop,) = stroke3_to_polylines(s3)
        assert radius_spread(loop) < 0.15
        diameter = np.ptp(loop, axis=0).max()
        assert np.linalg.norm(loop[-1] - loop[0]) < 0.4 * diameter


def corner_count(s3: np.ndarray) -> int:
    """Points left after RDP at 6% of the figure's width: 4 corners + the return for a square."""
    width = np.ptp(np.cumsum(s3[:, :2], axis=0), axis=0).max()
    return len(simplify_stroke3(s3, 0.06 * width))


def test_squares_and_triangles_have_corners_and_circles_do_not(sketches):
    assert all(corner_count(s3) == 5 for s3 in of_class(sketches, "square"))
    assert all(corner_count(s3) == 4 for s3 in of_class(sketches, "triangle"))
    assert all(corner_count(s3) >= 7 for s3 in of_class(sketches, "circle"))


def test_snowman_has_a_smaller_circle_on_top(sketches):
    for s3 in of_class(sketches, "snowman"):
        parts = stroke3_to_polylines(s3)
        sizes = [np.ptp(p, axis=0).max() for p in parts]
        centres = [p.mean(axis=0) for p in parts]
        top, bottom = (0, 1) if centres[0][1] < centres[1][1] else (1, 0)
        assert sizes[top] < sizes[bottom]
        dx, dy = np.abs(centres[top] - centres[bottom])
        assert dy > 2 * dx  # stacked vertically (rotation is at most 12 degrees)


def test_house_roof_is_an_open_stroke_above_the_body(sketches):
    for s3 in of_class(sketches, "house"):
        parts = stroke3_to_polylines(s3)
        roof = min(parts, key=len) if len(parts[0]) != len(parts[1]) else None
        if roof is None:  # same length: the roof is the open one
            roof = max(parts, key=lambda p: np.linalg.norm(p[-1] - p[0]))
        body = parts[1] if roof is parts[0] else parts[0]
        assert 3 <= len(roof) <= 5
        assert np.linalg.norm(roof[-1] - roof[0]) > 0.5 * np.ptp(body, axis=0).max()
        assert roof[:, 1].min() < body[:, 1].min()  # y grows downwards: the apex is on top


def test_unknown_class_is_an_error():
    with pytest.raises(ValueError, match="unknown synthetic class 'dog'"):
        synthetic_sketch("dog", np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown synthetic class"):
        synthetic_sketchset(2, classes=["circle", "dog"])
    with pytest.raises(ValueError, match="n_per_class"):
        synthetic_sketchset(0)


def test_feeds_the_data_pipeline(sketches):
    data = datasets_from_sketchset(sketches)
    assert data.classes == sorted(CLASSES)
    assert (len(data.train), len(data.valid), len(data.test)) == (192, 24, 24)
    assert data.max_len <= 40
    batch = next(data.train.batches(16, augment=True, drop_prob=0.1))
    assert batch.strokes.shape == (16, data.max_len + 1, 5)
