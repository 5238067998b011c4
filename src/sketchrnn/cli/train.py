"""``sketchrnn train sketch-rnn|sketchembednet``: train a model on sketch files.

Each model has its own subcommand, so only the options that apply to it are offered: its
config dataclass's fields (``SketchRNNConfig`` / ``SketchEmbedNetConfig``, over ``--preset``)
and ``TrainConfig``'s, with the defaults the model trains with (``TrainConfig.for_model``).
``sketchrnn train --data ...`` (no model named) trains sketch-rnn, and ``--model NAME`` picks
the model as it always did (:func:`rewrite_model_option`). An option of the other model is an
error that names where it belongs, not silently ignored; so is an option that the other options
given make inert (:data:`INERT_OPTIONS`: ``--z-size`` with ``--decoder-only``, ...).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sketchrnn.cli.common import (
    CLIError,
    add_skip_invalid,
    device_option,
    output_folder,
    report_skipped,
)
from sketchrnn.cli.options import (
    add_command,
    add_config_options,
    bounded,
    defaults_of,
    given_options,
    show,
)


@dataclass(frozen=True)
class _Model:
    """What the command shows of a model: its class, its label in messages, its help and its
    default preset. What it needs is the model's to say (its config fields, those from the data
    marked ``cli=False``; ``reads_images``: images rendered once, so no stroke augmentation)."""

    class_name: str
    label: str
    help: str
    default_preset: str


MODELS = {
    "sketch-rnn": _Model(
        "SketchRNN",
        "sketch-rnn",
        "strokes in, strokes out (a VAE, or --decoder-only)",
        "magenta",
    ),
    "sketchembednet": _Model(
        "SketchEmbedNet",
        "SketchEmbedNet",
        "images (rendered from the strokes) in, strokes out",
        "paper",
    ),
}
ALIASES = {"sketch-rnn": ["sketchrnn"]}

# TrainConfig fields a model of images does not take: its images are rendered once, so
# augmenting the strokes would make them disagree.
_STROKE_AUGMENTATION = ("augment", "drop_prob")
# TrainConfig fields under their old, shorter names too.
_TRAIN_ALIASES = {"max_steps": ["--steps"], "out_dir": ["--out"]}


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser(
        "train",
        help="train sketch-rnn or SketchEmbedNet on sketch files (torchrun for DDP)",
        description="Train a model on sketch files; run it under torchrun --nproc-per-node N "
        "for DDP. `sketchrnn train --data ...` trains sketch-rnn; --model NAME picks the model.",
    )
    sub = train.add_subparsers(dest="train_model", metavar="MODEL")
    for name, model in MODELS.items():
        q = add_command(
            sub,
            name,
            _train,
            functools.partial(_arguments, name),
            help=model.help,
            aliases=ALIASES.get(name, []),
        )
        q.set_defaults(train_model=name)


def rewrite_model_option(argv: Sequence[str]) -> list[str]:
    """``train [--model NAME] ARGS`` -> ``train NAME ARGS`` (NAME: sketch-rnn by default), so
    that the commands written before the model subcommands keep working."""
    argv = list(argv)
    if len(argv) < 2 or argv[0] != "train":
        return argv
    rest = argv[1:]
    if rest[0] in ("-h", "--help") or not rest[0].startswith("-"):
        return argv
    name, kept, i = "sketch-rnn", [], 0
    while i < len(rest):
        if rest[i] == "--model" and i + 1 < len(rest):
            name, i = rest[i + 1], i + 2
        elif rest[i].startswith("--model="):
            name, i = rest[i].partition("=")[2], i + 1
        else:
            kept.append(rest[i])
            i += 1
    return ["train", name, *kept]


# ----------------------------------------------------------------------------- options


def _model_class(name: str) -> Any:
    from sketchrnn.models import MODEL_CLASSES

    return MODEL_CLASSES[MODELS[name].class_name]


def _field_defaults(config_class: type) -> dict[str, Any]:
    return {
        f.name: f.default
        for f in dataclasses.fields(config_class)
        if f.default is not dataclasses.MISSING
    }


def _preset_notes(config_class: type, default_preset: str) -> dict[str, str]:
    """``"by preset: magenta 512 (default), paper 2048, small 256"`` for the fields a
    preset sets."""
    presets: dict[str, dict[str, Any]] = config_class.PRESETS  # type: ignore[attr-defined]
    fields = _field_defaults(config_class)
    order = [default_preset, *(p for p in presets if p != default_preset)]
    notes = {}
    for name in {k for values in presets.values() for k in values}:
        values = [
            f"{preset} {show(presets[preset].get(name, fields.get(name)))}"
            + (" (default)" if preset == default_preset else "")
            for preset in order
        ]
        notes[name] = "by preset: " + ", ".join(values)
    return notes


def _arguments(name: str, q: argparse.ArgumentParser, others: bool = True) -> None:
    from sketchrnn.io.files import MAX_ABS_OFFSET
    from sketchrnn.models.config import MAX_SECONDS, MAX_SEQ_LEN
    from sketchrnn.train_config import TrainConfig

    spec = MODELS[name]
    model_class = _model_class(name)
    config_class = model_class.config_class
    fields = {f.name for f in dataclasses.fields(config_class)}

    data = q.add_argument_group("data")
    data.add_argument(
        "--data",
        nargs="+",
        required=True,
        metavar="FILE",
        help="any readable files: .npz .ndjson .bin .svg (or folders) .zip; all used",
    )
    data.add_argument(
        "--max-len",
        type=bounded(int, low=1, high=MAX_SEQ_LEN),
        default=_field_defaults(config_class)["max_seq_len"],
        help="longest sketch kept, in points (the model's N_max: the longest kept)",
    )
    if model_class.reads_images:  # images rendered once, from files (see _trainer)
        from sketchrnn.data import load_image_datasets

        data.add_argument(
            "--rdp-epsilon",
            type=bounded(float, low=0, high=MAX_ABS_OFFSET),
            default=defaults_of(load_image_datasets)["rdp_epsilon"],
            help="RDP-simplify sketches first (file units; Omniglot: about 2)",
        )
    else:
        from sketchrnn.data import load_datasets

        data.add_argument(
            "--too-long",
            choices=["drop", "error"],
            default=defaults_of(load_datasets)["too_long"],
            help="what to do with longer sketches (drop: with a count)",
        )
    add_skip_invalid(data)

    model = q.add_argument_group(
        f"model ({config_class.__name__}; options given override the preset's values)"
    )
    model.add_argument(
        "--preset",
        action=_PresetGiven,
        choices=list(config_class.PRESETS),
        default=spec.default_preset,
        help="model size",
    )
    # Config fields set from these flags (and the data), not offered as options themselves.
    if "conditional" in fields:
        model.add_argument("--decoder-only", action="store_true", help="no encoder, no z")
    if "num_classes" in fields:
        model.add_argument(
            "--class-conditional",
            action="store_true",
            help="a learned class embedding (one per class of the data) joins the decoder input",
        )
    add_config_options(
        model,
        config_class,
        "model",
        notes=_preset_notes(config_class, spec.default_preset),
    )

    training = q.add_argument_group("training (TrainConfig)")
    add_config_options(
        training,
        TrainConfig,
        "train",
        exclude=("max_seconds", *(_STROKE_AUGMENTATION if model_class.reads_images else ())),
        defaults=model_class.TRAIN_DEFAULTS,
        notes={"save_every": "default: the value of --eval-every"},
        aliases=_TRAIN_ALIASES,
        types={"device": device_option, "out_dir": output_folder},
    )
    training.add_argument(
        "--minutes",
        type=bounded(float, low=0, low_open=True, high=MAX_SECONDS // 60),
        default=None,
        metavar="FLOAT",
        help="wall-time budget in minutes",
    )
    training.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out exactly (with the run's model settings)",
    )
    training.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run already in --out (without it, a folder holding a run is refused)",
    )
    training.add_argument(
        "--fast-matmul",
        action="store_true",
        help="CPU: bfloat16 hardware matmuls at float32 accuracy (checked first)",
    )
    if others:
        _refuse_other_models_options(name, q)


class _OtherModelsOption(argparse.Action):
    """An option of another model's subcommand: remembered, then refused by the command with
    a message naming where it belongs (argparse would only say "unrecognized")."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any):
        super().__init__(
            option_strings, dest, nargs="*", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, [*getattr(namespace, self.dest, []), option_string])


def _refuse_other_models_options(name: str, q: argparse.ArgumentParser) -> None:
    ours = set(q._option_string_actions)
    for other in MODELS:
        if other == name:
            continue
        probe = argparse.ArgumentParser(add_help=False)
        _arguments(other, probe, others=False)
        flags = sorted(set(probe._option_string_actions) - ours)
        for flag in flags:
            q.add_argument(flag, action=_OtherModelsOption, dest=f"other_options.{other}")


# ----------------------------------------------------------------------------- inert options


@dataclass(frozen=True)
class _Inert:
    """Model options (config fields) that do nothing when ``applies(config, args)``; the
    error says so in ``message`` (formatted with ``flag``, the option given, and the config's
    ``cell``)."""

    fields: tuple[str, ...]
    applies: Any  # (model config, parsed args) -> bool
    message: str


INERT_OPTIONS = (
    _Inert(
        ("enc_hidden", "z_size", "kl_weight", "kl_min", "kl_decay_rate", "kl_eta_min"),
        lambda config, args: getattr(args, "decoder_only", False),
        "{flag}: does nothing with --decoder-only (that model has no encoder, no z and no KL "
        "term); leave out {flag} or --decoder-only",
    ),
    _Inert(
        ("hyper_hidden", "hyper_embed"),
        lambda config, args: config.cell != "hyper",
        "{flag}: does nothing with --cell {cell} (only the HyperLSTM cell has a hyper "
        "network); add --cell hyper or leave out {flag}",
    ),
    _Inert(
        ("class_embed_size",),
        lambda config, args: not getattr(args, "class_conditional", True),
        "{flag}: does nothing without --class-conditional (only a class-conditional model has "
        "a class embedding); add --class-conditional or leave out {flag}",
    ),
)


def _refuse_inert_options(args: argparse.Namespace, config: Any) -> None:
    """CLIError naming the first given model option that the others make inert, and the option
    that does (``--z-size: does nothing with --decoder-only (...)``)."""
    given = given_options(args, "model")
    for rule in INERT_OPTIONS:
        inert = [name for name in rule.fields if name in given]
        if inert and rule.applies(config, args):
            flag = "--" + inert[0].replace("_", "-")
            raise CLIError(rule.message.format(flag=flag, cell=getattr(config, "cell", "")))


# ----------------------------------------------------------------------------- the command


def _note_kept_settings(args: argparse.Namespace, asked: Any, run: Any, out_dir: str) -> None:
    """One line when ``--resume`` is given model settings (``--preset`` or its options) that
    differ from the run's: the run's are kept, and which differ."""
    keys = set(given_options(args, "model"))
    if getattr(args, "preset_given", False):
        keys |= set(type(asked).PRESETS[args.preset])
    wanted = {k: getattr(asked, k) for k in keys}
    if getattr(args, "decoder_only", False):
        wanted["conditional"] = False
    differ = [
        f"{k} {show(getattr(run, k))} (given {show(wanted[k])})"
        for k in sorted(wanted)
        if getattr(run, k) != wanted[k]
    ]
    if getattr(args, "class_conditional", False) and not getattr(run, "num_classes", 0):
        differ.append("num_classes 0 (given --class-conditional)")
    if differ:
        preset = f" --preset {args.preset}" if getattr(args, "preset_given", False) else ""
        print(
            f"--resume{preset}: keeping the run's model settings ({out_dir}); these differ "
            f"from the ones given: {', '.join(differ)}"
        )


class _PresetGiven(argparse.Action):
    """``--preset NAME``, remembering that it was given (a resume keeps the run's)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, values)
        namespace.preset_given = True


def _train(args: argparse.Namespace) -> None:
    from sketchrnn.run_folder import check_new_run, clear_run, lock_run_folder
    from sketchrnn.train_config import TrainConfig

    name = args.train_model
    spec = MODELS[name]
    for other in MODELS:
        flags = getattr(args, f"other_options.{other}", None)
        if flags:
            raise CLIError(
                f"{', '.join(flags)}: not for {spec.label}; among the {MODELS[other].label} "
                f"options (see sketchrnn train {other} --help)"
            )
    if args.fast_matmul:
        from sketchrnn.nn.cells import fast_fp32_matmul

        on = fast_fp32_matmul()
        print("fast float32 matmul: " + ("on" if on else "not available here; default kept"))

    model_class = _model_class(name)
    config = model_class.config_class.preset(args.preset, **given_options(args, "model"))
    _refuse_inert_options(args, config)
    overrides = given_options(args, "train")
    if args.minutes is not None:
        overrides["max_seconds"] = args.minutes * 60.0
    if "eval_every" in overrides:  # checkpoints follow validation unless told otherwise
        overrides.setdefault("save_every", overrides["eval_every"])
    train_config = TrainConfig.for_model(model_class, **overrides)
    if args.resume and args.overwrite:
        raise CLIError("--resume and --overwrite: give one (continue the run, or replace it)")
    # Lock the run folder before the data is loaded (minutes, for big data): a second training
    # on it fails at once, and so does a new one on a folder holding a run. The Trainer holds
    # the lock from here on, and lets go of it when done.
    lock = lock_run_folder(train_config.out_dir) if train_config.out_dir else None
    try:
        if train_config.out_dir and not args.resume:
            check_new_run(train_config.out_dir, overwrite=args.overwrite)
        trainer = _trainer(args, name, model_class, config, train_config, lock)
        if train_config.out_dir and args.overwrite and lock is not None:
            # Only now, with the data read and the model built: a training that cannot start
            # leaves the old run as it was.
            removed = clear_run(train_config.out_dir)
            if removed:
                print(f"--overwrite: removed the earlier run's {', '.join(removed)}")
    except BaseException:
        if lock is not None:
            lock.discard()
        raise
    try:
        result = trainer.fit()
    finally:
        trainer.close()
    if trainer.ctx.is_main:
        print(
            f"trained {result['step']} steps in {result['seconds']:.0f} s; "
            f"model in {train_config.out_dir}"
        )


def _trainer(
    args: argparse.Namespace, name: str, model_class: Any, config: Any, train_config: Any, lock: Any
) -> Any:
    """The Trainer of the command: the data loaded, the model new or the run's (--resume)."""
    from sketchrnn.train import Trainer, new_model

    state = None
    if args.resume and train_config.out_dir:
        # The run's model settings are kept: read them first (the images are rendered at the
        # run's size) and say which of the given ones they overrule.
        from sketchrnn.models.checkpoint import checkpoint_model_config
        from sketchrnn.run_folder import read_run_checkpoint

        state = read_run_checkpoint(train_config.out_dir)
        run_config = checkpoint_model_config(state, train_config.out_dir)
        _note_kept_settings(args, config, run_config, train_config.out_dir)
        config = run_config
    if model_class.reads_images:
        # Its images are rendered once, in memory: read from sketch files (not a store),
        # RDP-simplified as asked.
        from sketchrnn.data import load_image_datasets

        data = load_image_datasets(
            args.data,
            config.image_size,
            args.max_len,
            rdp_epsilon=args.rdp_epsilon,
            in_channels=config.in_channels,
            skip_invalid=args.skip_invalid,
        )
    else:
        from sketchrnn.data import load_datasets

        data = load_datasets(  # type: ignore[assignment]
            args.data, max_len=args.max_len, too_long=args.too_long, skip_invalid=args.skip_invalid
        )
    if state is None:  # what the data and the flags above set
        changes: dict[str, Any] = {"max_seq_len": data.max_len}
        if "decoder_only" in args:
            changes["conditional"] = not args.decoder_only
        if "class_conditional" in args:
            changes["num_classes"] = (
                len(data.classes) if args.class_conditional else config.num_classes
            )
        config = dataclasses.replace(config, **changes)
    for path, skipped in data.skipped_invalid.items():
        report_skipped(path, skipped)
    for path, n in data.dropped_too_long.items():
        if n:
            print(f"{path}: left out {n} sketches longer than {args.max_len} points")
    print(
        f"data: {len(data.train)} train / {len(data.valid)} valid / {len(data.test)} test "
        f"sketches, {len(data.classes)} classes, N_max {data.max_len}, "
        f"scale factor {data.scale_factor:.4f}"
    )

    if args.resume:
        return Trainer.from_checkpoint(
            train_config, data.train, data.valid, state=state, run_lock=lock
        )
    # The initial weights come from --seed too: the same command gives the same run.
    model = new_model(model_class, config, train_config.seed)
    return Trainer(model, train_config, data.train, data.valid, run_lock=lock)


__all__ = ["register", "rewrite_model_option", "MODELS"]
