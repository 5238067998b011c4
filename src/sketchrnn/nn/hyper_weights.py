"""The HyperLSTM's parameters as one typed tuple: the argument list of its loops, written once.

The Python loop (:func:`sketchrnn.nn.cells._hyper_lstm_loop`, the reference that the ONNX
export traces), the fused loop (:func:`sketchrnn.nn.fused.hyper_lstm_loop`, whose backward
returns one gradient per field, in this order) and the fused generation step
(:mod:`sketchrnn.nn.fused_step`) all take a :class:`HyperLSTMWeights`; the cell builds it from
its parameters (:meth:`sketchrnn.nn.cells.HyperLSTM.weights`). A module of its own so that
``cells`` and ``fused`` share it without importing each other.
"""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor

__all__ = ["HyperLSTMWeights"]


class HyperLSTMWeights(NamedTuple):
    """Shapes for main width ``H``, hyper width ``Hh``, embedding size ``E``."""

    w_h_all: Tensor  # (4H + 4Hh, H): the previous main h -> main gates and hyper gates
    hyper_w_hh: Tensor  # (4Hh, Hh): the hyper cell's recurrence
    hyper_gate_gamma: Tensor  # (4, Hh)
    hyper_gate_beta: Tensor  # (4, Hh)
    hyper_cell_gamma: Tensor  # (Hh,)
    hyper_cell_beta: Tensor  # (Hh,)
    embed_weight: Tensor  # (12E, Hh): hyper h -> the twelve embeddings
    embed_bias: Tensor  # (12E,)
    scale_weight: Tensor  # (12, E, H): embeddings -> scaling vectors d_x, d_h, d_b
    bias: Tensor  # (4H,): the main gates' bias, before the shift d_b
    gate_gamma: Tensor  # (4, H)
    gate_beta: Tensor  # (4, H)
    cell_gamma: Tensor  # (H,)
    cell_beta: Tensor  # (H,)
