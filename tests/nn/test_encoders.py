"""Conv4 / ResNet12 image encoders: output shapes, gradients, and clear input errors."""

from __future__ import annotations

import pytest
import torch

from sketchrnn.nn.encoders import Conv4, ImageEncoder, ResNet12


@pytest.mark.parametrize(
    ("backbone", "in_channels", "image_size", "feature_size"),
    [
        ("conv4", 1, 28, 64),  # 28 -> 14 -> 7 -> 3 -> 1
        ("conv4", 3, 84, 64 * 5 * 5),  # 84 -> 42 -> 21 -> 10 -> 5
        ("resnet12", 1, 28, 512),
        ("resnet12", 3, 84, 512),
    ],
)
def test_shapes(backbone, in_channels, image_size, feature_size):
    torch.manual_seed(0)
    encoder = ImageEncoder(backbone, in_channels=in_channels, z_size=32, image_size=image_size)
    images = torch.rand(2, in_channels, image_size, image_size)
    assert encoder.feature_size == feature_size
    assert encoder.features(images).shape == (2, feature_size)
    mu, sigma_hat = encoder(images)
    assert mu.shape == (2, 32) and sigma_hat.shape == (2, 32)
    assert not torch.equal(mu, sigma_hat)


def test_default_z_size_is_256():
    mu, sigma_hat = ImageEncoder()(torch.rand(3, 1, 28, 28))
    assert mu.shape == sigma_hat.shape == (3, 256)


@pytest.mark.parametrize("backbone", ["conv4", "resnet12"])
def test_gradients_reach_every_parameter(backbone):
    torch.manual_seed(0)
    encoder = ImageEncoder(backbone, z_size=8, image_size=28)
    images = torch.rand(4, 1, 28, 28, requires_grad=True)
    mu, sigma_hat = encoder(images)
    (mu.square().sum() + sigma_hat.exp().sum()).backward()
    for name, parameter in encoder.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name
    assert images.grad is not None and images.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("shape", "fragment"),
    [
        ((2, 3, 28, 28), r"\(batch, 1, 28, 28\), got \(2, 3, 28, 28\)"),  # RGB into greyscale
        ((2, 1, 84, 84), r"got \(2, 1, 84, 84\)"),  # wrong size
        ((1, 28, 28), r"got \(1, 28, 28\)"),  # no channel axis
    ],
)
def test_wrong_images_raise_value_error(shape, fragment):
    encoder = ImageEncoder("conv4", in_channels=1, image_size=28)
    with pytest.raises(ValueError, match=fragment):
        encoder(torch.rand(*shape))


def test_bad_configuration():
    with pytest.raises(ValueError, match="unknown backbone"):
        ImageEncoder("vgg")
    with pytest.raises(ValueError, match="at least 16"):
        ImageEncoder("conv4", image_size=8)


def test_backbones_alone():
    assert Conv4(in_channels=3)(torch.rand(1, 3, 28, 28)).shape == (1, 64)
    assert ResNet12()(torch.rand(1, 1, 32, 32)).shape == (1, 512)
    assert Conv4().out_features(84) == 1600
