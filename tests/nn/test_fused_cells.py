"""The fused C++ cell kernels (sketchrnn.nn.fused) against the Python loops of
sketchrnn.nn.cells: values and every gradient, float64 and float32, with and without recurrent
dropout; gradcheck of each autograd Function; the fallbacks (extension disabled or failing to
build, CUDA or other dtypes)."""

from __future__ import annotations

import os
import sys

import pytest
import torch

from sketchrnn.nn import cells, fused
from sketchrnn.nn.cells import make_cell, set_loop_compiler

pytestmark = pytest.mark.slow  # see pyproject: `make test` skips these

INPUT, HIDDEN, BATCH, STEPS = 6, 5, 3, 4


@pytest.fixture(scope="module", autouse=True)
def extension():
    if not fused.available():
        reason = fused._failed or f"disabled by {fused.DISABLE_ENV}"
        pytest.skip(f"the fused kernels are not available here ({reason})")


@pytest.fixture
def loop_compiler():
    """Restores the loop compiler a test changes."""
    previous = cells._loop_compiler
    yield set_loop_compiler
    set_loop_compiler(previous)


def _cell(kind: str, dtype: torch.dtype, dropout: float = 0.0):
    torch.manual_seed(0)
    cell = make_cell(
        kind, INPUT, HIDDEN, recurrent_dropout=dropout, hyper_hidden=7, hyper_embed=3
    ).to(dtype)
    with torch.no_grad():  # non-trivial norms and hyper parameters, so that all of them matter
        for name, param in cell.named_parameters():
            if "gamma" in name:
                param.normal_(1.0, 0.3)
            elif "beta" in name or name in ("bias", "embed_weight", "scale_weight"):
                param.add_(torch.randn_like(param) * 0.3)
    return cell


def _run(cell, kind, x, state, seed):
    """Sequence output, final state and the gradients of a loss on all of them."""
    torch.manual_seed(seed)  # the dropout masks
    loop = cell.forward_loop if kind == "lstm" else cell
    h_seq, final = loop(x, state)
    weights = [torch.randn_like(t) for t in (h_seq, *final)]
    loss = sum((w * t).sum() for w, t in zip(weights, (h_seq, *final), strict=True))
    inputs = [x, *state, *cell.parameters()]
    grads = torch.autograd.grad(loss, inputs, allow_unused=True)
    return [h_seq, *final], grads


def _compare(kind, dtype, dropout, loop_compiler, tol):
    cell = _cell(kind, dtype, dropout).train()
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(BATCH, STEPS, INPUT, generator=gen, dtype=dtype, requires_grad=True)
    state = tuple(
        (torch.randn(BATCH, n, generator=gen, dtype=dtype) * 0.5).requires_grad_()
        for n in cell.state_sizes
    )
    loop_compiler("python")
    torch.manual_seed(5)
    expected_out, expected_grads = _run(cell, kind, x, state, seed=3)
    loop_compiler("fused")
    torch.manual_seed(5)
    got_out, got_grads = _run(cell, kind, x, state, seed=3)
    for got, want in zip(got_out, expected_out, strict=True):
        torch.testing.assert_close(got, want, **tol)
    names = ["x"] + [f"state{k}" for k in range(len(state))]
    names += [n for n, _ in cell.named_parameters()]
    for name, got, want in zip(names, got_grads, expected_grads, strict=True):
        assert (got is None) == (want is None), name
        if got is not None:
            torch.testing.assert_close(got, want, **tol, msg=lambda m, n=name: f"{n}: {m}")


@pytest.mark.parametrize("kind", cells.CELL_TYPES)
@pytest.mark.parametrize("dropout", [0.0, 0.4])
def test_fused_equals_python_float64(kind, dropout, loop_compiler):
    _compare(kind, torch.float64, dropout, loop_compiler, {"rtol": 1e-10, "atol": 1e-11})


@pytest.mark.parametrize("kind", cells.CELL_TYPES)
@pytest.mark.parametrize("dropout", [0.0, 0.4])
@pytest.mark.parametrize("packed", [False, True])
def test_fused_equals_python_float32(kind, dropout, packed, loop_compiler, monkeypatch):
    if packed:  # oneDNN's packed matmuls, which the loops use for long sequences only
        if not fused._onednn_ok():
            pytest.skip("no oneDNN linear operators in this PyTorch build")
        monkeypatch.setattr(fused, "_MIN_PACKED_STEPS", 1)
        monkeypatch.setattr(fused, "_MIN_PACKED_ROWS", 1)
    _compare(kind, torch.float32, dropout, loop_compiler, {"rtol": 1e-5, "atol": 1e-5})


@pytest.mark.parametrize("in_features", [13, 5])  # 5: the weight gradient as (x.T @ d).T
@pytest.mark.parametrize("with_add", [False, True])  # a per-sketch term, as a decoder's z
def test_onednn_linear_matches_f_linear(in_features, with_add):
    if not fused._onednn_ok():
        pytest.skip("no oneDNN linear operators in this PyTorch build")
    torch.manual_seed(0)
    x = torch.randn(30, 40, in_features, requires_grad=True)
    w = torch.randn(24, in_features, requires_grad=True)
    b = torch.randn(24, requires_grad=True)
    add = torch.randn(40, 24, requires_grad=True) if with_add else None
    got = fused.linear(x, w, b, add)
    expected = torch.nn.functional.linear(x, w, b)
    if add is not None:
        expected = expected + add
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    inputs = [x, w, b] + ([add] if add is not None else [])
    weights = torch.randn_like(expected)
    got_grads = torch.autograd.grad((got * weights).sum(), inputs)
    expected_grads = torch.autograd.grad((expected * weights).sum(), inputs)
    for a, e in zip(got_grads, expected_grads, strict=True):
        torch.testing.assert_close(a, e, rtol=1e-4, atol=1e-4)


def test_the_fused_path_is_taken(loop_compiler, monkeypatch):
    # Guard against the comparison above passing because both runs took the Python loop.
    calls = []
    for name in ("lstm_loop", "layernorm_lstm_loop", "hyper_lstm_loop"):
        original = getattr(fused, name)
        monkeypatch.setattr(
            fused, name, lambda *a, _o=original, _n=name: calls.append(_n) or _o(*a)
        )
    loop_compiler("fused")
    for kind in cells.CELL_TYPES:
        cell = _cell(kind, torch.float32, 0.3).train()
        x = torch.randn(BATCH, STEPS, INPUT)
        cell(x, cell.zero_state(BATCH, x))
    assert calls == ["lstm_loop", "layernorm_lstm_loop", "hyper_lstm_loop"]


def test_dropout_masks_are_the_same_in_both_paths(loop_compiler):
    # Same seed -> same masks -> same outputs, with a high dropout rate that would show any
    # difference in the masks.
    cell = _cell("layernorm", torch.float32, 0.5).train()
    x = torch.randn(BATCH, STEPS, INPUT)
    state = cell.zero_state(BATCH, x)
    outputs = []
    for compiler in ("python", "fused", "fused"):
        loop_compiler(compiler)
        torch.manual_seed(11)
        outputs.append(cell(x, state)[0])
    # float32: the fused and Python loops round differently (seen: 2.5e-6 on one of 60 values).
    torch.testing.assert_close(outputs[1], outputs[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(outputs[2], outputs[1], rtol=0, atol=0)
    torch.manual_seed(12)
    assert not torch.allclose(cell(x, state)[0], outputs[0])


# ----------------------------------------------------------------------------- gradcheck

B, H, T = 2, 3, 3


def _d(*shape, scale=1.0, offset=0.0, grad=True):
    t = torch.randn(*shape, dtype=torch.float64) * scale + offset
    return t.requires_grad_(grad)


def _mask(*shape):
    return torch.empty(*shape, dtype=torch.float64).bernoulli_(0.6) / 0.6


def _input_term(form, steps=T, batch=B):
    """A loop's (x_proj, x_in, w_x, row): the projection of every step, or narrow inputs
    (three columns) that the row kernels project, with a per-row term or without."""
    if form == "projected":
        return (_d(steps, batch, 4 * H), None, None, None)
    row = _d(batch, 4 * H) if form == "narrow" else None
    return (None, _d(steps, batch, 3), _d(4 * H, 3, scale=0.5), row)


INPUT_FORMS = ["projected", "narrow", "narrow without row"]


@pytest.mark.parametrize("form", INPUT_FORMS)
@pytest.mark.parametrize("with_mask", [False, True])
def test_gradcheck_lstm_sequence(with_mask, form):
    torch.manual_seed(0)
    masks = _mask(T, B, H) if with_mask else None
    inputs = (*_input_term(form), _d(B, H), _d(B, H), _d(4 * H, H, scale=0.5), masks)
    assert torch.autograd.gradcheck(fused.LSTMSequence.apply, inputs)


@pytest.mark.parametrize("form", INPUT_FORMS)
@pytest.mark.parametrize("with_mask", [False, True])
def test_gradcheck_layernorm_lstm_sequence(with_mask, form):
    torch.manual_seed(0)
    masks = _mask(T, B, H) if with_mask else None
    params = (
        _d(4, H, scale=0.3, offset=1.0),
        _d(4, H, scale=0.3),
        _d(H, scale=0.3, offset=1.0),
        _d(H),
    )
    inputs = (*_input_term(form), _d(B, H), _d(B, H), _d(4 * H, H, scale=0.5), *params, masks)
    assert torch.autograd.gradcheck(fused.LayerNormLSTMSequence.apply, inputs)


@pytest.mark.parametrize("form", INPUT_FORMS)
@pytest.mark.parametrize("threads", [1, 2])  # 2: the two loops side by side, one thread each
def test_gradcheck_lstm_sequence_pair(threads, form):
    torch.manual_seed(0)
    torch.set_num_threads(threads)  # every test starts on one again (tests/conftest.py)
    weights = (_d(4 * H, H, scale=0.5), _d(4 * H, H, scale=0.5))
    terms = (_input_term(form), _input_term("projected"))  # the two forms may differ
    inputs = (*weights, *terms[0], *terms[1])
    assert torch.autograd.gradcheck(fused.LSTMSequencePair.apply, inputs)
    # Each of the two is the single loop from zero states.
    zeros = torch.zeros(B, H, dtype=torch.float64)
    pair = fused.LSTMSequencePair.apply(*inputs)
    for i in range(2):
        alone, _ = fused.LSTMSequence.apply(*terms[i], zeros, zeros, weights[i], None)
        torch.testing.assert_close(pair[i], alone, rtol=0, atol=0)


@pytest.mark.parametrize("form", ["projected", "narrow"])
@pytest.mark.parametrize("kind", ["lstm", "layernorm"])
def test_two_threads_split_the_batch_with_the_same_numbers(kind, form):
    # At exactly two threads and 16 rows or more, each half of the batch runs its own time
    # loop on one thread (C++ half_rows): values and every gradient as at one thread.
    torch.manual_seed(0)
    steps, batch = 5, 17
    term = _input_term(form, steps, batch)
    rest = [_d(batch, H), _d(batch, H), _d(4 * H, H, scale=0.5)]
    if kind == "layernorm":
        rest += [
            _d(4, H, scale=0.3, offset=1.0), _d(4, H, scale=0.3), _d(H, scale=0.3, offset=1.0),
            _d(H),
        ]  # fmt: skip
    inputs = [t for t in term if t is not None] + rest
    masks = _mask(steps, batch, H)
    loop = fused.LSTMSequence if kind == "lstm" else fused.LayerNormLSTMSequence
    weights = [torch.randn(steps, batch, H, dtype=torch.float64) for _ in range(2)]
    results = []
    for threads in (1, 2):
        torch.set_num_threads(threads)  # every test starts on one again (tests/conftest.py)
        h_all, c_all = loop.apply(*term, *rest, masks)
        loss = (h_all * weights[0]).sum() + (c_all * weights[1]).sum()
        results.append([h_all, c_all, *torch.autograd.grad(loss, inputs)])
    for one, two in zip(*results, strict=True):
        torch.testing.assert_close(one, two, rtol=0, atol=1e-12)


def test_sequence_gradients_of_the_final_cell_state_only():
    # Only c_T used: the h_all gradient arrives as None and must count as zero.
    torch.manual_seed(0)
    inputs = (*_input_term("projected"), _d(B, H), _d(B, H), _d(4 * H, H, scale=0.5), None)
    assert torch.autograd.gradcheck(lambda *a: fused.LSTMSequence.apply(*a)[1][-1], inputs)


# ----------------------------------------------------------------------------- fallbacks


def _outputs_and_grads(kind):
    # No dropout: without the extension the masks come from torch's bernoulli_ instead.
    cell = _cell(kind, torch.float32, 0.0).train()
    x = torch.randn(BATCH, STEPS, INPUT, generator=torch.Generator().manual_seed(2))
    loop = cell.forward_loop if kind == "lstm" else cell
    h_seq, _ = loop(x, cell.zero_state(BATCH, x))
    grads = torch.autograd.grad(h_seq.pow(2).sum(), list(cell.parameters()))
    return h_seq, grads


@pytest.mark.parametrize("kind", cells.CELL_TYPES)
def test_disabled_extension_falls_back_to_the_same_numbers(kind, monkeypatch, loop_compiler):
    loop_compiler("fused")
    expected_h, expected_grads = _outputs_and_grads(kind)
    monkeypatch.setenv(fused.DISABLE_ENV, "1")
    monkeypatch.setattr(fused, "_warned_disabled", False)
    with pytest.warns(RuntimeWarning, match=fused.DISABLE_ENV):
        assert not fused.available()
    monkeypatch.setattr(fused, "LSTMSequence", None)  # would fail if it were still used
    monkeypatch.setattr(fused, "LayerNormLSTMSequence", None)
    got_h, got_grads = _outputs_and_grads(kind)
    torch.testing.assert_close(got_h, expected_h, rtol=1e-5, atol=1e-6)
    for got, want in zip(got_grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    # With dropout the fallback draws its masks with bernoulli_ (other numbers, same maths).
    cell = _cell(kind, torch.float32, 0.5).train()
    x = torch.randn(BATCH, STEPS, INPUT)
    first, _ = cell(x, cell.zero_state(BATCH, x))
    second, _ = cell(x, cell.zero_state(BATCH, x))
    assert not torch.allclose(first, second)


def test_dropout_masks_keep_the_expected_fraction_and_scale():
    torch.manual_seed(0)
    masks = fused.dropout_masks(0.3, (50, 40, 30), torch.zeros(1))
    assert masks.shape == (50, 40, 30) and masks.dtype == torch.float32
    assert masks.unique().tolist() == [0.0, pytest.approx(1 / 0.7)]
    assert abs((masks > 0).float().mean().item() - 0.7) < 0.01
    torch.manual_seed(0)
    assert torch.equal(fused.dropout_masks(0.3, (50, 40, 30), torch.zeros(1)), masks)
    assert not torch.equal(fused.dropout_masks(0.3, (50, 40, 30), torch.zeros(1)), masks)


def test_a_failing_build_warns_once_and_falls_back(monkeypatch, loop_compiler, tmp_path):
    loop_compiler("fused")
    expected_h, _ = _outputs_and_grads("layernorm")
    monkeypatch.setattr(fused, "_module", None)
    monkeypatch.setattr(fused, "_failed", None)

    def broken_load(*args, **kwargs):
        raise RuntimeError("Error building extension: no compiler")

    import torch.utils.cpp_extension

    monkeypatch.setattr(torch.utils.cpp_extension, "load", broken_load)
    monkeypatch.setattr(fused, "_build_directory", lambda name: tmp_path / name)
    with pytest.warns(RuntimeWarning, match="could not be built"):
        assert not fused.available()
    assert "no compiler" in fused._failed
    got_h, _ = _outputs_and_grads("layernorm")  # no second warning: _failed is remembered
    torch.testing.assert_close(got_h, expected_h, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_other_dtypes_take_the_python_loop(dtype, monkeypatch, loop_compiler):
    loop_compiler("fused")
    monkeypatch.setattr(fused, "layernorm_lstm_loop", None)  # would fail if it were used
    assert not fused.usable(torch.zeros(1, dtype=dtype))
    cell = make_cell("layernorm", INPUT, HIDDEN).to(dtype)
    x = torch.randn(BATCH, STEPS, INPUT, dtype=dtype)
    h_seq, _ = cell(x, cell.zero_state(BATCH, x))
    assert h_seq.dtype == dtype and torch.isfinite(h_seq.float()).all()


def test_mixed_and_non_cpu_tensors_are_not_served():
    assert fused.usable(torch.zeros(1), None, torch.zeros(2))
    assert not fused.usable(torch.zeros(1), torch.zeros(1, dtype=torch.float64))
    assert not fused.usable(torch.zeros(1, device="meta"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("kind", cells.CELL_TYPES)
def test_cuda_tensors_take_the_python_loop(kind, monkeypatch, loop_compiler):
    loop_compiler("fused")
    for name in ("lstm_loop", "layernorm_lstm_loop", "hyper_lstm_loop"):
        monkeypatch.setattr(fused, name, None)
    cell = _cell(kind, torch.float32, 0.3).train().cuda()
    x = torch.randn(BATCH, STEPS, INPUT, device="cuda")
    h_seq, _ = cell(x, cell.zero_state(BATCH, x))
    h_seq.sum().backward()
    assert h_seq.is_cuda


@pytest.mark.parametrize("kind", cells.CELL_TYPES)
def test_reused_buffers_never_overwrite_live_results(kind, loop_compiler, monkeypatch):
    # Sizes above the workspace's threshold, so that the sequence buffers are pooled: a result
    # still held (and the graph of a first call not yet backpropagated) must survive a second
    # call, and a third call after the backward must reuse the released buffers correctly.
    loop_compiler("fused")
    torch.manual_seed(0)
    cell = make_cell(kind, 9, 64, recurrent_dropout=0.2, hyper_hidden=16, hyper_embed=4).train()
    x = torch.randn(40, 70, 9)
    state = cell.zero_state(40, x)
    torch.manual_seed(1)
    first, _ = cell(x, state)
    kept = first.detach().clone()
    torch.manual_seed(2)
    second, _ = cell(x * 2, state)
    assert torch.equal(first, kept)
    second.sum().backward()
    first.sum().backward()
    torch.manual_seed(1)
    third, _ = cell(x, state)
    torch.testing.assert_close(third, kept, rtol=0, atol=0)
    fused.empty_cache()


def test_a_released_sequence_buffer_is_handed_out_again(loop_compiler):
    # The pool's buffers sit on huge-page-aligned blocks of their own: once the caller lets go
    # of one, the next request of its size gets the same memory (not a new block each time,
    # which would hold hundreds of MB more at every training step), and one still held is
    # never handed out twice.
    loop_compiler("fused")
    ext = fused._ext()
    like = torch.zeros(1)
    shape = [64, 128, 160]  # 5 MiB: above the pool's threshold
    first = ext.workspace_empty(shape, like)
    address = first.data_ptr()
    if sys.platform.startswith("linux"):
        assert address % 2**21 == 0
    del first
    again = ext.workspace_empty(shape, like)
    held = ext.workspace_empty(shape, like)
    assert again.data_ptr() == address and held.data_ptr() != address
    assert list(again.shape) == shape and again.is_contiguous()
    fused.empty_cache()


@pytest.mark.parametrize("kind", cells.CELL_TYPES)
def test_non_contiguous_states(kind, loop_compiler):
    # A decoder splits its initial state out of one linear layer: column slices.
    cell = _cell(kind, torch.float64).train()
    widths = list(cell.state_sizes)
    flat = torch.randn(BATCH, sum(widths), dtype=torch.float64, requires_grad=True)
    state = tuple(flat.split(widths, dim=1))
    x = torch.randn(BATCH, STEPS, INPUT, dtype=torch.float64)
    results = []
    for compiler in ("python", "fused"):
        loop_compiler(compiler)
        h_seq, _ = cell(x, state)
        results.append((h_seq, torch.autograd.grad(h_seq.pow(2).sum(), flat)[0]))
    torch.testing.assert_close(results[1][0], results[0][0])
    torch.testing.assert_close(results[1][1], results[0][1])


def test_a_stale_build_lock_is_removed_and_a_fresh_one_kept(tmp_path, capsys):
    lock = tmp_path / "lock"
    lock.touch()
    fused._remove_stale_lock(tmp_path)  # a build may be running right now: keep it
    assert lock.exists()
    old = lock.stat().st_mtime - fused._STALE_LOCK_SECONDS - 60
    os.utime(lock, (old, old))
    fused._remove_stale_lock(tmp_path)
    assert not lock.exists() and "stopped half-way" in capsys.readouterr().err


def test_the_sources_are_built_from_copies_beside_the_build(tmp_path):
    copies = fused._sources_in(tmp_path)
    assert [c.name for c in copies] == [s.name for s in fused._SOURCES]
    for copy, source in zip(copies, fused._SOURCES, strict=True):
        assert copy.parent == tmp_path and copy.read_bytes() == source.read_bytes()
    before = [c.stat().st_mtime_ns for c in copies]
    assert fused._sources_in(tmp_path) == copies
    assert [c.stat().st_mtime_ns for c in copies] == before


@pytest.mark.parametrize("kind", cells.CELL_TYPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_saturated_gates_give_the_python_loops_numbers_not_nan(kind, dtype, loop_compiler):
    # Pre-activations far below -88: exp(-x) overflows, and under -ffast-math 1 / (1 + inf)
    # had given NaN in the kernels' vectorised sigmoid (32 units: whole vectors, not the
    # scalar remainder), which then reached every weight gradient.
    torch.manual_seed(0)
    cell = make_cell(kind, INPUT, 32, hyper_hidden=32, hyper_embed=3).to(dtype).train()
    with torch.no_grad():
        for name, param in cell.named_parameters():
            if "gamma" in name:
                param.mul_(30.0)  # the layer-normed gates (within +-sqrt(32)) saturate too
    x = torch.randn(BATCH, STEPS, INPUT, dtype=dtype) * 1000.0
    state = cell.zero_state(BATCH, x)
    results = []
    for compiler in ("python", "fused"):
        loop_compiler(compiler)
        loop = cell.forward_loop if kind == "lstm" else cell
        h_seq, _ = loop(x, state)
        grads = torch.autograd.grad(h_seq.sum(), list(cell.parameters()), allow_unused=True)
        results.append([h_seq, *(g for g in grads if g is not None)])
    for got, want in zip(results[1], results[0], strict=True):
        assert torch.isfinite(got).all()
        # Float32 rounding grows with the 30x gains: compare at the scale of each result.
        scale = float(want.detach().abs().max().clamp_min(1.0))
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * scale)


@pytest.mark.parametrize("kind", cells.CELL_TYPES)
def test_cond_on_the_fused_loops_equals_the_python_loops(kind, loop_compiler, monkeypatch):
    # A decoder's z given as cond (projected once per sequence, added inside the oneDNN
    # product), float32 at sizes where the packed products run: against the Python loops.
    monkeypatch.setattr(fused, "_MIN_PACKED_STEPS", 1)
    monkeypatch.setattr(fused, "_MIN_PACKED_ROWS", 1)
    cell = _cell(kind, torch.float32, 0.4).train()
    x = torch.randn(BATCH, STEPS, 2, requires_grad=True)
    cond = torch.randn(BATCH, INPUT - 2, requires_grad=True)
    state = cell.zero_state(BATCH, x)
    results = []
    for compiler in ("python", "fused"):
        loop_compiler(compiler)
        torch.manual_seed(3)
        h_seq, final = cell(x, state, cond=cond)
        loss = h_seq.pow(2).sum() + final[1].sum()
        results.append([h_seq, *torch.autograd.grad(loss, [x, cond, *cell.parameters()])])
    for got, want in zip(results[1], results[0], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
