"""sketchrnn: generative models of vector sketches (sketch-rnn, SketchEmbedNet).

The names below are loaded on first use, so that ``import sketchrnn.io.npz`` (or any other
reader) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "SketchModel": "sketchrnn.models.interface",
    "SketchRNN": "sketchrnn.models.sketch_rnn",
    "SketchRNNConfig": "sketchrnn.models.sketch_rnn",
    "SketchEmbedNet": "sketchrnn.models.sketch_embed_net",
    "SketchEmbedNetConfig": "sketchrnn.models.sketch_embed_net",
    "ConvVAE": "sketchrnn.models.conv_vae",
    "ConvVAEConfig": "sketchrnn.models.conv_vae",
    "load_model": "sketchrnn.models",
    "Trainer": "sketchrnn.train",
    "TrainConfig": "sketchrnn.train",
    "load_datasets": "sketchrnn.data",
    "read_sketches": "sketchrnn.io.formats",
    "write_sketches": "sketchrnn.io.formats",
    "generate": None,
    "strokes": None,
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'sketchrnn' has no attribute {name!r}")
    module = _LAZY[name]
    if module is None:
        return importlib.import_module(f"sketchrnn.{name}")
    return getattr(importlib.import_module(module), name)
