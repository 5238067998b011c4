"""The package's front door: the README quickstart names, and readers that stay torch-free."""

import subprocess
import sys

import sketchrnn


def test_quickstart_names_resolve():
    for name in ("SketchRNN", "SketchRNNConfig", "Trainer", "TrainConfig", "load_datasets"):
        assert callable(getattr(sketchrnn, name))
    assert hasattr(sketchrnn.generate, "sample")


def test_readers_do_not_import_torch():
    code = (
        "import sys, sketchrnn, sketchrnn.strokes, sketchrnn.io.formats, sketchrnn.io.npz, "
        "sketchrnn.io.quickdraw, sketchrnn.io.svg, sketchrnn.io.png, sketchrnn.io.raster; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
