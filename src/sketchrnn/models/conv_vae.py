"""Conv-VAE: the few-shot baseline of SketchEmbedNet (Wang et al. 2021, section 5).

The encoder is the same :class:`sketchrnn.nn.encoders.ImageEncoder` (Conv4 by default)
that SketchEmbedNet uses, giving ``mu`` and ``sigma_hat`` (a log-variance, as in
SketchEmbedNet: ``z = mu + exp(sigma_hat / 2) * eps``). The decoder maps ``z`` through a linear
layer to a ``64 x b x b`` map (``b = ceil(image_size / 16)``) and four stride-2 transposed
convolutions back up to ``16 b`` pixels, centre-cropped to the image size; its outputs are
Bernoulli logits. Loss per image: binary cross-entropy summed over pixels plus
``kl_weight`` times the KL divergence to ``N(0, I)``, averaged over the batch.

Typical use (:func:`sketchrnn.baselines.train_quick_conv_vae` does the same in one call)::

    model = ConvVAE(ConvVAEConfig(z_size=64))
    config = TrainConfig.for_model(ConvVAE, max_steps=2000, out_dir=None)
    Trainer(model, config, ImageOnlyDataset(images)).fit()   # images (N, S, S) in [0, 1]
    mu = model.embed(images)                                 # (N, 64), the few-shot embedding

Batches are anything with ``images`` ``(batch, C, S, S)``
(:class:`sketchrnn.datasets.ImageOnlyBatch`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sketchrnn.datasets import ImageOnlyDataset, ImageSketchDataset, SketchDataset
from sketchrnn.models.config import (
    CLASSES_HELP,
    MAX_IMAGE_SIDE,
    MAX_LOSS_WEIGHT,
    MAX_WIDTH,
    UnitsConfig,
    option,
)
from sketchrnn.models.interface import SketchModel
from sketchrnn.nn.encoders import BACKBONES, ImageEncoder
from sketchrnn.nn.gaussian import kl_to_standard_normal, reparameterize

__all__ = ["ConvVAEConfig", "ConvVAE"]

_N_UPSAMPLES = 4  # mirrors the encoder's four 2x poolings


@dataclass
class ConvVAEConfig(UnitsConfig):
    """Hyperparameters of :class:`ConvVAE`, saved beside its weights. Its units are those of
    every model config; a Conv-VAE takes and gives pixels, so its ``scale_factor`` stays
    ``None`` (no strokes to normalise)."""

    backbone: str = option("conv4", "image encoder", choices=BACKBONES)
    in_channels: int = option(1, "image channels", cli=False, low=1, high=16)
    image_size: int = option(28, "image side in pixels", low=2**_N_UPSAMPLES, high=MAX_IMAGE_SIDE)
    z_size: int = option(256, "embedding (latent) size", low=1, high=MAX_WIDTH)
    decoder_width: int = option(
        64, "channels of the transposed-conv decoder", low=1, high=MAX_WIDTH
    )
    kl_weight: float = option(1.0, "weight of the KL term", low=0, high=MAX_LOSS_WEIGHT)
    scale_factor: float | None = option(
        None, "unused: a Conv-VAE has no strokes (kept for the shared interface)", cli=False
    )
    classes: list[str] = option(factory=list, help=CLASSES_HELP, cli=False)

    def __post_init__(self) -> None:
        self.check_bounds()
        if self.backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {self.backbone!r}: use one of {BACKBONES}")
        self._check_units()


class ConvVAE(SketchModel):
    """Image encoder -> ``z`` -> transposed-conv decoder -> Bernoulli logits of the image."""

    config_class = ConvVAEConfig
    # 2: scale_factor and classes joined the config.
    FORMAT_VERSION = 2
    FILE_LABEL = "Conv-VAE"
    # A plain loop: Adam at a constant 1e-3 (no decay, no clipping), batches of 128 images.
    TRAIN_DEFAULTS: ClassVar[dict[str, Any]] = {
        "batch_size": 128,
        "lr": 1e-3,
        "lr_decay": 1.0,
        "min_lr": 0.0,
        "grad_clip": math.inf,
        "augment": False,
        "max_steps": 2000,
    }
    reads_images = True
    PROGRESS_TERMS = {"loss": "loss"}
    LOSS_COLUMNS = {"recon": "recon", "kl": "kl", "loss": "loss"}

    config: ConvVAEConfig

    def __init__(self, config: ConvVAEConfig):
        super().__init__(config)
        self.encoder = ImageEncoder(
            cast(Any, config.backbone), config.in_channels, config.z_size, config.image_size
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

    @classmethod
    def dataset(cls, config: Any, sketches: SketchDataset) -> ImageOnlyDataset:
        """The sketches' images alone, rendered once at ``config.image_size`` as
        SketchEmbedNet's are (:class:`sketchrnn.datasets.ImageOnlyDataset`)."""
        images = ImageSketchDataset(sketches, config.image_size, in_channels=config.in_channels)
        return ImageOnlyDataset(images.image_tensor(np.arange(len(sketches))))

    def encode(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """``(batch, C, S, S)`` -> ``mu``, ``sigma_hat`` ``(batch, z_size)``; ValueError for a
        wrong image shape."""
        return self.encoder(images)

    def posterior(self, batch: Any) -> tuple[Tensor, Tensor]:
        """:meth:`encode` of a batch's ``images``."""
        return self.encode(batch.images)

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
        return self.decode(reparameterize(mu, sigma_hat)), mu, sigma_hat

    def losses(self, batch: Any, step: int | None = None) -> dict[str, Tensor]:
        """``loss = recon + kl_weight * kl`` for ``batch.images`` ``(batch, C, S, S)`` in
        ``[0, 1]``: BCE summed over pixels and KL summed over ``z``, each averaged over the
        batch (the same objective at every ``step``)."""
        images = batch.images
        logits, mu, sigma_hat = self(images)
        recon = F.binary_cross_entropy_with_logits(logits, images, reduction="sum")
        recon = recon / len(images)
        kl = kl_to_standard_normal(mu, sigma_hat, per_dimension=False)
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
