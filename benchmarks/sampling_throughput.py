"""Sampling speed, before and after the fused decoder step, against ``@magenta/sketch`` under
Node: sketches per second in batches and the time to one whole sketch, on one model.

For a magenta-size decoder-only LSTM (by default the released sheep model, 512 units,
20 mixtures), draws sketches at temperature 0.5 for up to 250 steps each:

* ours, in batches of ``--batch`` (default 100): :func:`sketchrnn.generate.sample`;
* ours, one sketch at a time (``--single`` sketches): the time to a whole sketch, as the
  page and ``sketchrnn sample -n 1`` draw;
* each of the two with the fused step (:mod:`sketchrnn.nn.fused_step`, the default) and with
  ``set_fused_step(False)``, the sequence path that ``Cell.step`` ran before (same seeds,
  interleaved round by round, so that both see the same machine);
* magenta.js: ``tests/node/magenta_pdf.js bench``, one sketch at a time as its demos do
  (``update`` + ``getPDF`` + ``sample`` per point, tfjs CPU backend), in the same run, from
  the repository's ``node_modules`` (``make node_modules``: package-lock.json's version).

Prints sketches/s, points/s and ms per sketch (median) for each, and the ratios. Example
(small, for a shared CPU)::

    .venv/bin/python benchmarks/sampling_throughput.py --batch 20 --rounds 2 --single 5 \\
        --node-sketches 3

The full run is the default: ``--batch 100 --rounds 3 --single 20 --node-sketches 20``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import time
from pathlib import Path

import torch

from sketchrnn.generate import load_model, sample
from sketchrnn.nn.cells import set_fused_step

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "node" / "magenta_pdf.js"
DEFAULT_MODEL = Path(
    os.environ.get("SKETCHRNN_SHARED_DATA", ROOT.parent / "shared" / "data")
) / "magenta_models" / "sheep.gen.json"  # fmt: skip
NODE_MODULES = ROOT / "node_modules"  # package-lock.json's @magenta/sketch (make node_modules)
PATHS = {True: "fused step", False: "step before"}


def _draw(model, n: int, max_len: int, tau: float, seed: int) -> tuple[int, float]:
    """Points drawn (the end-of-sketch step included) and seconds, for ``n`` sketches."""
    start = time.perf_counter()
    drawn = sample(model, n, temperature=tau, max_len=max_len, seed=seed)
    return sum(len(s) + 1 for s in drawn), time.perf_counter() - start


def ours(model, args: argparse.Namespace) -> dict[bool, dict[str, list]]:
    """Per path: ``batch`` (points, seconds) of each round, ``single`` of each sketch."""
    results: dict[bool, dict[str, list]] = {p: {"batch": [], "single": []} for p in PATHS}
    try:
        for fused_step in PATHS:  # warm-up: prepares the weights, builds the kernels
            set_fused_step(fused_step)
            _draw(model, min(args.batch, 4), 8, args.temperature, 0)
        for r in range(args.rounds):
            for fused_step in PATHS:
                set_fused_step(fused_step)
                draw = _draw(model, args.batch, args.max_len, args.temperature, r)
                results[fused_step]["batch"].append(draw)
        for k in range(args.single):
            for fused_step in PATHS:
                set_fused_step(fused_step)
                draw = _draw(model, 1, args.max_len, args.temperature, 1000 + k)
                results[fused_step]["single"].append(draw)
    finally:
        set_fused_step(True)
    return results


def find_node_modules(given: str | None) -> Path | None:
    folder = Path(given) if given else NODE_MODULES
    if shutil.which("node") is None:
        print("magenta.js: skipped (node is not installed)")
        return None
    if not (folder / "@magenta" / "sketch").is_dir():
        print(f"magenta.js: skipped ({folder} holds no @magenta/sketch: make node_modules)")
        return None
    return folder


def magenta_js(node_modules: Path, model_path: Path, n: int, max_len: int, tau: float) -> dict:
    cmd = ["node", str(SCRIPT), "bench", str(model_path), str(n), str(max_len), str(tau)]
    env = {**os.environ, "NODE_PATH": str(node_modules)}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600, check=True)
    return json.loads(next(x for x in done.stdout.splitlines() if x.startswith('{"sketches"')))


def _line(name: str, sketches: int, points: int, seconds: float, each: list[float]) -> float:
    rate = sketches / seconds
    print(
        f"{name:<34} {rate:>10.2f} {points / seconds:>10.0f} "
        f"{statistics.median(each) * 1e3:>12.1f} {seconds / points * 1e3:>9.3f}"
        f"   ({sketches} sketches, {points / sketches:.0f} points each)"
    )
    return rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="magenta .gen.json or dir")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3, help="batches per path")
    ap.add_argument("--single", type=int, default=20, help="sketches one at a time, per path")
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
    model = load_model(args.model)
    results = ours(model, args)
    print(f"{'':<34} {'sketches/s':>10} {'points/s':>10} {'ms/sketch':>12} {'ms/point':>9}")
    rates = {}
    for fused_step, name in PATHS.items():
        for kind, label in (("batch", f"batch {args.batch}"), ("single", "one at a time")):
            runs = results[fused_step][kind]
            points, seconds = sum(p for p, _ in runs), sum(s for _, s in runs)
            count = len(runs) * (args.batch if kind == "batch" else 1)
            each = [s / (args.batch if kind == "batch" else 1) for _, s in runs]
            rates[fused_step, kind] = _line(f"ours, {name}, {label}", count, points, seconds, each)
    for kind in ("batch", "single"):
        print(
            f"fused step vs before, {kind}: {rates[True, kind] / rates[False, kind]:.2f}x "
            "sketches/s"
        )
    node_modules = find_node_modules(args.node_modules)
    if node_modules is None:
        return
    js = magenta_js(node_modules, args.model, args.node_sketches, args.max_len, args.temperature)
    js_rate = _line(
        "@magenta/sketch, one at a time", js["sketches"], js["points"], js["seconds"], js["each"]
    )
    print(
        f"ours per sketch vs @magenta/sketch: batch {rates[True, 'batch'] / js_rate:.1f}x, "
        f"one at a time {rates[True, 'single'] / js_rate:.1f}x "
        f"(before the fused step: {rates[False, 'batch'] / js_rate:.1f}x, "
        f"{rates[False, 'single'] / js_rate:.1f}x)"
    )


if __name__ == "__main__":
    main()
