"""sketch-rnn (Ha & Eck 2017): a sequence-to-sequence VAE over pen strokes, or its decoder alone.

Batches follow ``sketchrnn.data.Batch``: ``strokes`` ``(batch, N_max + 1, 5)`` whose row 0 is
the start token ``(0, 0, 1, 0, 0)``, rows ``1..n`` the sketch in stroke-5 and the rest the
padding ``(0, 0, 0, 0, 1)``; ``lengths`` ``(batch,)`` = n; ``labels`` ``(batch,)`` class ids.

The decoder reads rows ``0..N_max-1`` and predicts rows ``1..N_max``; the encoder reads rows
``1..n``. Losses are the paper's eq. 9-10 (see :meth:`SketchRNN.losses`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from sketchrnn.models.base import (
    ConfigDict,
    ModelFileError,
    load_pretrained_model,
    save_pretrained_files,
)
from sketchrnn.nn.cells import CELL_TYPES, State
from sketchrnn.nn.decoder import MixtureDecoder
from sketchrnn.nn.encoders import BiLSTMEncoder
from sketchrnn.nn.mixture import MixtureParams, reconstruction_losses

__all__ = ["SketchRNNConfig", "SketchRNN", "SketchRNNOutput", "ModelFileError"]

FORMAT_NAME = "sketchrnn.SketchRNN"
# 2: the decoder's weights moved under decoder.* (cell, init_state, output).
FORMAT_VERSION = 2


@dataclass
class SketchRNNConfig(ConfigDict):
    """Hyper-parameters of :class:`SketchRNN`; saved beside the weights as ``config.json``.

    ``conditional=False`` is the decoder-only model (no encoder, no z); ``num_classes > 0``
    adds a learned class embedding of ``class_embed_size`` to every decoder input.
    ``recurrent_dropout`` is the probability of dropping the decoder's cell update (0 = off).
    """

    enc_hidden: int = 256
    dec_hidden: int = 512
    z_size: int = 128
    num_mixtures: int = 20
    cell: str = "layernorm"
    conditional: bool = True
    num_classes: int = 0
    class_embed_size: int = 32
    recurrent_dropout: float = 0.1
    hyper_hidden: int = 256
    hyper_embed: int = 32
    max_seq_len: int = 250

    def __post_init__(self) -> None:
        if self.cell not in CELL_TYPES:
            raise ValueError(f"cell must be one of {', '.join(CELL_TYPES)}, got {self.cell!r}")
        for name in ("enc_hidden", "dec_hidden", "z_size", "num_mixtures", "max_seq_len"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {self.num_classes}")
        if not 0.0 <= self.recurrent_dropout < 1.0:
            raise ValueError(f"recurrent_dropout must be in [0, 1), got {self.recurrent_dropout}")

    # A class constant, not a dataclass field (it has no annotation).
    PRESETS = {
        # The paper's supplement: encoder 512, HyperLSTM decoder 2048, N_z 128, M 20.
        "paper": dict(enc_hidden=512, dec_hidden=2048, cell="hyper", z_size=128, num_mixtures=20),
        # magenta's sketch_rnn defaults.
        "magenta": dict(enc_hidden=256, dec_hidden=512, z_size=128, num_mixtures=20),
        # Trains on a laptop CPU in minutes.
        "small": dict(enc_hidden=128, dec_hidden=256, z_size=64, num_mixtures=10),
    }

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> SketchRNNConfig:
        """A named configuration (``"paper"``, ``"magenta"``, ``"small"``) with overrides."""
        if name not in cls.PRESETS:
            raise ValueError(f"unknown preset {name!r}; expected one of {', '.join(cls.PRESETS)}")
        return cls(**{**cls.PRESETS[name], **overrides})


class SketchRNNOutput(NamedTuple):
    """``mixture``: next-point distributions for the ``N_max`` targets, shapes
    ``(batch, N_max, M)`` / ``(batch, N_max, 3)``; ``mu``, ``sigma_hat``, ``z`` ``(batch, z)``
    (``None`` for the decoder-only model; ``mu``/``sigma_hat`` also when ``z`` was given)."""

    mixture: MixtureParams
    mu: Tensor | None
    sigma_hat: Tensor | None
    z: Tensor | None


class SketchRNN(nn.Module):
    """sketch-rnn: bidirectional LSTM encoder, z, autoregressive mixture-density decoder."""

    def __init__(self, config: SketchRNNConfig):
        super().__init__()
        self.config = config
        self.scale_factor: float | None = None
        self.classes: list[str] = []
        cond_size = 0
        if config.conditional:
            self.encoder = BiLSTMEncoder(5, config.enc_hidden, config.z_size)
            cond_size += config.z_size
        if config.num_classes > 0:
            self.class_embedding = nn.Embedding(config.num_classes, config.class_embed_size)
            cond_size += config.class_embed_size
        self.decoder = MixtureDecoder(
            config.cell,
            cond_size,
            config.dec_hidden,
            config.num_mixtures,
            z_size=config.z_size if config.conditional else 0,
            recurrent_dropout=config.recurrent_dropout,
            hyper_hidden=config.hyper_hidden,
            hyper_embed=config.hyper_embed,
        )

    # ------------------------------------------------------------------------- encoder

    def encode(self, strokes: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """``strokes`` ``(batch, N_max + 1, 5)``, ``lengths`` ``(batch,)`` -> ``mu``,
        ``sigma_hat`` ``(batch, z)``. Reads rows ``1..n`` (no start token)."""
        if not self.config.conditional:
            raise ValueError("a decoder-only SketchRNN has no encoder")
        self._check_batch(strokes, lengths)
        return self.encoder(strokes[:, 1:], lengths)

    @staticmethod
    def reparameterize(mu: Tensor, sigma_hat: Tensor) -> Tensor:
        """``z = mu + exp(sigma_hat / 2) * N(0, I)`` (eq. 2)."""
        return mu + torch.exp(0.5 * sigma_hat) * torch.randn_like(mu)

    # ------------------------------------------------------------------------- decoder

    def initial_state(self, z: Tensor | None, batch_size: int) -> State:
        """Decoder state before the first step: ``tanh(W_z z + b_z)`` split into the cell's
        state tensors, or zeros for the decoder-only model."""
        if self.config.conditional and z is None:
            raise ValueError("a conditional SketchRNN needs z for its initial state")
        return self.decoder.initial_state(z, batch_size)

    def _conditioning(self, z: Tensor | None, labels: Tensor | None) -> Tensor | None:
        """``[z; class embedding]`` ``(batch, cond)``, or ``None`` when there is neither."""
        parts = []
        if self.config.conditional:
            if z is None:
                raise ValueError("a conditional SketchRNN needs z")
            parts.append(z)
        if self.config.num_classes > 0:
            if labels is None:
                raise ValueError("this SketchRNN is class-conditional: pass labels")
            parts.append(self.class_embedding(labels))
        return torch.cat(parts, dim=-1) if parts else None

    def decode(
        self, inputs: Tensor, z: Tensor | None = None, labels: Tensor | None = None
    ) -> MixtureParams:
        """Teacher-forced decoder: ``inputs`` ``(batch, T, 5)`` (rows ``S_0..S_{T-1}``) ->
        mixture for the next ``T`` points, ``(batch, T, ...)``."""
        return self.decoder.decode(inputs, self._conditioning(z, labels), z)

    def decode_step(
        self,
        x_t: Tensor,
        state: State,
        z: Tensor | None = None,
        labels: Tensor | None = None,
    ) -> tuple[MixtureParams, State]:
        """One generation step: previous point ``x_t`` ``(batch, 5)`` -> mixture for the next
        point (shapes ``(batch, M)`` / ``(batch, 3)``) and the new state."""
        return self.decoder.decode_step(x_t, state, self._conditioning(z, labels))

    # ------------------------------------------------------------------------- training

    def forward(
        self,
        strokes: Tensor,
        lengths: Tensor,
        labels: Tensor | None = None,
        z: Tensor | None = None,
        *,
        use_mean: bool = False,
    ) -> SketchRNNOutput:
        """Encode (unless ``z`` is given), then decode with teacher forcing.

        ``strokes`` ``(batch, N_max + 1, 5)``; ``lengths``, ``labels`` ``(batch,)``;
        ``z`` ``(batch, z_size)``. ``use_mean=True`` takes ``z = mu`` instead of a sample
        (deterministic reconstructions and evaluation).
        """
        self._check_batch(strokes, lengths)
        mu = sigma_hat = None
        if self.config.conditional:
            if z is None:
                mu, sigma_hat = self.encoder(strokes[:, 1:], lengths)
                z = mu if use_mean else self.reparameterize(mu, sigma_hat)
        elif z is not None:
            raise ValueError("a decoder-only SketchRNN takes no z")
        mixture = self.decode(strokes[:, :-1], z, labels)
        return SketchRNNOutput(mixture, mu, sigma_hat, z)

    def losses(
        self,
        strokes: Tensor,
        lengths: Tensor,
        labels: Tensor | None = None,
        *,
        use_mean: bool = False,
    ) -> dict[str, Tensor]:
        """The paper's loss terms as scalars, each averaged over the batch:

        * ``L_s = -1/N_max sum_{i<=n} log p(dx_i, dy_i)`` - the offsets of the real points
          only, but divided by ``N_max`` (eq. 9);
        * ``L_p = -1/N_max sum_{i<=N_max} sum_k p_k,i log q_k,i`` - the pen states over all
          ``N_max`` steps, padding included: that is how the model learns to stop;
        * ``L_R = L_s + L_p``;
        * ``L_KL = -1/(2 N_z) sum (1 + sigma_hat - mu^2 - exp(sigma_hat))`` (eq. 10), zero
          for the decoder-only model.
        """
        out = self(strokes, lengths, labels, use_mean=use_mean)
        loss_s, loss_p = reconstruction_losses(out.mixture, strokes[:, 1:], lengths)
        if out.mu is not None and out.sigma_hat is not None:
            kl_terms = 1.0 + out.sigma_hat - out.mu.pow(2) - torch.exp(out.sigma_hat)
            loss_kl = (-0.5 * kl_terms.mean(1)).mean()
        else:
            loss_kl = strokes.new_zeros(())
        return {"L_s": loss_s, "L_p": loss_p, "L_R": loss_s + loss_p, "L_KL": loss_kl}

    # ------------------------------------------------------------------------- generation

    @torch.no_grad()
    def generate(
        self,
        n: int,
        *,
        z: Tensor | None = None,
        labels: Tensor | int | None = None,
        temperature: float = 0.5,
        max_len: int | None = None,
        seed: int | None = None,
    ) -> list[np.ndarray]:
        """Sample ``n`` sketches as stroke-3 ``(k, 3)`` float32 arrays, in pixels when
        ``scale_factor`` is known (else normalised units): :func:`sketchrnn.generate.sample`,
        or :func:`sketchrnn.generate.decode` for given ``z`` ``(n, z_size)``.

        ``labels`` is one class id for all or ``(n,)``; sampling stops at the end-of-sketch
        state or ``max_len`` points (default ``config.max_seq_len``), in eval mode.
        """
        from sketchrnn import generate

        options = dict(temperature=temperature, labels=labels, max_len=max_len, seed=seed)
        if z is not None:
            return generate.decode(self, z, n, **options)
        return generate.sample(self, n, **options)

    # ------------------------------------------------------------------------- files

    def save_pretrained(
        self,
        directory: str | os.PathLike,
        scale_factor: float | None = None,
        classes: list[str] | None = None,
    ) -> None:
        """Write ``config.json`` (config, scale factor, class names, format version) and
        ``model.safetensors`` into ``directory``. Defaults: ``self.scale_factor`` and
        ``self.classes``. Each file is replaced atomically."""
        scale_factor = self.scale_factor if scale_factor is None else float(scale_factor)
        classes = list(self.classes if classes is None else classes)
        if self.config.num_classes and classes and len(classes) != self.config.num_classes:
            raise ValueError(
                f"{len(classes)} class names for a model of {self.config.num_classes} classes"
            )
        save_pretrained_files(
            directory,
            FORMAT_NAME,
            FORMAT_VERSION,
            self.config.to_dict(),
            self.state_dict(),
            {"scale_factor": scale_factor, "classes": classes},
        )

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> SketchRNN:
        """Load a model written by :meth:`save_pretrained`; sets ``scale_factor`` and
        ``classes``. Raises :class:`ModelFileError` for a missing, truncated or foreign file,
        or a config that does not match the weights."""
        model, meta = load_pretrained_model(
            directory, cls, SketchRNNConfig, FORMAT_NAME, FORMAT_VERSION
        )
        scale_factor = meta.get("scale_factor")
        model.scale_factor = None if scale_factor is None else float(scale_factor)
        model.classes = [str(c) for c in meta.get("classes") or []]
        return model

    # ------------------------------------------------------------------------- checks

    def _check_batch(self, strokes: Tensor, lengths: Tensor) -> None:
        if strokes.ndim != 3 or strokes.shape[-1] != 5 or strokes.shape[1] < 2:
            raise ValueError(
                f"strokes must be (batch, N_max + 1, 5) with N_max >= 1, got {tuple(strokes.shape)}"
            )
        if lengths.shape != strokes.shape[:1]:
            raise ValueError(
                f"lengths must be (batch,) = ({strokes.shape[0]},), got {tuple(lengths.shape)}"
            )
        if lengths.numel() and int(lengths.max()) > strokes.shape[1] - 1:
            raise ValueError(
                f"a length of {int(lengths.max())} exceeds N_max = {strokes.shape[1] - 1}"
            )
