"""The mixture-density head: layout, log-likelihood, stability and temperature sampling."""

from __future__ import annotations

import math

import pytest
import torch

from sketchrnn.nn.mixture import (
    LOG_SIGMA_MIN,
    MixtureParams,
    mixture_params,
    offset_log_likelihood,
    pen_log_likelihood,
    sample,
)


def _params(log_pi, mu_x, mu_y, sigma_x, sigma_y, rho, pen_logits) -> MixtureParams:
    """A batch-of-one mixture from per-component lists, shapes (1, M) and (1, 3)."""

    def row(values):
        return torch.tensor([values], dtype=torch.float64)

    return MixtureParams(
        log_pi=torch.log_softmax(row(log_pi), -1),
        mu_x=row(mu_x),
        mu_y=row(mu_y),
        log_sigma_x=torch.log(row(sigma_x)),
        log_sigma_y=torch.log(row(sigma_y)),
        rho=row(rho),
        pen_logits=row(pen_logits),
    )


def test_raw_output_layout_is_pen_then_pi_mu_sigma_rho():
    M = 2
    y = torch.arange(6 * M + 3, dtype=torch.float32) / 10
    p = mixture_params(y, M)
    torch.testing.assert_close(p.pen_logits, torch.tensor([0.0, 0.1, 0.2]))
    torch.testing.assert_close(p.log_pi, torch.log_softmax(torch.tensor([0.3, 0.4]), -1))
    torch.testing.assert_close(p.mu_x, torch.tensor([0.5, 0.6]))
    torch.testing.assert_close(p.mu_y, torch.tensor([0.7, 0.8]))
    torch.testing.assert_close(p.log_sigma_x, torch.tensor([0.9, 1.0]))
    torch.testing.assert_close(p.log_sigma_y, torch.tensor([1.1, 1.2]))
    torch.testing.assert_close(p.rho, torch.tanh(torch.tensor([1.3, 1.4])), atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="15 outputs"):
        mixture_params(torch.zeros(14), M)


def test_log_likelihood_equals_the_density_computed_directly():
    params = _params(
        log_pi=[0.2, -0.5, 1.0],
        mu_x=[0.1, -0.3, 0.5],
        mu_y=[0.0, 0.4, -0.2],
        sigma_x=[0.5, 1.2, 0.8],
        sigma_y=[0.7, 0.3, 1.1],
        rho=[0.3, -0.6, 0.0],
        pen_logits=[0.0, 0.0, 0.0],
    )
    dx, dy = 0.25, -0.15
    pi = params.log_pi.exp()[0]
    density = 0.0
    for j in range(3):
        sx, sy = params.log_sigma_x[0, j].exp(), params.log_sigma_y[0, j].exp()
        r = params.rho[0, j]
        zx = (dx - params.mu_x[0, j]) / sx
        zy = (dy - params.mu_y[0, j]) / sy
        quad = (zx**2 + zy**2 - 2 * r * zx * zy) / (1 - r**2)
        normal = torch.exp(-quad / 2) / (2 * math.pi * sx * sy * torch.sqrt(1 - r**2))
        density = density + pi[j] * normal
    dx_t, dy_t = torch.tensor([dx], dtype=torch.float64), torch.tensor([dy], dtype=torch.float64)
    got = offset_log_likelihood(params, dx_t, dy_t)
    torch.testing.assert_close(got, torch.log(density).reshape(1), rtol=1e-10, atol=1e-10)


def test_pen_log_likelihood_is_log_softmax_of_the_true_state():
    params = _params([0.0], [0.0], [0.0], [1.0], [1.0], [0.0], [1.0, 2.0, 3.0])
    pen = torch.tensor([[0.0, 1.0, 0.0]], dtype=torch.float64)
    expected = 2.0 - math.log(math.exp(1) + math.exp(2) + math.exp(3))
    assert pen_log_likelihood(params, pen).item() == pytest.approx(expected, abs=1e-12)


def test_far_points_and_extreme_outputs_stay_finite_with_finite_gradients():
    gen = torch.Generator().manual_seed(0)
    M = 20
    for scale in (1.0, 30.0, 1000.0):
        y = (torch.randn(64, 50, 6 * M + 3, generator=gen) * scale).requires_grad_()
        target = torch.randn(64, 50, 2, generator=gen) * scale
        params = mixture_params(y, M)
        ll = offset_log_likelihood(params, target[..., 0], target[..., 1])
        pen = torch.nn.functional.one_hot(torch.randint(0, 3, (64, 50), generator=gen), 3)
        loss = -(ll.sum() + pen_log_likelihood(params, pen.float()).sum())
        loss.backward()
        assert torch.isfinite(ll).all(), scale
        assert torch.isfinite(y.grad).all(), scale


def test_density_is_bounded_for_a_point_exactly_on_a_collapsing_component():
    # sigma -> 0 on a point with zero offset would send log p to +inf; the floor stops it.
    y = torch.zeros(6 + 3)
    y[3 + 1 : 3 + 3] = 0.0  # mu at the point
    y[3 + 3 : 3 + 5] = -100.0  # log sigmas far below the floor
    y[3 + 5] = 100.0  # rho -> 1
    params = mixture_params(y, 1)
    ll = offset_log_likelihood(params, torch.tensor(0.0), torch.tensor(0.0))
    assert torch.isfinite(ll)
    assert ll < -math.log(2 * math.pi) - 2 * LOG_SIGMA_MIN + 10


def test_zero_temperature_gives_the_most_likely_component_mean_and_pen_state():
    params = _params(
        log_pi=[0.1, 2.0, 0.5],
        mu_x=[1.0, -2.0, 3.0],
        mu_y=[4.0, 5.0, -6.0],
        sigma_x=[1.0, 2.0, 3.0],
        sigma_y=[1.0, 2.0, 3.0],
        rho=[0.0, 0.5, 0.0],
        pen_logits=[0.0, 3.0, 1.0],
    )
    greedy = sample(params, temperature=0.0)
    torch.testing.assert_close(
        greedy, torch.tensor([[-2.0, 5.0, 0.0, 1.0, 0.0]], dtype=greedy.dtype)
    )
    # and tau -> 0 approaches the same point
    gen = torch.Generator().manual_seed(0)
    near = sample(params, temperature=1e-8, generator=gen)
    torch.testing.assert_close(near, greedy, atol=1e-3, rtol=0)


def test_temperature_scales_sigma_by_sqrt_tau_and_keeps_rho():
    n, tau = 40000, 0.25
    params = MixtureParams(
        log_pi=torch.zeros(n, 1),
        mu_x=torch.full((n, 1), 1.0),
        mu_y=torch.full((n, 1), -1.0),
        log_sigma_x=torch.full((n, 1), math.log(2.0)),
        log_sigma_y=torch.full((n, 1), math.log(0.5)),
        rho=torch.full((n, 1), 0.6),
        pen_logits=torch.zeros(n, 3),
    )
    points = sample(params, temperature=tau, generator=torch.Generator().manual_seed(1))
    dx, dy = points[:, 0].double(), points[:, 1].double()
    # sigma^2 * tau: 4 * 0.25 = 1 and 0.25 * 0.25; sigma * tau would give 0.25 and 0.0156.
    assert dx.var().item() == pytest.approx(1.0, rel=0.04)
    assert dy.var().item() == pytest.approx(0.0625, rel=0.04)
    assert dx.mean().item() == pytest.approx(1.0, abs=0.02)
    assert torch.corrcoef(torch.stack([dx, dy]))[0, 1].item() == pytest.approx(0.6, abs=0.02)


def test_temperature_divides_the_mixture_and_pen_logits():
    n, tau = 40000, 0.5
    log_pi = torch.log(torch.tensor([[0.7, 0.3]])).expand(n, 2)
    params = MixtureParams(
        log_pi=log_pi,
        mu_x=torch.tensor([[-10.0, 10.0]]).expand(n, 2),
        mu_y=torch.zeros(n, 2),
        log_sigma_x=torch.full((n, 2), -3.0),
        log_sigma_y=torch.full((n, 2), -3.0),
        rho=torch.zeros(n, 2),
        pen_logits=torch.log(torch.tensor([[0.6, 0.3, 0.1]])).expand(n, 3),
    )
    points = sample(params, temperature=tau, generator=torch.Generator().manual_seed(2))
    # softmax(log p / 0.5) = p^2 / sum p^2
    first = (points[:, 0] < 0).double().mean().item()
    assert first == pytest.approx(0.49 / 0.58, abs=0.01)
    pen_freq = points[:, 2:].double().mean(0)
    expected = torch.tensor([0.36, 0.09, 0.01], dtype=torch.float64) / 0.46
    torch.testing.assert_close(pen_freq, expected, atol=0.01, rtol=0)
    # a separate pen temperature leaves the pen distribution at tau = 1
    points = sample(params, tau, pen_temperature=1.0, generator=torch.Generator().manual_seed(3))
    pen_freq = points[:, 2:].double().mean(0)
    torch.testing.assert_close(pen_freq, torch.tensor([0.6, 0.3, 0.1]).double(), atol=0.01, rtol=0)


def test_sampling_is_reproducible_with_a_generator_and_rejects_negative_tau():
    params = mixture_params(torch.randn(5, 6 * 4 + 3), 4)
    a = sample(params, 0.7, generator=torch.Generator().manual_seed(9))
    b = sample(params, 0.7, generator=torch.Generator().manual_seed(9))
    torch.testing.assert_close(a, b)
    assert a.shape == (5, 5)
    assert torch.all(a[:, 2:].sum(1) == 1)
    with pytest.raises(ValueError, match="temperature"):
        sample(params, -0.1)


@pytest.mark.parametrize("tau", [1e-30, 1.1e-38, 1e-39, 1e-45, 5e-324])
def test_a_tiny_temperature_is_nearly_greedy_never_nan(tau):
    """Above 0 but below float32's smallest normal number, ``logits / tau`` overflows to
    inf and a plain softmax of it is NaN; the limit is greedy decoding."""
    params = mixture_params(
        torch.randn(64, 6 * 5 + 3, generator=torch.Generator().manual_seed(4)), 5
    )
    points = sample(params, tau, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(points).all()
    greedy = sample(params, 0.0)
    torch.testing.assert_close(points[:, 2:], greedy[:, 2:])  # the most likely pen states
    torch.testing.assert_close(points[:, :2], greedy[:, :2], atol=1e-6, rtol=0)
