"""``run_demo`` with a tiny budget writes valid PNG and SVG grids and a loadable model."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from PIL import Image

from sketchrnn.demo import run_demo
from sketchrnn.models.sketch_rnn import SketchRNN

pytestmark = pytest.mark.slow  # see pyproject: `make test` skips these


def test_tiny_demo_writes_png_svg_and_model(tmp_path):
    paths = run_demo(tmp_path / "demo", seconds=2, n_per_class=20, max_steps=3, progress=False)
    for key in ("samples_png", "reconstructions_png"):
        with Image.open(paths[key]) as image:
            image.verify()  # a complete, well-formed PNG
        with Image.open(paths[key]) as image:
            assert image.format == "PNG" and min(image.size) >= 64
    for key in ("samples_svg", "reconstructions_svg"):
        root = ET.parse(paths[key]).getroot()
        assert root.tag.endswith("svg")
        drawn = [e for e in root.iter() if e.tag.split("}")[-1] in ("path", "polyline", "line")]
        assert drawn, f"{paths[key]} draws nothing"
    model = SketchRNN.from_pretrained(paths["model"])
    assert model.config.conditional and model.scale_factor > 0
    assert len(model.classes) == 6
    assert paths["log"].read_text().startswith("step,split,")
    assert not list((tmp_path / "demo").rglob("*.part"))
