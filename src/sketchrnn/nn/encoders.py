"""Sequence encoders: the bidirectional LSTM of sketch-rnn (paper eq. 1-2)."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

__all__ = ["BiLSTMEncoder"]


class BiLSTMEncoder(nn.Module):
    """Bidirectional LSTM over a padded stroke-5 batch -> ``(mu, sigma_hat)``.

    PyTorch's fused ``nn.LSTM``, run on a packed sequence so that each direction stops at the
    sketch's own length (the backward direction starts at the last real point, not at the
    padding). The final forward and backward hidden states are concatenated and projected to
    ``mu`` and ``sigma_hat`` (``sigma = exp(sigma_hat / 2)``). No recurrent dropout here: the
    fused kernel cannot apply it, and the paper's figures do not depend on it.
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
        packed = pack_padded_sequence(
            x, lengths.detach().to("cpu", torch.int64), batch_first=True, enforce_sorted=False
        )
        _, (h_n, _) = self.lstm(packed)
        # h_n (2, batch, hidden): forward then backward final states, in the input's order.
        h = torch.cat([h_n[0], h_n[1]], dim=-1)
        mu, sigma_hat = self.to_latent(h).chunk(2, dim=-1)
        return mu, sigma_hat
