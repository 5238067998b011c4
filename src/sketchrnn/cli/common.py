"""What several commands share: the one-line error, reading inputs, writing grids."""

from __future__ import annotations

import argparse
import sys
from typing import Any


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


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


def write_outputs(outs: list[str], sketches, color_by: Any, ncols: int | None = None) -> None:
    """Write the grid of ``sketches`` to every file of ``--out``, one line per file."""
    from sketchrnn.io.formats import write_grid

    for out in outs:
        write_grid(out, sketches, ncols=ncols, color_by=color_by)
        print(f"wrote {len(sketches)} sketches to {out}")
