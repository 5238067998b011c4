"""``sketchrnn fewshot``: N-way K-shot Omniglot accuracy of a model and baselines, all on the
same seeded episodes (:mod:`sketchrnn.fewshot`, :mod:`sketchrnn.baselines`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sketchrnn.cli.options import add_command, bounded, defaults_of, seed_type


def register(subparsers: argparse._SubParsersAction) -> None:
    add_command(
        subparsers,
        "fewshot",
        _fewshot,
        _arguments,
        help="N-way K-shot Omniglot accuracy of a model and baselines",
    )


def _arguments(q: argparse.ArgumentParser) -> None:
    from sketchrnn import baselines, fewshot
    from sketchrnn.models.config import MAX_IMAGE_SIDE, MAX_STEPS

    table = defaults_of(fewshot.run_fewshot_table)
    embedders = defaults_of(baselines.build_embedders)
    q.add_argument("--model", required=True, metavar="RUN_DIR", help="a SketchEmbedNet")
    q.add_argument(
        "--baselines",
        default="conv-vae,random-conv4",
        help="comma-separated: conv-vae[:PATH], random-conv4, pixels; same episodes for all "
        "(conv-vae without PATH trains one on the Omniglot background images)",
    )
    q.add_argument(
        "--split",
        choices=["vinyals-test", "lake", "all-runs"],
        default="vinyals-test",
        help="all-runs: Lake et al.'s 20 original one-shot runs (all_runs.zip)",
    )
    ways = bounded(int, low=2, high=fewshot.MAX_WAYS)
    shots = bounded(int, low=1, high=fewshot.MAX_SHOTS)
    q.add_argument("--ways", type=ways, nargs="+", default=list(table["ways"]))
    q.add_argument("--shots", type=shots, nargs="+", default=list(table["shots"]))
    q.add_argument("--queries", type=shots, default=table["n_query"], help="query images per class")
    q.add_argument(
        "--episodes", type=bounded(int, low=1, high=fewshot.MAX_EPISODES), default=table["episodes"]
    )
    q.add_argument(
        "--seed", type=seed_type(), default=table["seed"], help="episodes (and baseline weights)"
    )
    q.add_argument(
        "--image-size",
        type=bounded(int, low=16, high=MAX_IMAGE_SIDE),
        default=embedders["image_size"],
    )
    q.add_argument("--omniglot", default=embedders["omniglot"], help="Omniglot data folder")
    q.add_argument(
        "--conv-vae-steps",
        type=bounded(int, low=0, high=MAX_STEPS),
        default=defaults_of(baselines.train_quick_conv_vae)["steps"],
    )
    q.add_argument(
        "--conv-vae-data",
        nargs="+",
        metavar="FILE",
        help="train the conv-vae baseline on images of these stroke files (the model's own "
        "training files), not on the Omniglot background",
    )
    q.add_argument(
        "--conv-vae-out",
        metavar="DIR",
        help="keep the conv-vae trained here (e.g. for embed arrangements --conv-vae DIR)",
    )
    q.add_argument("--out", help="write the table: .csv, or Markdown for any other suffix")
    q.add_argument("--progress", action="store_true", help="progress bars")


def _fewshot(args: argparse.Namespace) -> None:
    from sketchrnn import baselines, fewshot
    from sketchrnn.io.omniglot_images import load_omniglot_split
    from sketchrnn.models import load_model

    chosen = baselines.parse_baselines(args.baselines)  # a bad spec fails before any loading
    embedders = baselines.build_embedders(
        load_model(args.model),
        chosen,
        args.image_size,
        seed=args.seed,
        omniglot=args.omniglot,
        conv_vae_steps=args.conv_vae_steps,
        conv_vae_data=args.conv_vae_data,
        conv_vae_out=args.conv_vae_out,
        log=lambda message: print(message, file=sys.stderr),
    )
    if args.split == "all-runs":
        from sketchrnn.io.omniglot_images import load_one_shot_runs

        runs: Any = load_one_shot_runs(Path(args.omniglot) / "all_runs.zip", args.image_size)
        episodes = fewshot.one_shot_run_episodes(runs.runs)
        print(
            f"Lake et al.'s {len(episodes)} original one-shot runs: 20-way 1-shot, one test "
            "image per class (--ways, --shots, --queries, --episodes do not apply)"
        )
        rows = fewshot.run_episode_sets(
            embedders, runs.images, {(20, 1): episodes}, progress=args.progress
        )
        _print_rows(rows, f"one-shot runs of Lake et al. ({len(episodes)} runs)", args.out)
        return
    split_name: Any = "test" if args.split == "vinyals-test" else "lake"
    split: Any = load_omniglot_split(args.omniglot, split_name, args.image_size)
    groups = split.alphabet_of if split_name == "lake" else None
    for n_way in args.ways:
        for k_shot in args.shots:
            episodes = fewshot.sample_episodes(
                split.images, n_way, k_shot, args.queries, args.episodes, args.seed, groups
            )
            print(
                f"{n_way}-way {k_shot}-shot: {args.episodes} episodes, seed {args.seed}, "
                f"fingerprint {fewshot.episodes_fingerprint(episodes)}"
            )
    rows = fewshot.run_fewshot_table(
        embedders,
        split.images,
        args.ways,
        args.shots,
        args.episodes,
        args.seed,
        args.queries,
        class_groups=groups,
        progress=args.progress,
    )
    _print_rows(rows, f"{args.split} split ({len(split)} classes)", args.out)


def _print_rows(rows, what: str, out: str | None) -> None:
    from sketchrnn import fewshot

    print(f"Omniglot {what}")
    print(fewshot.format_fewshot_table(rows))
    if out:
        fewshot.write_fewshot_table(out, rows)
        print(f"wrote {out}")


__all__ = ["register"]
