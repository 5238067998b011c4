"""``sketchrnn demo``: draw with the built-in shapes models (or train one first) and write
pictures."""

from __future__ import annotations

import argparse

from sketchrnn.cli.options import add_command, bounded, defaults_of, seed_type


def register(subparsers: argparse._SubParsersAction) -> None:
    add_command(
        subparsers,
        "demo",
        _demo,
        _arguments,
        help="draw with the built-in shapes models and write pictures (--train: train one first)",
    )


def _arguments(q: argparse.ArgumentParser) -> None:
    from sketchrnn.demo import run_demo
    from sketchrnn.models.config import MAX_SECONDS

    defaults = defaults_of(run_demo)
    q.add_argument("--out", default="sketchrnn-demo", help="output folder")
    q.add_argument(
        "--train",
        action="store_true",
        help="first train a small VAE on the synthetic shapes (about --seconds) and draw with it",
    )
    q.add_argument(
        "--seconds",
        type=bounded(float, low=0, low_open=True, high=MAX_SECONDS),
        default=defaults["seconds"],
        help="with --train: the training time budget",
    )
    q.add_argument("--seed", type=seed_type(), default=defaults["seed"])


def _demo(args: argparse.Namespace) -> None:
    from sketchrnn.demo import run_demo

    paths = run_demo(args.out, train=args.train, seconds=args.seconds, seed=args.seed)
    print("the demo wrote:")
    for name, path in paths.items():
        print(f"  {name:20s} {path}")


__all__ = ["register"]
