"""Conv-VAE: the few-shot baseline of SketchEmbedNet (Wang et al. 2021, section 5).

The encoder is the same :class:`sketchrnn.nn.encoders.ImageEncoder` (Conv4 by default)
that SketchEmbedNet uses, giving ``mu`` and ``sigma_hat`` (a log-variance, as in
SketchEmbedNet: ``z = mu + exp(sigma_hat / 2) * eps``). The decoder maps ``z`` through a linear
layer to a ``64 x b x b`` map (``b = ceil(image_size / 16)``) and four stride-2 transposed
convolutions back up to ``16 b`` pixels, centre-cropped to the image size; its outputs are
Bernoulli logits. Loss per image: binary cross-entropy summed over pixels plus
``kl_weight`` times the KL divergence to ``N(0, I)``, averaged over the batch.

Typical use::

    model = ConvVAE(ConvVAEConfig(z_size=64))
    train_conv_vae(model, images, steps=2000)   # images (N, 1, 28, 28) in [0, 1]
    mu = model.embed(images)                    # (N, 64), the few-shot embedding

It is trained by :func:`train_conv_vae`, a plain loop: the shared Trainer is built around
stroke batches (stroke targets, scale factors, stroke validation losses), which this model does
not have.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sketchrnn.models.base import (
    ConfigDict,
    load_pretrained_model,
    save_pretrained_files,
)
from sketchrnn.nn.encoders import BACKBONES, ImageEncoder
from sketchrnn.progress import progress_bar

__all__ = ["ConvVAEConfig", "ConvVAE", "train_conv_vae", "FORMAT_NAME"]

FORMAT_NAME = "sketchrnn.ConvVAE"
FORMAT_VERSION = 1
_N_UPSAMPLES = 4  # mirrors the encoder's four 2x poolings


@dataclass
class ConvVAEConfig(ConfigDict):
    """Hyperparameters of :class:`ConvVAE`, saved beside its weights."""

    backbone: str = "conv4"
    in_channels: int = 1
    image_size: int = 28
    z_size: int = 256
    decoder_width: int = 64
    kl_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {self.backbone!r}: use one of {BACKBONES}")
        if self.image_size < 2**_N_UPSAMPLES:
            raise ValueError(f"image_size must be at least {2**_N_UPSAMPLES}")
        if min(self.in_channels, self.z_size, self.decoder_width) < 1:
            raise ValueError("in_channels, z_size and decoder_width must be positive")
        if self.kl_weight < 0:
            raise ValueError(f"kl_weight must be >= 0, got {self.kl_weight}")


class ConvVAE(nn.Module):
    """Image encoder -> ``z`` -> transposed-conv decoder -> Bernoulli logits of the image."""

    def __init__(self, config: ConvVAEConfig):
        super().__init__()
        self.config = config
        self.encoder = ImageEncoder(
            config.backbone, config.in_channels, config.z_size, config.image_size
        )
        self.base_size = math.ceil(config.image_size / 2**_N_UPSAMPLES)
        width = config.decoder_width
        self.project = nn.Linear(config.z_size, width * self.base_size**2)
        layers: list[nn.Module] = []
        for i in range(_N_UPSAMPLES):
            last = i == _N_UPSAMPLES - 1
            out_channels = config.in_channels if last else width
            layers.append(nn.ConvTranspose2d(width, out_channels, 4, stride=2, padding=1))
            if not last:
                layers += [nn.BatchNorm2d(width), nn.ReLU()]
        self.decoder = nn.Sequential(*layers)

    def encode(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """``(batch, C, S, S)`` -> ``mu``, ``sigma_hat`` ``(batch, z_size)``; ValueError for a
        wrong image shape."""
        return self.encoder(images)

    def decode(self, z: Tensor) -> Tensor:
        """``z`` ``(batch, z_size)`` -> pixel logits ``(batch, C, S, S)``."""
        width, base = self.config.decoder_width, self.base_size
        logits = self.decoder(self.project(z).view(-1, width, base, base))
        # The decoder reaches 16 * base >= S pixels: keep the centre S x S.
        margin = (logits.shape[-1] - self.config.image_size) // 2
        size = self.config.image_size
        return logits[..., margin : margin + size, margin : margin + size]

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``images`` ``(batch, C, S, S)`` -> ``(logits (batch, C, S, S), mu, sigma_hat)``,
        decoding a reparameterised sample of ``z``."""
        mu, sigma_hat = self.encode(images)
        z = mu + torch.exp(0.5 * sigma_hat) * torch.randn_like(mu)
        return self.decode(z), mu, sigma_hat

    def losses(self, images: Tensor) -> dict[str, Tensor]:
        """``loss = recon + kl_weight * kl`` for ``images`` ``(batch, C, S, S)`` in ``[0, 1]``:
        BCE summed over pixels and KL summed over ``z``, each averaged over the batch."""
        logits, mu, sigma_hat = self(images)
        recon = F.binary_cross_entropy_with_logits(logits, images, reduction="sum")
        recon = recon / len(images)
        kl = -0.5 * torch.sum(1 + sigma_hat - mu.pow(2) - sigma_hat.exp()) / len(images)
        return {"recon": recon, "kl": kl, "loss": recon + self.config.kl_weight * kl}

    @torch.no_grad()
    def embed(self, images: Tensor) -> Tensor:
        """The few-shot embedding ``mu`` ``(batch, z_size)`` of ``images`` ``(batch, C, S, S)``,
        in eval mode (BatchNorm running statistics), so it does not depend on the batch."""
        was_training = self.training
        self.eval()
        try:
            mu, _ = self.encode(images.to(self.project.weight.device, torch.float32))
        finally:
            self.train(was_training)
        return mu

    @torch.no_grad()
    def reconstruct(self, images: Tensor) -> Tensor:
        """Pixel probabilities ``(batch, C, S, S)`` decoded from ``mu`` of ``images``."""
        return torch.sigmoid(self.decode(self.embed(images)))

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Write ``config.json`` and ``model.safetensors`` into ``directory``, each atomically."""
        save_pretrained_files(
            directory, FORMAT_NAME, FORMAT_VERSION, self.config.to_dict(), self.state_dict()
        )

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> ConvVAE:
        """Load a model written by :meth:`save_pretrained`; :class:`ModelFileError` for a
        missing, foreign or truncated file or a config that does not match the weights."""
        model, _ = load_pretrained_model(
            directory, cls, ConvVAEConfig, FORMAT_NAME, FORMAT_VERSION, label="Conv-VAE"
        )
        return model


def train_conv_vae(
    model: ConvVAE,
    images: np.ndarray | Tensor,
    steps: int = 2000,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    progress: bool = True,
) -> list[float]:
    """Train ``model`` on ``images`` ``(N, C, S, S)`` or ``(N, S, S)`` in ``[0, 1]`` with Adam,
    sampling batches with replacement from a seeded generator. Returns each step's loss.

    Leaves the model in eval mode. ValueError for images of the wrong shape or range.
    """
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be positive, got {steps}, {batch_size}")
    data = torch.as_tensor(np.asarray(images, dtype=np.float32))
    if data.dim() == 3:
        data = data.unsqueeze(1)  # greyscale (N, S, S) -> (N, 1, S, S)
    if len(data) == 0:
        raise ValueError("no images to train on")
    model.encoder.check_images(data[:1])
    if float(data.min()) < 0 or float(data.max()) > 1:
        raise ValueError("images must lie in [0, 1] (1 = ink) for the Bernoulli likelihood")
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # the reparameterisation noise, without touching global state
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        device = model.project.weight.device
        model.train()
        history = []
        bar = progress_bar(range(steps), desc="conv-vae", unit="step", disable=not progress)
        for _ in bar:
            indices = torch.randint(len(data), (batch_size,), generator=generator)
            loss = model.losses(data[indices].to(device))["loss"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            history.append(loss.item())
            bar.set_postfix(loss=f"{history[-1]:.2f}", refresh=False)
    model.eval()
    return history
