"""What every model kind declares to the rest of the package (models/interface.py): the data
set of its batch type built from sketches, the losses that batch gives, its log columns,
its encoder and embedding, its units; and the Trainer writing exactly the declared columns."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from helpers import random_sketches

from sketchrnn.data import datasets_from_sketchset
from sketchrnn.io.sketchset import SketchSet
from sketchrnn.models import (
    ConvVAE,
    ConvVAEConfig,
    SketchEmbedNet,
    SketchEmbedNetConfig,
    SketchRNN,
    SketchRNNConfig,
)
from sketchrnn.models.config import UnitsConfig
from sketchrnn.models.registry import MODEL_CLASSES
from sketchrnn.run_log import log_columns
from sketchrnn.train import Trainer
from sketchrnn.train_config import TrainConfig

TINY = {
    "SketchRNN": lambda: SketchRNNConfig(
        enc_hidden=8, dec_hidden=16, z_size=4, num_mixtures=3, cell="lstm", max_seq_len=16
    ),
    "SketchRNN decoder-only": lambda: SketchRNNConfig(
        dec_hidden=16, num_mixtures=3, cell="lstm", max_seq_len=16, conditional=False
    ),
    "SketchEmbedNet": lambda: SketchEmbedNetConfig(
        image_size=16, z_size=8, dec_hidden=24, num_mixtures=3, cell="lstm", max_seq_len=16
    ),
    "ConvVAE": lambda: ConvVAEConfig(image_size=16, z_size=8, decoder_width=8),
}
KINDS = {"SketchRNN": SketchRNN, "SketchEmbedNet": SketchEmbedNet, "ConvVAE": ConvVAE}


def model_of(kind: str):
    torch.manual_seed(0)
    config = TINY[kind]()
    return KINDS[kind.split()[0]](config)


def sketch_splits(n: int = 24):
    sketches = SketchSet(random_sketches(n), ["a", "b"] * (n // 2))
    return datasets_from_sketchset(sketches, max_len=16, split_fractions=(0.75, 0.25, 0.0))


def test_every_registered_model_kind_is_covered_here():
    assert set(MODEL_CLASSES) == set(KINDS)


@pytest.mark.parametrize("kind", list(TINY))
def test_the_model_builds_its_batches_and_they_give_every_declared_term(kind):
    model = model_of(kind)
    data = type(model).dataset(model.config, sketch_splits().train)
    assert len(data) == 18
    batch = data.batch(np.arange(4))
    losses = model.losses(batch, step=0)
    declared = {**model.LOSS_COLUMNS, **model.SCHEDULE_COLUMNS, **model.PROGRESS_TERMS}
    assert set(declared.values()) <= set(losses) and "loss" in model.LOSS_COLUMNS.values()
    assert all(torch.isfinite(losses[key]) for key in declared.values())
    assert model.losses(batch, None)["loss"].shape == ()
    # Only the image models' batches carry images.
    assert hasattr(batch, "images") == model.reads_images


@pytest.mark.parametrize("kind", list(TINY))
def test_what_the_model_can_do_is_declared(kind):
    model = model_of(kind)
    expected = {
        # has_encoder, embeds_images, draws_strokes, has_stroke_units, max_seq_len
        "SketchRNN": (True, False, True, True, 16),
        "SketchRNN decoder-only": (False, False, True, True, 16),
        "SketchEmbedNet": (True, True, True, True, 16),
        "ConvVAE": (False, True, False, False, None),
    }[kind]
    found = (
        model.has_encoder,
        model.embeds_images,
        model.draws_strokes,
        model.has_stroke_units,
        model.max_seq_len,
    )
    assert found == expected


@pytest.mark.parametrize("kind", ["SketchRNN", "SketchEmbedNet", "ConvVAE"])
def test_the_posterior_reads_the_models_own_batches(kind):
    model = model_of(kind).eval()
    batch = type(model).dataset(model.config, sketch_splits().train).batch(np.arange(3))
    mu, sigma_hat = model.posterior(batch)
    assert mu.shape == sigma_hat.shape == (3, model.config.z_size)
    if model.embeds_images:  # the embedding is the posterior's mean
        torch.testing.assert_close(model.embed(batch.images), mu)


def test_a_model_without_an_encoder_or_an_embedding_says_so():
    model = model_of("SketchRNN decoder-only")
    batch = sketch_splits().train.batch(np.arange(2))
    with pytest.raises(ValueError, match="no encoder"):
        model.posterior(batch)
    with pytest.raises(TypeError, match="does not embed images"):
        model.embed(torch.zeros(2, 1, 16, 16))


@pytest.mark.parametrize("kind", ["SketchRNN", "SketchEmbedNet", "ConvVAE"])
def test_the_trainer_logs_the_columns_the_model_declares(kind, tmp_path):
    model = model_of(kind)
    cls = type(model)
    splits = sketch_splits()
    train_config = TrainConfig.for_model(
        cls,
        batch_size=6,
        max_steps=2,
        log_every=1,
        eval_every=2,
        save_every=0,
        augment=False,
        progress=False,
        out_dir=str(tmp_path),
    )
    train, valid = (cls.dataset(model.config, s) for s in (splits.train, splits.valid))
    Trainer(model, train_config, train, valid).fit()
    with open(tmp_path / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == log_columns(cls)
    assert [r["split"] for r in rows] == ["train", "train", "valid"]
    for r in rows:  # every declared term has a value on every row (the Conv-VAE's recon, kl)
        assert all(np.isfinite(float(r[c])) for c in cls.LOSS_COLUMNS)


def test_the_log_columns_keep_their_order():
    assert log_columns(SketchRNN) == [
        "step", "split", "L_R", "L_s", "L_p", "L_KL", "loss", "lr", "kl_weight", "sketches_per_s"
    ]  # fmt: skip
    assert log_columns(ConvVAE) == ["step", "split", "recon", "kl", "loss", "lr", "sketches_per_s"]


def test_presets_are_one_idea_for_every_model_config():
    for config_class in (SketchRNNConfig, SketchEmbedNetConfig):
        assert config_class.preset.__func__ is UnitsConfig.preset.__func__  # type: ignore[attr-defined]
        for name, values in config_class.PRESETS.items():
            config = config_class.preset(name, max_seq_len=40)
            assert {k: getattr(config, k) for k in values} == values
            assert config.max_seq_len == 40
    with pytest.raises(ValueError, match="unknown preset 'paper'; expected one of none"):
        ConvVAEConfig.preset("paper")
