"""The models that ship inside the package, so a fresh machine draws at once, offline.

Each is a pretrained folder (``config.json`` + ``model.safetensors`` in float16, loaded as
float32) under ``sketchrnn/builtin_models/<name>/`` with a model card (``README.md``: data and
licence, the exact training command, steps, minutes, test losses). They were trained by the
project's own CLI on data whose licence lets us ship the weights (our synthetic shapes, Omniglot
strokes, MIT); ``scripts/package_builtin_model.py`` turns a training run into such a folder.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["BUILTIN_DIR", "builtin_models", "builtin_model_path"]

BUILTIN_DIR = Path(__file__).resolve().parent.parent / "builtin_models"


def builtin_models() -> dict[str, Path]:
    """Name -> folder of every built-in model, sorted by name."""
    if not BUILTIN_DIR.is_dir():
        return {}
    return {
        d.name: d
        for d in sorted(BUILTIN_DIR.iterdir())
        if (d / "config.json").is_file() and (d / "model.safetensors").is_file()
    }


def builtin_model_path(name: str) -> Path | None:
    """The folder of the built-in model ``name``, or None when there is none of that name."""
    return builtin_models().get(name)
