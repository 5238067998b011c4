"""Datasets of (image, strokes) pairs for SketchEmbedNet (Wang et al. 2021, Appendix G).

Each sketch is rendered once, when the dataset is built, by the numpy rasteriser
(:func:`sketchrnn.raster.rasterize`) to a greyscale ``image_size x image_size`` image (ink 1),
scaled and centred with a margin of 10% of the side rounded to whole pixels; the stroke
targets are the normalised stroke-5 rows of :mod:`sketchrnn.data` (offsets divided by the
training set's standard deviation, sequences of at most ``max_len`` = 64 points; longer ones
are dropped and counted). Images are kept as uint8 (a quarter of the memory of float32) and
turned into float tensors per batch.

Sources: any file :func:`sketchrnn.io.formats.read_sketches` reads (sketch-rnn ``.npz``,
Quick, Draw! ``.ndjson``/``.bin``, SVG, Omniglot stroke ``.zip``), and drawings sampled from
sketch-rnn models (:func:`sketchrnn.model_samples.sample_magenta_models`, cached as ``.npz``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from sketchrnn import strokes as S
from sketchrnn.data import (
    DataSplits,
    SketchDataset,
    assign_splits,
    datasets_from_sketchset,
    make_batch,
)
from sketchrnn.io.files import SketchFileError
from sketchrnn.io.formats import read_sketches
from sketchrnn.io.sketchset import SketchSet
from sketchrnn.raster import image_padding, rasterize_batch

__all__ = [
    "ImageBatch",
    "ImageSketchDataset",
    "ImageOnlyBatch",
    "ImageOnlyDataset",
    "image_padding",
    "render_images",
    "load_image_datasets",
]

PathLike = str | os.PathLike


class ImageBatch(NamedTuple):
    """A batch of image and stroke pairs.

    ``images`` ``(batch, C, S, S)`` float32 in ``[0, 1]`` (1 = ink); ``strokes``,
    ``lengths``, ``labels`` as in :class:`sketchrnn.data.Batch`: ``(batch, N_max + 1, 5)``
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
    """A :class:`sketchrnn.data.SketchDataset` with each sketch's image rendered once.

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
    from sketchrnn.store import is_store

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
