"""Our DoodleNet in PyTorch against TensorFlow.js running the same files under Node.

@tensorflow/tfjs comes with ``@magenta/sketch`` 0.2.0, pinned by the repository's
package-lock.json (``make node_modules``: ``npm ci``); the test skips, saying why, without node
or that ``node_modules``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from helpers import shared_file

from sketchrnn.io.formats import read_sketches
from sketchrnn.judge import load_judge

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = ROOT / "node_modules"
SCRIPT = ROOT / "tests" / "node" / "doodlenet.js"


@pytest.fixture(scope="module")
def node_modules() -> Path:
    """The repository's ``node_modules``, holding @tensorflow/tfjs (package-lock.json)."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    if not (NODE_MODULES / "@tensorflow" / "tfjs").is_dir():
        pytest.skip(f"{NODE_MODULES} holds no @tensorflow/tfjs: run `make node_modules` (npm ci)")
    return NODE_MODULES


def test_doodlenet_matches_tensorflow_js(node_modules, tmp_path):
    folder = shared_file("doodlenet")
    judge = load_judge(folder)
    drawings = []
    for name in ("cat", "bicycle", "The Eiffel Tower", "zigzag"):
        path = folder.parent / "quickdraw" / "simplified" / f"{name}.ndjson"
        if path.exists():
            drawings += read_sketches(path).strokes[:4]
    images = judge.render(drawings)
    (tmp_path / "images.json").write_text(json.dumps(images.tolist()))
    done = subprocess.run(
        ["node", str(SCRIPT), str(folder), str(tmp_path / "images.json")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NODE_PATH": str(node_modules)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith('{"probs"'))
    theirs = np.array(json.loads(line)["probs"])
    ours = judge.judge_images(images).probs
    assert theirs.shape == ours.shape == (len(drawings), 345)
    assert np.abs(theirs - ours).max() < 1e-5
    assert (theirs.argmax(axis=1) == ours.argmax(axis=1)).all()
