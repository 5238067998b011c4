"""The one model interface: what SketchRNN, SketchEmbedNet and ConvVAE all are to the rest of
the package (the Trainer, evaluation, few-shot, drawing, loading, the command line), which
asks the model and never its class.

A model is built from its config dataclass (``config_class``) and keeps it as ``config``; the
config also holds the model's stroke units (``scale_factor``, ``classes``), so a saved model
draws in the pixels it was trained in. What a model declares:

- what it needs: :meth:`SketchModel.dataset` builds its batches from sketches (a
  :class:`sketchrnn.datasets.BatchSource` of its own batch type), ``reads_images`` says
  whether those carry images, ``max_seq_len`` the longest sketch it takes;
- what it gives: :meth:`SketchModel.losses` of one batch, scalar tensors with ``"loss"``
  among them: the objective to minimise at training ``step`` (its schedules, sketch-rnn's KL
  annealing and SketchEmbedNet's pixel-loss curriculum, live in the model), or with
  ``step=None`` the evaluation objective; ``LOSS_COLUMNS`` and ``SCHEDULE_COLUMNS`` name what
  log.csv and ``sketchrnn evaluate`` show of them, ``PROGRESS_TERMS`` what the progress bar
  shows;
- what it can do: ``has_encoder`` (and :meth:`SketchModel.posterior`), ``embeds_images``
  (:meth:`SketchModel.embed`), ``draws_strokes`` (``initial_state`` and ``decode_step``,
  which :mod:`sketchrnn.models.decoding` drives), ``num_classes``.

Saving and loading are written once, here.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import torch
from torch import Tensor, nn

from sketchrnn.datasets import BatchSource, SketchDataset
from sketchrnn.models.pretrained import (
    CONFIG_FILE,
    ModelFileError,
    check_weights_match,
    load_pretrained_files,
    save_pretrained_files,
)

__all__ = ["SketchModel"]

# Fields that files written before the units joined the config keep beside it in config.json
# (and checkpoints at their top level).
LEGACY_UNIT_KEYS = ("scale_factor", "classes")


class SketchModel(nn.Module):
    """The base of every model. Subclasses set the class attributes and implement
    :meth:`losses` (and, to draw strokes, :meth:`initial_state` and :meth:`decode_step`)."""

    #: The config dataclass the model is built from (with ``scale_factor`` and ``classes``).
    config_class: ClassVar[type[Any]]
    #: The version of the saved form; a file of a newer version is refused.
    FORMAT_VERSION: ClassVar[int] = 1
    #: TrainConfig fields whose default differs for this model (``TrainConfig.for_model``).
    TRAIN_DEFAULTS: ClassVar[dict[str, Any]] = {}
    #: What the progress bar shows of a training step: label -> key of :meth:`losses`.
    PROGRESS_TERMS: ClassVar[dict[str, str]] = {"loss": "loss"}
    #: The loss terms log.csv and ``sketchrnn evaluate`` show, in their order: column -> key
    #: of :meth:`losses` (a model may fill a column another model names alike).
    LOSS_COLUMNS: ClassVar[dict[str, str]] = {"loss": "loss"}
    #: The values of :meth:`losses` that follow the training step rather than the data (loss
    #: weights), logged after the learning rate: column -> key of :meth:`losses`.
    SCHEDULE_COLUMNS: ClassVar[dict[str, str]] = {}
    #: Whether the model's input is an image rendered from the sketch (SketchEmbedNet and
    #: ConvVAE); a sketch-rnn model reads strokes.
    reads_images: ClassVar[bool] = False
    #: How the errors of :meth:`from_pretrained` name the model.
    FILE_LABEL: ClassVar[str] = "model"

    #: The model's config (an instance of ``config_class``), its units included.
    config: Any

    def __init__(self, config: Any):
        super().__init__()
        if not isinstance(config, self.config_class):
            raise TypeError(
                f"{type(self).__name__} is built from a {self.config_class.__name__}, "
                f"got {type(config).__name__}"
            )
        self.config = config

    # ------------------------------------------------------------------------- what it is

    @classmethod
    def format_name(cls) -> str:
        """The ``format`` of the model's ``config.json``: ``"sketchrnn."`` + the class name."""
        return f"sketchrnn.{cls.__name__}"

    @property
    def scale_factor(self) -> float | None:
        """Pixels per model unit (the std of the training offsets), or ``None`` while unknown:
        :mod:`sketchrnn.models.units` converts with it. Set with :meth:`set_units`."""
        return self.config.scale_factor

    @property
    def classes(self) -> list[str]:
        """The class names of the training data, in the order of its labels (a copy)."""
        return list(self.config.classes)

    @property
    def num_classes(self) -> int:
        """Classes of a class-conditional model's embedding (0: not class-conditional)."""
        return 0

    @property
    def has_encoder(self) -> bool:
        """Whether the model has a latent ``z`` and an encoder that gives it."""
        return False

    @property
    def draws_strokes(self) -> bool:
        """Whether the model has a stroke decoder (it implements :meth:`decode_step`), which
        :mod:`sketchrnn.models.decoding` drives; ConvVAE draws pixels."""
        return type(self).decode_step is not SketchModel.decode_step

    @property
    def embeds_images(self) -> bool:
        """Whether the model gives an image an embedding (it implements :meth:`embed`): what
        few-shot classification and ``sketchrnn embed`` use."""
        return type(self).embed is not SketchModel.embed

    @property
    def has_stroke_units(self) -> bool:
        """Whether strokes enter or leave the model (it reads or draws them), so that reading
        or drawing pixels needs its scale factor; a model of pixels alone (ConvVAE) has none."""
        return self.draws_strokes or not self.reads_images

    @property
    def max_seq_len(self) -> int | None:
        """``N_max``, the longest sketch the model reads or draws, in points (its config's
        ``max_seq_len``); ``None`` for a model of pixels alone, which takes any."""
        value = getattr(self.config, "max_seq_len", None)
        return None if value is None else int(value)

    @property
    def device(self) -> torch.device:
        """Where the model's parameters are."""
        return next(self.parameters()).device

    def set_units(
        self, *, scale_factor: float | None = None, classes: Sequence[str] | None = None
    ) -> None:
        """Record the model's stroke units in its config (the values given; ``None`` keeps
        the current one). ValueError for a scale factor that is not finite and positive, or
        class names that do not fit the model."""
        changes: dict[str, Any] = {}
        if scale_factor is not None:
            changes["scale_factor"] = scale_factor
        if classes is not None:
            changes["classes"] = list(classes)
        if changes:
            self.config = dataclasses.replace(self.config, **changes)  # validated again

    # ------------------------------------------------------------------------- data

    @classmethod
    def dataset(cls, config: Any, sketches: SketchDataset) -> BatchSource:
        """The data set of the model's own batch type over ``sketches`` (normalised stroke-3,
        as :func:`sketchrnn.data.load_datasets` gives them), for a model of config ``config``:
        what the Trainer and evaluation read. Here the sketches themselves (stroke-5
        :class:`sketchrnn.datasets.Batch`); a model of images renders them once."""
        return sketches

    # ------------------------------------------------------------------------- training

    def losses(self, batch: Any, step: int | None = None) -> dict[str, Tensor]:
        """Scalar loss terms of ``batch`` (the model's batch type), ``"loss"`` among them: the
        objective at training ``step``, or with ``step=None`` the evaluation objective."""
        raise NotImplementedError

    # ------------------------------------------------------------------------- encoding

    def posterior(self, batch: Any) -> tuple[Tensor, Tensor]:
        """``mu``, ``sigma_hat`` ``(batch, z)`` of ``q(z | x)``, the model's encoding of a
        batch of its own type (the log variance ``sigma_hat``, as
        :mod:`sketchrnn.nn.gaussian`). TypeError for a model without an encoder."""
        raise TypeError(f"a {type(self).__name__} has no encoder")

    def embed(self, images: Tensor) -> Tensor:
        """The embedding ``(batch, D)`` of images ``(batch, C, S, S)``, deterministic (eval
        mode, no noise, no gradient). TypeError for a model that does not embed images."""
        raise TypeError(f"a {type(self).__name__} does not embed images")

    # ------------------------------------------------------------------------- drawing

    def initial_state(self, z: Tensor | None, batch_size: int) -> Any:
        """The decoder state before the first step, for ``batch_size`` sketches."""
        raise TypeError(f"a {type(self).__name__} does not draw strokes")

    def decode_step(
        self, x_t: Tensor, state: Any, z: Tensor | None = None, labels: Tensor | None = None
    ) -> tuple[Any, Any]:
        """One drawing step: previous point ``x_t`` ``(batch, 5)`` -> the next point's
        mixture (:class:`sketchrnn.nn.mixture.MixtureParams`) and the new state."""
        raise TypeError(f"a {type(self).__name__} does not draw strokes")

    def read_prefix(
        self, inputs: Tensor, state: Any, z: Tensor | None = None, labels: Tensor | None = None
    ) -> Any:
        """The decoder state after reading rows ``inputs`` ``(batch, T, 5)`` (teacher forcing)
        from ``state``: ``T`` calls of :meth:`decode_step` here; a model whose decoder reads a
        whole sequence in one call overrides it (the same state in eval mode)."""
        for t in range(inputs.shape[1]):
            _, state = self.decode_step(inputs[:, t], state, z=z, labels=labels)
        return state

    # ------------------------------------------------------------------------- files

    def save_pretrained(
        self,
        directory: str | os.PathLike,
        *,
        scale_factor: float | None = None,
        classes: Sequence[str] | None = None,
    ) -> None:
        """Write ``config.json`` (format, format version, config with its units) and
        ``model.safetensors`` into ``directory``, each replaced atomically.

        ``scale_factor`` and ``classes``, when given, are recorded on the model first
        (:meth:`set_units`). The config is checked again before anything is written, so a
        config edited by hand into an invalid one leaves no files behind.
        """
        self.set_units(scale_factor=scale_factor, classes=classes)
        config = self.config_class.from_dict(self.config.to_dict())
        save_pretrained_files(
            directory, self.format_name(), self.FORMAT_VERSION, config.to_dict(), self.state_dict()
        )

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> Self:
        """Load a model written by :meth:`save_pretrained` (in train mode, on the CPU).

        Raises :class:`ModelFileError` for a missing, truncated or foreign file, a newer
        format, or a config that does not match the weights.
        """
        meta, tensors = load_pretrained_files(
            directory, cls.format_name(), cls.FORMAT_VERSION, label=cls.FILE_LABEL
        )
        try:
            values = dict(meta["config"])
            for key in LEGACY_UNIT_KEYS:  # older files keep them beside the config
                if key not in values and meta.get(key) is not None:
                    values[key] = meta[key]
            config = cls.config_class.from_dict(values)
        except (KeyError, TypeError, ValueError) as err:
            raise ModelFileError(
                Path(directory) / CONFIG_FILE, f"invalid model config: {err}"
            ) from None
        model = cls(config)
        check_weights_match(directory, model.state_dict(), tensors)
        model.load_state_dict(tensors)
        return model
