"""``sketchrnn evaluate``: a model's losses on a data split, per class."""

from __future__ import annotations

import argparse

from sketchrnn.cli.options import add_command, bounded, defaults_of


def register(subparsers: argparse._SubParsersAction) -> None:
    add_command(
        subparsers,
        "evaluate",
        _evaluate,
        _arguments,
        help="the losses of a model (any kind) on a data split, per class",
    )


def _arguments(q: argparse.ArgumentParser) -> None:
    from sketchrnn.evaluate import evaluate_files_by_class
    from sketchrnn.models.config import MAX_BATCH_SIZE

    defaults = defaults_of(evaluate_files_by_class)
    q.add_argument(
        "model",
        metavar="MODEL",
        help="run folder, checkpoint.pt, pretrained folder or magenta.js .json",
    )
    q.add_argument("--data", nargs="+", required=True, metavar="FILE")
    q.add_argument(
        "--split",
        choices=["train", "valid", "test", "all"],
        default=defaults["split"],
        help="default: test (the split training left out); all for magenta.js models",
    )
    q.add_argument(
        "--raw-ndjson",
        choices=["auto", "quickdraw", "sketch-rnn"],
        default=defaults["raw_ndjson"],
        help="how raw Quick, Draw! ndjson is simplified: into the 0-255 box (quickdraw), or in "
        "pixel units as sketch-rnn's npz (sketch-rnn); auto: sketch-rnn for magenta.js models",
    )
    q.add_argument(
        "--batch-size",
        type=bounded(int, low=1, high=MAX_BATCH_SIZE),
        default=defaults["batch_size"],
        help="sketches per batch (the figures do not depend on it)",
    )


def _evaluate(args: argparse.Namespace) -> None:
    from sketchrnn.evaluate import evaluate_files_by_class

    report = evaluate_files_by_class(
        args.model, args.data, args.split, args.batch_size, raw_ndjson=args.raw_ndjson
    )
    print(
        f"split {report.split}: {int(report.total['sketches'])} sketches "
        f"(raw ndjson read as {report.raw_ndjson})"
    )
    if report.dropped_too_long:
        print(f"left out {report.dropped_too_long} sketches longer than the model's N_max")
    rows = {**report.per_class, "all": report.total}
    width = max(len(name) for name in rows)
    columns = report.columns  # the model's loss terms: column -> key
    print(f"{'class':{width}s}  " + "  ".join(f"{c:>8s}" for c in columns) + "  sketches  std/sf")
    for name, result in rows.items():
        figures = "  ".join(f"{result[key]:8.4f}" for key in columns.values())
        print(
            f"{name:{width}s}  {figures}  {int(result['sketches']):8d}"
            f"  {result['offset_std_ratio']:6.2f}"
        )


__all__ = ["register"]
