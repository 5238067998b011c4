"""Speed of the differentiable torch rasteriser (SketchEmbedNet's pixel loss): images per second,
forward only and forward + backward, for batches of random-walk sketches.

    .venv/bin/python benchmarks/raster_torch.py [--batch 256] [--sizes 28 84] [--steps 64 100]
        [--repeats 3] [--chunks 1048576 4194304 16777216 0] [--device cpu] [--threads N]

On a CPU shared with other work, ``--threads 1`` gives steadier figures: torch's threads
wait on each other when a core is taken.

``--chunks`` compares the element budget of the nearest-segment search
(``sketchrnn.nn.diff_raster._DIFF_RASTER_ELEMENTS_PER_CHUNK``; 0 = no chunking, every segment
at once), at the first size and length only; the table uses the module's default.
"""

from __future__ import annotations

import argparse
import time

import torch

import sketchrnn.nn.diff_raster as diff_raster


def random_sketches(batch: int, steps: int, generator: torch.Generator):
    """Offsets ``(batch, steps, 2)`` of smooth random walks, the pen lifted every ~12 points,
    and their pen-down mask ``(batch, steps)``."""
    angle = torch.cumsum(0.4 * torch.randn(batch, steps, generator=generator), dim=1)
    offsets = torch.stack([angle.cos(), angle.sin()], dim=-1)
    pen_down = torch.rand(batch, steps, generator=generator) > 1 / 12
    pen_down[:, -1] = False
    return offsets, pen_down


def images_per_second(offsets, pen_down, bounds, size: int, backward: bool, repeats: int):
    best = float("inf")
    for _ in range(repeats):
        x = offsets.detach().requires_grad_(backward)
        if x.is_cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        image = diff_raster.rasterize_differentiable(x, pen_down, bounds, size)
        if backward:
            image.sum().backward()
        if x.is_cuda:
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return len(offsets) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--sizes", type=int, nargs="+", default=[28, 84])
    parser.add_argument("--steps", type=int, nargs="+", default=[64, 100])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunks", type=int, nargs="*", default=[1 << 20, 1 << 22, 1 << 24, 0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    generator = torch.Generator().manual_seed(0)
    print(
        f"batch {args.batch}, device {device}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; best of {args.repeats}"
    )
    print(f"{'size':>5} {'T':>5} {'forward img/s':>15} {'fwd+bwd img/s':>15}")
    for size in args.sizes:
        for steps in args.steps:
            offsets, pen_down = random_sketches(args.batch, steps, generator)
            offsets, pen_down = offsets.to(device), pen_down.to(device)
            lengths = torch.full((args.batch,), steps, device=device)
            bounds = diff_raster.absolute_bounds(offsets, lengths)
            fwd = images_per_second(offsets, pen_down, bounds, size, False, args.repeats)
            both = images_per_second(offsets, pen_down, bounds, size, True, args.repeats)
            print(f"{size:>5} {steps:>5} {fwd:>15.0f} {both:>15.0f}")

    if not args.chunks:
        return
    size, steps = args.sizes[-1], args.steps[-1]
    print(f"\nchunk budget (elements) at size {size}, T {steps}: forward + backward img/s")
    offsets, pen_down = random_sketches(args.batch, steps, generator)
    offsets, pen_down = offsets.to(device), pen_down.to(device)
    bounds = diff_raster.absolute_bounds(offsets, torch.full((args.batch,), steps, device=device))
    default = diff_raster._DIFF_RASTER_ELEMENTS_PER_CHUNK
    try:
        for budget in args.chunks:
            diff_raster._DIFF_RASTER_ELEMENTS_PER_CHUNK = budget or None
            speed = images_per_second(offsets, pen_down, bounds, size, True, args.repeats)
            segments = (steps - 1) if not budget else max(1, budget // (args.batch * size * size))
            label = "none" if not budget else str(budget)
            print(f"{label:>10} ({min(segments, steps - 1):>3} segments/chunk) {speed:>10.0f}")
    finally:
        diff_raster._DIFF_RASTER_ELEMENTS_PER_CHUNK = default


if __name__ == "__main__":
    main()
