"""Validation L_R and L_KL on Aaron Koblin's sheep after a fixed training time.

Trains the "magenta" preset (encoder 256, decoder 512) with the LayerNorm decoder, w_KL 0.5
and the rest of magenta's defaults on ``sketchrnn/aaron_sheep.npz``, and prints the curve
(step, minutes, valid L_R, valid L_KL) at every evaluation, then the best validation loss:

    python benchmarks/quality_sheep.py --minutes 20
    python benchmarks/quality_sheep.py --minutes 0.2 --preset small --eval-every 2   # smoke run
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from sketchrnn.data import load_datasets
from sketchrnn.models.sketch_rnn import SketchRNN, SketchRNNConfig
from sketchrnn.train import Trainer
from sketchrnn.train_config import TrainConfig

DEFAULT_DATA = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "sketchrnn" / "aaron_sheep.npz"
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--minutes", type=float, default=20.0, help="training time budget")
    p.add_argument("--preset", default="magenta")
    p.add_argument("--cell", default="layernorm")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--eval-every", type=int, default=100, help="steps between evaluations")
    p.add_argument("--out", default=None, help="keep the run here (default: a temp folder)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    data = load_datasets([args.data], max_len=250)
    config = SketchRNNConfig.preset(args.preset, cell=args.cell, max_seq_len=data.train.max_len)
    torch.manual_seed(args.seed)
    model = SketchRNN(config)
    print(
        f"sheep: {len(data.train)}/{len(data.valid)} train/valid, N_max {data.train.max_len}; "
        f"preset {args.preset}, cell {args.cell}, batch {args.batch_size}, "
        f"{args.minutes:g} minutes, {torch.get_num_threads()} threads"
    )
    budget = args.minutes * 60.0
    with tempfile.TemporaryDirectory() as scratch:
        train_config = TrainConfig(
            batch_size=args.batch_size,
            max_steps=args.eval_every,
            eval_every=0,  # each fit() below ends with a validation
            save_every=0,
            seed=args.seed,
            progress=False,
            out_dir=args.out or scratch,
        )
        trainer = Trainer(model, train_config, data.train, data.valid)
        print(f"{'step':>7} {'minutes':>8} {'valid L_R':>10} {'valid L_KL':>10} {'sketch/s':>9}")
        started = time.perf_counter()
        while (spent := time.perf_counter() - started) < budget:
            train_config.max_steps = trainer.step + args.eval_every
            train_config.max_seconds = budget - spent
            summary = trainer.fit()
            valid = summary["valid"]
            minutes = (time.perf_counter() - started) / 60
            print(
                f"{trainer.step:7d} {minutes:8.2f} {valid['L_R']:10.4f} {valid['L_KL']:10.4f} "
                f"{summary['sketches_per_s']:9.1f}",
                flush=True,
            )
        print(f"best valid loss (L_R + w_KL L_KL): {trainer.best_valid_loss:.4f}")


if __name__ == "__main__":
    main()
