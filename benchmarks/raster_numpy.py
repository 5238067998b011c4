"""Speed of the numpy rasteriser: images per second on real sketches (Aaron Koblin's sheep).

    .venv/bin/python benchmarks/raster_numpy.py [--count 300] [--sizes 28 64 128 256]

Also compares segment chunk sizes of the windowed distance computation (1 = one segment at a
time; 100000, larger than any sketch = every pixel against every segment in one window).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

import sketchrnn.io.raster as raster

DATA = Path(
    os.environ.get("SKETCHRNN_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def images_per_second(sketches: list[np.ndarray], size: int, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        raster.rasterize_batch(sketches, size=size)
        best = min(best, time.perf_counter() - start)
    return len(sketches) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--sizes", type=int, nargs="+", default=[28, 64, 128, 256])
    parser.add_argument("--chunks", type=int, nargs="+", default=[1, 4, 8, 16, 32, 64, 100000])
    args = parser.parse_args()
    path = DATA / "sketchrnn" / "aaron_sheep.npz"
    if not path.exists():
        raise SystemExit(f"shared data not found: {path} (set SKETCHRNN_SHARED_DATA)")
    # trusted shared data; user files must never be unpickled
    sketches = list(np.load(path, allow_pickle=True, encoding="latin1")["test"][: args.count])
    points = sum(map(len, sketches)) / len(sketches)
    print(f"{len(sketches)} sheep, {points:.0f} points each on average, line width 1.5 px")
    default = raster._SEGMENTS_PER_CHUNK
    print("size " + "".join(f"{c:>9d}" for c in args.chunks) + "     auto  (images/s by chunk)")
    for size in args.sizes:
        row = []
        for chunk in [*args.chunks, None]:
            raster._SEGMENTS_PER_CHUNK = chunk
            row.append(f"{images_per_second(sketches, size):9.0f}")
        print(f"{size:4d} " + "".join(row))
    raster._SEGMENTS_PER_CHUNK = default
    print("auto = the library's default, 2048 // size clipped to [4, 64] segments")


if __name__ == "__main__":
    main()
