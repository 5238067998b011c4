r"""The official sketch-rnn models, our sampler against ``@magenta/sketch``'s, scored by the judge.

Two questions about the 24 decoder-only models of ``../shared/data/magenta_models``:

1. **Do the two runtimes draw the same distribution?** ``--n`` samples of every model at
   ``--temperature`` (0.5) from our batched sampler (:func:`sketchrnn.generate.sample`) and
   from ``@magenta/sketch`` 0.2.0 under Node (``tests/node/magenta_pdf.js sample``, one sketch
   at a time as its demos draw; ``getPDF`` given the same tau for the mixture weights and
   the pen as ours, the paper's temperature). The judge scores both: per model top-1 / top-5
   Rec with 95% Wilson intervals, and the difference of the two Rec with its 95% interval
   (Newcombe's hybrid score interval). When both draw the same distribution, about 1 model in
   20 shows a difference whose interval leaves out 0, by chance.
2. **Does a lower temperature give more typical drawings** (the paper's claim)? Rec of our
   samples at each of ``--temperatures`` (0.1 ... 1.0), per model and pooled, as a figure.

Models whose name is not a Quick, Draw! class (``antyoga``) have no Rec: the judge's
confidence and first choice are reported for them instead. Node samples are cached in
``WORK/node/`` (a rerun with ``--reuse`` skips Node). The default run::

    nice -n 10 .venv/bin/python benchmarks/judge_magenta.py \
        --figure docs/figures/rec_temperature.png

needs ``node`` and the repository's ``node_modules`` (``make node_modules``: ``@magenta/sketch``
0.2.0 pinned by package-lock.json; ``--node-modules DIR`` names another). ``--skip-node`` runs
the temperature sweep alone.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SKETCHRNN_SHARED_DATA", ROOT.parent / "shared" / "data"))
SCRIPT = ROOT / "tests" / "node" / "magenta_pdf.js"
TEMPERATURES = "0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.0"


def find_node_modules(given: str | None) -> Path:
    """``--node-modules``, else the repository's (``make node_modules``: the pinned lock)."""
    for folder in (given, ROOT / "node_modules"):
        if folder and (Path(folder) / "@magenta" / "sketch").is_dir():
            return Path(folder)
    raise SystemExit("no @magenta/sketch: run `make node_modules` (or --skip-node)")


def node_samples(
    node_modules: Path, model_path: Path, n: int, max_len: int, tau: float, cache: Path
) -> list[np.ndarray]:
    """``n`` magenta.js samples as stroke-3 arrays (dx, dy, pen lifted), cached."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    if not cache.exists():
        cmd = ["node", str(SCRIPT), "sample", str(model_path), str(n), str(max_len), str(tau)]
        env = {**os.environ, "NODE_PATH": str(node_modules)}
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            raise SystemExit(f"{model_path.name}: node failed: {done.stderr[-1000:]}")
        line = next(x for x in done.stdout.splitlines() if x.startswith('{"sketches"'))
        tmp = cache.with_suffix(".part")
        tmp.write_text(line, encoding="utf-8")
        os.replace(tmp, cache)
    rows = json.loads(cache.read_text(encoding="utf-8"))["sketches"]
    return [
        np.array([[r[0], r[1], r[3]] for r in sketch], dtype=np.float32).reshape(-1, 3)
        for sketch in rows
    ]


def rec(judge, drawings: list[np.ndarray], name: str) -> dict:
    """Top-1 / top-5 Rec of drawings of class ``name`` (None when the judge has no such
    class), with Wilson intervals; the judge's confidence and first choice."""
    from sketchrnn.judge.scores import rec_rows

    verdict = judge.judge(drawings, allow_empty=True, source=name)
    row = rec_rows(judge, verdict, [name] * len(drawings))[0]
    return {
        "n": row.count,
        "top1": row.top1,
        "top1_ci": [row.top1_low, row.top1_high],
        "top5": row.top5,
        "top5_ci": [row.top5_low, row.top5_high],
        "confidence": row.confidence,
        "first_choice": row.most_predicted,
        "first_choice_share": row.most_predicted_share,
        "points": float(np.mean([len(d) for d in drawings])),
        "empty": int(sum(len(d) == 0 for d in drawings)),
    }


def newcombe_difference(a: dict, b: dict, key: str = "top1") -> tuple[float, float, float]:
    """``a - b`` of two independent proportions and its 95% interval (Newcombe 1998, method
    10: from each proportion's Wilson interval)."""
    p1, p2 = a[key], b[key]
    (l1, u1), (l2, u2) = a[f"{key}_ci"], b[f"{key}_ci"]
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return d, low, high


def pooled(results: list[dict], key: str) -> tuple[float, float, float]:
    """Rec over all drawings of the models with a class: value and Wilson interval."""
    from sketchrnn.judge.scores import wilson_interval

    scored = [r for r in results if r[key] is not None]
    hits = sum(round(r[key] * r["n"]) for r in scored)
    count = sum(r["n"] for r in scored)
    low, high = wilson_interval(hits, count)
    return hits / count, low, high


def pct(value: float | None, ci: list | tuple | None = None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.1%}" if ci is None else f"{value:.1%} [{ci[0]:.1%}, {ci[1]:.1%}]"


def compare_runtimes(args, judge, models, node_modules, work: Path) -> dict:
    from concurrent.futures import ThreadPoolExecutor

    from sketchrnn import generate
    from sketchrnn.models import load_model

    def cache_of(path: Path) -> Path:
        name = path.name.removesuffix(".gen.json")
        return work / "node" / f"{name}_{args.n}_{args.temperature:g}.json"

    def fetch(path: Path) -> None:
        """Node's samples of one model into the cache (one Node process each)."""
        if cache_of(path).exists():
            return
        max_len = int(load_model(path).config.max_seq_len)
        started = time.perf_counter()
        node_samples(node_modules, path, args.n, max_len, args.temperature, cache_of(path))
        print(f"{path.name}: magenta.js {time.perf_counter() - started:.0f} s", flush=True)

    # magenta.js draws one sketch at a time on tfjs' pure-JS backend: minutes a model, so
    # --node-jobs models are drawn at once (one Node process each).
    with ThreadPoolExecutor(max_workers=args.node_jobs) as pool:
        list(pool.map(fetch, models))
    rows = {}
    for path in models:
        name = path.name.removesuffix(".gen.json")
        model = load_model(path)
        max_len = int(model.config.max_seq_len)
        started = time.perf_counter()
        ours = generate.sample(model, args.n, temperature=args.temperature, seed=args.seed)
        ours_s = time.perf_counter() - started
        theirs = node_samples(node_modules, path, args.n, max_len, args.temperature, cache_of(path))
        rows[name] = {"ours": rec(judge, ours, name), "magenta.js": rec(judge, theirs, name)}
        print(f"{name}: ours {ours_s:.1f} s", flush=True)
    print(
        f"\n## Our sampler against @magenta/sketch: {args.n} samples a model, "
        f"temperature {args.temperature}\n"
    )
    print(
        "| model | ours: top-1 Rec [95% CI] | magenta.js: top-1 Rec | difference [95% CI] | "
        "ours: top-5 | magenta.js: top-5 | points (ours / magenta.js) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    outside = 0
    scored = 0
    for name, r in rows.items():
        a, b = r["ours"], r["magenta.js"]
        if a["top1"] is None:
            print(
                f"| {name} (not a Quick, Draw! class; first choice, confidence) | "
                f"{a['first_choice']} {a['first_choice_share']:.0%}, {a['confidence']:.2f} | "
                f"{b['first_choice']} {b['first_choice_share']:.0%}, {b['confidence']:.2f} | | | "
                f"| {a['points']:.0f} / {b['points']:.0f} |"
            )
            continue
        scored += 1
        d, low, high = newcombe_difference(a, b)
        r["difference_top1"] = [d, low, high]
        outside += not low <= 0 <= high
        mark = "" if low <= 0 <= high else " *"
        print(
            f"| {name} | {pct(a['top1'], a['top1_ci'])} | {pct(b['top1'], b['top1_ci'])} | "
            f"{d:+.1%} [{low:+.1%}, {high:+.1%}]{mark} | {pct(a['top5'])} | {pct(b['top5'])} | "
            f"{a['points']:.0f} / {b['points']:.0f} |"
        )
    all_ours = pooled([r["ours"] for r in rows.values()], "top1")
    all_js = pooled([r["magenta.js"] for r in rows.values()], "top1")
    print(
        f"| all {scored} classes | {pct(all_ours[0], all_ours[1:])} | "
        f"{pct(all_js[0], all_js[1:])} | {all_ours[0] - all_js[0]:+.1%} | | | |"
    )
    print(
        f"\n{outside} of {scored} differences have an interval that leaves out 0 (marked *; "
        f"{0.05 * scored:.1f} expected by chance when both draw the same distribution)"
    )
    return rows


def temperature_sweep(args, judge, models) -> dict:
    from sketchrnn import generate
    from sketchrnn.models import load_model

    temperatures = [float(t) for t in args.temperatures.split(",")]
    sweep: dict = {}
    for path in models:
        name = path.name.removesuffix(".gen.json")
        if judge.find_class(name) is None:
            continue
        model = load_model(path)
        sweep[name] = {}
        for k, tau in enumerate(temperatures):
            drawings = generate.sample(model, args.n, temperature=tau, seed=args.seed + 7 * k)
            sweep[name][tau] = rec(judge, drawings, name)
        print(name, " ".join(f"{sweep[name][t]['top1']:.2f}" for t in temperatures), flush=True)
    print(f"\n## Rec against temperature: {len(sweep)} models, {args.n} samples each\n")
    print("| temperature | top-1 Rec, pooled [95% CI] | top-5 Rec | mean points | confidence |")
    print("|---:|---:|---:|---:|---:|")
    for tau in temperatures:
        rs = [sweep[m][tau] for m in sweep]
        top1, top5 = pooled(rs, "top1"), pooled(rs, "top5")
        points = np.mean([r["points"] for r in rs])
        confidence = np.mean([r["confidence"] for r in rs])
        print(
            f"| {tau:g} | {pct(top1[0], top1[1:])} | {pct(top5[0], top5[1:])} | {points:.0f} | "
            f"{confidence:.3f} |"
        )
    return {"temperatures": temperatures, "models": sweep}


def save_figure(path: Path, sweep: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    temperatures = sweep["temperatures"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True)
    for ax, key, title in zip(axes, ("top1", "top5"), ("top-1 Rec", "top-5 Rec"), strict=True):
        for by_tau in sweep["models"].values():
            ax.plot(temperatures, [by_tau[t][key] for t in temperatures], color="0.75", lw=0.8)
        rs = [[sweep["models"][m][t] for m in sweep["models"]] for t in temperatures]
        mid = [pooled(r, key) for r in rs]
        ax.plot(temperatures, [m[0] for m in mid], color="C3", lw=2.2, label="all models pooled")
        ax.fill_between(
            temperatures, [m[1] for m in mid], [m[2] for m in mid], color="C3", alpha=0.2
        )
        ax.set_title(f"{title} of the official models' samples")
        ax.set_xlabel("temperature")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("fraction the judge recognises")
    axes[0].plot([], [], color="0.75", lw=0.8, label="one model")
    axes[0].legend(loc="lower left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> None:
    judge_dir = SHARED / "doodlenet"
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=str(SHARED / "magenta_models"), help="folder of .gen.json")
    p.add_argument("--n", type=int, default=200, help="samples per model (and temperature)")
    p.add_argument("--temperature", type=float, default=0.5)
    p.add_argument("--temperatures", default=TEMPERATURES, help="the sweep (comma-separated)")
    p.add_argument("--skip-node", action="store_true", help="the temperature sweep alone")
    p.add_argument("--skip-sweep", action="store_true", help="the runtime comparison alone")
    p.add_argument("--node-modules", help="a node_modules folder holding @magenta/sketch")
    p.add_argument("--node-jobs", type=int, default=2, help="Node processes at once")
    p.add_argument("--judge", default=str(judge_dir) if judge_dir.is_dir() else "doodlenet")
    p.add_argument("--figure", default="", help="PNG of Rec against temperature")
    p.add_argument("--work", default=str(ROOT / "runs" / "judge_magenta"))
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    import torch

    from sketchrnn.judge import load_judge

    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; work {work}"
    )
    models = sorted(Path(args.models).glob("*.gen.json"))
    if not models:
        raise SystemExit(f"no .gen.json models in {args.models}")
    judge = load_judge(args.judge)
    results: dict = {"n": args.n, "temperature": args.temperature, "seed": args.seed}
    started = time.perf_counter()
    if not args.skip_node:
        node_modules = find_node_modules(args.node_modules)
        results["runtimes"] = compare_runtimes(args, judge, models, node_modules, work)
    if not args.skip_sweep:
        results["sweep"] = temperature_sweep(args, judge, models)
        if args.figure:
            save_figure(Path(args.figure), results["sweep"])
    out = work / "results.json"
    out.write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(f"\nwrote {out}; total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
