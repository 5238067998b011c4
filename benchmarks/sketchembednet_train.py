"""Training throughput (images/s) of the whole SketchEmbedNet on this machine's CPU.

One training step = image encoder, decoder with teacher forcing, L_pen + L_stroke + L_pixel
(the differentiable rasteriser and blur, alpha > 0 so its backward runs too), backward, Adam
step. Random ink images and random-walk stroke targets of ``T`` points; the work does not
depend on the values.

Usage::

    python benchmarks/sketchembednet_train.py                         # small and paper presets
    python benchmarks/sketchembednet_train.py --preset paper --batch 256 --t 64   # the paper
    python benchmarks/sketchembednet_train.py --batch 8 --t 16 --steps 1          # a quick look

Defaults: batch 256, 28x28 images, T = 64 (Appendix B); ``--alpha 0`` measures the steps of
the curriculum before the pixel loss is switched on (L_pixel then runs without a backward).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from sketchrnn.datasets import ImageBatch, make_batch
from sketchrnn.models import SketchEmbedNet, SketchEmbedNetConfig


def random_batch(batch: int, steps: int, image_size: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    sketches = []
    for _ in range(batch):
        s3 = np.zeros((steps, 3), dtype=np.float32)
        s3[:, :2] = rng.normal(size=(steps, 2))
        s3[rng.random(steps) < 0.1, 2] = 1
        s3[-1, 2] = 1
        sketches.append(s3)
    strokes = make_batch(sketches, [0] * batch, steps)
    images = torch.from_numpy((rng.random((batch, 1, image_size, image_size)) < 0.1).astype("f4"))
    return ImageBatch(images, strokes.strokes, strokes.lengths, strokes.labels)


def measure(preset: str, batch: int, steps: int, image_size: int, backbone: str, args) -> None:
    config = SketchEmbedNetConfig.preset(
        preset, backbone=backbone, image_size=image_size, max_seq_len=steps
    )
    model = SketchEmbedNet(config).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    data = random_batch(batch, steps, image_size)
    # a step past the first alpha increment, or 0 for the curriculum's first phase
    step = 0 if args.alpha == 0 else config.alpha_every

    def one_step() -> None:
        losses = model.losses(data, step)
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    for _ in range(args.warmup):
        one_step()
    start = time.perf_counter()
    for _ in range(args.steps):
        one_step()
    seconds = (time.perf_counter() - start) / args.steps
    print(
        f"{preset:6s} {backbone:8s} cell={config.cell:9s} hidden={config.dec_hidden:5d} "
        f"batch={batch:4d} T={steps:3d} {image_size}x{image_size} alpha>0={args.alpha != 0}: "
        f"{seconds:8.3f} s/step  {batch / seconds:8.1f} images/s",
        flush=True,
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", choices=["small", "paper", "both"], default="both")
    p.add_argument("--backbone", choices=["conv4", "resnet12"], default="conv4")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--t", type=int, default=64, help="sequence length T (N_max)")
    p.add_argument("--image-size", type=int, default=28)
    p.add_argument("--steps", type=int, default=3, help="timed steps")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--alpha", type=float, default=1, help="0: time the alpha = 0 phase")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    presets = ["small", "paper"] if args.preset == "both" else [args.preset]
    for preset in presets:
        measure(preset, args.batch, args.t, args.image_size, args.backbone, args)


if __name__ == "__main__":
    main()
