"""The sketch-rnn model: modes and shapes, the paper's losses, generation, saving and loading."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from sketchrnn.datasets import Batch
from sketchrnn.models import ModelFileError, SketchRNN, SketchRNNConfig
from sketchrnn.nn.cells import CELL_TYPES
from sketchrnn.strokes import START_TOKEN, stroke3_to_stroke5

TINY = dict(enc_hidden=12, dec_hidden=24, z_size=6, num_mixtures=3, hyper_hidden=8, hyper_embed=4)
MODES = {
    "vae": dict(conditional=True, num_classes=0),
    "decoder_only": dict(conditional=False, num_classes=0),
    "class_vae": dict(conditional=True, num_classes=3),
    "class_decoder": dict(conditional=False, num_classes=3),
}


def _sketch(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    s3 = np.zeros((n, 3), dtype=np.float32)
    s3[:, :2] = rng.normal(size=(n, 2))
    s3[::4, 2] = 1
    s3[-1, 2] = 1
    return s3


def _batch(sketches: list[np.ndarray], n_max: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(batch, n_max + 1, 5) with the start token, and the lengths, as data.Batch has them."""
    rows = [np.vstack([START_TOKEN, stroke3_to_stroke5(s, n_max)]) for s in sketches]
    return torch.from_numpy(np.stack(rows)), torch.tensor([len(s) for s in sketches])


def _losses(model, strokes, lengths, labels=None, step=None, **options):
    """``model.losses`` of the batch ``strokes``, ``lengths`` (and ``labels``)."""
    if labels is None:
        labels = torch.zeros(len(lengths), dtype=torch.long)
    return model.losses(Batch(strokes, lengths, labels), step, **options)


def _model(cell="layernorm", mode="vae", seed=0, **overrides) -> SketchRNN:
    torch.manual_seed(seed)
    return SketchRNN(SketchRNNConfig(**{**TINY, **MODES[mode], "cell": cell, **overrides}))


LABELS = torch.tensor([0, 2, 1])


@pytest.fixture
def batch():
    return _batch([_sketch(5, 0), _sketch(10, 1), _sketch(1, 2)], n_max=10)


# ----------------------------------------------------------------------------- config


def test_config_round_trips_and_presets_match_the_paper():
    cfg = SketchRNNConfig.preset("paper", num_classes=4)
    assert (cfg.enc_hidden, cfg.dec_hidden, cfg.cell, cfg.z_size, cfg.num_mixtures) == (
        512,
        2048,
        "hyper",
        128,
        20,
    )
    assert cfg.num_classes == 4
    assert SketchRNNConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert SketchRNNConfig.preset("magenta").dec_hidden == 512
    assert SketchRNNConfig.preset("small").num_mixtures == 10


def test_config_rejects_unknown_fields_presets_and_bad_values():
    with pytest.raises(ValueError, match="unknown SketchRNNConfig fields: dropout"):
        SketchRNNConfig.from_dict({"dropout": 0.1})
    with pytest.raises(ValueError, match="unknown preset"):
        SketchRNNConfig.preset("huge")
    with pytest.raises(ValueError, match="cell must be"):
        SketchRNNConfig(cell="gru")
    with pytest.raises(ValueError, match="recurrent_dropout"):
        SketchRNNConfig(recurrent_dropout=0.9 + 0.1)


# ----------------------------------------------------------------------------- shapes, grads


@pytest.mark.parametrize("cell", CELL_TYPES)
@pytest.mark.parametrize("mode", MODES)
def test_forward_shapes_and_gradients_reach_every_parameter(cell, mode, batch):
    model = _model(cell, mode).train()
    strokes, lengths = batch
    out = model(strokes, lengths, LABELS)
    n_max, M = strokes.shape[1] - 1, TINY["num_mixtures"]
    for field in ("log_pi", "mu_x", "mu_y", "log_sigma_x", "log_sigma_y", "rho"):
        assert getattr(out.mixture, field).shape == (3, n_max, M)
    assert out.mixture.pen_logits.shape == (3, n_max, 3)
    if model.config.conditional:
        assert out.mu.shape == out.sigma_hat.shape == out.z.shape == (3, TINY["z_size"])
    else:
        assert out.mu is None and out.z is None
    losses = _losses(model, strokes, lengths, LABELS)
    assert set(losses) == {"L_s", "L_p", "L_R", "L_KL", "kl_weight", "loss"}
    assert all(v.shape == () and torch.isfinite(v) for v in losses.values())
    (losses["L_R"] + losses["L_KL"]).backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


@pytest.mark.parametrize("cell", CELL_TYPES)
def test_initial_state_parts_are_contiguous(cell):
    # cuDNN's LSTM (the plain cell on a GPU) refuses strided h0/c0 views with an error.
    model = _model(cell)
    state = model.initial_state(torch.randn(3, TINY["z_size"]), 3)
    assert len(state) == len(model.decoder.cell.state_sizes)
    assert all(part.is_contiguous() for part in state)


def test_class_conditional_model_needs_labels_and_uses_them(batch):
    model = _model(mode="class_decoder").eval()
    strokes, lengths = batch
    with pytest.raises(ValueError, match="class-conditional"):
        model(strokes, lengths)
    a = model(strokes, lengths, torch.tensor([0, 0, 0])).mixture.mu_x
    b = model(strokes, lengths, torch.tensor([1, 1, 1])).mixture.mu_x
    assert not torch.allclose(a, b)


def test_bad_batches_get_clear_errors(batch):
    model = _model()
    strokes, lengths = batch
    with pytest.raises(ValueError, match="exceeds N_max"):
        model(strokes, lengths + 20)
    with pytest.raises(ValueError, match=r"\(batch, N_max \+ 1, 5\)"):
        model(strokes[..., :3], lengths)
    with pytest.raises(ValueError, match="decoder-only"):
        _model(mode="decoder_only")(strokes, lengths, z=torch.zeros(3, TINY["z_size"]))


def test_encoder_ignores_padding(batch):
    # Packed by lengths: the same sketches padded further must encode identically.
    model = _model().eval()
    strokes, lengths = batch
    longer, _ = _batch([_sketch(5, 0), _sketch(10, 1), _sketch(1, 2)], n_max=25)
    mu, sigma_hat = model.encode(strokes, lengths)
    mu_long, sigma_hat_long = model.encode(longer, lengths)
    torch.testing.assert_close(mu, mu_long, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(sigma_hat, sigma_hat_long, rtol=1e-5, atol=1e-6)


def test_use_mean_gives_z_equal_mu_and_sampling_otherwise(batch):
    model = _model().eval()
    strokes, lengths = batch
    out = model(strokes, lengths, use_mean=True)
    torch.testing.assert_close(out.z, out.mu)
    sampled = model(strokes, lengths)
    assert not torch.allclose(sampled.z, sampled.mu)


# ----------------------------------------------------------------------------- losses


def _fixed_head(model: SketchRNN) -> None:
    """Make every step predict pi = 1, mu = 0, sigma = 1, rho = 0 and uniform pen states."""
    with torch.no_grad():
        model.decoder.output.weight.zero_()
        model.decoder.output.bias.zero_()


def test_losses_follow_the_papers_normalisation_by_n_max():
    # One sketch of 2 points, padded to N_max = 5. With the fixed head,
    # log p(dx, dy) = -log(2 pi) - (dx^2 + dy^2) / 2 and log q_k = -log 3 at every step.
    model = _model(cell="lstm", mode="decoder_only", num_mixtures=1, recurrent_dropout=0.0)
    _fixed_head(model)
    s3 = np.array([[0.5, -1.0, 0], [2.0, 0.0, 1]], dtype=np.float32)
    strokes, lengths = _batch([s3], n_max=5)
    losses = _losses(model, strokes, lengths)
    nll_points = 2 * math.log(2 * math.pi) + (0.25 + 1.0 + 4.0 + 0.0) / 2
    assert losses["L_s"].item() == pytest.approx(nll_points / 5, rel=1e-5)  # / N_max, not / 2
    assert losses["L_p"].item() == pytest.approx(math.log(3), rel=1e-5)  # all 5 steps, / 5
    assert losses["L_R"].item() == pytest.approx(nll_points / 5 + math.log(3), rel=1e-5)
    assert losses["L_KL"].item() == 0.0


@pytest.mark.parametrize("mode", list(MODES))
def test_losses_are_the_mixture_losses_of_the_models_output(mode, batch):
    # losses() reads the head's raw output (the fused loss on CPU); forward() gives the
    # mixture: the same reconstruction terms, the same gradient.
    from sketchrnn.nn.mixture import reconstruction_losses

    strokes, lengths = batch
    model = _model(mode=mode)
    torch.manual_seed(1)  # the same recurrent-dropout masks in both runs
    losses = _losses(model, strokes, lengths, LABELS, use_mean=True)
    grad = torch.autograd.grad(losses["L_R"], model.decoder.output.weight)[0]
    torch.manual_seed(1)
    out = model(strokes, lengths, LABELS if model.config.num_classes else None, use_mean=True)
    ref_s, ref_p = reconstruction_losses(out.mixture, strokes[:, 1:], lengths)
    ref_grad = torch.autograd.grad(ref_s + ref_p, model.decoder.output.weight)[0]
    torch.testing.assert_close(losses["L_s"], ref_s, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(losses["L_p"], ref_p, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-4, atol=1e-6)


def test_offset_loss_ignores_padding_but_pen_loss_counts_it():
    model = _model(cell="lstm", mode="decoder_only", num_mixtures=1, recurrent_dropout=0.0)
    _fixed_head(model)
    strokes, lengths = _batch([_sketch(3, 0)], n_max=3)
    longer, _ = _batch([_sketch(3, 0)], n_max=6)
    short_losses, long_losses = _losses(model, strokes, lengths), _losses(model, longer, lengths)
    # same points, divided by 3 then by 6
    assert long_losses["L_s"].item() == pytest.approx(short_losses["L_s"].item() / 2, rel=1e-5)
    # every step's pen loss is log 3, padding included
    assert long_losses["L_p"].item() == pytest.approx(math.log(3), rel=1e-5)


def test_losses_average_over_the_batch(batch):
    model = _model(cell="lstm", mode="decoder_only", recurrent_dropout=0.0).eval()
    strokes, lengths = batch
    together = _losses(model, strokes, lengths)
    apart = [_losses(model, strokes[i : i + 1], lengths[i : i + 1]) for i in range(3)]
    for key in ("L_s", "L_p"):
        mean = sum(a[key].item() for a in apart) / 3
        assert together[key].item() == pytest.approx(mean, rel=1e-5)


def test_kl_loss_is_equation_10(batch):
    model = _model().eval()
    strokes, lengths = batch
    torch.manual_seed(3)
    losses = _losses(model, strokes, lengths)
    mu, sigma_hat = model.encode(strokes, lengths)
    per_sketch = -(1 + sigma_hat - mu**2 - sigma_hat.exp()).sum(1) / (2 * TINY["z_size"])
    assert losses["L_KL"].item() == pytest.approx(per_sketch.mean().item(), rel=1e-5)
    assert losses["L_KL"].item() > 0


def test_the_objective_anneals_the_kl_term_at_training_steps_only(batch):
    model = _model(kl_weight=0.5, kl_min=0.2, kl_eta_min=0.01, kl_decay_rate=0.9).eval()
    strokes, lengths = batch
    for step in (None, 0, 50):
        torch.manual_seed(3)
        losses = _losses(model, strokes, lengths, step=step)
        l_r, l_kl = losses["L_R"].item(), losses["L_KL"].item()
        if step is None:  # evaluation: the plain eq. 11
            weight, kl = 0.5, l_kl
        else:  # training: annealed weight, floored KL
            weight, kl = 0.5 * (1 - 0.99 * 0.9**step), max(l_kl, 0.2)
        assert losses["kl_weight"].item() == pytest.approx(weight)
        assert losses["loss"].item() == pytest.approx(l_r + weight * kl, rel=1e-6)
    decoder = _model(mode="decoder_only")
    losses = _losses(decoder, strokes, lengths, step=10)
    assert losses["loss"].item() == losses["L_R"].item() and losses["kl_weight"].item() == 0.0


def test_units_live_in_the_config_and_are_checked():
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="scale_factor must be a number in"):
            SketchRNNConfig(scale_factor=bad)
    model = _model()
    assert model.scale_factor is None and model.classes == []
    model.set_units(scale_factor=np.float32(2.5), classes=("a", "b"))
    assert type(model.config.scale_factor) is float and model.config.scale_factor == 2.5
    assert model.scale_factor == 2.5 and model.config.classes == model.classes == ["a", "b"]
    with pytest.raises(AttributeError):
        model.scale_factor = 3.0  # one home: the config
    with pytest.raises(ValueError, match="scale_factor must be a number in"):
        model.set_units(scale_factor=float("nan"))
    assert model.scale_factor == 2.5
    assert model.has_encoder and not _model(mode="decoder_only").has_encoder
    assert _model(mode="class_vae").num_classes == 3 and model.num_classes == 0


# ----------------------------------------------------------------------------- generation


@pytest.mark.parametrize("cell", CELL_TYPES)
@pytest.mark.parametrize("mode", ["vae", "class_decoder"])
def test_decode_step_matches_the_teacher_forced_decoder(cell, mode, batch):
    model = _model(cell, mode).eval()
    strokes, lengths = batch
    z = torch.randn(3, TINY["z_size"]) if model.config.conditional else None
    whole = model(strokes, lengths, LABELS, z=z).mixture
    state = model.initial_state(z, 3)
    for t in range(strokes.shape[1] - 1):
        step, state = model.decode_step(strokes[:, t], state, z, LABELS)
        torch.testing.assert_close(step.mu_x, whole.mu_x[:, t], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(step.pen_logits, whole.pen_logits[:, t], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_generate_returns_stroke3_and_is_reproducible(mode):
    model = _model("hyper", mode, scale_factor=1.0).train()
    labels = 1 if model.config.num_classes else None

    def run(seed):
        return model.generate(4, labels=labels, temperature=0.8, max_len=15, seed=seed)

    first, again = run(5), run(5)
    assert len(first) == 4
    for a, b in zip(first, again, strict=True):
        assert a.ndim == 2 and a.shape[1] == 3 and len(a) <= 15
        assert set(np.unique(a[:, 2])) <= {0.0, 1.0}
        np.testing.assert_array_equal(a, b)
    assert model.training  # restored after sampling in eval mode


# ----------------------------------------------------------------------------- files


def test_save_and_from_pretrained_round_trip(tmp_path, batch):
    model = _model("hyper", "class_vae").eval()
    model.save_pretrained(tmp_path / "m", scale_factor=12.5, classes=["a", "b", "c"])
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "config.json",
        "model.safetensors",
    ]
    loaded = SketchRNN.from_pretrained(tmp_path / "m").eval()
    assert loaded.config == model.config
    assert loaded.scale_factor == 12.5 and loaded.classes == ["a", "b", "c"]
    strokes, lengths = batch
    expected = model(strokes, lengths, LABELS, use_mean=True)
    got = loaded(strokes, lengths, LABELS, use_mean=True)
    for a, b in zip(got.mixture, expected.mixture, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_loading_a_config_that_does_not_match_the_weights_fails_clearly(tmp_path):
    _model().save_pretrained(tmp_path)
    meta = json.loads((tmp_path / "config.json").read_text())
    meta["config"]["dec_hidden"] = 32
    (tmp_path / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match=r"model\.safetensors.*does not match config\.json"):
        SketchRNN.from_pretrained(tmp_path)


def test_a_model_saved_before_the_shared_decoder_fails_clearly(tmp_path):
    # format_version 1 kept the decoder's weights at the top level (cell.*, output.*).
    from safetensors.torch import load_file, save_file

    _model().save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    old_keys = {k.removeprefix("decoder."): v for k, v in load_file(weights).items()}
    save_file(old_keys, str(weights))
    meta = json.loads((tmp_path / "config.json").read_text())
    meta["format_version"] = 1
    meta.pop("weights_sha256", None)  # folders of then recorded no digest of their weights
    (tmp_path / "config.json").write_text(json.dumps(meta))
    with pytest.raises(
        ModelFileError, match=r"does not match config\.json: missing decoder\..*unexpected cell\."
    ):
        SketchRNN.from_pretrained(tmp_path)


def test_a_model_saved_with_its_units_beside_the_config_still_loads(tmp_path):
    # format_version 2 kept scale_factor and classes beside the config, and no KL settings.
    model = _model(mode="class_vae")
    model.save_pretrained(tmp_path)
    meta = json.loads((tmp_path / "config.json").read_text())
    for key in ("scale_factor", "classes", "kl_weight", "kl_min", "kl_decay_rate", "kl_eta_min"):
        meta["config"].pop(key)
    meta.update(format_version=2, scale_factor=12.5, classes=["a", "b", "c"])
    (tmp_path / "config.json").write_text(json.dumps(meta))
    loaded = SketchRNN.from_pretrained(tmp_path)
    assert loaded.scale_factor == 12.5 and loaded.classes == ["a", "b", "c"]
    assert loaded.config.kl_weight == SketchRNNConfig().kl_weight
    meta["format_version"] = 4
    (tmp_path / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="upgrade sketchrnn"):
        SketchRNN.from_pretrained(tmp_path)


def test_missing_truncated_and_foreign_files_fail_clearly(tmp_path):
    with pytest.raises(ModelFileError, match="no such model directory"):
        SketchRNN.from_pretrained(tmp_path / "nowhere")
    _model().save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="truncated"):
        SketchRNN.from_pretrained(tmp_path)
    weights.unlink()
    with pytest.raises(ModelFileError, match="model.safetensors: missing"):
        SketchRNN.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text('{"format": "something else"}')
    with pytest.raises(ModelFileError, match="not a SketchRNN config"):
        SketchRNN.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        SketchRNN.from_pretrained(tmp_path)


def test_a_failed_save_leaves_no_partial_files(tmp_path):
    model = _model(mode="class_vae")
    with pytest.raises(ValueError, match="2 class names"):
        model.save_pretrained(tmp_path / "m", classes=["a", "b"])
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").iterdir())


# ----------------------------------------------------------------------------- training


def test_a_tiny_model_overfits_one_batch():
    torch.manual_seed(0)
    config = SketchRNNConfig(
        enc_hidden=32, dec_hidden=64, z_size=8, num_mixtures=3, recurrent_dropout=0.0
    )
    model = SketchRNN(config)
    strokes, lengths = _batch([_sketch(12, seed) for seed in range(4)], n_max=12)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    history = []
    for _ in range(50):
        losses = _losses(model, strokes, lengths)
        loss = losses["L_R"] + 0.01 * losses["L_KL"]
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        history.append(losses["L_R"].item())
    assert all(math.isfinite(v) for v in history)
    assert history[-1] < history[0] - 1.5, history[::10]


def test_aggressive_training_on_degenerate_data_stays_finite():
    # Many exactly-zero offsets (what makes sigma collapse) and a huge learning rate: the
    # losses and gradients must stay finite at every step.
    torch.manual_seed(1)
    model = SketchRNN(SketchRNNConfig(**{**TINY, "cell": "hyper"}))
    optimizer = torch.optim.Adam(model.parameters(), lr=1.0)
    zeros = np.zeros((8, 3), dtype=np.float32)
    zeros[-1, 2] = 1
    far = _sketch(8, 0)
    far[:, :2] *= 50  # far-off points too
    strokes, lengths = _batch([zeros, far, zeros, _sketch(3, 1)], n_max=8)
    for _ in range(40):
        losses = _losses(model, strokes, lengths)
        loss = losses["L_R"] + losses["L_KL"]
        assert torch.isfinite(loss), losses
        optimizer.zero_grad()
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
        optimizer.step()
