"""The mixture-density head: a bivariate Gaussian mixture for ``(dx, dy)`` and a categorical
distribution over the three pen states (sketch-rnn paper, eq. 3-8).

Raw output layout (``6M + 3`` values, the order magenta and magenta.js use, so their weights
load without reordering): ``[pen logits (3) | pi logits (M) | mu_x (M) | mu_y (M) |
log sigma_x (M) | log sigma_y (M) | raw rho (M)]``.

Everything is computed in log space (log-softmax, logsumexp): in probability space the
likelihood of a far-off point underflows to 0 and its log to -inf.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "MixtureParams",
    "mixture_params",
    "offset_log_likelihood",
    "pen_log_likelihood",
    "reconstruction_losses",
    "reconstruction_losses_of_output",
    "sample",
    "LOG_SIGMA_MIN",
    "LOG_SIGMA_MAX",
]

# Offsets are normalised to unit standard deviation; a sigma of exp(-5) = 0.0067 is already a
# fraction of a pixel. Without this floor the model can shrink sigma onto points with exactly
# zero offset and the density, hence the loss, runs off to -inf after long training. The floor
# applies in the likelihood (what training sees) only: the parameters themselves stay as the
# network gave them, so imported magenta.js models (some sigmas ~1e-7) sample exactly as there.
LOG_SIGMA_MIN = -5.0
LOG_SIGMA_MAX = 5.0
# |rho| < 1 strictly, so that 1 - rho^2 never rounds to 0 in float32.
_RHO_LIMIT = 1.0 - 1e-5
_LOG_2PI = math.log(2.0 * math.pi)


class MixtureParams(NamedTuple):
    """Parameters of the next-point distribution; leading dimensions ``...`` are e.g.
    ``(batch, time)`` or ``(batch,)``.

    ``log_pi`` ``(..., M)`` normalised log mixture weights; ``mu_x``, ``mu_y``,
    ``log_sigma_x``, ``log_sigma_y``, ``rho`` ``(..., M)``; ``pen_logits`` ``(..., 3)``
    unnormalised logits of ``(p1, p2, p3)``.
    """

    log_pi: Tensor
    mu_x: Tensor
    mu_y: Tensor
    log_sigma_x: Tensor
    log_sigma_y: Tensor
    rho: Tensor
    pen_logits: Tensor

    @property
    def num_mixtures(self) -> int:
        return self.log_pi.shape[-1]


def mixture_params(y: Tensor, num_mixtures: int) -> MixtureParams:
    """Split the raw output ``y`` ``(..., 6M + 3)`` into :class:`MixtureParams`.

    ``pi = softmax`` (kept as log-softmax), ``sigma = exp`` (kept as log sigma),
    ``rho = tanh`` (eq. 6-7).
    """
    expected = 6 * num_mixtures + 3
    if y.shape[-1] != expected:
        raise ValueError(f"expected {expected} outputs for {num_mixtures} mixtures, got {y.shape}")
    pen_logits, pi_logits, mu_x, mu_y, log_sx, log_sy, rho_raw = y.split(
        [3] + [num_mixtures] * 6, dim=-1
    )
    return MixtureParams(
        log_pi=F.log_softmax(pi_logits, dim=-1),
        mu_x=mu_x,
        mu_y=mu_y,
        log_sigma_x=log_sx,
        log_sigma_y=log_sy,
        rho=torch.tanh(rho_raw) * _RHO_LIMIT,
        pen_logits=pen_logits,
    )


def offset_log_likelihood(params: MixtureParams, dx: Tensor, dy: Tensor) -> Tensor:
    """``log p(dx, dy)`` under the mixture (eq. 3); ``dx``, ``dy`` ``(...)`` -> ``(...)``.

    Log sigma is clamped to ``[LOG_SIGMA_MIN, LOG_SIGMA_MAX]`` here, for stable training.
    """
    dx = dx.unsqueeze(-1)
    dy = dy.unsqueeze(-1)
    log_sigma_x = params.log_sigma_x.clamp(LOG_SIGMA_MIN, LOG_SIGMA_MAX)
    log_sigma_y = params.log_sigma_y.clamp(LOG_SIGMA_MIN, LOG_SIGMA_MAX)
    zx = (dx - params.mu_x) * torch.exp(-log_sigma_x)
    zy = (dy - params.mu_y) * torch.exp(-log_sigma_y)
    rho = params.rho
    one_minus_rho2 = 1.0 - rho * rho
    quad = (zx * zx + zy * zy - 2.0 * rho * zx * zy) / one_minus_rho2
    log_normal = (
        -_LOG_2PI - log_sigma_x - log_sigma_y - 0.5 * torch.log(one_minus_rho2) - 0.5 * quad
    )
    return torch.logsumexp(params.log_pi + log_normal, dim=-1)


def pen_log_likelihood(params: MixtureParams, pen: Tensor) -> Tensor:
    """``sum_k p_k log q_k`` for pen states ``pen`` ``(..., 3)`` (one-hot) -> ``(...)``."""
    return (pen * F.log_softmax(params.pen_logits, dim=-1)).sum(-1)


def reconstruction_losses(
    params: MixtureParams, targets: Tensor, lengths: Tensor
) -> tuple[Tensor, Tensor]:
    """sketch-rnn's ``(L_s, L_p)`` (eq. 9) as scalars averaged over the batch.

    ``params`` the mixture for ``targets`` ``(batch, N_max, 5)`` (rows ``S_1..S_N_max``),
    ``lengths`` ``(batch,)`` the real points n. ``L_s`` sums the offsets' log-likelihood over
    the real points only but divides by ``N_max``; ``L_p`` runs over all ``N_max`` steps,
    padding included: that is how the model learns to stop.
    """
    n_max = targets.shape[1]
    steps = torch.arange(n_max, device=targets.device)
    is_real = steps.unsqueeze(0) < lengths.to(targets.device).unsqueeze(1)
    offset_ll = offset_log_likelihood(params, targets[..., 0], targets[..., 1])
    # where(), not a product with the mask: a padded step's value must not leak even as NaN.
    offset_ll = torch.where(is_real, offset_ll, torch.zeros_like(offset_ll))
    loss_s = -(offset_ll.sum(1) / n_max).mean()
    loss_p = -(pen_log_likelihood(params, targets[..., 2:5]).sum(1) / n_max).mean()
    return loss_s, loss_p


def reconstruction_losses_of_output(
    y: Tensor, num_mixtures: int, targets: Tensor, lengths: Tensor
) -> tuple[Tensor, Tensor]:
    """:func:`reconstruction_losses` of ``mixture_params(y, num_mixtures)``, from the head's
    raw output ``y`` ``(batch, N_max, 6M + 3)``: what training calls. Where the fused
    kernels serve ``y`` (CPU, float32 or float64; :func:`sketchrnn.nn.cells.fused_on_cpu`)
    the losses and their gradient run as one pass each way
    (:mod:`sketchrnn.nn.fused_mixture`: the same numbers to float rounding, several times
    faster); elsewhere they are these functions."""
    from sketchrnn.nn.cells import fused_on_cpu

    # (a wrong width goes to mixture_params, which says what it expected)
    if y.dim() == 3 and y.shape[-1] == 6 * num_mixtures + 3 and fused_on_cpu(y, targets):
        from sketchrnn.nn import fused_mixture

        return fused_mixture.reconstruction_losses(y, num_mixtures, targets, lengths)
    return reconstruction_losses(mixture_params(y, num_mixtures), targets, lengths)


def sample(
    params: MixtureParams,
    temperature: float,
    pen_temperature: float | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Draw one point per row: ``params`` with shapes ``(batch, M)`` -> ``(batch, 5)`` rows
    ``(dx, dy, p1, p2, p3)`` with a one-hot pen state.

    Temperature as in the paper's eq. 8: pi and pen logits are divided by ``tau`` and the
    variances multiplied by ``tau`` (so sigma by ``sqrt(tau)``; rho is unchanged).
    ``temperature == 0`` is the limit ``tau -> 0``: the most likely component, its mean and
    the most likely pen state. ``pen_temperature`` defaults to ``temperature``.
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    pen_tau = temperature if pen_temperature is None else pen_temperature
    if pen_tau < 0:
        raise ValueError(f"pen_temperature must be >= 0, got {pen_tau}")
    batch = params.log_pi.shape[0]
    device = params.log_pi.device

    component = _sample_categorical(params.log_pi, temperature, generator)
    pen_state = _sample_categorical(params.pen_logits, pen_tau, generator)

    def pick(t: Tensor) -> Tensor:
        return t.gather(-1, component.unsqueeze(-1)).squeeze(-1)

    mu_x, mu_y, rho = pick(params.mu_x), pick(params.mu_y), pick(params.rho)
    if temperature == 0:
        dx, dy = mu_x, mu_y
    else:
        scale = math.sqrt(temperature)
        sigma_x = torch.exp(pick(params.log_sigma_x)) * scale
        sigma_y = torch.exp(pick(params.log_sigma_y)) * scale
        noise = torch.randn(2, batch, device=device, dtype=mu_x.dtype, generator=generator)
        dx = mu_x + sigma_x * noise[0]
        dy = mu_y + sigma_y * (rho * noise[0] + torch.sqrt(1.0 - rho * rho) * noise[1])
    pen = F.one_hot(pen_state, 3).to(dx.dtype)
    return torch.cat([dx.unsqueeze(-1), dy.unsqueeze(-1), pen], dim=-1)


def _sample_categorical(logits: Tensor, temperature: float, generator: torch.Generator | None):
    """Index ``(batch,)`` drawn from ``softmax(logits / temperature)``; argmax at 0.

    The largest logit is subtracted first, so that it becomes exactly 0 and no division
    makes ``inf - inf`` (NaN) inside the softmax; a temperature below the smallest normal
    number of the logits' dtype (1.2e-38 in float32, where ``1 / tau`` overflows) is the
    limit ``tau -> 0``: the argmax."""
    if temperature < torch.finfo(logits.dtype).tiny:
        return logits.argmax(-1)
    shifted = logits - logits.amax(-1, keepdim=True)
    probs = F.softmax(shifted / temperature, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
