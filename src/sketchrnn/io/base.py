"""What every reader and writer shares: the SketchSet container, errors, atomic writes."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["SketchSet", "SketchFileError", "atomic_path", "SPLITS"]

SPLITS = ("train", "valid", "test")


class SketchFileError(ValueError):
    """A file that cannot be read or written as asked. The message names the file (and the
    line or record where that helps) and says what is wrong."""

    def __init__(self, path: str | os.PathLike, message: str, line: int | None = None):
        where = f"{os.fspath(path)}:{line}" if line is not None else os.fspath(path)
        super().__init__(f"{where}: {message}")
        self.path = os.fspath(path)
        self.line = line


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


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``.

    On any error the temporary file is removed and ``path`` is left as it was, so a
    half-written output never appears under the real name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    # mkstemp creates the file 0600; give it the permissions a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
