"""Reading sketch files into datasets: many files, splits, the scale factor (the datasets and
batches themselves are :mod:`sketchrnn.datasets`).

The flow is ``files -> SketchSet (source units) -> DataSplits of SketchDataset (normalised
stroke-3) -> Batch (stroke-5 torch tensors)``::

    data = load_datasets(["cat.npz", "dog.ndjson"], max_len=250)
    for batch in data.train.batches(100, seed=0, epoch=0, augment=True):
        batch.strokes  # (100, N_max + 1, 5), row 0 the start token

Every sketch keeps a class label: the reader's label (e.g. the Quick, Draw! ``word``) or, when
the reader has none, the file's stem, so several files of one class each give a label.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from sketchrnn import strokes as S
from sketchrnn.datasets import DataSplits, ImageSketchDataset, SketchDataset, assign_splits
from sketchrnn.io.files import SketchFileError
from sketchrnn.io.formats import read_sketches
from sketchrnn.io.sketchset import SPLITS, SketchSet
from sketchrnn.store import is_store, store_datasets

__all__ = ["load_datasets", "datasets_from_sketchset", "load_image_datasets"]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike


# ----------------------------------------------------------------------------- reading


def _labelled_and_split(
    sketches: SketchSet,
    default_label: str,
    name: str,
    split_fractions: tuple[float, float, float],
    split_seed: int,
) -> SketchSet:
    """One source made ready for :func:`_build_splits`: unlabelled sketches get
    ``default_label``; sketches without a split get a seeded one (keyed by ``name``)."""
    labels = [label or default_label for label in sketches.labels]
    sketches = SketchSet(list(sketches.strokes), labels, list(sketches.splits))
    return assign_splits(sketches, split_fractions, split_seed, name=name)


def load_datasets(
    paths: PathLike | Sequence[PathLike],
    max_len: int = 250,
    *,
    too_long: Literal["drop", "error"] = "drop",
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    split_seed: int = 0,
    scale_factor: float | None = None,
    offset_limit: float | None = 1000.0,
    pad_to_max_len: bool = False,
    skip_invalid: bool = False,
    raw_simplification: str = "quickdraw",
) -> DataSplits[SketchDataset]:
    """Read every file in ``paths`` and build train/valid/test datasets from all of them.

    Labels: the reader's class label, else the file stem. Splits: the file's own (npz), else
    :func:`assign_splits` with ``split_fractions`` and ``split_seed``. Sketches longer than
    ``max_len`` points are dropped (counted and logged) or, with ``too_long="error"``, raise
    :class:`SketchFileError` naming the file. Offsets beyond ``offset_limit`` source units are
    clipped (magenta's guard against stray jumps). The scale factor is the std of the train
    offsets unless given (e.g. a pretrained model's), and normalises all three splits.

    ``N_max`` (every dataset's ``max_len``) is the longest kept sketch in any split, as in
    magenta, so short data is not padded to 250; ``pad_to_max_len=True`` pads to ``max_len``.

    A packed store (``sketchrnn data pack``, :mod:`sketchrnn.store`) given alone is read in
    place through its memory mapping, with the same splits, filter and batches.
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    if not paths:
        raise ValueError("no data files given")
    if any(is_store(p) for p in paths):
        if len(paths) > 1:
            raise ValueError(
                "a packed store is read alone: pack the other files into it "
                "(sketchrnn data pack) or give files only"
            )
        return store_datasets(
            paths[0],
            max_len,
            too_long=too_long,
            scale_factor=scale_factor,
            offset_limit=offset_limit,
            pad_to_max_len=pad_to_max_len,
            split_fractions=split_fractions,
            split_seed=split_seed,
            skip_invalid=skip_invalid,
        )
    sources = []
    skipped = {}
    for path in paths:
        sketches = read_sketches(
            path, skip_invalid=skip_invalid, raw_simplification=raw_simplification
        )
        if sketches.skipped:
            skipped[os.fspath(path)] = list(sketches.skipped)
        sketches = _labelled_and_split(
            sketches, Path(path).stem, Path(path).name, split_fractions, split_seed
        )
        sources.append((os.fspath(path), sketches))
    splits = _build_splits(sources, max_len, too_long, scale_factor, offset_limit, pad_to_max_len)
    splits.skipped_invalid = skipped
    return splits


def datasets_from_sketchset(
    sketches: SketchSet,
    max_len: int = 250,
    *,
    name: str = "sketches",
    too_long: Literal["drop", "error"] = "drop",
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    split_seed: int = 0,
    scale_factor: float | None = None,
    offset_limit: float | None = 1000.0,
    pad_to_max_len: bool = False,
) -> DataSplits[SketchDataset]:
    """:func:`load_datasets` for sketches already in memory (e.g. the synthetic set).

    ``name`` stands for the file name in messages and is the label of unlabelled sketches.
    """
    sketches = _labelled_and_split(sketches, name, name, split_fractions, split_seed)
    return _build_splits(
        [(name, sketches)], max_len, too_long, scale_factor, offset_limit, pad_to_max_len
    )


def _build_splits(
    sources: list[tuple[str, SketchSet]],
    max_len: int,
    too_long: str,
    scale_factor: float | None,
    offset_limit: float | None,
    pad_to_max_len: bool,
) -> DataSplits[SketchDataset]:
    if too_long not in ("drop", "error"):
        raise ValueError(f"too_long must be 'drop' or 'error', got {too_long!r}")
    if max_len < 1:
        raise ValueError(f"max_len must be at least 1, got {max_len}")
    classes = sorted({label for _, sketches in sources for label in sketches.labels})
    class_index = {label: k for k, label in enumerate(classes)}
    kept: dict[str, tuple[list[np.ndarray], list[int]]] = {name: ([], []) for name in SPLITS}
    dropped: dict[str, int] = {}
    for source, sketches in sources:
        dropped[source] = 0
        for i, (s3, label, split) in enumerate(
            zip(sketches.strokes, sketches.labels, sketches.splits, strict=True)
        ):
            try:
                s3 = S.validate_stroke3(s3, where=f"sketch #{i}")
            except S.SketchError as error:
                raise SketchFileError(source, str(error)) from None
            if split not in SPLITS:
                raise SketchFileError(source, f"sketch #{i} has an unknown split {split!r}")
            if len(s3) > max_len:
                if too_long == "error":
                    raise SketchFileError(
                        source,
                        f"sketch #{i} ({split}) has {len(s3)} points, more than max_len={max_len}"
                        " (raise max_len or use too_long='drop')",
                    )
                dropped[source] += 1
                continue
            if offset_limit is not None:
                s3 = S.clamp_offsets(s3, offset_limit)
            kept[split][0].append(s3)
            kept[split][1].append(class_index[label])
        if dropped[source]:
            logger.warning(
                "%s: dropped %d of %d sketches longer than max_len=%d",
                source,
                dropped[source],
                len(sketches),
                max_len,
            )
    names = ", ".join(source for source, _ in sources)
    if not any(kept[split][0] for split in SPLITS):
        raise ValueError(f"no sketches left in {names} (all longer than max_len={max_len})")
    if scale_factor is None and not kept["train"][0]:
        raise ValueError(
            f"no training sketches in {names} to compute the scale factor from "
            "(all too long, or no train split); pass scale_factor to use a known one"
        )
    if scale_factor is None:
        scale_factor = S.scale_factor(kept["train"][0], where=names)
    n_max = max_len if pad_to_max_len else max(S.max_length(kept[s][0]) for s in SPLITS)
    datasets = {
        split: SketchDataset(S.normalize(sk, scale_factor), labels, classes, scale_factor, n_max)
        for split, (sk, labels) in kept.items()
    }
    return DataSplits(
        datasets["train"], datasets["valid"], datasets["test"], scale_factor, classes, dropped
    )


# ----------------------------------------------------------------------------- images


def load_image_datasets(
    paths: PathLike | Sequence[PathLike],
    image_size: int = 28,
    max_len: int = 64,
    *,
    rdp_epsilon: float | None = None,
    in_channels: int = 1,
    line_width: float = 1.5,
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    split_seed: int = 0,
    scale_factor: float | None = None,
    limit_per_file: int | None = None,
    skip_invalid: bool = False,
) -> DataSplits[ImageSketchDataset]:
    """Read every file in ``paths`` and build train/valid/test image datasets from them.

    ``rdp_epsilon`` RDP-simplifies every sketch first (in the file's units; the Quick, Draw!
    sketch-rnn files are already simplified, Omniglot's are not: about 2 pixels of the 105
    pixel images brings most characters under 64 points). Sketches with more than
    ``max_len`` points are dropped and counted. ``limit_per_file`` keeps only the first
    sketches of each file (quick experiments). Labels, splits, the scale factor and
    ``skip_invalid`` as in :func:`sketchrnn.data.load_datasets`.
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    if not paths:
        raise ValueError("no data files given")
    for path in paths:
        if is_store(path):  # not a folder of SVG files
            raise SketchFileError(
                path,
                "a packed store: SketchEmbedNet reads sketch files (.npz, .ndjson, ...), "
                "not stores; give it the files the store was packed from",
            )
    merged = SketchSet()
    dropped: dict[str, int] = {}
    skipped: dict[str, list[str]] = {}
    for path in paths:
        sketches = read_sketches(path, skip_invalid=skip_invalid)
        if sketches.skipped:
            skipped[os.fspath(path)] = list(sketches.skipped)
        if limit_per_file is not None:
            sketches = sketches.subset(list(range(min(limit_per_file, len(sketches)))))
        strokes = list(sketches.strokes)
        if rdp_epsilon is not None:
            strokes = [_simplified(s, rdp_epsilon, path, i) for i, s in enumerate(strokes)]
        keep = [i for i, s in enumerate(strokes) if len(s) <= max_len]
        dropped[os.fspath(path)] = len(strokes) - len(keep)
        stem = Path(path).stem
        labels = [sketches.labels[i] or stem for i in keep]
        part = SketchSet([strokes[i] for i in keep], labels, [sketches.splits[i] for i in keep])
        # Split each file on its own (seeded by its name), as load_datasets does, so adding a
        # file never moves another file's sketches between splits.
        merged.extend(assign_splits(part, split_fractions, split_seed, name=Path(path).name))
    names = ", ".join(os.fspath(p) for p in paths)
    if len(merged) == 0:
        raise SketchFileError(names, f"no sketches of at most {max_len} points")
    splits = datasets_from_sketchset(
        merged, max_len, name=names, scale_factor=scale_factor, split_seed=split_seed
    )

    def wrap(d: SketchDataset) -> ImageSketchDataset:
        return ImageSketchDataset(d, image_size, in_channels=in_channels, line_width=line_width)

    # DataSplits holds any dataset type: here the image datasets wrapping the stroke ones.
    return DataSplits(
        wrap(splits.train),
        wrap(splits.valid),
        wrap(splits.test),
        splits.scale_factor,
        splits.classes,
        dropped,
        skipped,
    )


def _simplified(s3: np.ndarray, epsilon: float, path: PathLike, index: int) -> np.ndarray:
    try:
        return S.simplify_stroke3(S.validate_stroke3(s3, where=f"sketch #{index}"), epsilon)
    except S.SketchError as error:
        raise SketchFileError(path, str(error)) from None
