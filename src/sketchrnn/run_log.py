"""What a training run reports as it goes: the rows of its ``log.csv``, whose columns the model
declares (:func:`log_columns`), TensorBoard event files when asked, and what the progress bar
shows of a step (:func:`progress_terms`).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from sketchrnn.io.files import atomic_path
from sketchrnn.models.interface import SketchModel
from sketchrnn.progress import progress_bar

__all__ = ["RunLog", "log_columns", "mean_losses", "progress_terms", "step_progress_bar"]


def log_columns(model_class: type[SketchModel]) -> list[str]:
    """The columns of a run's log.csv: ``step``, ``split``, the model's ``LOSS_COLUMNS``, the
    learning rate ``lr``, the model's ``SCHEDULE_COLUMNS`` and ``sketches_per_s``."""
    return [
        "step",
        "split",
        *model_class.LOSS_COLUMNS,
        "lr",
        *model_class.SCHEDULE_COLUMNS,
        "sketches_per_s",
    ]


class RunLog:
    """The rows of a run's ``log.csv`` (``rows``, kept also when nothing is written),
    written to ``out_dir/log.csv`` after every row when ``write_csv`` (atomically: the whole
    file again), and to TensorBoard event files under ``out_dir/tensorboard`` while
    :meth:`open_tensorboard` has opened them."""

    def __init__(self, model_class: type[SketchModel], out_dir: Path | None, write_csv: bool):
        self.columns = log_columns(model_class)
        self.loss_columns = dict(model_class.LOSS_COLUMNS)
        self.terms = {**model_class.LOSS_COLUMNS, **model_class.SCHEDULE_COLUMNS}
        self.path = out_dir / "log.csv" if out_dir is not None and write_csv else None
        self.rows: list[dict[str, Any]] = []
        self._out_dir = out_dir
        self._tb: Any = None

    def add(
        self, step: int, split: str, losses: dict[str, float], lr: float, rate: float | None
    ) -> None:
        """One row: the model's terms of ``losses`` (blank, not NaN, for a term they lack),
        the learning rate and, for training rows, the sketches per second."""
        values = {column: losses.get(key, "") for column, key in self.terms.items()}
        row = {
            "step": step,
            "split": split,
            **values,
            "lr": lr,
            "sketches_per_s": rate if rate is not None else "",
        }
        self.rows.append(row)
        if self.path is not None:
            self._write()
        if self._tb is not None:
            for k in self.terms:  # schedule values are the training rows'
                if row[k] != "" and (k in self.loss_columns or split == "train"):
                    self._tb.add_scalar(f"{split}/{k}", row[k], step)
            if split == "train":
                self._tb.add_scalar("train/lr", row["lr"], step)

    def _write(self) -> None:
        assert self.path is not None
        with atomic_path(self.path) as tmp:
            with open(tmp, "w", newline="") as f:
                # A run resumed from an older version may hold rows with other columns.
                writer = csv.DictWriter(f, fieldnames=self.columns, extrasaction="ignore")
                writer.writeheader()
                for row in self.rows:
                    writer.writerow({k: _text(v) for k, v in row.items()})

    def resume(self, after_step: int) -> None:
        """Take the rows of an earlier ``log.csv`` up to the resumed step (later ones are
        redone); none when there is none, or it is damaged (it is rewritten)."""
        self.rows = []
        path = None if self._out_dir is None else self._out_dir / "log.csv"
        if path is None or not path.exists():
            return
        try:
            with open(path, newline="") as f:
                rows = list(csv.DictReader(f))
            self.rows = [r for r in rows if int(r["step"]) <= after_step]
        except (OSError, ValueError, KeyError, csv.Error):
            pass  # a damaged log is not worth stopping a resume for

    def open_tensorboard(self) -> None:
        """Write TensorBoard event files too, from now until :meth:`close` (the caller has
        checked that the optional ``tensorboard`` package is installed)."""
        assert self._out_dir is not None
        # Imported here: tensorboard is an optional dependency.
        from torch.utils.tensorboard import SummaryWriter

        self._tb = SummaryWriter(log_dir=str(self._out_dir / "tensorboard"))

    def close(self) -> None:
        """Close the TensorBoard files, if open."""
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def _text(v: Any) -> Any:
    return f"{v:.6g}" if isinstance(v, float) else v


def mean_losses(rows: list[dict[str, float]]) -> dict[str, float]:
    """Each term's mean over the rows of a log window (the finite steps, when there are)."""
    good = [r for r in rows if r.get("finite", 1.0)] or rows
    return {k: float(np.mean([r[k] for r in good])) for k in good[0] if k not in ("finite", "lr")}


def progress_terms(out: dict[str, float], terms: dict[str, str]) -> dict[str, str]:
    """What the progress bar shows of a step: the model's ``PROGRESS_TERMS`` (label -> key of
    its losses) and the learning rate."""
    shown = {label: f"{out[key]:.3f}" for label, key in terms.items() if key in out}
    return shown | {"lr": f"{out['lr']:.2e}"}


def step_progress_bar(total: int, initial: int) -> Any:
    """The training's progress bar, in steps."""
    return progress_bar(total=total, initial=initial, desc="train", unit="step", dynamic_ncols=True)
