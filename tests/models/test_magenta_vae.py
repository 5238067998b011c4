"""sketch-rnn-js VAE models (``*.vae.json``) in and out, and both kinds against the original
runtime ``sketch_rnn.js`` (``../shared/oracles/sketch-rnn-js``) under Node.

``tests/node/sketch_rnn_js.js`` loads the oracle's ``numjs.js`` and ``sketch_rnn.js`` (no npm),
encodes a drawing with ``encode_to_mu_sigma``, starts the decoder from ``z = mu`` and prints
``get_pdf`` after every ``update``; we compare with our model re-imported from the same file
(so both sides see the same int16-quantised weights).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import SHARED_DATA, probe_rows, shared_file

from sketchrnn.io.files import SketchFileError
from sketchrnn.io.magenta_json import MagentaVAEWeights, read_magenta_json
from sketchrnn.models import load_model
from sketchrnn.models.magenta import export_magenta_json, load_magenta_json
from sketchrnn.models.sketch_rnn import SketchRNN, SketchRNNConfig

SCRIPT = Path(__file__).resolve().parents[1] / "node" / "sketch_rnn_js.js"
ORACLE = SHARED_DATA.parent / "oracles" / "sketch-rnn-js"
FIELDS = ("pi", "mu_x", "mu_y", "sigma_x", "sigma_y", "rho", "pen")
TOLERANCE = 1e-4
SCALE = 25.0
STEP = 10 / 32767  # the int16 quantisation step


def toy_model(conditional: bool = True, seed: int = 0, **overrides) -> SketchRNN:
    """A small random LSTM model, every parameter jittered so that no bias is trivially 0."""
    torch.manual_seed(seed)
    values = dict(enc_hidden=16, dec_hidden=24, z_size=8, num_mixtures=20, cell="lstm")
    values.update(conditional=conditional, recurrent_dropout=0.0, max_seq_len=60)
    values.update(overrides)
    model = SketchRNN(SketchRNNConfig.preset("small", **values))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn_like(p))
    classes = [f"c{k}" for k in range(model.config.num_classes)] or ["toy"]
    model.set_units(scale_factor=SCALE, classes=classes)
    return model.eval()


def _probabilities(m) -> dict[str, np.ndarray]:
    values = {
        "pi": torch.softmax(m.log_pi, -1),
        "mu_x": m.mu_x,
        "mu_y": m.mu_y,
        "sigma_x": torch.exp(m.log_sigma_x),
        "sigma_y": torch.exp(m.log_sigma_y),
        "rho": m.rho,
        "pen": torch.softmax(m.pen_logits, -1),
    }
    return {k: v.double().numpy() for k, v in values.items()}


def ours(model: SketchRNN, drawing: np.ndarray | None, rows: np.ndarray) -> dict:
    """What the harness prints, from our model: ``mu``, ``sigma`` of ``drawing`` (pixels, no
    start token) and the mixture after each of ``rows`` (pixels), step by step from z = mu;
    ``forward`` (teacher forcing) must give the same mixture."""
    scale = float(model.scale_factor)
    x = torch.from_numpy(np.asarray(rows, dtype=np.float32).copy())
    x[:, :2] /= scale
    out: dict = {"mu": None, "sigma": None}
    z = None
    with torch.no_grad():
        if model.has_encoder:
            d = np.asarray(drawing, dtype=np.float32).copy()
            d[:, :2] /= scale
            batch = torch.from_numpy(np.vstack([[0, 0, 1, 0, 0], d]).astype(np.float32))[None]
            mu, sigma_hat = model.encode(batch, torch.tensor([len(d)]))
            out["mu"], out["sigma"] = mu[0].double().numpy(), torch.exp(sigma_hat[0] / 2).numpy()
            z = mu
        state = model.initial_state(z, 1)
        steps = []
        for row in x:
            params, state = model.decode_step(row.unsqueeze(0), state, z=z)
            steps.append(_probabilities(params))
        out["steps"] = {k: np.concatenate([s[k] for s in steps]) for k in FIELDS}
        padded = torch.cat([x, torch.tensor([[0.0, 0, 0, 0, 1]])])[None]
        forced = model(padded, torch.tensor([len(x)]), z=z).mixture
        forced_p = _probabilities(type(forced)(*(t[0] for t in forced)))
    assert max(float(np.abs(forced_p[k] - out["steps"][k]).max()) for k in FIELDS) <= 1e-5
    return out


def max_difference(a: dict, b: dict) -> float:
    diffs = [float(np.abs(a["steps"][k] - b["steps"][k]).max()) for k in FIELDS]
    for key in ("mu", "sigma"):
        if a[key] is not None or b[key] is not None:
            diffs.append(float(np.abs(np.asarray(a[key]) - np.asarray(b[key])).max()))
    return max(diffs)


# ----------------------------------------------------------------------------- file only


def test_vae_export_round_trips(tmp_path):
    model = toy_model()
    path = tmp_path / "toy.vae.json"
    export_magenta_json(model, path)
    raw = read_magenta_json(path)
    assert isinstance(raw, MagentaVAEWeights)
    assert raw.info["mode"] == 1 and raw.info["name"] == "toy" and raw.scale_factor == SCALE
    assert (raw.enc_hidden, raw.z_size, raw.hidden_size) == (16, 8, 24)
    back = load_magenta_json(path)
    assert back.has_encoder and back.config.cell == "lstm" and back.config.num_mixtures == 20
    assert back.scale_factor == SCALE and back.classes == ["toy"]
    assert back.config.max_seq_len == 60
    # Each weight moved by at most half a step (the biases: forget bias and the two PyTorch
    # biases summed into one).
    theirs, mine = back.state_dict(), model.state_dict()
    for key, value in mine.items():
        if "bias_ih" in key:
            value = value + mine[key.replace("bias_ih", "bias_hh")]
        elif "bias_hh" in key:
            continue
        assert (theirs[key] - value).abs().max() <= 0.5 * STEP + 1e-6, key
    # The same numbers both ways round, up to the quantisation.
    drawing, rows = probe_rows(seed=4, n=15, spread=SCALE)[1:], probe_rows(seed=5, n=12)
    assert max_difference(ours(back, drawing, rows), ours(model, drawing, rows)) <= 0.02
    # The imported model writes the very same file again.
    again = tmp_path / "again.vae.json"
    export_magenta_json(back, again)
    assert again.read_bytes() == path.read_bytes()
    # load_model takes it like any model file.
    loaded = load_model(path)
    assert max_difference(ours(loaded, drawing, rows), ours(back, drawing, rows)) == 0.0


@pytest.mark.parametrize(
    ("overrides", "name", "message"),
    [
        (dict(), "m.gen.json", "it has an encoder"),
        (dict(conditional=False), "m.vae.json", "it is decoder-only"),
        (dict(cell="layernorm"), "m.vae.json", "its cell is 'layernorm'"),
        (dict(cell="hyper"), "m.vae.json", "its cell is 'hyper'"),
        (dict(num_mixtures=5), "m.vae.json", "it has 5 mixtures"),
        (dict(num_classes=3), "m.vae.json", "class-conditional"),
    ],
)
def test_vae_export_refuses_what_the_format_cannot_hold(tmp_path, overrides, name, message):
    model = toy_model(**overrides)
    with pytest.raises(SketchFileError, match=message) as err:
        export_magenta_json(model, tmp_path / name)
    assert name in str(err.value) and "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == []


def _vae_doc(tmp_path) -> list:
    path = tmp_path / "src.vae.json"
    export_magenta_json(toy_model(), path)
    return json.loads(path.read_text())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d[0].update(mode=2),
            "info.mode is 2 but the file's 17 weight arrays make a VAE",
        ),
        (lambda d: d[0].update(mode="x"), "info.mode is 'x'"),
        (
            lambda d: d[1].__setitem__(7, [9]),
            "mu kernel has shape [32, 8], expected [32, 9] for a VAE",
        ),
        (lambda d: d[1].__setitem__(14, [5, 96]), "LSTM input kernel has shape [5, 96]"),
        (lambda d: d[1].__setitem__(10, [8, 47]), "initial state kernel has shape [8, 47]"),
        (lambda d: d[2].__setitem__(9, "@@"), "presig bias: invalid base64"),
    ],
)
def test_bad_vae_files_get_clear_errors(tmp_path, change, message):
    doc = _vae_doc(tmp_path)
    change(doc)
    path = tmp_path / "bad.vae.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(SketchFileError) as err:
        load_magenta_json(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_gen_file_with_a_vae_mode_is_refused(tmp_path):
    path = tmp_path / "g.gen.json"
    export_magenta_json(toy_model(conditional=False), path)
    doc = json.loads(path.read_text())
    doc[0]["mode"] = 0
    path.write_text(json.dumps(doc))
    with pytest.raises(SketchFileError, match="info.mode is 0 but the file's 5 weight arrays"):
        read_magenta_json(path)


# ----------------------------------------------------------------------------- against Node


@pytest.fixture(scope="module")
def oracle() -> Path:
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    if not (ORACLE / "sketch_rnn.js").is_file() or not (ORACLE / "numjs.js").is_file():
        pytest.skip(f"sketch-rnn-js oracle not found: {ORACLE}")
    return ORACLE


def node_run(oracle: Path, model_path: Path, drawing, rows, workdir: Path) -> dict:
    """The harness's output for ``drawing`` (encoded, VAE only) and ``rows``."""
    inputs = workdir / "inputs.json"
    encode = None if drawing is None else np.asarray(drawing, dtype=float).tolist()
    inputs.write_text(json.dumps({"encode": encode, "rows": np.asarray(rows, float).tolist()}))
    done = subprocess.run(
        ["node", str(SCRIPT), str(oracle), str(model_path), str(inputs)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    steps = result["steps"]
    result["steps"] = {k: np.array([s[k] for s in steps], dtype=np.float64) for k in FIELDS}
    return result


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_exported_vae_matches_sketch_rnn_js(oracle, tmp_path, seed):
    model = toy_model(seed=seed)
    path = tmp_path / "toy.vae.json"
    export_magenta_json(model, path)
    back = load_magenta_json(path)  # our side, after the same int16 quantisation
    drawing = probe_rows(seed=10 + seed, n=25, spread=SCALE)[1:]
    rows = probe_rows(seed=20 + seed, n=30, spread=SCALE)
    js = node_run(oracle, path, drawing, rows, tmp_path)
    assert np.asarray(js["mu"]).shape == (8,) and js["steps"]["pi"].shape == (31, 20)
    mine = ours(back, drawing, rows)
    assert max_difference(mine, js) <= TOLERANCE
    # Imported back, written again: the same file, so the same numbers in the runtime.
    again = tmp_path / "again.vae.json"
    export_magenta_json(back, again)
    assert again.read_bytes() == path.read_bytes()
    # The original (unquantised) model stays close.
    assert max_difference(ours(model, drawing, rows), js) <= 0.05


@pytest.mark.slow
def test_exported_gen_matches_sketch_rnn_js(oracle, tmp_path):
    model = toy_model(conditional=False, seed=3)
    path = tmp_path / "toy.gen.json"
    export_magenta_json(model, path)
    back = load_magenta_json(path)
    rows = probe_rows(seed=7, n=30, spread=SCALE)
    js = node_run(oracle, path, None, rows, tmp_path)
    assert js["mu"] is None
    assert max_difference(ours(back, None, rows), js) <= TOLERANCE


@pytest.mark.slow
def test_released_gen_model_matches_sketch_rnn_js(oracle, tmp_path):
    path = shared_file("magenta_models/sheep.gen.json")
    rows = probe_rows(seed=8, n=15)
    js = node_run(oracle, path, None, rows, tmp_path)
    assert max_difference(ours(load_magenta_json(path), None, rows), js) <= TOLERANCE
