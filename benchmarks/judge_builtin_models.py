r"""The judge's scores of the package's built-in models (the figures on their model cards).

The shapes models draw the package's synthetic shapes (``sketchrnn.synthetic``), five of whose
six classes are Quick, Draw! classes (``circle``, ``square``, ``triangle``, ``house``,
``snowman``; ``circle_in_square`` is not). Held-back test shapes (the 200 a class that
``sketchrnn data synthetic --per-class 2000`` puts in ``test``, which no model trained on)
are drawn by each model and judged:

- the real test shapes themselves (how Quick, Draw!-like our synthetic shapes are: the ceiling);
- ``shapes_vae``: greedy reconstructions (temperature 0) of every test shape;
- ``shapes_gen``: one ending (temperature 0.3) of the first half of every test shape's points;
- ``shapes_omniglot_sen``: one-shot drawings (temperature 0.1) of every test shape's image;
- ``shapes_vae`` and ``shapes_gen``: ``--samples`` unconditional samples at temperature 0.3,
  against the real test shapes (Frechet distance in the judge's features, precision / recall).

Per class top-1 / top-5 Rec with 95% intervals. ``omniglot_vae`` draws Omniglot characters,
which are not Quick, Draw! classes: the judge has nothing to say about it. Run::

    nice -n 10 .venv/bin/python benchmarks/judge_builtin_models.py
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SKETCHRNN_SHARED_DATA", ROOT.parent / "shared" / "data"))


def table(title: str, report) -> None:
    print(f"\n### {title}\n")
    print(report.format_table())


def main(argv: list[str] | None = None) -> None:
    judge_dir = SHARED / "doodlenet"
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--judge", default=str(judge_dir) if judge_dir.is_dir() else "doodlenet")
    p.add_argument("--samples", type=int, default=600, help="unconditional samples a model")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    import torch

    from sketchrnn import generate
    from sketchrnn.judge import load_judge
    from sketchrnn.judge.scores import judge_report
    from sketchrnn.models import load_model
    from sketchrnn.synthetic import synthetic_sketchset

    torch.manual_seed(args.seed)
    judge = load_judge(args.judge)
    test = synthetic_sketchset(n_per_class=2000, seed=0).split("test")
    shapes, labels = list(test.strokes), list(test.labels)
    print(f"{len(shapes)} held-back test shapes, {len(set(labels))} classes; judge {args.judge}")
    real = judge.judge(shapes, source="test shapes")
    table("the real test shapes", judge_report(judge, real, labels))

    started = time.perf_counter()
    vae = load_model("shapes_vae")
    drawn = []
    for start in range(0, len(shapes), 256):
        z = generate.encode(vae, shapes[start : start + 256])
        drawn += generate.decode(vae, z, temperature=0.0)
    verdict = judge.judge(drawn, allow_empty=True, source="shapes_vae")
    table("shapes_vae: greedy reconstructions", judge_report(judge, verdict, labels))
    print(f"({time.perf_counter() - started:.0f} s)")

    started = time.perf_counter()
    gen = load_model("shapes_gen")
    endings = []
    for i, s in enumerate(shapes):
        half = s[: max(1, math.ceil(len(s) / 2))]
        endings += generate.complete(gen, half, 1, 0.3, seed=args.seed + i)
    verdict = judge.judge(endings, allow_empty=True, source="shapes_gen")
    table("shapes_gen: endings of the first half", judge_report(judge, verdict, labels))
    print(f"({time.perf_counter() - started:.0f} s)")

    started = time.perf_counter()
    from sketchrnn.datasets import render_images
    from sketchrnn.embeddings import load_embed_net

    sen = load_embed_net("shapes_omniglot_sen")
    size, channels = sen.config.image_size, sen.config.in_channels
    images = render_images(shapes, size).astype(np.float32) / 255
    batch = torch.from_numpy(images).unsqueeze(1).expand(-1, channels, -1, -1)
    one_shot = sen.generate(batch, temperature=0.1, seed=args.seed)
    verdict = judge.judge(one_shot, allow_empty=True, source="shapes_omniglot_sen")
    table("shapes_omniglot_sen: one-shot drawings", judge_report(judge, verdict, labels))
    print(f"({time.perf_counter() - started:.0f} s)")

    for name, model in (("shapes_vae", vae), ("shapes_gen", gen)):
        samples = generate.sample(model, args.samples, temperature=0.3, seed=args.seed)
        verdict = judge.judge(samples, allow_empty=True, source=name)
        report = judge_report(judge, verdict, [None] * len(samples), real)
        s = report.set_scores
        hist = np.bincount(verdict.top(1)[:, 0], minlength=len(judge.classes)) / len(samples)
        top = np.argsort(-hist)[:6]
        first = ", ".join(f"{judge.classes[k]} {hist[k]:.0%}" for k in top)
        print(
            f"\n### {name}: {args.samples} samples at temperature 0.3 against the real test "
            f"shapes\n\nFrechet distance {s.frechet_distance:.1f}, precision {s.precision:.3f}, "
            f"recall {s.recall:.3f}, density {s.density:.3f}, coverage {s.coverage:.3f} "
            f"(k {s.nearest_k}); the judge's first choices: {first}"
        )
    # The floor of those figures: real shapes against other real shapes (every other one).
    even, odd = judge.judge(shapes[::2]), judge.judge(shapes[1::2])
    control = judge_report(judge, even, labels[::2], odd)
    s = control.set_scores
    print(
        f"\ncontrol, real against real (alternate test shapes, {len(shapes) // 2} each): "
        f"Frechet distance {s.frechet_distance:.1f}, precision {s.precision:.3f}, recall "
        f"{s.recall:.3f}"
    )


if __name__ == "__main__":
    main()
