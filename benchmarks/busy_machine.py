"""Training beside a CPU hog: seconds per step of the default settings against fixed thread
counts and OpenMP wait policies, with and without another process spinning one core.

Each setting trains a SketchRNN in a fresh process through :class:`sketchrnn.train.Trainer`
(the library's training loop, its defaults included) on random sketches for ``--warmup`` +
``--steps`` steps, and reports the median seconds of the timed steps and the thread counts
the run used. The settings:

* ``default`` - nothing set: what a user gets (``sketchrnn`` imported before torch, so
  OpenMP threads wait passively; the Trainer's :class:`sketchrnn.cpu_threads.ThreadGovernor`
  sets the threads to the free cores);
* ``1 thread`` - ``OMP_NUM_THREADS=1``;
* ``N threads, spin`` - ``OMP_NUM_THREADS=N GOMP_SPINCOUNT=300000``: PyTorch's own default
  (libgomp's spin count, threads spin-wait up to a few ms), fixed thread count;
* ``N threads, passive`` - ``OMP_NUM_THREADS=N OMP_WAIT_POLICY=PASSIVE``;
* ``adaptive, spin`` - the governor without the passive wait (``GOMP_SPINCOUNT=300000``), as a
  program that imports torch before sketchrnn gets it.

With ``--hog`` (the default runs both), a process of ours spins one core for the length of
each measurement (bounded: it stops itself after ``--hog-seconds``, and is killed when the
measurement ends). The figure to read: each setting's time beside the hog over the best
setting's beside the hog (the issue's target: the default within 1.5x).

Usage::

    python benchmarks/busy_machine.py                      # magenta preset, batch 100, N_max 250
    python benchmarks/busy_machine.py --preset small --batch 32 --n-max 100 --steps 4
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HOG = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass\n"


def settings(threads: int) -> dict[str, dict[str, str]]:
    spin = {"GOMP_SPINCOUNT": "300000"}  # libgomp's default: sketchrnn leaves it alone
    return {
        "default": {},
        "1 thread": {"OMP_NUM_THREADS": "1"},
        f"{threads} threads, spin": {"OMP_NUM_THREADS": str(threads), **spin},
        f"{threads} threads, passive": {
            "OMP_NUM_THREADS": str(threads),
            "OMP_WAIT_POLICY": "PASSIVE",
        },
        "adaptive, spin": spin,
    }


def child(args: argparse.Namespace) -> None:
    """One measurement in this process: the Trainer's steps, timed one by one."""
    import sketchrnn  # noqa: F401  (first, as a user's program or the CLI: its defaults apply)

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import torch
    from train_throughput import _random_batch

    from sketchrnn.datasets import Batch
    from sketchrnn.models import SketchRNN, SketchRNNConfig
    from sketchrnn.train import TrainConfig, Trainer

    class RandomSketches:
        """Random sketches in the batch protocol the Trainer reads."""

        def __init__(self, count: int):
            self.generator = torch.Generator().manual_seed(0)
            self.strokes, self.lengths = _random_batch(count, args.n_max, self.generator)
            self.scale_factor, self.classes = 1.0, ["random"]

        def __len__(self) -> int:
            return len(self.lengths)

        def batch(self, indices, augment=False, rng=None, drop_prob=0.0) -> Batch:
            idx = torch.as_tensor(indices)
            return Batch(self.strokes[idx], self.lengths[idx], torch.zeros(len(idx)).long())

    config = SketchRNNConfig.preset(args.preset, cell=args.cell, max_seq_len=args.n_max)
    steps = args.warmup + args.steps
    train_config = TrainConfig.for_model(
        SketchRNN,
        batch_size=args.batch,
        max_steps=steps,
        out_dir=None,
        eval_every=0,
        save_every=0,
        log_every=0,
        progress=False,
        log_csv=False,
    )
    trainer = Trainer(SketchRNN(config), train_config, RandomSketches(2 * args.batch))
    times: list[float] = []
    step = trainer.train_step

    def timed_step():
        start = time.perf_counter()
        out = step()
        times.append(time.perf_counter() - start)
        return out

    trainer.train_step = timed_step  # type: ignore[method-assign]
    trainer.fit()
    threads = [n for _, n in trainer.threads.history] or [torch.get_num_threads()]
    print(json.dumps({"seconds": times[args.warmup :], "threads": threads}))


def run(name: str, env: dict[str, str], hog: bool, args: argparse.Namespace) -> dict:
    hog_proc = None
    if hog:
        code = HOG.format(seconds=args.hog_seconds)
        hog_proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        child_env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS",)}
        child_env.pop("OMP_WAIT_POLICY", None)
        child_env.pop("GOMP_SPINCOUNT", None)
        child_env.update(env)
        forwarded = [f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items()]
        done = subprocess.run(
            [sys.executable, __file__, "--child", *forwarded],
            capture_output=True,
            text=True,
            env=child_env,
            timeout=args.hog_seconds,
        )
    finally:
        if hog_proc is not None:
            hog_proc.kill()
            hog_proc.wait()
    if done.returncode != 0:
        raise SystemExit(f"{name}: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="magenta")
    ap.add_argument("--cell", default="layernorm")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--n-max", type=int, default=250)
    ap.add_argument("--steps", type=int, default=3, help="timed steps per setting")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="the N above")
    ap.add_argument("--hog", choices=("both", "on", "off"), default="both")
    ap.add_argument("--hog-seconds", type=int, default=900, help="bound of each measurement")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    del args.child
    print(
        f"{os.cpu_count()} CPUs; SketchRNN {args.preset}, {args.cell} decoder, batch "
        f"{args.batch}, N_max {args.n_max}; median of {args.steps} steps after {args.warmup}"
    )
    hogs = {"both": (False, True), "on": (True,), "off": (False,)}[args.hog]
    results: dict[tuple[str, bool], dict] = {}
    for hog in hogs:
        for name, env in settings(args.threads).items():
            results[name, hog] = run(name, env, hog, args)
    for hog in hogs:
        best = min(statistics.median(r["seconds"]) for (_, h), r in results.items() if h == hog)
        print(f"\n{'beside a CPU hog' if hog else 'no hog'} (best {best:.3f} s/step):")
        for (name, h), r in results.items():
            if h != hog:
                continue
            median = statistics.median(r["seconds"])
            print(
                f"  {name:<22} {median:>8.3f} s/step  {median / best:>5.2f}x the best   "
                f"threads {r['threads']}"
            )


if __name__ == "__main__":
    main()
