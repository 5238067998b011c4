"""Sampling speed: our batched sampler against ``@magenta/sketch`` under Node, one model.

For a magenta-size decoder-only LSTM (by default the released sheep model, 512 units,
20 mixtures), draws sketches at temperature 0.5 for up to 250 steps each:

* ours: :func:`sketchrnn.generate.sample` in batches of ``--batch`` (default 100);
* magenta.js: ``tests/node/magenta_pdf.js bench``, one sketch at a time as its demos do
  (``update`` + ``getPDF`` + ``sample`` per point, tfjs CPU backend).

Prints sketches/s and points/s for both and the ratio per sketch. Example (small, for a
shared CPU)::

    .venv/bin/python benchmarks/sampling_throughput.py --batch 20 --node-sketches 3

The full run is the default: ``--batch 100 --rounds 3 --node-sketches 20``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import torch

from sketchrnn.generate import load_model, sample

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "node" / "magenta_pdf.js"
DEFAULT_MODEL = Path(
    os.environ.get("SKETCHRNN_SHARED_DATA", ROOT.parent / "shared" / "data")
) / "magenta_models" / "sheep.gen.json"  # fmt: skip
NODE_MODULES = ROOT / "node_modules"  # package-lock.json's @magenta/sketch (make node_modules)


def ours(model_path: Path, batch: int, rounds: int, max_len: int, tau: float) -> tuple:
    model = load_model(model_path)
    sample(model, min(batch, 4), temperature=tau, max_len=8, seed=0)  # warm-up
    sketches = points = 0
    start = time.perf_counter()
    for r in range(rounds):
        drawn = sample(model, batch, temperature=tau, max_len=max_len, seed=r)
        sketches += len(drawn)
        points += sum(len(s) + 1 for s in drawn)  # + the end-of-sketch step
    return sketches, points, time.perf_counter() - start


def find_node_modules(given: str | None) -> Path | None:
    folder = Path(given) if given else NODE_MODULES
    if shutil.which("node") is None:
        print("magenta.js: skipped (node is not installed)")
        return None
    if not (folder / "@magenta" / "sketch").is_dir():
        print(f"magenta.js: skipped ({folder} holds no @magenta/sketch: make node_modules)")
        return None
    return folder


def magenta_js(node_modules: Path, model_path: Path, n: int, max_len: int, tau: float) -> tuple:
    cmd = ["node", str(SCRIPT), "bench", str(model_path), str(n), str(max_len), str(tau)]
    env = {**os.environ, "NODE_PATH": str(node_modules)}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600, check=True)
    result = json.loads(next(x for x in done.stdout.splitlines() if x.startswith('{"sketches"')))
    return result["sketches"], result["points"], result["seconds"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="magenta .gen.json or dir")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--max-len", type=int, default=250)
    ap.add_argument("--temperature", type=float, default=0.5)
    ap.add_argument("--node-sketches", type=int, default=20)
    ap.add_argument(
        "--node-modules",
        help="a node_modules folder holding @magenta/sketch (default: the repository's)",
    )
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    print(f"model {args.model}, temperature {args.temperature}, up to {args.max_len} steps")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    n, pts, sec = ours(args.model, args.batch, args.rounds, args.max_len, args.temperature)
    ours_rate = n / sec
    print(
        f"ours (batch {args.batch}):   {ours_rate:9.2f} sketches/s  {pts / sec:10.0f} points/s"
        f"  ({n} sketches, {pts / n:.0f} points each, {sec:.2f} s)"
    )
    node_modules = find_node_modules(args.node_modules)
    if node_modules is None:
        return
    n, pts, sec = magenta_js(
        node_modules, args.model, args.node_sketches, args.max_len, args.temperature
    )
    js_rate = n / sec
    print(
        f"@magenta/sketch (1 at a time): {js_rate:9.2f} sketches/s  {pts / sec:10.0f} points/s"
        f"  ({n} sketches, {pts / n:.0f} points each, {sec:.2f} s)"
    )
    print(f"speed-up per sketch: {ours_rate / js_rate:.1f}x")


if __name__ == "__main__":
    main()
