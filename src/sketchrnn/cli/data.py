"""``sketchrnn data info|convert|pack|render|download|synthetic|sample``: sketch files."""

from __future__ import annotations

import argparse
from typing import Any

from sketchrnn.cli.common import CLIError, add_skip_invalid, read
from sketchrnn.cli.options import add_command, defaults_of


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("data", help="inspect, convert, render and download sketch data")
    sub = group.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    add_command(
        sub, "info", _info, _info_args, help="counts, length percentiles, scale factor, classes"
    )
    add_command(
        sub, "convert", _convert, _convert_args, help="convert between formats (by file extension)"
    )
    add_command(
        sub,
        "pack",
        _pack,
        _pack_args,
        help="pack sketch files into one memory-mapped store (for millions of sketches)",
    )
    add_command(
        sub,
        "render",
        _render,
        _render_args,
        help="draw a grid of sketches from a file to PNG or SVG",
    )
    add_command(
        sub,
        "download",
        _download,
        _download_args,
        help="fetch official Quick, Draw! sketch-rnn files",
    )
    add_command(
        sub,
        "synthetic",
        _synthetic,
        _synthetic_args,
        help="write the built-in shapes (circles, squares, snowmen, ...) to a file",
    )
    add_command(
        sub,
        "sample",
        _sample,
        _sample_args,
        help="draw from sketch-rnn models (e.g. magenta.js .gen.json) into a cached .npz",
    )


# ----------------------------------------------------------------------------- info


def _info_args(q: argparse.ArgumentParser) -> None:
    q.add_argument("files", nargs="+", metavar="FILE")
    add_skip_invalid(q)


def _info(args: argparse.Namespace) -> None:
    import numpy as np

    from sketchrnn import strokes

    for path in args.files:
        ss = read(path, args)
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


# ----------------------------------------------------------------------------- convert


def _convert_args(q: argparse.ArgumentParser) -> None:
    q.add_argument("input", metavar="IN")
    q.add_argument("output", metavar="OUT", help=".npz, .ndjson, .bin, .svg or .png")
    q.add_argument(
        "--label", default=None, help="class name for a file that holds none (.bin, unlabelled npz)"
    )
    add_skip_invalid(q)


def _convert(args: argparse.Namespace) -> None:
    import sys

    from sketchrnn.io.formats import convert_file

    # One line for everything the conversion changes or the target cannot hold.
    notes = convert_file(args.input, args.output, skip_invalid=args.skip_invalid, label=args.label)
    for note in notes:
        print(note, file=sys.stderr)
    print(f"wrote {notes.written} sketches to {args.output}")


# ----------------------------------------------------------------------------- pack


def _pack_args(q: argparse.ArgumentParser) -> None:
    from sketchrnn.store import pack

    defaults = defaults_of(pack)
    q.add_argument("sources", nargs="+", metavar="FILE", help="any readable sketch files")
    q.add_argument("--out", required=True, help="the store folder (written atomically)")
    q.add_argument(
        "--split-fractions",
        nargs=3,
        type=float,
        default=defaults["split_fractions"],
        metavar=("TRAIN", "VALID", "TEST"),
        help="splits of files that have none (default %(default)s)",
    )
    q.add_argument("--split-seed", type=int, default=defaults["split_seed"])
    q.add_argument("--overwrite", action="store_true", help="replace an existing store")
    q.add_argument(
        "--restart", action="store_true", help="start over instead of resuming a killed pack"
    )
    add_skip_invalid(q)


def _pack(args: argparse.Namespace) -> None:
    from sketchrnn.store import pack

    report = pack(
        args.sources,
        args.out,
        split_fractions=tuple(args.split_fractions),
        split_seed=args.split_seed,
        skip_invalid=args.skip_invalid,
        overwrite=args.overwrite,
        resume=not args.restart,
    )
    print(report)


# ----------------------------------------------------------------------------- render


def _render_args(q: argparse.ArgumentParser) -> None:
    from sketchrnn.io.formats import write_grid

    q.add_argument("file", metavar="FILE")
    q.add_argument("--out", required=True, help="grid.png or grid.svg")
    q.add_argument("--n", type=int, default=16, help="how many sketches")
    q.add_argument("--split", default=None, help="train, valid or test (default: all)")
    q.add_argument("--seed", type=int, default=0, help="which sketches are picked")
    add_skip_invalid(q)
    q.add_argument(
        "--color",
        choices=["none", "stroke"],
        default=defaults_of(write_grid)["color_by"],
        help="colour strokes by drawing order",
    )


def _render(args: argparse.Namespace) -> None:
    import numpy as np

    from sketchrnn.io.formats import write_grid

    ss = read(args.file, args)
    if args.split:
        ss = ss.split(args.split)
    if len(ss) == 0:
        raise CLIError(f"{args.file}: no sketches to render")
    rng = np.random.default_rng(args.seed)
    idx = np.sort(rng.choice(len(ss), size=min(args.n, len(ss)), replace=False))
    write_grid(args.out, [ss.strokes[i] for i in idx], color_by=args.color)
    print(f"wrote {len(idx)} sketches to {args.out}")


# ----------------------------------------------------------------------------- download


def _download_args(q: argparse.ArgumentParser) -> None:
    q.add_argument("classes", nargs="+", metavar="CLASS", help='class names, e.g. cat "hot dog"')
    q.add_argument("--to", default=None, help="cache directory (default ~/.cache/sketchrnn)")
    q.add_argument("--base-url", default=None, help="mirror of the sketchrnn/ folder")


def _download(args: argparse.Namespace) -> None:
    from sketchrnn.io.download import download_quickdraw

    paths = download_quickdraw(args.classes, to=args.to, base_url=args.base_url)
    for p in paths:
        print(p)


# ----------------------------------------------------------------------------- synthetic


def _synthetic_args(q: argparse.ArgumentParser) -> None:
    from sketchrnn.synthetic import synthetic_sketchset

    defaults = defaults_of(synthetic_sketchset)
    q.add_argument("--out", required=True, help=".npz (train/valid/test kept), .ndjson, ...")
    q.add_argument(
        "--per-class", type=int, default=defaults["n_per_class"], help="sketches per shape"
    )
    q.add_argument("--classes", nargs="+", default=None, metavar="SHAPE", help="default: all")
    q.add_argument("--seed", type=int, default=defaults["seed"])


def _synthetic(args: argparse.Namespace) -> None:
    from sketchrnn.io.formats import write_sketches
    from sketchrnn.synthetic import CLASSES, synthetic_sketchset

    classes = args.classes or list(CLASSES)
    unknown = [c for c in classes if c not in CLASSES]
    if unknown:
        raise CLIError(f"unknown shape {unknown[0]!r}; choose from {', '.join(CLASSES)}")
    ss = synthetic_sketchset(args.per_class, args.seed, classes=classes)
    write_sketches(args.out, ss)
    print(f"wrote {len(ss)} sketches ({', '.join(classes)}) to {args.out}")


# ----------------------------------------------------------------------------- sample


def _sample_args(q: argparse.ArgumentParser) -> None:
    from sketchrnn import generate
    from sketchrnn.model_samples import sample_magenta_models

    defaults = defaults_of(sample_magenta_models)
    q.add_argument("models", nargs="+", metavar="MODEL", help="model files or folders")
    q.add_argument("--out", required=True, help="the .npz cache (reused if it matches)")
    q.add_argument("--per-model", type=int, default=1000, help="drawings per model")
    q.add_argument(
        "--temperature",
        type=float,
        default=defaults_of(generate.sample)["temperature"],
        help="sampling temperature",
    )
    q.add_argument(
        "--simplify",
        action="store_true",
        help="into the 0-255 box with RDP 2, as the simplified Quick, Draw! files",
    )
    q.add_argument("--seed", type=int, default=defaults["seed"])


def _sample(args: argparse.Namespace) -> None:
    from sketchrnn.model_samples import read_sample_info, sample_magenta_models

    path = sample_magenta_models(
        args.models,
        args.per_model,
        args.temperature,
        args.out,
        seed=args.seed,
        simplify=args.simplify,
    )
    info: Any = read_sample_info(path)
    print(
        f"{path}: {len(info['models'])} models x {info['count']} drawings "
        f"at temperature {info['temperature']:g}"
        + (", simplified as the Quick, Draw! files" if info["simplified"] else "")
        + " (empty drawings left out)"
    )


__all__ = ["register"]
