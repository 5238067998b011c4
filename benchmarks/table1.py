"""The sketch-rnn paper's Table 1 at any size: test L_R and L_KL per cell and KL weight.

For every decoder cell, trains four models - the VAE with w_KL = 1.0, 0.5 and 0.25 and the
decoder-only model - keeps the weights with the best validation loss (eq. 11, as the paper's
early stopping) and prints their test-set L_R and L_KL (z sampled as in training, fixed seed;
see ``sketchrnn.evaluate``). The paper's figures (cat, pig, ...) come from the "paper" preset
trained for a long time on Quick, Draw! classes; expect the same ordering, not the same
numbers, from short runs:

    python benchmarks/table1.py --preset small --steps 2000 \
        --data ../shared/data/sketchrnn/aaron_sheep.npz
    python benchmarks/table1.py --preset small --steps 3 --cells lstm   # a smoke run

The figures measured on this project's 2 CPU cores, with the command, are in
``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from sketchrnn.data import load_datasets
from sketchrnn.evaluate import evaluate
from sketchrnn.models.sketch_rnn import SketchRNN, SketchRNNConfig
from sketchrnn.train import Trainer
from sketchrnn.train_config import TrainConfig

DEFAULT_DATA = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "sketchrnn" / "aaron_sheep.npz"
)
SETTINGS = [("w_KL=1.00", 1.0), ("w_KL=0.50", 0.5), ("w_KL=0.25", 0.25), ("decoder only", None)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", nargs="+", default=[str(DEFAULT_DATA)], help="data files")
    p.add_argument("--preset", default="small", help="model preset: small, magenta or paper")
    p.add_argument("--cells", nargs="+", default=["lstm", "layernorm", "hyper"])
    p.add_argument("--steps", type=int, default=2000, help="training steps per model")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--max-len", type=int, default=250, help="drop longer sketches")
    p.add_argument("--out", default=None, help="keep the runs here (default: a temp folder)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    data = load_datasets(args.data, max_len=args.max_len)
    print(
        f"data: {len(data.train)}/{len(data.valid)}/{len(data.test)} sketches, "
        f"N_max {data.train.max_len}, scale factor {data.scale_factor:.3f}; "
        f"preset {args.preset}, {args.steps} steps"
    )
    valid = data.valid if len(data.valid) else None
    test = data.test if len(data.test) else data.valid
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(args.out or scratch)
        print(f"{'cell':<10} {'setting':<13} {'test L_R':>9} {'test L_KL':>9} {'minutes':>8}")
        for cell in args.cells:
            for label, w_kl in SETTINGS:
                out_dir = root / f"{cell}-{label.replace(' ', '_').replace('=', '')}"
                config = SketchRNNConfig.preset(
                    args.preset,
                    cell=cell,
                    conditional=w_kl is not None,
                    max_seq_len=data.train.max_len,
                    kl_weight=w_kl if w_kl is not None else 0.0,
                )
                torch.manual_seed(args.seed)
                model = SketchRNN(config)
                train_config = TrainConfig(
                    batch_size=min(args.batch_size, len(data.train)),
                    max_steps=args.steps,
                    eval_every=args.eval_every,
                    save_every=0,
                    seed=args.seed,
                    progress=False,
                    out_dir=str(out_dir),
                )
                started = time.perf_counter()
                Trainer(model, train_config, data.train, valid).fit()
                minutes = (time.perf_counter() - started) / 60  # training and validation
                best = out_dir / "best"
                if best.exists():  # early stopping on the validation loss, as in the paper
                    model = SketchRNN.from_pretrained(best)
                result = evaluate(model, test, args.batch_size)  # the model's own w_KL
                kl = f"{result['L_KL']:9.3f}" if w_kl is not None else f"{'-':>9}"
                print(
                    f"{cell:<10} {label:<13} {result['L_R']:9.3f} {kl} {minutes:8.2f}", flush=True
                )


if __name__ == "__main__":
    main()
