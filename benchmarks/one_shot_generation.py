r"""SketchEmbedNet's one-shot generation (Wang et al., section 7), scored by the judge.

The paper trains SketchEmbedNet on Quick, Draw! with 45 classes held out, has it draw one
sketch from one image of a class, and asks a classifier of 45 classes which class the drawing
shows: for classes it was trained on ("seen") and for the held-out ones ("unseen"), beside the
classifier's accuracy on the real drawings. Here the classifier is the judge (DoodleNet, trained
on all of Quick, Draw! by others), asked two ways: among the 45 classes of the set (the paper's
45-way question, the judge's probabilities restricted to those classes) and among all 345.

Stages (``--stage``):

1. **split**: the classes (those the judge knows) are shuffled with ``--seed``; the first
   ``--unseen`` are held out, the next ``--seen`` are the seen classes scored, all but the
   unseen ones are trained on. From ndjson files (no split of their own) each class is written
   to ``WORK/data/<class>.npz`` with, for a scored class, its last ``--examples`` drawings as
   ``test`` (the one-shot inputs, never trained on), one drawing as ``valid`` and the rest as
   ``train``; sketch-rnn
   ``.npz`` files (``--sources``) keep their own splits (examples from ``test``).
2. **train**: ``sketchrnn train sketchembednet`` on the training classes' files (niced, in the
   background of the script: its log is ``WORK/train.log``), unless ``--model`` names one.
3. **judge**: every example of the seen and unseen classes is rendered as the model's input
   image, drawn once (``--temperature``, decoded from the embedding's mean) and judged; the
   real example drawings are judged too (the ceiling). Prints the table and writes
   ``WORK/one_shot.json`` and, with ``--figure``, examples beside their drawings.

At this machine's size (the 344 simplified ndjson classes of ``../shared/data/quickdraw``, 25
drawings a class; 2 shared CPU cores)::

    nice -n 10 .venv/bin/python benchmarks/one_shot_generation.py --minutes 40 \
        --figure docs/figures/one_shot_generation.png

The paper's size (all 345 classes, 70K drawings each, after ``sketchrnn data download --all``;
on a GPU, the paper's model and schedule; 100 examples a class)::

    python benchmarks/one_shot_generation.py --sources ~/.cache/sketchrnn/quickdraw/*.npz \
        --preset paper --batch-size 256 --steps 300000 --minutes 0 --device cuda \
        --examples 100 --work runs/one_shot_full
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SIMPLIFIED = REPO.parent / "shared" / "data" / "quickdraw" / "simplified"
# The judge's files where the shared data has them (no download), else fetched by name.
JUDGE = REPO.parent / "shared" / "data" / "doodlenet"
SETS = ("seen", "unseen")


# ----------------------------------------------------------------------------- split


def choose_classes(names: list[str], args: argparse.Namespace) -> dict[str, list[str]]:
    """``{"unseen": [...], "seen": [...], "train": [...]}`` from a seeded shuffle."""
    order = [names[i] for i in np.random.default_rng(args.seed).permutation(len(names))]
    if len(order) < args.unseen + args.seen:
        raise SystemExit(f"{len(order)} classes: fewer than --unseen + --seen")
    unseen = sorted(order[: args.unseen])
    seen = sorted(order[args.unseen : args.unseen + args.seen])
    return {"unseen": unseen, "seen": seen, "train": sorted(set(names) - set(unseen))}


def split_stage(args: argparse.Namespace, work: Path, judge) -> dict:
    """Write the per-class files (ndjson sources) and ``WORK/split.json``."""
    from sketchrnn.io.formats import read_sketches, write_sketches

    split_file = work / "split.json"
    if args.reuse and split_file.exists():
        return json.loads(split_file.read_text(encoding="utf-8"))
    if args.sources:
        files = {Path(p).stem: Path(p).resolve() for p in args.sources}
    else:
        files = {p.stem: p for p in sorted(Path(args.simplified).glob("*.ndjson"))}
    files = {name: path for name, path in files.items() if judge.find_class(name) is not None}
    if not files:
        raise SystemExit("no class files the judge knows")
    chosen = choose_classes(sorted(files), args)
    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, path in files.items():
        if path.suffix == ".npz":  # its own train/valid/test
            paths[name] = str(path)
            continue
        found = read_sketches(path)
        n = len(found)
        splits = ["train"] * n
        scored = name in chosen["seen"] or name in chosen["unseen"]
        held = args.examples if scored else 0  # the other classes train on every drawing
        for i in range(max(0, n - held), n):
            splits[i] = "test"
        if n - held > 2:
            splits[n - held - 1] = "valid"
        found.splits = splits
        target = data / f"{name}.npz"
        write_sketches(target, found)
        paths[name] = str(target)
    record = {**chosen, "files": paths, "seed": args.seed, "examples": args.examples}
    split_file.write_text(json.dumps(record, indent=1), encoding="utf-8")
    print(
        f"classes: {len(files)} (the judge knows them all), trained on {len(chosen['train'])}, "
        f"held out {len(chosen['unseen'])}; scored: {len(chosen['seen'])} seen, "
        f"{len(chosen['unseen'])} unseen"
    )
    print("unseen:", ", ".join(chosen["unseen"]))
    print("seen:", ", ".join(chosen["seen"]))
    return record


# ----------------------------------------------------------------------------- train


def train_stage(args: argparse.Namespace, work: Path, split: dict) -> Path:
    if args.model:
        return Path(args.model)
    run = work / "sen"
    done = work / "train.done.json"
    if args.reuse and done.exists():
        print(f"model: reusing {run}")
        return run
    cmd = [sys.executable, "-m", "sketchrnn.cli", "train", "sketchembednet"]
    cmd += ["--data", *[split["files"][c] for c in split["train"]]]
    cmd += ["--preset", args.preset, "--batch-size", str(args.batch_size)]
    cmd += ["--max-steps", str(args.steps)]
    if args.minutes > 0:
        cmd += ["--minutes", str(args.minutes)]
    cmd += ["--alpha-every", str(args.alpha_every), "--eval-every", str(args.eval_every)]
    cmd += ["--seed", str(args.seed), "--device", args.device, "--no-progress"]
    cmd += ["--out-dir", str(run)]
    shown = shlex.join(cmd)
    print("$", shown if len(shown) < 400 else f"{shown[:200]} ... {shown[-200:]}", flush=True)
    started = time.perf_counter()
    with open(work / "train.log", "w", encoding="utf-8") as log:
        code = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO).returncode
    if code != 0:
        raise SystemExit(f"training failed: see {work / 'train.log'}")
    minutes = (time.perf_counter() - started) / 60
    done.write_text(json.dumps({"command": shown, "minutes": minutes}), encoding="utf-8")
    print(f"trained in {minutes:.1f} min")
    return run


# ----------------------------------------------------------------------------- judge


def examples_of(split: dict, classes: list[str], limit: int) -> tuple[list, list[str]]:
    """The one-shot inputs: up to ``limit`` test drawings of each class."""
    from sketchrnn.io.formats import read_sketches

    drawings, labels = [], []
    for name in classes:
        found = read_sketches(split["files"][name]).split("test")
        drawings += list(found.strokes[:limit])
        labels += [name] * min(limit, len(found))
    return drawings, labels


def one_shot_drawings(model, drawings: list, temperature: float, seed: int) -> list:
    """Each drawing rendered as the model's input image, then drawn by the model once."""
    import torch

    from sketchrnn.datasets import render_images

    out = []
    size, channels = model.config.image_size, model.config.in_channels
    for start in range(0, len(drawings), 256):
        images = render_images(drawings[start : start + 256], size).astype(np.float32) / 255
        batch = torch.from_numpy(images).unsqueeze(1).expand(-1, channels, -1, -1)
        out += model.generate(batch, temperature=temperature, seed=seed + start)
    return out


def accuracy(judge, verdict, labels: list[str], among: list[str] | None) -> dict:
    """Top-1 (and top-5 among all classes) with Wilson intervals; ``among`` restricts the
    judge's choice to those classes (the paper's 45-way classifier)."""
    from sketchrnn.judge.scores import wilson_interval

    target = np.array([judge.class_index(x) for x in labels])
    log_probs = verdict.log_probs
    if among is not None:
        allowed = np.array([judge.class_index(x) for x in among])
        masked = np.full_like(log_probs, -np.inf)
        masked[:, allowed] = log_probs[:, allowed]
        log_probs = masked
    order = np.argsort(-log_probs, axis=1, kind="stable")
    hits1 = int((order[:, 0] == target).sum())
    hits5 = int((order[:, :5] == target[:, None]).any(axis=1).sum())
    n = len(labels)
    return {
        "n": n,
        "top1": hits1 / n,
        "top1_ci": wilson_interval(hits1, n),
        "top5": hits5 / n,
        "top5_ci": wilson_interval(hits5, n),
    }


def judge_stage(args: argparse.Namespace, work: Path, split: dict, model_path: Path, judge):
    from sketchrnn.embeddings import load_embed_net

    model = load_embed_net(model_path)
    results: dict = {"model": str(model_path), "temperature": args.temperature, "sets": {}}
    pairs = []
    for name in SETS:
        classes = split[name]
        drawings, labels = examples_of(split, classes, args.examples)
        started = time.perf_counter()
        drawn = one_shot_drawings(model, drawings, args.temperature, args.seed)
        seconds = time.perf_counter() - started
        generated = judge.judge(drawn, allow_empty=True, source=f"{name} drawings")
        real = judge.judge(drawings, source=f"{name} examples")
        results["sets"][name] = {
            "classes": len(classes),
            "examples": len(drawings),
            "seconds_drawing": seconds,
            "empty_drawings": sum(len(d) == 0 for d in drawn),
            "points_generated": float(np.mean([len(d) for d in drawn])),
            "points_real": float(np.mean([len(d) for d in drawings])),
            "generated_in_set": accuracy(judge, generated, labels, classes),
            "real_in_set": accuracy(judge, real, labels, classes),
            "generated_all": accuracy(judge, generated, labels, None),
            "real_all": accuracy(judge, real, labels, None),
        }
        first = {}  # the first example of each class, for the figure
        for i, label in enumerate(labels):
            first.setdefault(label, i)
        pairs.append([(drawings[i], drawn[i]) for i in list(first.values())[: args.figure_rows]])
    (work / "one_shot.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    print_table(results)
    if args.figure:
        save_figure(Path(args.figure), pairs)
    return results


def print_table(results: dict) -> None:
    def cell(r: dict, key: str = "top1") -> str:
        lo, hi = r[f"{key}_ci"]
        return f"{r[key]:.1%} [{lo:.1%}, {hi:.1%}]"

    print(f"\none-shot drawings at temperature {results['temperature']} ({results['model']})\n")
    print(
        "| classes | examples | top-1 among the set's classes: drawn | real | "
        "top-1 among all the judge's: drawn | real | top-5 among all: drawn | real |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in results["sets"].items():
        print(
            f"| {name} ({r['classes']}) | {r['examples']} | {cell(r['generated_in_set'])} | "
            f"{cell(r['real_in_set'])} | {cell(r['generated_all'])} | "
            f"{cell(r['real_all'])} | {cell(r['generated_all'], 'top5')} | "
            f"{cell(r['real_all'], 'top5')} |"
        )
    for name, r in results["sets"].items():
        print(
            f"{name}: {r['points_generated']:.0f} points a drawing (real {r['points_real']:.0f}), "
            f"{r['empty_drawings']} empty; drawn in {r['seconds_drawing']:.0f} s"
        )


def save_figure(path: Path, pairs: list[list[tuple]]) -> None:
    """Two blocks (seen, unseen), each row: example, drawing, example, drawing, ..."""
    from sketchrnn.io.formats import write_grid

    sketches = []
    for block in pairs:
        for real, drawn in block:
            sketches += [real, drawn if len(drawn) else np.zeros((0, 3), np.float32)]
    write_grid(path, sketches, ncols=8)
    print(f"wrote {path}: pairs (example, its one-shot drawing), seen classes first")


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--simplified", default=str(SIMPLIFIED), help="folder of class ndjson files")
    p.add_argument("--sources", nargs="+", help="sketch-rnn .npz class files instead")
    p.add_argument("--unseen", type=int, default=45, help="classes held out of training")
    p.add_argument("--seen", type=int, default=45, help="training classes scored")
    p.add_argument("--examples", type=int, default=5, help="one-shot inputs per class")
    p.add_argument("--model", help="a trained SketchEmbedNet (skips training)")
    p.add_argument("--preset", default="small")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--minutes", type=float, default=40.0, help="training budget (0: none)")
    p.add_argument("--alpha-every", type=int, default=500)
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--device", default="cpu")
    p.add_argument("--temperature", type=float, default=0.1)
    p.add_argument(
        "--judge",
        default=str(JUDGE) if JUDGE.is_dir() else "doodlenet",
        help="judge name or folder",
    )
    p.add_argument("--figure", default="", help="PNG of examples beside their drawings")
    p.add_argument("--figure-rows", type=int, default=8, help="classes of each set shown")
    p.add_argument("--work", default=str(REPO / "runs" / "one_shot"))
    p.add_argument("--reuse", action="store_true", help="reuse the split and a finished run")
    p.add_argument("--stage", choices=("all", "train"), default="all")
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
    judge = load_judge(args.judge)
    split = split_stage(args, work, judge)
    model_path = train_stage(args, work, split)
    if args.stage == "all":
        judge_stage(args, work, split, model_path, judge)


if __name__ == "__main__":
    main()
