"""The diagonal Gaussian posterior: its KL term against the closed form of one dimension, the
two normalisations the models use, and reparameterised samples."""

from __future__ import annotations

import math

import pytest
import torch

from sketchrnn.nn.gaussian import kl_to_standard_normal, reparameterize


def test_the_kl_of_the_prior_itself_is_zero():
    zeros = torch.zeros(3, 5)
    assert kl_to_standard_normal(zeros, zeros, per_dimension=True).item() == 0.0
    assert kl_to_standard_normal(zeros, zeros, per_dimension=False).item() == 0.0


def test_the_kl_matches_the_closed_form_of_one_dimension():
    # KL(N(m, s^2) || N(0, 1)) = log(1 / s) + (s^2 + m^2) / 2 - 1 / 2
    m, s = 0.7, 1.8
    mu = torch.full((1, 1), m, dtype=torch.float64)
    sigma_hat = torch.full((1, 1), 2 * math.log(s), dtype=torch.float64)
    expected = math.log(1 / s) + (s * s + m * m) / 2 - 0.5
    assert kl_to_standard_normal(mu, sigma_hat, per_dimension=False).item() == pytest.approx(
        expected
    )


def test_per_dimension_divides_the_sum_by_the_latent_size_and_both_average_the_batch():
    torch.manual_seed(0)
    mu, sigma_hat = torch.randn(4, 6, dtype=torch.float64), torch.randn(4, 6, dtype=torch.float64)
    total = kl_to_standard_normal(mu, sigma_hat, per_dimension=False)
    per_dim = kl_to_standard_normal(mu, sigma_hat, per_dimension=True)
    assert per_dim.item() == pytest.approx(total.item() / 6)
    one = kl_to_standard_normal(mu[:1], sigma_hat[:1], per_dimension=False)
    doubled = kl_to_standard_normal(
        mu[:1].repeat(2, 1), sigma_hat[:1].repeat(2, 1), per_dimension=False
    )
    assert doubled.item() == pytest.approx(one.item())


def test_reparameterised_samples_have_the_posteriors_moments_and_carry_gradients():
    torch.manual_seed(0)
    mu = torch.tensor([[1.0, -2.0]]).repeat(20_000, 1).requires_grad_()
    sigma_hat = torch.log(torch.tensor([[0.25, 4.0]])).repeat(20_000, 1).requires_grad_()
    z = reparameterize(mu, sigma_hat)
    torch.testing.assert_close(z.mean(0), torch.tensor([1.0, -2.0]), atol=0.05, rtol=0)
    torch.testing.assert_close(z.var(0), torch.tensor([0.25, 4.0]), atol=0.0, rtol=0.05)
    z.sum().backward()
    assert torch.all(mu.grad == 1) and sigma_hat.grad.abs().sum() > 0
