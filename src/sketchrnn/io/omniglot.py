"""Omniglot stroke files (Lake et al. 2015), read in place from their zip archives.

Layout inside ``strokes_background*.zip``::

    <root>/<alphabet>/characterNN/<character id>_<drawer>.txt

Each text file is one drawing: a ``START`` line, then ``x,y,t`` lines (float pixel
coordinates of the 105x105 image and a time in milliseconds), with a ``BREAK`` line after each
stroke. The files' y axis points up (y values are negative); readers here flip it so that
drawings are upright in image convention (y down) and land on the same pixels as the
matching PNG in ``images_background*.zip``.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from sketchrnn.io.archive import Archive
from sketchrnn.io.files import MAX_ABS_OFFSET, SketchFileError, env_limit, limit_hint
from sketchrnn.io.sketchset import SketchSet
from sketchrnn.strokes import polylines_to_stroke3, rdp_polylines

__all__ = [
    "OmniglotDrawing",
    "parse_omniglot_text",
    "read_omniglot_drawings",
    "read_omniglot_strokes",
]

_FILE_NAME = re.compile(r"^(\d+)_(\d+)\.txt$")


@dataclass
class OmniglotDrawing:
    """One drawing of one character by one drawer.

    ``points`` holds one ``(k, 3)`` float64 array ``(x, y, t)`` per stroke, with y pointing
    down and ``t`` in milliseconds.
    """

    alphabet: str
    character: str  # "characterNN", numbered within its alphabet
    character_id: int  # the global id in the file name, e.g. 108 for "0108_05.txt"
    drawer: int
    points: list[np.ndarray]
    member: str  # path inside the zip

    @property
    def label(self) -> str:
        """``"alphabet/characterNN"``, the label used by the Vinyals et al. splits."""
        return f"{self.alphabet}/{self.character}"

    def stroke3(self, epsilon: float | None = None) -> np.ndarray:
        """The drawing as stroke-3 float32 ``(n, 3)``, optionally RDP-simplified with
        tolerance ``epsilon`` (in pixels of the 105x105 image)."""
        lines = [p[:, 0:2] for p in self.points]
        if epsilon is not None:
            lines = rdp_polylines(lines, epsilon)
        return polylines_to_stroke3(lines)


def parse_omniglot_text(text: str, where: str) -> list[np.ndarray]:
    """The strokes ``(k, 3)`` of one stroke file's text, y flipped to point down.

    ``where`` names the file in error messages (:class:`SketchFileError` with line numbers).
    """
    strokes: list[np.ndarray] = []
    current: list[tuple[float, float, float]] = []
    started = False
    points = 0
    limit = env_limit("SKETCHRNN_MAX_POINTS")
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line == "START":
            if started:
                raise SketchFileError(where, "second START in one drawing", line=number)
            started = True
            continue
        if not started:
            raise SketchFileError(where, f"expected START before {line[:40]!r}", line=number)
        if line == "BREAK":
            if current:
                strokes.append(np.array(current, dtype=np.float64))
            current = []
            continue
        fields = line.split(",")
        try:
            if len(fields) != 3:
                raise ValueError
            x, y, t = (float(f) for f in fields)
        except ValueError:
            raise SketchFileError(
                where, f"expected 'x,y,t' numbers, START or BREAK, got {line[:40]!r}", line=number
            ) from None
        if not (math.isfinite(x) and math.isfinite(y) and math.isfinite(t)):
            raise SketchFileError(where, f"non-finite value in {line[:40]!r}", line=number)
        if max(abs(x), abs(y)) > MAX_ABS_OFFSET:  # pixels of a 105x105 image: damage
            raise SketchFileError(
                where, f"coordinate beyond +-{MAX_ABS_OFFSET:g} in {line[:40]!r}", line=number
            )
        current.append((x, -y, t))
        points += 1
        if points > limit:
            raise SketchFileError(
                where, f"more than {limit:,} points, " + limit_hint("SKETCHRNN_MAX_POINTS")
            )
    if current:  # a last stroke without its closing BREAK
        strokes.append(np.array(current, dtype=np.float64))
    if not strokes:
        raise SketchFileError(where, "drawing has no points")
    return strokes


# A stroke file is a few KB (the largest of the shared ones 14 KB, 537 lines) and compresses
# about 5:1; members far larger, or inflating far more, are refused before they are read.
MAX_STROKE_FILE_BYTES = 4 << 20
_MAX_TEXT_RATIO = 100


def read_omniglot_drawings(zip_path: str | os.PathLike) -> list[OmniglotDrawing]:
    """Every drawing in an Omniglot strokes zip, sorted by alphabet, character and drawer.

    The archive is read in place. Files other than ``<alphabet>/characterNN/<id>_<drawer>.txt``
    (folders, ``.DS_Store``, ``__MACOSX``) are skipped. Raises :class:`SketchFileError` for a
    missing or broken zip (bad CRC, damaged deflate data, a lying directory), a zip without
    stroke files, a stroke file over 4 MiB or inflating more than 100:1 (a decompression
    bomb), a drawing with more points than ``SKETCHRNN_MAX_POINTS``, or a malformed line
    (naming the member and line).
    """
    zip_path = Path(zip_path)
    if not zip_path.is_file():
        raise SketchFileError(zip_path, "no such file")
    drawings = []
    with Archive(zip_path) as archive:
        for info in archive.infolist():
            parts = PurePosixPath(info.filename).parts
            if info.is_dir() or "__MACOSX" in parts or len(parts) < 3:
                continue
            match = _FILE_NAME.match(parts[-1])
            if not match:
                continue
            where = f"{zip_path}/{info.filename}"
            data = archive.read(
                info, max_bytes=MAX_STROKE_FILE_BYTES, max_ratio=_MAX_TEXT_RATIO, kind="stroke text"
            )
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as e:
                raise SketchFileError(where, f"not a text file ({e})") from None
            drawings.append(
                OmniglotDrawing(
                    alphabet=parts[-3],
                    character=parts[-2],
                    character_id=int(match.group(1)),
                    drawer=int(match.group(2)),
                    points=parse_omniglot_text(text, where),
                    member=info.filename,
                )
            )
    if not drawings:
        raise SketchFileError(zip_path, "zip holds no Omniglot stroke files (<id>_<drawer>.txt)")
    drawings.sort(key=lambda d: (d.alphabet, d.character, d.drawer))
    return drawings


def read_omniglot_strokes(
    zip_path: str | os.PathLike, *, epsilon: float | None = None
) -> SketchSet:
    """The drawings of an Omniglot strokes zip as a :class:`SketchSet` in pixel units.

    Labels are ``"alphabet/characterNN"``; there are no splits. ``epsilon`` optionally
    RDP-simplifies each stroke (pixels of the 105x105 image). For the drawer and character
    id of each sketch use :func:`read_omniglot_drawings`.
    """
    drawings = read_omniglot_drawings(zip_path)
    sketches = SketchSet([d.stroke3(epsilon) for d in drawings], [d.label for d in drawings])
    sketches.notes.append(
        f"{os.fspath(zip_path)}: Omniglot stroke files: the point times, drawer and character "
        "id are not kept (labels are alphabet/characterNN)"
        + (f"; strokes simplified (RDP epsilon {epsilon:g} px)" if epsilon else "")
    )
    return sketches
