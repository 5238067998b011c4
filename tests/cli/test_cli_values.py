"""Absurd values are refused, not replaced: on the command line in one line naming the option,
what it accepts and the value (exit 2), and in the library by the config's own bounds; long
drawing is bounded (``--no-limit`` lifts it) and shows progress."""

from __future__ import annotations

import dataclasses
import json
import math
import re

import numpy as np
import pytest
import torch

from sketchrnn import generate
from sketchrnn.cli import main, options
from sketchrnn.models import (
    ConvVAEConfig,
    SketchEmbedNetConfig,
    SketchRNN,
    SketchRNNConfig,
    decoding,
    load_model,
)
from sketchrnn.models.config import ConfigDict, field_bounds
from sketchrnn.models.pretrained import ModelFileError
from sketchrnn.train_config import TrainConfig

CONFIG_CLASSES = [SketchRNNConfig, SketchEmbedNetConfig, ConvVAEConfig, TrainConfig]


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def _refused(argv: list[str], capsys) -> str:
    """Run the command; it must stop with exit status 2 and one line on stderr."""
    try:
        code = main(argv)
    except SystemExit as e:  # argparse refused the value while parsing
        code = e.code
    assert code == 2
    return _one_line_error(capsys)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A tiny untrained sketch-rnn VAE saved with its units."""
    torch.manual_seed(0)
    config = SketchRNNConfig(
        enc_hidden=8, dec_hidden=16, z_size=4, num_mixtures=2, cell="lstm", max_seq_len=8
    )
    path = tmp_path_factory.mktemp("model")
    SketchRNN(config).save_pretrained(path, scale_factor=10.0, classes=["toy"])
    return path


@pytest.fixture(scope="module")
def sketch_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("sketches") / "one.ndjson"
    record = {"word": "toy", "drawing": [[[10, 60, 60], [10, 10, 60]]]}
    path.write_text(json.dumps(record) + "\n")
    return path


# ----------------------------------------------------------------------------- train options

TRAIN_CASES = [
    (["--lr", "-1"], "--lr: must be in (0, 1], got -1"),
    (["--lr", "nan"], "--lr: must be in (0, 1], got nan"),
    (["--lr", "inf"], "--lr: must be in (0, 1], got inf"),
    (["--lr", "1e308"], "--lr: must be in (0, 1], got 1e308"),
    # Floats that overflow float32 (a traceback inside torch before):
    (["--kl-min", "1e308"], "--kl-min: must be in [0, 10000], got 1e308"),
    (["--kl-weight", "1e308"], "--kl-weight: must be in [0, 10000], got 1e308"),
    (["--min-lr", "1e308"], "--min-lr: must be in [0, 1], got 1e308"),
    (["--grad-clip", "1e308"], "--grad-clip: must be > 0 (finite ones at most 3.403e+38"),
    (["--grad-clip", "-inf"], "--grad-clip: must be > 0"),
    (["--grad-clip", "1e400"], "--grad-clip: must be > 0 (finite ones"),  # not read as inf
    # Integers beyond any bound, and beyond what a float can hold:
    (["--seed", str(2**64)], "--seed: must be a whole number in [0, 4,294,967,295]"),
    (["--steps", "1" + "0" * 400], "--max-steps/--steps: must be a whole number in [0, 1,0"),
    (["--batch-size", "9" * 5000], "... (5,000 characters)"),
    (["--eval-every", "1e3"], "--eval-every: must be a whole number in [0, 1,000,000,000]"),
    (["--batch-size", "0"], "--batch-size: must be a whole number in [1, 1,000,000], got 0"),
    (["--batch-size", "1.5"], "--batch-size: must be a whole number"),
    (["--eval-batch-size", "0"], "--eval-batch-size: must be a whole number in [1"),
    (["--lr-decay-every", "0"], "--lr-decay-every: must be a whole number in [1, 1,000,000,000]"),
    (["--eval-every", "-1"], "--eval-every: must be a whole number in [0, 1,000,000,000], got -1"),
    (["--save-every", "-5"], "--save-every: must be a whole number in [0, 1,000,000,000], got -5"),
    (["--kl-min", "-1e-5"], "--kl-min: must be in [0, 10000], got -1e-5"),  # not an option
    (["--kl-weight", "-1"], "--kl-weight: must be in [0, 10000], got -1"),
    (["--minutes", "-1"], "--minutes: must be in (0, 16,666,666], got -1"),
    (["--minutes", "1e300"], "--minutes: must be in (0, 16,666,666], got 1e300"),
    (["--lr-decay", "0"], "--lr-decay: must be in (0, 1], got 0"),
    (["--lr-decay", "1.5"], "--lr-decay: must be in (0, 1], got 1.5"),
    (["--dec-hidden", "10000000"], "--dec-hidden: must be a whole number in [1, 8192]"),
    (["--recurrent-dropout", "1"], "--recurrent-dropout: must be in [0, 1), got 1"),
    (["--device", "bogus"], "--device bogus: not a device; use auto, cpu, cuda, cuda:N"),
    (["--device", "cuda:x"], "--device cuda:x: not a device"),
    (["--max-len", "0"], "--max-len: must be a whole number in [1, 1,000,000], got 0"),
]


@pytest.mark.parametrize("given, message", TRAIN_CASES, ids=[" ".join(c[0]) for c in TRAIN_CASES])
def test_train_refuses_absurd_values_in_one_line(given, message, capsys, tmp_path):
    argv = ["train", "--data", str(tmp_path / "none.npz"), "--out", str(tmp_path / "run"), *given]
    line = _refused(argv, capsys)
    assert message in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "given, message",
    [
        (["--batch-size", "0"], "--batch-size: must be a whole number in [1"),
        (["--image-size", "8"], "--image-size: must be a whole number in [16, 1024], got 8"),
        (["--blur-sigma", "0"], "--blur-sigma: must be in [0.01, 1024], got 0"),
        (["--blur-sigma", "5e-324"], "--blur-sigma: must be in [0.01, 1024], got 5e-324"),
        (["--grad-clip", "1e308"], "--grad-clip: must be > 0 (finite ones at most 3.403e+38"),
        (["--kl-weight", "1e308"], "--kl-weight: must be in [0, 10000], got 1e308"),
        (["--lr", "1e308"], "--lr: must be in (0, 1], got 1e308"),
        (["--rdp-epsilon", "1e308"], "--rdp-epsilon: must be in [0, 1e+06], got 1e308"),
        (["--alpha-every", "0"], "--alpha-every: must be a whole number in [1, 1,000,000,000]"),
    ],
)
def test_train_sketchembednet_refuses_absurd_values(given, message, capsys, tmp_path):
    argv = ["train", "sketchembednet", "--data", str(tmp_path / "x.npz"), *given]
    assert message in _refused(argv, capsys)


def test_device_cuda_without_a_gpu_names_the_reason(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    argv = ["train", "--data", str(tmp_path / "x.npz"), "--device", "cuda"]
    line = _refused(argv, capsys)
    assert "--device cuda: no CUDA GPU here (torch.cuda.is_available() is False)" in line


def test_device_beyond_the_gpus_here(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    argv = ["train", "--data", str(tmp_path / "x.npz"), "--device", "cuda:3"]
    assert "--device cuda:3: this machine has 1 CUDA GPU (cuda:0 to cuda:0)" in _refused(
        argv, capsys
    )


def test_device_option_accepts_auto_and_cpu():
    from sketchrnn.cli.common import device_option

    assert device_option("auto") == "auto" and device_option("cpu") == "cpu"


def test_train_out_naming_an_existing_file_is_refused(capsys, tmp_path):
    existing = tmp_path / "notes.txt"
    existing.write_text("keep me\n")
    argv = ["train", "--data", str(tmp_path / "x.npz"), "--out", str(existing)]
    line = _refused(argv, capsys)
    assert f"{existing}: exists and is not a folder" in line and "--out" in line
    assert existing.read_text() == "keep me\n"


def test_train_out_none_still_means_no_files(tmp_path):
    """The --out checker keeps `none` (TrainConfig.out_dir=None: no run folder)."""
    from sketchrnn.cli import build_parser
    from sketchrnn.cli.options import given_options

    args = build_parser().parse_args(["train", "sketch-rnn", "--data", "x", "--out", "none"])
    assert given_options(args, "train")["out_dir"] is None


# ----------------------------------------------------------------------------- drawing options


@pytest.mark.parametrize(
    "given, message",
    [
        (["--temperature", "1e9"], "--temperature: must be in [0, 5], got 1e9"),
        (["--temperature", "-1"], "--temperature: must be in [0, 5], got -1"),
        (["--temperature", "nan"], "--temperature: must be in [0, 5], got nan"),
        (["--pen-temperature", "-0.5"], "--pen-temperature: must be in [0, 5] or none"),
        (["--n", "0"], "--n: must be a whole number in [1, 1,000,000], got 0"),
        (["--n", "-3"], "--n: must be a whole number in [1, 1,000,000], got -3"),
        (["--n", "1000000000"], "--n: must be a whole number in [1, 1,000,000], got 1000000000"),
        (["--seed", "-1"], "--seed: must be a whole number in [0, 4,294,967,295]"),
    ],
)
def test_sample_refuses_absurd_values(given, message, capsys, tmp_path, tiny_model):
    out = tmp_path / "never.svg"
    line = _refused(["sample", str(tiny_model), "--out", str(out), *given], capsys)
    assert message in line
    assert not out.exists()


def test_temperature_zero_is_greedy_not_refused(tmp_path, tiny_model):
    out = tmp_path / "greedy.svg"
    assert (
        main(["sample", str(tiny_model), "--n", "2", "--temperature", "0", "--out", str(out)]) == 0
    )
    assert out.stat().st_size > 0


def test_reconstruct_temperatures_are_checked_each(capsys, tmp_path, tiny_model, sketch_file):
    argv = ["reconstruct", str(tiny_model), "--input", str(sketch_file)]
    line = _refused([*argv, "--temperatures", "0.1,1e9", "--out", str(tmp_path / "r.svg")], capsys)
    assert "--temperatures: must be in [0, 5], got 1e9" in line


@pytest.mark.parametrize(
    "command, flag",
    [("sample", "--n"), ("interpolate", "--steps"), ("complete", "--n"), ("analogy", "--n")],
)
def test_counts_over_the_limit_name_the_flag_that_lifts_it(
    command, flag, capsys, tmp_path, tiny_model, sketch_file
):
    a = str(sketch_file)
    inputs = {
        "sample": [],
        "interpolate": ["--a", a, "--b", a],
        "complete": ["--input", a],
        "analogy": ["--a", a, "--minus", a, "--plus", a],
    }[command]
    out = tmp_path / "never.png"
    argv = [command, str(tiny_model), *inputs, flag, "100000", "--out", str(out)]
    line = _refused(argv, capsys)
    assert f"{flag} 100000: at most 10,000 sketches in one command; --no-limit lifts" in line
    assert not out.exists()


def test_no_limit_lifts_the_limit_and_long_drawing_shows_progress(
    capsys, tmp_path, tiny_model, sketch_file, monkeypatch
):
    monkeypatch.setattr(options, "MAX_SKETCHES", 3)
    monkeypatch.setattr(decoding, "DRAW_BATCH", 2)
    out = tmp_path / "many.svg"
    argv = ["interpolate", str(tiny_model), "--a", str(sketch_file), "--b", str(sketch_file)]
    assert main([*argv, "--steps", "5", "--seed", "0", "--out", str(out)]) == 2
    assert "--no-limit" in capsys.readouterr().err
    assert main([*argv, "--steps", "5", "--seed", "0", "--no-limit", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "wrote 5 sketches" in captured.out
    assert "drawing" in captured.err and "5/5" in captured.err  # the bar, on stderr
    assert main(["sample", str(tiny_model), "--n", "5", "--no-limit", "--out", str(out)]) == 0
    assert "5/5" in capsys.readouterr().err


def test_short_drawing_shows_no_bar(capsys, tmp_path, tiny_model):
    assert main(["sample", str(tiny_model), "--n", "3", "--out", str(tmp_path / "s.svg")]) == 0
    assert capsys.readouterr().err == ""


def test_drawing_in_batches_is_seeded_and_keeps_labels_and_z(tiny_model, monkeypatch):
    model = load_model(tiny_model)
    monkeypatch.setattr(decoding, "DRAW_BATCH", 3)
    first = generate.sample(model, 7, seed=1, temperature=0.5)
    again = generate.sample(model, 7, seed=1, temperature=0.5)
    assert len(first) == 7
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    z = torch.zeros(7, model.config.z_size)
    greedy = generate.sample(model, 7, z=z, temperature=0.0)
    # The same z, greedy: the same sketch in every batch (to float rounding: batches of 3 and 1)
    assert all(s.shape == greedy[0].shape for s in greedy)
    assert all(np.allclose(greedy[0], s, atol=1e-4) for s in greedy)
    with pytest.raises(ValueError, match="z has 6 rows, expected n=7"):
        generate.sample(model, 7, z=z[:6])
    steps = generate.interpolate(model, z[0], z[1] + 1.0, 7, temperature=0.0)
    assert len(steps) == 7
    assert len(generate.analogy(model, z[0], z[1], z[2], n=7, temperature=0.0)) == 7


# ----------------------------------------------------------------------------- evaluate


def test_evaluate_batch_size_zero_says_so(capsys, tmp_path, tiny_model):
    argv = ["evaluate", str(tiny_model), "--data", str(tmp_path / "x.npz"), "--batch-size", "0"]
    assert "--batch-size: must be a whole number in [1, 1,000,000], got 0" in _refused(argv, capsys)


def test_evaluate_library_refuses_batch_size_zero_before_reading(tmp_path, tiny_model):
    from sketchrnn.evaluate import evaluate, evaluate_files_by_class

    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        evaluate_files_by_class(tiny_model, [tmp_path / "missing.npz"], batch_size=0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        evaluate(load_model(tiny_model), [object()], 0)


# ----------------------------------------------------------------------------- library configs


def _outside(bounds) -> list:
    """Values just outside ``bounds`` (and wrong kinds of value)."""
    values: list = [float("nan"), "1", True]
    if bounds.low is not None and math.isfinite(bounds.low):
        values.append(bounds.low if bounds.low_open else bounds.low - 1)
    if bounds.high is not None and math.isfinite(bounds.high):
        values.append(bounds.high if bounds.high_open else bounds.high + 1)
    if bounds.integer:
        values.append(1.5)
    if not bounds.optional:
        values.append(None)
    return values


def _bounded_fields():
    for cls in CONFIG_CLASSES:
        for f in dataclasses.fields(cls):
            bounds = field_bounds(f)
            if bounds is not None:
                yield cls, f.name, bounds


def test_every_config_declares_bounds_on_its_numbers():
    for cls in CONFIG_CLASSES:
        assert issubclass(cls, ConfigDict)
        numbers = [
            f for f in dataclasses.fields(cls) if str(f.type).split(" |")[0] in ("int", "float")
        ]
        # Both bounds: a number with no ceiling ends in a traceback or a MemoryError somewhere.
        unbounded = [
            f.name
            for f in numbers
            if field_bounds(f) is None or None in (field_bounds(f).low, field_bounds(f).high)
        ]
        # scale_factor is checked by UnitsConfig._check_units (strokes.scale_factor_problem).
        assert set(unbounded) <= {"scale_factor"}, (cls.__name__, unbounded)


def test_a_float_beyond_float32_is_refused_even_under_an_infinite_bound():
    """grad_clip accepts inf (no clipping), but not 1e308: it overflows the float32 clamp."""
    assert TrainConfig(grad_clip=math.inf).grad_clip == math.inf
    assert TrainConfig(grad_clip=3e38).grad_clip == 3e38
    for value in (1e308, 3.5e38):
        with pytest.raises(ValueError, match=r"^grad_clip must be > 0 \(finite ones at most"):
            TrainConfig(grad_clip=value)
    with pytest.raises(ValueError, match="^max_steps must be a whole number"):
        TrainConfig(max_steps=10**400)  # an int no float holds: refused, not an OverflowError


@pytest.mark.parametrize(
    "cls, name, bounds", list(_bounded_fields()), ids=lambda x: getattr(x, "__name__", str(x))
)
def test_every_bounded_field_refuses_values_outside(cls, name, bounds):
    for value in _outside(bounds):
        with pytest.raises(ValueError, match=rf"^{name} must be .*, got"):
            cls(**{name: value})


def test_library_messages_name_field_bounds_and_value():
    with pytest.raises(ValueError, match=r"^lr must be in \(0, 1\], got -1$"):
        TrainConfig(lr=-1)
    with pytest.raises(ValueError, match=r"^batch_size must be a whole number in \[1, 1,000,000\]"):
        TrainConfig(batch_size=0)
    with pytest.raises(ValueError, match=r"^max_seconds must be in \(0, 1,000,000,000\] or none"):
        TrainConfig(max_seconds=-60.0)
    with pytest.raises(ValueError, match=r"^device must be auto, cpu, cuda"):
        TrainConfig(device="bogus")
    assert TrainConfig(grad_clip=math.inf).grad_clip == math.inf  # ConvVAE: no clipping
    config = SketchRNNConfig(max_seq_len=np.int64(40), kl_weight=1)
    assert type(config.max_seq_len) is int and type(config.kl_weight) is float  # stays JSON


def _saved_config(path):
    return json.loads((path / "config.json").read_text())


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("dec_hidden", 10**7, "dec_hidden must be a whole number in [1, 8192], got 10000000"),
        ("enc_hidden", 0, "enc_hidden must be a whole number in [1, 8192], got 0"),
        ("num_mixtures", 10**6, "num_mixtures must be a whole number in [1, 1024]"),
        ("scale_factor", -2.0, "scale_factor must be a number in [1e-06, 100000]"),
        ("scale_factor", 1e308, "scale_factor must be a number in [1e-06, 100000]"),
        ("kl_weight", "NaN", "kl_weight must be in [0, 10000]"),
    ],
)
def test_a_model_config_json_with_absurd_values_is_refused_on_load(
    key, value, message, tmp_path, tiny_model, capsys
):
    folder = tmp_path / "edited"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        (folder / name).write_bytes((tiny_model / name).read_bytes())
    meta = _saved_config(folder)
    meta["config"][key] = float("nan") if value == "NaN" else value
    (folder / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match=re.escape(message)):
        load_model(folder)
    line = _refused(["sample", str(folder), "--out", str(tmp_path / "never.svg")], capsys)
    assert "config.json" in line and message in line


def test_a_checkpoint_model_config_with_absurd_sizes_is_refused():
    from sketchrnn.models.checkpoint import CheckpointError, checkpoint_model_config

    values = SketchRNNConfig(dec_hidden=16).to_dict()
    state = {"version": 2, "model_class": "SketchRNN", "model_config": values}
    assert checkpoint_model_config(state, "ckpt.pt").dec_hidden == 16
    state["model_config"] = {**values, "dec_hidden": 10**7}
    with pytest.raises(CheckpointError, match=r"ckpt\.pt: .*dec_hidden must be a whole number"):
        checkpoint_model_config(state, "ckpt.pt")


# ----------------------------------------------------------------------------- bare commands


@pytest.mark.parametrize("group", [[], ["data"]])
def test_a_bare_command_exits_2_with_the_usage(group, capsys):
    assert main(group) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: sketchrnn {' '.join(group)}".rstrip())


OTHER_COMMANDS = [
    (["embed", "one-shot", "m", "--temperature", "1e9", "--out", "x.png"], "--temperature"),
    (["embed", "one-shot", "m", "--count", "-5", "--out", "x.png"], "--count"),
    (["embed", "one-shot", "m", "--count", "0", "--out", "x.png"], "--count"),
    (["embed", "compose", "m", "--count", "0", "--out", "x.png"], "--count"),
    (["embed", "compose", "m", "--count", "1000000000", "--out", "x.png"], "--count"),
    (["embed", "arrangements", "m", "--count", "1000000000", "--out", "x.png"], "--count"),
    (["embed", "arrangements", "m", "--count", "1", "--out", "x.png"], "--count"),
    (["embed", "arrangements", "m", "--seed", "-1", "--out", "x.png"], "--seed"),
    (["fewshot", "--model", "m", "--ways", "1"], "--ways"),
    (["fewshot", "--model", "m", "--episodes", "0"], "--episodes"),
    (["fewshot", "--model", "m", "--episodes", "1000000000"], "--episodes"),
    (["fewshot", "--model", "m", "--queries", "1000000000"], "--queries"),
    (["fewshot", "--model", "m", "--conv-vae-steps", "1e30"], "--conv-vae-steps"),
    (["serve", "--port", "99999"], "--port"),
    (["data", "synthetic", "--out", "x.npz", "--per-class", "0"], "--per-class"),
    (["data", "synthetic", "--out", "x.npz", "--per-class", str(2**64)], "--per-class"),
    (["data", "synthetic", "--out", "x.npz", "--per-class", "1000000000"], "--per-class"),
    (["data", "sample", "m", "--out", "x.npz", "--per-model", "1000000000"], "--per-model"),
    (["data", "render", "f", "--out", "x.png", "--n", "1000000000"], "--n"),
    (["evaluate", "m", "--data", "x", "--batch-size", "1e12"], "--batch-size"),
    (["demo", "--seed", "-1"], "--seed"),
    (["demo", "--seconds", "1e308"], "--seconds"),
    (["complete", "m", "--input", "x", "--input-scale", "1e308", "--out", "y.png"],
     "--input-scale"),
    (["complete", "m", "--input", "x", "--input-scale", "-1", "--out", "x.png"], "--input-scale"),
    (["reconstruct", "m", "--input", "x", "--temperatures", "0.5,nan", "--out", "x.png"],
     "--temperatures"),
]  # fmt: skip


@pytest.mark.parametrize(
    "argv, flag", OTHER_COMMANDS, ids=[" ".join(a[:2] + a[-3:-2]) for a, _ in OTHER_COMMANDS]
)
def test_every_command_checks_its_numbers_the_same_way(capsys, argv, flag):
    """Temperatures, counts and seeds are checked by the shared checkers in every command, not
    only in the drawing ones: one line naming the flag, exit 2, before any work."""
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{flag}: must be" in err[0], err


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["data", "sample", "MODEL", "--out", "OUT.npz", "--per-model", "20000"], "--per-model"),
        (["data", "render", "IN.npz", "--out", "OUT.png", "--n", "20000"], "--n"),
    ],
)
def test_data_counts_over_the_limit_name_the_flag_that_lifts_it(argv, flag, tmp_path, capsys):
    out = tmp_path / "out"
    argv = [str(tmp_path / a) if a.isupper() or "." in a else a for a in argv]
    line = _refused(argv, capsys)
    assert f"{flag} 20000: at most 10,000 sketches in one command; --no-limit lifts" in line
    assert list(tmp_path.iterdir()) == [] and not out.exists()  # refused before any reading


def test_data_sample_with_no_limit_goes_past_the_limit(tmp_path, tiny_model, monkeypatch, capsys):
    monkeypatch.setattr(options, "MAX_SKETCHES", 2)
    out = tmp_path / "samples.npz"
    argv = ["data", "sample", str(tiny_model), "--out", str(out), "--per-model", "3"]
    assert "--per-model 3: at most 2 sketches" in _refused(argv, capsys)
    assert main([*argv, "--no-limit"]) == 0 and out.is_file()


# ----------------------------------------------------------------------------- inert options

INERT_CASES = [
    (["--decoder-only", "--enc-hidden", "8"], "--enc-hidden: does nothing with --decoder-only"),
    (["--decoder-only", "--z-size", "8"], "--z-size: does nothing with --decoder-only"),
    (["--decoder-only", "--kl-weight", "1"], "--kl-weight: does nothing with --decoder-only"),
    (["--decoder-only", "--kl-min", "0.1"], "--kl-min: does nothing with --decoder-only"),
    (["--decoder-only", "--kl-decay-rate", "0.9"],
     "--kl-decay-rate: does nothing with --decoder-only"),
    (["--decoder-only", "--kl-eta-min", "0.5"], "--kl-eta-min: does nothing with --decoder-only"),
    (["--hyper-hidden", "8"], "--hyper-hidden: does nothing with --cell layernorm"),
    (["--cell", "lstm", "--hyper-embed", "8"], "--hyper-embed: does nothing with --cell lstm"),
    (["--class-embed-size", "8"], "--class-embed-size: does nothing without --class-conditional"),
]  # fmt: skip


@pytest.mark.parametrize("given, message", INERT_CASES, ids=[" ".join(c[0]) for c in INERT_CASES])
def test_an_option_the_others_make_inert_is_refused_naming_both(
    given, message, capsys, tmp_path, sketch_file
):
    out = tmp_path / "run"
    argv = ["train", "--data", str(sketch_file), "--out", str(out), *given]
    line = _refused(argv, capsys)
    assert message in line
    # One line naming both options, and what to do.
    assert "--decoder-only" in line or "--cell" in line or "--class-conditional" in line
    assert "leave out" in line
    assert not out.exists()


def test_sketchembednet_refuses_hyper_options_without_the_hyper_cell(capsys, tmp_path):
    argv = ["train", "sketchembednet", "--data", str(tmp_path / "x.npz"), "--cell", "lstm"]
    line = _refused([*argv, "--hyper-hidden", "64"], capsys)
    assert "--hyper-hidden: does nothing with --cell lstm" in line


def test_options_that_do_something_are_accepted(tmp_path, sketch_file):
    """The same options where they do act: nothing refused (a parse and a config, no run)."""
    from sketchrnn.cli import build_parser
    from sketchrnn.cli.options import given_options
    from sketchrnn.cli.train import _refuse_inert_options

    for given in (
        ["--cell", "hyper", "--hyper-hidden", "8", "--hyper-embed", "4"],
        ["--class-conditional", "--class-embed-size", "8"],
        ["--z-size", "8", "--kl-min", "0.1"],
        ["--decoder-only", "--dec-hidden", "16"],
    ):
        args = build_parser().parse_args(["train", "sketch-rnn", "--data", "x", *given])
        config = SketchRNNConfig.preset(args.preset, **given_options(args, "model"))
        _refuse_inert_options(args, config)


# ----------------------------------------------------------------------------- empty paths

EMPTY_PATHS = [
    ["train", "--data", "", "--out", "RUN"],
    ["train", "--data", "IN.npz", "--out", ""],
    ["data", "pack", "IN.npz", "--out", ""],
    ["data", "pack", "", "--out", "OUT.store"],
    ["data", "download", "cat", "--to", ""],
    ["data", "convert", "IN.npz", ""],
    ["data", "render", "", "--out", "OUT.png"],
    ["data", "synthetic", "--out", ""],
    ["sample", "", "--out", "OUT.png"],
    ["sample", "MODEL", "--out", ""],
    ["complete", "MODEL", "--input", "", "--out", "OUT.png"],
    ["evaluate", "MODEL", "--data", ""],
    ["embed", "vectors", "MODEL", "", "--out", "OUT.npz"],
    ["embed", "one-shot", "MODEL", "--omniglot", "", "--out", "OUT.png"],
    ["fewshot", "--model", "MODEL", "--out", ""],
    ["export", "MODEL", ""],
    ["demo", "--out", ""],
    ["serve", ""],
]


@pytest.mark.parametrize(
    "argv", EMPTY_PATHS, ids=[" ".join(a).replace("  ", " '' ") for a in EMPTY_PATHS]
)
def test_an_empty_path_is_refused_not_read_as_the_current_folder(
    argv, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # an empty path would have meant this folder
    line = _refused(argv, capsys)
    assert "empty value; give one (for the current folder: .)" in line
    assert list(tmp_path.iterdir()) == []


def test_a_binary_class_list_is_one_line_naming_the_file(tmp_path, capsys):
    listing = tmp_path / "classes.bin"
    listing.write_bytes(bytes(range(256)) * 4)
    for argv in (
        ["data", "pack", "--list", str(listing), "--out", str(tmp_path / "x.store")],
        ["data", "download", "--list", str(listing), "--to", str(tmp_path / "cache")],
    ):
        line = _refused(argv, capsys)
        assert f"{listing}: not a text file" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["classes.bin"]
