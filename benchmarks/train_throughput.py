"""Training throughput (sketches/s) and peak memory of sketch-rnn on this machine's CPU.

Two groups of measurements, each in a fresh subprocess so that its peak memory is its own:

* ``model:<cell>`` - a whole SketchRNN training step (encoder, decoder, losses, backward,
  Adam step) at a preset (default ``magenta``: encoder 256, decoder 512, z 128, M 20).
  ``floor:model`` is the floor for it: the model's recurrent work alone on bare fused
  ``nn.LSTM``s (the bidirectional encoder over the strokes and an LSTM decoder over
  ``[S; z]``, forward + backward; no mixture head, losses or optimizer).
* ``cell:<name>`` - a decoder cell alone, forward + backward of ``sum(h^2)`` to the parameters
  and the input, at the decoder's size (input 5 + z = 133, hidden from the preset, time N_max,
  the batch):
  ``cell:fused`` is bare ``nn.LSTM`` (the floor); ``cell:lstm|layernorm|hyper`` are the
  library's cells as they run by default (the fused C++ kernels of ``sketchrnn.nn.fused``
  where they build, else the Python loops; the LSTM with recurrent dropout takes its loop
  path); ``python:lstm|layernorm|hyper`` are the same cells forced onto their plain-Python
  loops (``set_loop_compiler("python")``, the reference and the fallback; their dropout masks
  still come from the extension's generator where it builds);
  ``naive:layernorm|hyper`` are straightforward per-step implementations of the same maths
  (the input matmul and ``x[:, t]`` inside the loop, no scripting), the usual port.

Usage::

    python benchmarks/train_throughput.py                      # everything, full size
    python benchmarks/train_throughput.py --cells model:hyper,cell:fused --steps 3
    python benchmarks/train_throughput.py --steps 1 --batch 4 --n-max 20 --preset small
    python benchmarks/train_throughput.py --fp32-matmul fast --threads 1 --n-max 100

``--device cuda`` runs the ``model:*`` measurements on a GPU (synchronised before and after the
timed steps: the figures are the GPU's), e.g. ``--cells model:lstm,model:hyper --device cuda
--preset paper``: the before/after harness for GPU work on the decoder loop.

``--fp32-matmul fast`` runs every measurement with :func:`sketchrnn.nn.cells.fast_fp32_matmul`
(oneDNN's bfloat16 instructions at float32 accuracy); the default leaves PyTorch's setting.
``cpu s/step`` is the process's CPU time per step: on a CPU shared with other jobs it moves
less than the wall time (with several threads it includes their spin-waiting).

Peak memory is the growth of the process's peak resident set (``ru_maxrss``) during the timed
and warm-up steps, over what it was after building the model and the batch.

torch.compile was tried for the LayerNorm loop too: compiling the unrolled loop took over 150 s
at T = 100, hidden 256 (killed), so it is not offered here.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

from sketchrnn.cpu_memory import FreedMemoryKept
from sketchrnn.datasets import Batch
from sketchrnn.models import SketchRNN, SketchRNNConfig
from sketchrnn.nn import fused
from sketchrnn.nn.cells import fast_fp32_matmul, make_cell, set_loop_compiler
from sketchrnn.train import _clip_gradients
from sketchrnn.train_config import TrainConfig

ALL = [
    "cell:fused",
    "floor:model",
    "cell:lstm",
    "cell:layernorm",
    "cell:hyper",
    "python:lstm",
    "python:layernorm",
    "python:hyper",
    "naive:layernorm",
    "naive:hyper",
    "model:lstm",
    "model:layernorm",
    "model:hyper",
]


# ----------------------------------------------------------------------------- naive baselines


class NaiveLayerNormLSTM(nn.Module):
    """Per-step LayerNorm LSTM as usually written: both matmuls inside the loop, x[:, t]."""

    def __init__(self, input_size: int, hidden: int):
        super().__init__()
        self.hidden = hidden
        self.x_to_gates = nn.Linear(input_size, 4 * hidden, bias=False)
        self.h_to_gates = nn.Linear(hidden, 4 * hidden, bias=False)
        self.gate_norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(4))
        self.cell_norm = nn.LayerNorm(hidden)

    def forward(self, x, state):
        h, c = state
        outputs = []
        for t in range(x.shape[1]):
            pre = self.x_to_gates(x[:, t]) + self.h_to_gates(h)
            i, f, g, o = (norm(p) for norm, p in zip(self.gate_norms, pre.chunk(4, 1), strict=True))
            c = torch.sigmoid(f + 1.0) * c + torch.sigmoid(i) * F.dropout(torch.tanh(g), 0.1)
            h = torch.sigmoid(o) * torch.tanh(self.cell_norm(c))
            outputs.append(h)
        return torch.stack(outputs, 1), (h, c)


class NaiveHyperLSTM(nn.Module):
    """Per-step HyperLSTM as usually written: a LayerNorm hyper cell, one small linear layer
    per gate and term for the embeddings and the scaling vectors, matmuls in the loop."""

    def __init__(self, input_size: int, hidden: int, hyper_hidden: int, embed: int):
        super().__init__()
        self.hyper = NaiveLayerNormLSTM(input_size + hidden, hyper_hidden)
        self.x_to_gates = nn.Linear(input_size, 4 * hidden, bias=False)
        self.h_to_gates = nn.Linear(hidden, 4 * hidden, bias=False)
        self.bias = nn.Parameter(torch.zeros(4 * hidden))
        self.embeds = nn.ModuleList(nn.Linear(hyper_hidden, embed) for _ in range(12))
        self.scales = nn.ModuleList(nn.Linear(embed, hidden, bias=False) for _ in range(12))
        self.gate_norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(4))
        self.cell_norm = nn.LayerNorm(hidden)

    def forward(self, x, state):
        h, c, hh, hc = state
        outputs = []
        for t in range(x.shape[1]):
            x_t = x[:, t]
            _, (hh, hc) = self.hyper(torch.cat([x_t, h], 1).unsqueeze(1), (hh, hc))
            d = [scale(embed(hh)) for embed, scale in zip(self.embeds, self.scales, strict=True)]
            xs = self.x_to_gates(x_t).chunk(4, 1)
            hs = self.h_to_gates(h).chunk(4, 1)
            bs = self.bias.chunk(4)
            gates = [
                norm(d[k] * xs[k] + d[4 + k] * hs[k] + bs[k] + d[8 + k])
                for k, norm in enumerate(self.gate_norms)
            ]
            i, f, g, o = gates
            c = torch.sigmoid(f + 1.0) * c + torch.sigmoid(i) * F.dropout(torch.tanh(g), 0.1)
            h = torch.sigmoid(o) * torch.tanh(self.cell_norm(c))
            outputs.append(h)
        return torch.stack(outputs, 1), (h, c, hh, hc)


# ----------------------------------------------------------------------------- one measurement


def _random_batch(batch: int, n_max: int, generator: torch.Generator):
    strokes = torch.zeros(batch, n_max + 1, 5)
    strokes[:, 0, 2] = 1.0
    lengths = torch.randint(n_max // 2, n_max + 1, (batch,), generator=generator)
    for b, n in enumerate(lengths.tolist()):
        strokes[b, 1 : n + 1, :2] = torch.randn(n, 2, generator=generator)
        lifted = torch.rand(n, generator=generator) < 0.1
        strokes[b, 1 : n + 1, 3] = lifted.float()
        strokes[b, 1 : n + 1, 2] = 1.0 - lifted.float()
        strokes[b, n + 1 :, 4] = 1.0
    return strokes, lengths


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _synchronize(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def measure(name: str, args: argparse.Namespace) -> dict:
    if args.device == "cpu" and getattr(args, "keep_freed_memory", True):
        FreedMemoryKept().start()  # as the Trainer's fit() on a CPU (sketchrnn.cpu_memory)
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    kind, _, cell_name = name.partition(":")
    config = SketchRNNConfig.preset(
        args.preset, max_seq_len=args.n_max, recurrent_dropout=args.recurrent_dropout
    )
    if kind == "model":
        config = SketchRNNConfig.preset(
            args.preset,
            cell=cell_name,
            max_seq_len=args.n_max,
            recurrent_dropout=args.recurrent_dropout,
        )
        device = torch.device(args.device)
        model = SketchRNN(config).train().to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
        strokes, lengths = _random_batch(args.batch, args.n_max, generator)
        labels = torch.zeros(args.batch, dtype=torch.long)
        batch = Batch(strokes.to(device), lengths.to(device), labels.to(device))
        train_config = TrainConfig()  # its gradient clipping, as the Trainer applies it

        def step():
            losses = model.losses(batch)
            loss = losses["L_R"] + losses["L_KL"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            _clip_gradients(model.parameters(), train_config)  # the Trainer's own
            optimizer.step()

    elif kind == "floor" and cell_name == "model":
        # The model's recurrent work alone on bare fused nn.LSTMs: the bidirectional encoder
        # over the strokes and the decoder over [S; z], forward + backward, nothing else.
        encoder = nn.LSTM(5, config.enc_hidden, batch_first=True, bidirectional=True)
        decoder = nn.LSTM(5 + config.z_size, config.dec_hidden, batch_first=True)
        strokes = torch.randn(args.batch, args.n_max, 5, generator=generator)
        dec_in = torch.randn(args.batch, args.n_max, 5 + config.z_size, generator=generator)
        dec_in.requires_grad_()

        def step():
            enc_out, _ = encoder(strokes)
            dec_out, _ = decoder(dec_in)
            (enc_out.pow(2).sum() + dec_out.pow(2).sum()).backward()

    elif args.device != "cpu":
        raise SystemExit(f"{name}: only the model:* measurements run on --device {args.device}")
    else:
        input_size, hidden = 5 + config.z_size, config.dec_hidden
        if kind == "cell" and cell_name == "fused":
            cell = nn.LSTM(input_size, hidden, batch_first=True)
            state = (torch.zeros(1, args.batch, hidden), torch.zeros(1, args.batch, hidden))
        elif kind in ("cell", "python"):
            cell = make_cell(
                cell_name,
                input_size,
                hidden,
                recurrent_dropout=config.recurrent_dropout,
                hyper_hidden=config.hyper_hidden,
                hyper_embed=config.hyper_embed,
            )
            if kind == "python":
                set_loop_compiler(kind)
            state = cell.zero_state(args.batch, torch.zeros(1))
        elif kind == "naive" and cell_name == "layernorm":
            cell = NaiveLayerNormLSTM(input_size, hidden)
            state = (torch.zeros(args.batch, hidden),) * 2
        elif kind == "naive" and cell_name == "hyper":
            cell = NaiveHyperLSTM(input_size, hidden, config.hyper_hidden, config.hyper_embed)
            state = (torch.zeros(args.batch, hidden),) * 2
            state += (torch.zeros(args.batch, config.hyper_hidden),) * 2
        else:
            raise SystemExit(f"unknown measurement {name!r}; choose from {', '.join(ALL)}")
        cell.train()
        # Requires grad as in the model, where the input [S; z] carries z's gradient back to the
        # encoder (and where per-step x[:, t] in a naive loop costs most).
        x = torch.randn(args.batch, args.n_max, input_size, generator=generator)
        x.requires_grad_()

        def step():
            h_seq, _ = cell(x, state)
            h_seq.pow(2).sum().backward()

    rss_before = _peak_rss_mib()
    for _ in range(args.warmup):  # TorchScript optimises over its first runs
        step()
    _synchronize(args.device)
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(args.steps):
        step()
    _synchronize(args.device)  # a GPU step is only done when its kernels are
    elapsed = time.perf_counter() - start
    cpu_elapsed = time.process_time() - cpu_start
    return {
        "name": name,
        "sketches_per_s": args.batch * args.steps / elapsed,
        "s_per_step": elapsed / args.steps,
        "cpu_s_per_step": cpu_elapsed / args.steps,
        "peak_rss_growth_mib": _peak_rss_mib() - rss_before,
    }


# ----------------------------------------------------------------------------- driver


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", default=",".join(ALL), help="comma-separated measurements")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--n-max", type=int, default=250)
    parser.add_argument("--preset", default="magenta", choices=sorted(SketchRNNConfig.PRESETS))
    parser.add_argument("--recurrent-dropout", type=float, default=0.1)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument(
        "--device", default="cpu", help="where the model:* measurements run (cpu, cuda, cuda:1)"
    )
    parser.add_argument(
        "--fp32-matmul",
        choices=("default", "fast"),
        default="default",
        help="'fast': sketchrnn.nn.cells.fast_fp32_matmul() in every measurement",
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one in this process
    args = parser.parse_args()

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    fast = args.fp32_matmul == "fast" and fast_fp32_matmul()
    if args.fp32_matmul == "fast" and not fast:
        raise SystemExit("--fp32-matmul fast: not available with this PyTorch/CPU")
    if args.one:
        print(json.dumps(measure(args.one, args)))
        return

    names = [n.strip() for n in args.cells.split(",") if n.strip()]
    unknown = [n for n in names if n not in ALL]
    if unknown:
        parser.error(f"unknown measurements {unknown}; choose from {', '.join(ALL)}")
    config = SketchRNNConfig.preset(args.preset)
    # Builds the fused kernels here if needed, so that no measurement waits for the compiler.
    kernels = "fused kernels" if fused.available() else "NO fused kernels (Python loops)"
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {kernels}; "
        f"preset {args.preset} "
        f"(enc {config.enc_hidden}, dec {config.dec_hidden}, z {config.z_size}, "
        f"M {config.num_mixtures}); batch {args.batch}, N_max {args.n_max}, "
        f"recurrent dropout {args.recurrent_dropout}; {args.warmup} warm-up + {args.steps} steps; "
        f"fp32 matmul {args.fp32_matmul}; device {args.device}"
    )
    print(
        f"{'measurement':<18} {'sketches/s':>11} {'s/step':>9} {'cpu s/step':>11} "
        f"{'peak RSS +MiB':>14}"
    )
    forwarded = [
        f"--steps={args.steps}",
        f"--warmup={args.warmup}",
        f"--batch={args.batch}",
        f"--n-max={args.n_max}",
        f"--preset={args.preset}",
        f"--recurrent-dropout={args.recurrent_dropout}",
        f"--threads={torch.get_num_threads()}",
        f"--fp32-matmul={args.fp32_matmul}",
        f"--device={args.device}",
    ]
    for name in names:
        done = subprocess.run(
            [sys.executable, __file__, f"--one={name}", *forwarded],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            print(f"{name:<18} failed: {done.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"{name:<18} {r['sketches_per_s']:>11.1f} {r['s_per_step']:>9.3f} "
            f"{r['cpu_s_per_step']:>11.3f} {r['peak_rss_growth_mib']:>14.0f}"
        )


if __name__ == "__main__":
    main()
