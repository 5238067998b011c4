"""Batches made by DataLoader worker processes, in the order of ``dataset.batches``.

:func:`batch_loader` over any :class:`sketchrnn.datasets.SketchDataset` (a store's or not): forked
workers share a packed store's pages (only ``index`` and ``labels`` are per process), and a
batch travels back from a worker as numpy arrays.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from sketchrnn.datasets import Batch, SketchDataset

__all__ = ["EpochBatches", "BatchLoader", "batch_loader"]


class EpochBatches(torch.utils.data.Dataset):
    """Batch ``k`` of ``dataset.batches(batch_size, seed=..., epoch=..., ...)`` as item ``k``.

    A ``DataLoader(EpochBatches(...), batch_size=None, num_workers=w)`` yields exactly the
    batches of ``dataset.batches`` in the same order, built in ``w`` worker processes (see
    :func:`batch_loader`). Works over any ``SketchDataset``, a store's or not.
    """

    def __init__(
        self,
        dataset: SketchDataset,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        epoch: int = 0,
        augment: bool = False,
        drop_prob: float = 0.0,
        drop_last: bool = True,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.dataset = dataset
        self.batch_size = batch_size
        self.order = dataset.order(shuffle=shuffle, seed=seed, epoch=epoch)
        self.count = dataset.num_batches(batch_size, drop_last=drop_last)
        self.seed, self.epoch, self.augment, self.drop_prob = seed, epoch, augment, drop_prob

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, k: int) -> Batch:
        if not 0 <= k < self.count:
            raise IndexError(k)
        rng = np.random.default_rng([self.seed, self.epoch, k, 1]) if self.augment else None
        indices = self.order[k * self.batch_size : (k + 1) * self.batch_size]
        return self.dataset.batch(indices, augment=self.augment, rng=rng, drop_prob=self.drop_prob)


def _one_thread(_worker: int) -> None:
    torch.set_num_threads(1)  # the batching is numpy; torch threads would only compete


def _as_arrays(batch: Any) -> Any:
    """In a worker: the batch as numpy arrays, which travel through the worker's pipe as
    bytes. Tensors would each go through a new shared-memory segment (about 1.5x slower)."""
    return tuple(t.numpy() for t in batch)


def _same(batch: Any) -> Any:
    return batch


class BatchLoader:
    """Iterates the batches of an :class:`EpochBatches` made by DataLoader workers."""

    def __init__(self, items: EpochBatches, start_batch: int, num_workers: int, **extra: Any):
        self.items = items
        self.start_batch = start_batch
        self.loader = torch.utils.data.DataLoader(
            items,
            batch_size=None,
            sampler=range(start_batch, len(items)),
            num_workers=num_workers,
            collate_fn=_as_arrays if num_workers else _same,
            worker_init_fn=_one_thread if num_workers else None,
            **extra,
        )

    def __len__(self) -> int:
        return max(len(self.items) - self.start_batch, 0)

    def __iter__(self) -> Iterator[Batch]:
        if self.loader.num_workers == 0:
            yield from self.loader
            return
        for arrays in self.loader:
            yield Batch(*(torch.from_numpy(a) for a in arrays))


def batch_loader(
    dataset: SketchDataset,
    batch_size: int,
    *,
    num_workers: int = 0,
    start_batch: int = 0,
    prefetch_factor: int | None = None,
    **epoch: Any,
) -> BatchLoader:
    """The batches of ``dataset.batches(batch_size, start_batch=..., **epoch)``, in order,
    gathered by ``num_workers`` DataLoader processes (forked workers share the store's
    pages). ``epoch`` takes ``shuffle``, ``seed``, ``epoch``, ``augment``, ``drop_prob``,
    ``drop_last``."""
    items = EpochBatches(dataset, batch_size, **epoch)
    extra: dict[str, Any] = {}
    if num_workers and prefetch_factor is not None:
        extra["prefetch_factor"] = prefetch_factor
    return BatchLoader(items, start_batch, num_workers, **extra)
