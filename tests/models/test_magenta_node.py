"""Our magenta.js import/export against the real runtime: ``@magenta/sketch`` (0.2.0, pinned by
package-lock.json) under Node.

The package comes from the repository's ``node_modules`` (``make node_modules``: ``npm ci``);
the tests skip, saying why, where node or that folder is missing.
``tests/node/magenta_pdf.js`` feeds a stroke sequence with ``update`` and prints ``getPDF``
after every step; we compare it with our model's mixture for the same inputs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import probe_rows, reference_pdfs, shared_file

from sketchrnn.io.magenta_json import read_magenta_json
from sketchrnn.models.magenta import export_magenta_json, load_magenta_json
from sketchrnn.models.sketch_rnn import SketchRNN, SketchRNNConfig

pytestmark = pytest.mark.slow  # see pyproject: `make test` skips these

NODE_MODULES = Path(__file__).resolve().parents[2] / "node_modules"
SCRIPT = Path(__file__).resolve().parents[1] / "node" / "magenta_pdf.js"
FIELDS = ("pi", "mu_x", "mu_y", "sigma_x", "sigma_y", "rho", "pen")
TOLERANCE = 1e-4


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """The repository's ``node_modules``, holding ``@magenta/sketch`` (package-lock.json)."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    if not (NODE_MODULES / "@magenta" / "sketch").is_dir():
        pytest.skip(f"{NODE_MODULES} holds no @magenta/sketch: run `make node_modules` (npm ci)")
    return NODE_MODULES


def node_pdfs(
    node_modules: Path, model_path: Path, rows: np.ndarray, workdir: Path
) -> dict[str, np.ndarray]:
    """getPDF after each of ``rows`` ``(T, 5)`` (pixels): arrays ``(T, 20)``, pen ``(T, 3)``."""
    rows_path = workdir / "rows.json"
    rows_path.write_text(json.dumps(np.asarray(rows, dtype=float).tolist()))
    done = subprocess.run(
        ["node", str(SCRIPT), "pdf", str(model_path), str(rows_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NODE_PATH": str(node_modules)},
    )
    assert done.returncode == 0, done.stderr
    # tfjs prints a banner suggesting its native backend; our result is the JSON line.
    line = next(x for x in done.stdout.splitlines() if x.startswith('{"steps"'))
    steps = json.loads(line)["steps"]
    return {k: np.array([s[k] for s in steps], dtype=np.float64) for k in FIELDS}


def our_pdfs(model: SketchRNN, rows: np.ndarray) -> dict[str, np.ndarray]:
    """Our mixture after each of ``rows`` (pixels), from the training-path ``forward``."""
    scale = float(model.scale_factor)
    x = np.asarray(rows, dtype=np.float32).copy()
    x[:, :2] /= scale
    # forward() predicts row t+1 from rows 0..t: append one padding row as the last target.
    batch = torch.from_numpy(np.vstack([x, [0, 0, 0, 0, 1]]).astype(np.float32)).unsqueeze(0)
    with torch.no_grad():
        out = model.eval()(batch, torch.tensor([len(rows) - 1]))
    return _probabilities(out.mixture, squeeze=0)


def our_step_pdfs(model: SketchRNN, rows: np.ndarray) -> dict[str, np.ndarray]:
    """The same through the generation path, ``decode_step`` one row at a time."""
    scale = float(model.scale_factor)
    x = torch.from_numpy(np.asarray(rows, dtype=np.float32).copy())
    x[:, :2] /= scale
    state = model.initial_state(None, 1)
    steps = []
    with torch.no_grad():
        for row in x:
            params, state = model.eval().decode_step(row.unsqueeze(0), state)
            steps.append(params)
    stacked = type(steps[0])(*(torch.cat([getattr(s, f) for s in steps]) for f in steps[0]._fields))
    return _probabilities(stacked)


def _probabilities(mixture, squeeze: int | None = None) -> dict[str, np.ndarray]:
    m = mixture if squeeze is None else type(mixture)(*(t[squeeze] for t in mixture))
    values = {
        "pi": torch.softmax(m.log_pi, -1),  # log_pi may be unnormalised logits: normalise
        "mu_x": m.mu_x,
        "mu_y": m.mu_y,
        "sigma_x": torch.exp(m.log_sigma_x),
        "sigma_y": torch.exp(m.log_sigma_y),
        "rho": m.rho,
        "pen": torch.softmax(m.pen_logits, -1),
    }
    return {k: v.double().numpy() for k, v in values.items()}


def max_difference(ours: dict[str, np.ndarray], js: dict[str, np.ndarray]) -> float:
    """Largest difference over all fields and steps (sigmas unclamped on both sides: about 5%
    of the released models' sigmas lie below the training floor ``exp(LOG_SIGMA_MIN)``)."""
    return max(float(np.abs(ours[k] - js[k]).max()) for k in FIELDS)


# ----------------------------------------------------------------------------- tests


def test_harness_matches_numpy_reference(node_modules, tmp_path):
    path = shared_file("magenta_models/sheep.gen.json")
    rows = probe_rows(seed=1, n=20)
    js = node_pdfs(node_modules, path, rows, tmp_path)
    ref = reference_pdfs(read_magenta_json(path), rows)
    assert js["pi"].shape == (21, 20) and js["pen"].shape == (21, 3)
    assert max(float(np.abs(js[k] - ref[k]).max()) for k in FIELDS) <= TOLERANCE


@pytest.mark.parametrize("name", ["sheep", "bicycle", "roller_coaster"])
def test_imported_models_match_magenta_js(node_modules, tmp_path, name):
    path = shared_file(f"magenta_models/{name}.gen.json")
    rows = probe_rows(seed=len(name), n=40)
    js = node_pdfs(node_modules, path, rows, tmp_path)
    model = load_magenta_json(path)
    assert max_difference(our_pdfs(model, rows), js) <= TOLERANCE
    assert max_difference(our_step_pdfs(model, rows), js) <= TOLERANCE
    # The raw log sigmas agree too, relative to their size (some are ~1e-7).
    x = torch.from_numpy(rows.astype(np.float32))
    x[:, :2] /= model.scale_factor
    with torch.no_grad():
        h_seq, _ = model.decoder.cell(x.unsqueeze(0), model.initial_state(None, 1))
        raw = model.decoder.output(h_seq[0]).double().numpy()
    log_sigma_x = raw[:, 3 + 3 * 20 : 3 + 4 * 20]
    np.testing.assert_allclose(np.exp(log_sigma_x), js["sigma_x"], rtol=1e-3, atol=1e-6)


def test_exported_model_matches_magenta_js(node_modules, tmp_path):
    torch.manual_seed(0)
    config = SketchRNNConfig.preset(
        "small",
        conditional=False,
        cell="lstm",
        num_mixtures=20,
        recurrent_dropout=0.0,
        dec_hidden=64,
    )
    model = SketchRNN(config)
    path = tmp_path / "toy.gen.json"
    export_magenta_json(model, path, name="toy", scale_factor=25.0)
    reloaded = load_magenta_json(path)  # our side, after the same int16 quantisation
    rows = probe_rows(seed=3, n=40, spread=25.0)
    js = node_pdfs(node_modules, path, rows, tmp_path)
    assert max_difference(our_pdfs(reloaded, rows), js) <= TOLERANCE
    # Quantisation moved the weights by at most half a step; the original stays close.
    model.set_units(scale_factor=25.0)
    assert max_difference(our_pdfs(model, rows), js) <= 0.05
