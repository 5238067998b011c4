"""``sketchrnn demo``: train a small sketch-rnn VAE on built-in shapes and draw what it learnt.

No download: the data is :func:`sketchrnn.synthetic.synthetic_sketchset` (circles, squares,
triangles and compositions of them). A time budget, not a step count, bounds the training,
so the demo finishes in about ``seconds`` on a laptop CPU whatever its speed; it stops early
when the step budget is used up. Then it writes

- ``samples.png`` / ``samples.svg``: sketches decoded from random ``z ~ N(0, I)``;
- ``reconstructions.png`` / ``reconstructions.svg``: pairs of test sketch (black) and the
  model's reconstruction from its encoding (red), side by side, both in the data's pixels;
- ``model/``: the trained model (``SketchRNN.from_pretrained``) and ``train/`` its log.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sketchrnn.data import datasets_from_sketchset
from sketchrnn.io.png import write_png
from sketchrnn.io.svg import write_svg
from sketchrnn.models.sketch_rnn import SketchRNN, SketchRNNConfig
from sketchrnn.models.units import to_pixels
from sketchrnn.synthetic import synthetic_sketchset
from sketchrnn.train import TrainConfig, Trainer

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


def run_demo(
    out_dir: str | os.PathLike,
    *,
    seconds: float = 150,
    seed: int = 0,
    n_per_class: int = 300,
    max_steps: int | None = None,
    progress: bool = True,
    temperature: float = 0.25,
) -> dict[str, Path]:
    """Train on the synthetic shapes for about ``seconds`` and write sample grids.

    Returns the written paths: ``samples_png``, ``samples_svg``, ``reconstructions_png``,
    ``reconstructions_svg``, ``model`` (a pretrained directory) and ``log`` (``log.csv``).
    Deterministic for a given ``seed`` up to where the time budget cuts training.
    """
    started = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
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
    summary = trainer.fit()
    model.eval()
    model.save_pretrained(out / "model")

    samples = model.generate(24, temperature=temperature, seed=seed)
    pairs = _reconstructions(model, data.test, 12, temperature, seed)

    paths = {
        "samples_png": out / "samples.png",
        "samples_svg": out / "samples.svg",
        "reconstructions_png": out / "reconstructions.png",
        "reconstructions_svg": out / "reconstructions.svg",
        "model": out / "model",
        "log": out / "train" / "log.csv",
    }
    write_png(paths["samples_png"], samples, ncols=6)
    write_svg(paths["samples_svg"], samples, ncols=6)
    # Input and reconstruction alternate, so with an even column count they sit side by side.
    colors = ["black", "red"]
    write_png(paths["reconstructions_png"], pairs, ncols=6, colors=colors, color_by="sketch")
    write_svg(paths["reconstructions_svg"], pairs, ncols=6, colors=colors, color_by="sketch")
    if progress:
        rate = summary["steps"] / max(summary["seconds"], 1e-9)
        print(
            f"trained {summary['steps']} steps in {summary['seconds']:.0f} s ({rate:.1f} steps/s); "
            f"valid loss {summary['best_valid_loss']:.3f}"
        )
    return paths


def _reconstructions(model: SketchRNN, dataset, n: int, temperature: float, seed: int):
    """``[input_0, reconstruction_0, input_1, ...]`` for ``n`` test sketches, stroke-3 in
    pixels (the dataset holds them in the model's units)."""
    pick = np.sort(
        np.random.default_rng(seed).choice(len(dataset), size=min(n, len(dataset)), replace=False)
    )
    batch = dataset.batch(pick)
    with torch.no_grad():
        mu, _ = model.encode(batch.strokes, batch.lengths)
    # z = mu: the encoding itself, so the pair shows what the model kept of the input.
    rebuilt = model.generate(len(pick), z=mu, temperature=temperature, seed=seed + 1)
    inputs = to_pixels(model, [dataset.sketches[k] for k in pick])
    out = []
    for given, drawn in zip(inputs, rebuilt, strict=True):
        out += [given, drawn]  # an empty sketch leaves its cell blank
    return out
