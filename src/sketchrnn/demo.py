"""``sketchrnn demo``: draw with the built-in shapes models, or train one first, and write pictures.

No download and, by default, no training: the package's built-in models of its synthetic shapes
(``shapes_vae``, a sketch-rnn VAE, and ``shapes_gen``, decoder-only; see
:mod:`sketchrnn.models.builtin`) draw at once. ``train=True`` (``sketchrnn demo --train``) first
trains a small VAE on :func:`sketchrnn.synthetic.synthetic_sketchset` for about ``seconds``
(a time budget, not a step count, so it ends in time on any CPU) and draws with that. It writes

- ``samples.png`` / ``.svg``: sketches drawn from nothing (by ``shapes_gen``; with training,
  decoded from random ``z ~ N(0, I)``);
- ``reconstructions.png`` / ``.svg``: pairs of held-back shape (black) and the model's
  reconstruction from its encoding (red), side by side, both in the data's pixels;
- ``completions.png`` / ``.svg`` (paper section 4.4's figure): each row a shape's first half
  alone, then three endings, the given prefix in black and the model's strokes in red;
- with ``train=True``: ``model/``, the trained model (``SketchRNN.from_pretrained``), and
  ``train/`` with its log.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sketchrnn.data import datasets_from_sketchset
from sketchrnn.generate import complete, decode, encode
from sketchrnn.io.formats import PREFIX_COLORS
from sketchrnn.io.png import write_png
from sketchrnn.io.svg import write_svg
from sketchrnn.models import SketchModel, load_model
from sketchrnn.models.sketch_rnn import SketchRNN, SketchRNNConfig
from sketchrnn.synthetic import synthetic_sketchset
from sketchrnn.train import Trainer
from sketchrnn.train_config import TrainConfig

__all__ = ["run_demo", "DEMO_MODEL", "DEMO_TRAIN"]

# Tuned on 2 shared CPU cores, judged by steps rather than seconds: unloaded, this model runs
# about 50 steps/s (about 20 on average while other jobs shared the cores: 2736 steps in the
# 150 s default), and by 2000-2700 steps random z decode to circles, squares, triangles and
# stacked circles. The plain LSTM cell is about twice as fast as LayerNorm here; a small
# batch with a high, fast-decaying learning rate makes the most of few steps; the KL floor
# of 0.5 lets z carry the shape while keeping z ~ N(0, I) samples recognisable.
DEMO_MODEL: dict[str, Any] = dict(
    enc_hidden=128,
    dec_hidden=128,
    z_size=16,
    num_mixtures=5,
    cell="lstm",
    recurrent_dropout=0.0,
    kl_weight=0.5,
    kl_min=0.5,
    kl_decay_rate=0.995,
)
DEMO_TRAIN: dict[str, Any] = dict(
    batch_size=32,
    lr=5e-3,
    lr_decay=0.999,
    min_lr=1e-4,
    max_steps=3000,
    eval_every=200,
    save_every=0,
    log_every=20,
)
GENERATION_SECONDS = 10.0  # kept back from the budget for sampling and writing files

# The built-in models were trained on synthetic_sketchset(2000, seed=0); the demo's held-back
# shapes come from another seed, so none of them was seen in training.
HELD_BACK_SEED = 2026
HELD_BACK_PER_CLASS = 40
RECONSTRUCTIONS = 12  # pairs in reconstructions.png
COMPLETION_ROWS = 6  # one prefix per class (six classes), each with COMPLETION_ENDINGS endings
COMPLETION_ENDINGS = 3


def run_demo(
    out_dir: str | os.PathLike,
    *,
    train: bool = False,
    seconds: float = 150,
    seed: int = 0,
    n_per_class: int = 300,
    max_steps: int | None = None,
    progress: bool = True,
    temperature: float = 0.25,
) -> dict[str, Path]:
    """Draw with the built-in shapes models (or, with ``train``, a VAE trained for about
    ``seconds`` on ``n_per_class`` synthetic shapes of each class) and write sample grids.

    Returns the written paths: ``samples_png``, ``samples_svg``, ``reconstructions_png``,
    ``reconstructions_svg``, ``completions_png``, ``completions_svg`` and, with ``train``,
    ``model`` (a pretrained directory) and ``log`` (``log.csv``). Deterministic for a given
    ``seed`` (when training, up to where the time budget cuts it).
    """
    if not np.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"seconds must be a positive number, got {seconds}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    if train:
        vae = _train_demo_model(out, seconds, seed, n_per_class, max_steps, progress)
        completer: SketchRNN = vae
        paths |= {"model": out / "model", "log": out / "train" / "log.csv"}
    else:
        vae = load_model("shapes_vae")  # type: ignore[assignment]
        completer = load_model("shapes_gen")  # type: ignore[assignment]
        if progress:
            print("drawing with the built-in models shapes_vae and shapes_gen (--train: train one)")
    held_back = _held_back_shapes(vae, seed)

    # The decoder-only model draws the better unconditional samples: its prior is the data's.
    samples = completer.generate(24, temperature=temperature, seed=seed)
    pairs = _reconstructions(vae, held_back, temperature, seed)
    rows, prefix_points = _completions(completer, held_back, temperature, seed)
    for name in ("samples", "reconstructions", "completions"):
        paths[f"{name}_png"] = out / f"{name}.png"
        paths[f"{name}_svg"] = out / f"{name}.svg"
    write_png(paths["samples_png"], samples, ncols=6)
    write_svg(paths["samples_svg"], samples, ncols=6)
    # Input and reconstruction alternate, so with an even column count they sit side by side.
    colors = list(PREFIX_COLORS)  # the input (or the given prefix), then what the model drew
    write_png(paths["reconstructions_png"], pairs, ncols=6, colors=colors, color_by="sketch")
    write_svg(paths["reconstructions_svg"], pairs, ncols=6, colors=colors, color_by="sketch")
    ncols = 1 + COMPLETION_ENDINGS
    for key, writer in (("completions_png", write_png), ("completions_svg", write_svg)):
        writer(paths[key], rows, ncols=ncols, colors=colors, prefix_points=prefix_points)
    return paths


def _train_demo_model(
    out: Path, seconds: float, seed: int, n_per_class: int, max_steps: int | None, progress: bool
) -> SketchRNN:
    """Today's small VAE (:data:`DEMO_MODEL`), trained on the synthetic shapes for about
    ``seconds`` (less :data:`GENERATION_SECONDS`) and saved in ``out/model``."""
    started = time.perf_counter()
    torch.manual_seed(seed)
    data = datasets_from_sketchset(synthetic_sketchset(n_per_class, seed), name="synthetic")
    model = SketchRNN(SketchRNNConfig(**DEMO_MODEL, max_seq_len=data.train.max_len))
    train_seconds = max(1.0, seconds - GENERATION_SECONDS - (time.perf_counter() - started))
    settings = dict(DEMO_TRAIN)
    if max_steps is not None:
        settings["max_steps"] = max_steps
    settings["batch_size"] = min(settings["batch_size"], len(data.train))
    config = TrainConfig(
        **settings,
        max_seconds=train_seconds,
        seed=seed,
        out_dir=str(out / "train"),
        progress=progress,
        device="cpu",
    )
    trainer = Trainer(model, config, data.train, data.valid)  # the model takes the data's units
    try:
        summary = trainer.fit()
    finally:
        trainer.close()
    model.eval()
    model.save_pretrained(out / "model")
    if progress:
        rate = summary["steps"] / max(summary["seconds"], 1e-9)
        print(
            f"trained {summary['steps']} steps in {summary['seconds']:.0f} s ({rate:.1f} steps/s); "
            f"valid loss {summary['best_valid_loss']:.3f}"
        )
    return model


def _held_back_shapes(model: SketchModel, seed: int) -> list[np.ndarray]:
    """Synthetic shapes (pixels) from a seed no model here was trained on, short enough for
    ``model``, interleaved by class (one of each class, then the next of each, ...)."""
    ss = synthetic_sketchset(HELD_BACK_PER_CLASS, HELD_BACK_SEED + seed)
    limit = int(model.config.max_seq_len)
    by_class: dict[str, list[np.ndarray]] = {}  # in the order the classes come
    for s3, label in zip(ss.strokes, ss.labels, strict=True):
        if len(s3) <= limit:
            by_class.setdefault(label, []).append(np.asarray(s3, dtype=np.float32))
    rounds = zip(*by_class.values(), strict=False)
    return [s3 for group in rounds for s3 in group]


def _reconstructions(
    model: SketchModel, shapes: list[np.ndarray], temperature: float, seed: int
) -> list[np.ndarray]:
    """``[input_0, reconstruction_0, input_1, ...]`` for the first :data:`RECONSTRUCTIONS`
    shapes, in pixels; z is the encoding's mean, so a pair shows what the model kept."""
    given = shapes[:RECONSTRUCTIONS]
    rebuilt = decode(model, encode(model, given), temperature=temperature, seed=seed + 1)
    out: list[np.ndarray] = []
    for a, b in zip(given, rebuilt, strict=True):
        out += [a, b]  # an empty sketch leaves its cell blank
    return out


def _completions(
    model: SketchModel, shapes: list[np.ndarray], temperature: float, seed: int
) -> tuple[list[np.ndarray], list[int]]:
    """Rows of ``[prefix, ending_1, ...]``: the first half of the points of one shape of each
    class, then :data:`COMPLETION_ENDINGS` completions of it; with how many points of each
    cell are the given prefix."""
    cells: list[np.ndarray] = []
    prefix_points: list[int] = []
    for k, shape in enumerate(shapes[:COMPLETION_ROWS]):
        prefix = shape[: max(2, len(shape) // 2)]
        endings = complete(model, prefix, COMPLETION_ENDINGS, temperature, seed=seed + 10 + k)
        cells += [prefix, *endings]
        prefix_points += [len(prefix)] * (1 + COMPLETION_ENDINGS)
    return cells, prefix_points
