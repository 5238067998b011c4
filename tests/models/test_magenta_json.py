"""magenta.js model JSON: parsing, validation, writing, and conversion to our SketchRNN.

The conversion is checked against an independent numpy implementation of the magenta.js
forward pass (TensorFlow's basic LSTM, gate order i, j, f, o, forget bias +1 at run time),
written here from the format description, not from our model code.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import probe_rows, reference_pdfs, shared_file

from sketchrnn.io.files import SketchFileError
from sketchrnn.io.magenta_json import (
    MagentaWeights,
    expected_shapes,
    read_magenta_json,
    write_magenta_json,
)

SHEEP = "magenta_models/sheep.gen.json"


def random_weights(hidden: int = 8, seed: int = 0, scale: float = 0.5) -> MagentaWeights:
    rng = np.random.default_rng(seed)
    arrays = [rng.uniform(-scale, scale, s).astype(np.float32) for s in expected_shapes(hidden)]
    info = {"mode": 2, "version": 6, "max_seq_len": 40, "name": "toy", "scale_factor": 20.0}
    return MagentaWeights(info, *arrays)


def write_doc(path: Path, doc) -> Path:
    path.write_text(json.dumps(doc))
    return path


def valid_doc(hidden: int = 8) -> list:
    w = random_weights(hidden)
    shapes = [list(a.shape) for a in w.arrays()]
    q = [np.rint(a * 3276.7).astype("<i2") for a in w.arrays()]
    return [w.info, shapes, [base64.b64encode(a.tobytes()).decode() for a in q]]


# ----------------------------------------------------------------------------- numpy reference


# ----------------------------------------------------------------------------- reading


def test_reads_released_model():
    w = read_magenta_json(shared_file(SHEEP))
    assert w.info["name"] == "sheep"
    assert w.scale_factor == pytest.approx(63.0983)
    assert w.hidden_size == 512
    assert [list(a.shape) for a in w.arrays()] == expected_shapes(512)
    assert all(a.dtype == np.float32 for a in w.arrays())
    assert all(np.abs(a).max() <= 10.0 for a in w.arrays())


def test_decoding_is_int16_times_10_over_32767(tmp_path):
    doc = valid_doc()
    raw = np.frombuffer(base64.b64decode(doc[2][1]), dtype="<i2")
    w = read_magenta_json(write_doc(tmp_path / "m.json", doc))
    np.testing.assert_allclose(w.output_bias, raw * 10.0 / 32767, rtol=1e-6)


def test_write_then_read_round_trips_to_quantisation_step(tmp_path):
    w = random_weights()
    write_magenta_json(tmp_path / "m.json", w)
    back = read_magenta_json(tmp_path / "m.json")
    assert back.info == w.info
    for a, b in zip(w.arrays(), back.arrays(), strict=True):
        assert np.abs(a - b).max() <= 0.5 * 10 / 32767 + 1e-7


def _mutated(tmp_path: Path, change) -> Path:
    doc = valid_doc()
    change(doc)
    return write_doc(tmp_path / "bad.json", doc)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop(), "expected a JSON list"),
        (lambda d: d[0].pop("scale_factor"), "info is missing scale_factor"),
        (lambda d: d[0].update(scale_factor=-1), "scale_factor must be a number in"),
        (lambda d: d[0].update(scale_factor=1e308), "scale_factor must be a number in"),
        (lambda d: d[0].update(max_seq_len="x"), "max_seq_len must be a positive integer"),
        (lambda d: d.__setitem__(0, [1, 2]), "info (first entry) must be an object"),
        (lambda d: d[1].__setitem__(0, [8, 122]), "output kernel has shape [8, 122]"),
        (lambda d: d[1].__setitem__(3, [8, 33]), "LSTM recurrent kernel has shape [8, 33]"),
        (lambda d: d[1].append([3]), "expected 5 weight arrays"),
        (lambda d: d[1].__setitem__(1, "123"), "must be a list of lists of integers"),
        (lambda d: d[2].__setitem__(4, "not base64!"), "LSTM bias: invalid base64"),
        (lambda d: d[2].__setitem__(1, d[2][1][:-8]), "output bias: 240 bytes of data"),
        (lambda d: d[2].__setitem__(2, 5), "must be a base64 string"),
        (lambda d: d[2].pop(), "weights (third entry) must be a list of 5"),
    ],
)
def test_bad_files_get_clear_errors(tmp_path, change, message):
    path = _mutated(tmp_path, change)
    with pytest.raises(SketchFileError) as err:
        read_magenta_json(path)
    assert str(path) in str(err.value)
    assert message in str(err.value)


def test_not_json_and_missing_file(tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text('[{"mode": 2,\n  oops')
    with pytest.raises(SketchFileError, match=r"broken\.json:2: invalid JSON"):
        read_magenta_json(bad)
    with pytest.raises(SketchFileError, match="cannot read file"):
        read_magenta_json(tmp_path / "absent.json")
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(SketchFileError, match="invalid UTF-8"):
        read_magenta_json(binary)


def test_write_refuses_out_of_range_weights_and_leaves_no_file(tmp_path):
    w = random_weights()
    w.output_bias[5] = 12.5
    target = tmp_path / "m.json"
    with pytest.raises(SketchFileError, match="output bias has a value of magnitude 12.5"):
        write_magenta_json(target, w)
    w.output_bias[5] = np.nan
    with pytest.raises(SketchFileError, match="NaN"):
        write_magenta_json(target, w)
    assert list(tmp_path.iterdir()) == []


def test_numpy_reference_is_a_distribution():
    w = read_magenta_json(shared_file(SHEEP))
    pdf = reference_pdfs(w, probe_rows(n=5))
    np.testing.assert_allclose(pdf["pi"].sum(1), 1.0, rtol=1e-9)
    np.testing.assert_allclose(pdf["pen"].sum(1), 1.0, rtol=1e-9)
    assert (np.abs(pdf["rho"]) < 1).all() and (pdf["sigma_x"] > 0).all()


# ----------------------------------------------------------------------------- SketchRNN


def _our_pdfs(model, rows: np.ndarray) -> dict[str, np.ndarray]:
    import torch

    x = torch.from_numpy(np.asarray(rows, dtype=np.float32).copy())
    x[:, :2] /= model.scale_factor
    state = model.initial_state(None, 1)
    out: dict[str, list] = {}
    with torch.no_grad():
        for row in x:
            m, state = model.decode_step(row.unsqueeze(0), state)
            values = {
                "pi": m.log_pi.exp(),
                "mu_x": m.mu_x,
                "mu_y": m.mu_y,
                "sigma_x": m.log_sigma_x.exp(),
                "sigma_y": m.log_sigma_y.exp(),
                "rho": m.rho,
                "pen": m.pen_logits.softmax(-1),
            }
            for k, v in values.items():
                out.setdefault(k, []).append(v[0].double().numpy())
    return {k: np.array(v) for k, v in out.items()}


def _assert_pdfs_close(ours: dict, ref: dict, atol: float) -> None:
    for k in ref:
        np.testing.assert_allclose(ours[k], ref[k], atol=atol, rtol=0, err_msg=k)


def test_loaded_model_matches_numpy_reference():
    from sketchrnn.models.magenta import load_magenta_json

    path = shared_file(SHEEP)
    model = load_magenta_json(path)
    config = model.config
    assert (config.conditional, config.cell, config.num_mixtures) == (False, "lstm", 20)
    assert config.recurrent_dropout == 0 and config.dec_hidden == 512
    assert config.max_seq_len == 156 and model.classes == ["sheep"]
    assert model.scale_factor == pytest.approx(63.0983)
    rows = probe_rows(seed=2, n=25)
    _assert_pdfs_close(_our_pdfs(model, rows), reference_pdfs(read_magenta_json(path), rows), 1e-4)


def _toy_model(**overrides):
    import torch

    from sketchrnn.models.sketch_rnn import SketchRNN, SketchRNNConfig

    torch.manual_seed(0)
    values = dict(dec_hidden=16, num_mixtures=20, cell="lstm", conditional=False)
    values.update(recurrent_dropout=0.0, max_seq_len=50)
    values.update(overrides)
    return SketchRNN(SketchRNNConfig.preset("small", **values))


def test_export_then_load_keeps_the_model(tmp_path):
    from sketchrnn.models.magenta import export_magenta_json, load_magenta_json

    model = _toy_model()
    model.set_units(scale_factor=12.5, classes=["toy"])
    export_magenta_json(model, tmp_path / "toy.gen.json")
    back = load_magenta_json(tmp_path / "toy.gen.json")
    assert back.scale_factor == 12.5 and back.classes == ["toy"]
    assert back.config.max_seq_len == 50
    ours, theirs = model.state_dict(), back.state_dict()
    # bias_ih + bias_hh is what the LSTM uses; the file stores their sum.
    lstm_bias = ours["decoder.cell.lstm.bias_ih_l0"] + ours["decoder.cell.lstm.bias_hh_l0"]
    assert (theirs["decoder.cell.lstm.bias_ih_l0"] - lstm_bias).abs().max() <= 10 / 32767
    for key in (
        "decoder.cell.lstm.weight_ih_l0",
        "decoder.cell.lstm.weight_hh_l0",
        "decoder.output.weight",
    ):
        assert (theirs[key] - ours[key]).abs().max() <= 0.5 * 10 / 32767 + 1e-7
    # Raw file layout: the forget gate's +1 is taken out again (gate order i, j, f, o).
    raw = read_magenta_json(tmp_path / "toy.gen.json")
    h = 16
    np.testing.assert_allclose(
        raw.lstm_bias[2 * h : 3 * h], lstm_bias[h : 2 * h].numpy() - 1.0, atol=10 / 32767
    )


# (VAEs export as .vae.json: tests/models/test_magenta_vae.py.)
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(cell="layernorm"), "its cell is 'layernorm'"),
        (dict(num_mixtures=5), "it has 5 mixtures"),
        (dict(num_classes=3), "class-conditional"),
    ],
)
def test_export_refuses_models_magenta_cannot_run(tmp_path, overrides, message):
    from sketchrnn.models.magenta import export_magenta_json

    model = _toy_model(**overrides)
    model.set_units(scale_factor=3.0)
    with pytest.raises(SketchFileError, match=message):
        export_magenta_json(model, tmp_path / "m.json")
    plain = _toy_model()
    with pytest.raises(SketchFileError, match="no scale_factor"):
        export_magenta_json(plain, tmp_path / "m.json")
    assert list(tmp_path.iterdir()) == []
