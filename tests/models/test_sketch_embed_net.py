"""SketchEmbedNet: shapes, losses, the alpha curriculum through the Trainer, overfitting,
files, the CLI, exact resume and input errors."""

from __future__ import annotations

import csv
import zipfile

import numpy as np
import pytest
import torch
from helpers import random_sketches, shared_file

from sketchrnn.cli import main
from sketchrnn.data import datasets_from_sketchset
from sketchrnn.datasets import ImageSketchDataset
from sketchrnn.io.sketchset import SketchSet
from sketchrnn.models import SketchEmbedNet, SketchEmbedNetConfig, load_model
from sketchrnn.models.checkpoint import load_checkpoint
from sketchrnn.models.pretrained import ModelFileError
from sketchrnn.train import Trainer
from sketchrnn.train_config import TrainConfig


def tiny_config(**overrides) -> SketchEmbedNetConfig:
    values = dict(
        image_size=16, z_size=8, dec_hidden=24, num_mixtures=3, cell="lstm", max_seq_len=16
    )
    return SketchEmbedNetConfig(**{**values, **overrides})


def image_splits(n: int = 24, image_size: int = 16):
    sketches = SketchSet(random_sketches(n), ["a", "b"] * (n // 2))
    data = datasets_from_sketchset(sketches, max_len=16, split_fractions=(0.75, 0.25, 0.0))
    return (
        ImageSketchDataset(data.train, image_size),
        ImageSketchDataset(data.valid, image_size),
    )


# ----------------------------------------------------------------------------- model


@pytest.mark.parametrize("backbone", ["conv4", "resnet12"])
def test_losses_combine_as_the_paper_says(backbone):
    torch.manual_seed(0)
    model = SketchEmbedNet(tiny_config(backbone=backbone))
    train, _ = image_splits()
    batch = train.batch(np.arange(4))
    losses = model.losses(batch, step=25_000)
    assert set(losses) == {
        "L_pen", "L_stroke", "L_pixel", "L_KL", "L_R", "alpha", "kl_weight", "loss"
    }  # fmt: skip
    assert all(v.shape == () and torch.isfinite(v) for v in losses.values())
    alpha = float(losses["alpha"])
    assert alpha == pytest.approx(0.1)  # two increments of 0.05 by step 25k
    expected = losses["L_pen"] + (1 - alpha) * losses["L_stroke"] + alpha * losses["L_pixel"]
    assert losses["loss"].item() == pytest.approx(expected.item(), rel=1e-6)
    losses["loss"].backward()
    # every part is trained by the loss: the encoder through z, the decoder, the head
    assert model.encoder.head.weight.grad.abs().sum() > 0
    assert model.decoder.init_state.weight.grad.abs().sum() > 0


def test_stroke_losses_are_the_mixture_losses_of_the_models_output():
    from sketchrnn.nn.mixture import reconstruction_losses

    torch.manual_seed(0)
    model = SketchEmbedNet(tiny_config())
    train, _ = image_splits()
    batch = train.batch(np.arange(4))
    losses = model.losses(batch, step=0, use_mean=True)
    out = model(batch.images, batch.strokes, batch.lengths, use_mean=True)
    ref_stroke, ref_pen = reconstruction_losses(out.mixture, batch.strokes[:, 1:], batch.lengths)
    torch.testing.assert_close(losses["L_stroke"], ref_stroke, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(losses["L_pen"], ref_pen, rtol=1e-5, atol=1e-6)


def test_kl_weight_adds_the_kl_term():
    torch.manual_seed(0)
    model = SketchEmbedNet(tiny_config(kl_weight=0.5))
    batch = image_splits()[0].batch(np.arange(4))
    torch.manual_seed(1)
    losses = model.losses(batch, step=0, use_mean=True)
    expected = losses["L_pen"] + losses["L_stroke"] + 0.5 * losses["L_KL"]
    assert losses["loss"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_pixel_loss_carries_no_gradient_while_alpha_is_zero():
    model = SketchEmbedNet(tiny_config())
    batch = image_splits()[0].batch(np.arange(4))
    losses = model.losses(batch, step=0)
    assert float(losses["alpha"]) == 0.0 and not losses["L_pixel"].requires_grad
    losses = model.losses(batch, step=10_000)
    assert losses["L_pixel"].requires_grad


def test_alpha_curriculum_follows_the_trainer_step(tmp_path):
    torch.manual_seed(0)
    model = SketchEmbedNet(tiny_config(alpha_every=2, alpha_increment=0.25, alpha_max=0.5))
    train, valid = image_splits()
    cfg = TrainConfig(
        batch_size=6, max_steps=6, log_every=1, eval_every=0, augment=False, progress=False,
        out_dir=str(tmp_path),
    )  # fmt: skip
    Trainer(model, cfg, train, valid).fit()
    with open(tmp_path / "log.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "train"]
    # the row of step k + 1 is the step-k update: alpha 0, 0, 0.25, 0.25, 0.5 (the cap), 0.5
    assert [float(r["alpha"]) for r in rows] == [0.0, 0.0, 0.25, 0.25, 0.5, 0.5]
    assert all(float(r["L_pixel"]) > 0 and r["L_s"] and r["L_p"] for r in rows)
    valid_rows = [r for r in csv.DictReader(open(tmp_path / "log.csv")) if r["split"] == "valid"]
    assert float(valid_rows[-1]["alpha"]) == 0.5  # validation scores the final objective


def test_a_tiny_model_overfits_a_handful_of_images():
    torch.manual_seed(0)
    model = SketchEmbedNet(tiny_config(alpha_every=1, alpha_max=0.2, alpha_increment=0.2))
    batch = image_splits()[0].batch(np.arange(4))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    history = []
    for step in range(60):
        losses = model.losses(batch, step=step)
        optimizer.zero_grad()
        losses["loss"].backward()
        optimizer.step()
        history.append(losses["loss"].item())
    # BatchNorm in train mode, sampled z: compare averages, not single steps
    assert np.mean(history[-5:]) < 0.4 * np.mean(history[:5])


def test_embedding_is_deterministic_and_independent_of_the_batch():
    model = SketchEmbedNet(tiny_config()).train()
    images = image_splits()[0].batch(np.arange(5)).images
    together = model.embed(images)
    alone = model.embed(images[2:3])
    assert together.shape == (5, 8)
    assert torch.allclose(together[2], alone[0], atol=1e-5)
    assert torch.equal(model.embed(images), together)
    assert model.training  # embed restores the mode


def test_generate_draws_one_sketch_per_image():
    torch.manual_seed(0)
    model = SketchEmbedNet(tiny_config(scale_factor=1.0))
    images = image_splits()[0].batch(np.arange(3)).images
    drawn = model.generate(images, temperature=0.5, max_len=10, seed=0)
    assert len(drawn) == 3
    assert all(s.ndim == 2 and s.shape[1] == 3 and len(s) <= 10 for s in drawn)
    again = model.generate(images, temperature=0.5, max_len=10, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(drawn, again, strict=True))


@pytest.mark.parametrize(
    "shape, message",
    [((2, 1, 28, 28), r"\(batch, 1, 16, 16\)"), ((2, 3, 16, 16), r"\(batch, 1, 16, 16\)")],
)
def test_wrong_image_size_or_channels_is_a_clear_error(shape, message):
    model = SketchEmbedNet(tiny_config())
    batch = image_splits()[0].batch(np.arange(2))
    with pytest.raises(ValueError, match=message):
        model.losses(batch._replace(images=torch.zeros(shape)))
    with pytest.raises(ValueError, match=message):
        model.embed(torch.zeros(shape))


def test_empty_images_are_a_clear_error():
    model = SketchEmbedNet(tiny_config())
    images = image_splits()[0].batch(np.arange(4)).images.clone()
    assert model.embed(images).shape == (4, model.config.z_size)
    images[1] = 0.0
    images[3] = 0.0
    with pytest.raises(ValueError, match=r"empty image \(no ink\) at batch index 1, 3"):
        model.embed(images)
    with pytest.raises(ValueError, match="empty image"):
        model.generate(images[1:2], max_len=5)


def test_config_presets_and_validation():
    paper = SketchEmbedNetConfig.preset("paper")
    assert (paper.z_size, paper.dec_hidden, paper.cell, paper.hyper_embed) == (
        256,
        1024,
        "hyper",
        64,
    )
    assert paper.num_mixtures == 30 and paper.max_seq_len == 64 and paper.raster_size == 28
    assert SketchEmbedNetConfig.from_dict(paper.to_dict()) == paper
    with pytest.raises(ValueError, match="backbone"):
        SketchEmbedNetConfig(backbone="vgg")
    with pytest.raises(ValueError, match="alpha_max"):
        SketchEmbedNetConfig(alpha_max=1.5)
    with pytest.raises(ValueError, match="unknown SketchEmbedNetConfig fields: bogus"):
        SketchEmbedNetConfig.from_dict({**paper.to_dict(), "bogus": 1})


# ----------------------------------------------------------------------------- files


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = SketchEmbedNet(tiny_config(backbone="resnet12")).eval()
    model.save_pretrained(tmp_path / "m", scale_factor=2.5, classes=["a", "b"])
    for loaded in (SketchEmbedNet.from_pretrained(tmp_path / "m"), load_model(tmp_path / "m")):
        assert isinstance(loaded, SketchEmbedNet) and loaded.config == model.config
        assert loaded.scale_factor == 2.5 and loaded.classes == ["a", "b"]
        images = image_splits()[0].batch(np.arange(3)).images
        assert torch.equal(loaded.embed(images), model.embed(images))


def test_loading_a_mismatched_or_foreign_model_says_why(tmp_path):
    SketchEmbedNet(tiny_config()).save_pretrained(tmp_path / "m")
    config = (tmp_path / "m" / "config.json").read_text()
    (tmp_path / "m" / "config.json").write_text(config.replace('"z_size": 8', '"z_size": 9'))
    with pytest.raises(ModelFileError, match="does not match config.json"):
        load_model(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text('{"format": "something else"}')
    with pytest.raises(ModelFileError, match="not a SketchEmbedNet config"):
        SketchEmbedNet.from_pretrained(tmp_path / "m")


def test_a_model_saved_with_its_units_beside_the_config_still_loads(tmp_path):
    import json

    SketchEmbedNet(tiny_config()).save_pretrained(tmp_path)
    meta = json.loads((tmp_path / "config.json").read_text())
    meta["config"].pop("scale_factor"), meta["config"].pop("classes")
    meta.update(format_version=2, scale_factor=2.5, classes=["a", "b"])
    (tmp_path / "config.json").write_text(json.dumps(meta))
    loaded = load_model(tmp_path)
    assert isinstance(loaded, SketchEmbedNet)
    assert loaded.scale_factor == 2.5 and loaded.classes == ["a", "b"]


def test_the_model_interface_and_the_units_the_trainer_gives_it():
    model = SketchEmbedNet(tiny_config())
    assert model.has_encoder and model.num_classes == 0
    assert not hasattr(model.config, "conditional") and not hasattr(model.config, "num_classes")
    train, _ = image_splits()
    config = TrainConfig.for_model(SketchEmbedNet, batch_size=6, progress=False, out_dir=None)
    assert config.augment is False and config.lr_decay_every == 15_000
    Trainer(model, config, train)
    assert model.scale_factor == pytest.approx(train.scale_factor)
    assert model.classes == train.classes


def test_resume_is_exact(tmp_path):
    train, valid = image_splits()

    def run(out, steps, resume=False):
        cfg = TrainConfig(
            batch_size=6, max_steps=steps, eval_every=0, save_every=0, log_every=0,
            augment=False, progress=False, out_dir=str(out),
        )  # fmt: skip
        if resume:
            return Trainer.from_checkpoint(cfg, train, valid)
        torch.manual_seed(0)
        model = SketchEmbedNet(tiny_config(recurrent_dropout=0.1, alpha_every=1))
        return Trainer(model, cfg, train, valid)

    straight = run(tmp_path / "a", 4)
    straight.fit()
    run(tmp_path / "b", 2).fit()
    resumed = run(tmp_path / "b", 4, resume=True)
    assert isinstance(resumed.model, SketchEmbedNet) and resumed.step == 2
    resumed.fit()
    for (name, a), b in zip(
        straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    assert load_checkpoint(tmp_path / "b")["model_class"] == "SketchEmbedNet"


def omniglot_subset(tmp_path, count: int = 48):
    """The first ``count`` drawings of a shared Omniglot background strokes zip, as a zip."""
    source = shared_file("omniglot/strokes_background_small1.zip")
    out = tmp_path / "omniglot_subset.zip"
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(out, "w") as zout:
        members = sorted(n for n in zin.namelist() if n.endswith(".txt"))[:count]
        for name in members:
            zout.writestr(name, zin.read(name))
    return out


def test_cli_trains_sketchembednet_on_omniglot(tmp_path, capsys):
    data = omniglot_subset(tmp_path)
    out = tmp_path / "run"
    argv = [
        "train", "--model", "sketchembednet", "--data", str(data), "--out", str(out),
        "--preset", "small", "--cell", "lstm", "--image-size", "16", "--rdp-epsilon", "2",
        "--steps", "3", "--batch-size", "8", "--eval-every", "2", "--alpha-max", "0.25",
    ]  # fmt: skip
    assert main(argv) == 0
    assert "trained 3 steps" in capsys.readouterr().out
    for path in (out, out / "checkpoint.pt", out / "best"):
        model = load_model(path)
        assert isinstance(model, SketchEmbedNet)
        assert model.config.image_size == 16 and model.config.alpha_max == 0.25
        assert model.scale_factor and len(model.classes) >= 2
    # resuming with the same arguments continues the run
    assert main([*argv[:-6], "--steps", "4", "--batch-size", "8", "--resume"]) == 0
    assert load_checkpoint(out)["step"] == 4


def test_cli_defaults_follow_the_papers_appendix_b(tmp_path, capsys):
    data = omniglot_subset(tmp_path, 24)
    argv = ["train", "--model", "sketchembednet", "--data", str(data), "--rdp-epsilon", "2"]
    # batch 256 by default: a small data set is refused with the number in the message
    assert main([*argv, "--out", str(tmp_path / "r")]) == 2
    assert "fewer than one batch of 256" in capsys.readouterr().err
    # learning rate x0.85 every 15k steps
    out = tmp_path / "r2"
    assert main([*argv, "--out", str(out), "--batch-size", "8", "--steps", "1",
                 "--preset", "small", "--image-size", "16"]) == 0  # fmt: skip
    config = load_checkpoint(out)["train_config"]
    assert (config["lr_decay"], config["lr_decay_every"]) == (0.85, 15_000)
    assert config["grad_clip_mode"] == "value"


def test_cli_refuses_sketch_rnn_only_options(tmp_path, capsys):
    data = omniglot_subset(tmp_path, 24)
    argv = ["train", "--model", "sketchembednet", "--data", str(data), "--decoder-only"]
    assert main([*argv, "--rdp-epsilon", "2", "--out", str(tmp_path / "r")]) == 2
    assert "sketch-rnn options" in capsys.readouterr().err


# ----------------------------------------------------------------------------- DDP


def _ddp_worker(rank: int, port: int, tmp: str) -> None:
    import os

    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2",
        LOCAL_RANK=str(rank),
    )  # fmt: skip
    torch.set_num_threads(1)
    train, _ = image_splits()
    torch.manual_seed(rank)  # different starting weights: DDP must broadcast rank 0's
    model = SketchEmbedNet(tiny_config(alpha_every=1))
    cfg = TrainConfig(
        batch_size=8, max_steps=2, eval_every=0, save_every=0, log_every=1, augment=False,
        progress=False, out_dir=f"{tmp}/out{rank}", device="cpu",
    )  # fmt: skip
    trainer = Trainer(model, cfg, train)
    assert trainer.local_batch_size == 4
    trainer.fit()
    torch.save(model.state_dict(), f"{tmp}/rank{rank}.pt")
    trainer.close()


@pytest.mark.slow
def test_ddp_ranks_train_identical_weights(tmp_path):
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(port, str(tmp_path)), nprocs=2, join=True)
    zero = torch.load(tmp_path / "rank0.pt", weights_only=True)
    one = torch.load(tmp_path / "rank1.pt", weights_only=True)
    # Parameters agree; BatchNorm running statistics are each rank's own (plain DDP: rank 0
    # broadcasts them before each forward, and rank 0's are the ones saved).
    params = {name for name, _ in SketchEmbedNet(tiny_config()).named_parameters()}
    torch.manual_seed(0)  # rank 0's starting weights
    start = SketchEmbedNet(tiny_config(alpha_every=1)).state_dict()
    for name in params:
        assert torch.equal(zero[name], one[name]), name
    assert any(not torch.equal(zero[k], start[k]) for k in params)  # and they did train
    assert (tmp_path / "out0" / "checkpoint.pt").exists() and not (tmp_path / "out1").exists()


def test_cli_skip_invalid_reaches_the_image_loader(tmp_path, capsys):
    rng = np.random.default_rng(0)
    lines = []
    for _ in range(12):
        xs, ys = rng.integers(0, 255, size=(2, 5)).tolist()
        lines.append(f'{{"word": "cat", "drawing": [[{xs}, {ys}]]}}')
    data = tmp_path / "cats.ndjson"
    data.write_text("\n".join([*lines[:6], '{"word": oops}', *lines[6:]]))
    argv = ["train", "--model", "sketchembednet", "--data", str(data), "--preset", "small"]
    argv += ["--cell", "lstm", "--image-size", "16", "--steps", "1", "--batch-size", "4"]
    argv += ["--out", str(tmp_path / "run")]
    assert main(argv) == 2
    assert "cats.ndjson" in capsys.readouterr().err
    assert main([*argv, "--skip-invalid"]) == 0
    assert "skipped 1 invalid drawings" in capsys.readouterr().err


@pytest.mark.parametrize("training", [False, True])
def test_read_prefix_reaches_the_state_of_single_steps(training):
    torch.manual_seed(0)
    model = SketchEmbedNet(tiny_config()).train(training)
    inputs = torch.randn(2, 7, 5)
    z = torch.randn(2, model.config.z_size)
    with torch.no_grad():
        torch.manual_seed(1)
        fast = model.read_prefix(inputs, model.initial_state(z, 2), z=z)
        torch.manual_seed(1)
        slow = model.initial_state(z, 2)
        for t in range(inputs.shape[1]):
            _, slow = model.decode_step(inputs[:, t], slow, z=z)
    for a, b in zip(fast, slow, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="needs z"):
        model.eval().read_prefix(inputs, model.initial_state(z, 2), z=None)
