"""SketchEmbedNet (Wang et al. 2021): pixels in, strokes out; its ``mu`` is a few-shot embedding.

An image ``(batch, C, S, S)`` goes through a convolutional encoder (Conv4 or ResNet12) to
``mu``, ``sigma_hat``; ``z = mu + exp(sigma_hat / 2) * eps``; a sketch-rnn decoder (initial
state ``tanh(W z + b)``, input ``[S_{i-1}; z]``, mixture-density head) draws the sketch.

Batches follow :class:`sketchrnn.image_data.ImageBatch`: ``images`` ``(batch, C, S, S)`` and
the stroke rows of :class:`sketchrnn.data.Batch` (``strokes`` ``(batch, N_max + 1, 5)`` with
the start token in row 0, ``lengths`` ``(batch,)``).

Loss (section 3): ``L = L_pen + (1 - alpha) L_stroke + alpha L_pixel (+ kl_weight L_KL)``,
``alpha`` from the curriculum of Appendix B (:func:`sketchrnn.nn.pixel_loss.curriculum_alpha`).
``L_stroke`` and ``L_pen`` are normalised exactly like sketch-rnn's ``L_s`` and ``L_p``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from sketchrnn.models.base import (
    ConfigDict,
    load_pretrained_model,
    save_pretrained_files,
)
from sketchrnn.models.sketch_rnn import SketchRNNOutput
from sketchrnn.nn.cells import CELL_TYPES, State
from sketchrnn.nn.decoder import MixtureDecoder
from sketchrnn.nn.encoders import BACKBONES, ImageEncoder
from sketchrnn.nn.mixture import MixtureParams, reconstruction_losses
from sketchrnn.nn.pixel_loss import curriculum_alpha, pixel_loss, sketchembednet_loss

__all__ = ["SketchEmbedNetConfig", "SketchEmbedNet", "FORMAT_NAME"]

FORMAT_NAME = "sketchrnn.SketchEmbedNet"
# 2: the decoder's weights moved under decoder.* (cell, init_state, output).
FORMAT_VERSION = 2


@dataclass
class SketchEmbedNetConfig(ConfigDict):
    """Hyper-parameters of :class:`SketchEmbedNet`; saved beside the weights as ``config.json``.

    ``pixel_size`` is the raster side used by ``L_pixel`` (``None``: ``image_size``);
    ``blur_sigma`` the Gaussian blur in pixels. ``kl_weight > 0`` adds the optional KL prior
    (the paper trains without it). ``alpha_*`` is the pixel-loss curriculum.
    """

    backbone: str = "conv4"
    in_channels: int = 1
    image_size: int = 28
    z_size: int = 256
    dec_hidden: int = 1024
    cell: str = "hyper"
    hyper_hidden: int = 256
    hyper_embed: int = 64
    num_mixtures: int = 30
    recurrent_dropout: float = 0.0
    kl_weight: float = 0.0
    alpha_max: float = 0.5
    alpha_increment: float = 0.05
    alpha_every: int = 10_000
    pixel_size: int | None = None
    blur_sigma: float = 2.0
    max_seq_len: int = 64

    # Class constants (no annotation, so not dataclass fields): what generate.py asks of a
    # model. The decoder always has a z, and there is no class embedding.
    conditional = True
    num_classes = 0

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(
                f"backbone must be one of {', '.join(BACKBONES)}, got {self.backbone!r}"
            )
        if self.cell not in CELL_TYPES:
            raise ValueError(f"cell must be one of {', '.join(CELL_TYPES)}, got {self.cell!r}")
        for name in ("in_channels", "z_size", "dec_hidden", "num_mixtures", "max_seq_len"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.image_size < 16:
            raise ValueError(f"image_size must be >= 16 (four 2x poolings), got {self.image_size}")
        if self.pixel_size is not None and self.pixel_size < 2:
            raise ValueError(f"pixel_size must be >= 2, got {self.pixel_size}")
        if not 0.0 <= self.recurrent_dropout < 1.0:
            raise ValueError(f"recurrent_dropout must be in [0, 1), got {self.recurrent_dropout}")
        if self.kl_weight < 0:
            raise ValueError(f"kl_weight must be >= 0, got {self.kl_weight}")
        if self.blur_sigma <= 0:
            raise ValueError(f"blur_sigma must be positive, got {self.blur_sigma}")
        # Validates alpha_max, alpha_every (raises ValueError with the reason).
        curriculum_alpha(0, self.alpha_max, self.alpha_increment, self.alpha_every)

    PRESETS = {
        # Appendix B: latent 256, HyperLSTM of output size 1024, hyper embedding 64, M = 30.
        "paper": dict(z_size=256, dec_hidden=1024, cell="hyper", hyper_embed=64, num_mixtures=30),
        # Trains on a laptop CPU: a LayerNorm LSTM of 256 (the HyperLSTM is ~2x slower).
        "small": dict(z_size=64, dec_hidden=256, cell="layernorm", num_mixtures=10),
    }

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> SketchEmbedNetConfig:
        """A named configuration (``"paper"``, ``"small"``) with overrides."""
        if name not in cls.PRESETS:
            raise ValueError(f"unknown preset {name!r}; expected one of {', '.join(cls.PRESETS)}")
        return cls(**{**cls.PRESETS[name], **overrides})

    @property
    def raster_size(self) -> int:
        """Side of the canvas ``L_pixel`` draws on."""
        return self.image_size if self.pixel_size is None else int(self.pixel_size)

    def alpha_at(self, step: int | None) -> float:
        """The pixel-loss weight at training ``step``; ``None`` (evaluation): ``alpha_max``,
        the final objective, so that validation losses of different steps compare."""
        if step is None:
            return float(self.alpha_max)
        return curriculum_alpha(step, self.alpha_max, self.alpha_increment, self.alpha_every)


class SketchEmbedNet(nn.Module):
    """Image encoder -> ``z`` -> autoregressive mixture-density stroke decoder."""

    #: The Trainer passes ``images`` and the step to :meth:`losses` for models that say so.
    uses_images = True

    def __init__(self, config: SketchEmbedNetConfig):
        super().__init__()
        self.config = config
        self.scale_factor: float | None = None
        self.classes: list[str] = []
        self.encoder = ImageEncoder(
            config.backbone, config.in_channels, config.z_size, config.image_size
        )
        # The decoder is sketch-rnn's conditional decoder with the image's z in place of the
        # stroke encoder's (the same MixtureDecoder as SketchRNN's), z as its conditioning.
        self.decoder = MixtureDecoder(
            config.cell,
            config.z_size,
            config.dec_hidden,
            config.num_mixtures,
            z_size=config.z_size,
            recurrent_dropout=config.recurrent_dropout,
            hyper_hidden=config.hyper_hidden,
            hyper_embed=config.hyper_embed,
        )

    # ------------------------------------------------------------------------- encoder

    def encode(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """``images`` ``(batch, C, S, S)`` -> ``mu``, ``sigma_hat`` ``(batch, z_size)``.
        ValueError for a wrong shape (the encoder checks channels and size)."""
        return self.encoder(images)

    @torch.no_grad()
    def embed(self, images: Tensor) -> Tensor:
        """The few-shot embedding ``mu`` ``(batch, z_size)`` of ``images`` ``(batch, C, S, S)``.

        Deterministic: eval mode (BatchNorm uses its running statistics, so an image's
        embedding does not depend on the rest of the batch), no noise, no gradient.
        ValueError for a wrong shape, or for an empty image (no ink: nothing to draw).
        """
        was_training = self.training
        self.eval()
        try:
            images = images.to(self.decoder.output.weight.device, torch.float32)
            mu, _ = self.encode(images)
        finally:
            self.train(was_training)
        empty = (images.flatten(1).amax(dim=1) <= 0).nonzero().flatten().tolist()
        if empty:
            shown = ", ".join(map(str, empty[:10])) + (", ..." if len(empty) > 10 else "")
            raise ValueError(
                f"empty image (no ink) at batch index {shown}: nothing to embed or draw "
                "(ink is the bright value, on a zero background)"
            )
        return mu

    @staticmethod
    def reparameterize(mu: Tensor, sigma_hat: Tensor) -> Tensor:
        """``z = mu + exp(sigma_hat / 2) * N(0, I)``."""
        return mu + torch.exp(0.5 * sigma_hat) * torch.randn_like(mu)

    # ------------------------------------------------------------------------- decoder

    def initial_state(self, z: Tensor | None, batch_size: int | None = None) -> State:
        """Decoder state before the first step: ``tanh(W z + b)`` split into the cell's state
        tensors. ``z`` ``(batch, z_size)``; ``batch_size`` is accepted for generate.py."""
        if z is None:
            raise ValueError("SketchEmbedNet needs z (the embedding of an image) to decode")
        return self.decoder.initial_state(z, z.shape[0])

    def decode(self, inputs: Tensor, z: Tensor) -> MixtureParams:
        """Teacher-forced decoder: ``inputs`` ``(batch, T, 5)`` (rows ``S_0..S_{T-1}``),
        ``z`` ``(batch, z_size)`` -> mixture for the next ``T`` points, ``(batch, T, ...)``."""
        if z is None:
            raise ValueError("SketchEmbedNet needs z (the embedding of an image) to decode")
        return self.decoder.decode(inputs, z, z)

    def decode_step(
        self, x_t: Tensor, state: State, z: Tensor | None = None, labels: Tensor | None = None
    ) -> tuple[MixtureParams, State]:
        """One generation step: previous point ``x_t`` ``(batch, 5)``, ``z`` ``(batch, z_size)``
        -> mixture for the next point (``(batch, M)`` / ``(batch, 3)``) and the new state.
        ``labels`` is accepted (and must be ``None``) so generate.py drives both models."""
        if z is None:
            raise ValueError("SketchEmbedNet needs z to decode")
        if labels is not None:
            raise ValueError("SketchEmbedNet is not class-conditional: labels must be None")
        return self.decoder.decode_step(x_t, state, z)

    # ------------------------------------------------------------------------- training

    def forward(
        self, images: Tensor, strokes: Tensor, lengths: Tensor, *, use_mean: bool = False
    ) -> SketchRNNOutput:
        """Encode the images, then decode the strokes with teacher forcing.

        ``images`` ``(batch, C, S, S)``; ``strokes`` ``(batch, N_max + 1, 5)``; ``lengths``
        ``(batch,)``. ``use_mean=True`` takes ``z = mu`` instead of a sample.
        """
        _check_strokes(images, strokes, lengths)
        mu, sigma_hat = self.encode(images)
        z = mu if use_mean else self.reparameterize(mu, sigma_hat)
        return SketchRNNOutput(self.decode(strokes[:, :-1], z), mu, sigma_hat, z)

    def losses(
        self,
        images: Tensor,
        strokes: Tensor,
        lengths: Tensor,
        step: int | None = None,
        *,
        use_mean: bool = False,
    ) -> dict[str, Tensor]:
        """The loss terms as scalars, each averaged over the batch:

        * ``L_stroke = -1/N_max sum_{i<=n} log p(dx_i, dy_i)`` (sketch-rnn's ``L_s``);
        * ``L_pen = -1/N_max sum_{i<=N_max} sum_k p_k,i log q_k,i``, padding included
          (sketch-rnn's ``L_p``: that is how the model learns to stop);
        * ``L_pixel``: blurred binary cross-entropy of the rasterised reparameterised sample
          against the target (:func:`sketchrnn.nn.pixel_loss.pixel_loss`); computed without
          gradient while ``alpha`` is 0 (logged, but it costs no backward pass);
        * ``L_KL`` as in sketch-rnn (eq. 10), weighted by ``config.kl_weight`` (0 by default);
        * ``alpha`` = ``config.alpha_at(step)`` (``step=None``: ``alpha_max``);
        * ``L_R = L_stroke + L_pen`` (sketch-rnn's reconstruction loss, for comparison);
        * ``loss = L_pen + (1 - alpha) L_stroke + alpha L_pixel + kl_weight L_KL``.
        """
        cfg = self.config
        alpha = cfg.alpha_at(step)
        out = self(images, strokes, lengths, use_mean=use_mean)
        targets = strokes[:, 1:]
        lengths = lengths.to(strokes.device)
        loss_stroke, loss_pen = reconstruction_losses(out.mixture, targets, lengths)
        with torch.set_grad_enabled(torch.is_grad_enabled() and alpha > 0):
            loss_pixel = pixel_loss(
                out.mixture, targets, lengths, cfg.raster_size, sigma=cfg.blur_sigma
            )
        assert out.mu is not None and out.sigma_hat is not None
        kl_terms = 1.0 + out.sigma_hat - out.mu.pow(2) - torch.exp(out.sigma_hat)
        loss_kl = (-0.5 * kl_terms.mean(1)).mean()
        loss = sketchembednet_loss(loss_pen, loss_stroke, loss_pixel, alpha)
        if cfg.kl_weight > 0:
            loss = loss + cfg.kl_weight * loss_kl
        return {
            "L_pen": loss_pen,
            "L_stroke": loss_stroke,
            "L_pixel": loss_pixel,
            "L_KL": loss_kl,
            "L_R": loss_stroke + loss_pen,
            "alpha": torch.tensor(alpha),
            "loss": loss,
        }

    # ------------------------------------------------------------------------- generation

    def generate(
        self,
        images: Tensor,
        temperature: float = 0.5,
        *,
        max_len: int | None = None,
        seed: int | None = None,
    ) -> list[np.ndarray]:
        """Draw each image: ``images`` ``(batch, C, S, S)`` -> ``batch`` stroke-3 ``(k, 3)``
        arrays, decoded from the deterministic embedding ``mu``. Units as everywhere in
        :mod:`sketchrnn.generate`: pixels when ``scale_factor`` is known, else normalised.
        """
        from sketchrnn.generate import decode

        return decode(self, self.embed(images), temperature=temperature, max_len=max_len, seed=seed)

    # ------------------------------------------------------------------------- files

    def save_pretrained(
        self,
        directory: str | os.PathLike,
        scale_factor: float | None = None,
        classes: list[str] | None = None,
    ) -> None:
        """Write ``config.json`` (format, config, scale factor, class names) and
        ``model.safetensors`` into ``directory``, each atomically."""
        scale_factor = self.scale_factor if scale_factor is None else float(scale_factor)
        save_pretrained_files(
            directory,
            FORMAT_NAME,
            FORMAT_VERSION,
            self.config.to_dict(),
            self.state_dict(),
            {
                "scale_factor": scale_factor,
                "classes": list(self.classes if classes is None else classes),
            },
        )

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> SketchEmbedNet:
        """Load a model written by :meth:`save_pretrained`. Raises :class:`ModelFileError`
        for a missing, truncated or foreign file, or a config that does not match the weights."""
        model, meta = load_pretrained_model(
            directory, cls, SketchEmbedNetConfig, FORMAT_NAME, FORMAT_VERSION
        )
        scale_factor = meta.get("scale_factor")
        model.scale_factor = None if scale_factor is None else float(scale_factor)
        model.classes = [str(c) for c in meta.get("classes") or []]
        return model


def _check_strokes(images: Tensor, strokes: Tensor, lengths: Tensor) -> None:
    if strokes.ndim != 3 or strokes.shape[-1] != 5 or strokes.shape[1] < 2:
        raise ValueError(
            f"strokes must be (batch, N_max + 1, 5) with N_max >= 1, got {tuple(strokes.shape)}"
        )
    if images.shape[:1] != strokes.shape[:1] or lengths.shape != strokes.shape[:1]:
        raise ValueError(
            f"images {tuple(images.shape)}, strokes {tuple(strokes.shape)} and lengths "
            f"{tuple(lengths.shape)} must share the batch size"
        )
    if lengths.numel() and int(lengths.max()) > strokes.shape[1] - 1:
        raise ValueError(f"a length of {int(lengths.max())} exceeds N_max = {strokes.shape[1] - 1}")
