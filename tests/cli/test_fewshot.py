"""``sketchrnn fewshot``: a table for the model and every baseline on the same seeded episodes,
and clear errors. Runs on a tiny fake Omniglot folder and a tiny untrained SketchEmbedNet."""

from __future__ import annotations

import csv

import pytest
from helpers import save_tiny_model, write_fake_omniglot, write_fake_runs

from sketchrnn import fewshot
from sketchrnn.cli import main


@pytest.fixture
def setup(tmp_path):
    write_fake_omniglot(tmp_path / "omniglot")
    save_tiny_model(tmp_path / "model")
    return tmp_path


def fewshot_args(tmp_path, *extra):
    return [
        "fewshot",
        "--model",
        str(tmp_path / "model"),
        "--omniglot",
        str(tmp_path / "omniglot"),
        "--image-size",
        "16",
        "--episodes",
        "20",
        "--ways",
        "5",
        "--shots",
        "1",
        "2",
        "--queries",
        "5",
        *extra,
    ]


@pytest.mark.slow
def test_table_has_every_embedder_and_replays_with_the_seed(setup, capsys):
    args = fewshot_args(
        setup, "--baselines", "conv-vae,random-conv4,pixels", "--conv-vae-steps", "2"
    )
    out_csv = setup / "table.csv"
    assert main([*args, "--out", str(out_csv)]) == 0
    first = capsys.readouterr().out
    for name in ("sketchembednet", "conv-vae", "random-conv4", "pixels"):
        assert f"| {name} |" in first
    assert "5-way 1-shot" in first and "5-way 2-shot" in first
    assert "over 20 episodes" in first
    with open(out_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 * 2
    assert all(0.0 <= float(r["accuracy"]) <= 1.0 and r["episodes"] == "20" for r in rows)

    assert main([*args]) == 0
    again = capsys.readouterr().out
    fingerprints = [line for line in first.splitlines() if "fingerprint" in line]
    assert len(fingerprints) == 2
    assert fingerprints == [line for line in again.splitlines() if "fingerprint" in line]

    assert main([*fewshot_args(setup, "--baselines", "pixels", "--seed", "1")]) == 0
    other = [line for line in capsys.readouterr().out.splitlines() if "fingerprint" in line]
    assert other != fingerprints


def test_every_embedder_is_scored_on_the_same_episodes(setup, monkeypatch, capsys):
    seen = []
    real = fewshot.evaluate_embedded

    def recording(embedded, episodes, *args, **kwargs):
        seen.append(fewshot.episodes_fingerprint(episodes))
        return real(embedded, episodes, *args, **kwargs)

    monkeypatch.setattr(fewshot, "evaluate_embedded", recording)
    assert main(fewshot_args(setup, "--baselines", "random-conv4,pixels")) == 0
    printed = [
        line.rsplit(" ", 1)[-1]
        for line in capsys.readouterr().out.splitlines()
        if "fingerprint" in line
    ]
    # 3 embedders x 2 settings, in embedder order: each setting's episodes equal across all.
    assert len(seen) == 6
    assert seen[0::2] == [printed[0]] * 3 and seen[1::2] == [printed[1]] * 3


def test_conv_vae_from_a_saved_folder(setup, capsys):
    from sketchrnn.models.conv_vae import ConvVAE, ConvVAEConfig

    ConvVAE(ConvVAEConfig(image_size=16, z_size=8)).save_pretrained(setup / "vae")
    assert main(fewshot_args(setup, "--baselines", f"conv-vae:{setup / 'vae'}")) == 0
    assert "| conv-vae |" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--ways", "30"], "needs 30 classes"),
        (["--shots", "19"], "at least 24 examples"),
        (["--image-size", "28"], "pass --image-size 16"),
        (["--baselines", "resnet"], "unknown baseline 'resnet'"),
        (["--baselines", "pixels:/x"], "takes no path"),
        (["--baselines", "conv-vae:/no/such/vae"], "no such Conv-VAE directory"),
    ],
)
def test_bad_requests_are_one_line_errors(setup, capsys, extra, message):
    args = fewshot_args(setup, "--baselines", "pixels")
    # A later --ways/--shots/--image-size/--baselines overrides the earlier one.
    assert main([*args, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_conv_vae_can_learn_from_the_models_own_stroke_files(setup, capsys):
    from sketchrnn.io.formats import write_sketches
    from sketchrnn.synthetic import synthetic_sketchset

    shapes = setup / "shapes.npz"
    write_sketches(shapes, synthetic_sketchset(20, classes=["circle", "square"]))
    args = fewshot_args(setup, "--baselines", "conv-vae", "--conv-vae-steps", "2")
    vae_dir = setup / "vae_kept"
    assert main([*args, "--conv-vae-data", str(shapes), "--conv-vae-out", str(vae_dir)]) == 0
    captured = capsys.readouterr()
    assert f"on images of {shapes}" in captured.err
    assert "| conv-vae |" in captured.out
    # the kept baseline replays the same row from its folder
    row = next(line for line in captured.out.splitlines() if line.startswith("| conv-vae |"))
    assert main(fewshot_args(setup, "--baselines", f"conv-vae:{vae_dir}")) == 0
    assert row in capsys.readouterr().out


def test_the_original_one_shot_runs_as_a_split(setup, capsys):
    write_fake_runs(setup / "omniglot" / "all_runs.zip", n_runs=3)
    args = fewshot_args(setup, "--baselines", "pixels", "--split", "all-runs")
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "3 original one-shot runs" in out and "20-way 1-shot" in out
    pixels = next(line for line in out.splitlines() if line.startswith("| pixels |"))
    assert "100.00 ± 0.00" in pixels  # each test image is a near copy of its training image
    assert "over 3 episodes" in out
