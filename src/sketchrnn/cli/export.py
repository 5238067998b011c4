"""``sketchrnn export MODEL OUT.json``: a model as a magenta.js / sketch-rnn-js JSON file."""

from __future__ import annotations

import argparse

from sketchrnn.cli.common import CLIError
from sketchrnn.cli.options import add_command, bounded


def register(subparsers: argparse._SubParsersAction) -> None:
    add_command(
        subparsers,
        "export",
        _export,
        _arguments,
        help="write a model as a magenta.js JSON (.gen.json or .vae.json) for the browser",
    )


def _arguments(q: argparse.ArgumentParser) -> None:
    q.add_argument("model", metavar="MODEL", help="a saved model (folder, checkpoint, .json)")
    q.add_argument(
        "out",
        metavar="OUT.json",
        help="the file to write: NAME.vae.json for a VAE, NAME.gen.json for a decoder-only "
        "model (plain LSTM, 20 mixtures, no class conditioning)",
    )
    q.add_argument("--name", default=None, help="info.name (default: the model's first class)")
    q.add_argument(
        "--scale-factor",
        type=bounded(float, low=0, low_open=True, optional=True),
        default=None,
        help="info.scale_factor (default: the model's own)",
    )


def export_kind_error(has_encoder: bool, out: str) -> str | None:
    """Why ``out`` is the wrong name for a model with / without an encoder, or ``None``."""
    kind, want = ("VAE", ".vae.json") if has_encoder else ("decoder-only model", ".gen.json")
    if not out.lower().endswith(want):
        return f"{out}: the model is a {kind}: the output file must end in {want}"
    return None


def _export(args: argparse.Namespace) -> None:
    from sketchrnn.models import SketchRNN, load_model
    from sketchrnn.models.magenta import export_magenta_json

    model = load_model(args.model)
    if not isinstance(model, SketchRNN):
        raise CLIError(
            f"{args.out}: cannot export a {type(model).__name__}: the magenta.js format holds "
            "sketch-rnn models only"
        )
    problem = export_kind_error(model.has_encoder, args.out)
    if problem:
        raise CLIError(problem)
    export_magenta_json(model, args.out, name=args.name, scale_factor=args.scale_factor)
    kind = "VAE" if model.has_encoder else "decoder-only"
    print(f"wrote {args.out} ({kind}, {model.config.dec_hidden}-unit LSTM decoder)")


__all__ = ["register", "export_kind_error"]
