"""The Trainer: schedules, exact resume, checkpoints and their errors, NaN handling, logs."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch

from sketchrnn.data import datasets_from_sketchset
from sketchrnn.evaluate import evaluate
from sketchrnn.io.files import SketchFileError
from sketchrnn.io.sketchset import SketchSet
from sketchrnn.models.checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint
from sketchrnn.models.sketch_rnn import SketchRNN, SketchRNNConfig, kl_weight_at, sketch_rnn_loss
from sketchrnn.train import Trainer, TrainingError
from sketchrnn.train_config import TrainConfig, learning_rate_at

# ----------------------------------------------------------------------------- fixtures


def random_sketchset(n: int = 48, seed: int = 0) -> SketchSet:
    """Short random-walk sketches of 4-10 points with 1-3 strokes, two classes, all splits."""
    rng = np.random.default_rng(seed)
    strokes, labels, splits = [], [], []
    for i in range(n):
        k = int(rng.integers(4, 11))
        s3 = np.zeros((k, 3), dtype=np.float32)
        s3[:, :2] = rng.integers(-20, 21, size=(k, 2))
        s3[rng.choice(k - 1, size=int(rng.integers(0, 3)), replace=False), 2] = 1
        s3[-1, 2] = 1
        strokes.append(s3)
        labels.append("a" if i % 2 else "b")
        splits.append("train" if i < 32 else ("valid" if i < 40 else "test"))
    return SketchSet(strokes, labels, splits)


@pytest.fixture(scope="module")
def data():
    return datasets_from_sketchset(random_sketchset(), name="random")


def tiny_model(data, seed: int = 0, **overrides) -> SketchRNN:
    settings = dict(
        enc_hidden=8,
        dec_hidden=16,
        z_size=4,
        num_mixtures=2,
        cell="layernorm",
        recurrent_dropout=0.1,
        max_seq_len=data.train.max_len,
    )
    settings.update(overrides)
    torch.manual_seed(seed)
    return SketchRNN(SketchRNNConfig(**settings))


def tiny_config(out_dir, **overrides) -> TrainConfig:
    settings = dict(
        batch_size=8,
        max_steps=6,
        eval_every=2,
        save_every=2,
        log_every=2,
        augment=True,
        drop_prob=0.1,
        progress=False,
        out_dir=str(out_dir),
        device="cpu",
    )
    settings.update(overrides)
    return TrainConfig(**settings)


def parameters(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# ----------------------------------------------------------------------------- schedules


def test_learning_rate_decays_from_lr_towards_min_lr():
    cfg = TrainConfig(lr=1e-3, lr_decay=0.9999, min_lr=1e-5)
    assert learning_rate_at(0, cfg) == pytest.approx(1e-3)
    assert learning_rate_at(1000, cfg) == pytest.approx((1e-3 - 1e-5) * 0.9999**1000 + 1e-5)
    assert learning_rate_at(10**7, cfg) == pytest.approx(1e-5)
    rates = [learning_rate_at(s, cfg) for s in range(0, 5000, 500)]
    assert all(a > b for a, b in zip(rates, rates[1:], strict=False))


def test_learning_rate_can_decay_in_stairs_as_sketchembednet():
    # Appendix B of Wang et al.: 1e-3, times 0.85 every 15k steps.
    cfg = TrainConfig(lr=1e-3, lr_decay=0.85, lr_decay_every=15_000, min_lr=0.0)
    assert learning_rate_at(14_999, cfg) == pytest.approx(1e-3)
    assert learning_rate_at(15_000, cfg) == pytest.approx(0.85e-3)
    assert learning_rate_at(44_999, cfg) == pytest.approx(1e-3 * 0.85**2)
    with pytest.raises(ValueError, match="lr_decay_every"):
        TrainConfig(lr_decay_every=0)


@pytest.mark.parametrize("mode", ["value", "norm"])
def test_gradients_are_clipped_by_value_or_by_norm(mode):
    from sketchrnn.train import _clip_gradients

    a = torch.nn.Parameter(torch.zeros(3))
    b = torch.nn.Parameter(torch.zeros(2))
    a.grad = torch.tensor([3.0, -0.5, -4.0])
    b.grad = torch.tensor([0.25, 0.0])
    norm = _clip_gradients([a, b], TrainConfig(grad_clip=1.0, grad_clip_mode=mode))
    assert float(norm) == pytest.approx(math.sqrt(9 + 0.25 + 16 + 0.0625))
    if mode == "value":  # each value into [-1, 1], the others untouched
        assert a.grad.tolist() == [1.0, -0.5, -1.0]
        assert b.grad.tolist() == [0.25, 0.0]
    else:  # the whole gradient scaled to norm 1
        total = torch.cat([a.grad, b.grad]).norm()
        assert float(total) == pytest.approx(1.0, rel=1e-4)
        assert a.grad[0] / a.grad[2] == pytest.approx(3.0 / -4.0)
    with pytest.raises(ValueError, match="grad_clip_mode"):
        TrainConfig(grad_clip_mode="global")


def test_kl_weight_anneals_from_eta_min_to_w_kl():
    cfg = SketchRNNConfig(kl_weight=0.5, kl_eta_min=0.01, kl_decay_rate=0.99995)
    assert kl_weight_at(0, cfg) == pytest.approx(0.5 * 0.01)
    assert kl_weight_at(20_000, cfg) == pytest.approx(0.5 * (1 - 0.99 * 0.99995**20_000))
    assert kl_weight_at(10**7, cfg) == pytest.approx(0.5)
    assert kl_weight_at(100, cfg) > kl_weight_at(10, cfg)


def test_training_loss_floors_kl_and_ignores_it_for_decoder_only():
    cfg = SketchRNNConfig(kl_weight=1.0, kl_min=0.2, kl_eta_min=1.0)  # eta = 1 at every step
    kl = torch.tensor(0.05, requires_grad=True)
    loss, weight = sketch_rnn_loss(torch.tensor(-1.0), kl, 0, cfg)
    assert loss.item() == pytest.approx(-1.0 + 0.2) and weight == 1.0
    loss.backward()
    assert kl.grad.item() == 0.0  # below the floor the KL term pushes no more
    decoder_only = SketchRNNConfig(kl_weight=1.0, kl_min=0.2, kl_eta_min=1.0, conditional=False)
    loss, weight = sketch_rnn_loss(torch.tensor(-1.0), kl, 0, decoder_only)
    assert loss.item() == pytest.approx(-1.0) and weight == 0.0
    # Evaluation (no step): the plain eq. 11, no floor and no annealing.
    loss, weight = sketch_rnn_loss(torch.tensor(-1.0), kl, None, SketchRNNConfig(kl_weight=0.5))
    assert loss.item() == pytest.approx(-1.0 + 0.5 * 0.05) and weight == 0.5


def test_train_config_round_trips_and_rejects_bad_values():
    cfg = TrainConfig(batch_size=7, nan_policy="stop", max_seconds=3.5)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="nan_policy"):
        TrainConfig(nan_policy="ignore")
    with pytest.raises(ValueError, match="unknown TrainConfig fields: bogus"):
        TrainConfig.from_dict({"bogus": 1})
    with pytest.raises(ValueError, match="augment"):
        TrainConfig(augment=False, drop_prob=0.1)


# ----------------------------------------------------------------------------- resume


@pytest.mark.slow
def test_resume_continues_exactly_like_an_unbroken_run(data, tmp_path):
    straight = tiny_model(data)
    Trainer(straight, tiny_config(tmp_path / "a"), data.train, data.valid).fit()

    first = tiny_model(data)
    Trainer(first, tiny_config(tmp_path / "b", max_steps=3), data.train, data.valid).fit()
    half = load_checkpoint(tmp_path / "b")["model"]
    second = tiny_model(data, seed=123)  # different initial weights: all must come from disk
    torch.manual_seed(999)  # and the global RNG must not matter either
    trainer = Trainer(second, tiny_config(tmp_path / "b"), data.train, data.valid, resume=True)
    assert trainer.step == 3
    trainer.fit()

    want, got = parameters(straight), parameters(second)
    assert want.keys() == got.keys()
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=0, atol=1e-6, msg=name)
    # The resumed run really trained: its weights moved away from the half-way checkpoint.
    assert any(not torch.equal(half[k], got[k]) for k in got)


def test_checkpoint_holds_everything_and_loads_weights_only(data, tmp_path):
    model = tiny_model(data)
    Trainer(model, tiny_config(tmp_path), data.train, data.valid).fit()
    raw = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    for key in ("model", "optimizer", "model_config", "train_config", "rng", "best_valid_loss"):
        assert key in raw
    assert raw["step"] == 6
    assert raw["model_config"]["scale_factor"] == pytest.approx(data.scale_factor)
    assert raw["model_config"]["classes"] == data.classes
    assert math.isfinite(raw["best_valid_loss"])
    assert set(raw["rng"]) >= {"torch", "numpy", "python"}

    best = SketchRNN.from_pretrained(tmp_path / "best")
    assert best.scale_factor == pytest.approx(data.scale_factor)
    assert best.classes == data.classes
    rebuilt = model_from_checkpoint(tmp_path)
    for name, value in model.state_dict().items():
        assert torch.equal(rebuilt.state_dict()[name], value)
    assert not list(tmp_path.glob("*.part")) and not list(tmp_path.glob(".best*"))


def test_resume_without_a_checkpoint_says_what_to_do(data, tmp_path):
    with pytest.raises(CheckpointError, match="without --resume"):
        Trainer(tiny_model(data), tiny_config(tmp_path), data.train, resume=True)


@pytest.mark.parametrize("damage", ["truncated", "foreign", "text"])
def test_damaged_checkpoint_is_a_one_line_error(data, tmp_path, damage):
    model = tiny_model(data)
    Trainer(model, tiny_config(tmp_path, max_steps=1), data.train).fit()
    path = tmp_path / "checkpoint.pt"
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "foreign":
        torch.save({"state_dict": model.state_dict()}, path)
    else:
        path.write_text("hello\n")
    with pytest.raises(CheckpointError) as info:
        Trainer(tiny_model(data), tiny_config(tmp_path), data.train, resume=True)
    message = str(info.value)
    assert str(path) in message and "\n" not in message


def test_resume_with_another_model_config_names_the_difference(data, tmp_path):
    Trainer(tiny_model(data), tiny_config(tmp_path, max_steps=1), data.train).fit()
    other = tiny_model(data, dec_hidden=24)
    with pytest.raises(CheckpointError, match="dec_hidden: 16 there, 24 here"):
        Trainer(other, tiny_config(tmp_path), data.train, resume=True)


def test_weights_that_do_not_fit_their_config_are_reported(data, tmp_path):
    Trainer(tiny_model(data), tiny_config(tmp_path, max_steps=1), data.train).fit()
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    state["model_config"]["dec_hidden"] = 24  # config now disagrees with the stored weights
    del state["checksum"]  # as in a checkpoint from before checksums (else: "damaged")
    torch.save(state, tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="weights do not match"):
        model_from_checkpoint(tmp_path)


# ----------------------------------------------------------------------------- non-finite


def poison_step(model, bad_steps: set[int], trainer_ref: list):
    """Make ``model.losses`` return NaN at the given trainer steps."""
    real = model.losses

    def losses(*args, **kwargs):
        out = real(*args, **kwargs)
        if trainer_ref[0].step in bad_steps:
            nan = float("nan")
            out = dict(out, L_R=out["L_R"] * nan, loss=out["loss"] * nan)
        return out

    model.losses = losses


def test_nan_step_is_skipped_counted_and_leaves_weights_alone(data, tmp_path):
    model = tiny_model(data)
    ref: list = [None]
    trainer = Trainer(model, tiny_config(tmp_path, max_steps=2, eval_every=0), data.train)
    ref[0] = trainer
    poison_step(model, {1}, ref)
    trainer.train_step()
    before = parameters(model)
    out = trainer.train_step()
    assert out["finite"] == 0.0 and trainer.skipped_steps == 1 and trainer.step == 2
    for name, value in parameters(model).items():
        assert torch.equal(value, before[name])
    assert all(torch.isfinite(v).all() for v in before.values())


def test_nan_with_stop_policy_raises_and_keeps_the_last_good_checkpoint(data, tmp_path):
    model = tiny_model(data)
    ref: list = [None]
    cfg = tiny_config(tmp_path, max_steps=6, save_every=1, eval_every=0, nan_policy="stop")
    trainer = Trainer(model, cfg, data.train)
    ref[0] = trainer
    poison_step(model, {3}, ref)
    with pytest.raises(TrainingError, match="step 3"):
        trainer.fit()
    state = load_checkpoint(tmp_path)
    assert state["step"] == 3
    assert all(torch.isfinite(v).all() for v in state["model"].values())


# ----------------------------------------------------------------------------- logs, eval


def test_log_csv_has_train_and_valid_rows(data, tmp_path):
    Trainer(tiny_model(data), tiny_config(tmp_path), data.train, data.valid).fit()
    with open(tmp_path / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    header = ["step", "split", "L_R", "L_s", "L_p", "L_KL", "loss", "lr", "kl_weight"]
    assert list(rows[0])[: len(header)] == header
    assert [int(r["step"]) for r in rows if r["split"] == "train"] == [2, 4, 6]
    assert [int(r["step"]) for r in rows if r["split"] == "valid"] == [2, 4, 6]
    assert all(float(r["sketches_per_s"]) > 0 for r in rows if r["split"] == "train")
    for r in rows:
        assert float(r["L_R"]) == pytest.approx(float(r["L_s"]) + float(r["L_p"]), abs=1e-4)


def test_tensorboard_without_the_package_is_a_clear_error(data, tmp_path):
    try:
        import torch.utils.tensorboard  # noqa: F401

        pytest.skip("tensorboard is installed")
    except ImportError:
        pass
    with pytest.raises(TrainingError, match="pip install tensorboard"):
        Trainer(tiny_model(data), tiny_config(tmp_path, tensorboard=True), data.train)


def test_batch_larger_than_the_data_is_refused(data, tmp_path):
    with pytest.raises(TrainingError, match="fewer than one batch"):
        Trainer(tiny_model(data), tiny_config(tmp_path, batch_size=1000), data.train)


def test_evaluate_is_deterministic_batch_size_free_and_leaves_rng_alone(data):
    model = tiny_model(data)
    torch.manual_seed(5)
    state = torch.get_rng_state()
    a = evaluate(model, data.valid, 3)  # the model's w_KL: 0.5
    assert torch.equal(torch.get_rng_state(), state)
    b = evaluate(model, data.valid, 3)
    assert a == b
    assert a["loss"] == pytest.approx(a["L_R"] + 0.5 * a["L_KL"])
    assert a["kl_weight"] == pytest.approx(0.5)
    assert a["L_R"] == pytest.approx(a["L_s"] + a["L_p"], abs=1e-5)
    decoder_only = tiny_model(data, conditional=False)
    c = evaluate(decoder_only, data.valid, 8)
    d = evaluate(decoder_only, data.valid, 3)  # no z noise: batching cannot change a thing
    for k in c:
        assert c[k] == pytest.approx(d[k], rel=1e-5, abs=1e-6)
    assert c["L_KL"] == 0.0


@pytest.mark.slow
def test_training_lowers_the_validation_loss(data, tmp_path):
    model = tiny_model(data, recurrent_dropout=0.0)
    before = evaluate(model, data.valid, 8)["L_R"]
    cfg = tiny_config(tmp_path, max_steps=40, eval_every=0, save_every=0, lr=1e-2)
    Trainer(model, cfg, data.train).fit()
    assert evaluate(model, data.valid, 8)["L_R"] < before - 0.1


def test_evaluate_files_uses_the_models_scale_factor_and_n_max(data, tmp_path):
    from sketchrnn.evaluate import evaluate_files
    from sketchrnn.io.npz import write_npz
    from sketchrnn.models import load_model

    model = tiny_model(data)
    Trainer(model, tiny_config(tmp_path / "run", max_steps=2), data.train, data.valid).fit()
    npz = tmp_path / "walks.npz"
    write_npz(npz, random_sketchset())
    from_checkpoint = evaluate_files(tmp_path / "run", [npz], "test", batch_size=4)
    from_pretrained = evaluate_files(tmp_path / "run" / "best", [npz], "test", batch_size=8)
    assert from_checkpoint["sketches"] == 8
    # Same data, scale factor and N_max as in training: the same figures as evaluate().
    direct = evaluate(load_model(tmp_path / "run"), data.test, 8)
    for k in ("L_R", "L_s", "L_p", "L_KL", "loss"):
        assert from_checkpoint[k] == pytest.approx(direct[k], rel=1e-5, abs=1e-6)
    assert math.isfinite(from_pretrained["loss"])
    with pytest.raises(SketchFileError, match="not a model"):
        load_model(tmp_path)


def test_trainer_gives_the_model_its_data_scale_and_classes(data, tmp_path):
    model = tiny_model(data)
    Trainer(model, tiny_config(tmp_path / "run", max_steps=1), data.train, data.valid)
    assert model.scale_factor == pytest.approx(data.train.scale_factor)
    assert model.classes == list(data.train.classes)


def test_the_progress_bar_shows_each_model_its_own_terms():
    from sketchrnn.models import SketchEmbedNet
    from sketchrnn.run_log import progress_terms as _progress_terms

    out = {"L_R": 1.0, "L_KL": 0.5, "L_pen": 0.25, "L_stroke": 0.75, "L_pixel": 0.6}
    out.update(alpha=0.05, lr=1e-3, kl_weight=0.2)
    assert _progress_terms(out, SketchRNN.PROGRESS_TERMS) == {
        "L_R": "1.000",
        "L_KL": "0.500",
        "lr": "1.00e-03",
        "klw": "0.200",
    }
    assert _progress_terms(out, SketchEmbedNet.PROGRESS_TERMS) == {
        "L_pen": "0.250",
        "L_stroke": "0.750",
        "L_pixel": "0.600",
        "alpha": "0.050",
        "lr": "1.00e-03",
    }


# ----------------------------------------------------------------------------- model interface


def test_train_config_for_model_applies_the_models_defaults():
    from sketchrnn.models import ConvVAE, SketchEmbedNet

    assert TrainConfig.for_model(SketchRNN) == TrainConfig()
    sen = TrainConfig.for_model(SketchEmbedNet, max_steps=3)
    assert (sen.batch_size, sen.lr_decay, sen.lr_decay_every, sen.augment) == (
        256,
        0.85,
        15_000,
        False,
    )
    assert sen.max_steps == 3 and sen.lr == TrainConfig().lr
    assert TrainConfig.for_model(SketchEmbedNet, batch_size=8).batch_size == 8
    vae = TrainConfig.for_model(ConvVAE)
    assert (vae.batch_size, vae.lr_decay, vae.min_lr, vae.augment) == (128, 1.0, 0.0, False)
    assert learning_rate_at(10**6, vae) == vae.lr  # a constant learning rate
    with pytest.raises(ValueError, match="unknown TrainConfig fields: bogus"):
        TrainConfig.for_model(SketchRNN, bogus=1)


def test_every_config_field_says_what_it_is_and_which_are_options():
    import dataclasses

    from sketchrnn.models import ConvVAEConfig, SketchEmbedNetConfig

    not_options = {
        TrainConfig: set(),
        SketchRNNConfig: {"scale_factor", "classes", "max_seq_len", "num_classes", "conditional"},
        SketchEmbedNetConfig: {"scale_factor", "classes", "max_seq_len", "in_channels"},
        ConvVAEConfig: {"scale_factor", "classes", "in_channels"},
    }
    for config_class, hidden in not_options.items():
        fields = dataclasses.fields(config_class)
        for f in fields:
            assert isinstance(f.metadata.get("help"), str) and f.metadata["help"], f.name
        assert {f.name for f in fields if f.metadata.get("cli", True) is False} == hidden
    choices = {f.name: f.metadata.get("choices") for f in dataclasses.fields(TrainConfig)}
    assert choices["nan_policy"] == ("skip", "stop")


def test_trainer_refuses_data_in_other_units_than_the_model(data, tmp_path):
    other_scale = tiny_model(data)
    other_scale.set_units(scale_factor=2 * data.scale_factor)
    with pytest.raises(TrainingError, match="scale factor"):
        Trainer(other_scale, tiny_config(tmp_path), data.train)
    other_classes = tiny_model(data)
    other_classes.set_units(classes=["x", "y"])
    with pytest.raises(TrainingError, match="classes"):
        Trainer(other_classes, tiny_config(tmp_path), data.train)
    same = tiny_model(data)
    same.set_units(scale_factor=data.scale_factor, classes=data.classes)
    Trainer(same, tiny_config(tmp_path), data.train)  # the same units: fine


def test_a_checkpoint_of_version_1_still_loads_and_resumes(data, tmp_path):
    # Version 1 kept the units beside the model config and the KL settings in train_config.
    Trainer(tiny_model(data, kl_weight=0.25), tiny_config(tmp_path, max_steps=2), data.train).fit()
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    config = state["model_config"]
    state["scale_factor"], state["classes"] = config.pop("scale_factor"), config.pop("classes")
    for key in ("kl_weight", "kl_min", "kl_decay_rate", "kl_eta_min"):
        state["train_config"][key] = config.pop(key)
    state["version"] = 1
    del state["checksum"]  # version 1 had none
    torch.save(state, tmp_path / "checkpoint.pt")
    model = model_from_checkpoint(tmp_path)
    assert model.scale_factor == pytest.approx(data.scale_factor)
    assert model.classes == data.classes and model.config.kl_weight == 0.25
    trainer = Trainer.from_checkpoint(tiny_config(tmp_path, max_steps=3), data.train)
    assert trainer.step == 2
    trainer.fit()
    assert load_checkpoint(tmp_path)["step"] == 3


def test_log_rows_are_kept_without_an_out_dir(data):
    model = tiny_model(data)
    config = tiny_config(None, log_every=1, max_steps=3)
    config.out_dir = None
    trainer = Trainer(model, config, data.train)
    trainer.fit()
    rows = [r for r in trainer.log_rows if r["split"] == "train"]
    assert [r["step"] for r in rows] == [1, 2, 3]
    # The model's own KL weight schedule, as the model reports it.
    for r in rows:
        assert r["kl_weight"] == pytest.approx(kl_weight_at(r["step"] - 1, model.config))
    # Only the model's own columns (SketchEmbedNet's L_pixel and alpha are not sketch-rnn's).
    assert all("L_pixel" not in r and "alpha" not in r for r in rows)


def test_an_empty_validation_split_trains_without_validation(tmp_path, capsys):
    """Drawings split n/0/0: the run trains (no validation, no best/) instead of failing
    with "cannot evaluate on an empty split"."""
    whole = random_sketchset()
    only_train = SketchSet(whole.strokes[:8], whole.labels[:8], ["train"] * 8)
    data = datasets_from_sketchset(only_train, name="train only")
    assert len(data.valid) == 0
    config = TrainConfig(batch_size=2, max_steps=2, out_dir=str(tmp_path / "run"), progress=False)
    trainer = Trainer(tiny_model(data), config, data.train, data.valid)
    try:
        result = trainer.fit()
    finally:
        trainer.close()
    assert result["step"] == 2 and result["valid"] is None
    assert "no validation sketches" in capsys.readouterr().out
    run = tmp_path / "run"
    assert (run / "checkpoint.pt").is_file() and not (run / "best").exists()
