import numpy as np
import pytest
from helpers import shared_file
from PIL import Image

from sketchrnn.io.png import write_png
from sketchrnn.io.raster import (
    fit_polylines,
    grid_shape,
    rasterize,
    rasterize_batch,
    rasterize_polylines,
    render_grid,
)
from sketchrnn.strokes import SketchError


def test_horizontal_line_lights_its_row_only():
    # y = 5.5 is the centre of pixel row 5; a 1-pixel line covers that row fully
    image = rasterize_polylines([np.array([[1.5, 5.5], [9.5, 5.5]])], 12, 12, line_width=1.0)
    assert image.dtype == np.float32 and image.shape == (12, 12)
    np.testing.assert_allclose(image[5, 2:10], 1.0)
    assert np.delete(image, 5, axis=0).max() == 0.0
    # the round end reaches half a pixel beyond the end points, not further
    assert image[5, 0] == 0.0 and image[5, 11] == 0.0


def test_anti_aliasing_gives_intermediate_values():
    # a line between two pixel rows shares its ink between them
    image = rasterize_polylines([np.array([[1.5, 6.0], [9.5, 6.0]])], 12, 12, line_width=1.0)
    np.testing.assert_allclose(image[5, 3:9], 0.5)
    np.testing.assert_allclose(image[6, 3:9], 0.5)
    diagonal = rasterize(np.array([[0, 0, 0], [30, 17, 1]], dtype=np.float32), size=32)
    assert ((diagonal > 0.05) & (diagonal < 0.95)).any()


def test_pen_up_move_is_not_drawn():
    # two vertical strokes at the left and right; the pen-up move between them crosses the
    # middle of the canvas, which must stay empty
    s3 = np.array(
        [[0, 0, 0], [0, 10, 1], [10, -10, 0], [0, 10, 1]],
        dtype=np.float32,
    )
    image = rasterize(s3, size=32, line_width=1.0, padding=0.1)
    assert image[:, 13:19].max() == 0.0
    assert image[:, :8].max() > 0.5 and image[:, 24:].max() > 0.5
    # the same drawing with the pen down all along does ink the middle
    joined = s3.copy()
    joined[1, 2] = 0
    assert rasterize(joined, size=32, line_width=1.0)[:, 13:19].max() > 0.5


def test_values_in_unit_range_and_fit_keeps_aspect():
    rng = np.random.default_rng(0)
    s3 = np.column_stack([rng.normal(0, 5, (40, 2)), rng.random(40) < 0.2]).astype(np.float32)
    image = rasterize(s3, size=48, line_width=3.0)
    assert image.min() >= 0.0 and image.max() <= 1.0 and image.max() == 1.0
    # a 2:1 wide box fills the width minus padding and is centred vertically
    (fitted,) = fit_polylines([np.array([[0.0, 0.0], [20.0, 10.0]])], 100, 100, padding=0.1)
    np.testing.assert_allclose(fitted, [[10, 30], [90, 70]])


def test_single_point_stroke_is_a_dot():
    # centred at (8, 8), the corner shared by four pixels, each 0.71 from the dot's centre
    image = rasterize(np.array([[3, 4, 1]], dtype=np.float32), size=16, line_width=2.0)
    np.testing.assert_allclose(image[7:9, 7:9], 1.5 - np.sqrt(0.5), rtol=1e-5)
    assert image.sum() < 6


def test_empty_or_invalid_sketch_is_an_error():
    with pytest.raises(SketchError, match="empty"):
        rasterize(np.zeros((0, 3), dtype=np.float32))
    with pytest.raises(SketchError, match="empty"):
        rasterize([])
    with pytest.raises(SketchError, match="NaN"):
        rasterize(np.array([[0, np.nan, 1]], dtype=np.float32))
    with pytest.raises(SketchError, match="sketch 1"):
        rasterize_batch([np.array([[1, 1, 1]]), np.zeros((0, 3))])


def test_polylines_and_stroke3_give_the_same_image():
    s3 = np.array([[1, 1, 0], [5, 0, 0], [0, 5, 1], [-3, -2, 0], [2, 2, 1]], dtype=np.float32)
    lines = [np.array([[1.0, 1.0], [6.0, 1.0], [6.0, 6.0]]), np.array([[3.0, 4.0], [5.0, 6.0]])]
    np.testing.assert_array_equal(rasterize(s3, size=40), rasterize(lines, size=40))


def test_batch_matches_single_images():
    sheep = np.load(shared_file("sketchrnn/aaron_sheep.npz"), allow_pickle=True, encoding="latin1")[
        "test"
    ][:5]
    batch = rasterize_batch(list(sheep), size=28)
    assert batch.shape == (5, 28, 28)
    for s, image in zip(sheep, batch, strict=True):
        np.testing.assert_array_equal(image, rasterize(s, size=28))


def test_render_grid_layout_and_stroke_colours():
    one = np.array([[0, 0, 0], [10, 0, 1]], dtype=np.float32)  # a horizontal stroke
    two = np.array([[0, 0, 0], [10, 0, 1], [0, 5, 0], [10, 0, 1]], dtype=np.float32)
    grey = render_grid([one, two, one], ncols=2, cell=20)
    assert grey.shape == (40, 40)
    assert grey[:20, :20].max() > 0.5 and grey[20:, 20:].max() == 0.0  # empty fourth cell
    rgb = render_grid([two], cell=20, colors=["#ff0000", "#0000ff"])
    assert rgb.shape == (20, 20, 3)
    rows_with_red = np.flatnonzero(((rgb[..., 0] > 0.9) & (rgb[..., 2] < 0.5)).any(axis=1))
    rows_with_blue = np.flatnonzero(((rgb[..., 2] > 0.9) & (rgb[..., 0] < 0.5)).any(axis=1))
    assert len(rows_with_red) and len(rows_with_blue)
    assert rows_with_red.max() < rows_with_blue.min()  # first stroke red, above the blue
    assert (rgb[0, 0] == 1.0).all()  # white background
    by_sketch = render_grid([one, two], cell=20, colors=["red", "blue"], color_by="sketch")
    first, second = by_sketch[:, :20], by_sketch[:, 20:]
    assert (first[..., 2] < 0.5).any() and not (first[..., 0] < 0.5).any()  # red only
    assert (second[..., 0] < 0.5).any() and not (second[..., 2] < 0.5).any()  # blue only
    with pytest.raises(ValueError, match="colour"):
        render_grid([one], colors=["no-such-colour"])


def test_render_grid_draws_a_completions_prefix_apart_from_the_rest(tmp_path):
    from sketchrnn.io.svg import write_svg

    # One horizontal stroke of 4 points, then a second stroke below: the first 2 points given.
    s3 = np.array([[0, 0, 0], [5, 0, 0], [5, 0, 1], [-10, 8, 0], [10, 0, 1]], dtype=np.float32)
    rgb = render_grid([s3], cell=40, colors=["blue", "red"], prefix_points=[2])
    blue = (rgb[..., 2] > 0.9) & (rgb[..., 0] < 0.5)
    red = (rgb[..., 0] > 0.9) & (rgb[..., 2] < 0.5)
    assert blue.any() and red.any()
    top = slice(0, np.flatnonzero(blue.any(axis=1)).max() + 1)  # the rows of the first line
    blue_cols = np.flatnonzero(blue[top].any(axis=0))
    red_cols = np.flatnonzero(red[top].any(axis=0))
    assert blue_cols.min() < red_cols.min()  # the given half of the top line is on the left
    assert blue_cols.max() < red_cols.max()
    assert np.flatnonzero(red.any(axis=1)).max() > np.flatnonzero(blue.any(axis=1)).max()
    write_svg(tmp_path / "c.svg", [s3, s3], colors=["blue", "red"], prefix_points=[2, 5])
    text = (tmp_path / "c.svg").read_text()
    assert text.count('stroke="blue"') == 1 + 2 and text.count('stroke="red"') == 2
    with pytest.raises(ValueError, match="2 counts for 1"):
        render_grid([s3], colors=["blue", "red"], prefix_points=[1, 2])
    with pytest.raises(ValueError, match="two colours"):
        render_grid([s3], prefix_points=[1])


def test_grid_shape():
    assert grid_shape(1) == (1, 1)
    assert grid_shape(10) == (3, 4)
    assert grid_shape(10, ncols=5) == (2, 5)
    assert grid_shape(3, ncols=8) == (1, 3)


def test_write_png_sketch_grid_and_image(tmp_path):
    s3 = np.array([[0, 0, 0], [10, 0, 1]], dtype=np.float32)
    write_png(tmp_path / "one.png", s3, cell=32)
    with Image.open(tmp_path / "one.png") as im:
        assert im.size == (32, 32) and im.mode == "L"
        pixels = np.asarray(im)
    assert pixels.min() == 0 and pixels.max() == 255  # black ink on white
    write_png(tmp_path / "grid.png", [s3, s3, s3], ncols=3, cell=16, colors=["red"])
    with Image.open(tmp_path / "grid.png") as im:
        assert im.size == (48, 16) and im.mode == "RGB"
    ink = np.zeros((5, 7), dtype=np.float32)
    ink[2, 3] = 1.0
    write_png(tmp_path / "image.png", ink)
    with Image.open(tmp_path / "image.png") as im:
        pixels = np.asarray(im)
    assert pixels.shape == (5, 7) and pixels[2, 3] == 0 and pixels[0, 0] == 255


def test_write_png_failure_leaves_no_file(tmp_path):
    with pytest.raises(SketchError):
        write_png(tmp_path / "bad.png", [np.array([[np.inf, 0, 1]])])
    with pytest.raises(ValueError):
        write_png(tmp_path / "bad.png", np.full((4, 4), np.nan))
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- Quick, Draw! bitmaps


def test_quickdraw_bitmap_recipe_geometry():
    """A line across the 0..255 box: centred, a 24-unit margin each side on a 304-unit canvas
    (1.47 px wide at 28 px), so the outer columns stay blank and the line is one row."""
    from sketchrnn.io.raster import QUICKDRAW_BITMAP, rasterize_quickdraw

    line = [np.array([[0.0, 128.0], [255.0, 128.0]])]
    image = rasterize_quickdraw([line])[0]
    assert image.shape == (28, 28) and image.dtype == np.float32
    assert 0 <= image.min() and image.max() <= 1
    cols = image.sum(axis=0)
    assert cols[0] == 0 and cols[-1] == 0 and (cols[2:26] > 0.5).all()
    rows = image.sum(axis=1)
    assert rows.argmax() in (13, 14) and rows[:12].sum() == 0 and rows[16:].sum() == 0
    # Ink per unit length: a line 16 of 304 units wide covers 28 * 16 / 304 = 1.47 px.
    assert image[:, 5:23].sum(axis=0).mean() == pytest.approx(28 * 16 / 304, rel=0.05)
    assert QUICKDRAW_BITMAP.canvas == 304


def test_quickdraw_bitmap_ignores_units_and_position():
    from sketchrnn.io.raster import rasterize_quickdraw

    rng = np.random.default_rng(0)
    points = rng.uniform(0, 255, (12, 2))
    points -= points.min(axis=0)
    points *= 255 / points.max()
    moved = points * 3.7 + np.array([-500.0, 40.0])
    a, b = rasterize_quickdraw([[points[:6], points[6:]], [moved[:6], moved[6:]]])
    assert np.abs(a - b).max() < 1e-4
    # the smaller side is centred: a tall thin drawing sits in the middle columns
    tall = rasterize_quickdraw([[np.array([[0.0, 0.0], [0.0, 255.0]])]])[0]
    assert tall.sum(axis=0).argmax() in (13, 14)


def test_quickdraw_bitmap_bad_drawings():
    from sketchrnn.io.raster import rasterize_quickdraw
    from sketchrnn.strokes import SketchError

    empty = np.zeros((0, 3), np.float32)
    assert rasterize_quickdraw([empty], allow_empty=True).sum() == 0
    with pytest.raises(SketchError):
        rasterize_quickdraw([empty])
    with pytest.raises(SketchError, match="too large"):
        rasterize_quickdraw([[np.array([[-1e308, 0.0], [1e308, 5.0]])]])
    with pytest.raises(SketchError, match="NaN"):
        rasterize_quickdraw([np.array([[0, np.nan, 0], [1, 1, 1]], np.float32)])
