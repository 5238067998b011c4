"""Recurrent cells for the sketch-rnn decoder: LSTM, LayerNorm LSTM and HyperLSTM.

(Over 500 lines: the three cells with their pure-PyTorch loops, the reference that the fused
kernels are tested against and that the ONNX export traces, are one idea.)

All three share one interface:

* ``cell(x_seq, state, cond=None) -> (h_seq, state)`` with ``x_seq`` ``(batch, time, input)``
  and ``h_seq`` ``(batch, time, hidden_size)``; ``cond`` ``(batch, c)``, if given, is more
  input that is the same at every step (a decoder's ``z``): the cell reads ``[x_t; cond]``
  (``input + c = input_size``) with ``cond``'s part of the input projection taken once;
* ``cell.step(x, state) -> (h, state)`` with ``x`` ``(batch, input_size)`` for generation;
* ``cell.state_sizes``: the width of each tensor of the state tuple, in order, so that a model
  can build an initial state from one linear layer (``sum(state_sizes)`` outputs, split).

Gates are in PyTorch's order ``(i, f, g, o)`` (input, forget, cell update, output) in every
weight matrix. The forget gate's bias starts at 1.0 (magenta adds the same 1.0 at run time).
Recurrent weights are initialised orthogonally, one ``(hidden, hidden)`` block per gate.

Recurrent dropout follows Semeniuta et al. (2016): the cell update is dropped,
``c = f * c + i * dropout(g)``, never ``h``, so the memory is not erased; a fresh mask is drawn
for every step (all steps' masks at once, before the loop). ``recurrent_dropout`` is the
probability of dropping (0 turns it off).

Speed: the input projection ``W_x x`` of every time step is one matmul before the loop. On the
CPU the loops run by default on the fused C++ kernels of :mod:`sketchrnn.nn.fused` (compiled
on first use; float32/float64): each step's ~25 elementwise operations are one pass forward
and one backward, the whole time loop of a cell is one autograd node whose backward is a
reversed loop of fused steps, the recurrent weights' gradients are one matmul over all steps,
and the per-step matmuls run on oneDNN with weights packed once per sequence (about twice
the speed of the Python loops below: figures and commands in ``docs/performance.md``). The
Python loops are the reference and the fallback (no compiler, other devices and dtypes,
``set_loop_compiler("python")``). :func:`fast_fp32_matmul` sends the remaining float32 matmuls
to oneDNN as well. A single step for drawing (``cell.step`` without autograd) takes the fused
step of :mod:`sketchrnn.nn.fused_step` instead: 3-6x faster than one time step of the
sequence path at batch 1, and as fast as ``torch.lstm_cell`` or faster.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sketchrnn.nn.hyper_weights import HyperLSTMWeights

if TYPE_CHECKING:
    from sketchrnn.nn import fused

__all__ = [
    "LSTM",
    "LayerNormLSTM",
    "HyperLSTM",
    "make_cell",
    "set_loop_compiler",
    "set_fused_step",
    "fast_fp32_matmul",
    "fused_on_cpu",
    "input_projection",
    "loop_inputs",
    "CELL_TYPES",
    "State",
]

State = tuple[Tensor, ...]
CELL_TYPES = ("lstm", "layernorm", "hyper")


# ----------------------------------------------------------------------------- loops
# Plain functions of tensors (TorchScript-compatible); the modules below hold the parameters
# and call these. `x_proj` is the input projection of all steps, time-major (time, batch, ...),
# and so is the returned h_seq: unbinding and stacking along a leading dimension are contiguous
# copies, where along dimension 1 they were strided ones (at T 250, batch 100, hidden 512 the
# backward of unbind(1) alone took 0.46 s of a 3.7 s training step).


def _new_cell_state(i: Tensor, f: Tensor, g: Tensor, c: Tensor, mask: Tensor | None) -> Tensor:
    """``c' = sigmoid(f) c + sigmoid(i) dropout(tanh(g))``: the update every cell shares, with
    Semeniuta et al.'s recurrent dropout on the candidate (never on the memory itself).
    ``mask`` is this step's dropout mask, already scaled by ``1 / (1 - p)`` (None: no dropout)."""
    g = torch.tanh(g)
    if mask is not None:
        g = g * mask
    return torch.sigmoid(f) * c + torch.sigmoid(i) * g


def _step_mask(masks: Tensor | None, t: int) -> Tensor | None:
    if masks is None:
        return None
    return masks[t]


def _dropout_masks(
    p: float, training: bool, steps: int, batch: int, width: int, like: Tensor
) -> Tensor | None:
    """Recurrent-dropout masks of every step at once, ``(steps, batch, width)``, scaled by
    ``1 / (1 - p)`` (as ``F.dropout``); None when dropout is off. Drawn by the fused extension's
    parallel generator where it serves ``like`` (CPU float32/float64; whichever loop runs, so
    that the fused and the Python loops draw the same masks from the same seed), else with
    ``bernoulli_``."""
    if p <= 0.0 or not training:
        return None
    from sketchrnn.nn import fused

    if fused.usable(like):
        return fused.dropout_masks(p, (steps, batch, width), like)
    return like.new_empty(steps, batch, width).bernoulli_(1.0 - p).div_(1.0 - p)


def _lstm_loop(
    x_proj: Tensor, h: Tensor, c: Tensor, w_hh: Tensor, masks: Tensor | None
) -> tuple[Tensor, Tensor, Tensor]:
    w_hh_t = w_hh.t()
    outputs: list[Tensor] = []
    for t, x_t in enumerate(x_proj.unbind(0)):
        i, f, g, o = torch.addmm(x_t, h, w_hh_t).chunk(4, 1)
        c = _new_cell_state(i, f, g, c, _step_mask(masks, t))
        h = torch.sigmoid(o) * torch.tanh(c)
        outputs.append(h)
    return torch.stack(outputs, 0), h, c


def _layernorm_lstm_loop(
    x_proj: Tensor,
    h: Tensor,
    c: Tensor,
    w_hh: Tensor,
    gate_gamma: Tensor,
    gate_beta: Tensor,
    cell_gamma: Tensor,
    cell_beta: Tensor,
    masks: Tensor | None,
) -> tuple[Tensor, Tensor, Tensor]:
    batch = h.size(0)
    hidden = h.size(1)
    w_hh_t = w_hh.t()
    outputs: list[Tensor] = []
    for t, x_t in enumerate(x_proj.unbind(0)):
        gates = torch.addmm(x_t, h, w_hh_t).view(batch, 4, hidden)
        # Layer norm of each gate's pre-activation separately, as in Ba et al. (2016).
        gates = F.layer_norm(gates, [hidden]) * gate_gamma + gate_beta
        i, f, g, o = gates.unbind(1)
        c = _new_cell_state(i, f, g, c, _step_mask(masks, t))
        h = torch.sigmoid(o) * torch.tanh(F.layer_norm(c, [hidden], cell_gamma, cell_beta))
        outputs.append(h)
    return torch.stack(outputs, 0), h, c


def _hyper_lstm_loop(
    x_proj: Tensor,
    h: Tensor,
    c: Tensor,
    hyper_h: Tensor,
    hyper_c: Tensor,
    weights: HyperLSTMWeights,
    masks: Tensor | None,
    hyper_masks: Tensor | None,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    (
        w_h_all, hyper_w_hh, hyper_gate_gamma, hyper_gate_beta, hyper_cell_gamma,
        hyper_cell_beta, embed_weight, embed_bias, scale_weight, bias, gate_gamma, gate_beta,
        cell_gamma, cell_beta,
    ) = weights  # fmt: skip
    batch = h.size(0)
    hidden = h.size(1)
    hyper_hidden = hyper_h.size(1)
    main_width = 4 * hidden
    w_h_all_t = w_h_all.t()
    hyper_w_hh_t = hyper_w_hh.t()
    embed_weight_t = embed_weight.t()
    n_vectors = scale_weight.size(0)  # 12: (x, h, bias) x 4 gates
    bias_by_gate = bias.view(4, 1, hidden)
    gamma_by_gate = gate_gamma.view(4, 1, hidden)
    beta_by_gate = gate_beta.view(4, 1, hidden)
    outputs: list[Tensor] = []
    for t, x_t in enumerate(x_proj.unbind(0)):
        x_main, x_hyper = x_t.split([main_width, 4 * hyper_hidden], 1)
        # One matmul of the previous main h for both the main gates and the hyper cell input.
        h_main, h_hyper = torch.mm(h, w_h_all_t).split([main_width, 4 * hyper_hidden], 1)

        # The hyper cell: a LayerNorm LSTM reading [x; h_main].
        hyper_gates = torch.addmm(x_hyper + h_hyper, hyper_h, hyper_w_hh_t)
        hyper_gates = hyper_gates.view(batch, 4, hyper_hidden)
        hyper_gates = F.layer_norm(hyper_gates, [hyper_hidden]) * hyper_gate_gamma
        hi, hf, hg, ho = (hyper_gates + hyper_gate_beta).unbind(1)
        hyper_c = _new_cell_state(hi, hf, hg, hyper_c, _step_mask(hyper_masks, t))
        hyper_h = torch.sigmoid(ho) * torch.tanh(
            F.layer_norm(hyper_c, [hyper_hidden], hyper_cell_gamma, hyper_cell_beta)
        )

        # Embeddings z (12, batch, embed) -> per-gate scaling vectors d (12, batch, hidden).
        z = torch.addmm(embed_bias, hyper_h, embed_weight_t).view(batch, n_vectors, -1)
        d = torch.bmm(z.transpose(0, 1), scale_weight)
        d_x, d_h, d_b = d.split([4, 4, 4], 0)
        gates = (
            d_x * x_main.view(batch, 4, hidden).transpose(0, 1)
            + d_h * h_main.view(batch, 4, hidden).transpose(0, 1)
            + (bias_by_gate + d_b)
        )
        gates = F.layer_norm(gates, [hidden]) * gamma_by_gate + beta_by_gate
        i, f, g, o = gates.unbind(0)
        c = _new_cell_state(i, f, g, c, _step_mask(masks, t))
        h = torch.sigmoid(o) * torch.tanh(F.layer_norm(c, [hidden], cell_gamma, cell_beta))
        outputs.append(h)
    return torch.stack(outputs, 0), h, c, hyper_h, hyper_c


# How the loops run. "fused" (the default): the C++ kernels of sketchrnn.nn.fused where they
# serve the tensors (CPU, float32/float64, extension built), else the Python loops above.
# "python": always the Python loops (the reference). (TorchScript-compiled loops were measured
# no faster and removed; torch.compile unrolls the 250 steps and took over 150 s to compile.)
_LOOP_COMPILERS = ("fused", "python")
_loop_compiler = "fused"


def set_loop_compiler(name: str) -> None:
    """How the cells' recurrent loops run: ``"fused"`` (default: the fused C++ kernels of
    :mod:`sketchrnn.nn.fused` for CPU float32/float64 tensors, else the Python loops) or
    ``"python"`` (always the plain Python loops). Same maths and parameters either way;
    affects every cell in the process, and the training loss of the mixture head
    (:func:`sketchrnn.nn.mixture.reconstruction_losses_of_output`)."""
    global _loop_compiler
    if name not in _LOOP_COMPILERS:
        raise ValueError(f"loop compiler must be one of {', '.join(_LOOP_COMPILERS)}, got {name!r}")
    _loop_compiler = name


# Whether Cell.step may take the fused step of sketchrnn.nn.fused_step (see _Cell.step).
_fused_step_enabled = True


def set_fused_step(enabled: bool) -> None:
    """Whether :meth:`step` may take the fused generation step (default ``True``; it also
    needs the ``"fused"`` loop compiler). ``False`` runs every step through the sequence path,
    as before the fused step existed: for before/after measurements (``benchmarks/``).
    Affects every cell in the process."""
    global _fused_step_enabled
    _fused_step_enabled = bool(enabled)


def fused_on_cpu(*tensors: Tensor | None) -> bool:
    """Whether the fused loops serve these tensors under the selected loop compiler. Never
    while tracing or compiling (the ONNX export, torch.compile): a tracer must see the
    pure-PyTorch loops, not calls into the extension that it cannot record."""
    if _loop_compiler != "fused" or torch.jit.is_tracing() or torch.compiler.is_compiling():
        return False
    from sketchrnn.nn import fused

    return fused.usable(*tensors)


def _split_cond(
    x_seq: Tensor, weight: Tensor, bias: Tensor | None, cond: Tensor | None
) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """``(W for x_seq's columns, bias, per-sketch term)``: with ``cond``, its columns of ``W``
    times ``cond`` plus the bias, once per sketch (see :func:`input_projection`)."""
    if cond is None:
        return weight, bias, None
    width = x_seq.size(-1)
    return weight[:, :width], None, F.linear(cond, weight[:, width:], bias)


def input_projection(
    x_seq: Tensor, weight: Tensor, bias: Tensor | None, fused_on: bool, cond: Tensor | None = None
) -> Tensor:
    """``W_x [x; cond] (+ b)`` of every step, time-major ``(time, batch, rows)``: one matmul
    before the loop (on oneDNN where the fused loops run, see ``sketchrnn.nn.fused.linear``).

    ``cond`` ``(batch, c)`` is the part of every step's input that is the same at all steps
    (a decoder's ``z``): its product with its columns of ``W_x`` is taken once per sketch and
    added to every step, instead of once per step (magenta preset: 5 + 128 input columns, so
    the products of the input projection, forward and backward, shrink 27-fold; 13% of a
    training step's FLOPs)."""
    x_t = x_seq.transpose(0, 1)
    weight, bias, per_sketch = _split_cond(x_seq, weight, bias, cond)
    if fused_on:
        from sketchrnn.nn import fused

        return fused.linear(x_t, weight, bias, per_sketch)
    projection = F.linear(x_t, weight, bias)
    # In place: a (time, batch, rows) sum would be one more sequence-sized buffer.
    return projection if per_sketch is None else projection.add_(per_sketch)


def loop_inputs(
    x_seq: Tensor, weight: Tensor, bias: Tensor | None, fused_on: bool, cond: Tensor | None = None
) -> Tensor | fused.NarrowInputs:
    """The input term a plain or LayerNorm loop takes: where the fused loops run and
    ``x_seq`` has at most ``fused.NARROW_INPUTS_MAX`` columns (the strokes), ``NarrowInputs``:
    the loop's row kernels project them at each step; else :func:`input_projection`."""
    if fused_on:
        from sketchrnn.nn import fused

        if x_seq.size(-1) <= fused.NARROW_INPUTS_MAX:
            w_x, bias, row = _split_cond(x_seq, weight, bias, cond)
            if row is None and bias is not None:
                row = bias.expand(x_seq.size(0), -1)
            return fused.NarrowInputs(x_seq.transpose(0, 1).contiguous(), w_x, row)
    return input_projection(x_seq, weight, bias, fused_on, cond)


def _loop(name: str, fused_on: bool):
    """The loop function ``name``: the fused one where ``fused_on`` (see :func:`fused_on_cpu`),
    else the Python one."""
    if fused_on:
        from sketchrnn.nn import fused

        return getattr(fused, name.lstrip("_"))
    return globals()[name]


def fast_fp32_matmul(enabled: bool = True) -> bool:
    """Let oneDNN run float32 matmuls on CPU with bfloat16 hardware instructions at float32
    accuracy (``torch.backends.mkldnn.matmul.fp32_precision = "bf16"``), or go back to the
    default, ``"none"`` (``enabled=False``). Process-wide: it affects every float32 matmul on
    the CPU.

    Returns whether the fast mode is now on. It is switched on only after a probe product
    agrees with a float64 reference to float32 accuracy (relative error below 1e-5; measured
    here 7e-7 against 4e-7 for the default, where a plain bfloat16 product is off by 3e-3),
    so a build that would truncate to bfloat16 instead keeps the default. Speed-ups measured
    on this project's CPU are in ``docs/performance.md``; fused ``nn.LSTM`` is unaffected (it
    does not use oneDNN's matmul).
    """
    precision = getattr(getattr(torch.backends, "mkldnn", None), "matmul", None)
    if precision is None or not hasattr(precision, "fp32_precision"):
        return False  # a PyTorch without the setting
    if not enabled:
        precision.fp32_precision = "none"  # PyTorch's default: follow the global setting
        return False
    previous = precision.fp32_precision
    precision.fp32_precision = "bf16"
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(64, 256, generator=generator)
    b = torch.randn(256, 128, generator=generator)
    reference = a.double() @ b.double()
    error = ((a @ b).double() - reference).abs().max() / reference.abs().max()
    if float(error) > 1e-5:
        precision.fp32_precision = previous
        return False
    return True


# ----------------------------------------------------------------------------- init helpers


def _orthogonal_blocks_(weight: Tensor, n_blocks: int) -> None:
    """Orthogonal init of each of the ``n_blocks`` row blocks of a recurrent weight."""
    with torch.no_grad():
        for block in weight.chunk(n_blocks, 0):
            nn.init.orthogonal_(block)


def _forget_bias_(bias: Tensor, hidden_size: int, value: float = 1.0) -> None:
    """Set the forget-gate slice (gate 1 of i, f, g, o) of a ``(4 * hidden,)`` or
    ``(4, hidden)`` bias."""
    with torch.no_grad():
        bias.view(4, hidden_size)[1].fill_(value)


def _lstm_parameters(lstm: nn.LSTM) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """A one-layer ``nn.LSTM``'s ``weight_ih, weight_hh, bias_ih, bias_hh`` (typed: the module
    creates them by name at run time)."""
    names = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
    w_ih, w_hh, b_ih, b_hh = (cast(Tensor, getattr(lstm, name)) for name in names)
    return w_ih, w_hh, b_ih, b_hh


def _with_cond(x_seq: Tensor, cond: Tensor) -> Tensor:
    """``[x; cond]`` at every step: ``(batch, time, input + c)`` (``expand`` is a view: the
    conditioning is copied once, into the concatenation)."""
    return torch.cat([x_seq, cond.unsqueeze(1).expand(-1, x_seq.size(1), -1)], dim=-1)


def _check_dropout(p: float) -> float:
    if not 0.0 <= p < 1.0:
        raise ValueError(f"recurrent_dropout must be in [0, 1), got {p}")
    return float(p)


class _Cell(nn.Module):
    """Shared single-step form and state helpers."""

    hidden_size: int
    state_sizes: tuple[int, ...]
    recurrent_dropout: float

    def zero_state(self, batch_size: int, like: Tensor) -> State:
        """All-zero state for ``batch_size`` sequences, on ``like``'s device and dtype."""
        return tuple(like.new_zeros(batch_size, size) for size in self.state_sizes)

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """One step: ``x`` ``(batch, input_size)`` -> ``h`` ``(batch, hidden)``, new state.

        Drawing (no autograd, CPU float32/float64, the fused kernels built): the fused step of
        :mod:`sketchrnn.nn.fused_step`, a few calls with weights prepared once. Otherwise the
        sequence path for one step; while tracing or compiling (e.g. for the ONNX export)
        that is the pure-PyTorch loop functions above (``nn.LSTM`` for the plain LSTM). Same
        numbers to float rounding."""
        if self._fused_step_on(x, state):
            return self._fused_step(x, state)
        h_seq, state = self(x.unsqueeze(1), state)
        return h_seq.squeeze(1), state

    def _fused_step_on(self, x: Tensor, state: State) -> bool:
        if not _fused_step_enabled:
            return False
        if torch.is_grad_enabled() or (self.training and self.recurrent_dropout > 0.0):
            return False  # gradients or dropout masks: the sequence path
        return fused_on_cpu(x, *state, self._step_reference_parameter())

    def _step_reference_parameter(self) -> Tensor:
        """One parameter, whose device and dtype the fused step must share with the input."""
        raise NotImplementedError

    def _fused_step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        raise NotImplementedError


# ----------------------------------------------------------------------------- cells


class LSTM(_Cell):
    """Plain LSTM. Runs PyTorch's fused ``nn.LSTM`` unless recurrent dropout is on in training,
    then a step loop with the very same parameters (the fused kernel cannot drop ``g``).

    State: ``(h, c)``, each ``(batch, hidden)``.
    """

    def __init__(self, input_size: int, hidden_size: int, recurrent_dropout: float = 0.0):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.state_sizes = (hidden_size, hidden_size)
        self.recurrent_dropout = _check_dropout(recurrent_dropout)
        self.lstm = nn.LSTM(input_size, hidden_size, batch_first=True)
        w_ih, w_hh, b_ih, b_hh = _lstm_parameters(self.lstm)
        nn.init.xavier_uniform_(w_ih)
        _orthogonal_blocks_(w_hh, 4)
        nn.init.zeros_(b_ih)
        nn.init.zeros_(b_hh)
        _forget_bias_(b_ih, hidden_size)

    def forward(
        self, x_seq: Tensor, state: State, cond: Tensor | None = None
    ) -> tuple[Tensor, State]:
        """``x_seq`` ``(batch, time, input)`` -> ``h_seq`` ``(batch, time, hidden)``, state;
        ``cond`` ``(batch, c)``: more input, the same at every step (see the module's doc)."""
        if self.training and self.recurrent_dropout > 0.0:
            return self.forward_loop(x_seq, state, cond)
        if cond is not None:
            x_seq = _with_cond(x_seq, cond)
        h, c = state
        h_seq, (h_n, c_n) = self.lstm(x_seq, (h.unsqueeze(0), c.unsqueeze(0)))
        return h_seq, (h_n.squeeze(0), c_n.squeeze(0))

    def _step_reference_parameter(self) -> Tensor:
        return _lstm_parameters(self.lstm)[1]

    def _fused_step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        from sketchrnn.nn import fused_step

        h, c = fused_step.lstm_step(self, x, state[0], state[1], *_lstm_parameters(self.lstm))
        return h, (h, c)

    def forward_loop(
        self, x_seq: Tensor, state: State, cond: Tensor | None = None
    ) -> tuple[Tensor, State]:
        """The step-loop path (same maths and weights as the fused one, plus dropout)."""
        w_ih, w_hh, b_ih, b_hh = _lstm_parameters(self.lstm)
        h, c = state
        fused_on = fused_on_cpu(x_seq, h, c, w_hh)
        bias = b_ih + b_hh
        x_proj = loop_inputs(x_seq, w_ih, bias, fused_on, cond)
        masks = _dropout_masks(
            self.recurrent_dropout, self.training, x_seq.size(1), h.size(0), h.size(1), h
        )
        h_seq, h, c = _loop("_lstm_loop", fused_on)(x_proj, h, c, w_hh, masks)
        return h_seq.transpose(0, 1), (h, c)


class LayerNormLSTM(_Cell):
    """LSTM with layer normalisation (Ba et al. 2016, as magenta's ``LayerNormLSTMCell``).

    Each gate's pre-activation ``W_x x + W_h h`` is normalised on its own, then scaled and
    shifted (``gate_gamma``, ``gate_beta``: the shift is the gates' bias, so there is no other);
    the new cell state is normalised again before the output ``tanh``:
    ``h = sigmoid(o) * tanh(LN(c))``. State: ``(h, c)``, each ``(batch, hidden)``.
    """

    def __init__(self, input_size: int, hidden_size: int, recurrent_dropout: float = 0.0):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.state_sizes = (hidden_size, hidden_size)
        self.recurrent_dropout = _check_dropout(recurrent_dropout)
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        self.gate_gamma = nn.Parameter(torch.ones(4, hidden_size))
        self.gate_beta = nn.Parameter(torch.zeros(4, hidden_size))
        self.cell_gamma = nn.Parameter(torch.ones(hidden_size))
        self.cell_beta = nn.Parameter(torch.zeros(hidden_size))
        nn.init.xavier_uniform_(self.weight_ih)
        _orthogonal_blocks_(self.weight_hh, 4)
        _forget_bias_(self.gate_beta, hidden_size)

    def _step_reference_parameter(self) -> Tensor:
        return self.weight_hh

    def _fused_step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        from sketchrnn.nn import fused_step

        norms = (self.gate_gamma, self.gate_beta, self.cell_gamma, self.cell_beta)
        h, c = fused_step.layernorm_lstm_step(
            self, x, state[0], state[1], self.weight_ih, self.weight_hh, norms
        )
        return h, (h, c)

    def forward(
        self, x_seq: Tensor, state: State, cond: Tensor | None = None
    ) -> tuple[Tensor, State]:
        """``x_seq`` ``(batch, time, input)`` -> ``h_seq`` ``(batch, time, hidden)``, state;
        ``cond`` ``(batch, c)``: more input, the same at every step (see the module's doc)."""
        h, c = state
        fused_on = fused_on_cpu(x_seq, h, c, self.weight_hh)
        x_proj = loop_inputs(x_seq, self.weight_ih, None, fused_on, cond)
        masks = _dropout_masks(
            self.recurrent_dropout, self.training, x_seq.size(1), h.size(0), h.size(1), h
        )
        h_seq, h, c = _loop("_layernorm_lstm_loop", fused_on)(
            x_proj,
            h,
            c,
            self.weight_hh,
            self.gate_gamma,
            self.gate_beta,
            self.cell_gamma,
            self.cell_beta,
            masks,
        )
        return h_seq.transpose(0, 1), (h, c)


class HyperLSTM(_Cell):
    """HyperLSTM (Ha, Dai & Le 2016, "HyperNetworks", section 3.2, with layer norm), the
    sketch-rnn paper's decoder cell.

    What is implemented, per step:

    1. A small LayerNorm LSTM (``hyper_hidden`` units, the *hyper cell*) reads ``[x; h_prev]``
       and gives ``hyper_h``.
    2. ``hyper_h`` is projected to twelve embeddings of size ``hyper_embed``: one per gate
       (i, f, g, o) for each of the input term, the recurrent term and the bias. The
       input/recurrent embeddings start near one (bias 1, weights N(0, 0.01)), the bias
       embeddings near zero (no bias, weights N(0, 0.01)).
    3. Each embedding is mapped linearly (no bias) to a vector of size ``hidden``: the weight
       scaling vectors ``d_x``, ``d_h`` (start at 0.1 everywhere) and the bias shift ``d_b``
       (starts at 0). The main LSTM's gate pre-activations are
       ``d_x * (W_x x) + d_h * (W_h h_prev) + (b + d_b)`` - the memory-efficient
       "row scaling" form of generating the weights, not a full weight matrix per step.
    4. Layer norm per gate, then the usual LSTM update, and layer norm of ``c`` before the
       output ``tanh``, exactly as :class:`LayerNormLSTM`.

    State: ``(h, c, hyper_h, hyper_c)`` of widths ``(hidden, hidden, hyper_hidden,
    hyper_hidden)``; a sketch-rnn decoder initialises all four from ``z`` (as magenta does).
    Recurrent dropout is applied to the cell update of both the main and the hyper cell.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        recurrent_dropout: float = 0.0,
        hyper_hidden: int = 256,
        hyper_embed: int = 32,
    ):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.hyper_hidden = hyper_hidden
        self.hyper_embed = hyper_embed
        self.state_sizes = (hidden_size, hidden_size, hyper_hidden, hyper_hidden)
        self.recurrent_dropout = _check_dropout(recurrent_dropout)
        H, Hh, E = hidden_size, hyper_hidden, hyper_embed
        # Input projections of the main cell (4H rows) and of the hyper cell (4Hh rows),
        # stacked so that one matmul serves both for all time steps.
        self.weight_ih = nn.Parameter(torch.empty(4 * H + 4 * Hh, input_size))
        # Recurrent weights reading the main h: main gates (4H rows) and hyper gates (4Hh rows).
        self.weight_hh = nn.Parameter(torch.empty(4 * H + 4 * Hh, H))
        self.hyper_weight_hh = nn.Parameter(torch.empty(4 * Hh, Hh))
        self.hyper_gate_gamma = nn.Parameter(torch.ones(4, Hh))
        self.hyper_gate_beta = nn.Parameter(torch.zeros(4, Hh))
        self.hyper_cell_gamma = nn.Parameter(torch.ones(Hh))
        self.hyper_cell_beta = nn.Parameter(torch.zeros(Hh))
        self.embed_weight = nn.Parameter(torch.zeros(12 * E, Hh))
        self.embed_bias = nn.Parameter(torch.zeros(12 * E))
        self.scale_weight = nn.Parameter(torch.zeros(12, E, H))
        self.bias = nn.Parameter(torch.zeros(4 * H))
        self.gate_gamma = nn.Parameter(torch.ones(4, H))
        self.gate_beta = nn.Parameter(torch.zeros(4, H))
        self.cell_gamma = nn.Parameter(torch.ones(H))
        self.cell_beta = nn.Parameter(torch.zeros(H))
        with torch.no_grad():
            nn.init.xavier_uniform_(self.weight_ih[: 4 * H])
            nn.init.xavier_uniform_(self.weight_ih[4 * H :])
            _orthogonal_blocks_(self.weight_hh[: 4 * H], 4)
            # The hyper cell's reading of the main h is an input to it, not a recurrence.
            nn.init.xavier_uniform_(self.weight_hh[4 * H :])
            _orthogonal_blocks_(self.hyper_weight_hh, 4)
            _forget_bias_(self.hyper_gate_beta, Hh)
            _forget_bias_(self.gate_beta, H)
            # Embeddings 0..7 (x and h scaling) start near 1, 8..11 (bias) near 0. The small
            # random weights (not zeros) let the gradient reach the hyper cell from step 0.
            self.embed_bias[: 8 * E].fill_(1.0)
            self.embed_weight.normal_(0.0, 0.01)
            # Scaling vectors start at 0.1 (layer norm follows, so the scale only sets the
            # balance between terms); bias shifts start at 0.
            self.scale_weight[:8].fill_(0.1 / E)

    def _step_reference_parameter(self) -> Tensor:
        return self.weight_hh

    def _fused_step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        from sketchrnn.nn import fused_step

        h, c, hyper_h, hyper_c = fused_step.hyper_lstm_step(
            self, x, (state[0], state[1], state[2], state[3]), self.weight_ih, self.weights()
        )
        return h, (h, c, hyper_h, hyper_c)

    def weights(self) -> HyperLSTMWeights:
        """The parameters in the order the loops take them (all but the input projection)."""
        return HyperLSTMWeights(
            self.weight_hh,
            self.hyper_weight_hh,
            self.hyper_gate_gamma,
            self.hyper_gate_beta,
            self.hyper_cell_gamma,
            self.hyper_cell_beta,
            self.embed_weight,
            self.embed_bias,
            self.scale_weight,
            self.bias,
            self.gate_gamma,
            self.gate_beta,
            self.cell_gamma,
            self.cell_beta,
        )

    def forward(
        self, x_seq: Tensor, state: State, cond: Tensor | None = None
    ) -> tuple[Tensor, State]:
        """``x_seq`` ``(batch, time, input)`` -> ``h_seq`` ``(batch, time, hidden)``, state;
        ``cond`` ``(batch, c)``: more input, the same at every step (see the module's doc)."""
        h, c, hyper_h, hyper_c = state
        fused_on = fused_on_cpu(x_seq, h, c, hyper_h, hyper_c, self.weight_hh)
        x_proj = input_projection(x_seq, self.weight_ih, None, fused_on, cond)
        steps, batch = x_proj.size(0), h.size(0)
        p, training = self.recurrent_dropout, self.training
        masks = _dropout_masks(p, training, steps, batch, self.hidden_size, x_proj)
        hyper_masks = _dropout_masks(p, training, steps, batch, self.hyper_hidden, x_proj)
        h_seq, h, c, hyper_h, hyper_c = _loop("_hyper_lstm_loop", fused_on)(
            x_proj, h, c, hyper_h, hyper_c, self.weights(), masks, hyper_masks
        )
        return h_seq.transpose(0, 1), (h, c, hyper_h, hyper_c)


def make_cell(
    cell: str,
    input_size: int,
    hidden_size: int,
    *,
    recurrent_dropout: float = 0.0,
    hyper_hidden: int = 256,
    hyper_embed: int = 32,
) -> LSTM | LayerNormLSTM | HyperLSTM:
    """Build a cell by name: ``"lstm"``, ``"layernorm"`` or ``"hyper"``."""
    if cell == "lstm":
        return LSTM(input_size, hidden_size, recurrent_dropout)
    if cell == "layernorm":
        return LayerNormLSTM(input_size, hidden_size, recurrent_dropout)
    if cell == "hyper":
        return HyperLSTM(input_size, hidden_size, recurrent_dropout, hyper_hidden, hyper_embed)
    raise ValueError(f"unknown cell {cell!r}; expected one of {', '.join(CELL_TYPES)}")
