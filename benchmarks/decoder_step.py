"""One decoder step, as every drawing path runs it 50-250 times a sketch: the cells' fused step
against the path it replaced and against ``torch.lstm_cell``, with the numbers compared.

For each batch size (default 1, the page drawing one sketch, and 9, the server's nine endings)
and each cell at a preset's decoder size (default ``magenta``: input 5 + z = 133, hidden 512,
hyper 256 / 32), one step under ``torch.no_grad()`` from a random state:

* ``fused step`` - :meth:`sketchrnn.nn.cells._Cell.step` as it runs by default
  (:mod:`sketchrnn.nn.fused_step`);
* ``sequence path`` - the same step with ``set_fused_step(False)``: the cell's sequence path
  for one time step (``nn.LSTM`` for the plain LSTM, the fused sequence loop for the others),
  what ``step`` ran before;
* ``python loop`` - the reference loops of :mod:`sketchrnn.nn.cells`
  (``set_loop_compiler("python")``), which the ONNX export traces;
* ``torch.lstm_cell`` - PyTorch's own single LSTM step at the same sizes (the bar to meet);
* ``lstm_cell floor`` (HyperLSTM row) - the HyperLSTM's products through PyTorch's own ops:
  ``torch.lstm_cell`` of the hyper cell (input ``[x; h]``) and of the main cell, the
  embedding ``F.linear`` and the twelve scaling products as one ``bmm`` (no layer norms, no
  modulation): the HyperLSTM multiplies 1.9x an LSTM's weights, so a plain LSTM step is no
  bar for it; its ``cpu vs lstm_cell`` column is against this floor.

The measurements are interleaved (one round of each, ``--rounds`` times) and each figure is
the best round, in wall time and in the process's CPU time (on a busy machine the CPU time
is the steadier figure of the two). ``max |diff|`` compares the fused step's new state with
the sequence path's, the Python loop's and a float64 run of the Python loop, after one step
and after ``--chain`` consecutive steps (each step's state feeds the next; the float32
rounding of any path grows along the chain, the Python loop's own against float64 is shown
beside).

Usage::

    python benchmarks/decoder_step.py                   # batch 1 and 9, 1 thread
    python benchmarks/decoder_step.py --batch 1 9 100 --threads 2 --preset paper
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from sketchrnn.models import SketchRNNConfig
from sketchrnn.nn import cells, fused
from sketchrnn.nn.cells import make_cell


def _randomised(cell: torch.nn.Module) -> torch.nn.Module:
    """Non-trivial norms and hyper parameters, so that every parameter matters."""
    with torch.no_grad():
        for name, param in cell.named_parameters():
            if "gamma" in name:
                param.normal_(1.0, 0.2)
            elif "beta" in name or name in ("bias", "embed_weight", "scale_weight"):
                param.add_(torch.randn_like(param) * 0.1)
    return cell.eval()


def _run(cell, xs: list[torch.Tensor], state, *, fused_step: bool, loop: str):
    """The state after stepping through ``xs``, under the given step path and loop."""
    cells.set_fused_step(fused_step)
    cells.set_loop_compiler(loop)
    try:
        with torch.no_grad():
            for x in xs:
                _, state = cell.step(x, state)
    finally:
        cells.set_fused_step(True)
        cells.set_loop_compiler("fused")
    return state


def _max_diff(a, b) -> float:
    return max(float((u.double() - v.double()).abs().max()) for u, v in zip(a, b, strict=True))


def _timed(fn: Callable[[], object], calls: int) -> tuple[float, float]:
    """Wall and CPU seconds per call of ``fn`` over ``calls`` calls."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - wall) / calls, (time.process_time() - cpu) / calls


def _new_cell(kind: str, config: SketchRNNConfig) -> torch.nn.Module:
    return make_cell(
        kind,
        5 + config.z_size,
        config.dec_hidden,
        hyper_hidden=config.hyper_hidden,
        hyper_embed=config.hyper_embed,
    )


def _step_fn(cell, x, state, fused_step: bool, loop: str) -> Callable[[], object]:
    def run() -> object:
        cells.set_fused_step(fused_step)
        cells.set_loop_compiler(loop)
        return cell.step(x, state)

    return run


def _differences(kind: str, cell, xs, state, config: SketchRNNConfig) -> str:
    """The fused step's state against the other paths' after 1 and after ``len(xs)`` steps."""
    cell64 = _new_cell(kind, config).double().eval()
    cell64.load_state_dict({k: v.double() for k, v in cell.state_dict().items()})
    parts = []
    for steps in (1, len(xs)):
        run = xs[:steps]
        got = _run(cell, run, state, fused_step=True, loop="fused")
        before = _run(cell, run, state, fused_step=False, loop="fused")
        python = _run(cell, run, state, fused_step=False, loop="python")
        xs64, state64 = [t.double() for t in run], tuple(t.double() for t in state)
        exact = _run(cell64, xs64, state64, fused_step=False, loop="python")
        parts.append(
            f"{steps} step{'s' if steps > 1 else ''}: {_max_diff(got, before):.0e} / "
            f"{_max_diff(got, python):.0e} / {_max_diff(got, exact):.0e} "
            f"({_max_diff(python, exact):.0e})"
        )
    return ";  ".join(parts)


def _hyper_floor(x: torch.Tensor, config: SketchRNNConfig, gen: torch.Generator):
    """The HyperLSTM step's products on PyTorch's own ops (see the module's docstring)."""
    batch, n_in = x.shape
    hidden, hyper, embed, n_vectors = (
        config.dec_hidden, config.hyper_hidden, config.hyper_embed, 12
    )  # fmt: skip

    def w(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen) * 0.05

    h, c = torch.zeros(batch, hidden), torch.zeros(batch, hidden)
    hh, hc = torch.zeros(batch, hyper), torch.zeros(batch, hyper)
    hyper_ih, hyper_hh, hyper_b = w(4 * hyper, n_in + hidden), w(4 * hyper, hyper), w(4 * hyper)
    embed_w, embed_b = w(n_vectors * embed, hyper), w(n_vectors * embed)
    scale = w(n_vectors, embed, hidden)
    main_ih, main_hh, main_b = w(4 * hidden, n_in), w(4 * hidden, hidden), w(4 * hidden)

    def step():
        hyper_h, _ = torch.lstm_cell(
            torch.cat([x, h], 1), (hh, hc), hyper_ih, hyper_hh, hyper_b, None
        )
        z = torch.nn.functional.linear(hyper_h, embed_w, embed_b)
        torch.bmm(z.view(batch, n_vectors, embed).transpose(0, 1), scale)
        return torch.lstm_cell(x, (h, c), main_ih, main_hh, main_b, None)

    return step


def measure_batch(batch: int, args: argparse.Namespace, config: SketchRNNConfig) -> None:
    input_size, hidden = 5 + config.z_size, config.dec_hidden
    gen = torch.Generator().manual_seed(batch)
    x = torch.randn(batch, input_size, generator=gen)
    xs = [torch.randn(batch, input_size, generator=gen) for _ in range(args.chain)]
    w_ih, w_hh, b_ih, b_hh = (p.detach() for p in torch.nn.LSTM(input_size, hidden).parameters())
    h0, c0 = torch.zeros(batch, hidden), torch.zeros(batch, hidden)
    models = {kind: _randomised(_new_cell(kind, config)) for kind in cells.CELL_TYPES}
    states = {
        kind: tuple(torch.randn(batch, n, generator=gen) * 0.5 for n in cell.state_sizes)
        for kind, cell in models.items()
    }
    measurements: dict[tuple[str, str], Callable[[], object]] = {
        ("lstm", "torch.lstm_cell"): lambda: torch.lstm_cell(x, (h0, c0), w_ih, w_hh, b_ih, b_hh),
        ("hyper", "lstm_cell floor"): _hyper_floor(x, config, gen),
    }
    for kind, cell in models.items():
        state = states[kind]
        measurements[(kind, "fused step")] = _step_fn(cell, x, state, True, "fused")
        measurements[(kind, "sequence path")] = _step_fn(cell, x, state, False, "fused")
        measurements[(kind, "python loop")] = _step_fn(cell, x, state, False, "python")
    best = {key: (float("inf"), float("inf")) for key in measurements}
    with torch.no_grad():
        try:
            for fn in measurements.values():  # warm-up: builds and prepares everything
                _timed(fn, 5)
            for _ in range(args.rounds):
                for key, fn in measurements.items():
                    wall, cpu = _timed(fn, args.calls)
                    best[key] = (min(best[key][0], wall), min(best[key][1], cpu))
        finally:
            cells.set_fused_step(True)
            cells.set_loop_compiler("fused")
    for (kind, path), (wall, cpu) in best.items():
        bar = ("hyper", "lstm_cell floor") if kind == "hyper" else ("lstm", "torch.lstm_cell")
        bar_cpu = best[bar][1]
        diffs = ""
        if path == "fused step":
            diffs = _differences(kind, models[kind], xs, states[kind], config)
        print(
            f"{batch:>5} {kind:<10} {path:<16} {wall * 1e3:>8.3f} {cpu * 1e3:>8.3f} "
            f"{cpu / bar_cpu:>15.2f}x   {diffs}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 9])
    parser.add_argument("--preset", default="magenta", choices=sorted(SketchRNNConfig.PRESETS))
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=40, help="steps per round and measurement")
    parser.add_argument("--chain", type=int, default=50, help="steps for the comparison")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = SketchRNNConfig.preset(args.preset)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, fused kernels "
        f"{'on' if fused.available() else 'NOT AVAILABLE'}; preset {args.preset}: input "
        f"{5 + config.z_size}, hidden {config.dec_hidden}, hyper {config.hyper_hidden}/"
        f"{config.hyper_embed}; best of {args.rounds} interleaved rounds of {args.calls} steps"
    )
    print(
        f"{'batch':>5} {'cell':<10} {'path':<16} {'wall ms':>8} {'cpu ms':>8} "
        f"{'cpu vs lstm_cell':>16}   max |diff| of the fused step's state vs sequence path / "
        "python loop / float64 (python loop vs float64)"
    )
    torch.manual_seed(0)
    for batch in args.batch:
        measure_batch(batch, args, config)


if __name__ == "__main__":
    main()
