"""The differentiable rasteriser (torch), for SketchEmbedNet's pixel loss.

SketchEmbedNet, Appendix A: cumulative sums give absolute points; both the prediction and
the ground truth are scaled and centred by the ground truth's bounds, so they share one
frame; pixel intensity is sigmoid(2 - 5 d), with d the Euclidean distance in pixels from the
pixel centre to the nearest pen-down segment. (The numpy renderer for images and PNGs is
:mod:`sketchrnn.io.raster`.)
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "PIXEL_INTENSITY_OFFSET",
    "PIXEL_INTENSITY_SLOPE",
    "absolute_bounds",
    "rasterize_differentiable",
]

# intensity = sigmoid(OFFSET - SLOPE * distance): sigmoid(2) = 0.88 on the line, 0.5 at 0.4 px,
# 0.05 at 1 px (Appendix A).
PIXEL_INTENSITY_OFFSET = 2.0
PIXEL_INTENSITY_SLOPE = 5.0
# Appendix A adds 1e6 to the distance of every pen-up segment; a pixel with no pen-down
# segment at all gets this distance, hence intensity 0.
_PEN_UP_DISTANCE = 1e6
# The nearest-segment search holds a few (batch, segments, pixels) tensors at a time; this
# bounds their size (elements). For a batch of 256 x 100 points at 84 x 84, forward + backward
# peaked at ~0.45 GB resident with it and ~2.4 GB unchunked, and 2**22 was also the fastest of
# 2**20..2**24 and unchunked (benchmarks/raster_torch.py). None = no chunking.
_DIFF_RASTER_ELEMENTS_PER_CHUNK: int | None = 1 << 22


def absolute_bounds(offsets: Tensor, lengths: Tensor) -> Tensor:
    """``(batch, 4)`` bounds ``(min_x, max_x, min_y, max_y)`` of the absolute points (cumulative
    sums of ``offsets`` ``(batch, time, 2)``) of the first ``lengths`` ``(batch,)`` points of
    each sketch; the same order as :func:`sketchrnn.strokes.bounds`. A sketch of length 0 gets
    zeros. Computed without gradient: bounds only ever come from the ground truth.
    """

    with torch.no_grad():
        points = offsets.cumsum(dim=1)
        steps = torch.arange(offsets.shape[1], device=offsets.device)
        valid = (steps.unsqueeze(0) < lengths.to(offsets.device).unsqueeze(1)).unsqueeze(-1)
        inf = torch.tensor(float("inf"), dtype=offsets.dtype, device=offsets.device)
        lo = torch.where(valid, points, inf).amin(dim=1)
        hi = torch.where(valid, points, -inf).amax(dim=1)
        empty = ~valid.any(dim=1)
        lo = torch.where(empty, torch.zeros_like(lo), lo)
        hi = torch.where(empty, torch.zeros_like(hi), hi)
        return torch.stack([lo[:, 0], hi[:, 0], lo[:, 1], hi[:, 1]], dim=1)


def rasterize_differentiable(
    offsets: Tensor, pen_down: Tensor, bounds: Tensor, size: int = 28, padding: float = 0.0
) -> Tensor:
    """Differentiable ink image ``(batch, size, size)`` in ``[0, sigmoid(2)]`` of a batch of
    sketches (SketchEmbedNet, Appendix A); gradients flow to ``offsets``.

    ``offsets`` ``(batch, time, 2)``: ``(dx, dy)`` rows of stroke-5 (no start token); point ``t``
    is the sum of rows ``0..t``. ``pen_down`` ``(batch, time)`` bool: segment ``t -> t + 1`` is
    drawn where true (the last column is ignored); padding and pen-up moves must be false.
    ``bounds`` ``(batch, 4)`` ``(min_x, max_x, min_y, max_y)`` of the *ground truth* (see
    :func:`absolute_bounds`): points are scaled by ``lambda = min(W / (x_max - x_min),
    H / (y_max - y_min))`` (over ``1 - 2 * padding`` of the canvas) and centred, exactly like
    :func:`fit_polylines`, so prediction and target rendered with the same bounds share a frame.
    ``padding=0`` is the paper's formula. Intensity ``sigmoid(2 - 5 d)``, ``d`` the distance in
    pixels from the pixel centre ``(col + 0.5, row + 0.5)`` to the nearest drawn segment.
    """

    if offsets.ndim != 3 or offsets.shape[-1] != 2:
        raise ValueError(f"offsets must be (batch, time, 2), got {tuple(offsets.shape)}")
    if pen_down.shape != offsets.shape[:2]:
        raise ValueError(
            f"pen_down must be {tuple(offsets.shape[:2])}, got {tuple(pen_down.shape)}"
        )
    if bounds.shape != (offsets.shape[0], 4):
        raise ValueError(f"bounds must be ({offsets.shape[0]}, 4), got {tuple(bounds.shape)}")
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    if not 0 <= padding < 0.5:
        raise ValueError(f"padding must be in [0, 0.5), got {padding}")
    batch, steps = offsets.shape[:2]
    if steps < 2:
        return offsets.new_zeros((batch, size, size))

    points = _to_pixels(offsets.cumsum(dim=1), bounds.to(offsets), size, padding)
    starts, ends = points[:, :-1], points[:, 1:]  # (batch, segments, 2)
    drawn = pen_down[:, :-1].to(torch.bool)
    nearest = _nearest_drawn_segment(starts.detach(), ends.detach(), drawn, size)
    # Only the nearest segment of each pixel carries a gradient (as with min()): recompute the
    # distance to it with autograd, which costs (batch, pixels) rather than (batch, segments,
    # pixels) of saved tensors.
    index = nearest.unsqueeze(-1).expand(-1, -1, 2)
    a = starts.gather(1, index)  # (batch, pixels, 2)
    b = ends.gather(1, index)
    centres = _pixel_centres(size, offsets.dtype, offsets.device)  # (pixels, 2)
    distance = _point_segment_distance(centres, a, b)
    any_drawn = drawn.gather(1, nearest)
    distance = torch.where(any_drawn, distance, torch.full_like(distance, _PEN_UP_DISTANCE))
    ink = torch.sigmoid(PIXEL_INTENSITY_OFFSET - PIXEL_INTENSITY_SLOPE * distance)
    return ink.reshape(batch, size, size)


def _to_pixels(points: Tensor, bounds: Tensor, size: int, padding: float) -> Tensor:
    """Scale and centre absolute points ``(batch, time, 2)`` by ``bounds`` ``(batch, 4)``."""

    lo = bounds[:, 0::2]  # (batch, 2): min_x, min_y
    hi = bounds[:, 1::2]
    extent = hi - lo
    usable = size * (1.0 - 2.0 * padding)
    # an axis with no extent does not limit the scale; a single point is only centred
    ratio = torch.where(extent > 0, usable / extent.clamp_min(1e-30), torch.inf)
    scale = ratio.amin(dim=1, keepdim=True)
    scale = torch.where(torch.isinf(scale), torch.ones_like(scale), scale)
    centre = (lo + hi) / 2
    return (points - centre.unsqueeze(1)) * scale.unsqueeze(1) + size / 2


def _pixel_centres(size: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """``(size * size, 2)`` pixel centres ``(x, y)`` in row-major order."""

    c = torch.arange(size, dtype=dtype, device=device) + 0.5
    y, x = torch.meshgrid(c, c, indexing="ij")
    return torch.stack([x.reshape(-1), y.reshape(-1)], dim=1)


def _point_segment_distance(p: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """Euclidean distance from points ``p`` to segments ``a -> b`` (broadcasting ``(..., 2)``).

    The projection parameter is detached: at the nearest point the distance is stationary in
    it (or it sits on a clamp), so its gradient contributes nothing, and a zero-length segment
    would otherwise divide by zero in the backward pass.
    """

    ab = b - a
    ap = p - a
    length2 = (ab * ab).sum(-1)
    with torch.no_grad():
        safe = torch.where(length2 > 0, length2, torch.ones_like(length2))
        t = torch.where(length2 > 0, (ap * ab).sum(-1) / safe, torch.zeros_like(length2))
        t = t.clamp(0.0, 1.0).unsqueeze(-1)
    diff = ap - t * ab
    d2 = (diff * diff).sum(-1)
    # sqrt has an infinite derivative at 0 (a pixel centre exactly on a line): give it 0
    positive = d2 > 0
    return torch.sqrt(torch.where(positive, d2, torch.ones_like(d2))) * positive


def _nearest_drawn_segment(starts: Tensor, ends: Tensor, drawn: Tensor, size: int) -> Tensor:
    """Index ``(batch, pixels)`` of the nearest drawn segment to each pixel centre, searched
    without gradient in chunks of segments. Where a sketch has no drawn segment the index
    points at a pen-up one; the caller checks ``drawn`` at the index."""

    batch, segments = drawn.shape
    # Pen-up segments become a point far off the canvas instead of being masked: one pass
    # less over the big tensors, and the same answer as the paper's "+1e6".
    far = torch.tensor(_PEN_UP_DISTANCE, dtype=starts.dtype, device=starts.device)
    starts = torch.where(drawn.unsqueeze(-1), starts, far)
    ends = torch.where(drawn.unsqueeze(-1), ends, far)
    centre = torch.arange(size, dtype=starts.dtype, device=starts.device) + 0.5
    if _DIFF_RASTER_ELEMENTS_PER_CHUNK is None:
        chunk = segments
    else:
        chunk = max(1, _DIFF_RASTER_ELEMENTS_PER_CHUNK // max(1, batch * size * size))
    best = torch.full((batch, size * size), torch.inf, dtype=starts.dtype, device=starts.device)
    best_index = torch.zeros((batch, size * size), dtype=torch.long, device=starts.device)
    with torch.no_grad():
        for first in range(0, segments, chunk):
            a = starts[:, first : first + chunk]  # (batch, c, 2)
            ab = ends[:, first : first + chunk] - a
            dx, dy = ab[..., 0, None, None], ab[..., 1, None, None]  # (batch, c, 1, 1)
            length2 = dx * dx + dy * dy
            inv_length2 = torch.where(length2 > 0, 1.0 / length2.clamp_min(1e-30), 0.0)
            # The pixel grid is separable: x depends on the column only, y on the row only, so
            # these are (batch, c, 1, W) and (batch, c, H, 1), and only t and the distance are
            # full (batch, c, H, W) tensors. The loop is memory-bound: few passes, in place.
            gx = centre - a[..., 0, None, None]
            gy = centre[:, None] - a[..., 1, None, None]
            t = torch.add(gx * (dx * inv_length2), gy * (dy * inv_length2)).clamp_(0.0, 1.0)
            d2 = torch.addcmul(gx, t, dx, value=-1.0).square_()
            d2.add_(torch.addcmul(gy, t, dy, value=-1.0).square_())
            value, index = d2.reshape(batch, -1, size * size).min(dim=1)
            closer = value < best
            best = torch.where(closer, value, best)
            best_index = torch.where(closer, index + first, best_index)
    return best_index
