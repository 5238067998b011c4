"""PNG output of sketches or of rendered images (Pillow), written atomically."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Literal

import numpy as np

from sketchrnn.io.files import SketchFileError, atomic_path
from sketchrnn.io.raster import Sketch, render_grid

__all__ = ["write_png", "image_to_uint8"]


def image_to_uint8(image: np.ndarray) -> np.ndarray:
    """A float image in ``[0, 1]`` as 8-bit pixels for saving.

    ``(H, W)`` is an ink image (1 = ink) and becomes dark ink on white; ``(H, W, 3)`` is RGB.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        image = 1.0 - image
    elif not (image.ndim == 3 and image.shape[2] == 3):
        raise ValueError(f"expected an (H, W) ink image or (H, W, 3) RGB image, got {image.shape}")
    if not np.isfinite(image).all():
        raise ValueError("image contains NaN or infinite values")
    return np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)


def write_png(
    path: str | os.PathLike,
    sketches_or_image: Sketch | Sequence[Sketch] | np.ndarray,
    *,
    ncols: int | None = None,
    cell: int = 128,
    line_width: float = 2.0,
    padding: float = 0.1,
    colors: Sequence[str | Sequence[float]] | None = None,
    color_by: Literal["stroke", "sketch"] = "stroke",
    prefix_points: Sequence[int] | None = None,
) -> None:
    """Write one sketch, a grid of sketches, or an already rendered image as a PNG file.

    ``sketches_or_image`` is read as:

    * a stroke-3 array ``(n, 3)``: one sketch;
    * any other 2-D array ``(H, W)``: an ink image in ``[0, 1]`` (1 = ink), saved as dark ink
      on white; a 3-D array ``(H, W, 3)``: an RGB image in ``[0, 1]``;
    * a list of sketches (stroke-3 arrays or polyline lists): a grid, see
      :func:`sketchrnn.io.raster.render_grid` for ``ncols``, ``cell``, ``colors``, ``color_by``
      and ``prefix_points`` (completions: the given prefix in one colour, the rest in another).

    The file appears only once it is completely written.
    """
    data = sketches_or_image
    if isinstance(data, np.ndarray) and not (data.ndim == 2 and data.shape[1] == 3):
        image = data
    else:
        sketches = [data] if isinstance(data, np.ndarray) else list(data)
        image = render_grid(
            sketches,
            ncols,
            cell,
            line_width,
            padding,
            colors=colors,
            color_by=color_by,
            prefix_points=prefix_points,
        )
    pixels = image_to_uint8(image)

    from PIL import Image

    try:
        with atomic_path(path) as tmp:
            Image.fromarray(pixels).save(tmp, format="PNG")
    except OSError as e:
        raise SketchFileError(path, f"cannot write PNG: {e}") from e
