"""``sketchrnn data info|convert|pack|verify|render|download|synthetic|sample``: sketch files."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from sketchrnn.cli.common import CLIError, add_skip_invalid, check_limit, read
from sketchrnn.cli.options import (
    add_command,
    add_count,
    bounded,
    defaults_of,
    seed_type,
    temperature_type,
)


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
        "verify",
        _verify,
        _verify_args,
        help="check packed stores, every byte, against the digests recorded when packed",
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
    q.add_argument(
        "--no-verify",
        action="store_true",
        help="of a packed store, do not read the points to check their digest (the index, "
        "the manifest and their digests are always checked)",
    )


def _info(args: argparse.Namespace) -> None:
    import numpy as np

    from sketchrnn import strokes
    from sketchrnn.store import is_store

    for path in args.files:
        if is_store(path):
            _store_info(path, verify=not args.no_verify)
            continue
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
            try:
                scale = f"{strokes.scale_factor(train):.4f}"
            except strokes.SketchError:
                scale = "none (the offsets are all equal: nothing to train on)"
            print(f"  scale factor (std of train offsets): {scale}")
        classes = ss.classes
        shown = ", ".join(classes[:20]) + (
            f", ... ({len(classes)} in all)" if len(classes) > 20 else ""
        )
        print(f"  classes: {shown}")


def _store_info(path: str, verify: bool = True) -> None:
    """What a packed store holds, from its manifest and index arrays (no sketch is read),
    after checking every file against its digest (the points too, unless ``verify`` is
    false): a damaged store gets one error line, not a description."""
    from sketchrnn.store import open_store

    started = time.perf_counter()
    store = open_store(path)
    if verify:
        store.verify()
    seconds = time.perf_counter() - started
    m = store.manifest
    print(f"{path} (packed store, format {m['format_version']}, {m.get('created_by', '?')})")
    print(
        "  content: "
        + ("every file matches its digest" if verify else "index files match their digests")
        + f" ({m['digests']['algorithm']}, checked in {seconds:.1f} s)"
    )
    print(f"  sketches: {len(store):,}")
    for split, n in m["split_counts"].items():
        if n:
            print(f"    {split}: {n:,}")
    print(f"  points: {store.num_points:,} ({store.points.dtype})")
    if len(store):
        pct = store.length_percentiles([0, 50, 90, 99, 100])
        print("  points per sketch: min {} / median {} / p90 {} / p99 {} / max {}".format(*pct))
    scale = m.get("scale_factor")
    limit = store.offset_limit
    print(
        "  scale factor (std of train offsets"
        + (f", clipped at {limit:g}" if limit is not None else "")
        + "): "
        + ("none (no train sketches)" if scale is None else f"{scale:.4f}")
    )
    counts = store.class_counts()
    shown = ", ".join(f"{c} ({n:,})" for c, n in zip(store.classes[:20], counts, strict=False))
    more = f", ... ({len(store.classes)} in all)" if len(store.classes) > 20 else ""
    print(f"  classes: {shown}{more}")
    files = [p for p in store.path.iterdir() if p.is_file()]
    print(f"  size on disk: {store.nbytes / 2**20:,.1f} MiB ({len(files)} files)")
    options = m.get("options", {})
    if options:
        print("  packed with: " + ", ".join(f"{k} {v}" for k, v in options.items()))
    dropped = {k: v for k, v in m.get("dropped", {}).items() if v}
    print("  dropped: " + (", ".join(f"{v:,} {k}" for k, v in dropped.items()) or "none"))
    print(f"  sources ({len(store.sources)}):")
    for source in store.sources:
        lost = {k: v for k, v in source.get("dropped", {}).items() if v}
        print(
            f"    {source['path']}: {source['count']:,} sketches"
            + (f" of {source['read']:,} read" if "read" in source else "")
            + (
                f", {source['splits_assigned']:,} splits assigned"
                if source.get("splits_assigned")
                else ""
            )
            + ("".join(f", {v:,} {k} dropped" for k, v in lost.items()))
        )


# ----------------------------------------------------------------------------- convert


def _convert_args(q: argparse.ArgumentParser) -> None:
    q.add_argument("input", metavar="IN")
    q.add_argument("output", metavar="OUT", help=".npz, .ndjson, .bin, .svg or .png")
    q.add_argument(
        "--label", default=None, help="class name for a file that holds none (.bin, unlabelled npz)"
    )
    add_skip_invalid(q)


def _convert(args: argparse.Namespace) -> None:
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
    q.add_argument(
        "sources",
        nargs="*",
        metavar="FILE",
        help="any readable sketch files; or the name of a class fetched by `data download`",
    )
    q.add_argument("--out", required=True, help="the store folder (written atomically)")
    _add_class_choice(q, "pack the downloaded files of")
    q.add_argument(
        "--from",
        dest="from_dir",
        default=None,
        metavar="DIR",
        help="where `data download` put the class files (its --to; default as there)",
    )
    q.add_argument(
        "--split-fractions",
        nargs=3,
        type=bounded(float, low=0, high=1),
        default=defaults["split_fractions"],
        metavar=("TRAIN", "VALID", "TEST"),
        help="splits of files that have none (default %(default)s)",
    )
    q.add_argument("--split-seed", type=seed_type(), default=defaults["split_seed"])
    q.add_argument("--overwrite", action="store_true", help="replace an existing store")
    q.add_argument(
        "--restart", action="store_true", help="start over instead of resuming a killed pack"
    )
    add_skip_invalid(q)


def _pack_sources(args: argparse.Namespace) -> list[str]:
    """``FILE...`` as given, a ``FILE`` that is no path but a downloaded class name as that
    class's file, then the files of ``--list``/``--all``; every class must be downloaded."""
    from sketchrnn.io.quickdraw_download import downloaded_class_files

    sources, names = [], []
    for source in args.sources:
        if os.path.exists(source) or os.sep in source:
            sources.append(source)
        else:
            names.append(source)
    names = _chosen_classes(args, names)
    if not sources and not names:
        raise CLIError("name what to pack: FILE..., CLASS..., --list FILE or --all")
    paths, missing = downloaded_class_files(names, args.from_dir)
    if missing:
        raise CLIError(
            f"no such file, and no downloaded class file for: {_some(missing)} "
            f"(fetch them with `sketchrnn data download` first"
            + (f" --to {args.from_dir})" if args.from_dir else ")")
        )
    return sources + [os.fspath(p) for p in paths]


def _pack(args: argparse.Namespace) -> None:
    from sketchrnn.store import pack

    report = pack(
        _pack_sources(args),
        args.out,
        split_fractions=tuple(args.split_fractions),
        split_seed=args.split_seed,
        skip_invalid=args.skip_invalid,
        overwrite=args.overwrite,
        resume=not args.restart,
    )
    print(report)


# ----------------------------------------------------------------------------- verify


def _verify_args(q: argparse.ArgumentParser) -> None:
    q.add_argument("stores", nargs="+", metavar="STORE", help="packed store folders")


def _verify(args: argparse.Namespace) -> None:
    from sketchrnn.io.files import SketchFileError, size_text
    from sketchrnn.store import open_store

    failed: list[SketchFileError] = []
    for path in args.stores:
        started = time.perf_counter()
        try:
            store = open_store(path)
            store.verify()
        except SketchFileError as e:
            if len(args.stores) == 1:
                raise
            print(f"sketchrnn: error: {e}", file=sys.stderr, flush=True)
            failed.append(e)
            continue
        print(
            f"{path}: ok: {len(store):,} sketches, every file matches its digest "
            f"({size_text(store.nbytes)} read in {time.perf_counter() - started:.1f} s)",
            flush=True,
        )
    if failed:
        raise CLIError(
            f"{len(failed)} of {len(args.stores)} stores are damaged (the reasons are above)"
        )


# ----------------------------------------------------------------------------- render


def _render_args(q: argparse.ArgumentParser) -> None:
    from sketchrnn.io.formats import write_grid

    q.add_argument("file", metavar="FILE")
    q.add_argument("--out", required=True, help="grid.png or grid.svg")
    add_count(q, "--n", 16, "how many sketches")
    q.add_argument("--split", default=None, help="train, valid or test (default: all)")
    q.add_argument("--seed", type=seed_type(), default=0, help="which sketches are picked")
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

    check_limit(args, "--n", args.n)
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
    q.add_argument(
        "classes", nargs="*", metavar="CLASS", help='class names, e.g. cat "The Eiffel Tower"'
    )
    _add_class_choice(q, "fetch")
    q.add_argument(
        "--to",
        default=None,
        help="cache directory (default $SKETCHRNN_CACHE/quickdraw or ~/.cache/sketchrnn/quickdraw)",
    )
    q.add_argument("--base-url", default=None, help="mirror of the sketchrnn/ folder")
    q.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_class_choice(q: argparse.ArgumentParser, verb: str) -> None:
    q.add_argument("--all", action="store_true", help=f"{verb} all 345 classes of Quick, Draw!")
    q.add_argument(
        "--list", default=None, metavar="FILE", help=f"{verb} the classes named in FILE, one a line"
    )


def _chosen_classes(args: argparse.Namespace, given: list[str]) -> list[str]:
    """The class names of ``CLASS...``, ``--list FILE`` and ``--all`` together (in that
    order, each once)."""
    from sketchrnn.io.quickdraw_download import QUICKDRAW_CLASSES, read_class_list

    names = list(given)
    if args.list:
        names += read_class_list(args.list)
    if args.all:
        names += QUICKDRAW_CLASSES
    return list(dict.fromkeys(names))


def _some(names: list[str], shown: int = 10) -> str:
    """``a, b, c`` (the first ``shown`` names, then how many in all)."""
    more = f", ... ({len(names)} in all)" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _download(args: argparse.Namespace) -> None:
    from sketchrnn.io.quickdraw_download import download_quickdraw_classes

    names = _chosen_classes(args, args.classes)
    if not names:
        raise CLIError("name the classes to fetch: CLASS..., --list FILE or --all")
    report = download_quickdraw_classes(
        names,
        to=args.to,
        base_url=args.base_url,
        progress=not args.no_progress,
        echo=lambda line, how: print(
            line, file=sys.stderr if how == "failed" else sys.stdout, flush=True
        ),
    )
    print(report)
    if report.failed:
        raise CLIError(
            f"{len(report.failed)} of {len(names)} classes failed: {_some(list(report.failed))} "
            "(the reasons are above; run the same command again to retry them)"
        )


# ----------------------------------------------------------------------------- synthetic


def _synthetic_args(q: argparse.ArgumentParser) -> None:
    from sketchrnn.synthetic import MAX_PER_CLASS, synthetic_sketchset

    defaults = defaults_of(synthetic_sketchset)
    q.add_argument("--out", required=True, help=".npz (train/valid/test kept), .ndjson, ...")
    q.add_argument(
        "--per-class",
        type=bounded(int, low=1, high=MAX_PER_CLASS),
        default=defaults["n_per_class"],
        help="sketches per shape",
    )
    q.add_argument("--classes", nargs="+", default=None, metavar="SHAPE", help="default: all")
    q.add_argument("--seed", type=seed_type(), default=defaults["seed"])


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
    add_count(q, "--per-model", 1000, "drawings per model")
    q.add_argument(
        "--temperature",
        type=temperature_type(),
        default=defaults_of(generate.sample)["temperature"],
        help="sampling temperature",
    )
    q.add_argument(
        "--simplify",
        action="store_true",
        help="into the 0-255 box with RDP 2, as the simplified Quick, Draw! files",
    )
    q.add_argument("--seed", type=seed_type(), default=defaults["seed"])


def _sample(args: argparse.Namespace) -> None:
    from sketchrnn.model_samples import read_sample_info, sample_magenta_models

    check_limit(args, "--per-model", args.per_model)
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
