"""What the JavaScript runtime's tests share (their fixtures are in conftest.py): a tiny model
of every kind, exported once per session with ``sketchrnn.models.onnx_export``, and the real
ones (magenta.js models, built-in models); two runners of ``harness.mjs`` jobs: Node on
onnxruntime-node and Debian's Chromium on onnxruntime-web (Playwright)."""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import SHARED_DATA

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
NODE_MODULES = ROOT / "node_modules"
STATIC = ROOT / "src" / "sketchrnn" / "web" / "static"
BUILTIN = ROOT / "src" / "sketchrnn" / "builtin_models"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def npm_missing(package: str) -> str | None:
    """Why ``package`` cannot be used from the repository's node_modules, or None."""
    if shutil.which("node") is None:
        return "node is not installed (apt-get install nodejs)"
    if not (NODE_MODULES / package / "package.json").is_file():
        return f"{package} is not in node_modules: run `make node_modules` (npm ci)"
    return None


# ----------------------------------------------------------------------------- the models


def _tiny_sketch_rnn(**kw: Any) -> Any:
    from sketchrnn.models.sketch_rnn import SketchRNN, SketchRNNConfig

    classes = ["cat", "dog", "pig"] if kw.get("num_classes") else []
    config = SketchRNNConfig.preset(
        "small",
        enc_hidden=16,
        dec_hidden=24,
        z_size=8,
        num_mixtures=5,
        recurrent_dropout=0.0,
        hyper_hidden=16,
        hyper_embed=8,
        class_embed_size=4,
        max_seq_len=40,
        **kw,
    )
    model = SketchRNN(config)
    model.set_units(scale_factor=12.5, classes=classes)
    return model


def _tiny_sketch_embed_net(**kw: Any) -> Any:
    from sketchrnn.models import SketchEmbedNet, SketchEmbedNetConfig

    config = SketchEmbedNetConfig(
        image_size=16, z_size=8, dec_hidden=24, num_mixtures=4, max_seq_len=30,
        hyper_hidden=16, hyper_embed=8, **kw,
    )  # fmt: skip
    model = SketchEmbedNet(config)
    model.set_units(scale_factor=10.0)
    return model


# name -> a function that builds the model. Together they cover every kind `load_model`
# opens: each cell in a VAE and in a decoder-only model, with and without classes, and both
# SketchEmbedNet encoders (exports take seconds each, so no kind is exported twice).
TINY: dict[str, Callable[[], Any]] = {
    "vae_lstm": lambda: _tiny_sketch_rnn(cell="lstm", conditional=True),
    "vae_layernorm_classes": lambda: _tiny_sketch_rnn(
        cell="layernorm", conditional=True, num_classes=3
    ),
    "vae_hyper": lambda: _tiny_sketch_rnn(cell="hyper", conditional=True),
    "gen_lstm_classes": lambda: _tiny_sketch_rnn(cell="lstm", conditional=False, num_classes=3),
    "gen_layernorm": lambda: _tiny_sketch_rnn(cell="layernorm", conditional=False),
    "gen_hyper_classes": lambda: _tiny_sketch_rnn(cell="hyper", conditional=False, num_classes=3),
    "sen_conv4": lambda: _tiny_sketch_embed_net(backbone="conv4", cell="layernorm"),
    "sen_resnet12": lambda: _tiny_sketch_embed_net(backbone="resnet12", cell="hyper"),
}
# The real ones: a released magenta.js model (shared data) and the package's built-in models.
REAL: dict[str, str] = {
    "magenta_sheep": "magenta_models/sheep.gen.json",
    "builtin_shapes_vae": "builtin:shapes_vae",
    "builtin_shapes_gen": "builtin:shapes_gen",
    "builtin_omniglot_vae": "builtin:omniglot_vae",
    "builtin_shapes_omniglot_sen": "builtin:shapes_omniglot_sen",
}
# More models to check, from the environment: SKETCHRNN_JS_MODELS=PATH[:PATH...], anything
# load_model opens (a run folder, a pretrained folder, a magenta.js .json; a .gen.json is also
# compared with @magenta/sketch), for models these tests have not seen.
EXTRA: dict[str, str] = {
    f"extra{i}_{Path(p).name.split('.')[0]}": "path:" + p
    for i, p in enumerate(filter(None, os.environ.get("SKETCHRNN_JS_MODELS", "").split(os.pathsep)))
}
REAL.update(EXTRA)
ALL_MODELS = [*TINY, *REAL]
MAGENTA_MODELS = ["magenta_sheep"] + [n for n, s in EXTRA.items() if s.endswith(".gen.json")]


@dataclass
class Exported:
    """A PyTorch model and its portable folder."""

    name: str
    model: Any
    folder: Path
    source: Path | None = None  # the file it was loaded from (magenta.js JSON)


class ModelStore:
    """Exports each model the first time a test asks for it."""

    def __init__(self, root: Path):
        self.root = root
        self._done: dict[str, Exported] = {}

    def __call__(self, name: str) -> Exported:
        if name not in self._done:
            self._done[name] = self._export(name)
        return self._done[name]

    def _export(self, name: str) -> Exported:
        try:
            from sketchrnn.models.onnx_export import export_portable
        except ImportError as e:
            pytest.skip(f"the ONNX exporter is not available: {e}")
        from sketchrnn.models import load_model

        base, _, storage = name.partition("@")  # NAME@float16: the weights stored as float16
        source = None
        if base in TINY:
            torch.manual_seed(sorted(TINY).index(base))
            model = TINY[base]().eval()
        else:
            spec = REAL[base]
            if spec.startswith("builtin:"):
                source = BUILTIN / spec.removeprefix("builtin:")
            elif spec.startswith("path:"):
                source = Path(spec.removeprefix("path:"))
            else:
                source = SHARED_DATA / spec
                if not source.exists():
                    pytest.skip(f"shared data not found: {source} (set SKETCHRNN_SHARED_DATA)")
            model = load_model(source).eval()
        folder = self.root / name.replace("@", "-")
        if storage == "float16":
            export_portable(model, folder, name=base, float16=True, tolerance=None)
        else:
            export_portable(model, folder, name=name)
        return Exported(name, model, folder, source)


# ----------------------------------------------------------------------------- the runners


class NodeRunner:
    """Runs jobs in one Node process per call, sketchrnn.js on onnxruntime-node."""

    name = "node"

    def __init__(self, workdir: Path):
        self.workdir = workdir

    def location(self, folder: Path) -> str:
        return str(folder)

    def run(self, jobs: list[dict[str, Any]]) -> list[Any]:
        path = self.workdir / "jobs.json"
        path.write_text(json.dumps(jobs))
        done = subprocess.run(
            ["node", str(HERE / "node_harness.mjs"), str(path)],
            capture_output=True, text=True, timeout=600, cwd=ROOT,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.splitlines()[-1])


class Site:
    """A loopback HTTP server of a folder of links: ``static/`` (the package's page files),
    ``ort/`` (onnxruntime-web's files from node_modules), ``harness/`` (this folder) and
    ``models/`` (exported models)."""

    def __init__(self, root: Path, models: Path):
        root.mkdir(parents=True, exist_ok=True)
        links = {
            "static": STATIC,
            "ort": NODE_MODULES / "onnxruntime-web" / "dist",
            "harness": HERE,
            "models": models,
        }
        for name, target in links.items():
            (root / name).symlink_to(target, target_is_directory=True)
        (root / "index.html").write_text("<!doctype html><title>sketchrnn.js tests</title>\n")

        class Quiet(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

        handler = functools.partial(Quiet, directory=str(root))
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class ChromiumRunner:
    """Runs jobs in a fresh page of Debian's Chromium, sketchrnn.js on onnxruntime-web (its
    WebAssembly CPU build). Every request must stay on the test server."""

    name = "chromium"

    def __init__(self, browser: Any, site: Site, models: Path):
        self.browser, self.site, self.models = browser, site, models

    def location(self, folder: Path) -> str:
        return f"{self.site.url}models/{folder.relative_to(self.models).as_posix()}/"

    def run(self, jobs: list[dict[str, Any]]) -> list[Any]:
        page = self.browser.new_page()
        errors: list[str] = []
        outside: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on(
            "request", lambda r: None if r.url.startswith(self.site.url) else outside.append(r.url)
        )
        try:
            page.goto(self.site.url)
            results = page.evaluate(
                """async (jobs) => {
                    const sk = await import('/static/sketchrnn.js');
                    const ort = await import('/ort/ort.wasm.bundle.min.mjs');
                    const {runJobs} = await import('/harness/harness.mjs');
                    return runJobs(sk, jobs, {ort});
                }""",
                jobs,
            )
        finally:
            page.close()
        assert errors == [], errors
        assert outside == [], f"the page fetched from outside the test server: {outside}"
        return results


def real_tarball(into: Path) -> Path:
    """onnxruntime-web's npm tarball (the locked version) in ``into``, from npm's cache (``npm
    ci`` filled it), for ``sketchrnn runtime install`` from a local server."""
    from sketchrnn.io.js_runtime import ORT_WEB_VERSION

    if shutil.which("npm") is None:
        pytest.skip("npm is not installed")
    done = subprocess.run(
        ["npm", "pack", f"onnxruntime-web@{ORT_WEB_VERSION}", "--prefer-offline",
         "--pack-destination", str(into)],
        capture_output=True, text=True, timeout=300, cwd=into,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"npm pack onnxruntime-web failed: {done.stderr.strip()[-300:]}")
    return into / f"onnxruntime-web-{ORT_WEB_VERSION}.tgz"
