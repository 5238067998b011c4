"""What a loaded model can do on the page, read from the model interface
(:class:`sketchrnn.models.interface.SketchModel`: ``has_encoder``, ``draws_strokes``,
``reads_images``, ``num_classes``, ``classes``; the scale factor through
:func:`sketchrnn.models.units.model_scale_factor`, which refuses a model without one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sketchrnn.models.interface import SketchModel
from sketchrnn.models.units import model_scale_factor

__all__ = ["ModelInfo", "describe", "has_stroke_encoder", "CAPABILITIES"]

#: Everything the API offers, in the order the page lists it.
CAPABILITIES = (
    "sample",  # draw from scratch (the model's prior)
    "complete",  # continue a drawing (also streamed, stroke by stroke)
    "reconstruct",  # redraw a drawing in the model's own hand (a VAE: Mimic)
    "interpolate",  # morph between drawings through the latent space (a VAE: Morph)
    "imitate",  # redraw the drawing's image (SketchEmbedNet: Imitate)
    "embed",  # a vector for a drawing (the latent mean, or SketchEmbedNet's embedding)
    "classify",  # few-shot: which of a few taught concepts a drawing is
)


def has_stroke_encoder(model: SketchModel) -> bool:
    """Whether the model encodes *strokes* to a latent ``z`` (a sketch-rnn VAE), not images."""
    return model.has_encoder and not model.reads_images


@dataclass(frozen=True)
class ModelInfo:
    """What the page and the API say about one served model."""

    name: str
    kind: str  # "SketchRNN VAE", "SketchRNN decoder-only", "SketchEmbedNet", ...
    capabilities: dict[str, bool]
    reasons: dict[str, str]  # capability -> why it is missing (for the page's greyed tabs)
    classes: list[str]
    num_classes: int
    max_seq_len: int | None
    scale_factor: float | None  # None only for a model that neither reads nor draws strokes
    z_size: int | None
    image_size: int | None
    cell: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "capabilities": dict(self.capabilities),
            "reasons": dict(self.reasons),
            "classes": list(self.classes),
            "class_conditional": self.num_classes > 0,
            "max_seq_len": self.max_seq_len,
            "scale_factor": self.scale_factor,
            "z_size": self.z_size,
            "image_size": self.image_size,
            "cell": self.cell,
        }


def describe(name: str, model: Any) -> ModelInfo:
    """The :class:`ModelInfo` of ``model`` served as ``name``; ValueError for a model that
    reads or draws strokes but whose scale factor is unknown (so are its pixels)."""
    config: Any = getattr(model, "config", None)
    strokes_out = bool(model.draws_strokes)
    image_in = bool(model.reads_images)
    vae = has_stroke_encoder(model) and strokes_out
    decoder_only = strokes_out and not image_in and not vae
    num_classes = int(model.num_classes)
    classes = [str(c) for c in model.classes]
    if num_classes and len(classes) != num_classes:
        classes = [str(i) for i in range(num_classes)]  # no names saved: the indices

    can = {
        "sample": strokes_out and not image_in,
        "complete": strokes_out and not image_in,
        "reconstruct": vae,
        "interpolate": vae,
        "imitate": image_in and strokes_out,
        "embed": vae or image_in,
        "classify": vae or image_in,
    }
    if image_in:
        kind = type(model).__name__
        why_not = "reads images: it does not continue or sample stroke drawings"
    elif vae:
        kind = "SketchRNN VAE"
        why_not = "is a sketch-rnn VAE: it draws from strokes, not from an image"
    elif decoder_only:
        kind = "SketchRNN decoder-only"
        why_not = "is decoder-only: it has no encoder (no latent space)"
    else:
        kind = type(model).__name__
        why_not = "does not draw strokes"
    if num_classes:
        kind += f", {num_classes} classes"
    reasons = {c: f"this model {why_not}" for c, ok in can.items() if not ok}
    if not image_in and "imitate" in reasons:
        # What the model is, then what the mode needs (the page puts "Imitate copies a
        # picture:" and the model's name before it; the API "model 'x' cannot imitate:").
        reasons["imitate"] = (
            "this model draws from strokes only; imitating needs a SketchEmbedNet model, "
            "which draws from an image"
        )
    return ModelInfo(
        name=name,
        kind=kind,
        capabilities=can,
        reasons=reasons,
        classes=classes,
        num_classes=num_classes,
        max_seq_len=int(config.max_seq_len) if strokes_out else None,
        scale_factor=model_scale_factor(model) if strokes_out or vae else model.scale_factor,
        z_size=int(config.z_size) if hasattr(config, "z_size") else None,
        image_size=int(config.image_size) if image_in else None,
        cell=str(config.cell) if hasattr(config, "cell") else None,
    )
