"""``run_demo`` draws with the built-in models at once, or trains a tiny model first, and
writes valid PNG and SVG grids: completions with the given prefix apart from the model's
strokes, reconstructions beside their inputs."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from sketchrnn.cli import main
from sketchrnn.demo import COMPLETION_ENDINGS, COMPLETION_ROWS, run_demo
from sketchrnn.models.sketch_rnn import SketchRNN

PICTURES = ("samples", "reconstructions", "completions")


def _check_pictures(paths):
    for name in PICTURES:
        with Image.open(paths[f"{name}_png"]) as image:
            image.verify()  # a complete, well-formed PNG
        with Image.open(paths[f"{name}_png"]) as image:
            assert image.format == "PNG" and min(image.size) >= 64
        root = ET.parse(paths[f"{name}_svg"]).getroot()
        assert root.tag.endswith("svg")
        drawn = [e for e in root.iter() if e.tag.split("}")[-1] == "path"]
        assert drawn, f"{paths[f'{name}_svg']} draws nothing"


def _ink(png, cell_row: int, cell_col: int, cell: int = 128):
    """(black pixels, red pixels) in one grid cell of an RGB PNG."""
    with Image.open(png) as image:
        rgb = np.asarray(image.convert("RGB"), dtype=np.int32)
    part = rgb[cell_row * cell : (cell_row + 1) * cell, cell_col * cell : (cell_col + 1) * cell]
    r, g, b = part[..., 0], part[..., 1], part[..., 2]
    black = (r < 100) & (g < 100) & (b < 100)
    red = (r > 150) & (g < 100) & (b < 100)
    return int(black.sum()), int(red.sum())


def test_demo_draws_with_the_built_in_models_without_training(tmp_path):
    paths = run_demo(tmp_path / "demo", progress=False)
    _check_pictures(paths)
    assert "model" not in paths and not (tmp_path / "demo" / "train").exists()
    png = paths["completions_png"]
    with Image.open(png) as image:
        assert image.size == (128 * (1 + COMPLETION_ENDINGS), 128 * COMPLETION_ROWS)
    for row in range(COMPLETION_ROWS):
        black, red = _ink(png, row, 0)
        assert black > 0 and red == 0, "the prefix alone is drawn in the given colour only"
        for col in range(1, 1 + COMPLETION_ENDINGS):
            black, red = _ink(png, row, col)
            assert black > 0, f"row {row} ending {col}: the given prefix is not drawn"
            assert red > 0, f"row {row} ending {col}: the model's strokes are not drawn apart"
    # Reconstructions: input (black) then the model's (red), side by side.
    rec = paths["reconstructions_png"]
    assert _ink(rec, 0, 0)[1] == 0 and _ink(rec, 0, 0)[0] > 0
    assert _ink(rec, 0, 1)[0] == 0 and _ink(rec, 0, 1)[1] > 0
    assert not list((tmp_path / "demo").rglob("*.part"))


def test_demo_command_refuses_a_time_budget_that_is_not_positive(tmp_path, capsys):
    for bad in ("-1", "0", "nan"):
        with pytest.raises(SystemExit) as stop:
            main(["demo", "--train", "--seconds", bad, "--out", str(tmp_path / "d")])
        assert stop.value.code == 2
        assert "--seconds" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


@pytest.mark.slow  # see pyproject: `make test` skips these
def test_tiny_trained_demo_writes_png_svg_and_model(tmp_path):
    paths = run_demo(
        tmp_path / "demo", train=True, seconds=2, n_per_class=20, max_steps=3, progress=False
    )
    _check_pictures(paths)
    model = SketchRNN.from_pretrained(paths["model"])
    assert model.config.conditional and model.scale_factor > 0
    assert len(model.classes) == 6
    assert paths["log"].read_text().startswith("step,split,")
    assert not list((tmp_path / "demo").rglob("*.part"))
