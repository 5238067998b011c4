"""Property tests of strokes.py: conversions, simplification, scaling and augmentation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sketchrnn.strokes import (
    PAD_ROW,
    SketchError,
    augment,
    bounds,
    clamp_offsets,
    max_length,
    normalize,
    polylines_to_stroke3,
    random_drop_points,
    random_scale,
    rdp_polylines,
    scale_factor,
    simplify_stroke3,
    stroke3_to_polylines,
    stroke3_to_stroke5,
    stroke5_to_stroke3,
    validate_stroke3,
)

# ----------------------------------------------------------------------------- strategies

offsets = st.tuples(st.integers(-60, 60), st.integers(-60, 60))


@st.composite
def canonical_sketches(draw, max_strokes: int = 5, max_points: int = 12) -> np.ndarray:
    """A canonical stroke-3 sketch with integer offsets: every stroke ends with pen_lifted=1."""
    strokes = draw(
        st.lists(
            st.lists(offsets, min_size=1, max_size=max_points), min_size=1, max_size=max_strokes
        )
    )
    rows = []
    for stroke in strokes:
        for i, (dx, dy) in enumerate(stroke):
            rows.append((dx, dy, 1 if i == len(stroke) - 1 else 0))
    return np.array(rows, dtype=np.float32)


seeds = st.integers(0, 2**32 - 1)

# The machine is shared: a slow example is not a failure.
no_deadline = settings(deadline=None)


def stroke_count(s3: np.ndarray) -> int:
    return int((s3[:, 2] == 1).sum())


def absolute_points(s3: np.ndarray) -> np.ndarray:
    """``(n, 3)``: absolute x, y of every point and its pen state."""
    return np.column_stack([np.cumsum(s3[:, :2].astype(np.float64), axis=0), s3[:, 2]])


def is_subsequence(small: np.ndarray, big: np.ndarray) -> bool:
    """Whether the rows of ``small`` appear in ``big`` in the same order (exact match)."""
    j = 0
    for row in big:
        if j < len(small) and np.array_equal(row, small[j]):
            j += 1
    return j == len(small)


def distance_to_segment(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    ab = b - a
    denom = float(ab @ ab)
    t = 0.0 if denom == 0 else float(np.clip((p - a) @ ab / denom, 0.0, 1.0))
    return float(np.linalg.norm(p - (a + t * ab)))


# ----------------------------------------------------------------------------- stroke-5


@no_deadline
@given(canonical_sketches(), st.integers(0, 20))
def test_stroke5_round_trip_is_exact(s3, extra_padding):
    n_max = len(s3) + extra_padding
    s5 = stroke3_to_stroke5(s3, n_max)
    assert s5.shape == (n_max, 5)
    assert s5.dtype == np.float32
    np.testing.assert_array_equal(stroke5_to_stroke3(s5), s3)


@no_deadline
@given(canonical_sketches(), st.integers(0, 20))
def test_stroke5_rows_are_one_hot_and_padding_is_end_rows(s3, extra_padding):
    n = len(s3)
    s5 = stroke3_to_stroke5(s3, n + extra_padding)
    np.testing.assert_array_equal(s5[n:], np.tile(PAD_ROW, (extra_padding, 1)))
    drawn = s5[:n]
    np.testing.assert_array_equal(drawn[:, 2:].sum(axis=1), np.ones(n))
    np.testing.assert_array_equal(drawn[:, 3], s3[:, 2])  # p2 = pen lifted
    assert not drawn[:, 4].any()


@no_deadline
@given(canonical_sketches())
def test_stroke5_default_n_max_has_exactly_one_end_row(s3):
    s5 = stroke3_to_stroke5(s3)
    assert len(s5) == len(s3) + 1
    np.testing.assert_array_equal(s5[-1], PAD_ROW)


@no_deadline
@given(canonical_sketches())
def test_stroke5_to_stroke3_reads_soft_pen_states_by_argmax(s3):
    s5 = stroke3_to_stroke5(s3, len(s3) + 3)
    soft = s5.copy()
    soft[:, 2:] = 0.1 + 0.7 * s5[:, 2:]  # the one-hot state stays the largest
    np.testing.assert_array_equal(stroke5_to_stroke3(soft), s3)


def test_stroke3_longer_than_n_max_is_an_error():
    with pytest.raises(SketchError, match="n_max"):
        stroke3_to_stroke5(np.zeros((5, 3), dtype=np.float32), 4)


def test_stroke5_with_wrong_shape_is_an_error():
    with pytest.raises(SketchError, match=r"\(n, 5\)"):
        stroke5_to_stroke3(np.zeros((4, 3)))


# ----------------------------------------------------------------------------- polylines


@no_deadline
@given(canonical_sketches())
def test_polyline_round_trip_is_exact(s3):
    lines = stroke3_to_polylines(s3)
    assert len(lines) == stroke_count(s3)
    assert sum(len(p) for p in lines) == len(s3)
    np.testing.assert_array_equal(np.concatenate(lines), np.cumsum(s3[:, :2], axis=0))
    np.testing.assert_array_equal(polylines_to_stroke3(lines), s3)


@no_deadline
@given(st.lists(st.lists(offsets, min_size=1, max_size=8), min_size=1, max_size=5))
def test_polylines_to_stroke3_to_polylines_is_exact(points):
    lines = [np.array(p, dtype=np.float64) for p in points]
    back = stroke3_to_polylines(polylines_to_stroke3(lines))
    assert len(back) == len(lines)
    for a, b in zip(back, lines, strict=True):
        np.testing.assert_array_equal(a, b)


def test_polylines_drop_empty_strokes_and_keep_an_unclosed_last_stroke():
    s3 = polylines_to_stroke3([np.zeros((0, 2)), np.array([[1, 2], [3, 4]]), np.zeros((0, 2))])
    np.testing.assert_array_equal(s3, [[1, 2, 0], [2, 2, 1]])
    unclosed = np.array([[1, 1, 1], [2, 0, 0], [0, 3, 0]], dtype=np.float32)
    lines = stroke3_to_polylines(unclosed)
    assert [len(p) for p in lines] == [1, 2]
    assert polylines_to_stroke3([]).shape == (0, 3)


@no_deadline
@given(canonical_sketches())
def test_bounds_are_those_of_the_absolute_points(s3):
    xy = np.concatenate(stroke3_to_polylines(s3))
    assert bounds(s3) == (xy[:, 0].min(), xy[:, 0].max(), xy[:, 1].min(), xy[:, 1].max())


# ----------------------------------------------------------------------------- RDP


@no_deadline
@given(canonical_sketches(max_points=20), st.floats(0.0, 30.0))
def test_rdp_keeps_pen_structure_endpoints_and_stays_within_epsilon(s3, epsilon):
    simple = simplify_stroke3(s3, epsilon)
    assert stroke_count(simple) == stroke_count(s3)
    assert simple[-1, 2] == 1
    for before, after in zip(stroke3_to_polylines(s3), stroke3_to_polylines(simple), strict=True):
        np.testing.assert_allclose(after[0], before[0])
        np.testing.assert_allclose(after[-1], before[-1])
        assert is_subsequence(after, before)
        # The RDP guarantee: every original point lies within epsilon of the simplified line.
        segments = list(zip(after[:-1], after[1:], strict=True)) or [(after[0], after[0])]
        for p in before:
            assert min(distance_to_segment(p, a, b) for a, b in segments) <= epsilon + 1e-9


def test_rdp_removes_collinear_points():
    line = np.array([[0, 0], [1, 1], [2, 2], [3, 3], [10, 0]], dtype=np.float64)
    (simple,) = rdp_polylines([line], 0.5)
    np.testing.assert_array_equal(simple, [[0, 0], [3, 3], [10, 0]])


# ----------------------------------------------------------------------------- scale


@no_deadline
@given(st.lists(canonical_sketches(), min_size=1, max_size=4))
def test_scale_factor_is_std_of_pooled_offsets(sketches):
    pooled = np.concatenate([s[:, :2].astype(np.float64).ravel() for s in sketches])
    if pooled.std() == 0:
        with pytest.raises(SketchError, match="degenerate"):
            scale_factor(sketches)
        return
    # Written out as E[x^2] - E[x]^2 so it is not the same expression as the implementation.
    expected = np.sqrt(np.mean(pooled**2) - np.mean(pooled) ** 2)
    assert scale_factor(sketches) == pytest.approx(expected, rel=1e-6)
    normalised = normalize(sketches, scale_factor(sketches))
    assert scale_factor(normalised) == pytest.approx(1.0, rel=1e-4)


def test_scale_factor_pools_dx_and_dy_across_sketches():
    # dx alone, dy alone, or per-sketch std would each give a different answer.
    a = np.array([[2, 0, 1]], dtype=np.float32)
    b = np.array([[0, -2, 1]], dtype=np.float32)
    assert scale_factor([a, b]) == pytest.approx(np.std([2, 0, 0, -2]))


def test_scale_factor_of_nothing_is_an_error():
    with pytest.raises(SketchError, match="no sketches"):
        scale_factor([])


@no_deadline
@given(canonical_sketches(), st.floats(0.1, 100.0))
def test_normalize_divides_offsets_only_and_copies(s3, factor):
    original = s3.copy()
    (out,) = normalize([s3], factor)
    np.testing.assert_allclose(out[:, :2], s3[:, :2] / np.float32(factor), rtol=1e-6)
    np.testing.assert_array_equal(out[:, 2], s3[:, 2])
    np.testing.assert_array_equal(s3, original)


@no_deadline
@given(canonical_sketches(), st.floats(0.5, 80.0))
def test_clamp_offsets(s3, limit):
    out = clamp_offsets(s3, limit)
    assert np.abs(out[:, :2]).max() <= np.float32(limit)
    inside = np.abs(s3[:, :2]) <= limit
    np.testing.assert_array_equal(out[:, :2][inside], s3[:, :2][inside])
    np.testing.assert_array_equal(np.sign(out[:, :2]), np.sign(s3[:, :2]))
    np.testing.assert_array_equal(out[:, 2], s3[:, 2])


def test_max_length():
    assert max_length([np.zeros((3, 3)), np.zeros((7, 3))]) == 7
    assert max_length([]) == 0


# ----------------------------------------------------------------------------- augmentation


@no_deadline
@given(canonical_sketches(), seeds)
def test_random_scale_is_one_factor_per_axis_in_range(s3, seed):
    out = random_scale(s3, np.random.default_rng(seed))
    np.testing.assert_array_equal(out[:, 2], s3[:, 2])
    for axis in (0, 1):
        nonzero = s3[:, axis] != 0
        assert not out[~nonzero, axis].any()
        ratios = out[nonzero, axis] / s3[nonzero, axis]
        if len(ratios):
            assert 0.9 - 1e-6 <= ratios.min() and ratios.max() <= 1.1 + 1e-6
            np.testing.assert_allclose(ratios, ratios[0], rtol=1e-5)


def test_random_scale_draws_x_and_y_independently():
    s3 = np.array([[1, 1, 1]], dtype=np.float32)
    factors = np.array([random_scale(s3, np.random.default_rng(i))[0, :2] for i in range(50)])
    assert not np.allclose(factors[:, 0], factors[:, 1])


@no_deadline
@given(canonical_sketches(max_points=20), st.floats(0.0, 1.0), seeds)
def test_random_drop_points_keeps_strokes_and_kept_positions(s3, prob, seed):
    out = random_drop_points(s3, prob, np.random.default_rng(seed))
    assert stroke_count(out) == stroke_count(s3)
    before, after = absolute_points(s3), absolute_points(out)
    assert is_subsequence(after, before)
    # The first and the last point of every stroke survive.
    for line_before, line_after in zip(
        stroke3_to_polylines(s3), stroke3_to_polylines(out), strict=True
    ):
        np.testing.assert_array_equal(line_after[0], line_before[0])
        np.testing.assert_array_equal(line_after[-1], line_before[-1])


@no_deadline
@given(canonical_sketches(max_points=20), seeds)
def test_random_drop_points_extremes(s3, seed):
    np.testing.assert_array_equal(random_drop_points(s3, 0.0, np.random.default_rng(seed)), s3)
    all_dropped = random_drop_points(s3, 1.0, np.random.default_rng(seed))
    if len(s3) >= 3:
        # Only the first and last point of each stroke can remain.
        assert all(len(p) <= 2 for p in stroke3_to_polylines(all_dropped))


@no_deadline
@given(canonical_sketches(), seeds)
def test_augment_is_deterministic_and_identity_when_off(s3, seed):
    np.testing.assert_array_equal(
        augment(s3, np.random.default_rng(seed), scale_range=None, drop_prob=0.0), s3
    )
    a = augment(s3, np.random.default_rng(seed), drop_prob=0.3)
    b = augment(s3, np.random.default_rng(seed), drop_prob=0.3)
    np.testing.assert_array_equal(a, b)
    assert stroke_count(a) == stroke_count(s3)


# ----------------------------------------------------------------------------- validation


@settings(max_examples=30, deadline=None)
@given(canonical_sketches())
def test_validate_accepts_canonical_sketches(s3):
    np.testing.assert_array_equal(validate_stroke3(s3.astype(np.int16)), s3)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((4, 2)), r"shape \(n, 3\)"),
        (np.zeros((0, 3)), "empty"),
        (np.array([[0, np.nan, 1]]), "NaN"),
        (np.array([[0, 0, 2]]), "pen column"),
        (np.array([np.zeros((2, 3)), np.zeros((3, 3))], dtype=object), "object"),
    ],
)
def test_validate_rejects_bad_sketches_naming_where(array, message):
    with pytest.raises(SketchError, match=message) as info:
        validate_stroke3(array, where="cat.npz[3]")
    assert "cat.npz[3]" in str(info.value)


def test_split_polylines_keeps_every_point_and_joins_the_rest_to_the_prefix():
    from sketchrnn.strokes import split_polylines, stroke3_to_polylines

    s3 = np.array([[0, 0, 0], [1, 0, 0], [1, 0, 1], [0, 5, 0], [1, 0, 0], [1, 0, 1]], np.float32)
    lines = stroke3_to_polylines(s3)
    prefix, rest = split_polylines(lines, 2)  # inside the first stroke
    assert [len(x) for x in prefix] == [2] and [len(x) for x in rest] == [2, 3]
    np.testing.assert_array_equal(rest[0][0], prefix[-1][-1])  # the drawn line stays joined
    prefix, rest = split_polylines(lines, 3)  # at the pen lift: nothing shared
    assert [len(x) for x in prefix] == [3] and [len(x) for x in rest] == [3]
    assert split_polylines(lines, 0) == ([], lines)
    prefix, rest = split_polylines(lines, 99)
    assert len(prefix) == 2 and rest == []
    with pytest.raises(ValueError, match="n_points"):
        split_polylines(lines, -1)
