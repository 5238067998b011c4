"""Training any model of :mod:`sketchrnn.models`: one Trainer, for one process or DDP.

The loop follows sketch-rnn's supplement (section 2): Adam, gradient clipping (each gradient
value clipped to ``[-1, 1]``, as magenta's sketch-rnn and SketchEmbedNet's Appendix B do;
clipping the global norm instead is an option), and a learning rate that decays exponentially
towards ``min_lr`` (every step, or in stairs of ``lr_decay_every`` steps: SketchEmbedNet's 0.85
every 15k). What it minimises is the model's own ``losses(batch, step)["loss"]``: the model
holds its objective and its schedules (sketch-rnn's KL annealing, SketchEmbedNet's pixel-loss
curriculum); validation scores ``losses(batch, None)``, the evaluation objective. The settings
are a :class:`~sketchrnn.train_config.TrainConfig`; defaults that differ per model come from its
``TRAIN_DEFAULTS`` (:meth:`~sketchrnn.train_config.TrainConfig.for_model`).

The Trainer gives the model the training data's units (scale factor and classes) when the
model has none yet, so that a model drawn with right after training, or saved, gives pixels.

Run it on several processes with ``torchrun --nproc-per-node N ...``: the Trainer reads
``WORLD_SIZE``/``RANK``/``LOCAL_RANK``, joins the process group (gloo on CPU, nccl on GPU),
gives every rank its slice of each global batch and lets rank 0 alone write files.

Every random draw of a step (data order, augmentation, recurrent dropout, the VAE's noise)
is seeded from ``(seed, step, rank)``, so a run resumed from ``checkpoint.pt`` continues
exactly as if it had never stopped; :func:`new_model` draws a model's initial weights from the
same seed, so the same command gives bitwise the same run (on the same machine).

A run folder is crash-safe: every file is written atomically, the checkpoint before the latest
is kept, a damaged checkpoint is refused on load, and ``run.lock`` keeps a second training out
of a folder in use (:mod:`sketchrnn.run_folder`). What a run reports is
:mod:`sketchrnn.run_log`'s, its seeds :mod:`sketchrnn.seeds`'s, the processes'
:mod:`sketchrnn.distributed`'s.

Longer than 500 lines on purpose: the Trainer's setup, resume, step, loop and validation share
its state (step, optimizer, log window); what is not the Trainer lives in the modules above.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from sketchrnn.cpu_memory import FreedMemoryKept
from sketchrnn.cpu_threads import ThreadGovernor
from sketchrnn.datasets import BatchSource, to_device
from sketchrnn.distributed import DistributedContext
from sketchrnn.evaluate import evaluate
from sketchrnn.io.files import SketchFileError
from sketchrnn.models.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_NAME,
    CHECKPOINT_VERSION,
    CheckpointError,
    checkpoint_model_class,
    checkpoint_model_config,
    load_weights,
)
from sketchrnn.models.interface import SketchModel
from sketchrnn.models.units import adopt_units
from sketchrnn.run_folder import (
    RunLock,
    check_resumable,
    lock_run_folder,
    read_run_checkpoint,
    save_best,
    save_run_checkpoint,
)
from sketchrnn.run_log import RunLog, mean_losses, progress_terms, step_progress_bar
from sketchrnn.seeds import rng_states, seed_for, set_rng_states
from sketchrnn.train_config import TrainConfig, learning_rate_at

__all__ = ["Trainer", "TrainingError", "new_model"]


class TrainingError(RuntimeError):
    """Training cannot go on as asked (non-finite loss with ``nan_policy="stop"``, a data set
    smaller than one batch, ...). The message says what happened and what to do."""


def new_model(model_class: type[SketchModel], config: Any, seed: int) -> SketchModel:
    """A fresh ``model_class(config)`` whose initial weights are drawn from ``seed`` (a run's
    ``TrainConfig.seed``): the same seed gives bitwise the same weights, another seed others.

    The Trainer takes the model as it is given; build it with this (as ``sketchrnn train``
    does) for a run that is reproducible from its seed alone. The global RNG is left as it was.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed_for(seed, 3))
        return model_class(config)


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


class _LossModule(nn.Module):
    """``model.losses(batch, step)`` as a ``forward``, so that DDP sees the call and averages
    the gradients."""

    def __init__(self, model: SketchModel):
        super().__init__()
        self.model = model

    def forward(self, batch: Any, step: int | None) -> dict[str, torch.Tensor]:
        return self.model.losses(batch, step)


# ----------------------------------------------------------------------------- trainer


class Trainer:
    """One training loop for a single process and for DDP (launched with ``torchrun``), for
    any :class:`~sketchrnn.models.interface.SketchModel`: it minimises
    ``model.losses(batch, step)["loss"]``.

    Files under ``config.out_dir`` (written by rank 0 only, each atomically):

    - ``checkpoint.pt``: the latest state (:mod:`sketchrnn.models.checkpoint`): weights,
      optimizer, model class and config (its units included), train config, step, best
      validation loss, RNG states, the log window since the last log row; with a checksum,
      checked on load. ``checkpoint.prev.pt`` is the one before it;
    - ``best/``: the weights with the lowest validation loss as a pretrained directory
      (``load_model(out_dir / "best")``) plus its ``checkpoint.pt``;
    - ``log.csv`` (:func:`log_columns`) and, if asked, TensorBoard event files;
    - ``run.lock`` (:class:`RunLock`), held from the Trainer's creation until :meth:`fit`
      returns or :meth:`close` (:meth:`fit` takes it again): a second training on the same
      folder fails at once naming this one's process. Taking it also removes what a killed
      write left behind (``.checkpoint.pt.*.part``, ...).

    ``train`` and ``valid`` are data sets of the model's batch type
    (:class:`sketchrnn.datasets.BatchSource`, as ``model.dataset(config, sketches)`` builds
    them; one with a ``verify()``, as a packed store's, is verified before the first step);
    the model takes the training set's
    ``scale_factor`` and ``classes`` when it has none. ``resume=True`` continues from
    ``out_dir/checkpoint.pt`` (or from ``resume_state``, its content when already read with
    :func:`read_run_checkpoint`); ``run_lock`` is a lock on ``out_dir`` already taken
    (:meth:`from_checkpoint` passes its own).

    The model's initial weights are the caller's: for a run that its seed alone reproduces,
    build it with :func:`new_model` ``(model_class, config, train_config.seed)``.
    """

    def __init__(
        self,
        model: SketchModel,
        config: TrainConfig,
        train: BatchSource,
        valid: BatchSource | None = None,
        *,
        resume: bool = False,
        run_lock: RunLock | None = None,
        resume_state: dict[str, Any] | None = None,
    ):
        self.config = config
        self.train_set = train
        self.valid_set = valid
        self.threads = ThreadGovernor()  # torch's CPU threads while fit() runs
        self.memory = FreedMemoryKept()  # glibc keeps freed tensors' pages while fit() runs
        self.out_dir = Path(config.out_dir) if config.out_dir else None
        self.ctx = DistributedContext.from_env(config.device)
        if valid is not None and len(valid) == 0:
            # A small data set can have no validation split (5 drawings: 5/0/0): train without.
            if self.ctx.is_main:
                print("no validation sketches: training without validation (and without best/)")
            self.valid_set = None
        # Only rank 0 writes files, so only rank 0 locks the folder.
        self._lock = run_lock
        if self._lock is None and self.out_dir is not None and self.ctx.is_main:
            self._lock = lock_run_folder(self.out_dir)
        try:
            self._setup(model, resume, resume_state)
        except BaseException:
            if self._lock is not None:
                self._lock.discard()
            raise

    def _setup(self, model: SketchModel, resume: bool, state: dict[str, Any] | None) -> None:
        config, train = self.config, self.train_set
        self._verify_data()
        resumed = self._read_resume_state(model, state) if resume else None
        # The model learns in the data's normalised units: it keeps their scale (and classes),
        # so that drawing with it right after training gives pixels, as a saved model does.
        try:
            scale = getattr(train, "scale_factor", None)
            adopt_units(model, scale, list(getattr(train, "classes", None) or []))
        except ValueError as e:
            raise TrainingError(str(e)) from None
        if self.ctx.distributed and self.ctx.device.type == "cuda":
            # Batch statistics over the global batch, not each GPU's slice (SketchEmbedNet's
            # Conv4/ResNet12). PyTorch's SyncBatchNorm runs on GPUs only: gloo ranks on CPU
            # keep per-rank statistics. The weights' names do not change.
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.model = model.to(self.ctx.device)

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
        self.log = RunLog(type(model), self.out_dir, config.log_csv)
        # Each step's losses since the last train row of the log (checkpointed, so that the
        # first row after a resume averages the same steps as an unbroken run's).
        self._log_window: list[dict[str, float]] = []
        self._epoch_order: tuple[int, np.ndarray] | None = None
        if config.tensorboard and self.ctx.is_main:
            _check_tensorboard()  # fail now, not after the first steps
        if resumed is not None:
            self._resume(*resumed)

        # Every rank starts from the same weights (rank 0's); then DDP averages gradients.
        self.loss_module: nn.Module = _LossModule(self.model)
        if self.ctx.distributed:
            self.loss_module = DistributedDataParallel(
                self.loss_module,
                device_ids=[self.ctx.device.index] if self.ctx.device.type == "cuda" else None,
            )

    def _verify_data(self) -> None:
        """Before the first step, check the data against what was recorded when they were
        made: a dataset with a ``verify()`` (a packed store's: its digests) is checked. Every
        rank checks its own copy, and all stop if any finds damage."""
        error: SketchFileError | None = None
        for data in (self.train_set, self.valid_set):
            verify = getattr(data, "verify", None)
            if verify is None:
                continue
            try:
                verify()
            except SketchFileError as e:
                error = e
                break
        if not self.ctx.all_agree(error is None):
            raise error or TrainingError("another process found the training data damaged")

    def close(self) -> None:
        """Let go of the run folder's lock; leave the process group if this Trainer joined it."""
        self._release_lock()
        self.ctx.close()

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.release()

    @property
    def log_rows(self) -> list[dict[str, Any]]:
        """The rows of log.csv so far (kept also without an ``out_dir``): ``step``,
        ``split``, the loss columns (``""`` for terms the model does not have), ``lr``, ..."""
        return self.log.rows

    # ------------------------------------------------------------------ resume / save

    @classmethod
    def from_checkpoint(
        cls,
        config: TrainConfig,
        train: BatchSource,
        valid: BatchSource | None = None,
        *,
        state: dict[str, Any] | None = None,
        run_lock: RunLock | None = None,
    ) -> Trainer:
        """Resume ``config.out_dir`` building the model from the config stored there
        (``state``: its checkpoint's content, when already read with
        :func:`read_run_checkpoint`; ``run_lock``: the folder's lock, when already taken)."""
        if not config.out_dir:
            raise TrainingError("resuming needs an out_dir holding checkpoint.pt")
        out_dir = Path(config.out_dir)
        # Lock first: fail at once if another training has the folder, before reading.
        lock = run_lock if run_lock is not None else lock_run_folder(out_dir)
        try:
            path = out_dir / CHECKPOINT_NAME
            if state is None:
                state = read_run_checkpoint(out_dir)
            model = checkpoint_model_class(state, path)(checkpoint_model_config(state, path))
            load_weights(model, state["model"], path)
            return cls(
                model.train(), config, train, valid, resume=True, run_lock=lock, resume_state=state
            )
        except BaseException:
            if lock is not None:
                lock.discard()
            raise

    def _read_resume_state(
        self, model: SketchModel, state: dict[str, Any] | None
    ) -> tuple[dict[str, Any], Path]:
        """The checkpoint to resume from, checked against the model's class and the data's
        scale factor (before the model takes the data's units)."""
        if self.out_dir is None:
            raise TrainingError("resuming needs an out_dir holding checkpoint.pt")
        path = self.out_dir / CHECKPOINT_NAME
        if state is None:
            state = read_run_checkpoint(self.out_dir)
        check_resumable(state, path, model, getattr(self.train_set, "scale_factor", None))
        return state, path

    def _resume(self, state: dict[str, Any], path: Path) -> None:
        mine = self.model.config.to_dict()
        theirs = checkpoint_model_config(state, path).to_dict()
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
        load_weights(self.model, state["model"], path)
        try:
            self.optimizer.load_state_dict(state["optimizer"])
        except (ValueError, KeyError, RuntimeError) as e:
            raise CheckpointError(path, f"optimizer state does not fit the model: {e}") from None
        self.step = int(state["step"])
        self.best_valid_loss = float(state.get("best_valid_loss", math.inf))
        self.skipped_steps = int(state.get("skipped_steps", 0))
        self._log_window = [dict(row) for row in state.get("log_window", [])]
        set_rng_states(state.get("rng", {}))
        saved = state.get("train_config", {})
        for key in ("batch_size", "seed", "augment", "drop_prob"):
            if key in saved and saved[key] != getattr(self.config, key) and self.ctx.is_main:
                print(
                    f"note: {key} was {saved[key]!r} before the resume and is "
                    f"{getattr(self.config, key)!r} now; the run will not match an unbroken one"
                )
        self.log.resume(after_step=self.step)

    def state_dict(self) -> dict[str, Any]:
        """Everything :meth:`_resume` needs, as tensors and plain Python values."""
        return {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "model_class": type(self.model).__name__,
            "model_config": self.model.config.to_dict(),  # the model's units included
            "train_config": self.config.to_dict(),
            "step": self.step,
            "best_valid_loss": self.best_valid_loss,
            "skipped_steps": self.skipped_steps,
            # The data order position is the step itself: epoch = step // batches_per_epoch.
            "batches_per_epoch": self.batches_per_epoch,
            "max_len": int(getattr(self.train_set, "max_len", 0)),
            "rng": rng_states(),
            "log_window": [dict(row) for row in self._log_window],
        }

    def save(self) -> Path | None:
        """Write ``out_dir/checkpoint.pt`` (rank 0 only); returns its path."""
        if self.out_dir is None or not self.ctx.is_main:
            return None
        state = self.state_dict()  # before touching any file: a failure here changes none
        return save_run_checkpoint(self.out_dir, state)

    def _save_best(self) -> None:
        """Replace ``out_dir/best`` (:func:`sketchrnn.run_folder.save_best`), rank 0 only."""
        if self.out_dir is not None and self.ctx.is_main:
            save_best(self.out_dir, self.model, self.state_dict())

    # ------------------------------------------------------------------ data

    def global_batch_indices(self, step: int) -> np.ndarray:
        """Indices into the training set of the global batch for ``step``.

        Each epoch is a fresh permutation seeded by ``(seed, epoch)`` (drawn once per epoch and
        kept); the last partial batch of an epoch is dropped, as in the paper's code.
        """
        epoch, position = divmod(step, self.batches_per_epoch)
        if self._epoch_order is None or self._epoch_order[0] != epoch:
            rng = np.random.default_rng([self.config.seed, epoch])
            self._epoch_order = (epoch, rng.permutation(len(self.train_set)))
        order = self._epoch_order[1]
        b = self.config.batch_size
        return order[position * b : (position + 1) * b].copy()

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
        torch.manual_seed(seed_for(cfg.seed, step, self.ctx.rank, 2))
        lr = learning_rate_at(step, cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = lr

        batch = to_device(self.local_batch(step), self.ctx.device)
        self.model.train()
        losses = self.loss_module(batch, step)
        loss = losses["loss"]

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
        out.update(lr=lr, finite=float(finite))
        return out

    # ------------------------------------------------------------------ loop

    def fit(self) -> dict[str, Any]:
        """Train until ``max_steps`` (or ``max_seconds``); returns a summary dict."""
        if self.ctx.is_main and self.out_dir is not None:
            if self._lock is None:
                self._lock = RunLock(self.out_dir)
            self._lock.acquire()  # again, if an earlier fit() let go of it
        try:
            return self._fit()
        finally:
            self._release_lock()

    def _fit(self) -> dict[str, Any]:
        cfg, main = self.config, self.ctx.is_main
        if main and self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            if cfg.tensorboard:
                _check_tensorboard()
                self.log.open_tensorboard()
        start_step, t0 = self.step, time.perf_counter()
        bar = step_progress_bar(cfg.max_steps, self.step) if (main and cfg.progress) else None
        window = self._log_window  # losses of the steps since the last train row
        window_t0 = time.perf_counter()
        last_valid: dict[str, float] | None = None
        paused = 0.0  # seconds spent validating and saving
        # On a CPU, as many threads as there are cores free, checked again every few seconds:
        # OpenMP threads beside a busy process stall each other (sketchrnn.cpu_threads); and
        # the pages of the tensors a step frees kept for the next (sketchrnn.cpu_memory).
        if self.ctx.device.type == "cpu":
            self.threads.start()
            self.memory.start()
        try:
            while self.step < cfg.max_steps:
                out = self.train_step()
                self.threads.tick()
                window.append(out)
                if bar is not None:
                    bar.update(1)
                    terms = progress_terms(out, type(self.model).PROGRESS_TERMS)
                    bar.set_postfix(terms, refresh=False)
                if not out["finite"] and main:
                    print(f"step {self.step - 1}: non-finite loss or gradient, update skipped")
                done = self.step >= cfg.max_steps
                if cfg.max_seconds is not None:
                    over = time.perf_counter() - t0 >= cfg.max_seconds
                    done = done or self.ctx.any(over)
                if cfg.log_every and (self.step % cfg.log_every == 0 or done):
                    elapsed = time.perf_counter() - window_t0
                    rate = len(window) * cfg.batch_size / max(elapsed, 1e-9)
                    self._log("train", mean_losses(window), rate)
                    window.clear()
                    window_t0 = time.perf_counter()
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
            self.threads.stop()
            self.memory.stop()
            if bar is not None:
                bar.close()
            self.log.close()
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
        batch_size = self.config.eval_batch_size or self.config.batch_size
        result = evaluate(self.model, self.valid_set, batch_size, seed=self.config.seed)
        self._log("valid", result, None)
        if math.isfinite(result["loss"]) and result["loss"] < self.best_valid_loss:
            self.best_valid_loss = result["loss"]
            self._save_best()
        return result

    # ------------------------------------------------------------------ logs

    def _log(self, split: str, losses: dict[str, float], rate: float | None) -> None:
        if self.ctx.is_main:
            lr = learning_rate_at(max(self.step - 1, 0), self.config)
            self.log.add(self.step, split, losses, lr, rate)


def _check_tensorboard() -> None:
    try:
        import torch.utils.tensorboard  # noqa: F401  (an optional dependency: is it there?)
    except ImportError:
        raise TrainingError(
            "tensorboard logging was asked for but the tensorboard package is not installed: "
            "pip install tensorboard, or train without --tensorboard (log.csv has the same figures)"
        ) from None
