import re

import numpy as np
import pytest
from helpers import shared_file

from sketchrnn.io.files import SketchFileError
from sketchrnn.io.svg import read_svg, read_svg_set, write_svg
from sketchrnn.strokes import SketchError, stroke3_to_polylines


def _normalised(polylines):
    """Polylines moved to start at the origin corner and scaled to a unit largest side."""
    xy = np.concatenate(polylines)
    lo, extent = xy.min(axis=0), (xy.max(axis=0) - xy.min(axis=0)).max()
    return [(p - lo) / extent for p in polylines]


def _svg(tmp_path, body, name="drawing.svg"):
    path = tmp_path / name
    path.write_text(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="200" height="200">{body}</svg>'
    )
    return path


def test_round_trip_of_a_real_sketch(tmp_path):
    sheep = np.load(shared_file("sketchrnn/aaron_sheep.npz"), allow_pickle=True, encoding="latin1")[
        "train"
    ][3]
    write_svg(tmp_path / "sheep.svg", sheep, cell_size=300)
    back = read_svg(tmp_path / "sheep.svg", epsilon=0)
    want = _normalised(stroke3_to_polylines(sheep))
    got = _normalised(stroke3_to_polylines(back))
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, atol=1e-4)


def test_grid_colours_and_canvas(tmp_path):
    a = np.array([[0, 0, 0], [10, 0, 1], [0, 10, 0], [10, 0, 1]], dtype=np.float32)
    b = np.array([[0, 0, 0], [0, 10, 1]], dtype=np.float32)
    write_svg(tmp_path / "grid.svg", [a, b, a], ncols=2, cell_size=50, colors=["red", "blue"])
    text = (tmp_path / "grid.svg").read_text()
    assert 'width="100" height="100"' in text
    # colours follow stroke order within each sketch
    assert re.findall(r'stroke="(\w+)"', text) == ["red", "blue", "red", "red", "blue"]
    drawn = stroke3_to_polylines(read_svg(tmp_path / "grid.svg", epsilon=0))
    assert len(drawn) == 5
    # every sketch stays inside its own cell: sketch b (one stroke) is in the top right cell
    assert (drawn[2][:, 0] > 50).all() and (drawn[2][:, 1] < 50).all()
    assert (drawn[3][:, 1] > 50).all() and (drawn[3][:, 0] < 50).all()

    write_svg(
        tmp_path / "wide.svg",
        [a, b],
        canvas_size=(400, 100),
        colors=["green", "black"],
        color_by="sketch",
    )
    text = (tmp_path / "wide.svg").read_text()
    assert 'width="400" height="100"' in text
    assert re.findall(r'stroke="(\w+)"', text) == ["green", "green", "black"]
    xy = np.concatenate(stroke3_to_polylines(read_svg(tmp_path / "wide.svg", epsilon=0)))
    assert xy.min() >= 0 and xy[:, 0].max() <= 400 and xy[:, 1].max() <= 100


def test_reads_all_elements_in_document_order_with_transforms(tmp_path):
    path = _svg(
        tmp_path,
        '<g transform="translate(100,0)"><line x1="0" y1="10" x2="50" y2="10"/></g>'
        '<rect x="0" y="50" width="20" height="10"/>'
        '<polyline points="0,100 10,110 20,100"/>'
        '<path d="M0,150 L10,150 M30,150 A10 10 0 0 1 50 150 C60,140 70,160 80,150"/>'
        '<circle cx="150" cy="150" r="10" transform="scale(1,2)"/>'
        "<text>ignored</text>",
    )
    lines = stroke3_to_polylines(read_svg(path, epsilon=0.1))
    assert len(lines) == 6
    line, rect, polyline, straight, curve, circle = lines
    np.testing.assert_allclose(line, [[100, 10], [150, 10]], atol=1e-5)
    assert len(rect) == 5 and np.allclose(rect[0], rect[-1])  # closed outline
    np.testing.assert_allclose(polyline, [[0, 100], [10, 110], [20, 100]], atol=1e-5)
    np.testing.assert_allclose(straight, [[0, 150], [10, 150]], atol=1e-5)
    # the arc bulges to y = 140 between x = 30 and 50; sampled, then simplified
    assert 5 < len(curve) < 100
    assert curve[:, 1].min() == pytest.approx(140, abs=0.2)
    np.testing.assert_allclose(curve[-1], [80, 150], atol=1e-5)
    # scale(1, 2) turns the circle into an ellipse 20 wide and 40 tall
    assert np.ptp(circle[:, 0]) == pytest.approx(20, abs=0.3)
    assert np.ptp(circle[:, 1]) == pytest.approx(40, abs=0.3)


def test_epsilon_simplifies_curves(tmp_path):
    path = _svg(tmp_path, '<path d="M0,0 C0,100 100,100 100,0"/>')
    dense = read_svg(path, epsilon=0, samples_per_unit=2)
    coarse = read_svg(path, epsilon=2.0, samples_per_unit=2)
    assert len(dense) > 200 and 3 < len(coarse) < 20


def test_read_svg_set_labels_from_folders(tmp_path):
    (tmp_path / "cat").mkdir()
    (tmp_path / "dog").mkdir()
    _svg(tmp_path / "cat", '<line x1="0" y1="0" x2="5" y2="5"/>', "1.svg")
    _svg(tmp_path / "dog", '<line x1="0" y1="0" x2="5" y2="0"/>', "1.svg")
    _svg(tmp_path, '<line x1="0" y1="0" x2="0" y2="5"/>', "top.svg")
    sketches = read_svg_set(tmp_path)
    assert sketches.labels == ["cat", "dog", ""]
    assert len(read_svg_set(tmp_path / "top.svg")) == 1


def test_errors_name_the_file(tmp_path):
    with pytest.raises(SketchFileError, match="missing.svg: no such file"):
        read_svg(tmp_path / "missing.svg")
    bad = tmp_path / "bad.svg"
    bad.write_text("this is not xml <")
    with pytest.raises(SketchFileError, match="bad.svg: not an XML"):
        read_svg(bad)
    with pytest.raises(SketchFileError, match="empty.svg: SVG has no drawable paths"):
        read_svg(_svg(tmp_path, "<text>words only</text>", "empty.svg"))
    with pytest.raises(SketchFileError, match="broken.svg: cannot read"):
        read_svg(_svg(tmp_path, '<path d="M 0 0 L 10 Q"/>', "broken.svg"))
    (tmp_path / "no_svgs").mkdir()
    with pytest.raises(SketchFileError, match="no_svgs: folder holds no .svg files"):
        read_svg_set(tmp_path / "no_svgs")


def test_failed_write_leaves_no_file(tmp_path):
    good = np.array([[0, 0, 0], [1, 1, 1]], dtype=np.float32)
    with pytest.raises(SketchError, match="sketch 1: contains NaN"):
        write_svg(tmp_path / "out.svg", [good, np.array([[np.nan, 0, 1]])])
    assert list(tmp_path.iterdir()) == []


def test_hostile_sizes_are_bounded_or_refused(tmp_path):
    # an arc a billion units long is sampled with a capped number of points
    huge_arc = _svg(tmp_path, '<path d="M0,0 A1e9 1e9 0 0 1 1e9 1e9"/>', "arc.svg")
    assert len(read_svg(huge_arc, epsilon=0)) <= 10_001
    too_far = _svg(tmp_path, '<line x1="0" y1="0" x2="1e300" y2="0"/>', "far.svg")
    with pytest.raises(SketchFileError, match="far.svg: coordinates too large"):
        read_svg(too_far)


def test_grid_leaves_the_cell_of_an_empty_sketch_blank(tmp_path):
    from sketchrnn.io.png import write_png

    line = np.array([[0, 0, 0], [10, 0, 1]], dtype=np.float32)
    empty = np.zeros((0, 3), dtype=np.float32)
    write_svg(tmp_path / "g.svg", [line, empty, line])
    assert (tmp_path / "g.svg").read_text().count("<path") == 2
    write_png(tmp_path / "g.png", [line, empty, line], ncols=3, cell=32)
    assert (tmp_path / "g.png").exists()
