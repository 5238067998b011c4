"""Helpers shared by the tests: where the public sketch data lives (skipping when it is absent),
small random sketches, a fake Omniglot folder, tiny saved models, a numpy magenta.js reference.

Import them with ``from helpers import ...`` (pyproject puts ``tests/`` on the path)."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sketchrnn.io.magenta_json import MagentaWeights
from sketchrnn.models import SketchEmbedNet, SketchEmbedNetConfig

# ../shared/data beside the checkout; SKETCHRNN_SHARED_DATA overrides it.
SHARED_DATA = Path(
    os.environ.get("SKETCHRNN_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def shared_file(relative: str) -> Path:
    """Path of a file under the shared data folder, or skip the test saying what is missing."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"shared data not found: {path} (set SKETCHRNN_SHARED_DATA)")
    return path


def random_sketches(n: int, seed: int = 0, lengths: tuple[int, int] = (4, 12)) -> list[np.ndarray]:
    """Random-walk stroke-3 sketches with 1-3 strokes, integer offsets."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        k = int(rng.integers(*lengths))
        s3 = np.zeros((k, 3), dtype=np.float32)
        s3[:, :2] = rng.integers(-20, 21, size=(k, 2))
        s3[rng.choice(k - 1, size=int(rng.integers(0, 3)), replace=False), 2] = 1
        s3[-1, 2] = 1
        out.append(s3)
    return out


BACKGROUND = {"Bg": 4}
EVALUATION = {"EvA": 6, "EvB": 6}


def write_fake_omniglot(root) -> None:
    """An Omniglot folder in the real layout: 4 background and 12 evaluation characters, the
    Vinyals test split holding every evaluation character at 0 and 90 degrees (24 classes)."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    lines, next_id = ["set\tfirst_id\tlast_id\talphabet"], 1
    test_lines = []
    for subset, alphabets in (("background", BACKGROUND), ("evaluation", EVALUATION)):
        total = sum(alphabets.values())
        # Each character a random blot pattern, each drawer a noisy copy; True is the paper.
        patterns = rng.random((total, 1, 105, 105)) < 0.15
        noise = rng.random((total, 20, 105, 105)) < 0.03
        np.savez(root / f"images_{subset}.npz", images=~(patterns ^ noise))
        for name, count in alphabets.items():
            lines.append(f"{subset}\t{next_id}\t{next_id + count - 1}\t{name}")
            next_id += count
            if subset == "evaluation":
                for index in range(1, count + 1):
                    test_lines += [f"{name}/character{index:02d}/rot{d:03d}" for d in (0, 90)]
    (root / "alphabets.tsv").write_text("\n".join(lines) + "\n")
    (root / "vinyals_splits").mkdir()
    (root / "vinyals_splits" / "test.txt").write_text("\n".join(test_lines) + "\n")


def save_tiny_model(path) -> None:
    torch.manual_seed(0)
    config = SketchEmbedNetConfig(
        image_size=16, z_size=8, dec_hidden=24, num_mixtures=3, cell="lstm", max_seq_len=16
    )
    SketchEmbedNet(config).save_pretrained(path, scale_factor=10.0)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def reference_pdfs(w: MagentaWeights, rows: np.ndarray) -> dict[str, np.ndarray]:
    """magenta.js's update + getPDF (temperature 1) after each stroke-5 row, in float64.

    ``rows`` ``(T, 5)`` in pixels; returns arrays ``(T, 20)`` (``pen`` ``(T, 3)``) of
    probabilities, means, standard deviations and correlations.
    """
    hidden = w.hidden_size
    kernel = np.concatenate([w.input_kernel, w.recurrent_kernel]).astype(np.float64)
    h, c = np.zeros(hidden), np.zeros(hidden)
    out: dict[str, list] = {k: [] for k in ("pi", "mu_x", "mu_y", "sigma_x", "sigma_y", "rho")}
    out["pen"] = []
    for row in np.asarray(rows, dtype=np.float64):
        x = row.copy()
        x[:2] /= w.scale_factor
        i, j, f, o = np.split(np.concatenate([x, h]) @ kernel + w.lstm_bias, 4)
        c = c * _sigmoid(f + 1.0) + _sigmoid(i) * np.tanh(j)
        h = np.tanh(c) * _sigmoid(o)
        y = h @ w.output_kernel + w.output_bias
        pi, mu_x, mu_y, log_sx, log_sy, raw_rho = np.split(y[3:], 6)
        for name, v in (
            ("pi", np.exp(pi - pi.max()) / np.exp(pi - pi.max()).sum()),
            ("mu_x", mu_x),
            ("mu_y", mu_y),
            ("sigma_x", np.exp(log_sx)),
            ("sigma_y", np.exp(log_sy)),
            ("rho", np.tanh(raw_rho)),
            ("pen", np.exp(y[:3] - y[:3].max()) / np.exp(y[:3] - y[:3].max()).sum()),
        ):
            out[name].append(v)
    return {k: np.array(v) for k, v in out.items()}


def probe_rows(seed: int = 0, n: int = 30, spread: float = 40.0) -> np.ndarray:
    """Start token plus ``n`` random stroke-5 rows in pixels (strokes of a few points)."""
    rng = np.random.default_rng(seed)
    lifted = rng.random(n) < 0.2
    rows = np.zeros((n + 1, 5))
    rows[0] = (0, 0, 1, 0, 0)
    rows[1:, :2] = rng.normal(0, spread, (n, 2))
    rows[1:, 2] = ~lifted
    rows[1:, 3] = lifted
    return rows


def write_fake_runs(path: Path, n_runs: int = 2, seed: int = 0, tweak=None) -> Path:
    """An ``all_runs.zip`` in the original layout: per run 20 training and 20 test PNGs (the
    test image of class k a noisy copy of its training image, listed in shuffled order)."""
    rng = np.random.default_rng(seed)

    def png(paper: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(paper).save(buffer, format="PNG")
        return buffer.getvalue()

    with zipfile.ZipFile(path, "w") as zf:
        for r in range(1, n_runs + 1):
            order = rng.permutation(20) + 1
            labels = []
            for item, k in enumerate(order, start=1):
                pattern = rng.random((105, 105)) > 0.1
                zf.writestr(f"run{r:02d}/training/class{k:02d}.png", png(pattern))
                noisy = pattern ^ (rng.random((105, 105)) < 0.01)
                zf.writestr(f"run{r:02d}/test/item{item:02d}.png", png(noisy))
                labels.append(
                    f"run{r:02d}/test/item{item:02d}.png run{r:02d}/training/class{k:02d}.png"
                )
            if tweak:
                labels = tweak(labels)
            zf.writestr(f"run{r:02d}/class_labels.txt", "\n".join(labels) + "\n")
    return path


def write_quickdraw_npz(path: Path, n: tuple[int, int, int] = (40, 5, 5), seed: int = 0) -> Path:
    """A small file in the layout of the official Quick, Draw! sketch-rnn files: keys
    ``train``/``valid``/``test``, object arrays of int16 stroke-3 sketches (no class inside:
    the class is the file's name)."""
    parts, first = {}, 0
    for split, count in zip(("train", "valid", "test"), n, strict=True):
        sketches = random_sketches(count, seed=seed * 1000 + first, lengths=(5, 40))
        arrays = np.empty(count, dtype=object)
        for i, s in enumerate(sketches):  # one by one: equal shapes must not broadcast
            arrays[i] = s.astype(np.int16)
        parts[split] = arrays
        first += count
    np.savez(path, **parts)
    return path


class FolderServer:
    """A local HTTP server on 127.0.0.1 serving the files of ``folder`` under ``prefix``
    (``GET {url}{name}``, names URL-quoted), honouring ``Range: bytes=N-`` (416 past the end)
    unless ``honour_range`` is set false; ``requests`` records ``(path, Range header)``;
    ``missing`` (file names) answer 404 even if present. Use as a context manager: the server
    runs in a thread until the block ends."""

    def __init__(self, folder: Path, prefix: str = "/"):
        import http.server
        import re
        import threading
        import urllib.parse

        outer = self
        self.folder, self.requests, self.missing = Path(folder), [], set()
        self.honour_range = True

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                outer.requests.append((self.path, self.headers.get("Range")))
                if not self.path.startswith(prefix):
                    self.send_error(404)
                    return
                name = urllib.parse.unquote(self.path[len(prefix) :])
                file = outer.folder / name
                if "/" in name or name in outer.missing or not file.is_file():
                    self.send_error(404)
                    return
                data = file.read_bytes()
                match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
                if match and outer.honour_range:
                    start = int(match.group(1))
                    if start >= len(data):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                    data = data[start:]
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}{prefix}"

    def __enter__(self) -> FolderServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def recording_trainer(monkeypatch, max_steps: int, record):
    """A tiny SketchRNN Trainer on 24 random sketches (no run folder, no progress bar) whose
    every training step calls ``record()`` first: for tests of what holds while fit() runs."""
    from sketchrnn.data import datasets_from_sketchset
    from sketchrnn.io.sketchset import SketchSet
    from sketchrnn.models.sketch_rnn import SketchRNN, SketchRNNConfig
    from sketchrnn.train import TrainConfig, Trainer

    data = datasets_from_sketchset(SketchSet(random_sketches(24), splits=["train"] * 24))
    config = SketchRNNConfig(enc_hidden=8, dec_hidden=8, z_size=4, num_mixtures=2)
    train_config = TrainConfig(batch_size=4, max_steps=max_steps, out_dir=None, progress=False)
    trainer = Trainer(SketchRNN(config), train_config, data.train)
    step = trainer.train_step

    def recording_step():
        record()
        return step()

    monkeypatch.setattr(trainer, "train_step", recording_step)
    return trainer
