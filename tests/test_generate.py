"""Drawing with a model: batched sampling, completion, latent-space operations, pictures."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import shared_file

from sketchrnn import generate, strokes
from sketchrnn.io.files import SketchFileError
from sketchrnn.io.formats import position_colors, write_grid
from sketchrnn.models.sketch_rnn import SketchRNN, SketchRNNConfig

MAX_LEN = 30
SCALE = 10.0


def tiny_model(conditional: bool, *, end_bias: float = -1.0, seed: int = 0) -> SketchRNN:
    """A small random model; ``end_bias`` shifts the end-of-sketch logit to set how soon its
    sketches end."""
    torch.manual_seed(seed)
    config = SketchRNNConfig.preset(
        "small",
        enc_hidden=16,
        dec_hidden=32,
        z_size=8,
        num_mixtures=3,
        cell="lstm",
        conditional=conditional,
        recurrent_dropout=0.0,
        max_seq_len=MAX_LEN,
    )
    model = SketchRNN(config).eval()
    with torch.no_grad():
        # Raw output 2 is the end-of-sketch logit (the head starts with the 3 pen logits).
        model.decoder.output.bias[2] += end_bias
    model.set_units(scale_factor=SCALE)
    return model


def a_sketch(n: int = 12, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    s3 = np.zeros((n, 3), np.float32)
    s3[:, :2] = rng.normal(0, SCALE, (n, 2)).round()
    s3[n // 2 - 1, 2] = 1
    s3[-1, 2] = 1
    return s3


def record_batch_sizes(model: SketchRNN, monkeypatch) -> list[int]:
    sizes: list[int] = []
    inner = model.decode_step

    def counting(x, state, z=None, labels=None):
        sizes.append(x.shape[0])
        return inner(x, state, z=z, labels=labels)

    monkeypatch.setattr(model, "decode_step", counting)
    return sizes


# ----------------------------------------------------------------------------- sampling


def test_batched_sampling_stops_each_sketch_at_its_own_end(monkeypatch):
    model = tiny_model(conditional=False, end_bias=1.0)
    sizes = record_batch_sizes(model, monkeypatch)
    drawn = generate.sample(model, 16, temperature=1.0, seed=3)
    lengths = sorted(len(s) for s in drawn)
    assert len(set(lengths)) > 2, "the test needs sketches of different lengths"
    # A sketch of k points took k + 1 steps (its points, then the end-of-sketch); one that
    # never ended ran max_len steps. At step t the decoder ran only for those still drawing,
    # and the loop stopped with the last one.
    steps = [min(k + 1, MAX_LEN) if k < MAX_LEN else MAX_LEN for k in lengths]
    assert len(sizes) == max(steps)
    assert sizes == [sum(s > t for s in steps) for t in range(len(sizes))]


def test_batched_greedy_equals_one_at_a_time():
    model = tiny_model(conditional=True, end_bias=0.0)
    z = 2 * torch.randn(6, model.config.z_size, generator=torch.Generator().manual_seed(1))
    together = generate.decode(model, z, temperature=0.0)
    alone = [generate.decode(model, z[i : i + 1], temperature=0.0)[0] for i in range(6)]
    assert len({len(s) for s in together}) > 1, "the test needs sketches of different lengths"
    for a, b in zip(together, alone, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_greedy_is_deterministic_and_seeded_sampling_reproducible():
    model = tiny_model(conditional=False)
    g1 = generate.sample(model, 3, temperature=0.0)
    g2 = generate.sample(model, 3, temperature=0.0)
    assert len(g1[0]) > 0
    for other in g1[1:] + g2:  # one greedy drawing: the same in every row and every call
        np.testing.assert_array_equal(other, g1[0])
    s1 = generate.sample(model, 5, temperature=0.7, seed=11)
    s2 = generate.sample(model, 5, temperature=0.7, seed=11)
    s3 = generate.sample(model, 5, temperature=0.7, seed=12)
    assert all(np.array_equal(a, b) for a, b in zip(s1, s2, strict=True))
    assert not all(a.shape == b.shape and np.array_equal(a, b) for a, b in zip(s1, s3, strict=True))


def test_samples_are_stroke3_in_pixels():
    model = tiny_model(conditional=True)
    drawn = generate.sample(model, 4, temperature=0.5, seed=0)
    model.set_units(scale_factor=1.0)  # the model's own units
    normalised = generate.sample(model, 4, temperature=0.5, seed=0)
    for s, u in zip(drawn, normalised, strict=True):
        assert s.ndim == 2 and s.shape[1] == 3 and s.dtype == np.float32
        assert set(np.unique(s[:, 2])) <= {0.0, 1.0}
        np.testing.assert_allclose(s[:, :2], u[:, :2] * SCALE, rtol=1e-5, atol=1e-5)


def test_drawing_without_a_scale_factor_is_an_error_not_a_silent_one():
    from sketchrnn.models.units import to_model_units, to_pixels

    model = tiny_model(conditional=True)
    model.config.scale_factor = None  # as a model built by hand, before any training
    for call in (
        lambda: generate.sample(model, 2, seed=0),
        lambda: generate.decode(model, torch.zeros(1, 8)),
        lambda: generate.encode(model, [a_sketch()]),
        lambda: generate.complete(model, a_sketch(5), 2),
        lambda: model.generate(2),
        lambda: to_pixels(model, [a_sketch()]),
        lambda: to_model_units(model, [a_sketch()]),
    ):
        with pytest.raises(ValueError, match="model has no scale_factor"):
            call()


def test_pixels_and_model_units_convert_through_the_scale_factor():
    from sketchrnn.models.units import to_model_units, to_pixels

    model = tiny_model(conditional=False)
    sketch = a_sketch()
    units = to_model_units(model, [sketch])[0]
    np.testing.assert_allclose(units[:, :2], sketch[:, :2] / SCALE, rtol=1e-6)
    np.testing.assert_array_equal(units[:, 2], sketch[:, 2])
    np.testing.assert_allclose(to_pixels(model, [units])[0], sketch, rtol=1e-6, atol=1e-6)
    assert units is not sketch and to_pixels(model, [units])[0] is not units


def test_scale_inputs_follows_the_input_scale_spec(tmp_path):
    from sketchrnn.models.magenta import export_magenta_json

    model = tiny_model(conditional=False)
    sketch = a_sketch()
    (same,) = generate.scale_inputs(model, [sketch], "none")
    np.testing.assert_array_equal(same, sketch)
    for spec in ("2.5", 2.5):
        (doubled,) = generate.scale_inputs(model, [sketch], spec)
        np.testing.assert_allclose(doubled[:, :2], 2.5 * sketch[:, :2])
        np.testing.assert_array_equal(doubled[:, 2], sketch[:, 2])
    # auto: 1 for models trained here, fitted to the model's typical extent for magenta.js ones
    (auto,) = generate.scale_inputs(model, [sketch], "auto", tmp_path / "model")
    np.testing.assert_array_equal(auto, sketch)
    magenta = tmp_path / "toy.gen.json"
    plain = SketchRNN(
        SketchRNNConfig.preset(
            "small", dec_hidden=16, num_mixtures=20, cell="lstm", conditional=False,
            recurrent_dropout=0.0, max_seq_len=MAX_LEN, scale_factor=SCALE,
        )
    )  # fmt: skip
    export_magenta_json(plain, magenta)
    loaded = generate.load_model(magenta)
    (fitted,) = generate.scale_inputs(loaded, [sketch], "auto", magenta)
    np.testing.assert_allclose(fitted, generate.fit_to_model_size(loaded, [sketch])[0])
    for bad in ("big", "0", "-1", "inf", float("nan"), True):
        with pytest.raises(ValueError, match="input_scale must be"):
            generate.scale_inputs(model, [sketch], bad)
    with pytest.raises(ValueError, match="sketch 0"):
        generate.scale_inputs(model, [np.zeros((3, 2))], "none")


def test_bad_arguments_are_rejected():
    dec = tiny_model(conditional=False)
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        generate.sample(dec, 2, temperature=-0.1)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        generate.sample(dec, 0)
    with pytest.raises(ValueError, match="decoder-only"):
        generate.sample(dec, 2, z=torch.zeros(2, 8))
    for call in (
        lambda: generate.reconstruct(dec, a_sketch()),
        lambda: generate.interpolate(dec, a_sketch(), a_sketch(seed=1)),
        lambda: generate.variations(dec, a_sketch(), 2),
        lambda: generate.analogy(dec, a_sketch(), a_sketch(), a_sketch()),
    ):
        with pytest.raises(ValueError, match="needs a model with an encoder"):
            call()
    vae = tiny_model(conditional=True)
    with pytest.raises(ValueError, match=r"z must be \(n, 8\)"):
        generate.decode(vae, torch.zeros(2, 5))
    with pytest.raises(ValueError, match="decode needs z"):
        generate.decode(vae, None, 2)
    with pytest.raises(ValueError, match="labels given"):
        generate.sample(vae, 2, labels=[0, 1])
    with pytest.raises(ValueError, match="more than max_seq_len"):
        generate.encode(vae, [a_sketch(MAX_LEN + 5)])


# ----------------------------------------------------------------------------- completion


@pytest.mark.parametrize("conditional", [False, True])
@pytest.mark.parametrize("z_from", ["prefix", "prior"])
def test_completion_keeps_the_prefix(conditional, z_from):
    model = tiny_model(conditional=conditional)
    prefix = a_sketch(8)
    done = generate.complete(model, prefix, 4, temperature=0.8, z_from=z_from, seed=0)
    assert len(done) == 4
    for s in done:
        assert len(s) >= len(prefix) and len(s) <= MAX_LEN
        np.testing.assert_array_equal(s[: len(prefix)], prefix)


def test_completion_continues_the_prefix_state():
    """Greedy completion of a prefix equals greedy sampling when the prefix is the model's
    own greedy start: feeding a prefix must give the same state as drawing it."""
    model = tiny_model(conditional=False, end_bias=-1.0)
    full = generate.sample(model, 1, temperature=0.0)[0]
    assert len(full) > 6
    done = generate.complete(model, full[:5], 1, temperature=0.0)[0]
    np.testing.assert_allclose(done, full, atol=1e-4)


def test_completion_rejects_bad_prefixes():
    model = tiny_model(conditional=False)
    with pytest.raises(ValueError, match="prefix: empty drawing"):
        generate.complete(model, np.zeros((0, 3)), 2)
    with pytest.raises(ValueError, match="shorter than max_len"):
        generate.complete(model, a_sketch(MAX_LEN), 2)
    with pytest.raises(ValueError, match="prefix: expected shape"):
        generate.complete(model, np.zeros((4, 2)), 2)


# ----------------------------------------------------------------------------- latent space


@pytest.mark.parametrize("method", ["slerp", "linear"])
def test_interpolation_endpoints_equal_the_inputs(method):
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(16, generator=g), torch.randn(16, generator=g)
    path = generate.interpolate_latents(a, b, 7, method)
    assert path.shape == (7, 16)
    torch.testing.assert_close(path[0], a)
    torch.testing.assert_close(path[-1], b)


def test_slerp_keeps_the_norm_between_equal_norm_vectors():
    a = torch.tensor([3.0, 0.0, 0.0])
    b = torch.tensor([0.0, 3.0, 0.0])
    path = generate.interpolate_latents(a, b, 5, "slerp")
    torch.testing.assert_close(path.norm(dim=1), torch.full((5,), 3.0))
    mid = generate.interpolate_latents(a, b, 3, "linear")[1]
    assert float(mid.norm()) < 3.0 - 0.5  # linear cuts the corner


def test_latent_operations_decode_the_expected_latents():
    model = tiny_model(conditional=True)
    g = torch.Generator().manual_seed(2)
    za, zb, zc, zd = torch.randn(4, model.config.z_size, generator=g)
    greedy = generate.decode(model, torch.stack([za, zb, zc, zd]), temperature=0.0)

    ends = generate.interpolate(model, za, zb, 4, temperature=0.0)
    np.testing.assert_allclose(ends[0], greedy[0], atol=1e-5)
    np.testing.assert_allclose(ends[-1], greedy[1], atol=1e-5)

    grid = generate.four_corner_grid(model, [za, zb, zc, zd], 3, temperature=0.0)
    assert len(grid) == 9
    for cell, k in ((0, 0), (2, 1), (6, 2), (8, 3)):
        np.testing.assert_allclose(grid[cell], greedy[k], atol=1e-5)

    same = generate.analogy(model, za, zc, zc, temperature=0.0)[0]  # a - c + c = a
    np.testing.assert_allclose(same, greedy[0], atol=1e-4)


def test_encoding_reconstruction_and_variations():
    model = tiny_model(conditional=True)
    sketch = a_sketch()
    z = generate.encode(model, [sketch, a_sketch(seed=1)])
    assert z.shape == (2, model.config.z_size)
    torch.testing.assert_close(generate.encode(model, [sketch])[0], z[0], atol=1e-5, rtol=0)
    recon = generate.reconstruct(model, sketch, [0.0, 0.5, 1.0], seed=0)
    assert len(recon) == 3
    greedy = generate.decode(model, z[:1], temperature=0.0)[0]
    np.testing.assert_allclose(recon[0], greedy, atol=1e-5)
    varied = generate.variations(model, sketch, 5, temperature=0.3, seed=0)
    assert len(varied) == 5
    assert len({s.tobytes() for s in varied}) == 5
    # The encoder sees pixels through the scale factor: a sketch and its latent agree.
    interp = generate.interpolate(model, sketch, z[0], 2, temperature=0.0)
    np.testing.assert_allclose(interp[0], interp[1], atol=1e-5)


# ----------------------------------------------------------------------------- streamed completion

PREFIX = np.array([[0, 0, 0], [10, 0, 0], [0, 10, 1], [5, 5, 0], [10, -3, 1]], np.float32)


def cell_model(cell: str, **kw) -> SketchRNN:
    """A small random model of ``cell`` that draws on (its end-of-sketch is unlikely)."""
    torch.manual_seed(0)
    config = SketchRNNConfig(
        enc_hidden=8,
        dec_hidden=16,
        z_size=4,
        num_mixtures=2,
        cell=cell,
        max_seq_len=40,
        hyper_hidden=8,
        hyper_embed=4,
        **kw,
    )
    model = SketchRNN(config)
    model.decoder.output.bias.data[:3] = torch.tensor([2.0, 0.0, -3.5])  # draw on
    model.set_units(scale_factor=10.0)
    return model.eval()


@pytest.mark.parametrize("cell", ["lstm", "layernorm", "hyper"])
@pytest.mark.parametrize("conditional", [True, False])
def test_prime_reads_a_prefix_like_single_steps(cell, conditional):
    model = cell_model(cell, conditional=conditional, num_classes=2, class_embed_size=3)
    rows = torch.from_numpy(strokes.stroke3_to_stroke5(PREFIX / 10, n_max=len(PREFIX)))
    inputs = torch.cat([torch.from_numpy(strokes.START_TOKEN)[None], rows])
    z = torch.randn(1, 4) if conditional else None
    labels = torch.tensor([1])
    with torch.no_grad():
        fast = model.read_prefix(inputs[None], model.initial_state(z, 1), z=z, labels=labels)
        slow = model.initial_state(z, 1)
        for row in inputs:
            _, slow = model.decode_step(row[None], slow, z=z, labels=labels)
    for a, b in zip(fast, slow, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("conditional", [True, False])
def test_stream_is_the_same_ending_as_complete(conditional):
    model = cell_model("layernorm", conditional=conditional)
    streamed = list(generate.complete_stream(model, PREFIX, temperature=0.4, seed=3))
    assert streamed and all(s[-1, 2] == 1 for s in streamed)
    ending = generate.complete(model, PREFIX, 1, 0.4, seed=3)[0][len(PREFIX) :]
    ending[-1, 2] = 1
    np.testing.assert_allclose(np.concatenate(streamed), ending, atol=1e-5)  # one decoding loop


def test_stream_stops_when_cancelled():
    model = cell_model("lstm", conditional=False)
    steps = []

    def cancelled():
        steps.append(1)
        return len(steps) > 5

    out = []
    with generate.stop_when(cancelled), pytest.raises(generate.DrawingCancelled):
        for stroke in generate.complete_stream(model, PREFIX, seed=0):
            out.append(stroke)
    assert len(steps) == 6 and sum(len(s) for s in out) <= 5


def test_every_drawing_stops_when_cancelled():
    """A batch drawing stops at its next step too, whichever function started it."""
    model = cell_model("lstm", conditional=True)
    steps = []

    def cancelled():
        steps.append(1)
        return len(steps) > 3

    for call in (
        lambda: generate.sample(model, 4, seed=0),
        lambda: generate.complete(model, PREFIX, 4, seed=0),
        lambda: generate.interpolate(model, PREFIX, PREFIX[:3], 5, seed=0),
    ):
        steps.clear()
        with generate.stop_when(cancelled), pytest.raises(generate.DrawingCancelled):
            call()
        assert len(steps) == 4
    assert len(generate.sample(model, 1, seed=0)) == 1  # outside the block: no check


def test_stream_refuses_a_prefix_without_room_before_the_first_stroke():
    model = cell_model("lstm", conditional=False)
    long = np.tile(PREFIX, (8, 1))  # 40 points, max_seq_len 40
    with pytest.raises(ValueError, match="room for an ending"):
        generate.complete_stream(model, long)  # at the call, not at the first next()


# ----------------------------------------------------------------------------- labels, sizes


def labelled_model() -> SketchRNN:
    torch.manual_seed(0)
    config = SketchRNNConfig(
        enc_hidden=8, dec_hidden=16, z_size=4, num_mixtures=2, cell="hyper", max_seq_len=20,
        hyper_hidden=8, hyper_embed=4, num_classes=2, class_embed_size=3,
    )  # fmt: skip
    model = SketchRNN(config)
    model.decoder.output.bias.data[:3] = torch.tensor([2.0, 0.0, -3.5])
    model.set_units(scale_factor=10.0, classes=["cat", "pig"])
    return model.eval()


def test_latent_operations_take_labels_for_a_class_conditional_model():
    model = labelled_model()
    corners = [PREFIX, PREFIX[:3], PREFIX[1:], PREFIX[:2]]
    for label in ("cat", 1):
        recon = generate.reconstruct(model, PREFIX, [0.0, 0.5], n=3, labels=label, seed=0)
        assert len(recon) == 6
        for a in recon[1:3]:  # greedy: the same three times
            np.testing.assert_array_equal(a, recon[0])
        assert len(generate.interpolate(model, PREFIX, PREFIX[:3], 4, labels=label)) == 4
        assert len(generate.four_corner_grid(model, corners, 3, labels=label)) == 9
    cat = generate.reconstruct(model, PREFIX, [0.0], labels="cat")[0]
    pig = generate.reconstruct(model, PREFIX, [0.0], labels="pig")[0]
    assert not (cat.shape == pig.shape and np.allclose(cat, pig))  # the class is drawn
    with pytest.raises(ValueError, match="class-conditional"):
        generate.interpolate(model, PREFIX, PREFIX, 2)


def test_typical_extent_of_a_class_conditional_model_and_its_bounds():
    model = labelled_model()
    extent = generate.typical_extent(model)
    assert 3 * 10.0 <= extent <= 40 * 10.0
    ends_at_once = tiny_model(conditional=False, end_bias=50.0)  # every sketch is empty
    assert generate.typical_extent(ends_at_once) == 3 * SCALE


def test_canvas_scale_maps_the_canvas_to_the_models_size():
    model = tiny_model(conditional=False)
    assert generate.canvas_scale(model, None) == 1.0
    k = generate.canvas_scale(model, (800, 500), extent=120.0)
    assert k == pytest.approx(120.0 / (generate.DRAWING_FILL * 500))
    assert generate.canvas_scale(model, (1600, 1000), extent=120.0) == pytest.approx(k / 2)
    assert generate.canvas_scale(model, (800, 500)) == pytest.approx(
        generate.typical_extent(model) / (generate.DRAWING_FILL * 500)
    )
    with pytest.raises(ValueError, match="canvas"):
        generate.canvas_scale(model, (0, 500), extent=1.0)


def test_prepare_drawing_scales_moves_and_simplifies():
    model = cell_model("lstm")
    dense = np.array([[50, 60, 0]] + [[1, 0, 0]] * 99 + [[1, 0, 1]], np.float32)
    out = generate.prepare_drawing(model, dense, 2.0)
    np.testing.assert_allclose(out, [[0, 0, 0], [200, 0, 1]])
    # a wiggly line: simplified harder (up to 8x the training data's epsilon) when too long
    eps = generate.RDP_EPSILON_UNITS * 10.0
    wiggle = np.array([[0, 0, 0]] + [[1, 1.5 * eps * (-1) ** i, 0] for i in range(60)], np.float32)
    wiggle[-1, 2] = 1
    assert len(generate.prepare_drawing(model, wiggle)) > 40
    assert len(generate.prepare_drawing(model, wiggle, max_points=40)) <= 40


def test_embed_and_imitate_with_an_image_model():
    from sketchrnn.models import SketchEmbedNet, SketchEmbedNetConfig

    torch.manual_seed(0)
    config = SketchEmbedNetConfig(
        image_size=16, z_size=8, dec_hidden=24, num_mixtures=3, cell="lstm", max_seq_len=16
    )
    model = SketchEmbedNet(config).eval()
    model.decoder.output.bias.data[:3] = torch.tensor([2.0, 0.0, -3.5])
    model.set_units(scale_factor=10.0)
    sketch = a_sketch(10)
    vectors = generate.embed(model, [sketch, a_sketch(8, seed=1)])
    assert vectors.shape == (2, 8) and vectors.dtype == np.float64
    vae = tiny_model(conditional=True)
    np.testing.assert_allclose(
        generate.embed(vae, [sketch]), generate.encode(vae, [sketch]).numpy(), atol=1e-6
    )
    drawn = generate.imitate(model, sketch, 3, seed=0)
    assert len(drawn) == 3
    lo_x, hi_x, lo_y, hi_y = strokes.bounds(sketch)
    for d in drawn:  # drawn at the size of the sketch
        x0, x1, y0, y1 = strokes.bounds(d)
        assert max(x1 - x0, y1 - y0) == pytest.approx(max(hi_x - lo_x, hi_y - lo_y), rel=1e-4)
    with pytest.raises(ValueError, match="imitation needs"):
        generate.imitate(vae, sketch)


# ----------------------------------------------------------------------------- loading, pictures


def test_load_model_reads_checkpoints_and_magenta_json(tmp_path):
    model = tiny_model(conditional=True)
    model.save_pretrained(tmp_path / "ckpt", scale_factor=SCALE)
    back = generate.load_model(tmp_path / "ckpt")
    assert back.scale_factor == pytest.approx(SCALE)
    z = torch.zeros(1, model.config.z_size)
    np.testing.assert_allclose(
        generate.decode(back, z, temperature=0.0)[0], generate.decode(model, z, temperature=0.0)[0]
    )
    magenta = generate.load_model(shared_file("magenta_models/sheep.gen.json"))
    assert not magenta.config.conditional and magenta.scale_factor == pytest.approx(63.0983)
    (tmp_path / "weights.bin").write_bytes(b"\0")
    with pytest.raises(SketchFileError, match="not a model"):
        generate.load_model(tmp_path / "weights.bin")
    with pytest.raises(SketchFileError, match="no such file"):
        generate.load_model(tmp_path / "absent")


def test_imported_magenta_model_draws_sane_sheep(tmp_path):
    model = generate.load_model(shared_file("magenta_models/sheep.gen.json"))
    drawn = generate.sample(model, 16, temperature=0.2, max_len=250, seed=0)
    assert all(np.isfinite(s).all() for s in drawn)
    # magenta.js itself leaves about 45% of its sheep unfinished after 250 points at
    # temperature 0.2 (they keep curling the wool); ours end a little more often.
    assert sum(len(s) < 250 for s in drawn) > len(drawn) / 2
    for s in drawn:
        assert len(s) >= 20
        if len(s) < 250:
            assert s[:, 2].sum() >= 3  # a finished sheep has body, head and legs
        x0, x1, y0, y1 = strokes.bounds(s)
        # Quick, Draw! drawings fill 256 px boxes: the sheep stay near that size.
        assert 50 < max(x1 - x0, y1 - y0) < 1000
    png = tmp_path / "sheep.png"
    write_grid(png, drawn[:12], ncols=4, color_by="stroke")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_save_grid_formats_and_colours(tmp_path):
    sketches = [a_sketch(seed=i) for i in range(3)]
    write_grid(tmp_path / "g.svg", sketches, color_by="position")
    svg = (tmp_path / "g.svg").read_text()
    for colour in position_colors(3):
        assert colour in svg
    write_grid(tmp_path / "g.png", sketches, color_by="none")
    assert (tmp_path / "g.png").stat().st_size > 0
    with pytest.raises(SketchFileError, match="unknown picture format"):
        write_grid(tmp_path / "g.gif", sketches)
    with pytest.raises(ValueError, match="color_by"):
        write_grid(tmp_path / "h.png", sketches, color_by="plaid")
    assert not (tmp_path / "g.gif").exists() and not (tmp_path / "h.png").exists()


def test_position_colours_blend_from_start_to_end():
    colours = position_colors(5, "#000000", "#ffffff")
    assert colours[0] == "#000000" and colours[-1] == "#ffffff"
    assert colours[2] in ("#7f7f7f", "#808080")


def test_class_conditional_labels_by_index_or_name():
    torch.manual_seed(0)
    config = SketchRNNConfig.preset(
        "small", dec_hidden=16, num_mixtures=2, conditional=False, num_classes=2, max_seq_len=8
    )
    model = SketchRNN(config)
    model.set_units(scale_factor=1.0, classes=["cat", "pig"])
    by_name = generate.sample(model, 3, temperature=0.0, labels="pig")
    by_index = generate.sample(model, 3, temperature=0.0, labels=[1, 1, 1])
    other = generate.sample(model, 1, temperature=0.0, labels=0)
    for a, b in zip(by_name, by_index, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not (by_name[0].shape == other[0].shape and np.array_equal(by_name[0], other[0]))
    with pytest.raises(ValueError, match="class-conditional"):
        generate.sample(model, 2)
    with pytest.raises(ValueError, match="unknown class 'dog'"):
        generate.sample(model, 2, labels="dog")
    with pytest.raises(ValueError, match="expected 1 or 2 labels"):
        generate.sample(model, 2, labels=[0, 1, 1])


def test_drawing_keeps_the_training_mode():
    model = tiny_model(conditional=True).train()
    generate.sample(model, 2, seed=0)
    generate.complete(model, a_sketch(5), 2, seed=0)
    assert model.training
    model.eval()
    generate.sample(model, 2, seed=0)
    assert not model.training
