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


def _read(path: str, args: argparse.Namespace):
    """Read any sketch file; with ``--skip-invalid``, say how many drawings were passed over."""
    from sketchrnn.io.formats import read_sketches

    ss = read_sketches(path, skip_invalid=getattr(args, "skip_invalid", False))
    _report_skipped(path, ss.skipped)
    return ss


def _report_skipped(path: str, skipped: list[str]) -> None:
    if skipped:
        print(
            f"{path}: skipped {len(skipped)} invalid drawings (first: {skipped[0]})",
            file=sys.stderr,
        )


def _cmd_data_info(args: argparse.Namespace) -> None:
    import numpy as np

    from sketchrnn import strokes

    for path in args.files:
        ss = _read(path, args)
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
    from sketchrnn.io.formats import write_sketches

    ss = _read(args.input, args)
    write_sketches(args.output, ss)
    print(f"wrote {len(ss)} sketches to {args.output}")


def _cmd_data_render(args: argparse.Namespace) -> None:
    import numpy as np

    from sketchrnn.io.formats import write_grid

    ss = _read(args.file, args)
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


def _cmd_data_synthetic(args: argparse.Namespace) -> None:
    from sketchrnn.io.formats import write_sketches
    from sketchrnn.synthetic import CLASSES, synthetic_sketchset

    classes = args.classes or list(CLASSES)
    unknown = [c for c in classes if c not in CLASSES]
    if unknown:
        raise CLIError(f"unknown shape {unknown[0]!r}; choose from {', '.join(CLASSES)}")
    ss = synthetic_sketchset(args.per_class, args.seed, classes=classes)
    write_sketches(args.out, ss)
    print(f"wrote {len(ss)} sketches ({', '.join(classes)}) to {args.out}")


def _cmd_data_sample(args: argparse.Namespace) -> None:
    from sketchrnn.model_samples import read_sample_info, sample_magenta_models

    path = sample_magenta_models(
        args.models,
        args.per_model,
        args.temperature,
        args.out,
        seed=args.seed,
        simplify=args.simplify,
    )
    info = read_sample_info(path)
    print(
        f"{path}: {len(info['models'])} models x {info['count']} drawings "
        f"at temperature {info['temperature']:g}"
        + (", simplified as the Quick, Draw! files" if info["simplified"] else "")
        + " (empty drawings left out)"
    )


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


def _input_scale(spec: str, model_path: str, model) -> float | None:
    """``--input-scale``: a factor for the input sketches' offsets, or None for "per sketch".

    ``none`` is 1; a number is itself; ``auto`` is None (fit each sketch) for magenta.js
    models, whose units are the raw drawings' pixels while inputs are often a 0-255 box
    (simplified ndjson) or any other size, and 1 for models trained here, which take their
    own training files' units.
    """
    from sketchrnn.evaluate import is_magenta_json_model

    if spec == "none":
        return 1.0
    if spec == "auto":
        if is_magenta_json_model(model_path) and getattr(model, "scale_factor", None):
            return None
        return 1.0
    try:
        factor = float(spec)
    except ValueError:
        raise CLIError(f"--input-scale must be auto, none or a number, got {spec!r}") from None
    if not factor > 0 or factor == float("inf"):
        raise CLIError(f"--input-scale must be a positive number, got {spec!r}")
    return factor


def _scaled_inputs(args: argparse.Namespace, model, *specs: str) -> list:
    """The sketches named by ``specs``, brought to the model's size by ``--input-scale``."""
    from sketchrnn import generate, strokes

    factor = _input_scale(args.input_scale, args.model, model)
    sketches = [strokes.validate_stroke3(_pick_sketch(spec), where=spec) for spec in specs]
    if factor is None:
        return generate.fit_to_model_size(model, sketches)
    out = []
    for s3 in sketches:
        s3 = s3.copy()
        s3[:, 0:2] *= factor
        out.append(s3)
    return out


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
    (s3,) = _scaled_inputs(args, model, args.input)
    temps = [float(t) for t in args.temperatures.split(",")]
    out = generate.reconstruct(model, s3, temps, seed=args.seed)
    _write_outputs(args.out, [s3, *out], args.color, ncols=len(out) + 1)


def _cmd_complete(args: argparse.Namespace) -> None:
    from sketchrnn import generate

    model = generate.load_model(args.model)
    (prefix,) = _scaled_inputs(args, model, args.input)
    out = generate.complete(
        model, prefix, args.n, args.temperature, z_from=args.z_from, seed=args.seed
    )
    _write_outputs(args.out, [prefix, *out], args.color)


def _cmd_interpolate(args: argparse.Namespace) -> None:
    from sketchrnn import generate

    model = generate.load_model(args.model)
    a, b = _scaled_inputs(args, model, args.a, args.b)
    out = generate.interpolate(
        model, a, b, args.steps, method=args.method, temperature=args.temperature, seed=args.seed
    )
    _write_outputs(args.out, out, args.color, ncols=len(out))


def _cmd_analogy(args: argparse.Namespace) -> None:
    from sketchrnn import generate

    model = generate.load_model(args.model)
    a, minus, plus = _scaled_inputs(args, model, args.a, args.minus, args.plus)
    out = generate.analogy(
        model, a, minus, plus, n=args.n, temperature=args.temperature, seed=args.seed
    )
    _write_outputs(args.out, [a, minus, plus, *out], args.color, ncols=3 + len(out))


# ---------------------------------------------------------------------- train, evaluate, demo


def _cmd_train(args: argparse.Namespace) -> None:
    from sketchrnn.train import TrainConfig, Trainer

    if args.fast_matmul:
        from sketchrnn.nn.cells import fast_fp32_matmul

        on = fast_fp32_matmul()
        print("fast float32 matmul: " + ("on" if on else "not available here; default kept"))

    image_model = args.model == "sketchembednet"
    if image_model:
        from sketchrnn.image_data import load_image_datasets

        max_len = 64 if args.max_len is None else args.max_len
        data = load_image_datasets(
            args.data,
            args.image_size,
            max_len,
            rdp_epsilon=args.rdp_epsilon,
            skip_invalid=args.skip_invalid,
        )
    else:
        from sketchrnn.data import load_datasets

        max_len = 250 if args.max_len is None else args.max_len
        data = load_datasets(
            args.data, max_len=max_len, too_long=args.too_long, skip_invalid=args.skip_invalid
        )
    for path, skipped in data.skipped_invalid.items():
        _report_skipped(path, skipped)
    for path, n in data.dropped_too_long.items():
        if n:
            print(f"{path}: left out {n} sketches longer than {max_len} points")
    print(
        f"data: {len(data.train)} train / {len(data.valid)} valid / {len(data.test)} test "
        f"sketches, {len(data.classes)} classes, N_max {data.max_len}, "
        f"scale factor {data.scale_factor:.4f}"
    )
    config = TrainConfig(
        batch_size=args.batch_size or (256 if image_model else 100),
        lr=args.lr,
        # sketch-rnn (magenta): x0.9999 every step; SketchEmbedNet (its Appendix B): x0.85
        # every 15k steps.
        lr_decay=args.lr_decay if args.lr_decay is not None else (0.85 if image_model else 0.9999),
        lr_decay_every=args.lr_decay_every or (15_000 if image_model else 1),
        min_lr=args.min_lr,
        kl_weight=args.kl_weight,
        kl_min=args.kl_min,
        # Images are rendered once: augmenting the strokes would make them disagree.
        augment=not image_model,
        drop_prob=args.drop_prob,
        max_steps=args.steps,
        max_seconds=None if args.minutes is None else args.minutes * 60.0,
        eval_every=args.eval_every,
        save_every=args.eval_every,
        seed=args.seed,
        nan_policy=args.nan_policy,
        tensorboard=args.tensorboard,
        out_dir=args.out,
        device=args.device,
    )
    if args.resume:
        trainer = Trainer.from_checkpoint(config, data.train, data.valid)
    elif image_model:
        trainer = Trainer(
            _sketch_embed_net_from_args(args, data.max_len), config, data.train, data.valid
        )
    else:
        from sketchrnn.models.sketch_rnn import SketchRNN, SketchRNNConfig

        overrides = {"max_seq_len": data.max_len, "conditional": not args.decoder_only}
        if args.cell:
            overrides["cell"] = args.cell
        if args.recurrent_dropout is not None:
            overrides["recurrent_dropout"] = args.recurrent_dropout
        if args.class_conditional:
            overrides["num_classes"] = len(data.classes)
        model = SketchRNN(SketchRNNConfig.preset(args.preset, **overrides))
        trainer = Trainer(model, config, data.train, data.valid)
    try:
        result = trainer.fit()
    finally:
        trainer.close()
    if trainer.ctx.is_main:
        print(f"trained {result['step']} steps in {result['seconds']:.0f} s; model in {args.out}")


def _sketch_embed_net_from_args(args: argparse.Namespace, max_len: int):
    from sketchrnn.models.sketch_embed_net import SketchEmbedNet, SketchEmbedNetConfig

    if args.decoder_only or args.class_conditional:
        raise CLIError("--decoder-only and --class-conditional are sketch-rnn options")
    preset = "paper" if args.preset in ("paper", "magenta") else "small"
    overrides: dict = {
        "backbone": args.backbone,
        "image_size": args.image_size,
        "alpha_max": args.alpha_max,
        "alpha_every": args.alpha_every,
        "max_seq_len": max_len,
    }
    if args.cell:
        overrides["cell"] = args.cell
    if args.recurrent_dropout is not None:
        overrides["recurrent_dropout"] = args.recurrent_dropout
    return SketchEmbedNet(SketchEmbedNetConfig.preset(preset, **overrides))


def _cmd_evaluate(args: argparse.Namespace) -> None:
    from sketchrnn.evaluate import evaluate_files_by_class

    report = evaluate_files_by_class(
        args.model, args.data, args.split, args.batch_size, raw_ndjson=args.raw_ndjson
    )
    print(
        f"split {report.split}: {int(report.total['sketches'])} sketches "
        f"(raw ndjson read as {report.raw_ndjson})"
    )
    if report.dropped_too_long:
        print(f"left out {report.dropped_too_long} sketches longer than the model's N_max")
    rows = {**report.per_class, "all": report.total}
    width = max(len(name) for name in rows)
    keys = ("L_R", "L_s", "L_p", "L_KL", "loss")
    print(f"{'class':{width}s}  " + "  ".join(f"{k:>8s}" for k in keys) + "  sketches  std/sf")
    for name, result in rows.items():
        figures = "  ".join(f"{result[k]:8.4f}" for k in keys)
        print(
            f"{name:{width}s}  {figures}  {int(result['sketches']):8d}"
            f"  {result['offset_std_ratio']:6.2f}"
        )


def _cmd_demo(args: argparse.Namespace) -> None:
    from sketchrnn.demo import run_demo

    paths = run_demo(args.out, seconds=args.seconds, seed=args.seed)
    print("the demo wrote:")
    for name, path in paths.items():
        print(f"  {name:20s} {path}")


# ----------------------------------------------------------------------------- parser


SKIP_FLAG = "--skip-invalid"
SKIP_KW = dict(action="store_true", help="pass over invalid drawings (counted) instead of stopping")

# ----------------------------------------------------------------------------- few-shot, figures


def _cmd_fewshot(args: argparse.Namespace) -> None:
    import numpy as np

    from sketchrnn import fewshot
    from sketchrnn.io.omniglot_images import load_omniglot_split
    from sketchrnn.models import load_model
    from sketchrnn.models.conv_vae import ConvVAE

    baselines = fewshot.parse_baselines(args.baselines)
    model = load_model(args.model)
    embedders = {"sketchembednet": fewshot.model_embedding(model, args.image_size)}
    for name, path in baselines:
        if name == "pixels":
            embedders[name] = fewshot.raw_pixel_embedding
        elif name == "random-conv4":
            embedders[name] = fewshot.random_conv4_embedding(args.seed, args.image_size)
        elif path is not None:
            vae = ConvVAE.from_pretrained(path)
            embedders[name] = fewshot.model_embedding(vae, args.image_size)
        else:
            files = args.conv_vae_data or []
            source = (
                "the Omniglot background"
                if not files
                else files[0]
                if len(files) == 1
                else f"{len(files)} files ({files[0]}, ...)"
            )
            print(
                f"conv-vae: no path given, training one for {args.conv_vae_steps} steps "
                f"(batch 128) on images of {source}",
                file=sys.stderr,
            )
            if args.conv_vae_data:
                # The images the SketchEmbedNet under test learned from (rendered the same way).
                from sketchrnn.image_data import load_image_datasets

                train = load_image_datasets(args.conv_vae_data, args.image_size).train
                images = train.images.astype(np.float32) / 255.0
            else:
                images = fewshot.omniglot_background_images(args.omniglot, args.image_size)
            vae = fewshot.train_quick_conv_vae(images, args.conv_vae_steps, args.seed)
            if args.conv_vae_out:
                vae.save_pretrained(args.conv_vae_out)
                print(f"conv-vae: saved to {args.conv_vae_out}", file=sys.stderr)
            embedders[name] = fewshot.model_embedding(vae, args.image_size)
    if args.split == "all-runs":
        from pathlib import Path

        from sketchrnn.io.omniglot_images import load_one_shot_runs

        runs = load_one_shot_runs(Path(args.omniglot) / "all_runs.zip", args.image_size)
        episodes = fewshot.one_shot_run_episodes(runs.runs)
        print(
            f"Lake et al.'s {len(episodes)} original one-shot runs: 20-way 1-shot, one test "
            "image per class (--ways, --shots, --queries, --episodes do not apply)"
        )
        rows = fewshot.run_episode_sets(
            embedders, runs.images, {(20, 1): episodes}, progress=args.progress
        )
        _print_fewshot_rows(
            fewshot, rows, f"one-shot runs of Lake et al. ({len(episodes)} runs)", args.out
        )
        return
    split_name = "test" if args.split == "vinyals-test" else "lake"
    split = load_omniglot_split(args.omniglot, split_name, args.image_size)
    groups = split.alphabet_of if split_name == "lake" else None
    for n_way in args.ways:
        for k_shot in args.shots:
            episodes = fewshot.sample_episodes(
                split.images, n_way, k_shot, args.queries, args.episodes, args.seed, groups
            )
            print(
                f"{n_way}-way {k_shot}-shot: {args.episodes} episodes, seed {args.seed}, "
                f"fingerprint {fewshot.episodes_fingerprint(episodes)}"
            )
    rows = fewshot.run_fewshot_table(
        embedders,
        split.images,
        args.ways,
        args.shots,
        args.episodes,
        args.seed,
        args.queries,
        class_groups=groups,
        progress=args.progress,
    )
    _print_fewshot_rows(fewshot, rows, f"{args.split} split ({len(split)} classes)", args.out)


def _print_fewshot_rows(fewshot, rows, what: str, out: str | None) -> None:
    print(f"Omniglot {what}")
    print(fewshot.format_fewshot_table(rows))
    if out:
        fewshot.write_fewshot_table(out, rows)
        print(f"wrote {out}")


def _cmd_embed(args: argparse.Namespace) -> None:
    from sketchrnn import embeddings, figures

    if args.figure == "vectors":
        count = embeddings.embed_files(args.model, args.inputs, args.out, normalise=args.normalise)
        print(f"wrote {args.out} ({count} embeddings)")
        return
    if args.figure == "one-shot":
        what = "images"
        count = figures.one_shot_figure(
            args.model,
            args.out,
            inputs=args.input,
            omniglot=args.omniglot,
            n_characters=args.count,
            temperature=args.temperature,
            seed=args.seed,
        )
    elif args.figure == "compose":
        count = figures.composition_figure(
            args.model,
            args.out,
            examples=args.examples,
            count=args.count,
            conv_vae=args.conv_vae,
            temperature=args.temperature,
            seed=args.seed,
        )
        what = "drawings of each concept"
    else:
        what = "images"
        count = figures.arrangements_figure(
            args.model, args.out, conv_vae=args.conv_vae, per_arrangement=args.count, seed=args.seed
        )
    print(f"wrote {args.out} ({count} {what})")


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
    q.add_argument(SKIP_FLAG, **SKIP_KW)
    q.set_defaults(func=_cmd_data_info)

    q = dsub.add_parser("convert", help="convert between formats (by file extension)")
    q.add_argument("input", metavar="IN")
    q.add_argument("output", metavar="OUT", help=".npz, .ndjson, .bin, .svg or .png")
    q.add_argument(SKIP_FLAG, **SKIP_KW)
    q.set_defaults(func=_cmd_data_convert)

    q = dsub.add_parser("render", help="draw a grid of sketches from a file to PNG or SVG")
    q.add_argument("file", metavar="FILE")
    q.add_argument("--out", required=True, help="grid.png or grid.svg")
    q.add_argument("--n", type=int, default=16, help="how many sketches (default 16)")
    q.add_argument("--split", default=None, help="train, valid or test (default: all)")
    q.add_argument("--seed", type=int, default=0, help="which sketches are picked")
    q.add_argument(SKIP_FLAG, **SKIP_KW)
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

    q = dsub.add_parser(
        "synthetic", help="write the built-in shapes (circles, squares, snowmen, ...) to a file"
    )
    q.add_argument("--out", required=True, help=".npz (train/valid/test kept), .ndjson, ...")
    q.add_argument("--per-class", type=int, default=500, help="sketches per shape (default 500)")
    q.add_argument("--classes", nargs="+", default=None, metavar="SHAPE", help="default: all")
    q.add_argument("--seed", type=int, default=0)
    q.set_defaults(func=_cmd_data_synthetic)

    q = dsub.add_parser(
        "sample", help="draw from sketch-rnn models (e.g. magenta.js .gen.json) into a cached .npz"
    )
    q.add_argument("models", nargs="+", metavar="MODEL", help="model files or folders")
    q.add_argument("--out", required=True, help="the .npz cache (reused if it matches)")
    q.add_argument("--per-model", type=int, default=1000, help="drawings per model (default 1000)")
    q.add_argument("--temperature", type=float, default=0.5, help="sampling temperature (0.5)")
    q.add_argument(
        "--simplify",
        action="store_true",
        help="into the 0-255 box with RDP 2, as the simplified Quick, Draw! files",
    )
    q.add_argument("--seed", type=int, default=0)
    q.set_defaults(func=_cmd_data_sample)

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

    def input_scale_option(q: argparse.ArgumentParser) -> None:
        q.add_argument(
            "--input-scale",
            default="auto",
            metavar="{auto,none,FLOAT}",
            help="multiply the input sketches' offsets by FLOAT; auto: for magenta.js models, "
            "scale each input so its longer side is that of the model's typical sketch "
            "(median of 16 of its own at tau 0.5), else none",
        )

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
    input_scale_option(q)

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
    input_scale_option(q)

    q = model_command(
        "interpolate", "morph one sketch into another through latent space", _cmd_interpolate
    )
    q.add_argument("--a", required=True, help=sketch_help)
    q.add_argument("--b", required=True, help=sketch_help)
    q.add_argument("--steps", type=int, default=10)
    q.add_argument("--method", choices=["slerp", "linear"], default="slerp")
    q.add_argument("--temperature", type=float, default=0.1)
    input_scale_option(q)

    q = model_command("analogy", "latent arithmetic: a - minus + plus", _cmd_analogy)
    q.add_argument("--a", required=True, help=sketch_help)
    q.add_argument("--minus", required=True, help=sketch_help)
    q.add_argument("--plus", required=True, help=sketch_help)
    q.add_argument("--n", type=int, default=4)
    q.add_argument("--temperature", type=float, default=0.1)
    input_scale_option(q)

    q = sub.add_parser("demo", help="train a small model on built-in shapes and draw with it")
    q.add_argument("--out", default="sketchrnn-demo", help="output folder (default sketchrnn-demo)")
    q.add_argument("--seconds", type=float, default=150, help="training time budget (default 150)")
    q.add_argument("--seed", type=int, default=0)
    q.set_defaults(func=_cmd_demo)

    q = sub.add_parser(
        "train", help="train sketch-rnn or SketchEmbedNet on sketch files (torchrun for DDP)"
    )
    q.add_argument(
        "--data",
        nargs="+",
        required=True,
        metavar="FILE",
        help="any readable files: .npz .ndjson .bin .svg (or folders) .zip; all used",
    )
    q.add_argument("--out", default="runs/sketchrnn", help="run folder (default runs/sketchrnn)")
    q.add_argument(
        "--model",
        choices=["sketchrnn", "sketchembednet"],
        default="sketchrnn",
        help="sketch-rnn (strokes in) or SketchEmbedNet (images rendered from the strokes in)",
    )
    q.add_argument(
        "--preset",
        choices=["small", "magenta", "paper"],
        default="magenta",
        help="model size (SketchEmbedNet: small, or paper for magenta/paper)",
    )
    q.add_argument(
        "--cell",
        choices=["lstm", "layernorm", "hyper"],
        default=None,
        help="decoder cell (default: the preset's)",
    )
    q.add_argument("--decoder-only", action="store_true", help="unconditional model, no encoder")
    q.add_argument(
        "--class-conditional",
        action="store_true",
        help="a learned class embedding joins the decoder input",
    )
    q.add_argument("--recurrent-dropout", type=float, default=None)
    q.add_argument(
        "--max-len",
        type=int,
        default=None,
        help="longest sketch kept, in points (default 250; SketchEmbedNet 64)",
    )
    q.add_argument(
        "--backbone", choices=["conv4", "resnet12"], default="conv4", help="SketchEmbedNet encoder"
    )
    q.add_argument(
        "--image-size", type=int, default=28, help="SketchEmbedNet image side (default 28)"
    )
    q.add_argument(
        "--alpha-max", type=float, default=0.5, help="SketchEmbedNet pixel-loss weight cap"
    )
    q.add_argument(
        "--alpha-every",
        type=int,
        default=10_000,
        help="SketchEmbedNet: steps between +0.05 pixel-loss weight (default 10000)",
    )
    q.add_argument(
        "--rdp-epsilon",
        type=float,
        default=None,
        help="SketchEmbedNet: RDP-simplify sketches first (file units; Omniglot: about 2)",
    )
    q.add_argument(
        "--too-long",
        choices=["drop", "error"],
        default="drop",
        help="what to do with longer sketches (default: drop with a count)",
    )
    q.add_argument(SKIP_FLAG, **SKIP_KW)
    q.add_argument("--steps", type=int, default=10_000, help="optimizer steps (default 10000)")
    q.add_argument("--minutes", type=float, default=None, help="wall-time budget")
    q.add_argument(
        "--batch-size", type=int, default=None, help="default: sketch-rnn 100, SketchEmbedNet 256"
    )
    q.add_argument("--lr", type=float, default=1e-3)
    q.add_argument(
        "--lr-decay",
        type=float,
        default=None,
        help="learning-rate factor per decay (default: sketch-rnn 0.9999, SketchEmbedNet 0.85)",
    )
    q.add_argument(
        "--lr-decay-every",
        type=int,
        default=None,
        help="steps between decays (default: sketch-rnn 1, SketchEmbedNet 15000)",
    )
    q.add_argument("--min-lr", type=float, default=1e-5, help="learning-rate floor (1e-5)")
    q.add_argument("--kl-weight", type=float, default=0.5, help="w_KL (default 0.5)")
    q.add_argument("--kl-min", type=float, default=0.2, help="KL_min (default 0.2)")
    q.add_argument(
        "--drop-prob",
        type=float,
        default=0.0,
        help="augmentation: chance to drop an interior pen-down point",
    )
    q.add_argument("--eval-every", type=int, default=500, help="validate and save every N steps")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument(
        "--nan-policy",
        choices=["skip", "stop"],
        default="skip",
        help="on a NaN/inf loss: skip the update, or stop",
    )
    q.add_argument("--tensorboard", action="store_true")
    q.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    q.add_argument("--resume", action="store_true", help="continue the run in --out exactly")
    q.add_argument(
        "--fast-matmul",
        action="store_true",
        help="CPU: bfloat16 hardware matmuls at float32 accuracy (checked first)",
    )
    q.set_defaults(func=_cmd_train)

    q = sub.add_parser("evaluate", help="L_R, L_s, L_p, L_KL of a model on a data split, per class")
    q.add_argument(
        "model",
        metavar="MODEL",
        help="run folder, checkpoint.pt, pretrained folder or magenta.js .json",
    )
    q.add_argument("--data", nargs="+", required=True, metavar="FILE")
    q.add_argument(
        "--split",
        choices=["train", "valid", "test", "all"],
        default=None,
        help="default: test (the split training left out); all for magenta.js models",
    )
    q.add_argument(
        "--raw-ndjson",
        choices=["auto", "quickdraw", "sketch-rnn"],
        default="auto",
        help="how raw Quick, Draw! ndjson is simplified: into the 0-255 box (quickdraw), or in "
        "pixel units as sketch-rnn's npz (sketch-rnn); auto: sketch-rnn for magenta.js models",
    )
    q.add_argument("--batch-size", type=int, default=100)
    q.set_defaults(func=_cmd_evaluate)

    q = sub.add_parser("fewshot", help="N-way K-shot Omniglot accuracy of a model and baselines")
    q.add_argument("--model", required=True, metavar="RUN_DIR", help="a SketchEmbedNet")
    q.add_argument(
        "--baselines",
        default="conv-vae,random-conv4",
        help="comma-separated: conv-vae[:PATH], random-conv4, pixels; same episodes for all "
        "(conv-vae without PATH trains one on the Omniglot background images)",
    )
    q.add_argument(
        "--split",
        choices=["vinyals-test", "lake", "all-runs"],
        default="vinyals-test",
        help="all-runs: Lake et al.'s 20 original one-shot runs (all_runs.zip)",
    )
    q.add_argument("--ways", type=int, nargs="+", default=[5, 20])
    q.add_argument("--shots", type=int, nargs="+", default=[1, 5])
    q.add_argument("--queries", type=int, default=15, help="query images per class")
    q.add_argument("--episodes", type=int, default=2000)
    q.add_argument("--seed", type=int, default=0, help="episodes (and baseline weights)")
    q.add_argument("--image-size", type=int, default=28)
    q.add_argument("--omniglot", default="../shared/data/omniglot", help="Omniglot data folder")
    q.add_argument("--conv-vae-steps", type=int, default=1500)
    q.add_argument(
        "--conv-vae-data",
        nargs="+",
        metavar="FILE",
        help="train the conv-vae baseline on images of these stroke files (the model's own "
        "training files), not on the Omniglot background",
    )
    q.add_argument(
        "--conv-vae-out",
        metavar="DIR",
        help="keep the conv-vae trained here (e.g. for embed arrangements --conv-vae DIR)",
    )
    q.add_argument("--out", help="write the table: .csv, or Markdown for any other suffix")
    q.add_argument("--progress", action="store_true", help="progress bars")
    q.set_defaults(func=_cmd_fewshot)

    embed_parser = sub.add_parser(
        "embed", help="SketchEmbedNet embeddings of your files, and figures of what they show"
    )
    esub = embed_parser.add_subparsers(dest="figure", metavar="SUBCOMMAND")
    q = esub.add_parser(
        "vectors",
        help="the embeddings of image files or sketch files (.npz or .csv)",
        description="Write the embedding mu of each input: image files (PNG, JPEG, ...; dark "
        "ink on light paper is inverted) or sketch files, whose drawings are rendered as "
        "training images are.",
    )
    q.add_argument("model", metavar="MODEL")
    q.add_argument("inputs", nargs="+", metavar="FILE", help="image files or sketch files")
    q.add_argument("--normalise", action="store_true", help="unit-length vectors")
    q.add_argument("--out", required=True, help=".npz (embeddings, names) or .csv")
    q.set_defaults(func=_cmd_embed)
    q = esub.add_parser("one-shot", help="unseen Omniglot characters drawn from one image each")
    q.add_argument("model", metavar="MODEL")
    q.add_argument(
        "--input",
        nargs="*",
        default=[],
        help="PNG images, or Omniglot characters 'alphabet/characterNN' of the evaluation set "
        "(default: the first --count evaluation characters)",
    )
    q.add_argument("--count", type=int, default=8)
    q.add_argument("--omniglot", default="../shared/data/omniglot")
    q.add_argument("--temperature", type=float, default=0.1)
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--out", required=True)
    q.set_defaults(func=_cmd_embed)
    q = esub.add_parser(
        "compose",
        help="z(snowman) - z(circle) + z(square), decoded",
        description="Conceptual composition (SketchEmbedNet section 6): the embeddings of "
        "snowmen minus circles plus squares, decoded; first the composition of the concept "
        "means (each concept's mean embedding), then of single drawings.",
    )
    q.add_argument("model", metavar="MODEL")
    q.add_argument(
        "--examples",
        nargs=3,
        metavar=("SNOWMAN", "CIRCLE", "SQUARE"),
        help="three sketch files to take the concepts from (e.g. Quick, Draw!'s snowman.ndjson "
        "circle.ndjson square.ndjson); default: the package's synthetic shapes",
    )
    q.add_argument("--count", type=int, default=25, help="drawings per concept (default 25)")
    q.add_argument("--conv-vae", help="a Conv-VAE folder to compose beside the model")
    q.add_argument("--temperature", type=float, default=0.1)
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--out", required=True)
    q.set_defaults(func=_cmd_embed)
    q = esub.add_parser("arrangements", help="UMAP of embeddings of synthetic arrangements")
    q.add_argument("model", metavar="MODEL")
    q.add_argument("--conv-vae", help="a Conv-VAE folder to plot beside the model")
    q.add_argument("--count", type=int, default=40, help="sketches per arrangement")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--out", required=True)
    q.set_defaults(func=_cmd_embed)

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
