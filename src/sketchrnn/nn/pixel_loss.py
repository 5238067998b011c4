"""SketchEmbedNet's pixel loss and loss schedule (Wang et al. 2021, section 3 and Appendix A-B).

``L = L_pen + (1 - alpha) L_stroke + alpha L_pixel``; ``L_pixel`` draws a reparameterised
sample of the predicted strokes and the ground truth with the differentiable rasteriser
(:func:`sketchrnn.nn.diff_raster.rasterize_differentiable`), blurs both (sigma 2) and takes
the binary cross-entropy with the blurred target as a soft label. ``alpha`` follows a
curriculum: 0 at first, +0.05 every 10k steps up to ``alpha_max``.

Alignment: ``pred_params`` ``(batch, time, M)`` are the decoder's outputs for the target rows
``target_strokes5`` ``(batch, time, 5)``, i.e. a :class:`sketchrnn.datasets.Batch`'s
``strokes[:, 1:]`` (without the start token), as in ``SketchRNN.losses``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from sketchrnn.nn.diff_raster import absolute_bounds, rasterize_differentiable
from sketchrnn.nn.mixture import LOG_SIGMA_MAX, LOG_SIGMA_MIN, MixtureParams

__all__ = [
    "sample_offsets_reparameterized",
    "gaussian_blur",
    "pixel_loss",
    "curriculum_alpha",
    "sketchembednet_loss",
]


def sample_offsets_reparameterized(
    params: MixtureParams,
    generator: torch.Generator | None = None,
    *,
    most_likely_component: bool = False,
) -> Tensor:
    """One ``(dx, dy)`` sample per step: ``params`` with shapes ``(batch, time, M)`` ->
    ``(batch, time, 2)``, differentiable in the means, sigmas and correlations.

    Appendix A's reparameterisation of the bivariate Gaussian, with its Cholesky factor:
    ``dx = mu_x + sigma_x e1``, ``dy = mu_y + sigma_y (rho e1 + sqrt(1 - rho^2) e2)``,
    ``e ~ N(0, I)``. The paper says only that it samples from the mixture; the component is
    drawn from ``pi`` (a discrete choice, so ``pi`` gets no gradient from the pixel loss; it is
    trained by ``L_stroke``). ``most_likely_component=True`` takes ``argmax pi`` instead, which
    is what the authors' released code does.
    """
    flat = params.log_pi.detach().reshape(-1, params.num_mixtures).exp()
    if most_likely_component or not torch.isfinite(flat).all():
        # (Non-finite weights, from a diverged model: multinomial would raise; the loss comes
        # out NaN instead, which the Trainer skips or stops on as its nan_policy says.)
        component = params.log_pi.argmax(dim=-1)
    else:
        component = torch.multinomial(flat, 1, generator=generator).reshape(
            params.log_pi.shape[:-1]
        )

    def pick(t: Tensor) -> Tensor:
        return t.gather(-1, component.unsqueeze(-1)).squeeze(-1)

    mu_x, mu_y, rho = pick(params.mu_x), pick(params.mu_y), pick(params.rho)
    # the same clamp as the likelihood's: an untrained head's exp(log sigma) can overflow, and
    # one infinite point would turn the whole drawing, and its gradient, into NaN
    sigma_x = torch.exp(pick(params.log_sigma_x).clamp(LOG_SIGMA_MIN, LOG_SIGMA_MAX))
    sigma_y = torch.exp(pick(params.log_sigma_y).clamp(LOG_SIGMA_MIN, LOG_SIGMA_MAX))
    noise = torch.randn((2, *mu_x.shape), dtype=mu_x.dtype, device=mu_x.device, generator=generator)
    # clamp: rho = +-1 exactly (not produced by mixture_params) would give sqrt'(0) = inf
    rho_complement = torch.sqrt((1.0 - rho * rho).clamp_min(1e-12))
    dx = mu_x + sigma_x * noise[0]
    dy = mu_y + sigma_y * (rho * noise[0] + rho_complement * noise[1])
    return torch.stack([dx, dy], dim=-1)


def gaussian_blur(images: Tensor, sigma: float = 2.0) -> Tensor:
    """Blur ``images`` ``(..., height, width)`` with a normalised Gaussian of std ``sigma``
    pixels, as two 1-D convolutions (rows, then columns); the kernel reaches ``ceil(3 sigma)``
    pixels each way and the canvas outside the image counts as empty (zero padding).
    """
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    if images.ndim < 2:
        raise ValueError(f"images must be (..., height, width), got {tuple(images.shape)}")
    radius = math.ceil(3 * sigma)
    x = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = kernel / kernel.sum()
    height, width = images.shape[-2:]
    flat = images.reshape(-1, 1, height, width)
    flat = F.conv2d(flat, kernel.view(1, 1, 1, -1), padding=(0, radius))
    flat = F.conv2d(flat, kernel.view(1, 1, -1, 1), padding=(radius, 0))
    return flat.reshape(images.shape)


def pixel_loss(
    pred_params: MixtureParams,
    target_strokes5: Tensor,
    lengths: Tensor,
    size: int = 28,
    *,
    sigma: float = 2.0,
    padding: float = 0.0,
    generator: torch.Generator | None = None,
    most_likely_component: bool = False,
) -> Tensor:
    """``L_pixel``: scalar binary cross-entropy between the blurred rasters of a reparameterised
    sample of the prediction and of the target, averaged over pixels and the batch.

    ``pred_params`` ``(batch, time, M)``; ``target_strokes5`` ``(batch, time, 5)`` stroke-5
    rows without the start token; ``lengths`` ``(batch,)`` the number of real points. Both
    drawings are scaled and centred by the target's bounds (``size x size`` canvas, ``padding``
    as in :func:`~.diff_raster.rasterize_differentiable`). A segment ``t -> t + 1`` is drawn
    when both points are real and the pen is down after point ``t``: the target's ``p1``, and
    for the prediction its pen probability ``p1 >= 0.5`` (Appendix A blows up the distance
    where ``s_1 < 0.5``; this choice carries no gradient). ``most_likely_component`` as in
    :func:`sample_offsets_reparameterized`.

    The paper prints only the ``I' log I`` term but calls it binary cross-entropy; the full
    binary cross-entropy is used (the one term alone is minimised by ink everywhere).
    """
    if target_strokes5.ndim != 3 or target_strokes5.shape[-1] != 5:
        raise ValueError(
            f"target_strokes5 must be (batch, time, 5), got {tuple(target_strokes5.shape)}"
        )
    batch, steps = target_strokes5.shape[:2]
    if pred_params.mu_x.shape[:2] != (batch, steps):
        raise ValueError(
            f"pred_params must be ({batch}, {steps}, M) to match the target rows, "
            f"got {tuple(pred_params.mu_x.shape)}"
        )
    if lengths.shape != (batch,):
        raise ValueError(f"lengths must be ({batch},), got {tuple(lengths.shape)}")
    lengths = lengths.to(target_strokes5.device)
    step = torch.arange(steps, device=target_strokes5.device)
    # segment t -> t + 1 needs point t + 1 to be real
    next_is_real = torch.zeros((batch, steps), dtype=torch.bool, device=target_strokes5.device)
    next_is_real[:, :-1] = step[1:].unsqueeze(0) < lengths.unsqueeze(1)
    target_pen_down = (target_strokes5[..., 2] > 0.5) & next_is_real
    with torch.no_grad():
        pred_p1 = F.softmax(pred_params.pen_logits, dim=-1)[..., 0]
    pred_pen_down = (pred_p1 >= 0.5) & next_is_real

    pred_offsets = sample_offsets_reparameterized(
        pred_params, generator, most_likely_component=most_likely_component
    )
    target_offsets = target_strokes5[..., :2].to(pred_offsets.dtype)
    bounds = absolute_bounds(target_offsets, lengths)
    # one call for both halves: the rasteriser is vectorised over the batch
    images = rasterize_differentiable(
        torch.cat([pred_offsets, target_offsets]),
        torch.cat([pred_pen_down, target_pen_down]),
        torch.cat([bounds, bounds]),
        size,
        padding,
    )
    blurred = gaussian_blur(images, sigma)
    pred_image, target_image = blurred[:batch], blurred[batch:].detach()
    return F.binary_cross_entropy(pred_image, target_image)


def curriculum_alpha(
    step: int, alpha_max: float = 0.5, increment: float = 0.05, every: int = 10_000
) -> float:
    """The pixel-loss weight at training ``step``: 0 at first, ``+increment`` every ``every``
    steps, capped at ``alpha_max`` (Appendix B: 0.5 for Quick, Draw!, 0.75 for Sketchy)."""
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if every <= 0:
        raise ValueError(f"every must be positive, got {every}")
    if not 0.0 <= alpha_max <= 1.0:
        raise ValueError(f"alpha_max must be in [0, 1], got {alpha_max}")
    # round(): 3 * 0.05 is 0.15000000000000002 in floating point
    return min(alpha_max, round(increment * (step // every), 12))


def sketchembednet_loss(
    loss_pen: Tensor, loss_stroke: Tensor, loss_pixel: Tensor, alpha: float
) -> Tensor:
    """``L = L_pen + (1 - alpha) L_stroke + alpha L_pixel`` (section 3, eq. 1)."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    return loss_pen + (1.0 - alpha) * loss_stroke + alpha * loss_pixel
