"""Conv-VAE baseline: shapes, training (through the Trainer) lowers the loss, save/load round
trip, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sketchrnn.baselines import train_quick_conv_vae
from sketchrnn.datasets import ImageOnlyBatch, ImageOnlyDataset
from sketchrnn.models import load_model
from sketchrnn.models.conv_vae import ConvVAE, ConvVAEConfig
from sketchrnn.models.pretrained import ModelFileError
from sketchrnn.train import Trainer
from sketchrnn.train_config import TrainConfig


def train_conv_vae(model, images, steps, batch_size=128, lr=1e-3, seed=0) -> list[float]:
    """Train through the Trainer with the Conv-VAE's defaults; each step's loss."""
    config = TrainConfig.for_model(
        ConvVAE, max_steps=steps, batch_size=batch_size, lr=lr, seed=seed, log_every=1,
        eval_every=0, save_every=0, progress=False, out_dir=None, device="cpu",
    )  # fmt: skip
    trainer = Trainer(model, config, ImageOnlyDataset(images))
    trainer.fit()
    model.eval()
    return [row["loss"] for row in trainer.log_rows if row["split"] == "train"]


def blob_images(n: int, size: int = 28, seed: int = 0) -> np.ndarray:
    """``(n, size, size)`` images of a filled square at a random place (ink 1)."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, size, size), dtype=np.float32)
    for image in images:
        x, y = rng.integers(2, size - 10, 2)
        image[y : y + 8, x : x + 8] = 1.0
    return images


@pytest.mark.parametrize("image_size", [16, 28, 33])
def test_shapes(image_size):
    model = ConvVAE(ConvVAEConfig(image_size=image_size, z_size=12))
    images = torch.rand(3, 1, image_size, image_size)
    logits, mu, sigma_hat = model(images)
    assert logits.shape == images.shape
    assert mu.shape == sigma_hat.shape == (3, 12)
    assert model.embed(images).shape == (3, 12)
    losses = model.losses(ImageOnlyBatch(images))
    assert set(losses) == {"recon", "kl", "loss"} and torch.isfinite(losses["loss"])


def test_embedding_does_not_depend_on_the_batch():
    model = ConvVAE(ConvVAEConfig(z_size=8))
    images = torch.rand(5, 1, 28, 28)
    torch.testing.assert_close(model.embed(images)[:2], model.embed(images[:2]))


@pytest.mark.slow
def test_training_lowers_the_loss():
    torch.manual_seed(0)
    model = ConvVAE(ConvVAEConfig(z_size=16, decoder_width=16))
    images = blob_images(32)
    history = train_conv_vae(model, images, steps=40, batch_size=16, lr=3e-3)
    assert len(history) == 40
    assert np.mean(history[-5:]) < 0.6 * np.mean(history[:5])
    assert not model.training


def test_training_is_seeded_and_leaves_the_global_rng_alone():
    images = blob_images(16)
    results = []
    for _ in range(2):
        torch.manual_seed(1)
        model = ConvVAE(ConvVAEConfig(z_size=8, decoder_width=8))
        results.append(train_conv_vae(model, images, steps=3, batch_size=4))
    assert results[0] == results[1]
    # The quick baseline of the few-shot table: seeded, the global RNG untouched.
    weights = []
    for _ in range(2):
        state = torch.random.get_rng_state()
        model = train_quick_conv_vae(images, steps=3, seed=2, z_size=8, progress=False)
        assert torch.equal(torch.random.get_rng_state(), state)
        assert not model.training and model.config.image_size == 28
        weights.append(model.state_dict())
    for name, value in weights[0].items():
        assert torch.equal(value, weights[1][name]), name


def test_save_and_load_round_trip(tmp_path):
    model = ConvVAE(ConvVAEConfig(z_size=8, decoder_width=8, kl_weight=0.5))
    train_conv_vae(model, blob_images(8), steps=2, batch_size=4)
    model.save_pretrained(tmp_path / "vae")
    loaded = ConvVAE.from_pretrained(tmp_path / "vae")
    assert loaded.config == model.config
    assert isinstance(load_model(tmp_path / "vae"), ConvVAE)  # the registry knows it
    images = torch.as_tensor(blob_images(4)).unsqueeze(1)
    torch.testing.assert_close(loaded.embed(images), model.embed(images))


def test_bad_files_and_inputs_are_clear_errors(tmp_path):
    with pytest.raises(ModelFileError, match="no such Conv-VAE directory"):
        ConvVAE.from_pretrained(tmp_path / "missing")
    model = ConvVAE(ConvVAEConfig(z_size=8))
    model.save_pretrained(tmp_path / "vae")
    (tmp_path / "vae" / "model.safetensors").write_bytes(b"truncated")
    with pytest.raises(ModelFileError, match="safetensors"):
        ConvVAE.from_pretrained(tmp_path / "vae")
    with pytest.raises(ValueError, match="expects images of shape"):
        model.embed(torch.rand(2, 1, 20, 20))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        train_conv_vae(model, np.full((4, 28, 28), 255.0), steps=1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        train_quick_conv_vae(np.full((4, 28, 28), 255.0), steps=1, progress=False)
    with pytest.raises(ValueError, match="unknown backbone"):
        ConvVAEConfig(backbone="vgg")
