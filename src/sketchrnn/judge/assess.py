"""What ``sketchrnn judge`` does, as library functions: drawings to judge, then the report.

- :func:`model_samples`: ``n`` samples of a sketch-rnn model at a temperature, each labelled
  with the class it was drawn for: every class (or the ones asked) of a class-conditional
  model; the one class of a single-class model (an official model is named after its class);
  no label for a model of several classes without conditioning.
- :func:`model_endings`: ``n`` endings of each given prefix (``generate.complete``; the whole
  drawing, prefix and ending, is judged), labelled with the prefix's class.
- :func:`read_drawings` and :func:`judge_files`: the drawings of sketch files, labelled
  with their classes, and the judge's verdict on them (an error names the file).

:func:`sketchrnn.judge.scores.judge_report` turns verdicts into the report.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from sketchrnn.judge.classifier import Judge, Judgement

if TYPE_CHECKING:
    from sketchrnn.models.interface import SketchModel

__all__ = ["model_samples", "model_endings", "read_drawings", "judge_files"]

Labelled = tuple[list[np.ndarray], list[str | None]]


def _single_class(model: SketchModel) -> str | None:
    classes = list(getattr(model, "classes", []) or [])
    return str(classes[0]) if len(classes) == 1 else None


def model_samples(
    model: SketchModel,
    n: int,
    *,
    temperature: float = 0.5,
    classes: Sequence[str] | None = None,
    seed: int | None = None,
    progress: bool = False,
) -> Labelled:
    """``n`` samples per class of a class-conditional model (all its classes, or
    ``classes``), else ``n`` samples labelled ``classes[0]`` when one class is given, or the
    model's only class, or none. Stroke-3 in the model's pixels."""
    from sketchrnn import generate

    if model.num_classes > 0:
        asked = list(classes) if classes else list(model.classes)
        sketches: list[np.ndarray] = []
        labels: list[str | None] = []
        for k, name in enumerate(asked):
            seed_k = None if seed is None else seed + 1000 * k
            sketches += generate.sample(
                model, n, temperature=temperature, labels=name, seed=seed_k, progress=progress
            )
            labels += [name] * n
        return sketches, labels
    if classes and len(classes) > 1:
        raise ValueError(
            f"the model is not class-conditional: it draws one set of samples, not one per "
            f"class ({len(classes)} classes given)"
        )
    label = classes[0] if classes else _single_class(model)
    sketches = generate.sample(model, n, temperature=temperature, seed=seed, progress=progress)
    return sketches, [label] * len(sketches)


def model_endings(
    model: SketchModel,
    prefixes: Sequence[np.ndarray],
    labels: Sequence[str | None],
    n: int,
    *,
    temperature: float = 0.5,
    seed: int | None = None,
    progress: bool = False,
) -> Labelled:
    """``n`` endings of each prefix (stroke-3 in the model's pixels, see
    :func:`sketchrnn.generate.scale_inputs`), each the whole drawing, labelled as its prefix.
    A class-conditional model is given the prefix's class."""
    from sketchrnn import generate
    from sketchrnn.progress import progress_bar

    if len(prefixes) != len(labels):
        raise ValueError(f"{len(labels)} labels for {len(prefixes)} prefixes")
    sketches: list[np.ndarray] = []
    out_labels: list[str | None] = []
    conditional = model.num_classes > 0
    bar = progress_bar(range(len(prefixes)), desc="endings", unit="prefix", disable=not progress)
    for i in bar:
        label = labels[i]
        if conditional and label not in model.classes:
            raise ValueError(f"prefix {i}: class {label!r} is not one of the model's classes")
        sketches += generate.complete(
            model,
            prefixes[i],
            n,
            temperature,
            labels=label if conditional else None,
            seed=None if seed is None else seed + i,
        )
        out_labels += [label] * n
    return sketches, out_labels


def read_drawings(
    paths: Sequence[str | os.PathLike],
    *,
    label: str | None = None,
    skip_invalid: bool = False,
) -> list[tuple[str, list[np.ndarray], list[str | None]]]:
    """``(path, drawings, labels)`` of each sketch file (any format ``read_sketches`` reads);
    ``label`` replaces the files' own classes."""
    from sketchrnn.io.formats import read_sketches

    out = []
    for path in paths:
        found = read_sketches(path, skip_invalid=skip_invalid)
        labels: list[str | None] = [label or name or None for name in found.labels]
        out.append((os.fspath(path), list(found.strokes), labels))
    return out


def judge_files(
    judge: Judge,
    files: Sequence[tuple[str, list[np.ndarray], list[str | None]]],
    *,
    progress: bool = False,
) -> tuple[Judgement, list[str | None]]:
    """The verdict on the drawings of :func:`read_drawings` (an error names the file and the
    drawing) and their labels, all files together."""
    verdicts, labels = [], []
    for path, drawings, file_labels in files:
        verdicts.append(judge.judge(drawings, source=path, progress=progress))
        labels += file_labels
    return (
        Judgement(
            np.concatenate([v.log_probs for v in verdicts]),
            np.concatenate([v.features for v in verdicts]),
        ),
        labels,
    )
