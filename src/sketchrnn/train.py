"""Training sketch-rnn and SketchEmbedNet: schedules, one Trainer (one process or DDP), logs.

The loop follows the paper's supplement (section 2): Adam, gradient clipping (each gradient
value clipped to ``[-1, 1]``, as magenta's sketch-rnn and SketchEmbedNet's Appendix B do;
clipping the global norm instead is an option), a learning rate that decays exponentially
towards ``min_lr`` (every step, or in stairs of ``lr_decay_every`` steps: SketchEmbedNet's
0.85 every 15k), and the annealed KL term

    eta_step   = 1 - (1 - eta_min) * R ** step
    loss_train = L_R + w_KL * eta_step * max(L_KL, KL_min)

while validation and test use the plain eq. 11 loss ``L_R + w_KL * L_KL``.

A SketchEmbedNet (a model with ``uses_images = True``) trains on image batches
(:mod:`sketchrnn.image_data`); its ``losses`` get the step, apply their own alpha curriculum
and return the objective as ``"loss"``, which the Trainer optimises as it is. log.csv then
fills ``L_pixel`` and ``alpha`` too (``L_s``/``L_p`` hold its ``L_stroke``/``L_pen``).

Run it on several processes with ``torchrun --nproc-per-node N ...``: the Trainer reads
``WORLD_SIZE``/``RANK``/``LOCAL_RANK``, joins the process group (gloo on CPU, nccl on GPU),
gives every rank its slice of each global batch and lets rank 0 alone write files.

Every random draw of a step (data order, augmentation, recurrent dropout, the VAE's noise)
is seeded from ``(seed, step, rank)``, so a run resumed from ``checkpoint.pt`` continues
exactly as if it had never stopped.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from sketchrnn.io.files import SketchFileError, atomic_path
from sketchrnn.models.base import ConfigDict

__all__ = [
    "TrainConfig",
    "Trainer",
    "TrainingError",
    "CheckpointError",
    "DistributedContext",
    "kl_weight_at",
    "learning_rate_at",
    "training_loss",
    "save_checkpoint",
    "load_checkpoint",
    "model_from_checkpoint",
    "CHECKPOINT_NAME",
    "LOG_COLUMNS",
]

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_FORMAT = "sketchrnn.train.checkpoint"
CHECKPOINT_VERSION = 1
LOG_COLUMNS = (
    "step",
    "split",
    "L_R",
    "L_s",
    "L_p",
    "L_KL",
    "loss",
    "lr",
    "kl_weight",
    "sketches_per_s",
    "L_pixel",
    "alpha",
)
# Loss terms averaged over a log window and written to log.csv (absent ones are left blank).
_LOSS_COLUMNS = ("L_R", "L_s", "L_p", "L_KL", "loss", "L_pixel", "alpha")
# SketchEmbedNet's L_stroke and L_pen are sketch-rnn's L_s and L_p (same normalisation).
_LOSS_ALIASES = {"L_s": "L_stroke", "L_p": "L_pen"}


class TrainingError(RuntimeError):
    """Training cannot go on as asked (non-finite loss with ``nan_policy="stop"``, a data set
    smaller than one batch, ...). The message says what happened and what to do."""


class CheckpointError(SketchFileError):
    """A checkpoint that is missing, unreadable, foreign, or does not fit the model or data."""


# ----------------------------------------------------------------------------- config


@dataclass
class TrainConfig(ConfigDict):
    """Hyper-parameters of a training run (defaults: magenta's sketch-rnn settings).

    ``max_seconds`` adds a wall-time budget (checked after every step) on top of ``max_steps``.
    ``eval_every``/``save_every``/``log_every`` count optimizer steps; 0 turns them off
    (a final checkpoint is always written when ``out_dir`` is set).
    """

    batch_size: int = 100
    lr: float = 1e-3
    lr_decay: float = 0.9999
    lr_decay_every: int = 1  # decay in stairs: lr_decay ** (step // lr_decay_every)
    min_lr: float = 1e-5
    grad_clip: float = 1.0
    grad_clip_mode: str = "value"  # "value": clip each gradient value; "norm": the global norm
    kl_weight: float = 0.5
    kl_min: float = 0.2
    kl_decay_rate: float = 0.99995
    kl_eta_min: float = 0.01
    augment: bool = True  # the paper's random x/y scaling by U(0.9, 1.1) (strokes.augment)
    drop_prob: float = 0.0  # probability of dropping an interior pen-down point (augmentation)
    max_steps: int = 10_000
    max_seconds: float | None = None
    eval_every: int = 500
    save_every: int = 500
    log_every: int = 20
    eval_batch_size: int | None = None  # None: batch_size
    seed: int = 0
    nan_policy: str = "skip"  # "skip" drops a non-finite update, "stop" raises TrainingError
    log_csv: bool = True
    tensorboard: bool = False
    progress: bool = True  # tqdm progress bar (rank 0 only)
    out_dir: str | None = "runs/sketchrnn"
    device: str = "auto"  # "auto": cuda:LOCAL_RANK when available, else cpu

    def __post_init__(self) -> None:
        if self.grad_clip_mode not in ("value", "norm"):
            raise ValueError(
                f"grad_clip_mode must be 'value' or 'norm', got {self.grad_clip_mode!r}"
            )
        if self.lr_decay_every < 1:
            raise ValueError(f"lr_decay_every must be >= 1, got {self.lr_decay_every}")
        if self.nan_policy not in ("skip", "stop"):
            raise ValueError(f"nan_policy must be 'skip' or 'stop', got {self.nan_policy!r}")
        if self.batch_size < 1 or self.max_steps < 0:
            raise ValueError("batch_size must be >= 1 and max_steps >= 0")
        if not 0.0 <= self.drop_prob < 1.0:
            raise ValueError(f"drop_prob must be in [0, 1), got {self.drop_prob}")
        if self.drop_prob > 0 and not self.augment:
            raise ValueError("drop_prob > 0 needs augment=True (point dropping is augmentation)")


def kl_weight_at(step: int, cfg: TrainConfig) -> float:
    """Annealed KL weight ``w_KL * (1 - (1 - eta_min) * R**step)`` (supplement eq. 4)."""
    eta = 1.0 - (1.0 - cfg.kl_eta_min) * cfg.kl_decay_rate**step
    return cfg.kl_weight * eta


def learning_rate_at(step: int, cfg: TrainConfig) -> float:
    """``(lr - min_lr) * lr_decay**(step // lr_decay_every) + min_lr``: exponential decay
    towards ``min_lr``, every step by default (sketch-rnn) or in stairs (SketchEmbedNet)."""
    return (cfg.lr - cfg.min_lr) * cfg.lr_decay ** (step // cfg.lr_decay_every) + cfg.min_lr


def training_loss(
    losses: dict[str, torch.Tensor], step: int, cfg: TrainConfig, conditional: bool
) -> torch.Tensor:
    """``L_R + kl_weight_at(step) * max(L_KL, KL_min)``; just ``L_R`` for a decoder-only model
    (its L_KL is zero and the floor would only add a constant). A model whose ``losses``
    return its own objective as ``"loss"`` (SketchEmbedNet, with its alpha curriculum and
    optional KL) is trained on that."""
    if "loss" in losses:
        return losses["loss"]
    if not conditional:
        return losses["L_R"]
    return losses["L_R"] + kl_weight_at(step, cfg) * torch.clamp(losses["L_KL"], min=cfg.kl_min)


def _clip_gradients(parameters: Any, cfg: TrainConfig) -> torch.Tensor:
    """Clip the gradients as configured; return their global norm before clipping (the NaN
    guard reads it: a non-finite value anywhere makes it non-finite)."""
    parameters = [p for p in parameters if p.grad is not None]
    if cfg.grad_clip_mode == "norm":
        return torch.nn.utils.clip_grad_norm_(parameters, cfg.grad_clip)
    grads = [p.grad for p in parameters]
    norm = torch.nn.utils.get_total_norm(grads)
    for g in grads:
        g.clamp_(-cfg.grad_clip, cfg.grad_clip)
    return norm


# ----------------------------------------------------------------------------- distributed


@dataclass
class DistributedContext:
    """Where this process stands: its rank among ``world_size`` and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = dataclasses.field(default_factory=lambda: torch.device("cpu"))
    initialized_here: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @classmethod
    def from_env(cls, device: str = "auto") -> DistributedContext:
        """Join the process group when launched by ``torchrun`` (``WORLD_SIZE`` > 1)."""
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
        if device not in ("auto", "cuda"):
            dev = torch.device(device)
        elif use_cuda:
            dev = torch.device("cuda", local_rank)
        else:
            dev = torch.device("cpu")
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        initialized_here = False
        if world_size > 1 and not dist.is_initialized():
            dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
            initialized_here = True
        if dist.is_initialized():
            rank, world_size = dist.get_rank(), dist.get_world_size()
        return cls(rank, world_size, local_rank, dev, initialized_here)

    def all_agree(self, flag: bool) -> bool:
        """True on every rank iff ``flag`` is true on every rank (a collective call)."""
        if not self.distributed:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
        return bool(t.item() > 0.5)

    def any(self, flag: bool) -> bool:
        """True on every rank iff ``flag`` is true on some rank (a collective call)."""
        return not self.all_agree(not flag)

    def close(self) -> None:
        if self.initialized_here and dist.is_initialized():
            # Wait for every rank (rank 0 may still be writing the last checkpoint): a rank
            # that tears gloo down while its peer is busy can abort the peer's process.
            dist.barrier()
            dist.destroy_process_group()


class _LossModule(nn.Module):
    """``model.losses`` as a ``forward`` so that DDP sees the call and averages gradients.

    A model with ``uses_images = True`` (SketchEmbedNet) gets ``(images, strokes, lengths,
    step)``, the step driving its loss curriculum; sketch-rnn gets ``(strokes, lengths,
    labels)``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(
        self, strokes: torch.Tensor, lengths: torch.Tensor, labels=None, images=None, step=None
    ):
        if images is not None:
            return self.model.losses(images, strokes, lengths, step)
        return self.model.losses(strokes, lengths, labels)


# ----------------------------------------------------------------------------- checkpoints


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write ``state`` with ``torch.save`` atomically (never a half-written file).

    Refuses a state whose weights are not all finite.
    """
    for name, t in state.get("model", {}).items():
        if torch.is_tensor(t) and t.is_floating_point() and not torch.isfinite(t).all():
            raise TrainingError(f"refusing to write {path}: parameter {name} is not finite")
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :class:`Trainer` (``weights_only``: nothing is unpickled).

    ``path`` may be the file or a run directory holding ``checkpoint.pt``.
    Raises :class:`CheckpointError` for a missing, truncated or foreign file.
    """
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.exists():
        raise CheckpointError(
            path, "no checkpoint here; check the path, or start a fresh run without --resume"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, foreign pickle, not a torch file at all
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            path, f"not a readable checkpoint (truncated or not written by sketchrnn): {reason}"
        ) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(path, "not a sketchrnn training checkpoint")
    if state.get("version", 0) > CHECKPOINT_VERSION:
        raise CheckpointError(
            path,
            f"checkpoint format version {state.get('version')} is newer than this sketchrnn "
            f"reads ({CHECKPOINT_VERSION}); upgrade sketchrnn",
        )
    missing = [k for k in ("model", "model_config", "optimizer", "step") if k not in state]
    if missing:
        raise CheckpointError(path, f"checkpoint lacks {', '.join(missing)}")
    return state


def _load_weights(model: nn.Module, weights: dict[str, torch.Tensor], path: Path) -> None:
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        detail = first[1].strip() if len(first) > 1 else first[0] if first else ""
        raise CheckpointError(
            path, f"weights do not match the model config stored with them ({detail})"
        ) from None


def _model_classes() -> dict[str, tuple[type, type]]:
    """Model class name -> (model class, config class), for rebuilding from a checkpoint."""
    from sketchrnn.models.sketch_embed_net import SketchEmbedNet, SketchEmbedNetConfig
    from sketchrnn.models.sketch_rnn import SketchRNN, SketchRNNConfig

    return {
        "SketchRNN": (SketchRNN, SketchRNNConfig),
        "SketchEmbedNet": (SketchEmbedNet, SketchEmbedNetConfig),
    }


def model_from_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu"):
    """A model (:class:`SketchRNN` or :class:`SketchEmbedNet`, as the checkpoint's
    ``model_class`` says; older checkpoints are sketch-rnn) rebuilt from a ``checkpoint.pt``
    (or a run directory), with ``model.scale_factor`` and ``model.classes`` set, in eval mode."""
    path = Path(path)
    file = path / CHECKPOINT_NAME if path.is_dir() else path
    state = load_checkpoint(file)
    known = _model_classes()
    name = state.get("model_class", "SketchRNN")
    if name not in known:
        raise CheckpointError(
            file, f"unknown model class {name!r} (this sketchrnn knows {', '.join(known)})"
        )
    model_class, config_class = known[name]
    try:
        config = config_class.from_dict(state["model_config"])
    except (TypeError, ValueError, KeyError) as e:
        raise CheckpointError(file, f"model config in the checkpoint is not valid: {e}") from None
    model = model_class(config)
    _load_weights(model, state["model"], file)
    model.scale_factor = state.get("scale_factor")
    model.classes = state.get("classes")
    return model.to(device).eval()


def _config_dict(model: nn.Module) -> dict[str, Any]:
    return model.config.to_dict()


def _seed_for(*parts: int) -> int:
    """A 63-bit seed mixing ``parts`` (numpy's SeedSequence hashing: no collisions to mind)."""
    words = np.random.SeedSequence([int(p) for p in parts]).generate_state(2, dtype=np.uint32)
    return (int(words[0]) << 31) ^ int(words[1])


def _rng_states() -> dict[str, Any]:
    """The global RNG states, as plain Python values and tensors (``weights_only``-loadable)."""
    np_state = np.random.get_state()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], np_state[1].tolist(), *[v for v in np_state[2:]]],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict[str, Any]) -> None:
    if "torch" in states:
        torch.set_rng_state(states["torch"])
    if "numpy" in states:
        name, keys, *rest = states["numpy"]
        np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))
    if "python" in states:
        version, internal, gauss = states["python"]
        random.setstate((version, tuple(internal), gauss))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


# ----------------------------------------------------------------------------- trainer


class Trainer:
    """One training loop for a single process and for DDP (launched with ``torchrun``).

    Files under ``config.out_dir`` (written by rank 0 only, each atomically):

    - ``checkpoint.pt``: the latest state: weights, optimizer, model and train config, data
      scale factor and classes, step, best validation loss, RNG states;
    - ``best/``: the weights with the lowest validation loss as a pretrained directory
      (``SketchRNN.from_pretrained(out_dir / "best")``) plus its ``checkpoint.pt``;
    - ``log.csv`` (:data:`LOG_COLUMNS`) and, if asked, TensorBoard event files.

    ``train`` and ``valid`` are :class:`sketchrnn.data.SketchDataset`; ``resume=True``
    continues from ``out_dir/checkpoint.pt``.
    """

    def __init__(
        self,
        model: nn.Module,
        config: TrainConfig,
        train: Any,
        valid: Any | None = None,
        *,
        resume: bool = False,
    ):
        self.config = config
        self.train_set = train
        self.valid_set = valid
        # The model learns in the data's normalised units: tell it the scale (and classes), so
        # that drawing with it right after training gives pixels, as a saved model does.
        model.scale_factor = getattr(train, "scale_factor", None)
        model.classes = list(getattr(train, "classes", None) or []) or None
        self.ctx = DistributedContext.from_env(config.device)
        if self.ctx.distributed and self.ctx.device.type == "cuda":
            # Batch statistics over the global batch, not each GPU's slice (SketchEmbedNet's
            # Conv4/ResNet12). PyTorch's SyncBatchNorm runs on GPUs only: gloo ranks on CPU
            # keep per-rank statistics. The weights' names do not change.
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.model = model.to(self.ctx.device)
        self.out_dir = Path(config.out_dir) if config.out_dir else None
        # SketchEmbedNet: image batches, and its losses carry their own objective and schedule.
        self.uses_images = bool(getattr(model, "uses_images", False))
        self.conditional = bool(getattr(model.config, "conditional", True)) and not self.uses_images
        self.use_labels = int(getattr(model.config, "num_classes", 0) or 0) > 0

        world = self.ctx.world_size
        if config.batch_size % world:
            raise TrainingError(
                f"batch_size {config.batch_size} is not divisible by the {world} processes; "
                "pick a global batch size that is a multiple of the number of processes"
            )
        if len(train) < config.batch_size:
            raise TrainingError(
                f"the training set has {len(train)} sketches, fewer than one batch of "
                f"{config.batch_size}; lower --batch-size or add data"
            )
        self.local_batch_size = config.batch_size // world
        self.batches_per_epoch = len(train) // config.batch_size

        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.step = 0
        self.best_valid_loss = math.inf
        self.skipped_steps = 0
        self._log_rows: list[dict[str, Any]] = []
        self._tb = None
        if config.tensorboard and self.ctx.is_main:
            _check_tensorboard()  # fail now, not after the first steps
        if resume:
            self._resume()

        # Every rank starts from the same weights (rank 0's); then DDP averages gradients.
        self.loss_module: nn.Module = _LossModule(self.model)
        if self.ctx.distributed:
            from torch.nn.parallel import DistributedDataParallel

            self.loss_module = DistributedDataParallel(
                self.loss_module,
                device_ids=[self.ctx.device.index] if self.ctx.device.type == "cuda" else None,
            )

    def close(self) -> None:
        """Leave the process group if this Trainer joined it."""
        self.ctx.close()

    # ------------------------------------------------------------------ resume / save

    @classmethod
    def from_checkpoint(cls, config: TrainConfig, train: Any, valid: Any | None = None) -> Trainer:
        """Resume ``config.out_dir`` building the model from the config stored there."""
        if not config.out_dir:
            raise TrainingError("resuming needs an out_dir holding checkpoint.pt")
        model = model_from_checkpoint(Path(config.out_dir) / CHECKPOINT_NAME)
        return cls(model.train(), config, train, valid, resume=True)

    def _resume(self) -> None:
        if self.out_dir is None:
            raise TrainingError("resuming needs an out_dir holding checkpoint.pt")
        path = self.out_dir / CHECKPOINT_NAME
        state = load_checkpoint(path)
        mine_class = type(self.model).__name__
        theirs_class = state.get("model_class", "SketchRNN")
        if mine_class != theirs_class:
            raise CheckpointError(
                path,
                f"the checkpoint holds a {theirs_class}, not a {mine_class}; resume with the "
                "same --model, or use a new --out-dir",
            )
        mine = _config_dict(self.model)
        theirs = state["model_config"]
        differing = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
        if differing:
            detail = ", ".join(
                f"{k}: {theirs.get(k)!r} there, {mine.get(k)!r} here" for k in differing
            )
            raise CheckpointError(
                path,
                f"the checkpoint's model config differs ({detail}); resume with the same "
                "model settings, or use a new --out-dir",
            )
        data_scale = getattr(self.train_set, "scale_factor", None)
        ckpt_scale = state.get("scale_factor")
        if ckpt_scale is not None and data_scale is not None:
            if not math.isclose(ckpt_scale, data_scale, rel_tol=1e-6):
                raise CheckpointError(
                    path,
                    f"trained on data with scale factor {ckpt_scale:.6g} but this data has "
                    f"{data_scale:.6g}; resume with the same --data",
                )
        _load_weights(self.model, state["model"], path)
        try:
            self.optimizer.load_state_dict(state["optimizer"])
        except (ValueError, KeyError, RuntimeError) as e:
            raise CheckpointError(path, f"optimizer state does not fit the model: {e}") from None
        self.step = int(state["step"])
        self.best_valid_loss = float(state.get("best_valid_loss", math.inf))
        self.skipped_steps = int(state.get("skipped_steps", 0))
        _set_rng_states(state.get("rng", {}))
        saved = state.get("train_config", {})
        for key in ("batch_size", "seed", "augment", "drop_prob"):
            if key in saved and saved[key] != getattr(self.config, key) and self.ctx.is_main:
                print(
                    f"note: {key} was {saved[key]!r} before the resume and is "
                    f"{getattr(self.config, key)!r} now; the run will not match an unbroken one"
                )
        self._log_rows = self._read_log(after_step=self.step)

    def state_dict(self) -> dict[str, Any]:
        """Everything :meth:`_resume` needs, as tensors and plain Python values."""
        return {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "model_class": type(self.model).__name__,
            "model_config": _config_dict(self.model),
            "train_config": self.config.to_dict(),
            "scale_factor": _plain_float(getattr(self.train_set, "scale_factor", None)),
            "classes": list(getattr(self.train_set, "classes", []) or []),
            "step": self.step,
            "best_valid_loss": self.best_valid_loss,
            "skipped_steps": self.skipped_steps,
            # The data order position is the step itself: epoch = step // batches_per_epoch.
            "batches_per_epoch": self.batches_per_epoch,
            "max_len": int(getattr(self.train_set, "max_len", 0)),
            "rng": _rng_states(),
        }

    def save(self) -> Path | None:
        """Write ``out_dir/checkpoint.pt`` (rank 0 only); returns its path."""
        if self.out_dir is None or not self.ctx.is_main:
            return None
        path = self.out_dir / CHECKPOINT_NAME
        save_checkpoint(path, self.state_dict())
        return path

    def _save_best(self) -> None:
        """Replace ``out_dir/best`` by a freshly written directory (never a half-written one)."""
        if self.out_dir is None or not self.ctx.is_main:
            return
        best = self.out_dir / "best"
        tmp = self.out_dir / ".best.part"
        old = self.out_dir / ".best.old"
        for d in (tmp, old):
            shutil.rmtree(d, ignore_errors=True)
        try:
            self.model.save_pretrained(
                tmp,
                scale_factor=_plain_float(getattr(self.train_set, "scale_factor", None)),
                classes=list(getattr(self.train_set, "classes", []) or []) or None,
            )
            save_checkpoint(tmp / CHECKPOINT_NAME, self.state_dict())
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if best.exists():
            os.replace(best, old)
        os.replace(tmp, best)
        shutil.rmtree(old, ignore_errors=True)

    # ------------------------------------------------------------------ data

    def global_batch_indices(self, step: int) -> np.ndarray:
        """Indices into the training set of the global batch for ``step``.

        Each epoch is a fresh permutation seeded by ``(seed, epoch)``; the last partial
        batch of an epoch is dropped, as in the paper's code.
        """
        epoch, position = divmod(step, self.batches_per_epoch)
        order = np.random.default_rng([self.config.seed, epoch]).permutation(len(self.train_set))
        b = self.config.batch_size
        return order[position * b : (position + 1) * b]

    def local_batch(self, step: int):
        """This rank's slice of the global batch for ``step``, augmented as configured."""
        indices = self.global_batch_indices(step)
        r, n = self.ctx.rank, self.local_batch_size
        mine = indices[r * n : (r + 1) * n]
        rng = np.random.default_rng([self.config.seed, step, r, 1])
        cfg = self.config
        return self.train_set.batch(mine, augment=cfg.augment, rng=rng, drop_prob=cfg.drop_prob)

    # ------------------------------------------------------------------ one step

    def train_step(self) -> dict[str, float]:
        """One optimizer step on the global batch for ``self.step``; returns its losses."""
        cfg, step = self.config, self.step
        # Seeding per step (and rank) makes dropout and the VAE noise reproducible on resume.
        torch.manual_seed(_seed_for(cfg.seed, step, self.ctx.rank, 2))
        lr = learning_rate_at(step, cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        klw = self._kl_weight(step)

        batch = self.local_batch(step)
        dev = self.ctx.device
        labels = batch.labels.to(dev) if self.use_labels else None
        self.model.train()
        if self.uses_images:
            losses = self.loss_module(
                batch.strokes.to(dev), batch.lengths.to(dev), images=batch.images.to(dev), step=step
            )
        else:
            losses = self.loss_module(batch.strokes.to(dev), batch.lengths.to(dev), labels)
        loss = training_loss(losses, step, cfg, self.conditional)

        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = _clip_gradients(self.model.parameters(), cfg)
        # Gradients are already averaged over ranks, but the loss is local: agree on skipping.
        finite = self.ctx.all_agree(bool(torch.isfinite(loss)) and bool(torch.isfinite(grad_norm)))
        if finite:
            self.optimizer.step()
        else:
            self.optimizer.zero_grad(set_to_none=True)
            if cfg.nan_policy == "stop":
                raise TrainingError(
                    f"non-finite loss or gradient at step {step} (loss {loss.item():.4g}, "
                    f"gradient norm {grad_norm.item():.4g}); the last good checkpoint is kept. "
                    "Lower --lr or use nan_policy='skip'"
                )
            self.skipped_steps += 1
        self.step += 1
        out = {k: float(v.detach()) for k, v in losses.items()}
        out.update(loss=float(loss.detach()), lr=lr, kl_weight=klw, finite=float(finite))
        return out

    # ------------------------------------------------------------------ loop

    def fit(self) -> dict[str, Any]:
        """Train until ``max_steps`` (or ``max_seconds``); returns a summary dict."""
        cfg, main = self.config, self.ctx.is_main
        if main and self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            if cfg.tensorboard:
                self._tb = _tensorboard_writer(self.out_dir / "tensorboard")
        start_step, t0 = self.step, time.perf_counter()
        bar = _progress_bar(cfg.max_steps, self.step) if (main and cfg.progress) else None
        window: list[dict[str, float]] = []
        window_t0 = time.perf_counter()
        last_valid: dict[str, float] | None = None
        paused = 0.0  # seconds spent validating and saving
        try:
            while self.step < cfg.max_steps:
                out = self.train_step()
                window.append(out)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(_progress_terms(out, self.uses_images), refresh=False)
                if not out["finite"] and main:
                    print(f"step {self.step - 1}: non-finite loss or gradient, update skipped")
                done = self.step >= cfg.max_steps
                if cfg.max_seconds is not None:
                    over = time.perf_counter() - t0 >= cfg.max_seconds
                    done = done or self.ctx.any(over)
                if cfg.log_every and (self.step % cfg.log_every == 0 or done):
                    elapsed = time.perf_counter() - window_t0
                    rate = len(window) * cfg.batch_size / max(elapsed, 1e-9)
                    self._log("train", _mean_losses(window), rate)
                    window, window_t0 = [], time.perf_counter()
                paused_at = time.perf_counter()
                if self.valid_set is not None and (
                    (cfg.eval_every and self.step % cfg.eval_every == 0) or done
                ):
                    last_valid = self.validate()
                if cfg.save_every and self.step % cfg.save_every == 0 and not done:
                    self.save()
                # Validation and saving are not training: keep them out of sketches/s.
                window_t0 += time.perf_counter() - paused_at
                paused += time.perf_counter() - paused_at
                if done:
                    break
            self.save()
        finally:
            if bar is not None:
                bar.close()
            if self._tb is not None:
                self._tb.close()
                self._tb = None
        seconds = time.perf_counter() - t0
        steps = self.step - start_step
        return {
            "steps": steps,
            "step": self.step,
            "seconds": seconds,  # wall time, validation and checkpoints included
            "train_seconds": seconds - paused,
            "sketches_per_s": steps * cfg.batch_size / max(seconds - paused, 1e-9),
            "skipped_steps": self.skipped_steps,
            "best_valid_loss": self.best_valid_loss,
            "valid": last_valid,
        }

    def validate(self) -> dict[str, float] | None:
        """Evaluate on the validation set (rank 0), log it, keep ``best/`` up to date."""
        if self.valid_set is None or not self.ctx.is_main:
            return None
        from sketchrnn.evaluate import evaluate

        batch_size = self.config.eval_batch_size or self.config.batch_size
        result = evaluate(
            self.model,
            self.valid_set,
            batch_size,
            kl_weight=self.config.kl_weight if self.conditional else 0.0,
            seed=self.config.seed,
        )
        self._log("valid", result, None)
        if math.isfinite(result["loss"]) and result["loss"] < self.best_valid_loss:
            self.best_valid_loss = result["loss"]
            self._save_best()
        return result

    # ------------------------------------------------------------------ logs

    def _kl_weight(self, step: int) -> float:
        """The KL weight in force at ``step`` (SketchEmbedNet: its config's fixed weight)."""
        if self.uses_images:
            return float(getattr(self.model.config, "kl_weight", 0.0))
        return kl_weight_at(step, self.config) if self.conditional else 0.0

    def _log(self, split: str, losses: dict[str, float], rate: float | None) -> None:
        if not self.ctx.is_main:
            return
        step = self.step
        values = {
            k: losses.get(k, losses.get(_LOSS_ALIASES.get(k, ""), float("nan")))
            for k in _LOSS_COLUMNS
        }
        # Blank, not NaN, for terms this model does not have (sketch-rnn: L_pixel, alpha).
        blank = () if self.uses_images else ("L_pixel", "alpha")
        row = {
            "step": step,
            "split": split,
            **{k: "" if k in blank else values[k] for k in _LOSS_COLUMNS},
            "lr": learning_rate_at(max(step - 1, 0), self.config),
            "kl_weight": self._kl_weight(max(step - 1, 0)),
            "sketches_per_s": rate if rate is not None else "",
        }
        self._log_rows.append(row)
        if self.out_dir is not None and self.config.log_csv:
            self._write_log()
        if self._tb is not None:
            for k in _LOSS_COLUMNS:
                if row[k] != "":
                    self._tb.add_scalar(f"{split}/{k}", row[k], step)
            if split == "train":
                self._tb.add_scalar("train/lr", row["lr"], step)
                self._tb.add_scalar("train/kl_weight", row["kl_weight"], step)

    def _write_log(self) -> None:
        assert self.out_dir is not None
        with atomic_path(self.out_dir / "log.csv") as tmp:
            with open(tmp, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=LOG_COLUMNS)
                writer.writeheader()
                for row in self._log_rows:
                    writer.writerow({k: _fmt(v) for k, v in row.items()})

    def _read_log(self, after_step: int) -> list[dict[str, Any]]:
        """Rows of an earlier ``log.csv`` up to the resumed step (later ones are redone)."""
        if self.out_dir is None:
            return []
        path = self.out_dir / "log.csv"
        if not path.exists():
            return []
        try:
            with open(path, newline="") as f:
                rows = list(csv.DictReader(f))
            return [r for r in rows if int(r["step"]) <= after_step]
        except (OSError, ValueError, KeyError, csv.Error):
            return []  # a damaged log is not worth stopping a resume for; it is rewritten


@torch.no_grad()
def _fmt(v: Any) -> Any:
    return f"{v:.6g}" if isinstance(v, float) else v


def _plain_float(v: Any) -> float | None:
    return None if v is None else float(v)


def _mean_losses(rows: list[dict[str, float]]) -> dict[str, float]:
    keys = (*_LOSS_COLUMNS, *_LOSS_ALIASES.values())
    good = [r for r in rows if r.get("finite", 1.0)] or rows
    return {k: float(np.mean([r[k] for r in good])) for k in keys if k in good[0]}


def _progress_terms(out: dict[str, float], uses_images: bool) -> dict[str, str]:
    """What the progress bar shows of a step: sketch-rnn's L_R, L_KL and KL weight, or
    SketchEmbedNet's objective terms and its pixel-loss weight alpha."""
    names = ("L_pen", "L_stroke", "L_pixel", "alpha") if uses_images else ("L_R", "L_KL")
    terms = {name: f"{out[name]:.3f}" for name in names} | {"lr": f"{out['lr']:.2e}"}
    return terms if uses_images else terms | {"klw": f"{out['kl_weight']:.3f}"}


def _progress_bar(total: int, initial: int):
    from sketchrnn.progress import progress_bar

    return progress_bar(total=total, initial=initial, desc="train", unit="step", dynamic_ncols=True)


def _check_tensorboard() -> None:
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError:
        raise TrainingError(
            "tensorboard logging was asked for but the tensorboard package is not installed: "
            "pip install tensorboard, or train without --tensorboard (log.csv has the same figures)"
        ) from None


def _tensorboard_writer(log_dir: Path):
    _check_tensorboard()
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(log_dir))
