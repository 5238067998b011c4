"""One decoder step for drawing, on the fused kernels: what every sampling path runs 50-250
times a sketch (sampling, completion, the page's strokes, the JSON API).

The sequence loops of :mod:`sketchrnn.nn.fused` are built for training (an autograd node per
sequence, saved activations, weights packed once per sequence); a single step through them,
or through ``nn.LSTM`` for one time step, is mostly overhead. Here a step is a few calls:

* the cell's matmuls with the weights prepared once and kept until a parameter changes:
  ``[x; h] @ [W_ih | W_hh].T`` as ONE product (input and recurrent weights side by side),
  on MKL for one row and on oneDNN with the weight packed for it for more (see
  :class:`_Linear`);
* the fused elementwise kernel of the cell (``csrc/cell_kernels.cpp``: layer norms, gates,
  the cell update), the same one the training loops run.

Only without autograd (``torch.no_grad()`` or inference mode, as every drawing path runs)
and without recurrent dropout in training; :meth:`sketchrnn.nn.cells._Cell.step` decides and
otherwise runs the cell's sequence path for one step. The results equal that path's to float
rounding (tests/nn/test_fused_step.py; figures in ``docs/performance.md``).

The prepared weights live in a cache keyed weakly by the cell and checked at every step
against each parameter's identity, storage, dtype and version counter (``Tensor._version``,
which every in-place change bumps: an optimizer step, ``load_state_dict``, ``copy_``; moving
or converting a module replaces the storage). Writing into ``param.data`` in place bypasses
all of these: call :func:`forget` after that.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from sketchrnn.nn import fused
from sketchrnn.nn.hyper_weights import HyperLSTMWeights

__all__ = ["lstm_step", "layernorm_lstm_step", "hyper_lstm_step", "forget"]


# oneDNN packs a weight for an expected number of rows; any hint from 4 up served 2 to 100 rows
# equally well here, a hint of 1 ran 9 rows 1.6x slower.
_PACK_ROWS_HINT = 64


class _Linear:
    """``x @ weight.T (+ bias)`` for a weight that stays fixed between calls.

    One row (the page drawing one sketch): ``torch.mm`` on the transposed weight made
    contiguous once (MKL's matrix-vector product, as fast as oneDNN at one row and 2x faster
    for the small matrices). Several rows: oneDNN with the weight packed once (float32, where
    the probe of :mod:`sketchrnn.nn.fused` passed): 2.3x faster than ``torch.mm`` at 9 rows
    and 1.25x at 100 here."""

    def __init__(self, weight: Tensor, bias: Tensor | None):
        self.weight = weight
        self.bias = None if bias is None else bias.contiguous()
        self.weight_t = weight.t().contiguous()
        self.packed: Tensor | None = None

    def __call__(self, x: Tensor) -> Tensor:
        if x.size(0) > 1 and x.dtype == torch.float32 and fused._onednn_ok():
            if self.packed is None:
                self.packed = torch.ops.mkldnn._reorder_linear_weight(self.weight, _PACK_ROWS_HINT)
            return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")
        if self.bias is None:
            return torch.mm(x, self.weight_t)
        return torch.addmm(self.bias, x, self.weight_t)


class _Prepared:
    """The linears of one cell's step and the parameters they were made from."""

    def __init__(self, sources: Sequence[Tensor], linears: tuple[_Linear, ...]):
        self.sources = [(weakref.ref(t), _fingerprint(t)) for t in sources]
        self.linears = linears

    def current(self, sources: Sequence[Tensor]) -> bool:
        return len(sources) == len(self.sources) and all(
            ref() is t and seen == _fingerprint(t)
            for (ref, seen), t in zip(self.sources, sources, strict=True)
        )


def _fingerprint(t: Tensor) -> tuple[int, int, torch.dtype]:
    """What changes when a parameter's values may have: its version counter (in-place
    changes), its storage and dtype (``module.double()``, ``.to()`` replace ``param.data``
    without touching the counter)."""
    return t._version, t.data_ptr(), t.dtype


_cache: weakref.WeakKeyDictionary[nn.Module, _Prepared] = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()  # the server draws from one model in several threads


def _linears(
    cell: nn.Module,
    sources: Sequence[Tensor],
    build: Callable[[], tuple[tuple[Tensor, Tensor | None], ...]],
) -> tuple[_Linear, ...]:
    """The cell's prepared linears, made by ``build`` (``(weight, bias)`` pairs) from the
    parameters ``sources`` on first use and again whenever one of them changed."""
    prepared = _cache.get(cell)
    if prepared is None or not prepared.current(sources):
        with torch.no_grad():
            linears = tuple(
                _Linear(w.detach(), None if b is None else b.detach()) for w, b in build()
            )
        prepared = _Prepared(sources, linears)
        with _cache_lock:
            _cache[cell] = prepared
    return prepared.linears


def forget(cell: nn.Module) -> None:
    """Drop the weights prepared for ``cell`` (they are made again at its next step)."""
    with _cache_lock:
        _cache.pop(cell, None)


def lstm_step(
    cell: nn.Module,
    x: Tensor,
    h: Tensor,
    c: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor,
    b_hh: Tensor,
) -> tuple[Tensor, Tensor]:
    """One plain-LSTM step: ``x`` ``(B, input)``, ``h``, ``c`` ``(B, H)`` -> new ``h, c``."""
    (gates,) = _linears(
        cell,
        (w_ih, w_hh, b_ih, b_hh),
        lambda: ((torch.cat([w_ih, w_hh], 1), b_ih + b_hh),),
    )
    pre = gates(torch.cat([x, h], 1))
    h, c, _, _ = fused._ext().lstm_step_forward(pre, c.contiguous(), None)
    return h, c


def layernorm_lstm_step(
    cell: nn.Module,
    x: Tensor,
    h: Tensor,
    c: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    norms: tuple[Tensor, Tensor, Tensor, Tensor],
) -> tuple[Tensor, Tensor]:
    """One LayerNorm-LSTM step; ``norms`` = ``(gate_gamma, gate_beta, cell_gamma,
    cell_beta)``."""
    (gates,) = _linears(cell, (w_ih, w_hh), lambda: ((torch.cat([w_ih, w_hh], 1), None),))
    pre = gates(torch.cat([x, h], 1))
    out = fused._ext().ln_lstm_step_forward(pre, c.contiguous(), *norms, None, fused._EPS)
    return out[0], out[1]


def hyper_lstm_step(
    cell: nn.Module,
    x: Tensor,
    state: tuple[Tensor, Tensor, Tensor, Tensor],
    w_ih: Tensor,
    w: HyperLSTMWeights,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One HyperLSTM step: ``state`` = ``(h, c, hyper_h, hyper_c)`` -> the new state.

    Three products instead of the sequence loop's input projection plus two: the main cell's
    ``W_x x`` and ``W_h h`` (kept apart: the hyper cell scales each on its own) and the hyper
    cell's whole pre-activation ``[x; h; hyper_h] @ [W_x' | W_h' | W_hh'].T`` in one."""
    h, c, hyper_h, hyper_c = state
    main = 4 * h.size(1)
    x_main, h_main, hyper_gates, embed = _linears(
        cell,
        (w_ih, w.w_h_all, w.hyper_w_hh, w.embed_weight, w.embed_bias),
        lambda: (
            (w_ih[:main], None),
            (w.w_h_all[:main], None),
            (torch.cat([w_ih[main:], w.w_h_all[main:], w.hyper_w_hh], 1), None),
            (w.embed_weight, w.embed_bias),
        ),
    )
    ext = fused._ext()
    hyper_pre = hyper_gates(torch.cat([x, h, hyper_h], 1))
    hyper_norms = (w.hyper_gate_gamma, w.hyper_gate_beta, w.hyper_cell_gamma, w.hyper_cell_beta)
    hyper_out = ext.ln_lstm_step_forward(
        hyper_pre, hyper_c.contiguous(), *hyper_norms, None, fused._EPS
    )
    hyper_h, hyper_c = hyper_out[0], hyper_out[1]
    n_vectors, embed_size = w.scale_weight.size(0), w.scale_weight.size(1)
    z = embed(hyper_h).view(-1, n_vectors, embed_size).transpose(0, 1)
    d = torch.bmm(z, w.scale_weight)  # (12, B, H): d_x, d_h, d_b of each gate
    pre = ext.hyper_modulate_forward(x_main(x), h_main(h), d, w.bias)
    norms = (w.gate_gamma, w.gate_beta, w.cell_gamma, w.cell_beta)
    out = ext.ln_lstm_step_forward(pre, c.contiguous(), *norms, None, fused._EPS)
    return out[0], out[1], hyper_h, hyper_c
