"""``sketchrnn sample|reconstruct|complete|interpolate|analogy``: drawing with a model.

Every default (temperatures, steps, ``--z-from``, ``--input-scale``) is the one of the
:mod:`sketchrnn.generate` function the command calls. Counts (``--n``, ``--steps``) are at most
:data:`~sketchrnn.cli.options.MAX_SKETCHES` unless ``--no-limit`` is given, and a long drawing
shows a progress bar on stderr; temperatures are in [0, :data:`MAX_TEMPERATURE`].
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from sketchrnn.cli.common import CLIError, check_limit, pick_sketch, write_outputs
from sketchrnn.cli.options import (
    MAX_SKETCHES,
    add_command,
    add_count,
    defaults_of,
    seed_type,
    temperature_type,
    value_check,
)

SKETCH_HELP = "FILE or FILE:INDEX (a sketch from any readable file; index 0 by default)"


def register(subparsers: argparse._SubParsersAction) -> None:
    add_command(subparsers, "sample", _sample, _sample_args, help="draw new sketches")
    add_command(
        subparsers,
        "reconstruct",
        _reconstruct,
        _reconstruct_args,
        help="encode a sketch and redraw it at several temperatures",
    )
    add_command(
        subparsers,
        "complete",
        _complete,
        _complete_args,
        help="finish an incomplete sketch in several ways",
    )
    add_command(
        subparsers,
        "interpolate",
        _interpolate,
        _interpolate_args,
        help="morph one sketch into another through latent space",
    )
    add_command(
        subparsers, "analogy", _analogy, _analogy_args, help="latent arithmetic: a - minus + plus"
    )


# ----------------------------------------------------------------------------- shared options


def _model_arguments(q: argparse.ArgumentParser, prefix_colors: bool = False) -> None:
    q.add_argument("model", metavar="MODEL", help="checkpoint folder or magenta.js .json")
    q.add_argument(
        "--out", nargs="+", required=True, metavar="FILE", help="one or more .svg / .png files"
    )
    q.add_argument("--seed", type=seed_type(), default=None, help="random seed (repeatable output)")
    q.add_argument(
        "--no-limit",
        action="store_true",
        help=f"make more than {MAX_SKETCHES:,} drawings in one command",
    )
    if prefix_colors:  # completions: what was given apart from what the model drew
        q.add_argument(
            "--color",
            choices=["prefix", "none", "stroke", "position"],
            default="prefix",
            help="prefix: the given drawing in black, the model's strokes in red; or colour by "
            "stroke order, by position in the grid, or none",
        )
        return
    q.add_argument(
        "--color",
        choices=["none", "stroke", "position"],
        default="stroke",
        help="colour by stroke order, by position in the grid, or none",
    )


def _temperature_list() -> Callable[[str], list[float]]:
    """The ``type=`` of ``--temperatures 0.1,0.5``: each a temperature (see
    :func:`temperature_type`). Made when the command is parsed: the bounds import the configs
    (and torch), which ``sketchrnn --help`` does not."""
    one = temperature_type()

    @value_check
    def temperatures(text: str) -> list[float]:
        return [one(t.strip()) for t in text.split(",")]

    temperatures.bounds = one.bounds  # type: ignore[attr-defined]
    return temperatures


def _temperature(q: argparse.ArgumentParser, func: Callable, help: str = "tau (0 = greedy)"):
    q.add_argument(
        "--temperature",
        type=temperature_type(),
        default=defaults_of(func)["temperature"],
        help=help,
    )


def _input_scale_type() -> Callable[[str], str]:
    """The ``type=`` of ``--input-scale``: ``auto``, ``none`` or a number in
    :data:`sketchrnn.generate.INPUT_SCALE_BOUNDS` (kept as typed: the library reads it)."""
    from sketchrnn import generate

    bounds = generate.INPUT_SCALE_BOUNDS

    @value_check
    def input_scale(text: str) -> str:
        if text in generate.INPUT_SCALE_CHOICES:
            return text
        try:
            value: object = float(text)
        except ValueError:
            value = text
        problem = bounds.problem(value)
        if problem is not None:
            raise argparse.ArgumentTypeError(
                f"must be auto, none or a number {problem.removeprefix('must be ')}, got {text}"
            )
        return text

    input_scale.bounds = bounds  # type: ignore[attr-defined]
    return input_scale


def _input_scale_argument(q: argparse.ArgumentParser) -> None:
    from sketchrnn import generate

    q.add_argument(
        "--input-scale",
        type=_input_scale_type(),
        default=defaults_of(generate.scale_inputs)["input_scale"],
        metavar="{" + ",".join(generate.INPUT_SCALE_CHOICES) + ",FLOAT}",
        help="multiply the input sketches' offsets by FLOAT; auto: for magenta.js models, "
        "scale each input so its longer side is that of the model's typical sketch "
        f"(median of {generate.TYPICAL_EXTENT_SAMPLES} of its own at tau "
        f"{generate.TYPICAL_EXTENT_TEMPERATURE:g}), else none",
    )


def scaled_inputs(args: argparse.Namespace, model, *specs: str) -> list:
    """The sketches named by ``specs``, brought to the model's size by ``--input-scale``
    (:func:`sketchrnn.generate.scale_inputs`)."""
    from sketchrnn import generate, strokes

    try:  # the spec first: a bad one is an error before any file is read
        generate.input_scale_factor(model, args.input_scale, args.model)
    except ValueError as e:  # the library names its parameter, the user typed the option
        raise CLIError(str(e).replace("input_scale", "--input-scale", 1)) from None
    sketches = [strokes.validate_stroke3(pick_sketch(spec), where=spec) for spec in specs]
    return generate.scale_inputs(model, sketches, args.input_scale, model_path=args.model)


# ----------------------------------------------------------------------------- sample


def _sample_args(q: argparse.ArgumentParser) -> None:
    from sketchrnn import generate

    _model_arguments(q)
    add_count(q, "--n", 16, "how many")
    _temperature(q, generate.sample)
    q.add_argument(
        "--pen-temperature",
        type=temperature_type(optional=True),
        default=defaults_of(generate.sample)["pen_temperature"],
        help="tau for the pen (default: --temperature)",
    )
    q.add_argument("--label", default=None, help="class name for class-conditional models")


def _sample(args: argparse.Namespace) -> None:
    from sketchrnn import generate
    from sketchrnn.models import load_model

    check_limit(args, "--n", args.n)
    model = load_model(args.model)
    sketches = generate.sample(
        model,
        args.n,
        temperature=args.temperature,
        pen_temperature=args.pen_temperature,
        labels=args.label,
        seed=args.seed,
        progress=True,
    )
    write_outputs(args.out, sketches, args.color)


# ----------------------------------------------------------------------------- reconstruct


def _reconstruct_args(q: argparse.ArgumentParser) -> None:
    from sketchrnn import generate

    _model_arguments(q)
    q.add_argument("--input", required=True, help=SKETCH_HELP)
    temperatures = defaults_of(generate.reconstruct)["temperatures"]
    q.add_argument(
        "--temperatures",
        type=_temperature_list(),
        default=",".join(f"{t:g}" for t in temperatures),  # argparse applies the type
        help="comma-separated taus, one redrawing each",
    )
    _input_scale_argument(q)


def _reconstruct(args: argparse.Namespace) -> None:
    from sketchrnn import generate
    from sketchrnn.models import load_model

    check_limit(args, "--temperatures", len(args.temperatures))
    model = load_model(args.model)
    (s3,) = scaled_inputs(args, model, args.input)
    out = generate.reconstruct(model, s3, args.temperatures, seed=args.seed)
    write_outputs(args.out, [s3, *out], args.color, ncols=len(out) + 1)


# ----------------------------------------------------------------------------- complete


def _complete_args(q: argparse.ArgumentParser) -> None:
    from sketchrnn import generate

    _model_arguments(q, prefix_colors=True)
    q.add_argument("--input", required=True, help=SKETCH_HELP)
    add_count(q, "--n", 8, "how many endings")
    _temperature(q, generate.complete)
    q.add_argument(
        "--z-from",
        choices=["prefix", "prior"],
        default=defaults_of(generate.complete)["z_from"],
        help="VAE models: z from the prefix's encoding or from N(0, I)",
    )
    _input_scale_argument(q)


def _complete(args: argparse.Namespace) -> None:
    from sketchrnn import generate
    from sketchrnn.models import load_model

    check_limit(args, "--n", args.n)
    model = load_model(args.model)
    (prefix,) = scaled_inputs(args, model, args.input)
    out = generate.complete(
        model, prefix, args.n, args.temperature, z_from=args.z_from, seed=args.seed
    )
    sketches = [prefix, *out]  # the prefix alone, then each ending after it
    if args.color == "prefix":
        write_outputs(args.out, sketches, "none", prefix_points=[len(prefix)] * len(sketches))
    else:
        write_outputs(args.out, sketches, args.color)


# ----------------------------------------------------------------------------- interpolate


def _interpolate_args(q: argparse.ArgumentParser) -> None:
    from sketchrnn import generate

    defaults = defaults_of(generate.interpolate)
    _model_arguments(q)
    q.add_argument("--a", required=True, help=SKETCH_HELP)
    q.add_argument("--b", required=True, help=SKETCH_HELP)
    add_count(q, "--steps", defaults["steps"], "sketches from a to b")
    q.add_argument("--method", choices=["slerp", "linear"], default=defaults["method"])
    _temperature(q, generate.interpolate)
    _input_scale_argument(q)


def _interpolate(args: argparse.Namespace) -> None:
    from sketchrnn import generate
    from sketchrnn.models import load_model

    check_limit(args, "--steps", args.steps)
    model = load_model(args.model)
    a, b = scaled_inputs(args, model, args.a, args.b)
    out = generate.interpolate(
        model,
        a,
        b,
        args.steps,
        method=args.method,
        temperature=args.temperature,
        seed=args.seed,
        progress=True,
    )
    write_outputs(args.out, out, args.color, ncols=len(out))


# ----------------------------------------------------------------------------- analogy


def _analogy_args(q: argparse.ArgumentParser) -> None:
    from sketchrnn import generate

    _model_arguments(q)
    q.add_argument("--a", required=True, help=SKETCH_HELP)
    q.add_argument("--minus", required=True, help=SKETCH_HELP)
    q.add_argument("--plus", required=True, help=SKETCH_HELP)
    add_count(q, "--n", 4, "how many drawings of the result")
    _temperature(q, generate.analogy)
    _input_scale_argument(q)


def _analogy(args: argparse.Namespace) -> None:
    from sketchrnn import generate
    from sketchrnn.models import load_model

    check_limit(args, "--n", args.n)
    model = load_model(args.model)
    a, minus, plus = scaled_inputs(args, model, args.a, args.minus, args.plus)
    out = generate.analogy(
        model,
        a,
        minus,
        plus,
        n=args.n,
        temperature=args.temperature,
        seed=args.seed,
        progress=True,
    )
    write_outputs(args.out, [a, minus, plus, *out], args.color, ncols=3 + len(out))


__all__ = ["register", "scaled_inputs"]
