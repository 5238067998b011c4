"""``sketchrnn export MODEL OUT``: a model as a portable model folder (ONNX graphs and a
manifest, any model that draws strokes), or as a magenta.js / sketch-rnn-js JSON file when
``OUT`` ends in ``.json`` (the plain-LSTM sketch-rnn models that format holds)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from sketchrnn.cli.common import CLIError
from sketchrnn.cli.options import add_command, bounded


def register(subparsers: argparse._SubParsersAction) -> None:
    add_command(
        subparsers,
        "export",
        _export,
        _arguments,
        help="write a model as a portable model folder (ONNX) or a magenta.js JSON",
    )


def _arguments(q: argparse.ArgumentParser) -> None:
    from sketchrnn.models.units import SCALE_FACTOR_RANGE

    low, high = SCALE_FACTOR_RANGE
    q.add_argument(
        "model", metavar="MODEL", help="a saved model (folder, checkpoint, .json) or a model name"
    )
    q.add_argument(
        "out",
        metavar="OUT",
        help="a new folder: the portable model (ONNX graphs + manifest.json, "
        "docs/portable-models.md); or NAME.vae.json for a VAE, NAME.gen.json for a "
        "decoder-only model in the magenta.js format (plain LSTM, 20 mixtures, no class "
        "conditioning)",
    )
    q.add_argument(
        "--name", default=None, help="the model's name (default: its one class, else MODEL's name)"
    )
    q.add_argument(
        "--scale-factor",
        type=bounded(float, low=low, high=high, optional=True),
        default=None,
        help="pixels per model unit (default: the model's own)",
    )
    q.add_argument(
        "--float16",
        action="store_true",
        help="portable model: store the weights as float16 (half the bytes; onnxruntime then "
        "differs from the float32 model by up to about 1e-2, measured 5e-4 to 7e-3, not 1e-5, "
        "unless the weights were float16 already, as the built-in models' are)",
    )
    q.add_argument(
        "--no-read",
        dest="read",
        action="store_false",
        help="portable model: leave out read.onnx (a prefix is then read step by step)",
    )
    q.add_argument(
        "--overwrite",
        action="store_true",
        help="portable model: replace OUT if it is a portable model folder",
    )


def export_kind_error(has_encoder: bool, out: str) -> str | None:
    """Why ``out`` is the wrong name for a model with / without an encoder, or ``None``."""
    kind, want = ("VAE", ".vae.json") if has_encoder else ("decoder-only model", ".gen.json")
    if not out.lower().endswith(want):
        return f"{out}: the model is a {kind}: the output file must end in {want}"
    return None


def default_name(spec: str, classes: list[str]) -> str:
    """The exported model's name: its one class, else the name of ``spec`` (``sheep.gen.json``
    -> ``sheep``, a built-in model's name as it is, a folder by its name)."""
    if len(classes) == 1:
        return classes[0]
    name = Path(os.path.normpath(spec)).name
    for suffix in (".gen.json", ".vae.json", ".json", ".pt"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _export(args: argparse.Namespace) -> None:
    if args.out.lower().endswith(".json"):
        _export_magenta(args)
    else:
        _export_portable(args)


def _export_magenta(args: argparse.Namespace) -> None:
    from sketchrnn.models import load_model
    from sketchrnn.models.magenta import export_magenta_json, magenta_export_problem

    for flag, given in (("--float16", args.float16), ("--no-read", not args.read),
                        ("--overwrite", args.overwrite)):  # fmt: skip
        if given:
            raise CLIError(f"{flag}: applies to a portable model folder, not to {args.out}")
    model = load_model(args.model)
    problem = magenta_export_problem(model)
    if problem:
        raise CLIError(f"{args.out}: {problem}")
    problem = export_kind_error(model.has_encoder, args.out)
    if problem:
        raise CLIError(problem)
    export_magenta_json(model, args.out, name=args.name, scale_factor=args.scale_factor)
    kind = "VAE" if model.has_encoder else "decoder-only"
    size = os.path.getsize(args.out)
    print(f"wrote {args.out} ({kind}, {model.config.dec_hidden}-unit LSTM decoder, {size:,} bytes)")


def _export_portable(args: argparse.Namespace) -> None:
    from sketchrnn.models import load_model
    from sketchrnn.models.onnx_export import export_portable, export_problem

    out = Path(args.out)
    if out.exists() and not args.overwrite:  # before a model is downloaded or loaded
        raise CLIError(f"{out}: exists; name a new folder (or --overwrite a portable model)")
    model = load_model(args.model)
    problem = export_problem(model)
    if problem:
        raise CLIError(f"{out}: {problem}")
    result = export_portable(
        model,
        out,
        name=args.name or default_name(args.model, model.classes),
        scale_factor=args.scale_factor,
        float16=args.float16,
        with_read=args.read,
        overwrite=args.overwrite,
    )
    m = result.manifest
    print(f"wrote {out} ({m.kind}, {', '.join(m.capabilities)}; weights in {m.dtype})")
    for file, size in result.sizes.items():
        print(f"  {file:<14} {size:>13,} bytes")
    print(f"  {'total':<14} {result.total_bytes:>13,} bytes")
    print(
        f"onnxruntime matches PyTorch to {result.max_difference:.1e} (relative above 1); "
        f"exported in {result.seconds:.1f} s"
    )


__all__ = ["register", "export_kind_error", "default_name"]
