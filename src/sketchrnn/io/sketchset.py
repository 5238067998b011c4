"""The container readers return: sketches in the source's units, with labels and splits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["SketchSet", "SPLITS", "META_FIELDS"]

SPLITS = ("train", "valid", "test")
# Per-sketch metadata a SketchSet carries from Quick, Draw! files (the class word is the label):
# key_id (int), countrycode (str), recognized (bool), timestamp (unix seconds, int, or float
# when the source has fractions of a second). A field is absent when the source has none.
META_FIELDS = ("key_id", "countrycode", "recognized", "timestamp")


@dataclass
class SketchSet:
    """Sketches read from one or more files, in the source's own units.

    ``strokes[i]`` is a stroke-3 float32 ``(n, 3)`` array; ``labels[i]`` its class name;
    ``splits[i]`` one of ``"train"``, ``"valid"``, ``"test"``, or ``""`` when the source has no
    split. ``scale_factor`` is set when the source carries one (else ``None``).
    ``skipped`` lists the invalid records a reader passed over when asked to skip them
    (``"file:line: why"``). ``metadata[i]`` is a dict of the sketch's Quick, Draw! fields
    (:data:`META_FIELDS`; empty when the source has none). ``notes`` says, one line each, what
    reading changed or filled in (raw drawings simplified, labels taken from a file name, ...).
    """

    strokes: list[np.ndarray] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    splits: list[str] = field(default_factory=list)
    scale_factor: float | None = None
    skipped: list[str] = field(default_factory=list)
    metadata: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.strokes)
        if not self.labels:
            self.labels = [""] * n
        if not self.splits:
            self.splits = [""] * n
        if not self.metadata:
            self.metadata = [{} for _ in range(n)]
        if not (len(self.labels) == len(self.splits) == len(self.metadata) == n):
            raise ValueError("strokes, labels, splits and metadata must have the same length")

    def __len__(self) -> int:
        return len(self.strokes)

    @property
    def classes(self) -> list[str]:
        """Sorted distinct class labels."""
        return sorted(set(self.labels))

    def split(self, name: str) -> SketchSet:
        """The sketches of one split (``""`` selects unsplit sketches)."""
        idx = [i for i, s in enumerate(self.splits) if s == name]
        return self.subset(idx)

    def _meta(self) -> list[dict[str, Any]]:
        # Callers may have appended to strokes directly; metadata then reads as unknown.
        missing = len(self.strokes) - len(self.metadata)
        return self.metadata + [{} for _ in range(missing)] if missing > 0 else self.metadata

    def subset(self, idx: list[int]) -> SketchSet:
        meta = self._meta()
        return SketchSet(
            [self.strokes[i] for i in idx],
            [self.labels[i] for i in idx],
            [self.splits[i] for i in idx],
            self.scale_factor,
            metadata=[dict(meta[i]) for i in idx],
            notes=list(self.notes),
        )

    def extend(self, other: SketchSet) -> None:
        self.metadata = self._meta()
        self.strokes.extend(other.strokes)
        self.labels.extend(other.labels)
        self.splits.extend(other.splits)
        self.metadata.extend(other._meta())
        self.skipped.extend(other.skipped)
        self.notes.extend(n for n in other.notes if n not in self.notes)
