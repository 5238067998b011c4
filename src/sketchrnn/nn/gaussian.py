"""The diagonal Gaussian posterior ``q(z | x) = N(mu, exp(sigma_hat))`` that every encoder of
the package gives (``sigma_hat`` is the log variance, as in sketch-rnn section 3.1): drawing
``z`` from it and its KL divergence to the prior ``N(0, I)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["reparameterize", "kl_to_standard_normal"]


def reparameterize(mu: Tensor, sigma_hat: Tensor) -> Tensor:
    """``z = mu + exp(sigma_hat / 2) * N(0, I)`` (sketch-rnn eq. 2): a sample of ``z``
    ``(batch, z)`` through which gradients reach ``mu`` and ``sigma_hat`` ``(batch, z)``."""
    return mu + torch.exp(0.5 * sigma_hat) * torch.randn_like(mu)


def kl_to_standard_normal(mu: Tensor, sigma_hat: Tensor, *, per_dimension: bool) -> Tensor:
    """``KL(N(mu, exp(sigma_hat)) || N(0, I))`` of each item of ``mu``, ``sigma_hat``
    ``(batch, z)``, averaged over the batch: a scalar.

    ``per_dimension=True`` divides each item's KL by the size of ``z``, as sketch-rnn's eq. 10
    (``L_KL = -1/(2 N_z) sum (1 + sigma_hat - mu^2 - exp(sigma_hat))``) and SketchEmbedNet do;
    ``False`` is the plain sum over ``z`` (the Conv-VAE's evidence lower bound).
    """
    terms = 1.0 + sigma_hat - mu.pow(2) - torch.exp(sigma_hat)
    if per_dimension:
        return (-0.5 * terms.mean(1)).mean()
    return -0.5 * torch.sum(terms) / len(mu)
