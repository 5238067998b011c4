"""Readers and writers of sketch files. A reader never imports torch."""

from sketchrnn.io.files import SketchFileError, atomic_path
from sketchrnn.io.sketchset import SPLITS, SketchSet

__all__ = ["SPLITS", "SketchFileError", "SketchSet", "atomic_path"]
