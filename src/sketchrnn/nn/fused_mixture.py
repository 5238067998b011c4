"""sketch-rnn's reconstruction losses (``L_s``, ``L_p``, eq. 9) and their gradient as one
pass over the mixture head's raw output each way, on the fused kernels
(``csrc/mixture_kernels.cpp``).

The reference, :func:`sketchrnn.nn.mixture.reconstruction_losses` of
:func:`sketchrnn.nn.mixture.mixture_params`, is some forty PyTorch operations over
``(batch, T, M)`` tensors forward and as many backward: about 30 ms of a 0.8 s training step
at the small preset on one thread of the development machine. Here the head's output is read
once forward and once backward (the backward recomputes a row's terms rather than keeping
them: a few ms). Same maths, float32 or float64; the sums are taken per row, then in row
order in float64, so the result does not depend on the thread count
(tests/nn/test_fused_mixture.py checks values and gradients against the reference).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from sketchrnn.nn import fused

__all__ = ["reconstruction_losses"]


class _MixtureLosses(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, y: Tensor, targets: Tensor, lengths: Tensor, num_mixtures: int):
        loss_s, loss_p = fused._ext().mixture_loss_forward(y, targets, lengths, num_mixtures)
        ctx.save_for_backward(y, targets, lengths)
        ctx.num_mixtures = num_mixtures
        return loss_s, loss_p

    @staticmethod
    def backward(ctx: Any, g_s: Tensor | None, g_p: Tensor | None):
        y, targets, lengths = ctx.saved_tensors
        s = 0.0 if g_s is None else float(g_s)
        p = 0.0 if g_p is None else float(g_p)
        dy = fused._ext().mixture_loss_backward(y, targets, lengths, ctx.num_mixtures, s, p)
        return dy, None, None, None


def reconstruction_losses(
    y: Tensor, num_mixtures: int, targets: Tensor, lengths: Tensor
) -> tuple[Tensor, Tensor]:
    """``(L_s, L_p)`` of the head's raw output ``y`` ``(batch, T, 6M + 3)`` for ``targets``
    ``(batch, T, 5)`` with ``lengths`` ``(batch,)`` real points: what
    ``mixture.reconstruction_losses(mixture_params(y, M), targets, lengths)`` gives. For CPU
    float tensors (see :func:`sketchrnn.nn.mixture.reconstruction_losses_of_output`, which
    chooses)."""
    y = y.contiguous()
    targets = targets.to(y.dtype).contiguous()
    lengths = lengths.to(device=y.device, dtype=torch.int64).contiguous()
    return _MixtureLosses.apply(y, targets, lengths, num_mixtures)
