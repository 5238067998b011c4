"""sketchrnn: generative models of vector sketches (sketch-rnn, SketchEmbedNet).

The names below are loaded on first use, so that ``import sketchrnn.io.npz`` (or any other
reader) does not import torch.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

__version__ = "0.1.0"

# OpenMP threads that wait for each other by spinning stall on a busy machine (a training step
# 10-30x slower on 2 threads beside other work; sketchrnn.cpu_threads, docs/performance.md):
# let them sleep instead, unless the user chose how they wait. libgomp reads this once, when
# torch loads it, so it only takes effect where sketchrnn is imported first (the CLI always);
# elsewhere the Trainer lowers the thread count to the free cores (cpu_threads.ThreadGovernor).
_WAIT_SETTINGS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
if "torch" not in sys.modules and not any(name in os.environ for name in _WAIT_SETTINGS):
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

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
    "TrainConfig": "sketchrnn.train_config",
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
