"""Datasets and batching: reading many files, splits, the scale factor, padding, augmentation.

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
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Literal, NamedTuple, TypeVar

import numpy as np
import torch

from sketchrnn import strokes as S
from sketchrnn.io.files import SketchFileError
from sketchrnn.io.formats import read_sketches
from sketchrnn.io.sketchset import SPLITS, SketchSet

__all__ = [
    "Batch",
    "to_device",
    "SketchDataset",
    "DataSplits",
    "make_batch",
    "read_sketches",
    "assign_splits",
    "load_datasets",
    "datasets_from_sketchset",
]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike


class Batch(NamedTuple):
    """A padded batch of sketches.

    ``strokes`` ``(batch, N_max + 1, 5)`` float32: row 0 the start token ``(0, 0, 1, 0, 0)``,
    rows ``1..n`` the sketch in stroke-5 (normalised offsets), later rows ``(0, 0, 0, 0, 1)``.
    ``lengths`` ``(batch,)`` int64: ``n``, the real points without the start token.
    ``labels`` ``(batch,)`` int64: indices into ``dataset.classes``.
    """

    strokes: torch.Tensor
    lengths: torch.Tensor
    labels: torch.Tensor


def to_device(batch: Any, device: torch.device | str) -> Any:
    """A batch (a NamedTuple of tensors: :class:`Batch`, ``ImageBatch``, ...) with every tensor
    moved to ``device``."""
    return type(batch)(*(t.to(device) if isinstance(t, torch.Tensor) else t for t in batch))


def make_batch(
    sketches: Sequence[np.ndarray], labels: Sequence[int] | np.ndarray, max_len: int
) -> Batch:
    """Pad stroke-3 sketches into a :class:`Batch` of ``(batch, max_len + 1, 5)``.

    One :func:`strokes.stroke3_to_stroke5` per sketch (vectorised over its rows), so a batch
    of 100 x 250 costs about a millisecond.
    """
    out = np.empty((len(sketches), max_len + 1, 5), dtype=np.float32)
    out[:, 0] = S.START_TOKEN
    for i, s3 in enumerate(sketches):
        out[i, 1:] = S.stroke3_to_stroke5(s3, max_len)
    lengths = np.array([len(s) for s in sketches], dtype=np.int64)
    return Batch(
        torch.from_numpy(out),
        torch.from_numpy(lengths),
        torch.as_tensor(np.asarray(labels, dtype=np.int64)).reshape(len(sketches)),
    )


class SketchDataset:
    """Normalised stroke-3 sketches of one split, with integer class labels.

    ``max_len`` is ``N_max``: every batch is padded to ``(batch, max_len + 1, 5)`` whatever the
    lengths in it, because the pen loss runs over all ``N_max`` steps.
    """

    def __init__(
        self,
        sketches: Sequence[np.ndarray],
        labels: Sequence[int] | np.ndarray,
        classes: Sequence[str],
        scale_factor: float,
        max_len: int,
    ):
        if len(sketches) != len(labels):
            raise ValueError(f"{len(sketches)} sketches but {len(labels)} labels")
        self.sketches = [np.asarray(s, dtype=np.float32) for s in sketches]
        self.labels = np.asarray(labels, dtype=np.int64).reshape(len(sketches))
        self.classes = list(classes)
        self.scale_factor = float(scale_factor)
        self.max_len = int(max_len)
        if len(self.labels) and not (0 <= self.labels.min() and self.labels.max() < len(classes)):
            raise ValueError(f"labels must index the {len(classes)} classes")
        longest = S.max_length(self.sketches)
        if longest > self.max_len:
            raise ValueError(f"a sketch has {longest} points, more than max_len={self.max_len}")

    def subset(self, indices: Sequence[int] | np.ndarray) -> SketchDataset:
        """The sketches at ``indices`` (ints, or a bool mask), same classes, scale and N_max."""
        chosen = np.arange(len(self))[np.asarray(indices)]
        return SketchDataset(
            [self.sketches[i] for i in chosen],
            self.labels[chosen],
            self.classes,
            self.scale_factor,
            self.max_len,
        )

    def __len__(self) -> int:
        return len(self.sketches)

    def __repr__(self) -> str:
        return (
            f"SketchDataset({len(self)} sketches, {len(self.classes)} classes, "
            f"max_len={self.max_len}, scale_factor={self.scale_factor:.4g})"
        )

    @property
    def lengths(self) -> np.ndarray:
        """``(len(self),)`` number of points of every sketch."""
        return np.array([len(s) for s in self.sketches], dtype=np.int64)

    def batch(
        self,
        indices: Sequence[int] | np.ndarray,
        augment: bool = False,
        rng: np.random.Generator | None = None,
        *,
        drop_prob: float = 0.0,
    ) -> Batch:
        """The sketches at ``indices`` as a :class:`Batch`.

        With ``augment`` each sketch goes through :func:`strokes.augment` (random x/y scale in
        [0.9, 1.1], and point dropping with ``drop_prob``) drawn from ``rng``.
        """
        if drop_prob > 0 and not augment:
            raise ValueError("drop_prob > 0 needs augment=True (it is part of the augmentation)")
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        chosen = [self.sketches[i] for i in indices]
        if augment:
            rng = rng if rng is not None else np.random.default_rng()
            chosen = [S.augment(s, rng, drop_prob=drop_prob) for s in chosen]
        return make_batch(chosen, self.labels[indices], self.max_len)

    def order(self, *, shuffle: bool = True, seed: int = 0, epoch: int = 0) -> np.ndarray:
        """The order in which ``batches`` visits the sketches in one epoch (a permutation)."""
        if not shuffle:
            return np.arange(len(self))
        return np.random.default_rng([seed, epoch]).permutation(len(self))

    def num_batches(self, batch_size: int, *, drop_last: bool = True) -> int:
        """How many batches one epoch of ``batches`` yields."""
        full, rest = divmod(len(self), batch_size)
        return full + (0 if drop_last or rest == 0 else 1)

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        epoch: int = 0,
        augment: bool = False,
        drop_prob: float = 0.0,
        drop_last: bool = True,
        start_batch: int = 0,
    ) -> Iterator[Batch]:
        """One epoch of batches, the same for the same ``(seed, epoch)``.

        Batch ``k`` (and its augmentation) depends only on ``(seed, epoch, k)``, so a run
        resumed with ``start_batch=k`` sees exactly the batches it would have seen.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if drop_prob > 0 and not augment:
            raise ValueError("drop_prob > 0 needs augment=True (it is part of the augmentation)")
        if drop_last and len(self) < batch_size:
            # Yielding nothing would make a training loop spin without ever taking a step.
            raise ValueError(
                f"the dataset has {len(self)} sketches, fewer than batch_size={batch_size} with "
                "drop_last=True: use a smaller batch or drop_last=False"
            )
        order = self.order(shuffle=shuffle, seed=seed, epoch=epoch)
        count = self.num_batches(batch_size, drop_last=drop_last)
        return self._iterate(
            order, batch_size, range(start_batch, count), seed, epoch, augment, drop_prob
        )

    def _iterate(self, order, batch_size, batch_numbers, seed, epoch, augment, drop_prob):
        for k in batch_numbers:
            rng = np.random.default_rng([seed, epoch, k, 1]) if augment else None
            indices = order[k * batch_size : (k + 1) * batch_size]
            yield self.batch(indices, augment=augment, rng=rng, drop_prob=drop_prob)


D = TypeVar("D")


@dataclass
class DataSplits(Generic[D]):
    """Train, valid and test datasets sharing one scale factor, class list and ``N_max`` (stroke
    datasets, or the image datasets of :mod:`sketchrnn.image_data` wrapping them).

    ``dropped_too_long`` counts, per source file, the sketches left out for being longer than
    ``max_len``; ``skipped_invalid`` lists, per file, the invalid drawings passed over when
    reading with ``skip_invalid=True``.
    """

    train: D
    valid: D
    test: D
    scale_factor: float
    classes: list[str]
    dropped_too_long: dict[str, int] = field(default_factory=dict)
    skipped_invalid: dict[str, list[str]] = field(default_factory=dict)

    @property
    def max_len(self) -> int:
        return int(self.train.max_len)  # type: ignore[attr-defined]


# ----------------------------------------------------------------------------- reading


def assign_splits(
    sketches: SketchSet,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    *,
    name: str = "",
) -> SketchSet:
    """A copy of ``sketches`` where every sketch without a split (``""``) gets one.

    Each class is split on its own (so every class appears in every split when it has enough
    sketches), by a permutation seeded from ``seed``, ``name`` (e.g. the file name) and the
    class: adding another file or class never changes the split of the others. Valid and test
    get ``round(n * fraction)`` sketches of a class, train the rest.
    """
    if len(fractions) != 3 or min(fractions) < 0 or not np.isclose(sum(fractions), 1.0):
        raise ValueError(
            f"split fractions (train, valid, test) must be >= 0 and sum to 1: {fractions}"
        )
    splits = list(sketches.splits)
    unsplit = [i for i, s in enumerate(splits) if s == ""]
    for label in sorted({sketches.labels[i] for i in unsplit}):
        members = [i for i in unsplit if sketches.labels[i] == label]
        key = zlib.crc32(f"{name}\0{label}".encode())
        shuffled = np.random.default_rng([seed, key]).permutation(members)
        n_valid = round(len(members) * fractions[1])
        n_test = min(round(len(members) * fractions[2]), len(members) - n_valid)
        for rank, i in enumerate(shuffled):
            splits[i] = (
                "valid" if rank < n_valid else "test" if rank < n_valid + n_test else "train"
            )
    return SketchSet(list(sketches.strokes), list(sketches.labels), splits, sketches.scale_factor)


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
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    if not paths:
        raise ValueError("no data files given")
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
        scale_factor = S.scale_factor(kept["train"][0])
    n_max = max_len if pad_to_max_len else max(S.max_length(kept[s][0]) for s in SPLITS)
    datasets = {
        split: SketchDataset(S.normalize(sk, scale_factor), labels, classes, scale_factor, n_max)
        for split, (sk, labels) in kept.items()
    }
    return DataSplits(
        datasets["train"], datasets["valid"], datasets["test"], scale_factor, classes, dropped
    )
