"""Readers and writers of sketch files. A reader never imports torch."""

from sketchrnn.io.base import SPLITS, SketchFileError, SketchSet, atomic_path

__all__ = ["SPLITS", "SketchFileError", "SketchSet", "atomic_path"]
