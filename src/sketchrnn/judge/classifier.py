"""The judge: a Quick, Draw! classifier that says what a drawing looks like.

:func:`load_judge` reads a TF.js layers classifier (DoodleNet by default, fetched by name:
:mod:`sketchrnn.judge.files`) into PyTorch; :meth:`Judge.judge` renders drawings the way
Quick, Draw!'s own 28x28 bitmaps were made (:func:`sketchrnn.io.raster.rasterize_quickdraw`)
and returns each drawing's class log-probabilities ``(N, classes)`` and the classifier's
penultimate features ``(N, D)`` (DoodleNet: 345 classes, D = 512)::

    judge = load_judge()                               # downloads DoodleNet once
    verdict = judge.judge(sketches)                    # stroke-3 arrays, any units
    verdict.top(5)                                     # (N, 5) class indices, best first
    judge.classes[verdict.top(1)[0, 0]]                # 'cat'

Class names are Quick, Draw!'s spelling (``"The Eiffel Tower"``, ``"palm tree"``);
:meth:`Judge.class_index` also takes ``the_eiffel_tower`` and other cases and separators, so
the names of the official sketch-rnn models (``palm_tree``) find their class.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sketchrnn.io.files import SketchFileError
from sketchrnn.io.raster import QUICKDRAW_BITMAP, BitmapRecipe, Sketch, rasterize_quickdraw
from sketchrnn.judge.network import SequentialClassifier
from sketchrnn.strokes import SketchError

__all__ = ["Judge", "Judgement", "JudgeInputError", "load_judge", "class_key"]

# Drawings rendered and classified at once: 28x28 images are small, the rendering dominates.
_BATCH = 256


class JudgeInputError(ValueError):
    """A drawing the judge cannot read (no points, NaN or infinite values, coordinates too
    large to draw); the message names the source and the drawing's number."""


def class_key(name: str) -> str:
    """``"The_Eiffel_Tower"`` -> ``"the eiffel tower"``: the form class names are compared in."""
    return " ".join(name.replace("_", " ").lower().split())


@dataclass(frozen=True, eq=False)
class Judgement:
    """What the judge says of ``N`` drawings: ``log_probs`` ``(N, classes)`` and the
    penultimate ``features`` ``(N, D)``, float32."""

    log_probs: np.ndarray
    features: np.ndarray

    def __len__(self) -> int:
        return len(self.log_probs)

    @property
    def probs(self) -> np.ndarray:
        """Class probabilities ``(N, classes)``."""
        return np.exp(self.log_probs)

    def top(self, k: int) -> np.ndarray:
        """The ``k`` most likely classes of each drawing, best first: ``(N, k)`` indices."""
        return np.argsort(-self.log_probs, axis=1, kind="stable")[:, :k]

    def confidence(self) -> np.ndarray:
        """The probability of each drawing's most likely class ``(N,)``."""
        return np.exp(self.log_probs.max(axis=1))


class Judge:
    """A classifier of 28x28 Quick, Draw! bitmaps and the recipe its inputs are drawn with."""

    def __init__(
        self,
        network: SequentialClassifier,
        classes: Sequence[str],
        recipe: BitmapRecipe = QUICKDRAW_BITMAP,
        device: str | torch.device = "cpu",
    ):
        if len(classes) != network.num_classes:
            raise ValueError(f"{len(classes)} class names for {network.num_classes} outputs")
        self.network = network.to(device).eval()
        self.classes = list(classes)
        self.recipe = recipe
        self.device = torch.device(device)
        self._index = {class_key(c): i for i, c in enumerate(self.classes)}

    @property
    def feature_size(self) -> int:
        return self.network.feature_size

    def find_class(self, name: str) -> int | None:
        """The index of class ``name`` (any case, ``_`` for spaces), or ``None``."""
        return self._index.get(class_key(name))

    def class_index(self, name: str) -> int:
        """The index of class ``name``; ``ValueError`` (with close names) if it is none."""
        found = self.find_class(name)
        if found is None:
            close = difflib.get_close_matches(class_key(name), list(self._index), n=3)
            hint = (
                f" (did you mean {', '.join(repr(self.classes[self._index[c]]) for c in close)}?)"
            )
            raise ValueError(
                f"{name!r} is not one of the judge's {len(self.classes)} classes"
                + (hint if close else "")
            )
        return found

    def render(
        self,
        sketches: Sequence[Sketch],
        *,
        allow_empty: bool = False,
        source: str = "drawings",
        first: int = 0,
    ) -> np.ndarray:
        """The judge's input images ``(N, 28, 28)`` of ``sketches`` (stroke-3 or polylines, in
        any units). :class:`JudgeInputError` names ``source`` and the drawing that cannot be
        drawn (numbered from ``first``); ``allow_empty`` draws a drawing with no points as a
        blank image."""
        out = np.zeros((len(sketches), self.recipe.size, self.recipe.size), dtype=np.float32)
        for i, s in enumerate(sketches):
            try:
                out[i] = rasterize_quickdraw([s], self.recipe, allow_empty=allow_empty)[0]
            except (SketchError, ValueError, TypeError) as e:
                reason = str(e).removeprefix("sketch 0: ")
                raise JudgeInputError(f"{source}: drawing {first + i}: {reason}") from None
        return out

    @torch.inference_mode()
    def judge_images(self, images: np.ndarray) -> Judgement:
        """Classify bitmaps ``(N, 28, 28)`` in ``[0, 1]`` (1 = ink)."""
        logits, features = [], []
        for start in range(0, len(images), _BATCH):
            x = torch.from_numpy(np.ascontiguousarray(images[start : start + _BATCH]))
            z, f = self.network(x.to(self.device, torch.float32))
            logits.append(torch.log_softmax(z.double(), dim=1).float().cpu().numpy())
            features.append(f.float().cpu().numpy())
        if not logits:
            return Judgement(
                np.zeros((0, len(self.classes)), np.float32),
                np.zeros((0, self.feature_size), np.float32),
            )
        return Judgement(np.concatenate(logits), np.concatenate(features))

    def judge(
        self,
        sketches: Sequence[Sketch],
        *,
        allow_empty: bool = False,
        source: str = "drawings",
        progress: bool = False,
    ) -> Judgement:
        """Render ``sketches`` (:meth:`render`) and classify them, with a progress bar on
        stderr when ``progress``."""
        from sketchrnn.progress import progress_bar

        parts = []
        with progress_bar(
            total=len(sketches), desc="judging", unit="drawing", disable=not progress, leave=False
        ) as bar:
            for start in range(0, len(sketches), _BATCH):
                chunk = sketches[start : start + _BATCH]
                images = self.render(chunk, allow_empty=allow_empty, source=source, first=start)
                parts.append(self.judge_images(images))
                bar.update(len(chunk))
        if not parts:
            return self.judge_images(np.zeros((0, self.recipe.size, self.recipe.size), np.float32))
        return Judgement(
            np.concatenate([p.log_probs for p in parts]),
            np.concatenate([p.features for p in parts]),
        )


def _read_class_names(path: Path, count: int) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise SketchFileError(path, f"cannot read the class names ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise SketchFileError(path, "not a text file (invalid UTF-8)") from None
    names = [" ".join(line.replace("_", " ").split()) for line in text.splitlines()]
    names = [n for n in names if n]
    if len(names) != count:
        raise SketchFileError(path, f"{len(names)} class names (one a line) for {count} outputs")
    if len({class_key(n) for n in names}) != len(names):
        raise SketchFileError(path, "a class name is listed twice")
    return names


def load_judge(
    spec: str | os.PathLike = "doodlenet",
    *,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> Judge:
    """The judge ``spec``: a name (``"doodlenet"``, downloaded once), a folder holding a TF.js
    layers ``model.json`` (its weight files beside it) and ``class_names.txt`` (one name a
    line, in output order; ``_`` read as a space), or that ``model.json``.

    Raises :class:`SketchFileError` naming the file for a model or class list that cannot be
    used, and a :class:`sketchrnn.judge.files.JudgeDownloadError` when a download fails.
    """
    from sketchrnn.io.tfjs_layers import read_tfjs_layers
    from sketchrnn.judge.files import resolve_judge

    model_json = resolve_judge(spec, progress=progress)
    network = SequentialClassifier(read_tfjs_layers(model_json))
    side = QUICKDRAW_BITMAP.size
    if tuple(network.input_shape) not in ((side, side), (side, side, 1)):
        raise SketchFileError(
            model_json, f"input {network.input_shape} is not a {side}x{side} grey bitmap"
        )
    classes = _read_class_names(model_json.parent / "class_names.txt", network.num_classes)
    return Judge(network, classes, device=device)
