"""``sketchrnn demo``: train a small model on the built-in shapes and draw with it."""

from __future__ import annotations

import argparse

from sketchrnn.cli.options import add_command, defaults_of


def register(subparsers: argparse._SubParsersAction) -> None:
    add_command(
        subparsers,
        "demo",
        _demo,
        _arguments,
        help="train a small model on built-in shapes and draw with it",
    )


def _arguments(q: argparse.ArgumentParser) -> None:
    from sketchrnn.demo import run_demo

    defaults = defaults_of(run_demo)
    q.add_argument("--out", default="sketchrnn-demo", help="output folder")
    q.add_argument(
        "--seconds", type=float, default=defaults["seconds"], help="training time budget"
    )
    q.add_argument("--seed", type=int, default=defaults["seed"])


def _demo(args: argparse.Namespace) -> None:
    from sketchrnn.demo import run_demo

    paths = run_demo(args.out, seconds=args.seconds, seed=args.seed)
    print("the demo wrote:")
    for name, path in paths.items():
        print(f"  {name:20s} {path}")


__all__ = ["register"]
