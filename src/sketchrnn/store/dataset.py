"""Datasets over a packed store: :class:`StoreDataset` and :func:`store_datasets`.

A :class:`StoreDataset` is a :class:`sketchrnn.datasets.SketchDataset` (same attributes, same
``batch``/``order``/``batches``) that holds no sketch of its own: only ``index`` (the store
positions of its sketches) and ``labels``, two int64 arrays. A batch is gathered from the
store's memory-mapped points with vectorised indexing (``np.repeat``/``cumsum`` over the
batch's rows, no Python loop per sketch), clipped and normalised as
:func:`sketchrnn.data.load_datasets` does, augmented, and padded into a :class:`Batch`.

**Same numbers as the per-sketch path.** :func:`augment_packed` draws the same random numbers
in the same order as :func:`sketchrnn.strokes.augment` called sketch after sketch (one
``rng.random`` call covering, per sketch, the ``n`` point-dropping draws when ``n >= 3`` and
the two scale draws), and does the same float32 arithmetic, so ``StoreDataset.batch`` equals
``SketchDataset.batch`` for the same data, indices and ``rng``, with or without augmentation
(to the sign of zero: a ``-0.0`` offset may come out ``+0.0``).

**Sharing.** The points stay in the page cache, mapped read-only: DataLoader workers (forked)
and DDP ranks on one machine read the same physical pages; only ``index`` and ``labels``
(16 bytes a sketch) are per process. Pickling a dataset (spawned workers) pickles the store
as its path, and the receiver maps the files again.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch

from sketchrnn import strokes as S
from sketchrnn.datasets import Batch, DataSplits, SketchDataset
from sketchrnn.io.files import SketchFileError
from sketchrnn.io.sketchset import SPLITS
from sketchrnn.store.format import PackedStore, open_store
from sketchrnn.store.manifest import SPLIT_CODES, offset_std

__all__ = [
    "StoreDataset",
    "store_datasets",
    "gather_points",
    "augment_packed",
    "packed_to_stroke5",
]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike


# ----------------------------------------------------------------------------- vectorised


def gather_points(points: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Rows ``points[starts[i] : starts[i] + lengths[i]]`` of every ``i``, one after the other,
    as float32 ``(lengths.sum(), 3)``: one fancy index into the mapping."""
    total = int(lengths.sum())
    first = np.cumsum(lengths) - lengths  # where each sketch starts in the output
    rows = np.arange(total, dtype=np.int64) + np.repeat(starts - first, lengths)
    return points[rows].astype(np.float32)


def _positions(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For packed rows: the sketch of each row, and the row's position within its sketch."""
    total = int(lengths.sum())
    sketch = np.repeat(np.arange(len(lengths)), lengths)
    within = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return sketch, within


def _normalise(points: np.ndarray, offset_limit: float | None, scale_factor: float) -> None:
    """In place, the float32 operations of :func:`strokes.clamp_offsets` then
    :func:`strokes.normalize`."""
    if offset_limit is not None:
        np.clip(points[:, 0:2], -offset_limit, offset_limit, out=points[:, 0:2])
    points[:, 0:2] /= float(scale_factor)


def augment_packed(
    points: np.ndarray,
    lengths: np.ndarray,
    rng: np.random.Generator,
    scale_range: tuple[float, float] | None = (0.9, 1.1),
    drop_prob: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`strokes.augment` of every sketch of a packed batch, with the same draws.

    ``points`` float32 ``(lengths.sum(), 3)`` (scaled in place when nothing is dropped),
    ``lengths`` ``(batch,)``; returns the new ``(points, lengths)``. Point dropping: an
    interior pen-down point after a pen-down point goes with probability ``drop_prob``, its
    offset merged into the next point; then ``dx`` and ``dy`` of each sketch are multiplied by
    two factors from ``U(scale_range)``.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    dropping = drop_prob > 0
    scaling = scale_range is not None
    draws_per = (np.where(lengths >= 3, lengths, 0) if dropping else 0) + (2 if scaling else 0)
    draws_per = np.broadcast_to(draws_per, lengths.shape)
    draws = rng.random(int(draws_per.sum()))
    block = np.cumsum(draws_per) - draws_per
    if dropping and len(points):
        sketch, within = _positions(lengths)
        pen = points[:, 2]
        n = lengths[sketch]
        after_down = np.zeros(len(points), dtype=bool)
        after_down[1:] = pen[:-1] == 0  # only read where within >= 1: same sketch
        droppable = (n >= 3) & (within >= 1) & (within < n - 1) & (pen == 0) & after_down
        candidates = np.flatnonzero(droppable)
        drop = np.zeros(len(points), dtype=bool)
        drop[candidates] = draws[block[sketch[candidates]] + within[candidates]] < drop_prob
        if drop.any():
            keep = ~drop
            # The first and last row of a sketch always stay, so no merge crosses sketches.
            group = np.cumsum(keep) - keep
            out = np.zeros((int(keep.sum()), 3), dtype=np.float32)
            np.add.at(out[:, 0], group, points[:, 0])
            np.add.at(out[:, 1], group, points[:, 1])
            out[:, 2] = points[keep, 2]
            lengths = np.bincount(sketch[keep], minlength=len(lengths)).astype(np.int64)
            points = out
    if scale_range is not None:
        low, high = scale_range
        last = block + draws_per
        sx = (low + (high - low) * draws[last - 2]).astype(np.float32)
        sy = (low + (high - low) * draws[last - 1]).astype(np.float32)
        points[:, 0] *= np.repeat(sx, lengths)
        points[:, 1] *= np.repeat(sy, lengths)
    return points, lengths


def packed_to_stroke5(points: np.ndarray, lengths: np.ndarray, max_len: int) -> np.ndarray:
    """Packed stroke-3 rows -> ``(batch, max_len + 1, 5)`` float32 as
    :func:`sketchrnn.datasets.make_batch` builds it: the start token, the sketch in stroke-5,
    then ``(0, 0, 0, 0, 1)`` padding."""
    batch, steps = len(lengths), max_len + 1
    if len(lengths) and int(np.max(lengths)) > max_len:
        raise S.SketchError(f"a sketch has {int(np.max(lengths))} points, more than {max_len}")
    out = np.zeros((batch, steps, 5), dtype=np.float32)
    out[:, 0] = S.START_TOKEN
    out[:, 1:, 4] = 1.0
    if len(points):
        sketch, within = _positions(lengths)
        rows = np.zeros((len(points), 5), dtype=np.float32)
        rows[:, 0:2] = points[:, 0:2]
        rows[:, 3] = points[:, 2]
        rows[:, 2] = 1.0 - rows[:, 3]
        out.reshape(batch * steps, 5)[sketch * steps + 1 + within] = rows
    return out


# ----------------------------------------------------------------------------- the dataset


class _SketchView(Sequence):
    """``dataset.sketches``: the normalised float32 ``(n, 3)`` sketches, made on demand."""

    def __init__(self, dataset: StoreDataset):
        self._dataset = dataset

    def __len__(self) -> int:
        return len(self._dataset)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        d = self._dataset
        row = int(d.index[i])
        start, stop = d.store.offsets[row], d.store.offsets[row + 1]
        points = np.array(d.store.points[start:stop], dtype=np.float32)
        d.store.check_points(np.array([row]), np.array([len(points)]), points)
        _normalise(points, d.offset_limit, d.scale_factor)
        return points


class StoreDataset(SketchDataset):
    """One split of a packed store, normalised, with the interface of ``SketchDataset``.

    ``index`` ``(len,)`` int64: the store position of each sketch; ``labels`` ``(len,)``
    int64; ``sketches`` a lazy sequence of the normalised sketches (each made when indexed).
    Offsets are clipped to ``offset_limit`` and divided by ``scale_factor`` per batch.
    ``check_lengths=False`` skips checking that no sketch is longer than ``max_len`` (for
    callers that selected them so).
    """

    def __init__(
        self,
        store: PackedStore,
        index: np.ndarray,
        scale_factor: float,
        max_len: int,
        *,
        offset_limit: float | None = 1000.0,
        labels: np.ndarray | None = None,
        check_lengths: bool = True,
    ):
        self.store = store
        self.index = np.asarray(index, dtype=np.int64).reshape(-1)
        if labels is None:
            labels = store.labels[self.index]
        self.labels = np.asarray(labels, dtype=np.int64).reshape(len(self.index))
        self.classes = list(store.classes)
        self.scale_factor = float(scale_factor)
        self.max_len = int(max_len)
        self.offset_limit = None if offset_limit is None else float(offset_limit)
        if check_lengths and len(self.index):
            longest = int(store.lengths_of(self.index).max())
            if longest > self.max_len:
                raise ValueError(f"a sketch has {longest} points, more than max_len={max_len}")

    @property
    def sketches(self) -> _SketchView:  # type: ignore[override]
        return _SketchView(self)

    def subset(self, indices: Sequence[int] | np.ndarray) -> StoreDataset:
        """The sketches at ``indices`` (ints, or a bool mask), same classes, scale and N_max."""
        chosen = np.arange(len(self))[np.asarray(indices)]
        return StoreDataset(
            self.store,
            self.index[chosen],
            self.scale_factor,
            self.max_len,
            offset_limit=self.offset_limit,
            labels=self.labels[chosen],
            check_lengths=False,
        )

    def __len__(self) -> int:
        return len(self.index)

    def __repr__(self) -> str:
        return (
            f"StoreDataset({len(self)} sketches of {os.fspath(self.store.path)!r}, "
            f"{len(self.classes)} classes, max_len={self.max_len}, "
            f"scale_factor={self.scale_factor:.4g})"
        )

    @property
    def lengths(self) -> np.ndarray:
        """``(len(self),)`` number of points of every sketch."""
        return self.store.lengths_of(self.index)

    def verify(self) -> None:
        """Check the store's files against the digests recorded when it was packed (reads
        the points once per process: :meth:`PackedStore.verify`). The Trainer calls it
        before its first step."""
        self.store.verify()

    def batch(
        self,
        indices: Sequence[int] | np.ndarray,
        augment: bool = False,
        rng: np.random.Generator | None = None,
        *,
        drop_prob: float = 0.0,
    ) -> Batch:
        """The sketches at ``indices`` as a :class:`Batch`, as ``SketchDataset.batch``."""
        if drop_prob > 0 and not augment:
            raise ValueError("drop_prob > 0 needs augment=True (it is part of the augmentation)")
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        rows = self.index[indices]
        labels = self.labels[indices]
        starts = self.store.offsets[rows]
        lengths = self.store.offsets[rows + 1] - starts
        points = gather_points(self.store.points, starts, lengths)
        self.store.check_points(rows, lengths, points)  # a damaged store: refused, never trained on
        _normalise(points, self.offset_limit, self.scale_factor)
        if augment:
            rng = rng if rng is not None else np.random.default_rng()
            points, lengths = augment_packed(points, lengths, rng, drop_prob=drop_prob)
        strokes = packed_to_stroke5(points, lengths, self.max_len)
        return Batch(
            torch.from_numpy(strokes),
            torch.from_numpy(np.asarray(lengths, dtype=np.int64)),
            torch.from_numpy(labels),
        )


# ----------------------------------------------------------------------------- splits


def _check_pack_options(store: PackedStore, given: dict[str, Any]) -> None:
    """Options that act at pack time must agree with the pack's where they would matter."""
    packed = store.manifest.get("options", {})
    sources = store.sources
    assigned = any(s.get("splits_assigned", 0) for s in sources)
    skipped = any(s.get("dropped", {}).get("invalid", 0) for s in sources)
    for key, matters in (
        ("split_fractions", assigned),
        ("split_seed", assigned),
        ("skip_invalid", skipped),
    ):
        value = given.get(key)
        if value is None or key not in packed:
            continue
        value = [float(x) for x in value] if key == "split_fractions" else value
        if matters and value != packed[key]:
            raise ValueError(
                f"{store.path}: packed with {key}={packed[key]!r}, asked for {value!r}: "
                "pack the files again with the new setting"
            )


def _train_std_streaming(
    store: PackedStore, mask: np.ndarray, offset_limit: float | None, chunk: int = 1 << 22
) -> float:
    """The train offsets' std for a clipping the pack did not gather sums for: one pass
    over the points in chunks (slow for a large store: only for an unusual offset_limit)."""
    total = count = squares = 0.0
    offsets, n = store.offsets, len(store)
    start = 0
    while start < n:
        stop = int(min(n, np.searchsorted(offsets, offsets[start] + chunk, side="right")))
        stop = max(stop, start + 1)
        lengths = np.diff(offsets[start : stop + 1])
        rows = np.repeat(mask[start:stop], lengths)
        xy = np.array(store.points[offsets[start] : offsets[stop], 0:2], dtype=np.float32)[rows]
        if offset_limit is not None:
            np.clip(xy, -offset_limit, offset_limit, out=xy)
        values = xy.astype(np.float64)
        count += values.size
        total += float(values.sum())
        squares += float((values**2).sum())
        start = stop
    return offset_std(count, total, squares)


def store_datasets(
    path: PathLike | PackedStore,
    max_len: int = 250,
    *,
    too_long: Literal["drop", "error"] = "drop",
    scale_factor: float | None = None,
    offset_limit: float | None = 1000.0,
    pad_to_max_len: bool = False,
    split_fractions: tuple[float, float, float] | None = None,
    split_seed: int | None = None,
    skip_invalid: bool | None = None,
) -> DataSplits:
    """Train/valid/test datasets over a packed store, as :func:`sketchrnn.data.load_datasets`
    gives them for the files the store was packed from.

    The same length filter (``too_long="drop"`` counts dropped sketches per source file in
    ``dropped_too_long``, ``"error"`` raises :class:`SketchFileError` naming the source and
    sketch), ``offset_limit`` clipping, scale factor (the std of the kept train offsets,
    unless given: exact from the pack's per-length sums when ``offset_limit`` is the pack's,
    else one pass over the points) and ``N_max`` (the longest kept sketch, or ``max_len``
    with ``pad_to_max_len``). ``split_fractions``, ``split_seed`` and ``skip_invalid`` act
    when packing: given here, they must agree with the pack's wherever they changed anything.
    Costs a few vectorised passes over the ``(n,)`` index arrays.
    """
    if too_long not in ("drop", "error"):
        raise ValueError(f"too_long must be 'drop' or 'error', got {too_long!r}")
    if max_len < 1:
        raise ValueError(f"max_len must be at least 1, got {max_len}")
    store = path if isinstance(path, PackedStore) else open_store(path)
    given = {"split_fractions": split_fractions, "split_seed": split_seed}
    _check_pack_options(store, {**given, "skip_invalid": skip_invalid})
    splits = store.splits
    # One pass over the offsets in chunks: the too-long mask and the longest kept sketch.
    too = np.empty(len(store), dtype=bool)
    longest = 0
    for first, lengths in store.length_chunks():
        chunk_too = lengths > max_len
        too[first : first + len(lengths)] = chunk_too
        if not chunk_too.all():
            longest = max(longest, int(lengths[~chunk_too].max()))
    sources = store.sources
    if too_long == "error" and too.any():
        bad = int(np.argmax(too))
        source = next(s for s in sources if s["first"] <= bad < s["first"] + s["count"])
        raise SketchFileError(
            source["path"],
            f"sketch #{bad - source['first']} ({SPLITS[int(splits[bad])]}) has "
            f"{int(store.lengths_of([bad])[0])} points, more than max_len={max_len}"
            " (raise max_len or use too_long='drop')",
        )
    dropped: dict[str, int] = {}
    for source in sources:
        name, first = source["path"], source["first"]
        count = np.count_nonzero(too[first : first + source["count"]])
        dropped[name] = dropped.get(name, 0) + int(count)
        dropped[name] += int(source.get("dropped", {}).get("too_long", 0))
        if dropped[name]:
            logger.warning(
                "%s: dropped %d of %d sketches longer than max_len=%d",
                name,
                dropped[name],
                source["read"] if "read" in source else source["count"],
                max_len,
            )
    keep = ~too
    names = ", ".join(dict.fromkeys(s["path"] for s in sources))
    if not keep.any():
        raise ValueError(f"no sketches left in {names} (all longer than max_len={max_len})")
    is_train = splits == SPLIT_CODES["train"]
    if scale_factor is None:
        if not (keep & is_train).any():
            raise ValueError(
                f"no training sketches in {names} to compute the scale factor from "
                "(all too long, or no train split); pass scale_factor to use a known one"
            )
        packed_limit = store.offset_limit
        same_limit = (offset_limit is None and packed_limit is None) or (
            offset_limit is not None
            and packed_limit is not None
            and float(offset_limit) == float(packed_limit)
        )
        try:
            if same_limit:
                scale_factor = store.scale_factor(max_len)
            else:
                logger.info("%s: scale factor for offset_limit=%s", store.path, offset_limit)
                scale_factor = _train_std_streaming(store, keep & is_train, offset_limit)
        except S.SketchError as e:
            raise SketchFileError(
                store.path,
                f"no scale factor from the train sketches of at most {max_len} points: {e}",
            ) from None
    n_max = max_len if pad_to_max_len else longest
    datasets = {}
    for name, code in SPLIT_CODES.items():
        index = np.flatnonzero(keep & (splits == code))
        datasets[name] = StoreDataset(
            store, index, scale_factor, n_max, offset_limit=offset_limit, check_lengths=False
        )
    skipped = {s["path"]: list(s["skipped_invalid"]) for s in sources if s.get("skipped_invalid")}
    return DataSplits(
        datasets["train"],
        datasets["valid"],
        datasets["test"],
        float(scale_factor),
        list(store.classes),
        dropped,
        skipped,
    )
