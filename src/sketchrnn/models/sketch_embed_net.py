"""SketchEmbedNet (Wang et al. 2021): pixels in, strokes out; its ``mu`` is a few-shot embedding.

An image ``(batch, C, S, S)`` goes through a convolutional encoder (Conv4 or ResNet12) to
``mu``, ``sigma_hat``; ``z = mu + exp(sigma_hat / 2) * eps``; a sketch-rnn decoder (initial
state ``tanh(W z + b)``, input ``[S_{i-1}; z]``, mixture-density head) draws the sketch.

Batches follow :class:`sketchrnn.datasets.ImageBatch`: ``images`` ``(batch, C, S, S)`` and
the stroke rows of :class:`sketchrnn.datasets.Batch` (``strokes`` ``(batch, N_max + 1, 5)`` with
the start token in row 0, ``lengths`` ``(batch,)``).

Loss (section 3): ``L = L_pen + (1 - alpha) L_stroke + alpha L_pixel (+ kl_weight L_KL)``,
``alpha`` from the curriculum of Appendix B (:func:`sketchrnn.nn.pixel_loss.curriculum_alpha`).
``L_stroke`` and ``L_pen`` are normalised exactly like sketch-rnn's ``L_s`` and ``L_p``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, cast

import numpy as np
import torch
from torch import Tensor

from sketchrnn.datasets import ImageSketchDataset, SketchDataset
from sketchrnn.models.config import (
    CLASSES_HELP,
    MAX_IMAGE_SIDE,
    MAX_LOSS_WEIGHT,
    MAX_SEQ_LEN,
    MAX_STEPS,
    MAX_WIDTH,
    SCALE_FACTOR_HELP,
    UnitsConfig,
    option,
)
from sketchrnn.models.decoding import decode
from sketchrnn.models.interface import SketchModel
from sketchrnn.models.sketch_rnn import SketchRNNOutput
from sketchrnn.nn.cells import CELL_TYPES, State
from sketchrnn.nn.decoder import MixtureDecoder
from sketchrnn.nn.encoders import BACKBONES, ImageEncoder
from sketchrnn.nn.gaussian import kl_to_standard_normal, reparameterize
from sketchrnn.nn.mixture import (
    MixtureParams,
    mixture_params,
    reconstruction_losses_of_output,
)
from sketchrnn.nn.pixel_loss import curriculum_alpha, pixel_loss, sketchembednet_loss

__all__ = ["SketchEmbedNetConfig", "SketchEmbedNet"]


@dataclass
class SketchEmbedNetConfig(UnitsConfig):
    """Hyper-parameters of :class:`SketchEmbedNet` and its units; saved beside the weights as
    ``config.json``.

    ``pixel_size`` is the raster side used by ``L_pixel`` (``None``: ``image_size``);
    ``blur_sigma`` the Gaussian blur in pixels. ``kl_weight > 0`` adds the optional KL prior
    (the paper trains without it). ``alpha_*`` is the pixel-loss curriculum.
    """

    backbone: str = option("conv4", "image encoder", choices=BACKBONES)
    in_channels: int = option(1, "image channels the encoder takes", cli=False, low=1, high=16)
    image_size: int = option(28, "image side in pixels", low=16, high=MAX_IMAGE_SIDE)
    z_size: int = option(256, "embedding (latent) size", low=1, high=MAX_WIDTH)
    dec_hidden: int = option(1024, "decoder cell size", low=1, high=MAX_WIDTH)
    cell: str = option("hyper", "decoder cell", choices=CELL_TYPES)
    hyper_hidden: int = option(256, "HyperLSTM: size of the hyper network", low=1, high=MAX_WIDTH)
    hyper_embed: int = option(64, "HyperLSTM: size of its embedding", low=1, high=MAX_WIDTH)
    num_mixtures: int = option(30, "Gaussian mixture components M of the offsets", low=1, high=1024)
    recurrent_dropout: float = option(
        0.0,
        "probability of dropping the decoder cell's update (0: off)",
        low=0,
        high=1,
        high_open=True,
    )
    kl_weight: float = option(
        0.0, "weight of the optional KL prior (the paper: 0)", low=0, high=MAX_LOSS_WEIGHT
    )
    alpha_max: float = option(0.5, "pixel-loss weight alpha: its cap", low=0, high=1)
    alpha_increment: float = option(0.05, "pixel-loss weight alpha: its step", low=0, high=1)
    alpha_every: int = option(
        10_000, "pixel-loss weight alpha: training steps between steps", low=1, high=MAX_STEPS
    )
    pixel_size: int | None = option(
        None, "raster side of the pixel loss (None: image_size)", low=2, high=MAX_IMAGE_SIDE
    )
    # At least 0.01 px (less is no blur at all): 5e-324 is 0 in float32, and the kernel NaN.
    blur_sigma: float = option(
        2.0, "Gaussian blur of the pixel loss, in pixels", low=0.01, high=MAX_IMAGE_SIDE
    )
    max_seq_len: int = option(
        64,
        "N_max: the longest sketch, in points (from the data)",
        cli=False,
        low=1,
        high=MAX_SEQ_LEN,
    )
    scale_factor: float | None = option(None, SCALE_FACTOR_HELP, cli=False)
    classes: list[str] = option(factory=list, help=CLASSES_HELP, cli=False)

    def __post_init__(self) -> None:
        self.check_bounds()
        if self.backbone not in BACKBONES:
            raise ValueError(
                f"backbone must be one of {', '.join(BACKBONES)}, got {self.backbone!r}"
            )
        if self.cell not in CELL_TYPES:
            raise ValueError(f"cell must be one of {', '.join(CELL_TYPES)}, got {self.cell!r}")
        self._check_units()

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        # Appendix B: latent 256, HyperLSTM of output size 1024, hyper embedding 64, M = 30.
        "paper": dict(z_size=256, dec_hidden=1024, cell="hyper", hyper_embed=64, num_mixtures=30),
        # Trains on a laptop CPU: a LayerNorm LSTM of 256 (the HyperLSTM is ~2x slower).
        "small": dict(z_size=64, dec_hidden=256, cell="layernorm", num_mixtures=10),
    }

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


class SketchEmbedNet(SketchModel):
    """Image encoder -> ``z`` -> autoregressive mixture-density stroke decoder."""

    config_class = SketchEmbedNetConfig
    # 2: the decoder's weights moved under decoder.* (cell, init_state, output).
    # 3: scale_factor and classes joined the config.
    FORMAT_VERSION = 3
    # Appendix B: batch 256, the learning rate x0.85 every 15k steps; images are rendered
    # once, so the strokes are not augmented (they would stop matching their images).
    TRAIN_DEFAULTS: ClassVar[dict[str, Any]] = {
        "batch_size": 256,
        "lr_decay": 0.85,
        "lr_decay_every": 15_000,
        "augment": False,
    }
    reads_images = True
    PROGRESS_TERMS = {name: name for name in ("L_pen", "L_stroke", "L_pixel", "alpha")}
    # Its L_stroke and L_pen are sketch-rnn's L_s and L_p (the same normalisation): the same
    # columns of log.csv.
    LOSS_COLUMNS = {
        "L_R": "L_R",
        "L_s": "L_stroke",
        "L_p": "L_pen",
        "L_KL": "L_KL",
        "loss": "loss",
        "L_pixel": "L_pixel",
    }
    SCHEDULE_COLUMNS = {"kl_weight": "kl_weight", "alpha": "alpha"}

    config: SketchEmbedNetConfig

    def __init__(self, config: SketchEmbedNetConfig):
        super().__init__(config)
        self.encoder = ImageEncoder(
            cast(Any, config.backbone), config.in_channels, config.z_size, config.image_size
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

    @property
    def has_encoder(self) -> bool:
        """Always: its z is the embedding of an image (``z ~ N(0, I)`` also decodes)."""
        return True

    @classmethod
    def dataset(cls, config: Any, sketches: SketchDataset) -> ImageSketchDataset:
        """The sketches with their images, rendered once at ``config.image_size``
        (:class:`sketchrnn.datasets.ImageSketchDataset`)."""
        return ImageSketchDataset(sketches, config.image_size, in_channels=config.in_channels)

    # ------------------------------------------------------------------------- encoder

    def encode(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """``images`` ``(batch, C, S, S)`` -> ``mu``, ``sigma_hat`` ``(batch, z_size)``.
        ValueError for a wrong shape (the encoder checks channels and size)."""
        return self.encoder(images)

    def posterior(self, batch: Any) -> tuple[Tensor, Tensor]:
        """:meth:`encode` of an :class:`sketchrnn.datasets.ImageBatch`'s ``images``."""
        return self.encode(batch.images)

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

    # ------------------------------------------------------------------------- decoder

    def initial_state(self, z: Tensor | None, batch_size: int | None = None) -> State:
        """Decoder state before the first step: ``tanh(W z + b)`` split into the cell's state
        tensors. ``z`` ``(batch, z_size)`` (``batch_size`` is z's first dimension)."""
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
        ``labels`` is part of the interface and must be ``None`` (no class embedding)."""
        if z is None:
            raise ValueError("SketchEmbedNet needs z to decode")
        if labels is not None:
            raise ValueError("SketchEmbedNet is not class-conditional: labels must be None")
        return self.decoder.decode_step(x_t, state, z)

    def read_prefix(
        self, inputs: Tensor, state: State, z: Tensor | None = None, labels: Tensor | None = None
    ) -> State:
        """The decoder state after reading ``inputs`` ``(batch, T, 5)``; in eval mode in one
        call of the cell (training mode steps, as :meth:`SketchRNN.read_prefix` does)."""
        if self.training:
            return super().read_prefix(inputs, state, z=z, labels=labels)
        if z is None:
            raise ValueError("SketchEmbedNet needs z to decode")
        if labels is not None:
            raise ValueError("SketchEmbedNet is not class-conditional: labels must be None")
        return self.decoder.read(inputs, state, z)

    # ------------------------------------------------------------------------- training

    def forward(
        self, images: Tensor, strokes: Tensor, lengths: Tensor, *, use_mean: bool = False
    ) -> SketchRNNOutput:
        """Encode the images, then decode the strokes with teacher forcing.

        ``images`` ``(batch, C, S, S)``; ``strokes`` ``(batch, N_max + 1, 5)``; ``lengths``
        ``(batch,)``. ``use_mean=True`` takes ``z = mu`` instead of a sample.
        """
        y, mu, sigma_hat, z = self._teacher_forced(images, strokes, lengths, use_mean)
        return SketchRNNOutput(mixture_params(y, self.config.num_mixtures), mu, sigma_hat, z)

    def _teacher_forced(
        self, images: Tensor, strokes: Tensor, lengths: Tensor, use_mean: bool
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """:meth:`forward` up to the decoder head's raw output: ``(y, mu, sigma_hat, z)``."""
        _check_strokes(images, strokes, lengths)
        mu, sigma_hat = self.encode(images)
        z = mu if use_mean else reparameterize(mu, sigma_hat)
        return self.decoder.decode_outputs(strokes[:, :-1], z, z), mu, sigma_hat, z

    def losses(
        self, batch: Any, step: int | None = None, *, use_mean: bool = False
    ) -> dict[str, Tensor]:
        """The loss terms of an :class:`sketchrnn.datasets.ImageBatch` (``images``,
        ``strokes``, ``lengths``) as scalars, each averaged over the batch:

        * ``L_stroke = -1/N_max sum_{i<=n} log p(dx_i, dy_i)`` (sketch-rnn's ``L_s``);
        * ``L_pen = -1/N_max sum_{i<=N_max} sum_k p_k,i log q_k,i``, padding included
          (sketch-rnn's ``L_p``: that is how the model learns to stop);
        * ``L_pixel``: blurred binary cross-entropy of the rasterised reparameterised sample
          against the target (:func:`sketchrnn.nn.pixel_loss.pixel_loss`); computed without
          gradient while ``alpha`` is 0 (logged, but it costs no backward pass);
        * ``L_KL`` as in sketch-rnn (eq. 10), weighted by ``config.kl_weight`` (0 by default);
        * ``alpha`` = ``config.alpha_at(step)`` (``step=None``: ``alpha_max``);
        * ``L_R = L_stroke + L_pen`` (sketch-rnn's reconstruction loss, for comparison);
        * ``loss = L_pen + (1 - alpha) L_stroke + alpha L_pixel + kl_weight L_KL``;
        * ``kl_weight``: ``config.kl_weight``, for the logs.

        ``use_mean=True`` takes ``z = mu`` instead of a sample.
        """
        images, strokes, lengths = batch.images, batch.strokes, batch.lengths
        cfg = self.config
        alpha = cfg.alpha_at(step)
        y, mu, sigma_hat, _ = self._teacher_forced(images, strokes, lengths, use_mean)
        targets = strokes[:, 1:]
        lengths = lengths.to(strokes.device)
        loss_stroke, loss_pen = reconstruction_losses_of_output(
            y, cfg.num_mixtures, targets, lengths
        )
        with torch.set_grad_enabled(torch.is_grad_enabled() and alpha > 0):
            mixture = mixture_params(y, cfg.num_mixtures)
            loss_pixel = pixel_loss(
                mixture, targets, lengths, cfg.raster_size, sigma=cfg.blur_sigma
            )
        loss_kl = kl_to_standard_normal(mu, sigma_hat, per_dimension=True)
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
            "kl_weight": torch.tensor(float(cfg.kl_weight), dtype=torch.float64),
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
        arrays in pixels, decoded from the deterministic embedding ``mu``
        (:func:`sketchrnn.models.decoding.decode`); ValueError while ``scale_factor`` is
        unknown.
        """
        return decode(self, self.embed(images), temperature=temperature, max_len=max_len, seed=seed)


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
