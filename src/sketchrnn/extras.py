"""The optional dependencies (``pyproject.toml``'s extras: ``onnx``, ``figures``, ``web``, ...):
one error for a missing one, whichever part of the package needs it."""

from __future__ import annotations

__all__ = ["MissingExtraError"]


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names what needs it and the extra
    that brings it (``pip install 'sketchrnn[onnx]'``)."""
