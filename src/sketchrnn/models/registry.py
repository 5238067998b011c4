"""Every model class by its name: what ``config.json``'s ``format`` and a checkpoint's
``model_class`` refer to (:func:`sketchrnn.models.load_model`,
:mod:`sketchrnn.models.checkpoint`)."""

from __future__ import annotations

from sketchrnn.models.conv_vae import ConvVAE
from sketchrnn.models.interface import SketchModel
from sketchrnn.models.sketch_embed_net import SketchEmbedNet
from sketchrnn.models.sketch_rnn import SketchRNN

__all__ = ["MODEL_CLASSES", "model_class_for_format"]

MODEL_CLASSES: dict[str, type[SketchModel]] = {
    cls.__name__: cls for cls in (SketchRNN, SketchEmbedNet, ConvVAE)
}


def model_class_for_format(format_name: str | None) -> type[SketchModel] | None:
    """The class whose pretrained ``format`` is ``format_name`` (``"sketchrnn.SketchRNN"``
    ...), or ``None``."""
    for cls in MODEL_CLASSES.values():
        if cls.format_name() == format_name:
            return cls
    return None
