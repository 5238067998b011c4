"""The settings of a training run (:class:`TrainConfig`: the optimiser, its learning-rate
schedule, clipping, augmentation, how long, how often to validate, save and log, where) and
the schedule itself (:func:`learning_rate_at`). The Trainer (:mod:`sketchrnn.train`) runs them.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from sketchrnn.models.config import (
    MAX_BATCH_SIZE,
    MAX_SECONDS,
    MAX_SEED,
    MAX_STEPS,
    ConfigDict,
    check_device,
    option,
)
from sketchrnn.models.interface import SketchModel

__all__ = ["TrainConfig", "learning_rate_at"]


@dataclass
class TrainConfig(ConfigDict):
    """Hyper-parameters of a training run (defaults: magenta's sketch-rnn settings; a model's
    own are :meth:`for_model`).

    ``max_seconds`` adds a wall-time budget (checked after every step) on top of ``max_steps``.
    ``eval_every``/``save_every``/``log_every`` count optimizer steps; 0 turns them off
    (a final checkpoint is always written when ``out_dir`` is set).
    """

    batch_size: int = option(
        100,
        "sketches per optimizer step (split over the DDP processes)",
        low=1,
        high=MAX_BATCH_SIZE,
    )
    lr: float = option(1e-3, "Adam learning rate at step 0", low=0, low_open=True, high=1)
    lr_decay: float = option(
        0.9999, "learning-rate factor per decay (towards min_lr)", low=0, low_open=True, high=1
    )
    lr_decay_every: int = option(
        1, "steps between decays: lr_decay ** (step // lr_decay_every)", low=1, high=MAX_STEPS
    )
    min_lr: float = option(1e-5, "learning-rate floor", low=0, high=1)
    grad_clip: float = option(
        1.0,
        "gradient clip: each value (grad_clip_mode value) or the norm (inf: none)",
        low=0,
        low_open=True,
        high=math.inf,
    )
    grad_clip_mode: str = option(
        "value", "value: clip each gradient value; norm: the global norm", choices=("value", "norm")
    )
    augment: bool = option(True, "random x/y scaling of the strokes by U(0.9, 1.1)")
    drop_prob: float = option(
        0.0,
        "augmentation: probability of dropping an interior pen-down point",
        low=0,
        high=1,
        high_open=True,
    )
    max_steps: int = option(10_000, "optimizer steps", low=0, high=MAX_STEPS)
    max_seconds: float | None = option(
        None, "wall-time budget in seconds (None: none)", low=0, low_open=True, high=MAX_SECONDS
    )
    eval_every: int = option(
        500, "validate every N steps (0: only at the end)", low=0, high=MAX_STEPS
    )
    save_every: int = option(
        500, "write checkpoint.pt every N steps (0: only at the end)", low=0, high=MAX_STEPS
    )
    log_every: int = option(20, "log.csv row every N steps (0: none)", low=0, high=MAX_STEPS)
    eval_batch_size: int | None = option(
        None, "validation batch size (None: batch_size)", low=1, high=MAX_BATCH_SIZE
    )
    seed: int = option(
        0, "seed of the initial weights, data order, augmentation and noise", low=0, high=MAX_SEED
    )
    nan_policy: str = option(
        "skip",
        "on a non-finite loss: skip the update, or stop with an error",
        choices=("skip", "stop"),
    )
    log_csv: bool = option(True, "write log.csv")
    tensorboard: bool = option(False, "write TensorBoard event files too")
    progress: bool = option(True, "show a progress bar")
    out_dir: str | None = option(
        "runs/sketchrnn", "run folder: checkpoint.pt, best/, log.csv (None: no files)"
    )
    device: str = option("auto", "auto (cuda:LOCAL_RANK when available, else cpu), cpu, cuda:1")

    def __post_init__(self) -> None:
        self.check_bounds()
        check_device(self.device)
        if self.grad_clip_mode not in ("value", "norm"):
            raise ValueError(
                f"grad_clip_mode must be 'value' or 'norm', got {self.grad_clip_mode!r}"
            )
        if self.nan_policy not in ("skip", "stop"):
            raise ValueError(f"nan_policy must be 'skip' or 'stop', got {self.nan_policy!r}")
        if self.drop_prob > 0 and not self.augment:
            raise ValueError("drop_prob > 0 needs augment=True (point dropping is augmentation)")

    @classmethod
    def for_model(cls, model_class: type[SketchModel], **overrides: Any) -> TrainConfig:
        """The defaults, then ``model_class.TRAIN_DEFAULTS`` (SketchEmbedNet: batch 256, the
        learning rate x0.85 every 15k steps, no augmentation), then ``overrides``."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {**model_class.TRAIN_DEFAULTS, **overrides}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown TrainConfig fields: {', '.join(unknown)}")
        return cls(**values)


def learning_rate_at(step: int, cfg: TrainConfig) -> float:
    """``(lr - min_lr) * lr_decay**(step // lr_decay_every) + min_lr``: exponential decay
    towards ``min_lr``, every step by default (sketch-rnn) or in stairs (SketchEmbedNet)."""
    return (cfg.lr - cfg.min_lr) * cfg.lr_decay ** (step // cfg.lr_decay_every) + cfg.min_lr
