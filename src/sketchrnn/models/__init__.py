"""Models: one interface (:class:`SketchModel`), sketch-rnn (VAE and decoder-only),
SketchEmbedNet, the Conv-VAE baseline, their registry by class name, and :func:`load_model`
for any saved one."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from sketchrnn.models import zoo
from sketchrnn.models.checkpoint import CHECKPOINT_NAME, model_from_checkpoint
from sketchrnn.models.conv_vae import ConvVAE, ConvVAEConfig
from sketchrnn.models.interface import SketchModel
from sketchrnn.models.magenta import load_magenta_json
from sketchrnn.models.pretrained import CONFIG_FILE, ModelFileError, read_format
from sketchrnn.models.registry import MODEL_CLASSES, model_class_for_format
from sketchrnn.models.sketch_embed_net import SketchEmbedNet, SketchEmbedNetConfig
from sketchrnn.models.sketch_rnn import SketchRNN, SketchRNNConfig, SketchRNNOutput

__all__ = [
    "SketchModel",
    "SketchRNN",
    "SketchRNNConfig",
    "SketchRNNOutput",
    "SketchEmbedNet",
    "SketchEmbedNetConfig",
    "ConvVAE",
    "ConvVAEConfig",
    "MODEL_CLASSES",
    "ModelFileError",
    "load_model",
    "is_magenta_json_model",
]

_EXPECTED = (
    "a pretrained folder (config.json + model.safetensors), a training run folder or its "
    "checkpoint.pt, or a magenta.js .json model"
)


def is_magenta_json_model(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a magenta.js ``.json`` model (as :func:`load_model` sees it): a
    ``.json`` file, or the name of an official model (``cat``, ``cat.vae``; not a built-in
    one), cached or not."""
    p = Path(path)
    if not p.exists() and zoo.looks_like_model_name(os.fspath(path)):
        if os.fspath(path) in zoo.BUILTIN_MODELS:
            return False
        try:
            zoo.parse_model_name(os.fspath(path))
        except zoo.ModelNameError:
            return False
        return True
    return p.is_file() and p.suffix.lower() == ".json"


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> SketchModel:
    """A trained model from any place one is saved, in eval mode, its units (``scale_factor``,
    ``classes``) in its config: a pretrained folder (``save_pretrained``), a run folder or its
    ``checkpoint.pt`` (``sketchrnn train``), or a magenta.js ``.json`` model. The saved format
    says which model it is (any of :data:`MODEL_CLASSES`). Where no such path exists, a model
    name: a built-in model or one of the official collection (``cat``, ``cat.gen``,
    ``cat.vae``; downloaded on first use, :func:`sketchrnn.models.zoo.resolve_model`)."""
    p = Path(path)
    if not p.exists() and zoo.looks_like_model_name(os.fspath(path)):
        # A model name: a built-in model or one of the official collection (downloaded on
        # first use), see sketchrnn.models.zoo.
        try:
            p = zoo.resolve_model(os.fspath(path))
        except zoo.ModelNameError as e:
            raise ModelFileError(p, f"no such file or folder, and {e}") from None
    if not p.exists():
        raise ModelFileError(p, f"no such file or folder; expected {_EXPECTED}")
    model: SketchModel
    if p.is_dir() and (p / CONFIG_FILE).exists():
        fmt = read_format(p)
        # Anything unreadable or foreign is left to SketchRNN.from_pretrained to explain.
        model = (model_class_for_format(fmt) or SketchRNN).from_pretrained(p)
    elif (p.is_dir() and (p / CHECKPOINT_NAME).exists()) or p.suffix == ".pt":
        model = model_from_checkpoint(p)
    elif is_magenta_json_model(p):
        model = load_magenta_json(p)
    else:
        raise ModelFileError(p, f"not a model: expected {_EXPECTED}")
    return model.to(device).eval()
