"""The differentiable rasteriser and SketchEmbedNet's pixel loss (nn/diff_raster.py,
nn/pixel_loss.py)."""

import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import shared_file

import sketchrnn.nn.diff_raster as diff_raster
from sketchrnn.io.npz import read_npz
from sketchrnn.io.raster import rasterize
from sketchrnn.nn.diff_raster import absolute_bounds, rasterize_differentiable
from sketchrnn.nn.mixture import MixtureParams, mixture_params
from sketchrnn.nn.pixel_loss import (
    curriculum_alpha,
    gaussian_blur,
    pixel_loss,
    sample_offsets_reparameterized,
    sketchembednet_loss,
)
from sketchrnn.strokes import stroke3_to_stroke5

ON_LINE = 1 / (1 + math.exp(-2.0))  # sigmoid(2)


def offsets_of(points: list[list[float]], dtype=torch.float32) -> torch.Tensor:
    """Absolute points -> offsets ``(1, n, 2)``."""
    p = torch.tensor(points, dtype=dtype)
    return torch.diff(p, dim=0, prepend=torch.zeros(1, 2, dtype=dtype)).unsqueeze(0)


# the identity frame: bounds (0, 8, 0, 8) on an 8 x 8 canvas maps x -> x, y -> y
IDENTITY_8 = torch.tensor([[0.0, 8.0, 0.0, 8.0]])


def test_importing_raster_does_not_import_torch():
    code = "import sys, sketchrnn.io.raster; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_pixel_on_a_pen_down_segment_has_intensity_sigmoid_2():
    # a horizontal segment through the centres of row 3, columns 1..6
    off = offsets_of([[1.5, 3.5], [6.5, 3.5]])
    image = rasterize_differentiable(off, torch.tensor([[True, False]]), IDENTITY_8, size=8)
    assert image.shape == (1, 8, 8)
    torch.testing.assert_close(image[0, 3, 1:7], torch.full((6,), ON_LINE))
    # one pixel away: sigmoid(2 - 5)
    torch.testing.assert_close(image[0, 2, 1:7], torch.full((6,), 1 / (1 + math.exp(3.0))))
    # one pixel beyond the end points, the round cap: sigmoid(2 - 5) again
    assert image[0, 3, 0].item() == pytest.approx(1 / (1 + math.exp(3.0)), abs=1e-6)
    assert image[0, 6:].max() < 1e-3


def test_pen_up_segment_is_not_drawn():
    # a vertical stroke in column 1, a pen-up move across the middle, a vertical stroke in col 6
    points = [[1.5, 1.5], [1.5, 6.5], [6.5, 1.5], [6.5, 6.5]]
    off = offsets_of(points)
    pen = torch.tensor([[True, False, True, False]])
    image = rasterize_differentiable(off, pen, IDENTITY_8, size=8)[0]
    assert image[1:7, 1].min() == pytest.approx(ON_LINE)
    assert image[1:7, 6].min() == pytest.approx(ON_LINE)
    # the pen-up move passes through (4, 4); columns 3-4 are >= 2 px from both strokes
    assert image[:, 3:5].max() < 1e-3
    drawn_too = rasterize_differentiable(off, torch.ones_like(pen), IDENTITY_8, size=8)[0]
    assert drawn_too[3:5, 3:5].max() > 0.5  # the same move drawn when the pen is down


def test_nothing_drawn_gives_an_empty_image_and_zero_gradient():
    off = offsets_of([[1.0, 1.0], [5.0, 5.0]]).requires_grad_()
    image = rasterize_differentiable(off, torch.tensor([[False, False]]), IDENTITY_8, size=8)
    assert image.max() == 0.0
    image.sum().backward()
    assert torch.equal(off.grad, torch.zeros_like(off))


def test_padding_is_ignored():
    points = [[1.2, 1.7], [5.3, 2.1], [6.6, 6.2]]
    off = offsets_of(points)
    pen = torch.tensor([[True, True, False]])
    plain = rasterize_differentiable(off, pen, IDENTITY_8, size=8)
    # padding rows with junk offsets and the pen up, as predictions past the end look
    junk = torch.tensor([[[3.0, -2.0], [-4.0, 1.0], [0.0, 0.0]]])
    padded_off = torch.cat([off, junk], dim=1)
    padded_pen = torch.cat([pen, torch.zeros(1, 3, dtype=torch.bool)], dim=1)
    padded = rasterize_differentiable(padded_off, padded_pen, IDENTITY_8, size=8)
    torch.testing.assert_close(padded, plain)
    # and the bounds of a padded sketch are those of its real points
    torch.testing.assert_close(
        absolute_bounds(padded_off, torch.tensor([3])), torch.tensor([[1.2, 6.6, 1.7, 6.2]])
    )


def test_scaling_fits_the_ground_truth_bounds_like_the_numpy_rasteriser():
    # bounds x in [10, 30], y in [0, 10]: scale 16 / 20, centred at (8, 8)
    off = offsets_of([[10.0, 0.0], [30.0, 10.0]])
    bounds = absolute_bounds(off, torch.tensor([2]))
    torch.testing.assert_close(bounds, torch.tensor([[10.0, 30.0, 0.0, 10.0]]))
    image = rasterize_differentiable(off, torch.tensor([[True, False]]), bounds, size=16)[0]
    # the segment runs from (0, 4) to (16, 12) in pixels: column 7 (x = 7.5) at y = 7.75
    assert image[:, 7].argmax().item() == 7
    assert image[0, 0] < 0.01 and image[15, 15] < 0.01


def test_gradcheck_in_float64():
    torch.manual_seed(0)
    # three segments in an 8 x 8 frame, at generic positions (no ties, no pixel on a line)
    points = [[1.13, 2.31], [6.27, 1.49], [5.71, 6.83], [2.09, 5.37]]
    off = offsets_of(points, torch.float64).requires_grad_()
    pen = torch.tensor([[True, True, True, False]])
    bounds = IDENTITY_8.to(torch.float64)

    def render(o: torch.Tensor) -> torch.Tensor:
        return rasterize_differentiable(o, pen, bounds, size=8)

    assert torch.autograd.gradcheck(render, (off,), eps=1e-6, atol=1e-5)


def test_gradcheck_of_the_pixel_loss_through_the_mixture_in_float64():
    torch.manual_seed(1)
    batch, steps, mixtures = 2, 4, 2
    target = torch.zeros(batch, steps, 5, dtype=torch.float64)
    target[..., :2] = torch.randn(batch, steps, 2, dtype=torch.float64)
    target[..., 2] = 1.0
    lengths = torch.tensor([4, 3])
    raw = 0.3 * torch.randn(batch, steps, 6 * mixtures + 3, dtype=torch.float64)
    raw[..., :3] = torch.tensor([3.0, 0.0, 0.0], dtype=torch.float64)  # pen clearly down
    # both components near the target and narrow, so that the predicted drawing lies on the
    # canvas: where the blurred prediction falls below 1e-12, torch's binary cross-entropy
    # clips its gradient on purpose and a finite-difference check cannot agree
    raw[..., 5:9] += target[..., [0, 0, 1, 1]]
    raw[..., 9:13] -= 2.0
    raw.requires_grad_()

    def loss(r: torch.Tensor) -> torch.Tensor:
        # the same noise each call, so the loss is a function of r alone
        generator = torch.Generator().manual_seed(5)
        return pixel_loss(mixture_params(r, mixtures), target, lengths, size=8, generator=generator)

    assert torch.autograd.gradcheck(loss, (raw,), eps=1e-6, atol=1e-5, fast_mode=True)


@pytest.fixture(scope="module")
def sheep() -> list[np.ndarray]:
    data = read_npz(shared_file("sketchrnn/aaron_sheep.npz"))
    return [s for s, split in zip(data.strokes, data.splits, strict=True) if split == "test"]


def test_agrees_with_the_numpy_rasteriser_on_real_sheep(sheep):
    size = 64
    for s3 in sheep[:5]:
        s5 = torch.from_numpy(stroke3_to_stroke5(s3))
        n = len(s3)
        off = s5[:, :2].unsqueeze(0)
        pen = (s5[:, 2] > 0.5).unsqueeze(0)
        ours = rasterize_differentiable(off, pen, absolute_bounds(off, torch.tensor([n])), size)
        # sigmoid(2 - 5 d) > 0.5 <=> d < 0.4, and the numpy ramp is > 0.5 <=> d < width / 2
        theirs = rasterize(s3, size=size, line_width=0.8, padding=0.0)
        a, b = ours[0].numpy() > 0.5, theirs > 0.5
        iou = (a & b).sum() / (a | b).sum()
        assert a.sum() > 100
        assert iou > 0.99, f"IoU {iou:.3f}"


def test_batch_is_the_same_as_one_by_one_and_chunking_changes_nothing(sheep, monkeypatch):
    sketches = sheep[5:9]
    n_max = max(len(s) for s in sketches) + 1
    s5 = torch.from_numpy(np.stack([stroke3_to_stroke5(s, n_max) for s in sketches]))
    lengths = torch.tensor([len(s) for s in sketches])
    off, pen = s5[..., :2], s5[..., 2] > 0.5
    bounds = absolute_bounds(off, lengths)
    batch = rasterize_differentiable(off, pen, bounds, size=28)
    for i, n in enumerate(lengths.tolist()):
        alone = rasterize_differentiable(off[i : i + 1, :n], pen[i : i + 1, :n], bounds[i : i + 1])
        torch.testing.assert_close(batch[i : i + 1], alone)
    monkeypatch.setattr(diff_raster, "_DIFF_RASTER_ELEMENTS_PER_CHUNK", 1)  # one segment at a time
    torch.testing.assert_close(rasterize_differentiable(off, pen, bounds, size=28), batch)
    monkeypatch.setattr(diff_raster, "_DIFF_RASTER_ELEMENTS_PER_CHUNK", None)  # all at once
    torch.testing.assert_close(rasterize_differentiable(off, pen, bounds, size=28), batch)


def test_gradients_stay_finite_on_degenerate_input():
    # repeated points (zero-length segments) and pixel centres exactly on a line and on its
    # end points: sqrt and the projection have no derivative there, the gradient must not be NaN
    points = [[1.5, 1.5], [1.5, 1.5], [5.5, 1.5], [5.5, 1.5], [5.5, 6.5]]
    off = offsets_of(points).requires_grad_()
    pen = torch.tensor([[True, True, True, True, False]])
    image = rasterize_differentiable(off, pen, IDENTITY_8, size=8)
    assert image[0, 1, 1].item() == pytest.approx(ON_LINE)
    image.square().sum().backward()
    assert torch.isfinite(off.grad).all()
    assert off.grad.abs().sum() > 0


def test_pixel_loss_stays_finite_for_an_untrained_head(sheep):
    target, lengths = sheep_batch(sheep, count=2)
    raw = 30.0 * torch.randn(*target.shape[:2], 21, generator=torch.Generator().manual_seed(0))
    raw.requires_grad_()
    loss = pixel_loss(mixture_params(raw, 3), target, lengths, generator=torch.Generator())
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(raw.grad).all()


def test_rasteriser_rejects_bad_shapes():
    off = torch.zeros(2, 5, 2)
    with pytest.raises(ValueError, match="pen_down"):
        rasterize_differentiable(off, torch.zeros(2, 4, dtype=torch.bool), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="offsets"):
        rasterize_differentiable(torch.zeros(2, 5, 3), torch.zeros(2, 5), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="bounds"):
        rasterize_differentiable(off, torch.zeros(2, 5, dtype=torch.bool), torch.zeros(2, 2))


# ----------------------------------------------------------------------------- sampling


def single_gaussian(mu_x, mu_y, log_sx, log_sy, rho, shape=(1, 1)) -> MixtureParams:
    def full(v: float) -> torch.Tensor:
        return torch.full((*shape, 1), float(v), dtype=torch.float64)

    return MixtureParams(
        full(0.0), full(mu_x), full(mu_y), full(log_sx), full(log_sy), full(rho),
        torch.zeros(*shape, 3, dtype=torch.float64),
    )  # fmt: skip


def test_reparameterized_samples_have_the_mixture_moments():
    params = single_gaussian(1.0, -2.0, math.log(0.5), math.log(2.0), 0.6, shape=(200, 100))
    xy = sample_offsets_reparameterized(params, torch.Generator().manual_seed(0))
    assert xy.shape == (200, 100, 2)
    flat = xy.reshape(-1, 2)
    mean = torch.tensor([1.0, -2.0], dtype=xy.dtype)
    torch.testing.assert_close(flat.mean(0), mean, atol=0.03, rtol=0)
    cov = torch.cov(flat.T)
    expected = torch.tensor([[0.25, 0.6 * 0.5 * 2.0], [0.6, 4.0]], dtype=xy.dtype)
    expected[1, 0] = expected[0, 1]
    torch.testing.assert_close(cov, expected, atol=0.06, rtol=0)


def test_component_choice_follows_pi_and_gradients_reach_the_means():
    # two far-apart components, pi = (0.2, 0.8), sigmas tiny
    log_pi = torch.log(torch.tensor([0.2, 0.8], dtype=torch.float64)).expand(50, 40, 2)
    mu_x = torch.tensor([-10.0, 10.0], dtype=torch.float64).expand(50, 40, 2).clone()
    mu_x.requires_grad_()
    tiny = torch.full((50, 40, 2), -5.0, dtype=torch.float64)
    zeros = torch.zeros(50, 40, 2, dtype=torch.float64)
    params = MixtureParams(log_pi, mu_x, zeros, tiny, tiny, zeros, torch.zeros(50, 40, 3))
    xy = sample_offsets_reparameterized(params, torch.Generator().manual_seed(0))
    share_right = (xy[..., 0] > 0).double().mean().item()
    assert share_right == pytest.approx(0.8, abs=0.04)
    xy[..., 0].sum().backward()
    # each sample moves one-for-one with the mean of its own component
    assert mu_x.grad.sum().item() == pytest.approx(50 * 40)
    greedy = sample_offsets_reparameterized(params, most_likely_component=True)
    assert (greedy[..., 0] > 9.0).all()
    # the generator makes it reproducible
    again = sample_offsets_reparameterized(params, torch.Generator().manual_seed(0))
    torch.testing.assert_close(again, xy.detach())


def test_a_diverged_mixture_gives_nan_offsets_not_a_traceback():
    """NaN mixture weights (a model diverged at --lr 1): the sample is NaN, and so the loss,
    which the Trainer skips; torch.multinomial raised before, a traceback mid-training."""
    params = single_gaussian(1.0, -2.0, 0.0, 0.0, 0.0, shape=(2, 3))
    params = params._replace(log_pi=torch.full_like(params.log_pi, float("nan")))
    xy = sample_offsets_reparameterized(params, torch.Generator().manual_seed(0))
    assert xy.shape == (2, 3, 2)


# ----------------------------------------------------------------------------- loss


def test_gaussian_blur_is_a_normalised_separable_gaussian():
    image = torch.zeros(2, 21, 21, dtype=torch.float64)
    image[0, 10, 10] = 1.0
    blurred = gaussian_blur(image, sigma=2.0)
    assert blurred.shape == image.shape
    assert blurred[0].sum().item() == pytest.approx(1.0)
    assert blurred[1].abs().max().item() == 0.0
    # the ratio to the centre is exp(-r^2 / (2 sigma^2)), along axes and diagonals
    centre = blurred[0, 10, 10]
    assert (blurred[0, 10, 12] / centre).item() == pytest.approx(math.exp(-4 / 8))
    assert (blurred[0, 11, 11] / centre).item() == pytest.approx(math.exp(-2 / 8))
    torch.testing.assert_close(blurred[0], blurred[0].T)
    with pytest.raises(ValueError, match="sigma"):
        gaussian_blur(image, sigma=0.0)


def perfect_prediction(target: torch.Tensor, mixtures: int = 3) -> torch.Tensor:
    """Raw mixture outputs whose first component sits on the target offsets, sigma e^-5."""
    batch, steps = target.shape[:2]
    raw = torch.zeros(batch, steps, 6 * mixtures + 3)
    raw[..., 0:3] = torch.where(target[..., 2:3] > 0.5, 5.0, -5.0) * torch.tensor([1.0, 0, 0])
    raw[..., 3] = 10.0  # pi logits: component 0
    raw[..., 3 + mixtures] = target[..., 0]
    raw[..., 3 + 2 * mixtures] = target[..., 1]
    raw[..., 3 + 3 * mixtures : 3 + 5 * mixtures] = -5.0
    return raw


def sheep_batch(sheep: list[np.ndarray], count: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    sketches = [s / 15.0 for s in sheep[:count]]  # roughly unit-variance offsets
    for s, original in zip(sketches, sheep[:count], strict=True):
        s[:, 2] = original[:, 2]
    n_max = max(len(s) for s in sketches) + 1
    target = torch.from_numpy(np.stack([stroke3_to_stroke5(s, n_max) for s in sketches]))
    return target, torch.tensor([len(s) for s in sketches])


def test_pixel_loss_is_lowest_for_the_right_drawing(sheep):
    target, lengths = sheep_batch(sheep)
    generator = torch.Generator().manual_seed(0)
    right = mixture_params(perfect_prediction(target), 3)
    loss_right = pixel_loss(right, target, lengths, generator=generator)
    wrong_raw = perfect_prediction(target.flip(0))
    # other sheep drawn in this sheep's frame
    loss_wrong = pixel_loss(mixture_params(wrong_raw, 3), target, lengths, generator=generator)
    assert loss_right.ndim == 0
    assert loss_right < loss_wrong
    # the blurred target against itself is the entropy floor: the right drawing reaches it
    assert loss_right.item() == pytest.approx(_self_entropy(target, lengths), rel=0.02)


def _self_entropy(target: torch.Tensor, lengths: torch.Tensor) -> float:
    steps = target.shape[1]
    next_real = torch.zeros(target.shape[:2], dtype=torch.bool)
    next_real[:, :-1] = torch.arange(1, steps) < lengths[:, None]
    off = target[..., :2]
    image = rasterize_differentiable(
        off, (target[..., 2] > 0.5) & next_real, absolute_bounds(off, lengths), 28
    )
    p = gaussian_blur(image).clamp(1e-12, 1 - 1e-12)
    return (-(p * p.log() + (1 - p) * (1 - p).log())).mean().item()


def test_pixel_loss_ignores_steps_past_the_end(sheep):
    target, lengths = sheep_batch(sheep)
    raw = perfect_prediction(target) + 0.3 * torch.randn(*target.shape[:2], 21)
    generator = torch.Generator().manual_seed(1)
    base = pixel_loss(mixture_params(raw, 3), target, lengths, generator=generator)
    past_end = torch.arange(target.shape[1])[None, :, None] >= lengths[:, None, None]
    changed_raw = torch.where(past_end, torch.randn_like(raw) * 10, raw)
    changed_target = torch.where(past_end, torch.randn_like(target), target)
    other = pixel_loss(
        mixture_params(changed_raw, 3),
        changed_target,
        lengths,
        generator=torch.Generator().manual_seed(1),
    )
    torch.testing.assert_close(other, base)


def test_pixel_loss_gradient_pulls_a_shifted_stroke_back(sheep):
    target, lengths = sheep_batch(sheep, count=2)
    raw = perfect_prediction(target)
    raw[:, 0, 3 + 3] += 0.4  # shift every prediction by 0.4 units in x at the first point
    raw.requires_grad_()
    loss = pixel_loss(mixture_params(raw, 3), target, lengths, generator=torch.Generator())
    loss.backward()
    # moving mu_x of the first point back to the target lowers the loss
    assert (raw.grad[:, 0, 3 + 3] > 0).all()


def test_pixel_loss_rejects_misaligned_inputs():
    target = torch.zeros(2, 6, 5)
    params = mixture_params(torch.zeros(2, 7, 6 * 3 + 3), 3)
    with pytest.raises(ValueError, match="pred_params"):
        pixel_loss(params, target, torch.tensor([3, 4]))
    with pytest.raises(ValueError, match="lengths"):
        pixel_loss(mixture_params(torch.zeros(2, 6, 21), 3), target, torch.tensor([3]))


def test_curriculum_alpha_rises_by_steps_to_its_cap():
    assert curriculum_alpha(0) == 0.0
    assert curriculum_alpha(9_999) == 0.0
    assert curriculum_alpha(10_000) == 0.05
    assert curriculum_alpha(35_000) == 0.15
    assert curriculum_alpha(99_999) == 0.45
    assert curriculum_alpha(100_000) == 0.5
    assert curriculum_alpha(300_000) == 0.5
    assert curriculum_alpha(140_000, alpha_max=0.75) == 0.7
    assert curriculum_alpha(10**6, alpha_max=0.75) == 0.75
    assert curriculum_alpha(500, increment=0.1, every=100) == 0.5
    with pytest.raises(ValueError):
        curriculum_alpha(-1)


def test_sketchembednet_loss_weights_the_terms():
    pen, stroke, pixel = torch.tensor(1.0), torch.tensor(2.0), torch.tensor(4.0)
    assert sketchembednet_loss(pen, stroke, pixel, 0.0).item() == 3.0
    assert sketchembednet_loss(pen, stroke, pixel, 0.5).item() == 1.0 + 1.0 + 2.0
    assert sketchembednet_loss(pen, stroke, pixel, 1.0).item() == 5.0
    with pytest.raises(ValueError, match="alpha"):
        sketchembednet_loss(pen, stroke, pixel, 1.5)
