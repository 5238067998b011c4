"""The autoregressive mixture-density decoder shared by SketchRNN and SketchEmbedNet.

Each step reads the previous point ``S_{i-1}`` (stroke-5) concatenated with a per-sketch
conditioning vector ``cond`` (the model builds it: ``z``, a class embedding, or both) and
gives the mixture for the next point (sketch-rnn paper, section 3.2). With ``z_size > 0`` the
initial state is ``tanh(W_z z + b_z)`` split into the cell's state parts; without it (the
decoder-only model) the state starts at zero.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sketchrnn.nn.cells import State, fused_on_cpu, make_cell
from sketchrnn.nn.mixture import MixtureParams, mixture_params

__all__ = ["MixtureDecoder"]


class MixtureDecoder(nn.Module):
    """Cell (``make_cell``) + optional ``init_state`` Linear from ``z`` + ``output`` Linear to
    the ``6M + 3`` mixture parameters (layout: :mod:`sketchrnn.nn.mixture`)."""

    def __init__(
        self,
        cell: str,
        cond_size: int,
        hidden_size: int,
        num_mixtures: int,
        *,
        z_size: int = 0,
        recurrent_dropout: float = 0.0,
        hyper_hidden: int = 256,
        hyper_embed: int = 32,
    ):
        super().__init__()
        self.cond_size = cond_size
        self.num_mixtures = num_mixtures
        # Creation order cell -> init_state -> output is the order the models used before
        # this module existed, so a seeded model still starts from the same weights.
        self.cell = make_cell(
            cell,
            5 + cond_size,
            hidden_size,
            recurrent_dropout=recurrent_dropout,
            hyper_hidden=hyper_hidden,
            hyper_embed=hyper_embed,
        )
        # [h0; c0 (; hyper h0; hyper c0)] = tanh(W_z z + b_z)
        self.init_state = nn.Linear(z_size, sum(self.cell.state_sizes)) if z_size > 0 else None
        self.output = nn.Linear(hidden_size, 6 * num_mixtures + 3)

    def initial_state(self, z: Tensor | None, batch_size: int) -> State:
        """State before the first step: ``tanh(W_z z + b_z)`` (``z`` ``(batch, z_size)``) split
        into the cell's state tensors, or zeros ``(batch_size, ...)`` when there is no z."""
        if self.init_state is None:
            return self.cell.zero_state(batch_size, self.output.weight)
        if z is None:
            raise ValueError("this decoder starts from z: pass z for its initial state")
        flat = torch.tanh(self.init_state(z))
        # Contiguous parts: split gives strided views, which cuDNN's LSTM refuses as hx.
        return tuple(part.contiguous() for part in flat.split(list(self.cell.state_sizes), dim=-1))

    def decode(
        self, inputs: Tensor, cond: Tensor | None = None, z: Tensor | None = None
    ) -> MixtureParams:
        """Teacher-forced: ``inputs`` ``(batch, T, 5)`` (rows ``S_0..S_{T-1}``), ``cond``
        ``(batch, cond_size)`` or ``None``, ``z`` ``(batch, z_size)`` for the initial state ->
        mixture for the next ``T`` points, ``(batch, T, M)`` / ``(batch, T, 3)``."""
        return mixture_params(self.decode_outputs(inputs, cond, z), self.num_mixtures)

    def decode_outputs(
        self, inputs: Tensor, cond: Tensor | None = None, z: Tensor | None = None
    ) -> Tensor:
        """:meth:`decode`'s raw head output ``(batch, T, 6M + 3)``, before
        :func:`sketchrnn.nn.mixture.mixture_params` splits it: what the training loss reads
        (:func:`sketchrnn.nn.mixture.reconstruction_losses_of_output`)."""
        # The cell projects cond once per sketch, not once per step.
        h_seq, _ = self.cell(inputs, self.initial_state(z, inputs.shape[0]), cond=cond)
        return self._head(h_seq)

    def _head(self, h_seq: Tensor) -> Tensor:
        """The output layer over a whole sequence ``(batch, T, hidden)``. Where the fused
        loops ran, ``h_seq`` is a view of their time-major output: the layer runs on that, on
        oneDNN (``sketchrnn.nn.fused.linear``: 2x faster than MKL for these 6M + 3 columns,
        product and input gradient), and its input gradient reaches the loop time-major:
        h is not copied either way."""
        time_major = h_seq.transpose(0, 1)
        if not (time_major.is_contiguous() and fused_on_cpu(h_seq, self.output.weight)):
            return self.output(h_seq)
        from sketchrnn.nn import fused

        y = fused.linear(time_major, self.output.weight, self.output.bias)
        # Batch-major again (6M + 3 columns: a tenth of h's size): the mixture loss's
        # elementwise work on a strided view ran 2x slower than this copy costs.
        return y.transpose(0, 1).contiguous()

    def read(self, inputs: Tensor, state: State, cond: Tensor | None = None) -> State:
        """The state after reading ``inputs`` ``(batch, T, 5)`` (teacher forcing) from
        ``state``, in one call of the cell over the sequence (PyTorch's fused LSTM for the
        plain cell: several times faster than ``T`` single steps). In eval mode it is the state
        ``T`` calls of :meth:`decode_step` reach."""
        if inputs.shape[1] == 0:
            return state
        _, state = self.cell(inputs, state, cond=cond)
        return state

    def decode_step(
        self, x_t: Tensor, state: State, cond: Tensor | None = None
    ) -> tuple[MixtureParams, State]:
        """One generation step: previous point ``x_t`` ``(batch, 5)`` -> mixture for the next
        point (``(batch, M)`` / ``(batch, 3)``) and the new state."""
        x = x_t if cond is None else torch.cat([x_t, cond], dim=-1)
        h, state = self.cell.step(x, state)
        return mixture_params(self.output(h), self.num_mixtures), state
