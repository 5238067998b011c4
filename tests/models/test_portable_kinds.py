"""Every kind of model ``load_model`` opens, exported as a portable model and run by onnxruntime
(CPU) beside PyTorch over whole held-out sketches (teacher-forced), batch 1 and batch 3 of
different lengths:

* every step from PyTorch's state: the mixture parameters, pen logits and new state to 1e-5
  (relative where a value is above 1): the graphs compute PyTorch's function;
* the encoders' outputs to 1e-5;
* whole sequences, onnxruntime carrying its own state: float32 rounding accumulates over the
  steps in both runtimes (and in PyTorch's two loops alike), so onnxruntime must be about as
  close to a float64 run of the model as PyTorch's float32 run is (within 4x, or 1e-5).
  Measured, against PyTorch / PyTorch float32 against float64: the sheep model on held-out
  sheep 2.7e-5 / 1.5e-5, a random HyperLSTM 3e-5 / 4.4e-5, the bear model on sheep
  sketches 8.9e-4 / 2.4e-4;
* ``read`` against as many ``step`` calls of onnxruntime: 1e-5 (the same nodes).

Tiny models for the cells x conditioning matrix (the fast suite keeps two of them); the real
magenta.js model, the official models by name and the built-in models are slow tests."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from helpers import SHARED_DATA, FolderServer, shared_file

from sketchrnn import strokes
from sketchrnn.cli import main
from sketchrnn.datasets import render_images
from sketchrnn.io.npz import read_npz
from sketchrnn.models import (
    SketchEmbedNet,
    SketchEmbedNetConfig,
    SketchRNN,
    SketchRNNConfig,
    load_model,
)
from sketchrnn.models.builtin import builtin_models
from sketchrnn.models.magenta import export_magenta_json
from sketchrnn.models.onnx_export import export_portable
from sketchrnn.models.portable import PortableModel
from sketchrnn.models.units import to_model_units

TOLERANCE = 1e-5  # one step from the same state; the encoders; read against steps
FLOAT64_RATIO = 4.0  # whole sequences: onnxruntime's distance to float64 / PyTorch float32's
START = np.array([0, 0, 1, 0, 0], dtype=np.float32)


def held_out(dataset: str = "sketchrnn/aaron_sheep.npz", n: int = 3) -> list[np.ndarray]:
    """``n`` sketches of the test split of a shared data set, in pixels, of different lengths."""
    sketches = [s for s, split in zip(*_test_split(dataset), strict=True) if split == "test"]
    by_length = sorted(sketches, key=len)
    picks = np.linspace(0, len(by_length) - 1, n).round().astype(int)
    return [by_length[i] for i in picks]


def _test_split(dataset: str):
    sketch_set = read_npz(shared_file(dataset))
    return sketch_set.strokes, sketch_set.splits


def difference(got: np.ndarray, expected) -> float:
    """Largest ``|got - expected| / max(1, |expected|)``."""
    expected = np.asarray(expected.detach() if torch.is_tensor(expected) else expected)
    assert got.shape == expected.shape, f"shape {got.shape} != {expected.shape}"
    error = np.abs(got - expected.astype(got.dtype)) / np.maximum(np.abs(expected), 1.0)
    return float(error.max()) if error.size else 0.0


def close(got: np.ndarray, expected, what: str, tolerance: float = TOLERANCE) -> float:
    """Assert :func:`difference` ``<= tolerance``; return it."""
    worst = difference(got, expected)
    assert worst <= tolerance, f"{what}: onnxruntime differs from PyTorch by {worst:.3g}"
    return worst


def decoder_inputs(model, sketches: list[np.ndarray]) -> tuple[torch.Tensor, list[int]]:
    """Start token + stroke-5 rows in model units ``(batch, T, 5)`` (padded), and the number of
    real rows of each (start token and end row included)."""
    units = to_model_units(model, sketches)
    rows = [np.concatenate([START[None], strokes.stroke3_to_stroke5(s)]) for s in units]
    longest = max(len(r) for r in rows)
    out = np.zeros((len(rows), longest, 5), dtype=np.float32)
    out[:, :, 4] = 1.0
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return torch.from_numpy(out), [len(r) for r in rows]


@torch.no_grad()
def check_parity(model, folder, sketches: list[np.ndarray]) -> dict[str, float]:
    """Teacher-force ``sketches`` (pixels) through PyTorch and onnxruntime side by side (see
    the module's docstring); returns the largest differences found."""
    portable = PortableModel(folder)
    m = portable.manifest
    rows, _ = decoder_inputs(model, sketches)
    batch, steps = rows.shape[:2]
    found = {"step": 0.0, "encode": 0.0, "whole": 0.0}
    z = labels = None
    if isinstance(model, SketchEmbedNet):
        pixels = render_images(sketches, model.config.image_size).astype(np.float32) / 255.0
        images = torch.from_numpy(pixels).unsqueeze(1)
        expected = model.encode(images)
        got = portable.encode(images.numpy())
        z = expected[0]
    elif m.latent_size:
        lengths = torch.tensor([len(s) for s in sketches])
        encoder_rows = rows[:, 1:]  # no start token: rows 1..n, padded
        expected = model.encoder(encoder_rows, lengths)
        got = portable.encode(encoder_rows.numpy(), lengths.numpy())
        for i in range(batch):  # each sketch alone: the padding does not reach its latent
            one = model.encoder(encoder_rows[i : i + 1, : len(sketches[i])], lengths[i : i + 1])
            close(got[0][i : i + 1], one[0], f"mu of sketch {i} alone")
        z = expected[0]
    if z is not None:
        for name, g, e in zip(("mu", "sigma_hat"), got, expected, strict=True):
            found["encode"] = max(found["encode"], close(g, e, name))
    if m.num_classes:
        labels = torch.arange(batch) % m.num_classes
    np_z = None if z is None else z.numpy()
    np_labels = None if labels is None else labels.numpy()
    state = model.initial_state(z, batch)
    np_state = portable.initial_state(np_z, batch)
    for name, tensor in zip(portable.state_names, state, strict=True):
        close(np_state[name], tensor, f"initial {name}")
    start = dict(np_state)
    model64 = copy.deepcopy(model).double()
    z64 = None if z is None else z.double()
    state64 = model64.initial_state(z64, batch)
    own, torch32, torch64 = [], [], []
    for t in range(steps):
        torch_state = {n: v.numpy() for n, v in zip(portable.state_names, state, strict=True)}
        mixture, state = model.decode_step(rows[:, t], state, z=z, labels=labels)
        mixture64, state64 = model64.decode_step(rows[:, t].double(), state64, z=z64, labels=labels)
        one_mixture, one_state = portable.step(rows[:, t].numpy(), torch_state, np_z, np_labels)
        np_mixture, np_state = portable.step(rows[:, t].numpy(), np_state, np_z, np_labels)
        for field, got_part, part in zip(mixture._fields, one_mixture, mixture, strict=True):
            found["step"] = max(found["step"], close(got_part, part, f"step {t}: {field}"))
        for name, tensor in zip(portable.state_names, state, strict=True):
            found["step"] = max(found["step"], close(one_state[name], tensor, f"step {t}: {name}"))
        own.append(np.concatenate([*np_mixture, *np_state.values()], axis=1))
        torch32.append(torch.cat([*mixture, *state], dim=1).numpy())
        torch64.append(torch.cat([*mixture64, *state64], dim=1).numpy())
    own_run, run32, run64 = np.stack(own), np.stack(torch32), np.stack(torch64)
    found["whole"] = difference(own_run, run32)
    found["float64"], found["torch_float64"] = difference(own_run, run64), difference(run32, run64)
    allowed = max(TOLERANCE, FLOAT64_RATIO * found["torch_float64"])
    assert found["float64"] <= allowed, f"onnxruntime is further from float64: {found}"
    assert portable.has_graph("read")
    read = portable.read(rows.numpy(), start, np_z, np_labels)
    for name in portable.state_names:
        close(read[name], np_state[name], f"read against {steps} steps: next_{name}")
    return found


def check_both_batches(model, folder, sketches) -> None:
    """Batch 1 (the first sketch) and the whole batch, dynamic lengths; the figures are
    printed (``pytest -s``)."""
    for batch in (sketches[:1], sketches):
        found = check_parity(model, folder, batch)
        print(
            f"\n{folder.name} batch {len(batch)}: "
            + ", ".join(f"{k} {v:.1e}" for k, v in found.items())
        )


def tiny_sketch_rnn(cell: str, conditional: bool, num_classes: int) -> SketchRNN:
    torch.manual_seed(0)
    config = SketchRNNConfig.preset(
        "small", enc_hidden=8, dec_hidden=16, z_size=4, num_mixtures=3, cell=cell,
        hyper_hidden=8, hyper_embed=4, conditional=conditional, num_classes=num_classes,
        max_seq_len=200,
    )  # fmt: skip
    model = SketchRNN(config)
    with torch.no_grad():  # weights far from the initial ones, so every part matters
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    model.set_units(scale_factor=20.0, classes=[f"c{i}" for i in range(num_classes)] or None)
    return model.eval()


MATRIX = [
    (cell, conditional, classes)
    for cell in ("lstm", "layernorm", "hyper")
    for conditional in (True, False)
    for classes in (0, 3)
]
FAST = (("hyper", True, 3), ("layernorm", False, 0))


@pytest.mark.parametrize(
    "cell,conditional,classes",
    [pytest.param(*k, marks=() if k in FAST else pytest.mark.slow) for k in MATRIX],
)
def test_sketch_rnn_matrix(tmp_path, cell, conditional, classes):
    model = tiny_sketch_rnn(cell, conditional, classes)
    folder = tmp_path / f"{cell}-{'vae' if conditional else 'gen'}-{classes}-classes"
    result = export_portable(model, folder)
    m = result.manifest
    assert (m.latent_size > 0, m.num_classes) == (conditional, classes)
    assert set(m.graphs) == (
        {"encode", "init", "step", "read"} if conditional else {"step", "read"}
    )
    check_both_batches(model, folder, held_out())


@pytest.mark.parametrize(
    "backbone,cell", [("conv4", "hyper"), pytest.param("resnet12", "lstm", marks=pytest.mark.slow)]
)
def test_sketchembednet(tmp_path, backbone, cell):
    torch.manual_seed(0)
    config = SketchEmbedNetConfig(
        backbone=backbone, image_size=16, z_size=8, dec_hidden=16, num_mixtures=3, cell=cell,
        hyper_hidden=8, hyper_embed=4, max_seq_len=200,
    )  # fmt: skip
    model = SketchEmbedNet(config)
    model.train()
    with torch.no_grad():  # BatchNorm statistics of real images, not the initial 0 and 1
        model.encoder(torch.from_numpy(render_images(held_out(n=8), 16) / 255.0).float()[:, None])
    model.eval().set_units(scale_factor=20.0)
    folder = tmp_path / f"sketchembednet-{backbone}-{cell}"
    result = export_portable(model, folder)
    assert result.manifest.image["size"] == 16 and "imitate" in result.manifest.capabilities
    check_both_batches(model, folder, held_out())


@pytest.mark.slow
def test_magenta_gen_json(tmp_path):
    """The real sheep model of magenta.js, on held-out sheep."""
    model = load_model(shared_file("magenta_models/sheep.gen.json"))
    export_portable(model, tmp_path / "sheep")
    check_both_batches(model, tmp_path / "sheep", held_out())


@pytest.mark.slow
def test_magenta_vae_json(tmp_path):
    """A .vae.json (sketch-rnn-js's VAE; none is shared, so a small one written here)."""
    torch.manual_seed(1)
    config = SketchRNNConfig.preset(
        "small", enc_hidden=8, dec_hidden=16, z_size=4, num_mixtures=20, cell="lstm"
    )  # the format holds 20 mixtures, a plain LSTM
    vae = SketchRNN(config)
    vae.set_units(scale_factor=20.0, classes=["sheep"])
    export_magenta_json(vae.eval(), tmp_path / "sheep.vae.json")
    assert main(["export", str(tmp_path / "sheep.vae.json"), str(tmp_path / "sheep-vae")]) == 0
    model = load_model(tmp_path / "sheep.vae.json")
    check_both_batches(model, tmp_path / "sheep-vae", held_out())


@pytest.mark.slow
def test_official_model_by_name(tmp_path, monkeypatch):
    """``sketchrnn export bear OUT``: downloaded (from a local server in the collection's
    layout) into the cache, then exported."""
    models = SHARED_DATA / "magenta_models"
    if not (models / "bear.gen.json").is_file():
        pytest.skip(f"shared data not found: {models} (set SKETCHRNN_SHARED_DATA)")
    monkeypatch.setenv("SKETCHRNN_CACHE_DIR", str(tmp_path / "cache"))
    with FolderServer(models) as server:
        monkeypatch.setenv("SKETCHRNN_MODELS_URL", server.url)
        assert main(["export", "bear", str(tmp_path / "bear")]) == 0
    model = load_model(tmp_path / "cache" / "bear.gen.json")
    assert PortableModel(tmp_path / "bear").manifest.name == "bear"
    check_both_batches(model, tmp_path / "bear", held_out(n=2))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(builtin_models()))
def test_builtin_models(tmp_path, name):
    model = load_model(name)
    assert main(["export", name, str(tmp_path / name)]) == 0
    data = "sketchrnn/omniglot.npz" if "omniglot" in name else "sketchrnn/aaron_sheep.npz"
    check_both_batches(model, tmp_path / name, held_out(data))
