"""``sketchrnn evaluate`` for every model kind: the model builds its own batches from the files
(images for SketchEmbedNet and the Conv-VAE), and the table shows the model's own loss terms.
(sketch-rnn's figures, magenta.js models: tests/test_evaluate_magenta.py.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import shared_file

from sketchrnn.cli import main
from sketchrnn.data import load_datasets
from sketchrnn.datasets import SketchDataset
from sketchrnn.evaluate import evaluate, evaluate_files_by_class
from sketchrnn.io.npz import write_npz
from sketchrnn.models import ConvVAE, ConvVAEConfig, load_model
from sketchrnn.synthetic import synthetic_sketchset


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    """Synthetic shapes (with their own train/valid/test splits) as a sketch-rnn .npz."""
    path = tmp_path_factory.mktemp("data") / "shapes.npz"
    write_npz(path, synthetic_sketchset(20, seed=3, classes=("circle", "square", "triangle")))
    return path


@pytest.fixture(scope="module")
def conv_vae(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("vae") / "vae"
    ConvVAE(ConvVAEConfig(image_size=16, z_size=8, decoder_width=8)).save_pretrained(path)
    return path


def test_a_sketchembednet_is_evaluated_on_the_images_of_the_sketches(shapes):
    report = evaluate_files_by_class("shapes_omniglot_sen", [shapes], "test")
    assert report.columns == {
        "L_R": "L_R", "L_s": "L_stroke", "L_p": "L_pen", "L_KL": "L_KL", "loss": "loss",
        "L_pixel": "L_pixel",
    }  # fmt: skip
    assert report.total["sketches"] == 3 * 2 and set(report.per_class) == {
        "circle", "square", "triangle"
    }  # fmt: skip
    for result in (report.total, *report.per_class.values()):
        assert all(np.isfinite(result[key]) for key in report.columns.values())
        # the final objective: L_pen + (1 - alpha_max) L_stroke + alpha_max L_pixel
        expected = result["L_pen"] + 0.5 * result["L_stroke"] + 0.5 * result["L_pixel"]
        assert result["loss"] == pytest.approx(expected, rel=1e-5)


def test_a_conv_vae_is_evaluated_on_images_in_the_datas_own_units(shapes, conv_vae):
    report = evaluate_files_by_class(conv_vae, [shapes], "valid")
    assert report.columns == {"recon": "recon", "kl": "kl", "loss": "loss"}
    assert report.total["sketches"] == 6 and report.dropped_too_long == 0
    assert report.total["loss"] == pytest.approx(report.total["recon"] + report.total["kl"])
    # a model of pixels has no scale factor: the data keep their own (std 1 after normalising)
    assert report.total["offset_std_ratio"] == pytest.approx(1.0, rel=0.2)


def test_the_per_file_figures_are_the_models_losses_over_its_own_batches(shapes, conv_vae):
    model = load_model(conv_vae)
    report = evaluate_files_by_class(conv_vae, [shapes], "test", batch_size=4)
    test = load_datasets([shapes], max_len=10**6).test
    sketches = SketchDataset(test.sketches, test.labels, test.classes, 1.0, test.max_len)
    direct = evaluate(model, model.dataset(model.config, sketches), batch_size=6)
    assert report.total["loss"] == pytest.approx(direct["loss"], rel=1e-5)


@pytest.mark.parametrize("model", ["shapes_omniglot_sen", "shapes_vae", "vae"])
def test_the_command_prints_the_models_own_terms(model, shapes, conv_vae, capsys):
    name = str(conv_vae) if model == "vae" else model
    assert main(["evaluate", name, "--data", str(shapes)]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("class"))
    terms = header.split()[1:-2]
    assert (
        terms
        == {
            "shapes_omniglot_sen": ["L_R", "L_s", "L_p", "L_KL", "loss", "L_pixel"],
            "shapes_vae": ["L_R", "L_s", "L_p", "L_KL", "loss"],
            "vae": ["recon", "kl", "loss"],
        }[model]
    )
    assert out.count("\n") >= 5 and "all" in out  # three classes and all


@pytest.mark.slow
def test_the_issues_command_evaluates_the_builtin_sketchembednet_on_omniglot(capsys):
    # `sketchrnn evaluate shapes_omniglot_sen --data omniglot.npz` ended in a traceback
    # ('Batch' object has no attribute 'images').
    data = shared_file("sketchrnn/omniglot.npz")
    assert main(["evaluate", "shapes_omniglot_sen", "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert "split test: 958 sketches" in out and "L_pixel" in out
