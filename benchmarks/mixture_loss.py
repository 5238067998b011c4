"""The training loss of the mixture head, forward + backward: the fused kernel
(:mod:`sketchrnn.nn.fused_mixture`, what training runs on CPU) against the reference
composition it replaced (``reconstruction_losses(mixture_params(y, M), ...)``), in the same
run, with their difference.

A random head output ``y`` ``(batch, N_max, 6M + 3)`` (scaled by ``--scale``), one-hot pen
states, random lengths; each figure is the median of ``--repeats`` forward + backward passes
after warm-up, the two sides interleaved ``--rounds`` times (the best round is printed), with
the Trainer's memory setting (:mod:`sketchrnn.cpu_memory`), as a training step has it.

Usage::

    python benchmarks/mixture_loss.py                       # M 10 and 20, 1 and 2 threads
    python benchmarks/mixture_loss.py --mixtures 30 --batch 50 --n-max 100 --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from sketchrnn.cpu_memory import FreedMemoryKept
from sketchrnn.nn import fused
from sketchrnn.nn.mixture import mixture_params, reconstruction_losses


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def _reference_losses(y, num_mixtures, targets, lengths):
    return reconstruction_losses(mixture_params(y, num_mixtures), targets, lengths)


def _forward_backward(losses, y, num_mixtures, targets, lengths):
    """One forward + backward pass of ``losses`` as a callable."""

    def run() -> None:
        loss_s, loss_p = losses(y, num_mixtures, targets, lengths)
        (loss_s + loss_p).backward()
        y.grad = None

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mixtures", type=int, nargs="+", default=[10, 20])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--n-max", type=int, default=250)
    ap.add_argument("--scale", type=float, default=1.0, help="of the random head output")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    if not fused.available():
        raise SystemExit(f"the fused kernels are not available here ({fused._failed})")
    from sketchrnn.nn import fused_mixture

    FreedMemoryKept().start()
    print(f"torch {torch.__version__}; batch {args.batch}, N_max {args.n_max}")
    print("ms per forward + backward, the best round's median")
    print(
        f"{'M':>4} {'threads':>7} {'reference':>10} {'fused':>8} {'ratio':>6} {'max rel diff':>13}"
    )
    g = torch.Generator().manual_seed(0)
    for M in args.mixtures:
        B, T = args.batch, args.n_max
        y = (torch.randn(B, T, 6 * M + 3, generator=g) * args.scale).requires_grad_()
        targets = torch.randn(B, T, 5, generator=g)
        targets[..., 2:] = F.one_hot(torch.randint(0, 3, (B, T), generator=g), 3).float()
        lengths = torch.randint(1, T + 1, (B,), generator=g)

        reference = _forward_backward(_reference_losses, y, M, targets, lengths)
        fused_pass = _forward_backward(fused_mixture.reconstruction_losses, y, M, targets, lengths)

        ref = torch.stack(_reference_losses(y, M, targets, lengths))
        got = torch.stack(fused_mixture.reconstruction_losses(y, M, targets, lengths))
        diff = ((got - ref).abs() / ref.abs()).max().item()
        for threads in args.threads:
            torch.set_num_threads(threads)
            for f in (reference, fused_pass, reference, fused_pass):
                f()  # warm-up
            best_ref = best_fused = float("inf")
            for _ in range(args.rounds):
                best_ref = min(best_ref, _median_ms(reference, args.repeats))
                best_fused = min(best_fused, _median_ms(fused_pass, args.repeats))
            print(
                f"{M:>4} {threads:>7} {best_ref:>10.1f} {best_fused:>8.1f} "
                f"{best_ref / best_fused:>5.1f}x {diff:>13.1e}"
            )


if __name__ == "__main__":
    main()
