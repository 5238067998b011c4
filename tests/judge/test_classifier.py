"""The judge on real drawings (DoodleNet from ../shared/data/doodlenet) and on drawings it
cannot read."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import SHARED_DATA, shared_file

from sketchrnn.io.formats import read_sketches
from sketchrnn.io.raster import QUICKDRAW_BITMAP, BitmapRecipe
from sketchrnn.judge import JudgeInputError, load_judge


@pytest.fixture(scope="module")
def judge():
    return load_judge(shared_file("doodlenet"))


def simplified(per_class: int | None) -> tuple[list[np.ndarray], list[str]]:
    folder = SHARED_DATA / "quickdraw" / "simplified"
    files = sorted(folder.glob("*.ndjson"))
    if len(files) < 344:
        pytest.skip(f"the 344 simplified Quick, Draw! files are not in {folder}")
    sketches, labels = [], []
    for path in files:
        found = read_sketches(path)
        sketches += found.strokes[:per_class]
        labels += found.labels[:per_class]
    return sketches, labels


def top5_accuracy(judge, sketches, labels, recipe=QUICKDRAW_BITMAP) -> tuple[float, float]:
    judge.recipe = recipe
    try:
        top = judge.judge(sketches).top(5)
    finally:
        judge.recipe = QUICKDRAW_BITMAP
    target = np.array([judge.class_index(name) for name in labels])
    return float((top[:, 0] == target).mean()), float((top == target[:, None]).any(axis=1).mean())


def test_recipe_on_one_drawing_a_class(judge):
    """The first drawing of each of the 344 classes (measured 92.4% top-5; the full check is
    the slow test below). Thin lines with a small margin fall to 7%."""
    sketches, labels = simplified(1)
    top1, top5 = top5_accuracy(judge, sketches, labels)
    assert top5 >= 0.86 and top1 >= 0.6, (top1, top5)
    thin = BitmapRecipe(line_width=6.0, margin=4.0)
    assert top5_accuracy(judge, sketches, labels, thin)[1] < top5 - 0.1


@pytest.mark.slow
def test_top5_over_the_344_classes(judge):
    """The issue's check of the renderer: >= 88% top-5 on every simplified drawing here
    (8,600 drawings; measured 90.0% top-5, 69.9% top-1)."""
    sketches, labels = simplified(None)
    top1, top5 = top5_accuracy(judge, sketches, labels)
    assert top5 >= 0.88, (top1, top5)


def test_class_names(judge):
    assert len(judge.classes) == 345
    assert judge.classes[judge.class_index("the_eiffel_tower")] == "The Eiffel Tower"
    assert judge.class_index("Roller Coaster") == judge.class_index("roller_coaster")
    assert judge.find_class("antyoga") is None
    with pytest.raises(ValueError, match="did you mean 'cat'"):
        judge.class_index("cta")


def test_verdict_shapes(judge):
    sketches = read_sketches(shared_file("quickdraw/simplified/cat.ndjson")).strokes[:3]
    verdict = judge.judge(sketches)
    assert verdict.log_probs.shape == (3, 345) and verdict.features.shape == (3, 512)
    assert np.allclose(verdict.probs.sum(axis=1), 1, atol=1e-4)
    assert (verdict.confidence() <= 1).all() and verdict.top(5).shape == (3, 5)
    assert np.abs(verdict.features).max() <= 1  # tanh features
    empty = judge.judge([])
    assert empty.log_probs.shape == (0, 345)


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((0, 3), np.float32), "empty drawing"),
        (np.array([[0, np.nan, 0], [1, 2, 1]], np.float32), "NaN or infinite"),
        (np.zeros((4, 2), np.float32), "expected a stroke-3"),
        ([np.array([[-1e308, 0.0], [1e308, 1.0]])], "too large to draw"),
        ([np.zeros((3, 3))], "polyline 0 must have shape"),
    ],
)
def test_drawings_the_judge_cannot_read(judge, bad, message):
    good = read_sketches(shared_file("quickdraw/simplified/cat.ndjson")).strokes[:2]
    with pytest.raises(JudgeInputError, match=f"^cats.ndjson: drawing 2: .*{message}") as err:
        judge.judge([*good, bad], source="cats.ndjson")
    assert "\n" not in str(err.value)


def test_error_numbers_the_drawing_across_batches(judge):
    good = np.array([[0, 0, 0], [10, 5, 1]], np.float32)
    drawings = [good] * 300 + [np.zeros((0, 3), np.float32)]
    with pytest.raises(JudgeInputError, match="drawing 300: "):
        judge.judge(drawings)
    verdict = judge.judge(drawings, allow_empty=True)  # generated: an empty sample is blank
    assert len(verdict) == 301
