"""The decoder cells: shapes, the two plain-LSTM paths, layer-norm maths, HyperLSTM, dropout;
the fast float32 matmul mode; the encoder's unpacked bidirectional LSTM."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence

from sketchrnn.nn import cells
from sketchrnn.nn.cells import (
    CELL_TYPES,
    LSTM,
    HyperLSTM,
    LayerNormLSTM,
    fast_fp32_matmul,
    make_cell,
    set_loop_compiler,
)
from sketchrnn.nn.encoders import BiLSTMEncoder

INPUT, HIDDEN, BATCH, STEPS = 7, 16, 3, 9


def _cell(kind: str, dropout: float = 0.0):
    torch.manual_seed(0)
    return make_cell(kind, INPUT, HIDDEN, recurrent_dropout=dropout, hyper_hidden=8, hyper_embed=4)


def _random_state(cell, generator_seed: int = 1):
    gen = torch.Generator().manual_seed(generator_seed)
    return tuple(torch.randn(BATCH, size, generator=gen) * 0.5 for size in cell.state_sizes)


@pytest.mark.parametrize("kind", CELL_TYPES)
def test_sequence_and_step_shapes(kind):
    cell = _cell(kind)
    x = torch.randn(BATCH, STEPS, INPUT)
    state = cell.zero_state(BATCH, x)
    assert [s.shape for s in state] == [(BATCH, n) for n in cell.state_sizes]
    h_seq, new_state = cell(x, state)
    assert h_seq.shape == (BATCH, STEPS, HIDDEN)
    assert [s.shape for s in new_state] == [(BATCH, n) for n in cell.state_sizes]
    h, step_state = cell.step(x[:, 0], state)
    assert h.shape == (BATCH, HIDDEN)
    assert len(step_state) == len(cell.state_sizes)


@pytest.mark.parametrize("kind", CELL_TYPES)
def test_steps_one_by_one_equal_the_sequence(kind):
    cell = _cell(kind).eval()
    x = torch.randn(BATCH, STEPS, INPUT)
    state = _random_state(cell)
    h_seq, final = cell(x, state)
    step_state = state
    for t in range(STEPS):
        h, step_state = cell.step(x[:, t], step_state)
        torch.testing.assert_close(h, h_seq[:, t], rtol=1e-5, atol=1e-5)
    for a, b in zip(final, step_state, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", CELL_TYPES)
def test_gradient_reaches_every_parameter_and_the_state(kind):
    cell = _cell(kind, dropout=0.2).train()
    x = torch.randn(BATCH, STEPS, INPUT, requires_grad=True)
    state = tuple(s.requires_grad_() for s in _random_state(cell))
    h_seq, _ = cell(x, state)
    h_seq.pow(2).sum().backward()
    for name, param in cell.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    assert x.grad.abs().sum() > 0
    assert all(s.grad.abs().sum() > 0 for s in state)


@pytest.fixture(params=["fused", "python"])
def loop_compiler(request):
    previous = cells._loop_compiler
    set_loop_compiler(request.param)
    yield request.param
    set_loop_compiler(previous)


def test_fused_and_step_loop_lstm_agree_on_the_same_weights(loop_compiler):
    cell = _cell("lstm", dropout=0.3)
    assert isinstance(cell, LSTM)
    cell.eval()  # eval: fused path; forward_loop with training=False applies no dropout
    x = torch.randn(BATCH, STEPS, INPUT)
    state = _random_state(cell)
    fused_h, (fused_hn, fused_cn) = cell(x, state)
    fused_grads = torch.autograd.grad(fused_h.pow(2).sum(), list(cell.parameters()))
    loop_h, (loop_hn, loop_cn) = cell.forward_loop(x, state)
    loop_grads = torch.autograd.grad(loop_h.pow(2).sum(), list(cell.parameters()))
    torch.testing.assert_close(loop_h, fused_h, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(loop_hn, fused_hn, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(loop_cn, fused_cn, rtol=1e-5, atol=1e-6)
    for a, b in zip(loop_grads, fused_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", CELL_TYPES)
def test_recurrent_dropout_is_random_in_training_and_off_in_eval(kind):
    cell = _cell(kind, dropout=0.5)
    x = torch.randn(BATCH, STEPS, INPUT)
    state = _random_state(cell)
    cell.train()
    first, _ = cell(x, state)
    second, _ = cell(x, state)
    assert not torch.allclose(first, second)
    cell.eval()
    first, _ = cell(x, state)
    second, _ = cell(x, state)
    torch.testing.assert_close(first, second)


def test_no_dropout_means_training_is_deterministic():
    cell = _cell("layernorm", dropout=0.0).train()
    x = torch.randn(BATCH, STEPS, INPUT)
    state = _random_state(cell)
    torch.testing.assert_close(cell(x, state)[0], cell(x, state)[0])


def test_dropout_drops_the_cell_update_not_the_hidden_state():
    # Dropping g at almost every step leaves c = f * c, so from c = 0 the memory stays 0 and
    # h = sigmoid(o) * tanh(0) = 0. Dropping h instead would leave c to grow.
    cell = _cell("lstm", dropout=0.999999).train()
    x = torch.randn(BATCH, STEPS, INPUT)
    h_seq, (_, c) = cell(x, cell.zero_state(BATCH, x))
    assert c.abs().max() == 0
    assert h_seq.abs().max() == 0


@pytest.mark.parametrize("kind", CELL_TYPES)
def test_recurrent_weights_start_orthogonal_and_forget_bias_at_one(kind):
    cell = _cell(kind)
    if isinstance(cell, LSTM):
        w_hh, forget = cell.lstm.weight_hh_l0, cell.lstm.bias_ih_l0.view(4, HIDDEN)[1]
    else:
        w_hh, forget = cell.weight_hh[: 4 * HIDDEN], cell.gate_beta[1]
    for block in w_hh.detach().chunk(4, 0):
        torch.testing.assert_close(block @ block.T, torch.eye(HIDDEN), atol=1e-5, rtol=0)
    torch.testing.assert_close(forget.detach(), torch.ones(HIDDEN))


def _reference_layernorm_lstm(cell: LayerNormLSTM, x, state):
    """The LayerNorm LSTM written out step by step, independently of the scripted loop."""
    h, c = state
    outputs = []
    for t in range(x.shape[1]):
        pre = x[:, t] @ cell.weight_ih.T + h @ cell.weight_hh.T
        gates = []
        for k, part in enumerate(pre.chunk(4, 1)):
            mean = part.mean(1, keepdim=True)
            var = part.var(1, unbiased=False, keepdim=True)
            normed = (part - mean) / torch.sqrt(var + 1e-5)
            gates.append(normed * cell.gate_gamma[k] + cell.gate_beta[k])
        i, f, g, o = gates
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        c_normed = F.layer_norm(c, [c.shape[1]], cell.cell_gamma, cell.cell_beta)
        h = torch.sigmoid(o) * torch.tanh(c_normed)
        outputs.append(h)
    return torch.stack(outputs, 1)


def test_layernorm_lstm_matches_a_step_by_step_reference():
    cell = _cell("layernorm").eval()
    with torch.no_grad():  # non-trivial norms so that gamma/beta matter
        cell.gate_gamma.normal_(1.0, 0.2)
        cell.gate_beta.normal_(0.0, 0.2)
        cell.cell_gamma.normal_(1.0, 0.2)
        cell.cell_beta.normal_(0.0, 0.2)
    x = torch.randn(BATCH, STEPS, INPUT)
    state = _random_state(cell)
    expected = _reference_layernorm_lstm(cell, x, state)
    torch.testing.assert_close(cell(x, state)[0], expected, rtol=1e-4, atol=1e-5)


def test_hyper_lstm_with_unit_scaling_is_a_layernorm_lstm():
    # With every weight-scaling vector d_x = d_h = 1 and bias shift d_b = 0 (and no bias), the
    # hypernetwork has no effect and the main cell must be exactly a LayerNorm LSTM.
    hyper = _cell("hyper").eval()
    assert isinstance(hyper, HyperLSTM)
    plain = _cell("layernorm").eval()
    E = hyper.hyper_embed
    with torch.no_grad():
        hyper.embed_weight.zero_()
        hyper.embed_bias.zero_()
        hyper.embed_bias[: 8 * E].fill_(1.0)
        hyper.scale_weight.zero_()
        hyper.scale_weight[:8].fill_(1.0 / E)
        hyper.bias.zero_()
        hyper.gate_gamma.normal_(1.0, 0.2)
        hyper.gate_beta.normal_(0.0, 0.2)
        plain.weight_ih.copy_(hyper.weight_ih[: 4 * HIDDEN])
        plain.weight_hh.copy_(hyper.weight_hh[: 4 * HIDDEN])
        for name in ("gate_gamma", "gate_beta", "cell_gamma", "cell_beta"):
            getattr(plain, name).copy_(getattr(hyper, name))
    x = torch.randn(BATCH, STEPS, INPUT)
    state = _random_state(hyper)
    hyper_h, _ = hyper(x, state)
    plain_h, _ = plain(x, state[:2])
    torch.testing.assert_close(hyper_h, plain_h, rtol=1e-4, atol=1e-5)


def test_hyper_lstm_scaling_changes_the_output():
    # The converse: the hyper cell's embeddings do act on the main cell.
    cell = _cell("hyper").eval()
    x = torch.randn(BATCH, STEPS, INPUT)
    state = _random_state(cell)
    before, _ = cell(x, state)
    with torch.no_grad():
        cell.scale_weight[8:].normal_(0.0, 1.0)  # bias shifts
    after, _ = cell(x, state)
    assert (before - after).abs().max() > 1e-3


def test_make_cell_rejects_unknown_names_and_bad_dropout():
    with pytest.raises(ValueError, match="unknown cell"):
        make_cell("gru", INPUT, HIDDEN)
    with pytest.raises(ValueError, match="recurrent_dropout"):
        make_cell("lstm", INPUT, HIDDEN, recurrent_dropout=1.0)
    with pytest.raises(ValueError, match="loop compiler"):
        set_loop_compiler("compile")


@pytest.fixture
def restore_matmul_precision():
    yield
    fast_fp32_matmul(False)


@pytest.mark.parametrize("kind", ["layernorm", "hyper"])
def test_fast_fp32_matmul_keeps_float32_accuracy(kind, restore_matmul_precision, monkeypatch):
    # Sizes where oneDNN takes the matmuls (the tiny test sizes above may not reach it), on the
    # Python loops, whose matmuls are all torch's (the fused loops run some on oneDNN already).
    monkeypatch.setattr(cells, "_loop_compiler", "python")
    torch.manual_seed(0)
    cell = make_cell(kind, 33, 256, hyper_hidden=64, hyper_embed=8).train()
    x = torch.randn(16, 12, 33, requires_grad=True)
    state = cell.zero_state(16, x)

    def run():
        h_seq, _ = cell(x, state)
        grads = torch.autograd.grad(h_seq.pow(2).sum(), [x, *cell.parameters()])
        return h_seq.detach(), grads

    expected_h, expected_grads = run()
    if not fast_fp32_matmul():
        pytest.skip("this PyTorch/CPU has no fast float32 matmul mode")
    assert torch.backends.mkldnn.matmul.fp32_precision == "bf16"
    got_h, got_grads = run()
    if torch.equal(got_h, expected_h):
        pytest.skip("oneDNN kept its default float32 kernels here (no bfloat16 instructions?)")
    # A plain bfloat16 product would be off by ~3e-3 relative; float32 accuracy is ~1e-6.
    torch.testing.assert_close(got_h, expected_h, rtol=1e-4, atol=1e-5)
    for got, expected in zip(got_grads, expected_grads, strict=True):
        scale = expected.abs().max().clamp_min(1e-6)
        assert (got - expected).abs().max() / scale < 1e-4
    assert not fast_fp32_matmul(False)
    assert torch.backends.mkldnn.matmul.fp32_precision == "none"


@pytest.mark.parametrize(
    "loop, threads", [("python", 1), ("fused", 1), ("fused", 2)]
)  # fused at 2 threads: the two directions side by side, one thread each
def test_bilstm_encoder_matches_packed_sequences(loop, threads, monkeypatch):
    # The encoder runs each direction unpacked and picks the states at n - 1; a packed
    # bidirectional LSTM over the same weights is the reference, values and gradients.
    from sketchrnn.nn import fused

    if loop == "fused" and not fused.available():
        pytest.skip("the fused kernels are not available here")
    monkeypatch.setattr(cells, "_loop_compiler", loop)
    torch.set_num_threads(threads)  # every test starts on one again (tests/conftest.py)
    taken = []
    monkeypatch.setattr(
        fused.LSTMSequencePair,
        "apply",
        lambda *a, _f=fused.LSTMSequencePair.apply: taken.append(True) or _f(*a),
    )
    torch.manual_seed(0)
    encoder = BiLSTMEncoder(5, 8, 3).double()
    x = torch.randn(4, 9, 5, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([9, 1, 5, 3])
    with torch.no_grad():  # padding garbage must not reach the states
        x[1, 1:] = 100.0
    mu, sigma_hat = encoder(x, lengths)
    assert bool(taken) == (loop == "fused")
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    _, (h_n, _) = encoder.lstm(packed)
    ref_mu, ref_sigma_hat = encoder.to_latent(torch.cat([h_n[0], h_n[1]], -1)).chunk(2, -1)
    torch.testing.assert_close(mu, ref_mu)
    torch.testing.assert_close(sigma_hat, ref_sigma_hat)
    inputs = [x, *encoder.parameters()]
    got = torch.autograd.grad(mu.sum() + sigma_hat.pow(2).sum(), inputs)
    expected = torch.autograd.grad(ref_mu.sum() + ref_sigma_hat.pow(2).sum(), inputs)
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("kind", CELL_TYPES)
@pytest.mark.parametrize("loop", ["python", "fused"])
def test_cond_is_read_as_input_at_every_step(kind, loop):
    # cell(x, state, cond=c) projects c once per sequence; it must equal reading [x_t; c] at
    # every step: values, and the gradients of the parameters, the input and c.
    torch.manual_seed(0)
    cell = make_cell(kind, INPUT, HIDDEN, recurrent_dropout=0.3, hyper_hidden=8, hyper_embed=4)
    cell = cell.double().train()
    x = torch.randn(BATCH, STEPS, 3, dtype=torch.float64, requires_grad=True)
    cond = torch.randn(BATCH, INPUT - 3, dtype=torch.float64, requires_grad=True)
    state = tuple(s.double() for s in _random_state(cell))
    previous = cells._loop_compiler
    set_loop_compiler(loop)
    try:
        results = []
        for given in ("cond", "concatenated"):
            torch.manual_seed(5)  # the same dropout masks
            if given == "cond":
                h_seq, final = cell(x, state, cond=cond)
            else:
                joined = torch.cat([x, cond.unsqueeze(1).expand(-1, STEPS, -1)], dim=-1)
                h_seq, final = cell(joined, state)
            loss = h_seq.pow(2).sum() + sum(s.sum() for s in final)
            grads = torch.autograd.grad(loss, [x, cond, *cell.parameters()])
            results.append([h_seq, *final, *grads])
    finally:
        set_loop_compiler(previous)
    for got, want in zip(*results, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    cell.eval()  # the plain LSTM's nn.LSTM path (no dropout in eval) joins cond itself
    with torch.no_grad():
        got, _ = cell(x, state, cond=cond)
        want, _ = cell(torch.cat([x, cond.unsqueeze(1).expand(-1, STEPS, -1)], dim=-1), state)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kind", ["lstm", "layernorm"])
def test_decoder_fused_path_matches_the_python_loops(kind, monkeypatch):
    # On the fused path the strokes are projected inside the loops' row kernels (narrow
    # inputs, their gradients summed in the backward loop) and the mixture head runs on
    # oneDNN over the time-major output: the mixture and every gradient as on the Python loops.
    from sketchrnn.nn import fused
    from sketchrnn.nn.decoder import MixtureDecoder

    if not fused.available():
        pytest.skip(f"the fused kernels are not available here ({fused._failed})")
    monkeypatch.setattr(fused, "_MIN_PACKED_STEPS", 1)  # oneDNN's products at this size too
    monkeypatch.setattr(fused, "_MIN_PACKED_ROWS", 1)
    narrow = []
    term = fused._input_term
    monkeypatch.setattr(
        fused, "_input_term", lambda x: narrow.append(isinstance(x, fused.NarrowInputs)) or term(x)
    )
    torch.manual_seed(0)
    decoder = MixtureDecoder(kind, 4, HIDDEN, 3, z_size=6, recurrent_dropout=0.2).train()
    inputs = torch.randn(5, STEPS, 5)
    cond = torch.randn(5, 4, requires_grad=True)
    z = torch.randn(5, 6, requires_grad=True)
    weights = [torch.randn(5, STEPS, n) for n in (3, 3, 3, 3, 3, 3, 3)]
    results = []
    previous = cells._loop_compiler
    try:
        for compiler in ("fused", "python"):
            set_loop_compiler(compiler)
            torch.manual_seed(1)  # the same dropout masks on both paths
            params = decoder.decode(inputs, cond, z)
            loss = sum((p * w).sum() for p, w in zip(params, weights, strict=True))
            grads = torch.autograd.grad(loss, [*decoder.parameters(), cond, z])
            results.append([*params, *grads])
    finally:
        set_loop_compiler(previous)
    assert narrow == [True]  # the fused run took narrow inputs; the Python one no fused loop
    for fused_value, python_value in zip(*results, strict=True):
        torch.testing.assert_close(fused_value, python_value, rtol=1e-4, atol=1e-5)
