r"""Many classes in one model: a class-conditional sketch-rnn decoder beside an unconditional one.

The paper (Ha & Eck 2017, appendix "Limitations") finds sketch-rnn "ineffective at modelling a
large number of classes simultaneously": the samples of an unconditional model trained on 75
classes "are incoherent, with individual sketches displaying features from multiple classes",
and proposes "incorporating class information outside of the latent space". This benchmark
measures that, on every class it is given, packed into one store:

1. **pack** the class files into one store with ``sketchrnn data pack`` (files without a split,
   such as Quick, Draw! ndjson, get a per-class train/valid/test split there; the sketch-rnn
   ``.npz`` files keep their own 70K/2.5K/2.5K);
2. **train** two decoder-only sketch-rnn models with the project's CLI, the same size and
   steps: ``--decoder-only --class-conditional`` (a learned class embedding joins the decoder
   input) and ``--decoder-only`` (the paper's unconditional model);
3. **L_R**: the test reconstruction NLL (``L_R = L_s + L_p``) of each model, per class
   (:func:`sketchrnn.evaluate.evaluate` on each class of the store's test split);
4. **Rec**: the judge (DoodleNet, a 345-class classifier trained by others on all of Quick,
   Draw!, :mod:`sketchrnn.judge`; ``--judge``) classifies each drawing among all 345 classes.
   Its accuracy on the real test drawings is the ceiling.
   The conditional model draws ``--samples`` sketches of every class c (label c, temperature
   ``--temperature``); Rec is the fraction the judge puts first (top-1) or among its first
   five (top-5) as c, with a 95% Wilson interval. The unconditional model has no label to
   agree with, so both models' samples (and the real test drawings) are also scored
   label-free: the judge's mean top-1 confidence, the fraction whose confidence passes the
   threshold that half of the real test drawings pass (``coherent@50``), the mean entropy of
   one drawing's class distribution (low: it looks like one class) and the entropy of the
   predicted-class histogram over all samples (high: many classes are drawn).

Prints the settings, timings and a markdown table. At this machine's size (the 344 simplified
ndjson classes of ``../shared/data/quickdraw`` plus the raw drawings not among them)::

    nice -n 10 python benchmarks/many_classes.py --steps 1400 --minutes 30 --parallel \
        --figure docs/figures/many_classes_samples.png

On all of Quick, Draw! (after ``sketchrnn data download --all``, which saves the sketch-rnn
``.npz`` files, 70K/2.5K/2.5K drawings a class with their own splits, under
``~/.cache/sketchrnn/quickdraw``; ``--store DIR`` reuses a store packed once)::

    python benchmarks/many_classes.py --sources ~/.cache/sketchrnn/quickdraw/*.npz \
        --preset magenta --cell hyper --steps 100000 --minutes 0 --device cuda \
        --eval-every 5000 --samples 20 --test-per-class 500 \
        --sample-batch 2000 --figure docs/figures/many_classes_samples_full.png

When ``--minutes`` stops the two trainings at different steps, the one behind is continued
(``sketchrnn train ... --resume``, the exact run) to the other's step; ``--reuse --resume-to
N`` continues both finished runs to step N. Besides L_R, the
script reports the NLL of each test drawing in nats (its points and its end, no padding)
and, for the conditional model, the NLL with the label summed out (``mean_c p(S | c)``, a
density over unlabelled drawings, comparable with the unconditional model's) and with one
fixed label for every drawing (the conditioning input without the class information).

The raw ndjson files here hold 6,857 drawings that are also in the simplified files (the same
``key_id``); packed twice, one copy could land in train and the other in test. The script
packs only the raw drawings whose ``key_id`` is not in the simplified file of their class
(written to ``WORKDIR/raw-extra/``; ``--keep-duplicates`` packs the raw files as they are).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
QUICKDRAW = REPO.parent / "shared" / "data" / "quickdraw"
# The judge's files where the shared data has them (no download), else fetched by name.
JUDGE = REPO.parent / "shared" / "data" / "doodlenet"
MODELS = ("conditional", "unconditional")
# The classes of the paper's Table 1 and Figure 4 (where the store has them).
FIGURE_CLASSES = [
    "cat",
    "pig",
    "face",
    "firetruck",
    "garden",
    "owl",
    "mosquito",
    "yoga",
    "crab",
    "rabbit",
]


def sketchrnn_cli() -> list[str]:
    """The project's command line, run with this interpreter (so the venv's package is used)."""
    return [sys.executable, "-m", "sketchrnn.cli"]


# ----------------------------------------------------------------------------- data


def ndjson_key_ids(path: Path) -> set[str]:
    keys = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                key = json.loads(line).get("key_id")
                if key is not None:
                    keys.add(str(key))
    return keys


def raw_without_duplicates(raw: list[Path], simplified: list[Path], out: Path) -> list[Path]:
    """The raw ndjson drawings whose key_id is not in the simplified file of the same class,
    one file per class under ``out`` (same file names, so labels and splits key the same)."""
    out.mkdir(parents=True, exist_ok=True)
    by_name = {p.name: p for p in simplified}
    written, kept, duplicates = [], 0, 0
    for path in raw:
        seen = ndjson_key_ids(by_name[path.name]) if path.name in by_name else set()
        lines = []
        with open(path, encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                key = json.loads(line).get("key_id")
                if key is not None and str(key) in seen:
                    duplicates += 1
                    continue
                lines.append(line if line.endswith("\n") else line + "\n")
        target = out / path.name
        if lines:
            tmp = target.with_suffix(".part")
            tmp.write_text("".join(lines), encoding="utf-8")
            os.replace(tmp, target)
            written.append(target)
            kept += len(lines)
        elif target.exists():
            target.unlink()
    print(
        f"raw ndjson: {kept:,} drawings not in the simplified files kept, "
        f"{duplicates:,} duplicates (same key_id) left out, {len(written)} files"
    )
    return written


def choose_sources(args: argparse.Namespace, work: Path) -> list[Path]:
    if args.sources:
        paths = [Path(p).expanduser() for p in args.sources]
        if args.classes:
            paths = sorted(paths)[: args.classes]
        return paths
    simplified = sorted(Path(args.simplified).glob("*.ndjson"))
    raw = sorted(Path(args.raw).glob("*.ndjson")) if args.raw else []
    if args.classes:
        names = sorted({p.name for p in simplified} | {p.name for p in raw})[: args.classes]
        simplified = [p for p in simplified if p.name in names]
        raw = [p for p in raw if p.name in names]
    if not simplified and not raw:
        raise SystemExit(f"no ndjson files in {args.simplified} or {args.raw}")
    if raw and not args.keep_duplicates:
        raw = raw_without_duplicates(raw, simplified, work / "raw-extra")
    return simplified + raw


def run_logged(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    shown = shlex.join(cmd)
    if len(shown) > 400:  # hundreds of class files: the shape of the command is enough
        shown = f"{shown[:200]} ... {shown[-160:]}"
    print("$", shown, flush=True)
    f = open(log, "w", encoding="utf-8")  # noqa: SIM115 (closed by the caller's wait)
    return subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=REPO)


def pack_store(args: argparse.Namespace, work: Path) -> Path:
    if args.store:
        return Path(args.store).resolve()
    store = work / "store"
    if args.reuse and (store / "manifest.json").exists():
        print(f"store: reusing {store}")
        return store
    sources = choose_sources(args, work)
    cmd = [*sketchrnn_cli(), "data", "pack", *map(str, sources), "--out", str(store)]
    cmd += ["--overwrite", "--split-fractions", *map(str, args.split_fractions)]
    started = time.perf_counter()
    proc = run_logged(cmd, work / "pack.log")
    if proc.wait() != 0:
        raise SystemExit(f"pack failed: see {work / 'pack.log'}")
    lines = (work / "pack.log").read_text(encoding="utf-8").strip().splitlines()
    print(lines[-1].split("\r")[-1] if lines else "", f"({time.perf_counter() - started:.0f} s)")
    return store


# ----------------------------------------------------------------------------- train


def train_command(
    args: argparse.Namespace,
    store: Path,
    name: str,
    out: Path,
    steps: int | None = None,
    minutes: float | None = None,
) -> list[str]:
    steps = args.steps if steps is None else steps
    minutes = args.minutes if minutes is None else minutes
    cmd = [*sketchrnn_cli(), "train", "sketch-rnn", "--data", str(store), "--decoder-only"]
    if name == "conditional":
        cmd.append("--class-conditional")
    cmd += ["--preset", args.preset, "--steps", str(steps), "--seed", str(args.seed)]
    cmd += ["--batch-size", str(args.batch_size), "--max-len", str(args.max_len)]
    cmd += ["--eval-every", str(args.eval_every), "--out", str(out), "--no-progress"]
    cmd += ["--device", args.device]
    if args.dec_hidden:
        cmd += ["--dec-hidden", str(args.dec_hidden)]
    if args.cell:
        cmd += ["--cell", args.cell]
    if minutes:
        cmd += ["--minutes", str(minutes)]
    return cmd


def last_step(run: Path) -> int:
    log = run / "log.csv"
    if not log.exists():
        return 0
    with open(log, encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r.get("step")]
    return int(rows[-1]["step"]) if rows else 0


def trained_seconds(log: Path, fallback: float) -> float:
    """The trainer's own "trained N steps in S s" (the wall time from its first step; the
    runs are waited for one after the other, so the time of the wait is not the run's)."""
    found = re.findall(r"trained \d+ steps in (\d+(?:\.\d+)?) s", log.read_text(encoding="utf-8"))
    return float(found[-1]) if found else fallback


def train_models(args: argparse.Namespace, store: Path, work: Path) -> dict[str, dict]:
    """Train (or reuse) both models; returns per model its command, seconds and steps."""
    runs: dict[str, dict] = {}
    todo = []
    for name in MODELS:
        out = work / name
        done = work / f"{name}.done.json"
        if args.reuse and done.exists():
            runs[name] = json.loads(done.read_text(encoding="utf-8"))
            print(f"{name}: reusing {out} ({runs[name]['steps']} steps)")
        else:
            todo.append((name, out, done))
    env = dict(os.environ)
    if args.parallel and len(todo) > 1:
        # Two trainings side by side share the cores: one thread each instead of both
        # oversubscribing (same conditions for both models).
        threads = max(1, (os.cpu_count() or 2) // len(todo))
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    waves = [todo] if args.parallel else [[t] for t in todo]
    for wave in waves:
        procs = []
        for name, out, done in wave:
            cmd = train_command(args, store, name, out)
            procs.append(
                (
                    name,
                    out,
                    done,
                    cmd,
                    time.perf_counter(),
                    run_logged(cmd, work / f"{name}.log", env),
                )
            )
        for name, out, done, cmd, started, proc in procs:
            if proc.wait() != 0:
                raise SystemExit(f"training {name} failed: see {work / f'{name}.log'}")
            record = {
                "command": shlex.join(cmd),
                "seconds": trained_seconds(work / f"{name}.log", time.perf_counter() - started),
                "steps": last_step(out),
            }
            done.write_text(json.dumps(record, indent=1), encoding="utf-8")
            runs[name] = record
            print(f"{name}: {record['steps']} steps in {record['seconds'] / 60:.1f} min")
    return equal_steps(args, store, work, runs)


def equal_steps(args: argparse.Namespace, store: Path, work: Path, runs: dict) -> dict:
    """When the time budget stopped the two models at different steps, continue the one
    behind (``--resume``, the exact run) to the other's step: same size, same steps. With
    ``--resume-to N``, continue both to step N (side by side with ``--parallel``)."""
    target = max([r["steps"] for r in runs.values()] + [args.resume_to])
    behind = [name for name in MODELS if runs[name]["steps"] < target]
    env = dict(os.environ)
    if args.parallel and len(behind) > 1:  # one thread each, as in train_models
        threads = max(1, (os.cpu_count() or 2) // len(behind))
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    waves = [behind] if args.parallel else [[name] for name in behind]
    for wave in waves:
        procs = []
        for name in wave:
            out = work / name
            cmd = train_command(args, store, name, out, steps=target, minutes=0.0) + ["--resume"]
            log = work / f"{name}.resume.log"
            procs.append((name, cmd, log, time.perf_counter(), run_logged(cmd, log, env)))
        for name, cmd, log, started, proc in procs:
            if proc.wait() != 0:
                raise SystemExit(f"resuming {name} failed: see {log}")
            record = runs[name]
            done = record.get("resumed", [])
            entry = {
                "command": shlex.join(cmd),
                "from_step": record["steps"],
                "seconds": trained_seconds(log, time.perf_counter() - started),
            }
            record["resumed"] = (done if isinstance(done, list) else [done]) + [entry]
            record["seconds"] += entry["seconds"]
            record["steps"] = last_step(work / name)
            (work / f"{name}.done.json").write_text(json.dumps(record, indent=1), encoding="utf-8")
            print(
                f"{name}: resumed from step {entry['from_step']} to {record['steps']} "
                f"in {entry['seconds'] / 60:.1f} min"
            )
    return runs


# ----------------------------------------------------------------------------- measure


def per_class_lr(model, test, batch_size: int) -> np.ndarray:
    """Test L_R of every class (NaN where a class has no test drawing): ``(num_classes,)``."""
    from sketchrnn.evaluate import evaluate

    out = np.full(len(test.classes), np.nan)
    for k in np.unique(test.labels):
        out[k] = evaluate(model, test.subset(np.flatnonzero(test.labels == k)), batch_size)["L_R"]
    return out


def drawing_nll(model, dataset, batch_size: int, label: int | None = None) -> np.ndarray:
    """``-log p(S)`` of every drawing, in nats ``(len(dataset),)``: the offsets of its real
    points and the pen states up to and including its end (not the padding after it, so a
    drawing's figure does not depend on N_max). ``label``: the class a class-conditional
    model is given for every drawing (None: each drawing's own)."""
    import torch

    from sketchrnn.datasets import to_device
    from sketchrnn.nn.mixture import offset_log_likelihood, pen_log_likelihood

    lengths = np.asarray(dataset.lengths)
    order = np.argsort(lengths, kind="stable")  # similar lengths together: little padding
    out = np.empty(len(dataset))
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            batch = to_device(dataset.batch(index, augment=False), model.device)
            n = batch.lengths
            strokes = batch.strokes[:, : int(n.max()) + 2]  # start row, points, one end row
            labels = None
            if model.num_classes > 0:
                labels = batch.labels if label is None else torch.full_like(batch.labels, label)
            mixture = model(strokes, n, labels).mixture
            targets = strokes[:, 1:]
            steps = torch.arange(targets.shape[1], device=targets.device)[None]
            offsets = offset_log_likelihood(mixture, targets[..., 0], targets[..., 1])
            offsets = torch.where(steps < n[:, None], offsets, torch.zeros_like(offsets))
            pens = pen_log_likelihood(mixture, targets[..., 2:5])
            pens = torch.where(steps <= n[:, None], pens, torch.zeros_like(pens))
            out[index] = -(offsets.sum(1) + pens.sum(1)).double().cpu().numpy()
    return out


def test_split(store: Path, model, classes: list[str]):
    """The store's test split in the model's units and padding (as during training)."""
    from sketchrnn.data import load_datasets
    from sketchrnn.models.units import model_scale_factor

    splits = load_datasets(
        [os.fspath(store)],
        max_len=int(model.config.max_seq_len),
        scale_factor=model_scale_factor(model),
        pad_to_max_len=True,
    )
    if list(splits.classes) != classes:
        raise SystemExit("the two models were trained on stores with different classes")
    return splits


def at_most_per_class(labels: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of at most ``limit`` items of each class, chosen at random (0: all)."""
    if limit <= 0:
        return np.arange(len(labels))
    chosen = []
    for k in np.unique(labels):
        members = np.flatnonzero(labels == k)
        chosen.append(rng.permutation(members)[:limit] if len(members) > limit else members)
    return np.sort(np.concatenate(chosen))


def stroke3_list(dataset) -> list[np.ndarray]:
    """The dataset's sketches as stroke-3 arrays (units do not matter to a fitted render)."""
    return [np.asarray(dataset.sketches[i], dtype=np.float32) for i in range(len(dataset))]


def entropy(p: np.ndarray, axis: int = -1) -> np.ndarray:
    return -(p * np.log(np.clip(p, 1e-12, None))).sum(axis=axis)


def label_free_scores(probs: np.ndarray, threshold: float) -> dict[str, float]:
    top = probs.max(axis=1)
    hist = np.bincount(probs.argmax(axis=1), minlength=probs.shape[1]) / len(probs)
    return {
        "confidence": float(top.mean()),
        "coherent": float((top >= threshold).mean()),
        "entropy": float(entropy(probs).mean()),
        "spread": float(entropy(hist)),
        "classes_hit": int((hist > 0).sum()),
    }


def sample_all(model, labels: np.ndarray | None, n: int, args) -> list[np.ndarray]:
    from sketchrnn.generate import sample

    out: list[np.ndarray] = []
    for start in range(0, n, args.sample_batch):
        stop = min(n, start + args.sample_batch)
        chunk = None if labels is None else labels[start:stop]
        out += sample(
            model,
            stop - start,
            temperature=args.temperature,
            labels=chunk,
            seed=args.seed + start,
        )
    return out


def save_grid(path: Path, cond: dict, uncond: list[np.ndarray], classes: list[str], per_row: int):
    """Conditional samples of a few classes (one row each, class name on the left) above rows
    of unconditional samples."""
    from PIL import Image, ImageDraw

    from sketchrnn.io.raster import render_grid

    cell, label_w = 64, 130
    rows = [(f"cond: {classes[k]}", sketches[:per_row]) for k, sketches in cond.items()]
    for r in range(0, min(len(uncond), 2 * per_row), per_row):
        rows.append(("unconditional", uncond[r : r + per_row]))
    canvas = Image.new("L", (label_w + per_row * cell, len(rows) * cell), 255)
    draw = ImageDraw.Draw(canvas)
    for i, (title, sketches) in enumerate(rows):
        ink = render_grid(sketches, ncols=per_row, cell=cell, line_width=1.2)
        strip = Image.fromarray(((1.0 - ink) * 255).astype(np.uint8))
        canvas.paste(strip, (label_w, i * cell))
        draw.text((4, i * cell + cell // 2 - 6), title[:22], fill=0)
        if title == "unconditional" and rows[i - 1][0] != "unconditional":
            draw.line([(0, i * cell), (canvas.width, i * cell)], fill=0, width=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    print(f"figure: {path}")


def measure_densities(args, store: Path, models: dict, classes: list[str], test, test_index):
    """L_R per class and the per-drawing NLLs (with every label for the conditional model)."""
    num = len(classes)
    # L_R per class on the real test drawings (both models see the same drawings).
    started = time.perf_counter()
    lr = {}
    for name, model in models.items():
        data = test_split(store, model, classes).test.subset(test_index)
        lr[name] = per_class_lr(model, data, args.eval_batch)
    print(f"L_R measured in {time.perf_counter() - started:.0f} s")

    # The fair comparison of densities: the conditional model with the label summed out,
    # p(S) = mean_c p(S | c), is an unconditional model too (it cannot be more than
    # log(num_classes) nats a drawing worse than the conditional one given the label).
    started = time.perf_counter()
    data = {
        name: test_split(store, m, classes).test.subset(test_index) for name, m in models.items()
    }
    model = models["conditional"]
    model.eval()
    models["unconditional"].eval()
    nll_given = drawing_nll(model, data["conditional"], args.eval_batch)
    nll_uncond = drawing_nll(models["unconditional"], data["unconditional"], args.eval_batch)
    by_class = np.stack(
        [drawing_nll(model, data["conditional"], args.eval_batch, k) for k in range(num)], axis=1
    )
    top = by_class.min(axis=1)
    nll_marginal = top - np.log(np.exp(top[:, None] - by_class).mean(axis=1))
    likely_class = float((by_class.argmin(axis=1) == test.labels).mean())
    # One label for every drawing: the constant input without the class information.
    one_label = int(by_class.mean(axis=0).argmin())
    print(f"per-drawing NLL with every label measured in {time.perf_counter() - started:.0f} s")

    return {
        "lr": lr,
        "nll_given": nll_given,
        "nll_uncond": nll_uncond,
        "by_class": by_class,
        "nll_marginal": nll_marginal,
        "likely_class": likely_class,
        "one_label": one_label,
    }


def density_rows(d: dict, classes: list[str], n_test: int) -> list[tuple[str, str, str, str]]:
    """The table's L_R and NLL rows (see :func:`measure_densities`)."""
    lr = d["lr"]
    both = ~np.isnan(lr["conditional"]) & ~np.isnan(lr["unconditional"])
    diff = lr["unconditional"][both] - lr["conditional"][both]
    wins = int((diff > 0).sum())
    c, u = lr["conditional"][both], lr["unconditional"][both]
    nll_given, nll_uncond, nll_marginal = d["nll_given"], d["nll_uncond"], d["nll_marginal"]
    by_class, one_label, likely_class = d["by_class"], d["one_label"], d["likely_class"]
    return [
        ("test L_R, mean over classes", "", f"{c.mean():.3f}", f"{u.mean():.3f}"),
        ("test L_R, median over classes", "", f"{np.median(c):.3f}", f"{np.median(u):.3f}"),
        (
            "test L_R, 10th / 90th percentile over classes",
            "",
            f"{np.percentile(c, 10):.3f} / {np.percentile(c, 90):.3f}",
            f"{np.percentile(u, 10):.3f} / {np.percentile(u, 90):.3f}",
        ),
        (
            "classes where it has the lower test L_R",
            "",
            f"{wins} of {len(diff)}",
            f"{len(diff) - wins} of {len(diff)}",
        ),
        (
            "test NLL per drawing (nats), mean: given its label",
            "",
            f"{nll_given.mean():.1f}",
            "",
        ),
        (
            "test NLL per drawing (nats), mean: no label (conditional: label summed out)",
            "",
            f"{nll_marginal.mean():.1f}",
            f"{nll_uncond.mean():.1f}",
        ),
        (
            f"test NLL per drawing (nats), mean: the same label for all ({classes[one_label]})",
            "",
            f"{by_class[:, one_label].mean():.1f}",
            "",
        ),
        (
            "drawings where it has the lower no-label NLL",
            "",
            f"{int((nll_marginal < nll_uncond).sum())} of {n_test}",
            f"{int((nll_uncond < nll_marginal).sum())} of {n_test}",
        ),
        (
            "generative classifier: the label that makes the drawing most likely is its class",
            "",
            f"{likely_class:.1%}",
            "n/a",
        ),
    ]


def measure(args: argparse.Namespace, store: Path, work: Path, runs: dict) -> None:
    import logging

    import torch

    from sketchrnn.models import load_model

    # The per-file "dropped N sketches longer than max_len" warnings were shown in training.
    logging.getLogger("sketchrnn").setLevel(logging.ERROR)
    torch.manual_seed(args.seed)
    models = {name: load_model(work / name, args.device) for name in MODELS}
    classes = list(models["conditional"].classes)
    splits = test_split(store, models["conditional"], classes)
    num = len(classes)
    rng = np.random.default_rng(args.seed)
    test_index = at_most_per_class(splits.test.labels, args.test_per_class, rng)
    test = splits.test.subset(test_index)
    print(
        f"data: {len(splits.train):,} train / {len(splits.valid):,} valid / "
        f"{len(splits.test):,} test drawings, {num} classes; measured on {len(test):,} test "
        "drawings"
    )

    if args.densities:
        densities = measure_densities(args, store, models, classes, test, test_index)
    else:
        densities = None
        print("densities (L_R, NLL) not measured (--no-densities)")

    # The judge: trained by others on all of Quick, Draw!; the store's classes are its classes.
    started = time.perf_counter()
    from sketchrnn.judge import load_judge
    from sketchrnn.judge.scores import wilson_interval

    judge = load_judge(args.judge)
    known = np.array([judge.find_class(c) if judge.find_class(c) is not None else -1
                      for c in classes])  # fmt: skip
    if (known < 0).any():
        unknown = [c for c, k in zip(classes, known, strict=True) if k < 0]
        print(f"the judge does not know {len(unknown)} classes (no Rec for them): {unknown[:5]}")

    def probabilities(sketches: list[np.ndarray]) -> np.ndarray:
        """The judge's probabilities of all its classes ``(N, judge classes)``."""
        return judge.judge(sketches, allow_empty=True, source="drawings").probs

    def rec_at(p: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
        """Whether each drawing's class (a store label) is among the judge's first ``k``."""
        top = np.argsort(-p, axis=1, kind="stable")[:, :k]
        return (top == known[labels][:, None]).any(1) & (known[labels] >= 0)

    p_test = probabilities(stroke3_list(test))
    real_hit, real_hit5 = rec_at(p_test, test.labels, 1), rec_at(p_test, test.labels, 5)
    real_acc, real_top5 = float(real_hit.mean()), float(real_hit5.mean())
    threshold = float(np.median(p_test.max(axis=1)))
    print(
        f"judge ({args.judge}, {len(judge.classes)} classes): real test top-1 {real_acc:.1%}, "
        f"top-5 {real_top5:.1%}; judged in {time.perf_counter() - started:.0f} s"
    )

    # Samples: N per class with its label (conditional); as many unconditional ones.
    started = time.perf_counter()
    labels = np.repeat(np.arange(num), args.samples)
    samples = {
        "conditional": sample_all(models["conditional"], labels, len(labels), args),
        "unconditional": sample_all(models["unconditional"], None, len(labels), args),
    }
    print(f"sampled 2 x {len(labels):,} sketches in {time.perf_counter() - started:.0f} s")
    probs = {name: probabilities(s) for name, s in samples.items()}
    rec = rec_at(probs["conditional"], labels, 1)
    rec5 = rec_at(probs["conditional"], labels, 5)

    def ci(hits: np.ndarray) -> str:
        low, high = wilson_interval(int(hits.sum()), len(hits))
        return f"{hits.mean():.1%} [{low:.1%}, {high:.1%}]"

    scores = {name: label_free_scores(p, threshold) for name, p in probs.items()}
    scores["real test"] = label_free_scores(p_test, threshold)
    lengths = {name: float(np.mean([len(s) for s in ss])) for name, ss in samples.items()}
    real_length = float(np.mean(test.lengths))

    # Figure: conditional samples of the paper's classes (where present, else classes spread
    # over the list), then unconditional ones.
    shown = [classes.index(c) for c in args.figure_classes if c in classes][:10]
    if len(shown) < min(10, num):
        spread = np.linspace(0, num - 1, min(10, num)).round().astype(int).tolist()
        shown += [k for k in spread if k not in shown][: min(10, num) - len(shown)]
    cond_by_class = {
        int(k): [samples["conditional"][i] for i in np.flatnonzero(labels == k)] for k in shown
    }
    if args.figure:
        save_grid(
            Path(args.figure),
            cond_by_class,
            samples["unconditional"],
            classes,
            min(args.samples, 8),
        )

    sc, su, sr = scores["conditional"], scores["unconditional"], scores["real test"]
    steps = f"{runs['conditional']['steps']} / {runs['unconditional']['steps']}"
    rows = density_rows(densities, classes, len(test)) if densities else []
    rows += [
        (
            "Rec: classified as the class it was drawn for (top-1)",
            f"{ci(real_hit)} (the ceiling)",
            f"{ci(rec)} ({rec.mean() / max(real_acc, 1e-9):.0%} of the ceiling)",
            "n/a (no class asked for)",
        ),
        ("Rec, top-5", ci(real_hit5), ci(rec5), "n/a"),
        (
            "judge's top-1 confidence, mean",
            f"{sr['confidence']:.3f}",
            f"{sc['confidence']:.3f}",
            f"{su['confidence']:.3f}",
        ),
        (
            f"coherent@50: top-1 confidence >= {threshold:.3f}",
            "50% (by definition)",
            f"{sc['coherent']:.1%}",
            f"{su['coherent']:.1%}",
        ),
        (
            "entropy of one drawing's predicted class distribution, mean (nats)",
            f"{sr['entropy']:.2f}",
            f"{sc['entropy']:.2f}",
            f"{su['entropy']:.2f}",
        ),
        (
            f"entropy of the histogram of predicted classes (nats; uniform over the {num} "
            f"classes {math.log(num):.2f})",
            f"{sr['spread']:.2f}",
            f"{sc['spread']:.2f}",
            f"{su['spread']:.2f}",
        ),
        (
            "classes predicted at least once",
            f"{sr['classes_hit']}",
            f"{sc['classes_hit']}",
            f"{su['classes_hit']}",
        ),
        (
            "points per drawing, mean",
            f"{real_length:.0f}",
            f"{lengths['conditional']:.0f}",
            f"{lengths['unconditional']:.0f}",
        ),
    ]
    print()
    print(
        f"## Many classes in one model: {num} classes, {steps} steps, tau {args.temperature}, "
        f"{args.samples} samples per class ({len(labels):,} per model), "
        f"{len(test):,} real test drawings"
    )
    print()
    print("| | real test drawings | class-conditional decoder | unconditional decoder |")
    print("|---|---:|---:|---:|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    for name in MODELS:
        record = runs[name]
        print(f"\n{name}: {record['steps']} steps in {record['seconds'] / 60:.1f} min")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    data = p.add_argument_group("data")
    data.add_argument(
        "--simplified",
        default=str(QUICKDRAW / "simplified"),
        help="folder of simplified ndjson class files",
    )
    data.add_argument(
        "--raw",
        default=str(QUICKDRAW / "raw"),
        help="folder of raw ndjson class files ('' for none)",
    )
    data.add_argument("--sources", nargs="+", help="pack these files instead (e.g. all .npz)")
    data.add_argument("--store", help="a store already packed (skips packing)")
    data.add_argument("--classes", type=int, default=0, help="only the first N classes (0: all)")
    data.add_argument(
        "--keep-duplicates",
        action="store_true",
        help="pack raw drawings also present in the simplified files",
    )
    data.add_argument("--split-fractions", nargs=3, type=float, default=(0.8, 0.1, 0.1))
    data.add_argument("--max-len", type=int, default=250)
    model = p.add_argument_group("training (the same for both models)")
    model.add_argument("--preset", default="small")
    model.add_argument("--dec-hidden", type=int, default=0, help="0: the preset's")
    model.add_argument("--cell", default="", help="'': the preset's")
    model.add_argument("--steps", type=int, default=2000)
    model.add_argument("--minutes", type=float, default=25.0, help="budget per model (0: none)")
    model.add_argument("--batch-size", type=int, default=100)
    model.add_argument("--eval-every", type=int, default=500)
    model.add_argument("--device", default="cpu")
    model.add_argument("--parallel", action="store_true", help="train both at once")
    model.add_argument(
        "--densities",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="measure L_R per class and the per-drawing NLLs (with every label: one pass per "
        "class over the test drawings); --no-densities: the judge's rows alone",
    )
    model.add_argument(
        "--resume-to",
        type=int,
        default=0,
        help="continue both finished runs (--resume) to this step before measuring",
    )
    measure_ = p.add_argument_group("measuring")
    measure_.add_argument("--samples", type=int, default=5, help="samples per class")
    measure_.add_argument(
        "--test-per-class", type=int, default=0, help="L_R and Rec: at most N per class (0: all)"
    )
    measure_.add_argument("--temperature", type=float, default=0.5)
    measure_.add_argument("--sample-batch", type=int, default=500)
    measure_.add_argument("--eval-batch", type=int, default=100)
    measure_.add_argument(
        "--judge",
        default=str(JUDGE) if JUDGE.is_dir() else "doodlenet",
        help="the judge: a name or a folder with model.json and class_names.txt",
    )
    measure_.add_argument("--figure", default="", help="PNG of samples (none if empty)")
    measure_.add_argument(
        "--figure-classes",
        nargs="*",
        default=FIGURE_CLASSES,
        help="classes whose conditional samples the figure shows",
    )
    p.add_argument("--work", default=str(REPO / "runs" / "many_classes"))
    p.add_argument("--reuse", action="store_true", help="reuse a store and finished runs")
    p.add_argument(
        "--stage", choices=("all", "train"), default="all", help="train: stop after training"
    )
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    import torch

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; work {work}"
    )
    started = time.perf_counter()
    store = pack_store(args, work)
    runs = train_models(args, store, work)
    if args.stage == "all":
        measure(args, store, work, runs)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
