"""Training throughput against the machine's limit: the matrix products of a SketchRNN training
step, their FLOPs, the best time this CPU takes for each (MKL and oneDNN, the two backends the
cells use), and our measured step as a percentage of that limit, at 1 and 2 threads.

The limit of a step is the sum, over every matrix product of the forward and backward pass, of
the best time measured for its shape on this machine, in isolation (weights hot in cache):

* the encoder's bidirectional LSTM (input projection of all steps; per step ``h @ W_hh.T``
  and, backward, ``d @ W_hh``; the weight gradients as one product over all steps each). The
  two directions are independent, and the cells run them side by side, one thread each, when
  there are two threads: at 2 threads the limit of each of their recurrent products is the
  better of its own 2-thread time and half its 1-thread time (two at once on two cores);
  likewise every per-step product may run as two halves of the batch at once, one thread
  each (the decoder loops split the batch so at two threads): its limit at 2 threads is also
  no more than the 1-thread time of half the rows;
* the decoder cell's input projection: the strokes' of all steps in one product, ``z``'s once
  per sketch (and its input gradient: ``z`` is learned); its per-step recurrent products
  forward and backward (for the HyperLSTM: the main and hyper recurrences, the embeddings and
  the twelve scaling products), one weight-gradient product each;
* the small layers (encoder head, initial state, mixture head).

Elementwise work (gates, layer norms, the mixture loss, Adam) is not in the limit: it is what a
real step adds on top. ``GFLOP`` is the products' floating-point work per sketch (2 per
multiply-add), the limit's ``GFLOPS`` that work over the limit's time. ``% of limit`` is the
limit's time over the measured step (``benchmarks/train_throughput.py``'s ``model:<cell>``
step: losses, backward, gradient clipping, Adam), in wall time and, beside it, in CPU time
(process time, all threads: the products' CPU time over the step's; steadier on a busy
machine, where both ran only part of the time; at one thread on an idle machine the two
figures agree; with more threads the CPU figure leaves out the time threads wait).

Each (preset, threads) runs in a fresh process. Usage::

    python benchmarks/roofline.py                  # magenta and small presets, 1 and 2 threads
    python benchmarks/roofline.py --presets paper --batch 20 --n-max 100 --steps 1
    python benchmarks/roofline.py --presets magenta --cells lstm --threads 2 --steps 5
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import sketchrnn  # noqa: F401  (before torch: the library's OpenMP defaults apply, as in use)

HERE = os.path.dirname(os.path.abspath(__file__))


@dataclass(frozen=True)
class Product:
    """``count`` products per step of kind ``kind`` giving an ``(m, n)`` result over ``k``:

    ``fwd`` ``x (m, k) @ W.T`` with ``W (n, k)``; ``bwd`` ``d (m, k) @ W`` with ``W (k, n)``;
    ``wgrad`` ``d.T @ x`` with ``d (k, m)``, ``x (k, n)``; ``bmm`` twelve ``(m, k) @ (k, n)``.
    """

    what: str
    kind: str
    m: int
    k: int
    n: int
    count: int
    paired: bool = False  # one of two independent products that can run side by side

    @property
    def flops(self) -> float:
        batches = 12 if self.kind == "bmm" else 1
        return 2.0 * self.m * self.k * self.n * self.count * batches


def _linear(
    what: str,
    rows: int,
    k: int,
    n: int,
    count: int = 1,
    input_grad: bool = True,
    paired: bool = False,
):
    """The products of a linear layer ``(rows, k) -> (rows, n)`` applied ``count`` times a
    step with ``rows`` rows each: forward, input gradient (unless not needed), and the weight
    gradient as one product over all ``count`` applications."""
    out = [Product(what, "fwd", rows, k, n, count, paired)]
    if input_grad:
        out.append(Product(what + " (input grad)", "bwd", rows, n, k, count, paired))
    out.append(Product(what + " (weight grad)", "wgrad", n, rows * count, k, 1, paired))
    return out


def products(config, batch: int, steps: int) -> list[Product]:
    """Every matrix product of one training step of a SketchRNN with ``config``."""
    B, T = batch, steps
    out: list[Product] = []
    if config.conditional:
        He = config.enc_hidden
        for direction in ("forward", "backward"):
            enc = f"encoder {direction}"
            out += _linear(f"{enc} input", B * T, 5, 4 * He, input_grad=False)
            out += _linear(f"{enc} recurrent", B, He, 4 * He, count=T, paired=True)
        out += _linear("encoder head", B, 2 * He, 2 * config.z_size)
        out += _linear("initial state", B, config.z_size, _state_width(config))
    H, cond = config.dec_hidden, (config.z_size if config.conditional else 0)
    cond += config.class_embed_size if config.num_classes > 0 else 0
    gates = 4 * H + (4 * config.hyper_hidden if config.cell == "hyper" else 0)
    # The cell projects the strokes at every step and z (the part of the input constant over
    # time) once per sketch (sketchrnn.nn.cells.input_projection).
    out += _linear("decoder input (strokes)", B * T, 5, gates, input_grad=False)
    if cond:
        out += _linear("decoder input (z, once a sketch)", B, cond, gates)
    if config.cell == "hyper":
        Hh, E = config.hyper_hidden, config.hyper_embed
        out += _linear("decoder recurrent (main + hyper input)", B, H, 4 * H + 4 * Hh, count=T)
        out += _linear("hyper recurrent", B, Hh, 4 * Hh, count=T)
        out += _linear("hyper embeddings", B, Hh, 12 * E, count=T)
        out += [
            Product("scaling vectors", "bmm", B, E, H, T),
            Product("scaling vectors (input grad)", "bmm", B, H, E, T),
            Product("scaling vectors (weight grad)", "bmm", E, B * T, H, 1),
        ]
    else:
        out += _linear("decoder recurrent", B, H, 4 * H, count=T)
    out += _linear("mixture head", B * T, H, 6 * config.num_mixtures + 3)
    return out


def _state_width(config) -> int:
    width = 2 * config.dec_hidden
    return width + 2 * config.hyper_hidden if config.cell == "hyper" else width


# ----------------------------------------------------------------------------- timing


def _best_seconds(fn: Callable[[], object], budget: float = 0.08, rounds: int = 3):
    """The best mean wall and CPU seconds of ``fn`` over ``rounds`` rounds of about
    ``budget`` seconds each."""
    fn()
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-6)
    reps = max(1, min(200, int(budget / once)))
    wall = cpu = float("inf")
    for _ in range(rounds):
        start, cpu_start = time.perf_counter(), time.process_time()
        for _ in range(reps):
            fn()
        wall = min(wall, (time.perf_counter() - start) / reps)
        cpu = min(cpu, (time.process_time() - cpu_start) / reps)
    return wall, cpu


def time_product(p: Product) -> dict[str, tuple[float, float]]:
    """Wall and CPU seconds of one such product on each backend that can run it."""
    import torch

    gen = torch.Generator().manual_seed(0)

    def rand(*shape: int):
        return torch.randn(*shape, generator=gen)

    ops = torch.ops.mkldnn
    times: dict[str, tuple[float, float]] = {}
    onednn = torch.backends.mkldnn.is_available() and hasattr(ops, "_linear_pointwise")
    if p.kind in ("fwd", "bwd"):
        x = rand(p.m, p.k)
        w = rand(p.n, p.k) if p.kind == "fwd" else rand(p.k, p.n)
        w_mm = w.t() if p.kind == "fwd" else w
        times["mkl"] = _best_seconds(lambda: torch.mm(x, w_mm))
        if onednn:
            weight = w if p.kind == "fwd" else w.t().contiguous()
            packed = ops._reorder_linear_weight(weight, p.m)
            times["onednn"] = _best_seconds(
                lambda: ops._linear_pointwise(x, packed, None, "none", [], "")
            )
    elif p.kind == "wgrad":
        # d.T @ x, or (x.T @ d).T: the same numbers, whichever orientation MKL runs faster.
        d, x = rand(p.k, p.m), rand(p.k, p.n)
        times["mkl"] = min(
            _best_seconds(lambda: torch.mm(d.t(), x)), _best_seconds(lambda: torch.mm(x.t(), d))
        )
    else:
        a, b = rand(12, p.m, p.k), rand(12, p.k, p.n)
        times["mkl"] = _best_seconds(lambda: torch.bmm(a, b))
    return times


def _one_thread(timed: dict, p: Product, threads: int) -> dict[str, tuple[float, float]]:
    """``time_product(p)`` at one thread (memoised in ``timed``), then ``threads`` again."""
    import torch

    key = ("1 thread", p.kind, p.m, p.k, p.n)
    if key not in timed:
        torch.set_num_threads(1)
        timed[key] = time_product(p)
        torch.set_num_threads(threads)
    return timed[key]


def one(args: argparse.Namespace) -> dict:
    """The limit and the measured step for one preset and cell, in this process."""
    import torch

    torch.set_num_threads(args.threads)
    sys.path.insert(0, HERE)
    from train_throughput import measure

    from sketchrnn.models import SketchRNNConfig

    config = SketchRNNConfig.preset(args.preset, cell=args.cell, max_seq_len=args.n_max)
    # The step first, in a fresh process as a user's; then the products under its memory
    # setting (measure() keeps freed memory unless --glibc-defaults: with glibc's defaults a
    # product with a big output, an input projection's 100 MB at the small preset, maps it
    # fresh at every call and the kernel zero-fills it page by page, 3-6x the product's time).
    step = measure(
        f"model:{args.cell}",
        argparse.Namespace(
            preset=args.preset,
            n_max=args.n_max,
            recurrent_dropout=args.recurrent_dropout,
            device="cpu",
            batch=args.batch,
            warmup=args.warmup,
            steps=args.steps,
            keep_freed_memory=not args.glibc_defaults,
        ),
    )
    rows, limit, limit_cpu, flops = [], 0.0, 0.0, 0.0
    mkl_only = 0.0
    timed: dict[tuple, dict[str, tuple[float, float]]] = {}
    for p in products(config, args.batch, args.n_max):
        shape = (p.kind, p.m, p.k, p.n)
        if shape not in timed:
            timed[shape] = time_product(p)
        times = dict(timed[shape])
        if p.paired and args.threads >= 2:
            # Two at once, one thread each: each costs half its 1-thread time of the wall.
            for backend, (wall, cpu) in _one_thread(timed, p, args.threads).items():
                times[backend + " side by side"] = (wall / 2, cpu)
        if p.count > 1 and p.kind in ("fwd", "bwd") and p.m >= 2 and args.threads >= 2:
            # The rows in two halves at once, one thread each: the wall of one half.
            half = replace(p, m=p.m // 2)
            for backend, (wall, cpu) in _one_thread(timed, half, args.threads).items():
                times[backend + " half rows each"] = (wall, 2 * cpu)
        best = min(wall for wall, _ in times.values())
        limit += best * p.count
        limit_cpu += min(cpu for _, cpu in times.values()) * p.count
        mkl_only += times["mkl"][0] * p.count
        flops += p.flops
        rows.append({**asdict(p), "best_s": best})
    return {
        "flops_per_sketch": flops / args.batch,
        "limit_s": limit,
        "limit_cpu_s": limit_cpu,
        "mkl_only_s": mkl_only,
        "step_s": step["s_per_step"],
        "cpu_step_s": step["cpu_s_per_step"],
        "products": rows,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--presets", default="magenta,small", help="comma-separated (paper too)")
    ap.add_argument("--cells", default="lstm,layernorm,hyper")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--n-max", type=int, default=250)
    ap.add_argument("--steps", type=int, default=3, help="timed training steps")
    # Two: at two threads the second step still ran 5-15% above the steady ones (measured).
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--recurrent-dropout", type=float, default=0.1)
    ap.add_argument("--products", action="store_true", help="print each product's time too")
    ap.add_argument(
        "--glibc-defaults",
        action="store_true",
        help="measure the step and the products without sketchrnn.cpu_memory (as before it)",
    )
    ap.add_argument("--preset", help=argparse.SUPPRESS)  # internal: one measurement
    ap.add_argument("--cell", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.preset:
        args.threads = args.threads[0]
        print(json.dumps(one(args)))
        return

    import torch

    print(
        f"torch {torch.__version__}, {os.cpu_count()} CPUs; batch {args.batch}, N_max "
        f"{args.n_max}, recurrent dropout {args.recurrent_dropout}; {args.warmup} warm-up + "
        f"{args.steps} steps; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}"
    )
    print(
        f"{'preset':<8} {'cell':<10} {'thr':>3} {'GFLOP/sk':>9} {'limit s':>8} {'GFLOPS':>7} "
        f"{'(MKL only)':>10} {'step s':>8} {'sk/s':>7} {'limit sk/s':>10} {'% limit':>8} "
        f"{'% (cpu)':>8}"
    )
    for preset in args.presets.split(","):
        for cell in args.cells.split(","):
            for threads in args.threads:
                cmd = [
                    sys.executable, __file__, f"--preset={preset}", f"--cell={cell}",
                    f"--threads={threads}", f"--batch={args.batch}", f"--n-max={args.n_max}",
                    f"--steps={args.steps}", f"--warmup={args.warmup}",
                    f"--recurrent-dropout={args.recurrent_dropout}",
                ] + (["--glibc-defaults"] if args.glibc_defaults else [])  # fmt: skip
                done = subprocess.run(cmd, capture_output=True, text=True)
                if done.returncode != 0:
                    print(f"{preset:<8} {cell:<10} {threads:>3} failed: {done.stderr[-500:]}")
                    continue
                r = json.loads(done.stdout.strip().splitlines()[-1])
                gflop = r["flops_per_sketch"] / 1e9
                gflops = gflop * args.batch / r["limit_s"]
                mkl_gflops = gflop * args.batch / r["mkl_only_s"]
                print(
                    f"{preset:<8} {cell:<10} {threads:>3} {gflop:>9.2f} {r['limit_s']:>8.3f} "
                    f"{gflops:>7.0f} {mkl_gflops:>10.0f} {r['step_s']:>8.3f} "
                    f"{args.batch / r['step_s']:>7.1f} {args.batch / r['limit_s']:>10.1f} "
                    f"{100 * r['limit_s'] / r['step_s']:>7.1f}% "
                    f"{100 * r['limit_cpu_s'] / max(r['cpu_step_s'], 1e-9):>7.1f}%"
                )
                if args.products:
                    for p in r["products"]:
                        print(
                            f"    {p['what']:<44} {p['kind']:<5} {p['m']}x{p['k']}x{p['n']} "
                            f"x{p['count']}: {p['best_s'] * p['count'] * 1e3:.1f} ms"
                        )


if __name__ == "__main__":
    main()
