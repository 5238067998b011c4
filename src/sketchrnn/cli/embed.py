"""``sketchrnn embed vectors|one-shot|compose|arrangements``: SketchEmbedNet embeddings of
files, and the paper's figures of what they show (:mod:`sketchrnn.figures`)."""

from __future__ import annotations

import argparse

from sketchrnn.cli.options import (
    MAX_SKETCHES,
    add_command,
    bounded,
    defaults_of,
    seed_type,
    temperature_type,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser(
        "embed", help="SketchEmbedNet embeddings of your files, and figures of what they show"
    )
    sub = group.add_subparsers(dest="figure", metavar="SUBCOMMAND")
    add_command(
        sub,
        "vectors",
        _vectors,
        _vectors_args,
        help="the embeddings of image files or sketch files (.npz or .csv)",
        description="Write the embedding mu of each input: image files (PNG, JPEG, ...; dark "
        "ink on light paper is inverted) or sketch files, whose drawings are rendered as "
        "training images are.",
    )
    add_command(
        sub,
        "one-shot",
        _one_shot,
        _one_shot_args,
        help="unseen Omniglot characters drawn from one image each",
    )
    add_command(
        sub,
        "compose",
        _compose,
        _compose_args,
        help="z(snowman) - z(circle) + z(square), decoded",
        description="Conceptual composition (SketchEmbedNet section 6): the embeddings of "
        "snowmen minus circles plus squares, decoded; first the composition of the concept "
        "means (each concept's mean embedding), then of single drawings.",
    )
    add_command(
        sub,
        "arrangements",
        _arrangements,
        _arrangements_args,
        help="UMAP of embeddings of synthetic arrangements",
    )


# ----------------------------------------------------------------------------- vectors


def _vectors_args(q: argparse.ArgumentParser) -> None:
    q.add_argument("model", metavar="MODEL")
    q.add_argument("inputs", nargs="+", metavar="FILE", help="image files or sketch files")
    q.add_argument("--normalise", action="store_true", help="unit-length vectors")
    q.add_argument("--out", required=True, help=".npz (embeddings, names) or .csv")


def _vectors(args: argparse.Namespace) -> None:
    from sketchrnn import embeddings

    count = embeddings.embed_files(args.model, args.inputs, args.out, normalise=args.normalise)
    print(f"wrote {args.out} ({count} embeddings)")


# ----------------------------------------------------------------------------- one-shot


def _one_shot_args(q: argparse.ArgumentParser) -> None:
    from sketchrnn.figures import one_shot_figure

    defaults = defaults_of(one_shot_figure)
    q.add_argument("model", metavar="MODEL")
    q.add_argument(
        "--input",
        nargs="*",
        default=[],
        help="PNG images, or Omniglot characters 'alphabet/characterNN' of the evaluation set "
        "(default: the first --count evaluation characters)",
    )
    q.add_argument(
        "--count",
        type=bounded(int, low=1, high=MAX_SKETCHES),
        default=defaults["n_characters"],
        help="how many Omniglot characters, without --input",
    )
    q.add_argument("--omniglot", default=defaults["omniglot"], help="Omniglot data folder")
    q.add_argument("--temperature", type=temperature_type(), default=defaults["temperature"])
    q.add_argument("--seed", type=seed_type(), default=defaults["seed"])
    q.add_argument("--out", required=True)


def _one_shot(args: argparse.Namespace) -> None:
    from sketchrnn import figures

    count = figures.one_shot_figure(
        args.model,
        args.out,
        inputs=args.input,
        omniglot=args.omniglot,
        n_characters=args.count,
        temperature=args.temperature,
        seed=args.seed,
    )
    print(f"wrote {args.out} ({count} images)")


# ----------------------------------------------------------------------------- compose


def _compose_args(q: argparse.ArgumentParser) -> None:
    from sketchrnn.figures import composition_figure

    defaults = defaults_of(composition_figure)
    q.add_argument("model", metavar="MODEL")
    q.add_argument(
        "--examples",
        nargs=3,
        metavar=("SNOWMAN", "CIRCLE", "SQUARE"),
        help="three sketch files to take the concepts from (e.g. Quick, Draw!'s snowman.ndjson "
        "circle.ndjson square.ndjson); default: the package's synthetic shapes",
    )
    q.add_argument(
        "--count",
        type=bounded(int, low=1, high=MAX_SKETCHES),
        default=defaults["count"],
        help="drawings per concept",
    )
    q.add_argument("--conv-vae", help="a Conv-VAE folder to compose beside the model")
    q.add_argument("--temperature", type=temperature_type(), default=defaults["temperature"])
    q.add_argument("--seed", type=seed_type(), default=defaults["seed"])
    q.add_argument("--out", required=True)


def _compose(args: argparse.Namespace) -> None:
    from sketchrnn import figures

    count = figures.composition_figure(
        args.model,
        args.out,
        examples=args.examples,
        count=args.count,
        conv_vae=args.conv_vae,
        temperature=args.temperature,
        seed=args.seed,
    )
    print(f"wrote {args.out} ({count} drawings of each concept)")


# ----------------------------------------------------------------------------- arrangements


def _arrangements_args(q: argparse.ArgumentParser) -> None:
    from sketchrnn.figures import arrangements_figure

    defaults = defaults_of(arrangements_figure)
    q.add_argument("model", metavar="MODEL")
    q.add_argument("--conv-vae", help="a Conv-VAE folder to plot beside the model")
    q.add_argument(
        "--count",
        type=bounded(int, low=2, high=MAX_SKETCHES),
        default=defaults["per_arrangement"],
        help="sketches per arrangement",
    )
    q.add_argument("--seed", type=seed_type(), default=defaults["seed"])
    q.add_argument("--out", required=True)


def _arrangements(args: argparse.Namespace) -> None:
    from sketchrnn import figures

    count = figures.arrangements_figure(
        args.model, args.out, conv_vae=args.conv_vae, per_arrangement=args.count, seed=args.seed
    )
    print(f"wrote {args.out} ({count} images)")


__all__ = ["register"]
