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


# ----------------------------------------------------------------------------- drawing commands


def _pick_sketch(spec: str):
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


def _write_outputs(outs: list[str], sketches, color_by: str, ncols: int | None = None) -> None:
    from sketchrnn.io.formats import write_grid

    for out in outs:
        write_grid(out, sketches, ncols=ncols, color_by=color_by)
        print(f"wrote {len(sketches)} sketches to {out}")


def _cmd_sample(args: argparse.Namespace) -> None:
    from sketchrnn import generate

    model = generate.load_model(args.model)
    sketches = generate.sample(
        model,
        args.n,
        temperature=args.temperature,
        pen_temperature=args.pen_temperature,
        labels=args.label,
        seed=args.seed,
    )
    _write_outputs(args.out, sketches, args.color)


def _cmd_reconstruct(args: argparse.Namespace) -> None:
    from sketchrnn import generate

    model = generate.load_model(args.model)
    s3 = _pick_sketch(args.input)
    temps = [float(t) for t in args.temperatures.split(",")]
    out = generate.reconstruct(model, s3, temps, seed=args.seed)
    _write_outputs(args.out, [s3, *out], args.color, ncols=len(out) + 1)


def _cmd_complete(args: argparse.Namespace) -> None:
    from sketchrnn import generate

    model = generate.load_model(args.model)
    prefix = _pick_sketch(args.input)
    out = generate.complete(
        model, prefix, args.n, args.temperature, z_from=args.z_from, seed=args.seed
    )
    _write_outputs(args.out, [prefix, *out], args.color)


def _cmd_interpolate(args: argparse.Namespace) -> None:
    from sketchrnn import generate

    model = generate.load_model(args.model)
    a, b = _pick_sketch(args.a), _pick_sketch(args.b)
    out = generate.interpolate(
        model, a, b, args.steps, method=args.method, temperature=args.temperature, seed=args.seed
    )
    _write_outputs(args.out, out, args.color, ncols=len(out))


def _cmd_analogy(args: argparse.Namespace) -> None:
    from sketchrnn import generate

    model = generate.load_model(args.model)
    a, minus, plus = _pick_sketch(args.a), _pick_sketch(args.minus), _pick_sketch(args.plus)
    out = generate.analogy(
        model, a, minus, plus, n=args.n, temperature=args.temperature, seed=args.seed
    )
    _write_outputs(args.out, [a, minus, plus, *out], args.color, ncols=3 + len(out))


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

    def model_command(name: str, help: str, func) -> argparse.ArgumentParser:
        q = sub.add_parser(name, help=help)
        q.add_argument("model", metavar="MODEL", help="checkpoint folder or magenta.js .json")
        q.add_argument(
            "--out", nargs="+", required=True, metavar="FILE", help="one or more .svg / .png files"
        )
        q.add_argument("--seed", type=int, default=None, help="random seed (repeatable output)")
        q.add_argument(
            "--color",
            choices=["none", "stroke", "position"],
            default="stroke",
            help="colour by stroke order, by position in the grid, or none",
        )
        q.set_defaults(func=func)
        return q

    sketch_help = "FILE or FILE:INDEX (a sketch from any readable file; index 0 by default)"
    q = model_command("sample", "draw new sketches", _cmd_sample)
    q.add_argument("--n", type=int, default=16, help="how many (default 16)")
    q.add_argument("--temperature", type=float, default=0.5, help="tau (0 = greedy)")
    q.add_argument("--pen-temperature", type=float, default=None, help="tau for the pen")
    q.add_argument("--label", default=None, help="class name for class-conditional models")

    q = model_command(
        "reconstruct", "encode a sketch and redraw it at several temperatures", _cmd_reconstruct
    )
    q.add_argument("--input", required=True, help=sketch_help)
    q.add_argument("--temperatures", default="0.01,0.2,0.4,0.6,0.8,1.0")

    q = model_command("complete", "finish an incomplete sketch in several ways", _cmd_complete)
    q.add_argument("--input", required=True, help=sketch_help)
    q.add_argument("--n", type=int, default=8)
    q.add_argument("--temperature", type=float, default=0.8)
    q.add_argument(
        "--z-from",
        choices=["prefix", "prior"],
        default="prefix",
        help="VAE models: z from the prefix's encoding or from N(0, I)",
    )

    q = model_command(
        "interpolate", "morph one sketch into another through latent space", _cmd_interpolate
    )
    q.add_argument("--a", required=True, help=sketch_help)
    q.add_argument("--b", required=True, help=sketch_help)
    q.add_argument("--steps", type=int, default=10)
    q.add_argument("--method", choices=["slerp", "linear"], default="slerp")
    q.add_argument("--temperature", type=float, default=0.1)

    q = model_command("analogy", "latent arithmetic: a - minus + plus", _cmd_analogy)
    q.add_argument("--a", required=True, help=sketch_help)
    q.add_argument("--minus", required=True, help=sketch_help)
    q.add_argument("--plus", required=True, help=sketch_help)
    q.add_argument("--n", type=int, default=4)
    q.add_argument("--temperature", type=float, default=0.1)

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
    """Errors that describe bad input or environment, not bugs: shown without a traceback.

    Those are the package's own error classes (each names the file and what is wrong), and
    ``ValueError``/``OSError`` raised by the package's own code (its argument checks), as
    opposed to ones escaping from inside a library. ``SKETCHRNN_DEBUG=1`` shows the traceback.
    """
    import os
    import traceback

    if os.environ.get("SKETCHRNN_DEBUG"):
        return False
    if isinstance(e, CLIError | FileNotFoundError | PermissionError | IsADirectoryError):
        return True
    if type(e).__module__.startswith("sketchrnn."):
        return True
    if isinstance(e, ValueError | OSError):
        frames = traceback.extract_tb(e.__traceback__)
        package_dir = os.path.dirname(os.path.abspath(__file__))
        return bool(frames) and os.path.abspath(frames[-1].filename).startswith(package_dir)
    return False


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["main", "build_parser", "CLIError"]
