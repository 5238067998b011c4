"""The container readers return: sketches in the source's units, with labels and splits."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["SketchSet", "SPLITS"]

SPLITS = ("train", "valid", "test")


@dataclass
class SketchSet:
    """Sketches read from one or more files, in the source's own units.

    ``strokes[i]`` is a stroke-3 float32 ``(n, 3)`` array; ``labels[i]`` its class name;
    ``splits[i]`` one of ``"train"``, ``"valid"``, ``"test"``, or ``""`` when the source has no
    split. ``scale_factor`` is set when the source carries one (else ``None``).
    ``skipped`` lists the invalid records a reader passed over when asked to skip them
    (``"file:line: why"``).
    """

    strokes: list[np.ndarray] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    splits: list[str] = field(default_factory=list)
    scale_factor: float | None = None
    skipped: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.strokes)
        if not self.labels:
            self.labels = [""] * n
        if not self.splits:
            self.splits = [""] * n
        if not (len(self.labels) == len(self.splits) == n):
            raise ValueError("strokes, labels and splits must have the same length")

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

    def subset(self, idx: list[int]) -> SketchSet:
        return SketchSet(
            [self.strokes[i] for i in idx],
            [self.labels[i] for i in idx],
            [self.splits[i] for i in idx],
            self.scale_factor,
        )

    def extend(self, other: SketchSet) -> None:
        self.strokes.extend(other.strokes)
        self.labels.extend(other.labels)
        self.splits.extend(other.splits)
        self.skipped.extend(other.skipped)
