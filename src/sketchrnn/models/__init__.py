"""Models: sketch-rnn (VAE and decoder-only), and :func:`load_model` for any saved one."""

from __future__ import annotations

import os
from pathlib import Path

from sketchrnn.models.sketch_rnn import ModelFileError, SketchRNN, SketchRNNConfig, SketchRNNOutput

__all__ = ["SketchRNN", "SketchRNNConfig", "SketchRNNOutput", "ModelFileError", "load_model"]

_EXPECTED = (
    "a pretrained folder (config.json + model.safetensors), a training run folder or its "
    "checkpoint.pt, or a magenta.js .json model"
)


def load_model(path: str | os.PathLike, device: str = "cpu") -> SketchRNN:
    """A trained model from any place one is saved, in eval mode with ``scale_factor`` and
    ``classes`` set: a pretrained folder (``save_pretrained``), a run folder or its
    ``checkpoint.pt`` (``sketchrnn train``), or a magenta.js ``.json`` model."""
    p = Path(path)
    if not p.exists():
        raise ModelFileError(p, f"no such file or folder; expected {_EXPECTED}")
    if p.is_dir() and (p / "config.json").exists():
        model = SketchRNN.from_pretrained(p)
    elif (p.is_dir() and (p / "checkpoint.pt").exists()) or p.suffix == ".pt":
        from sketchrnn.train import model_from_checkpoint

        model = model_from_checkpoint(p)
    elif p.is_file() and p.suffix.lower() == ".json":
        from sketchrnn.io.magenta_json import load_magenta_json

        model = load_magenta_json(p)
    else:
        raise ModelFileError(p, f"not a model: expected {_EXPECTED}")
    return model.to(device).eval()
