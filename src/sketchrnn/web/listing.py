"""What the page is told of its models, the same whether a server or a static site holds them:
``GET /api/models`` of ``sketchrnn serve`` (:mod:`sketchrnn.web.files`) and ``models.json`` of
``sketchrnn export-site`` (:mod:`sketchrnn.web.site`). Each model's entry is its info
(:class:`sketchrnn.web.capabilities.ModelInfo`), where its portable folder is, and the size of
its typical drawing; the page's constants come from the library, not from the page.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

from sketchrnn.web.drawing import ServedModel

__all__ = ["STATIC_DIR", "model_entry", "folder_bytes", "page_constants"]

#: The page's files (plain HTML, CSS and ES modules: no build step), served or copied.
STATIC_DIR = Path(__file__).resolve().parent / "static"


def model_entry(
    served: ServedModel, url: str | None, folder: Path | None, problem: str | None = None
) -> dict[str, Any]:
    """A model's entry: its info, ``typical_extent`` (model pixels of its typical drawing: the
    page maps a canvas to the model with it, as :func:`sketchrnn.generate.canvas_scale`),
    ``portable`` (the portable folder's URL relative to the page, or None with
    ``portable_error`` saying why), ``portable_ready`` (whether that folder exists yet: a
    server exports it on first use) and ``portable_bytes`` (what a page downloads of it)."""
    return {
        **served.info.to_json(),
        "typical_extent": float(served.typical_extent()),
        "portable": url,
        "portable_ready": folder is not None,
        "portable_bytes": folder_bytes(folder) if folder is not None else None,
        "portable_error": problem,
    }


def folder_bytes(folder: Path) -> int:
    """The bytes a page downloads of a portable folder: its manifest and the graphs it lists."""
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    graphs = sum(int(g["bytes"]) for g in manifest["graphs"].values())
    return graphs + (folder / "manifest.json").stat().st_size


def page_constants() -> dict[str, Any]:
    """What the page computes with, from where the library keeps it (never restated in the
    page): how a canvas maps to a model and a drawing is simplified
    (:func:`sketchrnn.generate.canvas_scale`, :func:`~sketchrnn.generate.prepare_drawing`),
    how often an empty drawing is drawn again (:data:`sketchrnn.web.drawing.EMPTY_RETRIES`)
    and the few-shot classifier's regularization (:mod:`sketchrnn.fewshot`)."""
    from sketchrnn import fewshot, generate
    from sketchrnn.web.drawing import EMPTY_RETRIES

    regularization = inspect.signature(fewshot.evaluate_embedded).parameters["regularization"]
    return {
        "drawing_fill": generate.DRAWING_FILL,
        "rdp_epsilon_units": generate.RDP_EPSILON_UNITS,
        "max_epsilon_growth": generate.MAX_EPSILON_GROWTH,
        "empty_retries": EMPTY_RETRIES,
        "fewshot_regularization": regularization.default,
    }
