"""Datasets and batching in memory: normalised stroke-3 sketches with class labels, the
train/valid/test splits (:func:`assign_splits`), padding into stroke-5 :class:`Batch` tensors
and augmentation; the same sketches rendered once into images for the models that read pixels
(:class:`ImageSketchDataset`, :class:`ImageOnlyDataset`). Every dataset is a
:class:`BatchSource`: what the Trainer and evaluation ask of one. Reading files into them is
:mod:`sketchrnn.data`; a packed store on disk gives datasets of the same interface
(:mod:`sketchrnn.store`)."""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

import numpy as np
import torch

from sketchrnn import strokes as S
from sketchrnn.io.raster import image_padding, rasterize_batch
from sketchrnn.io.sketchset import SketchSet

__all__ = [
    "BatchSource",
    "Batch",
    "to_device",
    "make_batch",
    "SketchDataset",
    "DataSplits",
    "assign_splits",
    "ImageBatch",
    "ImageOnlyBatch",
    "render_images",
    "ImageSketchDataset",
    "ImageOnlyDataset",
]


class BatchSource(Protocol):
    """A data set as the Trainer and evaluation use it: its size and the batch of the items
    at ``indices``, of the model's batch type (a NamedTuple of tensors: :class:`Batch`,
    :class:`ImageBatch`, :class:`ImageOnlyBatch`). ``augment`` and ``drop_prob`` are the
    stroke augmentation (:func:`strokes.augment`) drawn from ``rng``; a data set that cannot
    be augmented refuses them. A model builds its own from sketches
    (:meth:`sketchrnn.models.interface.SketchModel.dataset`)."""

    def __len__(self) -> int: ...

    def batch(
        self,
        indices: Sequence[int] | np.ndarray,
        augment: bool = False,
        rng: np.random.Generator | None = None,
        *,
        drop_prob: float = 0.0,
    ) -> Any: ...


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
    datasets, or the image datasets wrapping them).

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


# ----------------------------------------------------------------------------- images


class ImageBatch(NamedTuple):
    """A batch of image and stroke pairs.

    ``images`` ``(batch, C, S, S)`` float32 in ``[0, 1]`` (1 = ink); ``strokes``,
    ``lengths``, ``labels`` as in :class:`sketchrnn.datasets.Batch`: ``(batch, N_max + 1, 5)``
    with the start token in row 0, ``(batch,)``, ``(batch,)``.
    """

    images: torch.Tensor
    strokes: torch.Tensor
    lengths: torch.Tensor
    labels: torch.Tensor


class ImageOnlyBatch(NamedTuple):
    """A batch of images alone (what the Conv-VAE trains on): ``images`` ``(batch, C, S, S)``
    float32 in ``[0, 1]`` (1 = ink)."""

    images: torch.Tensor


def render_images(
    sketches: Sequence[np.ndarray], image_size: int = 28, line_width: float = 1.5
) -> np.ndarray:
    """Render stroke-3 sketches to uint8 ``(n, image_size, image_size)`` (255 = ink), fitted,
    centred and padded as in Appendix G; ``line_width`` in pixels."""
    out = np.empty((len(sketches), image_size, image_size), dtype=np.uint8)
    chunk = 256  # bounds the float32 working memory
    for start in range(0, len(sketches), chunk):
        part = rasterize_batch(
            sketches[start : start + chunk], image_size, line_width, image_padding(image_size)
        )
        out[start : start + chunk] = np.rint(part * 255.0).astype(np.uint8)
    return out


class ImageSketchDataset:
    """A :class:`sketchrnn.datasets.SketchDataset` with each sketch's image rendered once.

    Exposes what the Trainer and evaluation use: ``len``, ``batch``, ``classes``,
    ``scale_factor``, ``max_len``, ``lengths``. ``in_channels`` > 1 repeats the grey image
    (for encoders built for RGB).
    """

    def __init__(
        self,
        sketches: SketchDataset,
        image_size: int = 28,
        *,
        in_channels: int = 1,
        line_width: float = 1.5,
    ):
        if image_size < 16:
            raise ValueError(
                f"image_size must be >= 16 (the encoders pool 4 times), got {image_size}"
            )
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {in_channels}")
        self.sketches = sketches
        self.image_size = int(image_size)
        self.in_channels = int(in_channels)
        self.images = render_images(sketches.sketches, image_size, line_width)

    def __len__(self) -> int:
        return len(self.sketches)

    def __repr__(self) -> str:
        return (
            f"ImageSketchDataset({len(self)} sketches, {len(self.classes)} classes, "
            f"{self.image_size}x{self.image_size}, max_len={self.max_len})"
        )

    @property
    def classes(self) -> list[str]:
        return self.sketches.classes

    @property
    def scale_factor(self) -> float:
        return self.sketches.scale_factor

    @property
    def max_len(self) -> int:
        return self.sketches.max_len

    @property
    def labels(self) -> np.ndarray:
        return self.sketches.labels

    @property
    def lengths(self) -> np.ndarray:
        return self.sketches.lengths

    def image_tensor(self, indices: Sequence[int] | np.ndarray) -> torch.Tensor:
        """Float images ``(len(indices), in_channels, S, S)`` in ``[0, 1]``."""
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        images = torch.from_numpy(self.images[indices]).float().div_(255.0).unsqueeze(1)
        return images.expand(-1, self.in_channels, -1, -1).contiguous()

    def batch(
        self,
        indices: Sequence[int] | np.ndarray,
        augment: bool = False,
        rng: np.random.Generator | None = None,
        *,
        drop_prob: float = 0.0,
    ) -> ImageBatch:
        """The pairs at ``indices`` as an :class:`ImageBatch`. ``augment`` must be off: the
        images are rendered once, so augmented strokes would no longer match them."""
        if augment or drop_prob > 0:
            raise ValueError(
                "image datasets are rendered once and cannot be augmented (the strokes would "
                "stop matching their images): train with augment=False and drop_prob=0"
            )
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        data = self.sketches
        b = make_batch([data.sketches[i] for i in indices], data.labels[indices], data.max_len)
        return ImageBatch(self.image_tensor(indices), b.strokes, b.lengths, b.labels)


class ImageOnlyDataset:
    """Images without strokes, for models of pixels alone (the Conv-VAE): ``len`` and
    ``batch`` as the Trainer asks of a dataset.

    ``images`` ``(N, S, S)`` (greyscale, given a channel axis) or ``(N, C, S, S)``, in
    ``[0, 1]`` with ink 1 (the Bernoulli likelihood needs that range); ValueError otherwise.
    """

    def __init__(self, images: np.ndarray | torch.Tensor):
        data = torch.as_tensor(np.asarray(images, dtype=np.float32))
        if data.dim() == 3:
            data = data.unsqueeze(1)  # greyscale (N, S, S) -> (N, 1, S, S)
        if data.dim() != 4:
            raise ValueError(f"images must be (N, S, S) or (N, C, S, S), got {tuple(data.shape)}")
        if len(data) == 0:
            raise ValueError("no images to train on")
        if float(data.min()) < 0 or float(data.max()) > 1:
            raise ValueError("images must lie in [0, 1] (1 = ink) for the Bernoulli likelihood")
        self.images = data

    def __len__(self) -> int:
        return len(self.images)

    def __repr__(self) -> str:
        return f"ImageOnlyDataset({len(self)} images of {tuple(self.images.shape[1:])})"

    def batch(
        self,
        indices: Sequence[int] | np.ndarray,
        augment: bool = False,
        rng: np.random.Generator | None = None,
        *,
        drop_prob: float = 0.0,
    ) -> ImageOnlyBatch:
        """The images at ``indices``. There is no image augmentation: ``augment`` must be off."""
        if augment or drop_prob > 0:
            raise ValueError(
                "image-only datasets are not augmented: train with augment=False and drop_prob=0"
            )
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        return ImageOnlyBatch(self.images[torch.from_numpy(indices)])
