"""The fused mixture losses (sketchrnn.nn.fused_mixture, csrc/mixture_kernels.cpp) against
the reference: mixture.reconstruction_losses of mixture.mixture_params."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sketchrnn.nn import cells, fused, fused_mixture
from sketchrnn.nn.mixture import (
    mixture_params,
    reconstruction_losses,
    reconstruction_losses_of_output,
)

pytestmark = pytest.mark.slow  # builds the extension; see pyproject


@pytest.fixture(scope="module", autouse=True)
def extension():
    if not fused.available():
        reason = fused._failed or f"disabled by {fused.DISABLE_ENV}"
        pytest.skip(f"the fused kernels are not available here ({reason})")


def _case(B, T, M, dtype, scale=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(B, T, 6 * M + 3, generator=g, dtype=dtype) * scale
    targets = torch.randn(B, T, 5, generator=g, dtype=dtype)
    targets[..., 2:] = F.one_hot(torch.randint(0, 3, (B, T), generator=g), 3).to(dtype)
    lengths = torch.randint(0, T + 1, (B,), generator=g)
    lengths[0] = T  # one full sketch; others may be empty
    return y.requires_grad_(), targets, lengths


def _reference(y, M, targets, lengths, w_s=0.7, w_p=1.3):
    ls, lp = reconstruction_losses(mixture_params(y, M), targets, lengths)
    (grad,) = torch.autograd.grad(w_s * ls + w_p * lp, y)
    return ls.detach(), lp.detach(), grad


def _fused(y, M, targets, lengths, w_s=0.7, w_p=1.3):
    ls, lp = fused_mixture.reconstruction_losses(y, M, targets, lengths)
    (grad,) = torch.autograd.grad(w_s * ls + w_p * lp, y)
    return ls.detach(), lp.detach(), grad


@pytest.mark.parametrize("M", [1, 5, 20, 33])
def test_losses_and_gradient_are_the_reference_ones_in_float64(M):
    # Scale 3: log sigmas beyond the clamp at +-5 (zero gradient there) and rho near 1.
    for scale in (0.5, 3.0):
        y, targets, lengths = _case(4, 11, M, torch.float64, scale)
        ref, got = _reference(y, M, targets, lengths), _fused(y, M, targets, lengths)
        for r, g in zip(ref, got, strict=True):
            torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-12)


def test_float32_matches_the_reference_to_float_rounding():
    y, targets, lengths = _case(16, 40, 20, torch.float32)
    ref, got = _reference(y, 20, targets, lengths), _fused(y, 20, targets, lengths)
    for r, g in zip(ref, got, strict=True):
        torch.testing.assert_close(g, r, rtol=2e-5, atol=1e-6)


def test_gradcheck():
    y, targets, lengths = _case(3, 5, 4, torch.float64, 1.5, seed=3)
    assert torch.autograd.gradcheck(
        lambda y: fused_mixture.reconstruction_losses(y, 4, targets, lengths), (y,)
    )


def test_padded_steps_add_nothing_even_when_they_are_nan():
    y, targets, lengths = _case(3, 8, 6, torch.float64)
    lengths = torch.tensor([8, 3, 0])
    with torch.no_grad():
        y[1, 3:, 3:] = float("nan")  # the offsets' parameters of padded steps
        y[2, :, 3:] = float("nan")
    ls, lp, grad = _fused(y, 6, targets, lengths)
    assert torch.isfinite(ls) and torch.isfinite(lp) and torch.isfinite(grad).all()
    assert (grad[1, 3:, 3:] == 0).all() and (grad[2, :, 3:] == 0).all()
    clean = y.detach().clone()
    clean[1, 3:, 3:] = 0.0
    clean[2, :, 3:] = 0.0
    ref = _reference(clean.requires_grad_(), 6, targets, lengths)
    for r, g in zip(ref, (ls, lp, grad), strict=True):
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-12)


def test_the_result_does_not_depend_on_the_thread_count():
    y, targets, lengths = _case(50, 60, 10, torch.float32)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = _fused(y, 10, targets, lengths)
        torch.set_num_threads(2)
        two = _fused(y, 10, targets, lengths)
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(one, two, strict=True):
        assert torch.equal(a, b)


def test_training_takes_the_fused_path_and_falls_back_to_the_reference():
    y, targets, lengths = _case(4, 9, 3, torch.float32)
    calls = []
    original = fused_mixture.reconstruction_losses

    def spy(*args):
        calls.append(1)
        return original(*args)

    previous = cells._loop_compiler
    try:
        fused_mixture.reconstruction_losses = spy
        fast = reconstruction_losses_of_output(y, 3, targets, lengths)
        assert calls == [1]
        cells.set_loop_compiler("python")
        slow = reconstruction_losses_of_output(y, 3, targets, lengths)
        assert calls == [1]
    finally:
        fused_mixture.reconstruction_losses = original
        cells.set_loop_compiler(previous)
    torch.testing.assert_close(torch.stack(fast), torch.stack(slow), rtol=2e-6, atol=1e-7)


def test_bad_shapes_are_refused_with_the_reason():
    y, targets, lengths = _case(2, 5, 3, torch.float32)
    with pytest.raises(ValueError, match="expected 21 outputs for 3 mixtures"):
        reconstruction_losses_of_output(y[..., :-1], 3, targets, lengths)
    with pytest.raises(RuntimeError, match="targets must be"):
        fused_mixture.reconstruction_losses(y, 3, targets[:, :4], lengths)
    with pytest.raises(RuntimeError, match="lengths must be"):
        fused_mixture.reconstruction_losses(y, 3, targets, lengths[:1])


def test_the_benchmark_prints_both_sides_and_their_difference():
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parents[2] / "benchmarks" / "mixture_loss.py"
    args = ["--mixtures", "3", "--batch", "4", "--n-max", "6", "--threads", "1"]
    out = subprocess.run(
        [sys.executable, str(script), *args, "--repeats", "1", "--rounds", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    row = out.strip().splitlines()[-1].split()
    assert row[:2] == ["3", "1"] and row[4].endswith("x") and float(row[5]) < 1e-5, out
