"""The fused generation step (sketchrnn.nn.fused_step) behind Cell.step: the same numbers as
the reference loops (float64 exactly, float32 to rounding), taken only where it may be (no
autograd, no dropout, not while tracing), and its prepared weights never stale."""

from __future__ import annotations

import gc
import weakref

import pytest
import torch

from sketchrnn.nn import cells, fused, fused_step
from sketchrnn.nn.cells import make_cell, set_fused_step, set_loop_compiler

INPUT, HIDDEN = 11, 32


@pytest.fixture(scope="module", autouse=True)
def extension():
    if not fused.available():
        reason = fused._failed or f"disabled by {fused.DISABLE_ENV}"
        pytest.skip(f"the fused kernels are not available here ({reason})")


@pytest.fixture(autouse=True)
def restore_switches():
    yield
    set_loop_compiler("fused")
    set_fused_step(True)


def _cell(kind: str, dtype: torch.dtype = torch.float32, dropout: float = 0.0):
    torch.manual_seed(0)
    cell = make_cell(kind, INPUT, HIDDEN, recurrent_dropout=dropout, hyper_hidden=12, hyper_embed=4)
    with torch.no_grad():  # non-trivial norms and hyper parameters, so that all of them matter
        for name, param in cell.named_parameters():
            if "gamma" in name:
                param.normal_(1.0, 0.3)
            elif "beta" in name or name in ("bias", "embed_weight", "scale_weight"):
                param.add_(torch.randn_like(param) * 0.3)
    return cell.to(dtype).eval()


def _inputs(cell, batch: int, steps: int, dtype=torch.float32, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    xs = [torch.randn(batch, INPUT, generator=gen, dtype=dtype) for _ in range(steps)]
    state = tuple(torch.randn(batch, n, generator=gen, dtype=dtype) * 0.5 for n in cell.state_sizes)
    return xs, state


def _steps(cell, xs, state, *, fused_on: bool, loop: str = "fused"):
    set_fused_step(fused_on)
    set_loop_compiler(loop)
    hs = []
    with torch.no_grad():
        for x in xs:
            h, state = cell.step(x, state)
            hs.append(h)
    set_fused_step(True)
    set_loop_compiler("fused")
    return hs, state


@pytest.fixture
def calls(monkeypatch):
    """Records which fused step functions run."""
    seen: list[str] = []
    for name in ("lstm_step", "layernorm_lstm_step", "hyper_lstm_step"):
        original = getattr(fused_step, name)
        monkeypatch.setattr(
            fused_step, name, lambda *a, _o=original, _n=name: seen.append(_n) or _o(*a)
        )
    return seen


@pytest.mark.parametrize("kind", cells.CELL_TYPES)
@pytest.mark.parametrize("batch", [1, 5])
def test_float64_equals_the_python_loop(kind, batch, calls):
    cell = _cell(kind, torch.float64)
    xs, state = _inputs(cell, batch, 6, torch.float64)
    got_h, got_state = _steps(cell, xs, state, fused_on=True)
    assert len(calls) == 6
    want_h, want_state = _steps(cell, xs, state, fused_on=False, loop="python")
    for got, want in zip([*got_h, *got_state], [*want_h, *want_state], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", cells.CELL_TYPES)
@pytest.mark.parametrize("batch", [1, 9])
def test_float32_one_step_within_1e_6_of_the_paths_before(kind, batch, calls):
    # Batch 9 runs the products on oneDNN, batch 1 on MKL (fused_step._Linear).
    cell = _cell(kind)
    xs, state = _inputs(cell, batch, 1)
    got = _steps(cell, xs, state, fused_on=True)
    assert calls
    for loop in ("fused", "python"):  # the sequence path step ran before; the reference loop
        want = _steps(cell, xs, state, fused_on=False, loop=loop)
        for a, b in zip([*got[0], *got[1]], [*want[0], *want[1]], strict=True):
            assert a.dtype == b.dtype == torch.float32
            torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind", cells.CELL_TYPES)
def test_a_shrinking_batch_and_non_contiguous_state(kind):
    # The drawing loop drops finished sketches (the batch shrinks step by step) and a decoder
    # splits its first state out of one linear layer (column slices).
    cell = _cell(kind, torch.float64)
    widths = list(cell.state_sizes)
    flat = torch.randn(9, sum(widths), dtype=torch.float64)
    xs, _ = _inputs(cell, 9, 1, torch.float64)
    results = []
    for fused_on, loop in ((True, "fused"), (False, "python")):
        set_fused_step(fused_on)
        set_loop_compiler(loop)
        state = tuple(flat.split(widths, dim=1))
        out = []
        with torch.no_grad():
            for rows in (9, 4, 1):
                state = tuple(s[:rows] for s in state)
                h, state = cell.step(xs[0][:rows], state)
                out.append(h)
        results.append(out)
    for got, want in zip(*results, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_float32_batch_sizes_through_the_packed_weights():
    cell = _cell("lstm")
    for batch in (9, 2, 1, 30):
        xs, state = _inputs(cell, batch, 1)
        got = _steps(cell, xs, state, fused_on=True)
        want = _steps(cell, xs, state, fused_on=False, loop="python")
        torch.testing.assert_close(got[1], want[1], rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind", cells.CELL_TYPES)
def test_taken_only_without_autograd_and_dropout(kind, calls):
    x = torch.randn(2, INPUT)
    cell = _cell(kind, dropout=0.3)
    state = cell.zero_state(2, x)
    cell.step(x, state)  # autograd on
    assert calls == []
    with torch.no_grad():
        cell.train()
        cell.step(x, state)  # recurrent dropout draws masks: the sequence path
        assert calls == []
        set_fused_step(False)
        cell.eval().step(x, state)
        set_fused_step(True)
        set_loop_compiler("python")
        cell.step(x, state)
        assert calls == []
        set_loop_compiler("fused")
        cell.step(x, state)
        assert len(calls) == 1
    with torch.inference_mode():
        cell.step(x, state)
        assert len(calls) == 2
    no_dropout = _cell(kind).train()
    with torch.no_grad():
        no_dropout.step(x, state)  # training mode without dropout is the same maths
    assert len(calls) == 3


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::torch.jit.TracerWarning")
@pytest.mark.parametrize("kind", cells.CELL_TYPES)
def test_tracing_sees_the_pure_pytorch_reference(kind, calls):
    # What the ONNX export does: trace a step. The trace must hold torch ops (the reference
    # loop), not a constant-folded call into the extension, so it must follow new inputs.
    cell = _cell(kind)

    class Step(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.cell = cell

        def forward(self, x, *state):
            h, new_state = self.cell.step(x, tuple(state))
            return h, *new_state

    xs, state = _inputs(cell, 3, 2)
    with torch.no_grad():
        traced = torch.jit.trace(Step(), (xs[0], *state), check_trace=False)
        assert calls == []
        other_state = tuple(s * 0.3 for s in state)
        got = traced(xs[1], *other_state)
        set_loop_compiler("python")
        want = Step()(xs[1], *other_state)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind", cells.CELL_TYPES)
def test_prepared_weights_follow_every_parameter_change(kind):
    cell = _cell(kind)
    xs, state = _inputs(cell, 3, 1)

    def agree():
        got = _steps(cell, xs, state, fused_on=True)
        want = _steps(cell, xs, state, fused_on=False, loop="python")
        torch.testing.assert_close(got[1], want[1], rtol=1e-5, atol=1e-5)
        return got[1]

    before = agree()
    # An optimizer step (in place, under no_grad) on every parameter.
    optimizer = torch.optim.SGD(cell.parameters(), lr=0.1)
    cell.train()
    h_seq, _ = cell(torch.stack(xs, 1), state)
    h_seq.pow(2).sum().backward()
    optimizer.step()
    cell.eval()
    after_step = agree()
    assert not torch.allclose(before[0], after_step[0])
    # load_state_dict (copy_ into the same tensors)
    cell.load_state_dict(_cell(kind).state_dict())
    torch.testing.assert_close(agree()[0], before[0], rtol=1e-6, atol=1e-6)
    # A converted module (new storage, same Parameter objects, same version counters)
    cell.double()
    xs, state = [x.double() for x in xs], tuple(s.double() for s in state)
    assert agree()[0].dtype == torch.float64


def test_prepared_weights_go_with_the_cell():
    cell = _cell("layernorm")
    xs, state = _inputs(cell, 2, 1)
    _steps(cell, xs, state, fused_on=True)
    assert cell in fused_step._cache
    gone = weakref.ref(cell)
    del cell
    gc.collect()
    assert gone() is None  # the cache does not keep the cell (or its weights) alive


def test_forget_drops_the_prepared_weights_after_a_data_write():
    cell = _cell("lstm")
    xs, state = _inputs(cell, 2, 1)
    first = _steps(cell, xs, state, fused_on=True)[1]
    with torch.no_grad():
        cell.lstm.weight_hh_l0.data.mul_(0.5)  # bypasses the version counter
    fused_step.forget(cell)
    got = _steps(cell, xs, state, fused_on=True)[1]
    want = _steps(cell, xs, state, fused_on=False, loop="python")[1]
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    assert not torch.allclose(got[0], first[0])


def test_without_the_extension_the_step_takes_the_sequence_path(monkeypatch, calls):
    cell = _cell("hyper")
    xs, state = _inputs(cell, 2, 3)
    want = _steps(cell, xs, state, fused_on=False, loop="python")
    calls.clear()
    monkeypatch.setenv(fused.DISABLE_ENV, "1")
    monkeypatch.setattr(fused, "_warned_disabled", True)  # its one warning is tested elsewhere
    got = _steps(cell, xs, state, fused_on=True)
    assert calls == []
    torch.testing.assert_close(got[1], want[1], rtol=0, atol=0)
