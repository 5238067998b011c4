"""The ``sketchrnn`` command. Thin: parses arguments and calls the library.

Library modules are imported inside each command so that ``sketchrnn --help`` is instant and
commands that need no torch do not load it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


# ----------------------------------------------------------------------------- data commands


def _cmd_data_info(args: argparse.Namespace) -> None:
    import numpy as np

    from sketchrnn import strokes
    from sketchrnn.io.formats import read_sketches

    for path in args.files:
        ss = read_sketches(path)
        lengths = np.array([len(s) for s in ss.strokes])
        print(f"{path}")
        print(f"  sketches: {len(ss)}")
        for split in ("train", "valid", "test", ""):
            n = sum(1 for s in ss.splits if s == split)
            if n:
                print(f"    {split or 'unsplit'}: {n}")
        if len(lengths):
            pct = np.percentile(lengths, [0, 50, 90, 99, 100]).astype(int)
            print("  points per sketch: min {} / median {} / p90 {} / p99 {} / max {}".format(*pct))
        train = ss.split("train").strokes or ss.strokes
        if train:
            print(f"  scale factor (std of train offsets): {strokes.scale_factor(train):.4f}")
        classes = ss.classes
        shown = ", ".join(classes[:20]) + (
            f", ... ({len(classes)} in all)" if len(classes) > 20 else ""
        )
        print(f"  classes: {shown}")


def _cmd_data_convert(args: argparse.Namespace) -> None:
    from sketchrnn.io.formats import read_sketches, write_sketches

    ss = read_sketches(args.input)
    write_sketches(args.output, ss)
    print(f"wrote {len(ss)} sketches to {args.output}")


def _cmd_data_render(args: argparse.Namespace) -> None:
    import numpy as np

    from sketchrnn.io.formats import read_sketches, write_grid

    ss = read_sketches(args.file)
    if args.split:
        ss = ss.split(args.split)
    if len(ss) == 0:
        raise CLIError(f"{args.file}: no sketches to render")
    rng = np.random.default_rng(args.seed)
    idx = np.sort(rng.choice(len(ss), size=min(args.n, len(ss)), replace=False))
    write_grid(args.out, [ss.strokes[i] for i in idx], color_by=args.color)
    print(f"wrote {len(idx)} sketches to {args.out}")


def _cmd_data_download(args: argparse.Namespace) -> None:
    from sketchrnn.io.download import download_quickdraw

    paths = download_quickdraw(args.classes, to=args.to, base_url=args.base_url)
    for p in paths:
        print(p)


# ----------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    from sketchrnn import __version__

    p = argparse.ArgumentParser(
        prog="sketchrnn",
        description="Generative models of vector sketches (sketch-rnn, SketchEmbedNet).",
    )
    p.add_argument("--version", action="version", version=f"sketchrnn {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    data = sub.add_parser("data", help="inspect, convert, render and download sketch data")
    dsub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND")

    q = dsub.add_parser("info", help="counts, length percentiles, scale factor, classes")
    q.add_argument("files", nargs="+", metavar="FILE")
    q.set_defaults(func=_cmd_data_info)

    q = dsub.add_parser("convert", help="convert between formats (by file extension)")
    q.add_argument("input", metavar="IN")
    q.add_argument("output", metavar="OUT", help=".npz, .ndjson, .bin, .svg or .png")
    q.set_defaults(func=_cmd_data_convert)

    q = dsub.add_parser("render", help="draw a grid of sketches from a file to PNG or SVG")
    q.add_argument("file", metavar="FILE")
    q.add_argument("--out", required=True, help="grid.png or grid.svg")
    q.add_argument("--n", type=int, default=16, help="how many sketches (default 16)")
    q.add_argument("--split", default=None, help="train, valid or test (default: all)")
    q.add_argument("--seed", type=int, default=0, help="which sketches are picked")
    q.add_argument(
        "--color",
        choices=["none", "stroke"],
        default="none",
        help="colour strokes by drawing order",
    )
    q.set_defaults(func=_cmd_data_render)

    q = dsub.add_parser("download", help="fetch official Quick, Draw! sketch-rnn files")
    q.add_argument("classes", nargs="+", metavar="CLASS", help='class names, e.g. cat "hot dog"')
    q.add_argument("--to", default=None, help="cache directory (default ~/.cache/sketchrnn)")
    q.add_argument("--base-url", default=None, help="mirror of the sketchrnn/ folder")
    q.set_defaults(func=_cmd_data_download)

    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        # A group without its subcommand: show the help of that group.
        parser.parse_args([*(argv if argv is not None else sys.argv[1:]), "--help"])
        return 2
    try:
        func(args)
    except KeyboardInterrupt:
        print("sketchrnn: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # user-facing errors of this package become one line
        if _is_user_error(e):
            print(f"sketchrnn: error: {e}", file=sys.stderr)
            return 2
        raise
    return 0


def _is_user_error(e: BaseException) -> bool:
    """Errors that describe bad input or environment, not bugs: shown without a traceback."""
    if isinstance(e, CLIError | FileNotFoundError | PermissionError | IsADirectoryError):
        return True
    # Every error class defined in this package names the file and what is wrong.
    return type(e).__module__.startswith("sketchrnn.")


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["main", "build_parser", "CLIError"]
