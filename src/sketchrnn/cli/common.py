"""What several commands share: the one-line error, reading inputs, writing grids, the
``--device`` check."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from sketchrnn.cli import options
from sketchrnn.cli.options import value_check


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


def check_limit(args: argparse.Namespace, flag: str, count: int) -> None:
    """CLIError when ``count`` (the value of ``flag``) is over
    :data:`~sketchrnn.cli.options.MAX_SKETCHES` and ``--no-limit`` was not given."""
    if count > options.MAX_SKETCHES and not getattr(args, "no_limit", False):
        raise CLIError(
            f"{flag} {count}: at most {options.MAX_SKETCHES:,} sketches in one command; "
            "--no-limit lifts the limit"
        )


@value_check
def device_option(text: str) -> str:
    """The ``type=`` of every ``--device`` option: ``auto``, or a device of this machine
    (``cpu``, ``cuda``, ``cuda:N``, ``mps``, ...). A form torch does not read, or a GPU that is
    not here, is a one-line error (``--device cuda: no CUDA GPU here
    (torch.cuda.is_available() is False)``)."""
    from sketchrnn.models.config import DEVICE_FORMS, check_device

    try:
        check_device(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text}: not a device; use {DEVICE_FORMS}") from None
    if text == "auto":
        return text
    import torch

    device = torch.device(text)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(
                f"{text}: no CUDA GPU here (torch.cuda.is_available() is False)"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise argparse.ArgumentTypeError(
                f"{text}: this machine has {count} CUDA GPU{'s' if count > 1 else ''} "
                f"(cuda:0 to cuda:{count - 1})"
            )
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise argparse.ArgumentTypeError(
            f"{text}: no Apple GPU here (torch.backends.mps.is_available() is False)"
        )
    return text


@value_check
def output_folder(text: str) -> str:
    """The ``type=`` of an option naming a folder to write into (``train --out``): a path that
    exists as something else than a folder is a one-line error, before any work is done."""
    if os.path.exists(text) and not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text}: exists and is not a folder; name a folder")
    return text


def add_skip_invalid(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument(
        "--skip-invalid",
        action="store_true",
        help="pass over invalid drawings (counted) instead of stopping",
    )


def report_skipped(path: str, skipped: list[str]) -> None:
    """Say on stderr how many drawings of ``path`` were passed over (``--skip-invalid``)."""
    if skipped:
        print(
            f"{path}: skipped {len(skipped)} invalid drawings (first: {skipped[0]})",
            file=sys.stderr,
        )


def read(path: str, args: argparse.Namespace):
    """Read any sketch file; with ``--skip-invalid``, say how many drawings were passed over."""
    from sketchrnn.io.formats import read_sketches

    ss = read_sketches(path, skip_invalid=getattr(args, "skip_invalid", False))
    report_skipped(path, ss.skipped)
    return ss


def pick_sketch(spec: str):
    """``FILE`` or ``FILE:INDEX`` -> one stroke-3 sketch (index into the file's sketches)."""
    from sketchrnn.io.formats import read_sketches

    path, _, index = spec.rpartition(":") if ":" in spec else (spec, "", "0")
    if not path or not index.isdigit():  # a ':' that is part of the path, not an index
        path, index = spec, "0"
    ss = read_sketches(path)
    i = int(index)
    if i >= len(ss):
        raise CLIError(f"{path}: asked for sketch {i}, but the file holds {len(ss)}")
    return ss.strokes[i]


def write_outputs(
    outs: list[str],
    sketches,
    color_by: Any,
    ncols: int | None = None,
    prefix_points: list[int] | None = None,
) -> None:
    """Write the grid of ``sketches`` to every file of ``--out``, one line per file
    (``prefix_points``: completions, see :func:`sketchrnn.io.formats.write_grid`)."""
    from sketchrnn.io.formats import write_grid

    for out in outs:
        write_grid(out, sketches, ncols=ncols, color_by=color_by, prefix_points=prefix_points)
        print(f"wrote {len(sketches)} sketches to {out}")
