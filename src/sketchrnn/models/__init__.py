"""Models: sketch-rnn (VAE and decoder-only), SketchEmbedNet, and :func:`load_model` for any
saved one."""

from __future__ import annotations

import json
import os
from pathlib import Path

from sketchrnn.models.base import CONFIG_FILE, ModelFileError
from sketchrnn.models.sketch_embed_net import FORMAT_NAME as _SKETCH_EMBED_NET_FORMAT
from sketchrnn.models.sketch_embed_net import SketchEmbedNet, SketchEmbedNetConfig
from sketchrnn.models.sketch_rnn import SketchRNN, SketchRNNConfig, SketchRNNOutput

__all__ = [
    "SketchRNN",
    "SketchRNNConfig",
    "SketchRNNOutput",
    "SketchEmbedNet",
    "SketchEmbedNetConfig",
    "ModelFileError",
    "load_model",
]

_EXPECTED = (
    "a pretrained folder (config.json + model.safetensors), a training run folder or its "
    "checkpoint.pt, or a magenta.js .json model"
)


def load_model(path: str | os.PathLike, device: str = "cpu") -> SketchRNN | SketchEmbedNet:
    """A trained model from any place one is saved, in eval mode with ``scale_factor`` and
    ``classes`` set: a pretrained folder (``save_pretrained``), a run folder or its
    ``checkpoint.pt`` (``sketchrnn train``), or a magenta.js ``.json`` model. The saved
    config says which model it is (SketchRNN or SketchEmbedNet)."""
    p = Path(path)
    if not p.exists():
        raise ModelFileError(p, f"no such file or folder; expected {_EXPECTED}")
    if p.is_dir() and (p / CONFIG_FILE).exists():
        model_class = SketchEmbedNet if _is_sketch_embed_net(p / CONFIG_FILE) else SketchRNN
        model = model_class.from_pretrained(p)
    elif (p.is_dir() and (p / "checkpoint.pt").exists()) or p.suffix == ".pt":
        from sketchrnn.train import model_from_checkpoint

        model = model_from_checkpoint(p)
    elif p.is_file() and p.suffix.lower() == ".json":
        from sketchrnn.models.magenta import load_magenta_json

        model = load_magenta_json(p)
    else:
        raise ModelFileError(p, f"not a model: expected {_EXPECTED}")
    return model.to(device).eval()


def _is_sketch_embed_net(config_path: Path) -> bool:
    """Whether a pretrained folder's ``config.json`` names SketchEmbedNet's format (anything
    unreadable is left to ``SketchRNN.from_pretrained``, whose errors explain it)."""
    try:
        meta = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(meta, dict) and meta.get("format") == _SKETCH_EMBED_NET_FORMAT
