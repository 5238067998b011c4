"""``sketchrnn judge``: how recognisable a model's drawings (or a file's) are to a Quick, Draw!
classifier, and how close to real drawings.

Three things can be judged: samples of ``--model`` at ``--temperature`` (``--n`` per class),
endings of ``--prefixes`` drawn by ``--model`` (``--n`` per prefix), or ``--drawings`` files.
The report (per class top-1 / top-5 Rec with 95% intervals, the judge's confidence; with
``--real`` files, the Frechet distance and precision / recall in the judge's features) is
printed as a table and written to ``--out`` (``.csv`` / ``.json``). The logic is in
:mod:`sketchrnn.judge.assess`.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from sketchrnn.cli.common import CLIError, add_skip_invalid, device_option
from sketchrnn.cli.options import (
    add_command,
    add_count,
    bounded,
    defaults_of,
    seed_type,
    temperature_type,
)

OUT_SUFFIXES = (".csv", ".json")
# Neighbours for precision / recall: the papers use 3-5; beyond 1,000 the k-NN radii cover
# nearly every set this command can hold in memory.
MAX_NEAREST_K = 1_000


def register(subparsers: argparse._SubParsersAction) -> None:
    add_command(
        subparsers,
        "judge",
        _judge,
        _arguments,
        help="score drawings with a Quick, Draw! classifier: Rec, confidence, FID, precision",
        description="Score a model's samples (--model), its endings of --prefixes, or the "
        "drawings of files (--drawings) with a Quick, Draw! classifier (DoodleNet): per class "
        "top-1 / top-5 Rec with 95%% intervals and the judge's confidence; with --real, the "
        "Frechet distance and precision / recall in the judge's features. docs/quality.md has "
        "the figures it gave.",
    )


def _arguments(q: argparse.ArgumentParser) -> None:
    from sketchrnn.generate import scale_inputs
    from sketchrnn.judge.assess import model_samples
    from sketchrnn.judge.scores import NEAREST_K

    what = q.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", metavar="MODEL", help="a model to sample (or to end --prefixes)")
    what.add_argument(
        "--drawings", nargs="+", metavar="FILE", help="judge the drawings of these sketch files"
    )
    q.add_argument(
        "--prefixes",
        metavar="FILE",
        help="with --model: judge --n endings of each drawing of FILE (the whole drawing)",
    )
    q.add_argument(
        "--prefix-fraction",
        type=bounded(float, low=0, high=1, low_open=True),
        default=1.0,
        metavar="F",
        help="keep the first fraction of each prefix's points (1: the drawings as given)",
    )
    q.add_argument(
        "--class",
        dest="classes",
        nargs="+",
        metavar="NAME",
        help="the class the drawings were made for (default: the model's class, or each "
        "drawing's own); for a class-conditional model, the classes to sample",
    )
    add_count(q, "--n", 100, "samples per class, or endings per prefix")
    q.add_argument(
        "--temperature",
        type=temperature_type(),
        default=defaults_of(model_samples)["temperature"],
        help="tau of the samples or endings",
    )
    q.add_argument("--seed", type=seed_type(), default=None, help="random seed (repeatable)")
    q.add_argument(
        "--input-scale",
        default=defaults_of(scale_inputs)["input_scale"],
        help="how --prefixes are brought to the model's size (see `sketchrnn complete`)",
    )
    q.add_argument(
        "--real",
        nargs="+",
        metavar="FILE",
        help="real drawings: adds the Frechet distance and precision / recall against them",
    )
    q.add_argument(
        "--nearest-k",
        type=bounded(int, low=1, high=MAX_NEAREST_K),
        default=NEAREST_K,
        help="neighbours of precision / recall / density / coverage",
    )
    q.add_argument(
        "--judge",
        default="doodlenet",
        metavar="NAME|FOLDER",
        help="the classifier: a name (downloaded once) or a folder with model.json and "
        "class_names.txt",
    )
    q.add_argument("--out", nargs="+", metavar="FILE", help="write the report: .csv and/or .json")
    q.add_argument("--device", type=device_option, default="cpu", help="where the model runs")
    q.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    add_skip_invalid(q)


def _check(args: argparse.Namespace) -> None:
    """Refuse option combinations and outputs before anything is loaded or drawn."""
    if args.prefixes and not args.model:
        raise CLIError("--prefixes needs --model (the model that draws the endings)")
    if args.prefix_fraction != 1.0 and not args.prefixes:
        raise CLIError("--prefix-fraction needs --prefixes")
    for out in args.out or []:
        if Path(out).suffix.lower() not in OUT_SUFFIXES:
            raise CLIError(f"--out {out}: write a .csv or .json file")
        if Path(out).is_dir():
            raise CLIError(f"--out {out}: is a folder; name a .csv or .json file")
    if args.drawings and args.classes and len(args.classes) > 1:
        raise CLIError("--class with --drawings: one class name (it labels every drawing)")


def _cut(prefixes: list, fraction: float) -> list:
    return [p[: max(1, math.ceil(len(p) * fraction))] for p in prefixes]


def _judge(args: argparse.Namespace) -> None:
    from sketchrnn.judge import load_judge
    from sketchrnn.judge.assess import judge_files, read_drawings
    from sketchrnn.judge.scores import judge_report

    _check(args)
    progress = not args.no_progress
    # Everything that can fail fast (the judge, the files) before minutes of drawing.
    judge = load_judge(args.judge, progress=progress)
    settings: dict = {"judge": args.judge}
    real = None
    if args.real:
        real_files = read_drawings(args.real, skip_invalid=args.skip_invalid)
        real, _ = judge_files(judge, real_files, progress=progress)
        if len(real) <= args.nearest_k + 1:
            raise CLIError(
                f"--real: {len(real)} drawings; precision and recall with --nearest-k "
                f"{args.nearest_k} need more than {args.nearest_k + 1}"
            )
        settings["real"] = args.real
    if args.model:
        drawings, labels = _model_drawings(args, settings, progress)
        verdict = judge.judge(drawings, allow_empty=True, source=args.model, progress=progress)
    else:
        files = read_drawings(
            args.drawings,
            label=args.classes[0] if args.classes else None,
            skip_invalid=args.skip_invalid,
        )
        verdict, labels = judge_files(judge, files, progress=progress)
        settings["drawings"] = args.drawings
    if real is not None and len(verdict) <= args.nearest_k + 1:
        raise CLIError(
            f"{len(verdict)} drawings judged; precision and recall against --real with "
            f"--nearest-k {args.nearest_k} need more than {args.nearest_k + 1}"
        )
    report = judge_report(judge, verdict, labels, real, nearest_k=args.nearest_k, settings=settings)
    print(report.format_table())
    for out in args.out or []:
        report.write(out)
        print(f"wrote {out}")


def _model_drawings(args: argparse.Namespace, settings: dict, progress: bool) -> tuple:
    """Samples or endings of ``--model``, and the class each was drawn for."""
    from sketchrnn.cli.common import check_limit, read
    from sketchrnn.generate import scale_inputs
    from sketchrnn.judge.assess import model_endings, model_samples
    from sketchrnn.models import load_model

    model = load_model(args.model, device=args.device)
    settings.update(model=args.model, temperature=args.temperature, seed=args.seed, n=args.n)
    if not args.prefixes:
        classes = args.classes or (model.classes if model.num_classes > 0 else [])
        check_limit(args, "--n", args.n * max(1, len(classes)))
        return model_samples(
            model,
            args.n,
            temperature=args.temperature,
            classes=args.classes,
            seed=args.seed,
            progress=progress,
        )
    given = read(args.prefixes, args)
    check_limit(args, "--n", len(given) * args.n)
    prefixes = _cut(list(given.strokes), args.prefix_fraction)
    try:
        prefixes = scale_inputs(model, prefixes, args.input_scale, model_path=args.model)
    except ValueError as e:  # the library names its parameter, the user typed the option
        raise CLIError(f"{args.prefixes}: {e}".replace("input_scale", "--input-scale")) from None
    labels = [args.classes[0] if args.classes else (x or None) for x in given.labels]
    settings.update(prefixes=args.prefixes, prefix_fraction=args.prefix_fraction)
    return model_endings(
        model,
        prefixes,
        labels,
        args.n,
        temperature=args.temperature,
        seed=args.seed,
        progress=progress,
    )


__all__ = ["register"]
