"""sketch-rnn (Ha & Eck 2017): a sequence-to-sequence VAE over pen strokes, or its decoder alone.

Batches follow :class:`sketchrnn.datasets.Batch`: ``strokes`` ``(batch, N_max + 1, 5)`` whose
row 0 is the start token ``(0, 0, 1, 0, 0)``, rows ``1..n`` the sketch in stroke-5 and the rest
the padding ``(0, 0, 0, 0, 1)``; ``lengths`` ``(batch,)`` = n; ``labels`` ``(batch,)`` class ids.

The decoder reads rows ``0..N_max-1`` and predicts rows ``1..N_max``; the encoder reads rows
``1..n``. Losses are the paper's eq. 9-10 (see :meth:`SketchRNN.losses`); the objective
anneals the KL term as the paper's supplement (section 2) says, at training step ``step``::

    eta_step   = 1 - (1 - eta_min) * R ** step
    loss_train = L_R + w_KL * eta_step * max(L_KL, KL_min)

while validation and test use the plain eq. 11 loss ``L_R + w_KL * L_KL``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from sketchrnn.models.config import (
    CLASSES_HELP,
    MAX_LOSS_WEIGHT,
    MAX_SEQ_LEN,
    MAX_WIDTH,
    SCALE_FACTOR_HELP,
    UnitsConfig,
    option,
)
from sketchrnn.models.decoding import decode, sample
from sketchrnn.models.interface import SketchModel
from sketchrnn.nn.cells import CELL_TYPES, State
from sketchrnn.nn.decoder import MixtureDecoder
from sketchrnn.nn.encoders import BiLSTMEncoder
from sketchrnn.nn.gaussian import kl_to_standard_normal, reparameterize
from sketchrnn.nn.mixture import (
    MixtureParams,
    mixture_params,
    reconstruction_losses_of_output,
)

__all__ = ["SketchRNNConfig", "SketchRNN", "SketchRNNOutput", "kl_weight_at", "sketch_rnn_loss"]


@dataclass
class SketchRNNConfig(UnitsConfig):
    """Hyper-parameters of :class:`SketchRNN` and its units; saved beside the weights as
    ``config.json``.

    ``conditional=False`` is the decoder-only model (no encoder, no z); ``num_classes > 0``
    adds a learned class embedding of ``class_embed_size`` to every decoder input.
    ``recurrent_dropout`` is the probability of dropping the decoder's cell update (0 = off).
    ``kl_*`` is the KL term of the objective and its annealing (defaults: magenta's).
    """

    enc_hidden: int = option(256, "encoder LSTM size (each direction)", low=1, high=MAX_WIDTH)
    dec_hidden: int = option(512, "decoder cell size", low=1, high=MAX_WIDTH)
    z_size: int = option(128, "latent size N_z", low=1, high=MAX_WIDTH)
    num_mixtures: int = option(20, "Gaussian mixture components M of the offsets", low=1, high=1024)
    cell: str = option("layernorm", "decoder cell", choices=CELL_TYPES)
    conditional: bool = option(True, "the VAE (encoder and z); False: the decoder alone", cli=False)
    num_classes: int = option(
        0, "classes of the learned class embedding (0: none)", cli=False, low=0, high=100_000
    )
    class_embed_size: int = option(32, "size of the class embedding", low=1, high=MAX_WIDTH)
    recurrent_dropout: float = option(
        0.1,
        "probability of dropping the decoder cell's update (0: off)",
        low=0,
        high=1,
        high_open=True,
    )
    hyper_hidden: int = option(256, "HyperLSTM: size of the hyper network", low=1, high=MAX_WIDTH)
    hyper_embed: int = option(32, "HyperLSTM: size of its embedding", low=1, high=MAX_WIDTH)
    max_seq_len: int = option(
        250,
        "N_max: the longest sketch, in points (from the data)",
        cli=False,
        low=1,
        high=MAX_SEQ_LEN,
    )
    kl_weight: float = option(0.5, "w_KL: the weight of the KL term", low=0, high=MAX_LOSS_WEIGHT)
    kl_min: float = option(
        0.2, "KL_min: the floor of the KL term in the training loss", low=0, high=MAX_LOSS_WEIGHT
    )
    kl_decay_rate: float = option(
        0.99995,
        "R: the KL weight anneals as w_KL (1 - (1 - eta_min) R^step)",
        low=0,
        low_open=True,
        high=1,
    )
    kl_eta_min: float = option(0.01, "eta_min: the fraction of w_KL at step 0", low=0, high=1)
    scale_factor: float | None = option(None, SCALE_FACTOR_HELP, cli=False)
    classes: list[str] = option(factory=list, help=CLASSES_HELP, cli=False)

    def __post_init__(self) -> None:
        self.check_bounds()
        if self.cell not in CELL_TYPES:
            raise ValueError(f"cell must be one of {', '.join(CELL_TYPES)}, got {self.cell!r}")
        self._check_units()
        if self.num_classes and self.classes and len(self.classes) != self.num_classes:
            raise ValueError(
                f"{len(self.classes)} class names for a model of {self.num_classes} classes"
            )

    # A class constant, not a dataclass field (ClassVar); UnitsConfig.preset builds them.
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        # The paper's supplement: encoder 512, HyperLSTM decoder 2048, N_z 128, M 20.
        "paper": dict(enc_hidden=512, dec_hidden=2048, cell="hyper", z_size=128, num_mixtures=20),
        # magenta's sketch_rnn defaults.
        "magenta": dict(enc_hidden=256, dec_hidden=512, z_size=128, num_mixtures=20),
        # Trains on a laptop CPU in minutes.
        "small": dict(enc_hidden=128, dec_hidden=256, z_size=64, num_mixtures=10),
    }


def kl_weight_at(step: int, config: SketchRNNConfig) -> float:
    """Annealed KL weight ``w_KL * (1 - (1 - eta_min) * R**step)`` (supplement eq. 4)."""
    eta = 1.0 - (1.0 - config.kl_eta_min) * config.kl_decay_rate**step
    return config.kl_weight * eta


def sketch_rnn_loss(
    loss_r: Tensor, loss_kl: Tensor, step: int | None, config: SketchRNNConfig
) -> tuple[Tensor, float]:
    """The objective and the KL weight in it: at training ``step``
    ``L_R + kl_weight_at(step) * max(L_KL, KL_min)``; for evaluation (``step=None``) the
    plain eq. 11 ``L_R + w_KL * L_KL``; for the decoder-only model ``L_R`` (its L_KL is zero
    and the floor would only add a constant) and weight 0."""
    if not config.conditional:
        return loss_r, 0.0
    if step is None:
        return loss_r + config.kl_weight * loss_kl, float(config.kl_weight)
    weight = kl_weight_at(step, config)
    return loss_r + weight * torch.clamp(loss_kl, min=config.kl_min), weight


class SketchRNNOutput(NamedTuple):
    """``mixture``: next-point distributions for the ``N_max`` targets, shapes
    ``(batch, N_max, M)`` / ``(batch, N_max, 3)``; ``mu``, ``sigma_hat``, ``z`` ``(batch, z)``
    (``None`` for the decoder-only model; ``mu``/``sigma_hat`` also when ``z`` was given)."""

    mixture: MixtureParams
    mu: Tensor | None
    sigma_hat: Tensor | None
    z: Tensor | None


class SketchRNN(SketchModel):
    """sketch-rnn: bidirectional LSTM encoder, z, autoregressive mixture-density decoder."""

    config_class = SketchRNNConfig
    # 2: the decoder's weights moved under decoder.* (cell, init_state, output).
    # 3: scale_factor, classes and the KL settings joined the config.
    FORMAT_VERSION = 3
    TRAIN_DEFAULTS: ClassVar[dict[str, Any]] = {}
    PROGRESS_TERMS = {"L_R": "L_R", "L_KL": "L_KL", "klw": "kl_weight"}
    LOSS_COLUMNS = {name: name for name in ("L_R", "L_s", "L_p", "L_KL", "loss")}
    SCHEDULE_COLUMNS = {"kl_weight": "kl_weight"}

    config: SketchRNNConfig

    def __init__(self, config: SketchRNNConfig):
        super().__init__(config)
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

    @property
    def has_encoder(self) -> bool:
        """The VAE (``config.conditional``); the decoder-only model has no z."""
        return bool(self.config.conditional)

    @property
    def num_classes(self) -> int:
        return int(self.config.num_classes)

    # ------------------------------------------------------------------------- encoder

    def encode(self, strokes: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """``strokes`` ``(batch, N_max + 1, 5)``, ``lengths`` ``(batch,)`` -> ``mu``,
        ``sigma_hat`` ``(batch, z)``. Reads rows ``1..n`` (no start token)."""
        if not self.config.conditional:
            raise ValueError("a decoder-only SketchRNN has no encoder")
        self._check_batch(strokes, lengths)
        return self.encoder(strokes[:, 1:], lengths)

    def posterior(self, batch: Any) -> tuple[Tensor, Tensor]:
        """:meth:`encode` of a :class:`sketchrnn.datasets.Batch`'s ``strokes`` and ``lengths``."""
        return self.encode(batch.strokes, batch.lengths)

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

    def read_prefix(
        self, inputs: Tensor, state: State, z: Tensor | None = None, labels: Tensor | None = None
    ) -> State:
        """The decoder state after reading ``inputs`` ``(batch, T, 5)``; in eval mode in one
        call of the cell (recurrent dropout in training draws its masks per call, so training
        mode steps)."""
        if self.training:
            return super().read_prefix(inputs, state, z=z, labels=labels)
        return self.decoder.read(inputs, state, self._conditioning(z, labels))

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
        y, mu, sigma_hat, z = self._teacher_forced(strokes, lengths, labels, z, use_mean)
        return SketchRNNOutput(mixture_params(y, self.config.num_mixtures), mu, sigma_hat, z)

    def _teacher_forced(
        self,
        strokes: Tensor,
        lengths: Tensor,
        labels: Tensor | None,
        z: Tensor | None,
        use_mean: bool,
    ) -> tuple[Tensor, Tensor | None, Tensor | None, Tensor | None]:
        """:meth:`forward` up to the decoder head's raw output: ``(y, mu, sigma_hat, z)``."""
        self._check_batch(strokes, lengths)
        mu = sigma_hat = None
        if self.config.conditional:
            if z is None:
                mu, sigma_hat = self.encoder(strokes[:, 1:], lengths)
                z = mu if use_mean else reparameterize(mu, sigma_hat)
        elif z is not None:
            raise ValueError("a decoder-only SketchRNN takes no z")
        y = self.decoder.decode_outputs(strokes[:, :-1], self._conditioning(z, labels), z)
        return y, mu, sigma_hat, z

    def losses(
        self, batch: Any, step: int | None = None, *, use_mean: bool = False
    ) -> dict[str, Tensor]:
        """The paper's loss terms of a :class:`sketchrnn.datasets.Batch` (``strokes``,
        ``lengths``; ``labels`` for a class-conditional model) as scalars, each averaged over
        the batch:

        * ``L_s = -1/N_max sum_{i<=n} log p(dx_i, dy_i)`` - the offsets of the real points
          only, but divided by ``N_max`` (eq. 9);
        * ``L_p = -1/N_max sum_{i<=N_max} sum_k p_k,i log q_k,i`` - the pen states over all
          ``N_max`` steps, padding included: that is how the model learns to stop;
        * ``L_R = L_s + L_p``;
        * ``L_KL = -1/(2 N_z) sum (1 + sigma_hat - mu^2 - exp(sigma_hat))`` (eq. 10), zero
          for the decoder-only model;
        * ``kl_weight`` and ``loss``: the KL weight and the objective at ``step``
          (:func:`sketch_rnn_loss`; ``step=None``: the evaluation loss ``L_R + w_KL L_KL``).

        ``use_mean=True`` takes ``z = mu`` instead of a sample.
        """
        strokes, lengths = batch.strokes, batch.lengths
        labels = batch.labels if self.config.num_classes > 0 else None
        y, mu, sigma_hat, _ = self._teacher_forced(strokes, lengths, labels, None, use_mean)
        loss_s, loss_p = reconstruction_losses_of_output(
            y, self.config.num_mixtures, strokes[:, 1:], lengths
        )
        if mu is not None and sigma_hat is not None:
            loss_kl = kl_to_standard_normal(mu, sigma_hat, per_dimension=True)
        else:
            loss_kl = strokes.new_zeros(())
        loss_r = loss_s + loss_p
        loss, kl_weight = sketch_rnn_loss(loss_r, loss_kl, step, self.config)
        return {
            "L_s": loss_s,
            "L_p": loss_p,
            "L_R": loss_r,
            "L_KL": loss_kl,
            "kl_weight": torch.tensor(kl_weight, dtype=torch.float64),  # as computed, for logs
            "loss": loss,
        }

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
        """Sample ``n`` sketches as stroke-3 ``(k, 3)`` float32 arrays in pixels
        (:func:`sketchrnn.models.decoding.sample`, or :func:`~sketchrnn.models.decoding.decode`
        for given ``z`` ``(n, z_size)``); ValueError while ``scale_factor`` is unknown.

        ``labels`` is one class id for all or ``(n,)``; sampling stops at the end-of-sketch
        state or ``max_len`` points (default ``config.max_seq_len``), in eval mode.
        """
        options: dict[str, Any] = dict(
            temperature=temperature, labels=labels, max_len=max_len, seed=seed
        )
        if z is not None:
            return decode(self, z, n, **options)
        return sample(self, n, **options)

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
