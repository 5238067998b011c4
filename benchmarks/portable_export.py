"""Portable models: what ``sketchrnn export MODEL FOLDER`` writes and what it costs.

For each model (the built-in models, the released sheep model of magenta.js and, with
``--paper``, a paper-size HyperLSTM VAE: encoder 512, HyperLSTM 2048, N_z 128, M 20, random
weights) prints, with float32 and float16 storage: the bytes of each graph, the seconds the
export took (tracing, checking against PyTorch, writing), and the largest difference between
onnxruntime and PyTorch that the export measured (relative where a value is above 1).

Then, for each model in float32, the time to read a prefix of ``--prefix`` points with
onnxruntime in Python, ``read`` (one call) against ``step`` called once per point, and
PyTorch's ``read_prefix`` beside them, measured in the same run (best of ``--rounds``)::

    .venv/bin/python benchmarks/portable_export.py            # built-ins and sheep
    .venv/bin/python benchmarks/portable_export.py --paper    # and the paper-size HyperLSTM
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from sketchrnn.models import SketchRNN, SketchRNNConfig, load_model
from sketchrnn.models.builtin import builtin_models
from sketchrnn.models.onnx_export import export_portable
from sketchrnn.models.portable import PortableModel

ROOT = Path(__file__).resolve().parents[1]
SHEEP = Path(
    os.environ.get("SKETCHRNN_SHARED_DATA", ROOT.parent / "shared" / "data")
) / "magenta_models" / "sheep.gen.json"  # fmt: skip


def paper_model() -> SketchRNN:
    torch.manual_seed(0)
    model = SketchRNN(SketchRNNConfig.preset("paper"))
    model.set_units(scale_factor=50.0, classes=["paper"])
    return model.eval()


def models(paper: bool) -> dict[str, object]:
    out: dict[str, object] = {name: name for name in builtin_models()}
    if SHEEP.is_file():
        out["sheep.gen.json"] = SHEEP
    if paper:
        out["paper HyperLSTM 2048"] = paper_model
    return out


def best_of(rounds: int, run) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def prefix_times(model, folder: Path, prefix: int, rounds: int) -> tuple[float, float, float]:
    """Seconds to read ``prefix`` points: onnxruntime read, onnxruntime steps, PyTorch."""
    portable = PortableModel(folder)
    m = portable.manifest
    rng = np.random.default_rng(0)
    xs = np.zeros((1, prefix, 5), np.float32)
    xs[0, :, :2] = rng.normal(0, 1, (prefix, 2))
    xs[0, :, 2] = 1.0
    z = np.zeros((1, m.latent_size), np.float32) if m.latent_size else None
    label = np.zeros(1, np.int64) if m.num_classes else None
    state = portable.initial_state(z, 1)

    def steps():
        s = state
        for t in range(prefix):
            _, s = portable.step(xs[:, t], s, z, label)

    def read():
        portable.read(xs, state, z, label)

    tz = None if z is None else torch.from_numpy(z)
    tl = None if label is None else torch.from_numpy(label)
    txs = torch.from_numpy(xs)

    @torch.no_grad()
    def pytorch():
        model.read_prefix(txs, model.initial_state(tz, 1), z=tz, labels=tl)

    for run in (read, steps, pytorch):
        run()  # warm-up
    return best_of(rounds, read), best_of(rounds, steps), best_of(rounds, pytorch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paper", action="store_true", help="add the paper-size HyperLSTM")
    parser.add_argument("--prefix", type=int, default=100, help="points of the read prefix")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), cpus {os.cpu_count()}")
    timings = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, spec in models(args.paper).items():
            model = spec() if callable(spec) else load_model(spec)
            for float16 in (False, True):
                folder = Path(tmp) / f"{name}-{int(float16)}".replace(" ", "_")
                result = export_portable(model, folder, float16=float16)
                sizes = ", ".join(
                    f"{f.removesuffix('.onnx')} {b / 1e6:.2f}"
                    for f, b in result.sizes.items()
                    if f.endswith(".onnx")
                )
                total = result.total_bytes / 1e6
                print(
                    f"{name:<22} {result.manifest.dtype:<7} total {total:7.2f} MB "
                    f"({sizes} MB)  export {result.seconds:6.1f} s  "
                    f"onnxruntime vs PyTorch {result.max_difference:.1e}",
                    flush=True,
                )
                if not float16:
                    timings.append((name, prefix_times(model, folder, args.prefix, args.rounds)))
    print(f"\nreading a prefix of {args.prefix} points, batch 1 (best of {args.rounds}):")
    for name, (read, steps, pytorch) in timings:
        print(
            f"{name:<22} onnxruntime read {read * 1e3:7.2f} ms, {args.prefix} steps "
            f"{steps * 1e3:7.2f} ms (steps / read {steps / read:4.1f}x); "
            f"PyTorch read_prefix {pytorch * 1e3:7.2f} ms"
        )


if __name__ == "__main__":
    main()
