"""Sequence encoders: the bidirectional LSTM of sketch-rnn (paper eq. 1-2)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["BiLSTMEncoder"]


class BiLSTMEncoder(nn.Module):
    """Bidirectional LSTM over a padded stroke-5 batch -> ``(mu, sigma_hat)``.

    Each direction reads the sketch's own points only: the forward direction's state is taken
    after point ``n``, and the backward direction starts at point ``n``, not at the padding.
    The final forward and backward hidden states are concatenated and projected to ``mu`` and
    ``sigma_hat`` (``sigma = exp(sigma_hat / 2)``). No recurrent dropout here: the fused kernel
    cannot apply it, and the paper's figures do not depend on it.

    Speed: the two directions run as two calls of PyTorch's fused LSTM on the padded batch
    (the backward one on each sketch reversed within its length), and the states are picked
    at ``n - 1``; the recurrence is causal, so the padding after a sketch never reaches them.
    A packed sequence gives the same numbers, but on a CPU its backward is quadratic in the
    length: every step's slice of the packed input allocates and zeroes a gradient of the
    whole input (batch 100, N_max 100, 1 thread: the encoder's forward + backward took
    1.4-1.6 s packed, 0.34-0.39 s this way; at N_max 250 about 40 s packed).
    The parameters are those of one bidirectional ``nn.LSTM`` (``lstm.weight_ih_l0``, ...,
    ``lstm.weight_hh_l0_reverse``), as saved models and magenta imports name them.
    """

    def __init__(self, input_size: int, hidden_size: int, z_size: int):
        super().__init__()
        self.hidden_size = hidden_size
        self.z_size = z_size
        self.lstm = nn.LSTM(input_size, hidden_size, batch_first=True, bidirectional=True)
        for name, param in self.lstm.named_parameters():
            if name.startswith("weight_hh"):
                with torch.no_grad():
                    for block in param.chunk(4, 0):
                        nn.init.orthogonal_(block)
            elif name.startswith("weight_ih"):
                nn.init.xavier_uniform_(param)
            else:
                nn.init.zeros_(param)
                with torch.no_grad():
                    if name.startswith("bias_ih"):
                        param.view(4, hidden_size)[1].fill_(1.0)  # forget gate
        self.to_latent = nn.Linear(2 * hidden_size, 2 * z_size)

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """``x`` ``(batch, time, input)`` padded, ``lengths`` ``(batch,)`` >= 1 ->
        ``mu``, ``sigma_hat`` ``(batch, z_size)`` each."""
        if lengths.numel() and int(lengths.min()) < 1:
            raise ValueError("every sketch must have at least one point to be encoded")
        batch, steps, _ = x.shape
        lengths = lengths.to(x.device, torch.int64)
        # Index of each sketch's points reversed within its length; padding stays in place.
        time = torch.arange(steps, device=x.device).unsqueeze(0)
        last = (lengths - 1).unsqueeze(1)
        reversed_index = torch.where(time <= last, last - time, time)
        x_reversed = x.gather(1, reversed_index.unsqueeze(2).expand_as(x))
        zeros = x.new_zeros(1, batch, self.hidden_size)
        finals = []
        for suffix, inputs in (("", x), ("_reverse", x_reversed)):
            names = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
            outputs, _, _ = torch.lstm(
                inputs,
                (zeros, zeros),
                [getattr(self.lstm, name + suffix) for name in names],
                True,  # has biases
                1,  # layers
                0.0,  # dropout
                self.training,
                False,  # bidirectional
                True,  # batch_first
            )
            index = last.unsqueeze(2).expand(batch, 1, self.hidden_size)
            finals.append(outputs.gather(1, index).squeeze(1))
        h = torch.cat(finals, dim=-1)
        mu, sigma_hat = self.to_latent(h).chunk(2, dim=-1)
        return mu, sigma_hat
