"""Embeddings of drawings: a model's embedding of images as a function (:func:`model_embedding`,
what few-shot classification scores), unit length (:func:`l2_normalise`), and the embeddings
of any image or sketch files under a SketchEmbedNet (``sketchrnn embed vectors``): images read
as the models take them, sketch files rendered as their training images were."""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sketchrnn.datasets import render_images
from sketchrnn.io.files import SketchFileError, atomic_path
from sketchrnn.io.formats import read_sketches
from sketchrnn.models import SketchModel, load_model

__all__ = [
    "EmbedFn",
    "l2_normalise",
    "model_embedding",
    "IMAGE_SUFFIXES",
    "read_image_file",
    "load_embed_net",
    "embed_files",
]

EmbedFn = Callable[[np.ndarray], np.ndarray]
"""Images ``(N, H, W)`` or ``(N, C, H, W)`` float32 -> embeddings ``(N, D)``."""

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff")


def l2_normalise(embeddings: np.ndarray) -> np.ndarray:
    """Each row of ``(N, D)`` scaled to unit length, in place (float arrays) and returned."""
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    # An all-zero embedding (e.g. a blank image through a ReLU net) stays zero instead of NaN.
    embeddings /= np.maximum(norms, 1e-12)
    return embeddings


def model_embedding(model: SketchModel, image_size: int, batch_size: int = 256) -> EmbedFn:
    """An :data:`EmbedFn` from a model that embeds images (``model.embeds_images``:
    SketchEmbedNet, ConvVAE): its ``embed(images) -> mu``, given images of the
    ``config.image_size`` it was trained at.

    Greyscale ``(N, S, S)`` images are given a channel axis (repeated for RGB encoders).
    ValueError for another model, or when ``image_size`` differs from the model's.
    """
    if not getattr(model, "embeds_images", False):
        raise ValueError(
            f"{type(model).__name__} has no image encoder: few-shot needs a SketchEmbedNet"
        )
    config = model.config
    if config.image_size != image_size:
        raise ValueError(
            f"the model takes {config.image_size}x{config.image_size} images but the episodes "
            f"are {image_size}x{image_size}: pass --image-size {config.image_size}"
        )
    in_channels = config.in_channels

    def embed(images: np.ndarray) -> np.ndarray:
        batch = torch.as_tensor(np.asarray(images, dtype=np.float32))
        if batch.dim() == 3:
            batch = batch.unsqueeze(1).expand(-1, in_channels, -1, -1)
        out = [
            model.embed(batch[i : i + batch_size]).cpu() for i in range(0, len(batch), batch_size)
        ]
        return torch.cat(out).numpy()

    return embed


def read_image_file(path: str | os.PathLike, image_size: int) -> np.ndarray:
    """A PNG/JPEG/... file as an ink image ``(S, S)`` float32 in [0, 1] (ink = 1): converted
    to grey, resized, inverted when it is dark ink on light paper. SketchFileError for an
    unreadable or blank image."""
    try:
        with Image.open(path) as image:
            grey = image.convert("L").resize((image_size, image_size), Image.Resampling.BOX)
    except OSError as err:
        raise SketchFileError(path, f"not a readable image ({err})") from None
    pixels = np.asarray(grey, dtype=np.float32) / 255.0
    if pixels.mean() > 0.5:  # light paper: make ink the bright value the models want
        pixels = 1.0 - pixels
    if pixels.max() <= 0.0:
        raise SketchFileError(path, "the image is empty (no ink)")
    return pixels


def load_embed_net(path: str | os.PathLike) -> SketchModel:
    """The SketchEmbedNet saved at ``path`` (a model that embeds images and draws strokes);
    ValueError for any other model."""
    model = load_model(path)
    if not (model.embeds_images and model.draws_strokes):
        raise ValueError(
            f"{path}: a {type(model).__name__}, not a SketchEmbedNet (no image encoder with a "
            "stroke decoder)"
        )
    return model


def embed_files(
    model_path: str | os.PathLike,
    inputs: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    normalise: bool = False,
    batch_size: int = 256,
) -> int:
    """Write the embedding ``mu`` of each input to ``out`` and return how many were written.

    Inputs are image files (see :data:`IMAGE_SUFFIXES`; read by :func:`read_image_file`) or
    sketch files of any readable format, whose drawings are rendered as the model's training
    images were. ``normalise=True`` scales each vector to unit length (as few-shot
    classification uses them). ``out``: ``.npz`` (``embeddings`` ``(n, z)`` float32 and
    ``names``, no pickled objects) or ``.csv`` (a ``name`` column, then ``z0 ...``); names are
    the image path, or ``path#i`` for the i-th drawing of a sketch file. Nothing is written
    unless every input could be read.
    """
    out = Path(out)
    if out.suffix.lower() not in (".npz", ".csv"):
        raise ValueError(f"{out}: write the embeddings to a .npz or .csv file")
    if not inputs:
        raise ValueError("no inputs: give image files or sketch files")
    model = load_embed_net(model_path)
    size = model.config.image_size
    images, names = [], []
    for name in inputs:
        path = Path(name)
        if path.suffix.lower() in IMAGE_SUFFIXES:
            images.append(read_image_file(path, size)[None])
            names.append(str(path))
        else:
            drawings = read_sketches(path).strokes
            images.append(render_images(list(drawings), size).astype(np.float32) / 255.0)
            names += [f"{path}#{i}" for i in range(len(drawings))]
    vectors = model_embedding(model, size, batch_size)(np.concatenate(images))
    if normalise:
        vectors = l2_normalise(vectors)
    with atomic_path(out) as tmp:
        if out.suffix.lower() == ".npz":
            with open(tmp, "wb") as f:
                np.savez(f, embeddings=vectors, names=np.array(names, dtype=str))
        else:
            with open(tmp, "w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(["name", *(f"z{i}" for i in range(vectors.shape[1]))])
                for n, v in zip(names, vectors, strict=True):
                    writer.writerow([n, *(f"{x:.7g}" for x in v)])
    return len(names)
