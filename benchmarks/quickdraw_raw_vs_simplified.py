"""How close is our raw-drawing simplification to Google's simplified Quick, Draw! data?

For every drawing present (same ``key_id``) in both ``quickdraw/raw/<class>.ndjson`` and
``quickdraw/simplified/<class>.ndjson`` of the shared data, run ``simplify_raw_drawing`` on the
raw drawing (through ``read_ndjson``) and compare with Google's simplified version:

* rendered-pixel IoU: both drawn with 1-pixel lines on a ``size x size`` canvas (default 64),
  scaled from the 0-255 box;
* point counts: ours vs Google's (mean absolute difference, ratio), stroke counts, and how
  many drawings come out exactly identical.

It also prints the pooled distributions (points per stroke, strokes per drawing, coordinate
ranges) of our simplified raw drawings and Google's simplified ones over all classes.

    .venv/bin/python benchmarks/quickdraw_raw_vs_simplified.py [--data DIR] [--size 64]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from sketchrnn.io.quickdraw import QuickDrawDrawing, read_ndjson

DEFAULT_DATA = Path(
    os.environ.get("SKETCHRNN_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def render(polylines: list[np.ndarray], size: int) -> np.ndarray:
    """Boolean ``(size, size)`` image of polylines in the 0-255 box, 1-pixel lines."""
    image = Image.new("1", (size, size), 0)
    draw = ImageDraw.Draw(image)
    scale = (size - 1) / 255.0
    for p in polylines:
        points = [(float(x) * scale, float(y) * scale) for x, y in p]
        if len(points) == 1:
            draw.point(points, fill=1)
        else:
            draw.line(points, fill=1, width=1)
    return np.asarray(image, dtype=bool)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def n_points(d: QuickDrawDrawing) -> int:
    return sum(len(p) for p in d.polylines)


def describe(name: str, values: list[float] | np.ndarray) -> str:
    v = np.asarray(values, dtype=np.float64)
    q = np.percentile(v, [5, 50, 95])
    return (
        f"{name:<34} mean {v.mean():8.3f}  median {q[1]:8.3f}  "
        f"p5 {q[0]:8.3f}  p95 {q[2]:8.3f}  min {v.min():8.3f}  max {v.max():8.3f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared data folder")
    parser.add_argument("--size", type=int, default=64, help="raster size for IoU")
    parser.add_argument("--classes", type=int, default=0, help="only the first N classes")
    args = parser.parse_args()

    raw_dir = args.data / "quickdraw" / "raw"
    simplified_dir = args.data / "quickdraw" / "simplified"
    if not raw_dir.is_dir() or not simplified_dir.is_dir():
        print(f"shared Quick, Draw! data not found under {args.data}", file=sys.stderr)
        return 1
    classes = sorted(
        p.stem for p in raw_dir.glob("*.ndjson") if (simplified_dir / p.name).is_file()
    )
    if args.classes:
        classes = classes[: args.classes]

    ious, ours_points, google_points, same_strokes, identical = [], [], [], [], []
    worst: list[tuple[float, str, int]] = []
    ours_all: list[QuickDrawDrawing] = []
    google_all: list[QuickDrawDrawing] = []
    n_raw = n_skipped = 0
    for name in classes:
        ours = read_ndjson(raw_dir / f"{name}.ndjson", skip_invalid=True)
        google = read_ndjson(simplified_dir / f"{name}.ndjson", skip_invalid=True)
        n_raw += len(ours) + ours.skipped
        n_skipped += ours.skipped
        ours_all.extend(ours)
        google_all.extend(google)
        by_key = {d.key_id: d for d in google}
        for d in ours:
            g = by_key.get(d.key_id)
            if g is None:
                continue
            score = iou(render(d.polylines, args.size), render(g.polylines, args.size))
            ious.append(score)
            worst.append((score, name, d.key_id))
            ours_points.append(n_points(d))
            google_points.append(n_points(g))
            same_strokes.append(len(d.polylines) == len(g.polylines))
            identical.append(
                same_strokes[-1]
                and all(np.array_equal(a, b) for a, b in zip(d.polylines, g.polylines, strict=True))
            )

    print(f"classes with both raw and simplified files: {len(classes)}")
    print(f"raw drawings read: {n_raw} (invalid, skipped: {n_skipped})")
    print(f"pairs with the same key_id in both: {len(ious)}")
    if ious:
        ours_p = np.asarray(ours_points, dtype=np.float64)
        google_p = np.asarray(google_points, dtype=np.float64)
        print()
        print(f"--- ours (simplify_raw_drawing on raw) vs Google simplified, {len(ious)} pairs")
        print(describe(f"pixel IoU at {args.size}x{args.size}", ious))
        print(describe("points, ours", ours_p))
        print(describe("points, Google", google_p))
        print(describe("|points ours - Google|", np.abs(ours_p - google_p)))
        print(describe("points ours / Google", ours_p / google_p))
        print(f"{'same number of strokes':<34} {np.mean(same_strokes):.3%}")
        print(f"{'same number of points':<34} {np.mean(ours_p == google_p):.3%}")
        print(f"{'identical drawings':<34} {np.mean(identical):.3%}")
        print(f"{'IoU < 0.5':<34} {np.mean(np.asarray(ious) < 0.5):.3%}")
        print(
            "lowest IoU pairs: " + ", ".join(f"{c}/{k} ({s:.2f})" for s, c, k in sorted(worst)[:5])
        )

    print()
    print(f"--- distributions over all drawings: ours {len(ours_all)}, Google {len(google_all)}")
    for label, drawings in (("ours", ours_all), ("Google", google_all)):
        per_stroke = [len(p) for d in drawings for p in d.polylines]
        strokes = [len(d.polylines) for d in drawings]
        lo = [min(p.min() for p in d.polylines) for d in drawings]
        hi = [max(p.max() for p in d.polylines) for d in drawings]
        print(describe(f"points per stroke, {label}", per_stroke))
        print(describe(f"strokes per drawing, {label}", strokes))
        print(describe(f"min coordinate, {label}", lo))
        print(describe(f"max coordinate, {label}", hi))
        print(f"{'single-point strokes, ' + label:<34} {np.mean(np.asarray(per_stroke) == 1):.3%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
