"""The drawing commands' ``--input-scale``: bringing a user's sketch to the model's size."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from helpers import shared_file

from sketchrnn import strokes
from sketchrnn.cli import main
from sketchrnn.cli.draw import scaled_inputs
from sketchrnn.generate import input_scale_factor, load_model, typical_extent


def _longer_side(s3: np.ndarray) -> float:
    lo_x, hi_x, lo_y, hi_y = strokes.bounds(s3)
    return max(hi_x - lo_x, hi_y - lo_y)


@pytest.fixture
def prefix_file(tmp_path):
    """Half a drawing in the simplified ndjson's 0-255 box (a square's first two sides)."""
    path = tmp_path / "prefix.ndjson"
    record = {"word": "sheep", "drawing": [[[20, 220, 220], [20, 20, 220]]]}
    path.write_text(json.dumps(record) + "\n")
    return path


def _args(model_path, scale: str) -> argparse.Namespace:
    return argparse.Namespace(model=str(model_path), input_scale=scale)


def test_input_scale_values(tmp_path):
    magenta = shared_file("magenta_models/sheep.gen.json")
    model = load_model(magenta)
    assert input_scale_factor(model, "none", magenta) == 1.0
    assert input_scale_factor(model, "2.5", magenta) == 2.5
    assert input_scale_factor(model, "auto", magenta) is None  # fit each sketch
    assert input_scale_factor(model, "auto", tmp_path) == 1.0  # a model trained here: as it is
    for bad in ("big", "0", "-1", "inf", "nan"):
        with pytest.raises(Exception, match="input_scale must be"):
            input_scale_factor(model, bad, magenta)


def test_auto_brings_the_input_to_the_models_typical_size(prefix_file):
    magenta = shared_file("magenta_models/sheep.gen.json")
    model = load_model(magenta)
    (as_is,) = scaled_inputs(_args(magenta, "none"), model, str(prefix_file))
    (doubled,) = scaled_inputs(_args(magenta, "2"), model, str(prefix_file))
    (fitted,) = scaled_inputs(_args(magenta, "auto"), model, str(prefix_file))
    assert _longer_side(as_is) == 200
    np.testing.assert_allclose(doubled[:, :2], 2 * as_is[:, :2])
    np.testing.assert_array_equal(doubled[:, 2], as_is[:, 2])
    typical = typical_extent(model)
    # The sheep model draws about 12.6x its scale factor (63 px) wide: 4x this prefix.
    assert 8 * model.scale_factor < typical < 18 * model.scale_factor
    assert _longer_side(fitted) == pytest.approx(typical, rel=1e-5)


@pytest.mark.parametrize("scale", ["auto", "none", "3"])
def test_complete_on_a_magenta_model_with_a_simplified_prefix(tmp_path, prefix_file, scale):
    magenta = shared_file("magenta_models/sheep.gen.json")
    out = tmp_path / "done.svg"
    argv = ["complete", str(magenta), "--input", f"{prefix_file}:0", "--n", "2"]
    assert main([*argv, "--seed", "0", "--input-scale", scale, "--out", str(out)]) == 0
    assert out.stat().st_size > 0


def test_bad_input_scale_is_one_line_and_writes_nothing(tmp_path, prefix_file, capsys):
    magenta = shared_file("magenta_models/sheep.gen.json")
    out = tmp_path / "never.png"
    argv = ["complete", str(magenta), "--input", str(prefix_file), "--out", str(out)]
    with pytest.raises(SystemExit) as stop:  # refused as it is parsed
        main([*argv, "--input-scale", "huge"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--input-scale: must be auto, none or a number in" in err[0]
    assert not out.exists()


@pytest.mark.parametrize("command", ["reconstruct", "interpolate", "analogy"])
def test_every_drawing_command_takes_input_scale(command):
    from sketchrnn.cli import build_parser

    sketch = {"reconstruct": ["--input", "x"], "interpolate": ["--a", "x", "--b", "y"]}
    extra = sketch.get(command, ["--a", "x", "--minus", "y", "--plus", "z"])
    args = build_parser().parse_args([command, "m", "--out", "o.png", *extra, "--input-scale", "2"])
    assert args.input_scale == "2"


def test_complete_draws_the_given_prefix_apart_from_the_models_strokes(tmp_path, capsys):
    """``--color prefix`` (the default): the prefix alone, then each ending, the given part in
    black and the model's strokes in red (the paper's completion figure)."""
    from sketchrnn.io.svg import write_svg_drawing

    half = np.array([[0, 0, 0], [10, 0, 0], [10, 5, 0], [5, 10, 0]], np.float32) * 3
    write_svg_drawing(tmp_path / "half.svg", half)
    out = tmp_path / "endings.svg"
    argv = ["complete", "shapes_gen", "--input", str(tmp_path / "half.svg"), "--n", "3"]
    assert main([*argv, "--seed", "0", "--temperature", "0.3", "--out", str(out)]) == 0
    text = out.read_text()
    assert text.count('stroke="black"') >= 4  # the prefix in each of the 4 cells
    assert text.count('stroke="red"') >= 3  # each ending drawn apart (it started mid-stroke)
    assert main([*argv, "--color", "none", "--seed", "0", "--out", str(out)]) == 0
    assert 'stroke="red"' not in out.read_text()
