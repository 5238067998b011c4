"""The page's own arithmetic against the library's, in Node: the canvas mapping and the drawing
preparation (static/sketches.js vs ``sketchrnn.generate.canvas_scale`` / ``prepare_drawing``),
the few-shot classifier (static/fewshot.js vs scikit-learn's ``LogisticRegression``, as
``sketchrnn.fewshot`` fits it), and ``minStrokes`` (sketchrnn.js) against ``min_strokes``
(``sketchrnn.generate.complete``) on a model that wants to end every drawing at once."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from sketchrnn import generate
from sketchrnn.fewshot import evaluate_embedded
from sketchrnn.web.files import STATIC_DIR
from sketchrnn.web.listing import page_constants

ROOT = Path(__file__).resolve().parents[2]

if shutil.which("node") is None:
    pytest.skip("node is not installed (apt-get install nodejs)", allow_module_level=True)


def node(script: str, data: object) -> object:
    """Run an ES module ``script`` with ``data`` as the global DATA; its last line of output
    is JSON."""
    source = f"const DATA = {json.dumps(data)};\n{script}"
    done = subprocess.run(
        ["node", "--input-type=module", "-e", source],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def module(name: str) -> str:
    return (STATIC_DIR / name).as_uri()


def random_drawing(rng: np.random.Generator, strokes: int, points: int) -> list[list[float]]:
    rows = []
    for _ in range(strokes):
        for i in range(points):
            dx, dy = rng.normal(0, 6, size=2).round(2)
            rows.append([float(dx), float(dy), 1 if i == points - 1 else 0])
    return rows


def tiny_model(scale_factor: float = 12.5):
    from sketchrnn.models import SketchRNN, SketchRNNConfig

    torch.manual_seed(0)
    model = SketchRNN(
        SketchRNNConfig(cell="lstm", conditional=False, enc_hidden=8, dec_hidden=16, z_size=4,
                        num_mixtures=2, max_seq_len=30)
    )  # fmt: skip
    model.set_units(scale_factor=scale_factor)
    return model.eval()


def test_prepare_drawing_and_canvas_scale_equal_pythons():
    model = tiny_model(12.5)
    consts = page_constants()
    rng = np.random.default_rng(0)
    cases = [
        {"rows": random_drawing(rng, strokes, points), "scale": scale, "max_points": most}
        for strokes, points, scale, most in [
            (1, 5, 1.0, None),
            (3, 40, 0.37, None),
            (6, 60, 0.8, 60),  # simplified harder to fit
            (2, 2, 2.5, None),  # short strokes are kept as they are
            (4, 120, 0.05, 20),  # cannot fit: the hardest simplification is returned
        ]
    ]
    canvases = [{"width": 720, "height": 540}, {"width": 370, "height": 493.3}]
    script = f"""
    import {{ prepareDrawing, canvasScale }} from "{module("sketches.js")}";
    const out = DATA.cases.map((c) => prepareDrawing(c.rows, c.scale, {{
      scaleFactor: 12.5, epsilonUnits: DATA.consts.rdp_epsilon_units,
      maxGrowth: DATA.consts.max_epsilon_growth, maxPoints: c.max_points }}));
    const scales = DATA.canvases.map((c) => canvasScale(91.5, c, DATA.consts.drawing_fill));
    console.log(JSON.stringify({{ out, scales }}));
    """
    got = node(script, {"cases": cases, "consts": consts, "canvases": canvases})
    for case, js in zip(cases, got["out"], strict=True):
        s3 = np.array(case["rows"], dtype=np.float32)
        want = generate.prepare_drawing(model, s3, case["scale"], max_points=case["max_points"])
        assert np.array(js).shape == want.shape
        np.testing.assert_allclose(np.array(js), want, rtol=1e-5, atol=1e-4)
    for canvas, js in zip(canvases, got["scales"], strict=True):
        want = generate.canvas_scale(model, (canvas["width"], canvas["height"]), extent=91.5)
        assert js == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("classes,per_class,dim", [(2, 1, 16), (3, 1, 128), (5, 2, 64), (4, 3, 8)])
def test_few_shot_probabilities_equal_scikit_learns(classes, per_class, dim):
    rng = np.random.default_rng(classes * 100 + dim)
    centres = rng.normal(size=(classes, dim))
    noise = 0.7 * rng.normal(size=(classes, per_class, dim))
    x = (centres[:, None, :] + noise).reshape(classes * per_class, dim)
    y = np.repeat(np.arange(classes), per_class)
    queries = centres + 0.9 * rng.normal(size=centres.shape)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    C = 1.0
    assert C == page_constants()["fewshot_regularization"]
    import inspect

    assert inspect.signature(evaluate_embedded).parameters["regularization"].default == C
    want = LogisticRegression(C=C, max_iter=1000, tol=1e-10).fit(x, y).predict_proba(queries)
    script = f"""
    import {{ fitLogistic, l2Normalise }} from "{module("fewshot.js")}";
    const model = fitLogistic(l2Normalise(DATA.x), DATA.y, {{ C: DATA.C }});
    console.log(JSON.stringify(model.predict(l2Normalise(DATA.q))));
    """
    got = node(script, {"x": x.tolist(), "y": y.tolist(), "q": queries.tolist(), "C": C})
    np.testing.assert_allclose(np.array(got), want, atol=2e-5)


@pytest.mark.slow
def test_min_strokes_in_javascript_draws_as_python(tmp_path):
    """A model that ends every drawing at once: no ending without min_strokes; with it,
    Python and sketchrnn.js (onnxruntime-node) draw the same greedy ending point for point."""
    if not (ROOT / "node_modules" / "onnxruntime-node" / "package.json").is_file():
        pytest.skip("onnxruntime-node is not in node_modules: run `make node_modules`")
    pytest.importorskip("onnx", reason="the onnx extra is not installed")
    from sketchrnn.models.onnx_export import export_portable

    model = tiny_model(10.0)
    with torch.no_grad():
        model.decoder.output.weight[:3] *= 0.01
        model.decoder.output.bias[:3] = torch.tensor([0.0, 1.0, 6.0])  # "end" is likeliest
    prefix = np.array([[0, 0, 0], [12, 3, 0], [5, 9, 1]], dtype=np.float32)
    assert all(len(s) == len(prefix) for s in generate.complete(model, prefix, 3, temperature=0))
    want = generate.complete(model, prefix, 1, temperature=0, min_strokes=2)[0]
    assert int(want[len(prefix) :, 2].sum()) >= 2  # two whole strokes before the end
    folder = tmp_path / "ender"
    export_portable(model, folder, name="ender")
    script = f"""
    import {{ SketchModel }} from "{module("sketchrnn.js")}";
    const m = await SketchModel.load(DATA.folder);
    const none = await m.complete(DATA.prefix, 2, {{ temperature: 0 }});
    const some = await m.complete(DATA.prefix, 1, {{ temperature: 0, minStrokes: 2 }});
    const streamed = [];
    const rows = m.stream(DATA.prefix, {{ temperature: 0, minStrokes: 2 }});
    for await (const row of rows) streamed.push(row);
    console.log(JSON.stringify({{ none, some, streamed }}));
    """
    got = node(script, {"folder": str(folder), "prefix": prefix.tolist()})
    assert all(len(s) == len(prefix) for s in got["none"])
    np.testing.assert_allclose(np.array(got["some"][0]), want, atol=1e-4)
    np.testing.assert_allclose(np.array(got["streamed"]), want[len(prefix) :], atol=1e-4)
