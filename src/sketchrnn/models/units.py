"""Pixels <-> model units: the one place sketches cross between the two.

A model learns in normalised units: stroke-3 offsets divided by its ``scale_factor`` (the std
of its training offsets, kept in its config). Everything that gives a model pixel sketches or
takes pixel sketches from it (drawing, evaluation on files, the demo) converts here. A model
whose scale factor is unknown cannot draw in pixels: that is an error, never a silent 1.0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from sketchrnn import strokes
from sketchrnn.models.interface import SketchModel

__all__ = [
    "adopt_units",
    "SCALE_FACTOR_RANGE",
    "check_scale_factor",
    "model_scale_factor",
    "to_model_units",
    "to_pixels",
]

#: The scale factors a model may have and be exported with (pixels per model unit): a model
#: unit from a millionth of a pixel to 100,000 pixels (one place: :mod:`sketchrnn.strokes`, as
#: the readers and the configs check it). Beyond it the drawings' coordinates leave what the
#: readers take (offsets beyond 1e6 are refused as corrupt), and far beyond it they overflow.
SCALE_FACTOR_RANGE = (strokes.MIN_SCALE_FACTOR, strokes.MAX_SCALE_FACTOR)


def check_scale_factor(value: float, where: str = "scale_factor") -> float:
    """``value`` as a float; ValueError (naming ``where``) unless it lies in
    :data:`SCALE_FACTOR_RANGE`."""
    low, high = SCALE_FACTOR_RANGE
    value = float(value)
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(
            f"{where} must lie in [{low:g}, {high:g}] (pixels per model unit), got {value:g}"
        )
    return value


def model_scale_factor(model: SketchModel) -> float:
    """The model's ``scale_factor``; ValueError when it is unknown (``None``)."""
    factor = model.scale_factor
    if factor is None:
        raise ValueError(
            f"model has no scale_factor; its pixels are unknown. Models trained by the Trainer "
            f"and loaded by load_model carry theirs; for a model built by hand call "
            f"model.set_units(scale_factor=...) ({type(model).__name__})"
        )
    return float(factor)


def to_model_units(model: SketchModel, sketches: Iterable[np.ndarray]) -> list[np.ndarray]:
    """Pixel stroke-3 sketches ``(n, 3)`` -> the model's normalised units (new float32
    arrays: offsets divided by the scale factor)."""
    return strokes.normalize(sketches, model_scale_factor(model))


def to_pixels(model: SketchModel, sketches: Iterable[np.ndarray]) -> list[np.ndarray]:
    """Stroke-3 sketches ``(n, 3)`` in the model's units -> pixels (new float32 arrays:
    offsets multiplied by the scale factor)."""
    factor = model_scale_factor(model)
    out = []
    for s in sketches:
        t = np.array(s, dtype=np.float32, copy=True)
        t[:, 0:2] *= factor
        out.append(t)
    return out


def adopt_units(model: SketchModel, scale_factor: float | None, classes: list[str]) -> None:
    """Give ``model`` the training data's ``scale_factor`` and ``classes`` where it has none
    (``None``, ``[]``: the data's unknown); ValueError where it has others (it would learn in
    other units than it draws in)."""
    changes: dict = {}
    if scale_factor is not None:
        if model.scale_factor is None:
            changes["scale_factor"] = float(scale_factor)
        elif not math.isclose(model.scale_factor, float(scale_factor), rel_tol=1e-6):
            raise ValueError(
                f"the model's scale factor is {model.scale_factor:.6g} but the training data's "
                f"is {float(scale_factor):.6g}: load the data with the model's scale factor "
                "(load_datasets(..., scale_factor=model.scale_factor)) or train a new model"
            )
    if classes:
        if not model.classes:
            changes["classes"] = classes
        elif model.classes != classes:
            raise ValueError(
                f"the model's classes are {model.classes} but the training data's are "
                f"{classes}: train on data of the same classes, or a new model"
            )
    model.set_units(**changes)
