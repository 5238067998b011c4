"""Encoders: sketch-rnn's bidirectional LSTM over strokes (paper eq. 1-2), and the Conv4 and
ResNet12 image backbones of SketchEmbedNet.

Each gives the Gaussian head of a VAE: ``mu`` and ``sigma_hat`` (``sigma = exp(sigma_hat / 2)``).
The image backbones turn ``(batch, channels, height, width)`` into a flat feature vector;
:class:`ImageEncoder` adds the head.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from sketchrnn.nn import fused
from sketchrnn.nn.cells import fused_on_cpu, loop_inputs

__all__ = ["BiLSTMEncoder", "Conv4", "ResNet12", "ImageEncoder", "BACKBONES"]


_LSTM_PARAMETERS = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")


class BiLSTMEncoder(nn.Module):
    """Bidirectional LSTM over a padded stroke-5 batch -> ``(mu, sigma_hat)``.

    Each direction reads the sketch's own points only: the forward direction's state is taken
    after point ``n``, and the backward direction starts at point ``n``, not at the padding.
    The final forward and backward hidden states are concatenated and projected to ``mu`` and
    ``sigma_hat`` (``sigma = exp(sigma_hat / 2)``). No recurrent dropout here: the fused kernel
    cannot apply it, and the paper's figures do not depend on it.

    Speed: the two directions run over the padded batch (the backward one on each sketch
    reversed within its length), and the states are picked at ``n - 1``; the recurrence is
    causal, so the padding after a sketch never reaches them. On CPU tensors the two
    directions are one node of the fused loops (:mod:`sketchrnn.nn.fused`: oneDNN products
    with packed weights, both directions side by side on two threads); elsewhere (CUDA, the
    ONNX export's tracing, no extension) two calls of PyTorch's fused LSTM. Magenta preset,
    batch 100, N_max 250, a whole training step: 1.12x faster at one thread, 1.15x at two
    (docs/performance.md, "Training against the roofline").
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
        # Checked on real tensors; an exported graph (sketchrnn.models.onnx_export) cannot
        # branch on a value, and its runtimes check the lengths they are given.
        if not torch.compiler.is_exporting() and lengths.numel() and int(lengths.min()) < 1:
            raise ValueError("every sketch must have at least one point to be encoded")
        batch, steps, _ = x.shape
        lengths = lengths.to(x.device, torch.int64)
        # Index of each sketch's points reversed within its length; padding stays in place.
        time = torch.arange(steps, device=x.device).unsqueeze(0)
        last = (lengths - 1).unsqueeze(1)
        reversed_index = torch.where(time <= last, last - time, time)
        x_reversed = x.gather(1, reversed_index.unsqueeze(2).expand_as(x))
        weights = [
            [getattr(self.lstm, name + suffix) for name in _LSTM_PARAMETERS]
            for suffix in ("", "_reverse")
        ]
        if fused_on_cpu(x, *weights[0], *weights[1]):
            finals = self._fused_directions(x, x_reversed, weights, last)
        else:
            zeros = x.new_zeros(1, batch, self.hidden_size)
            finals = []
            for inputs, direction in zip((x, x_reversed), weights, strict=True):
                outputs, _, _ = torch.lstm(
                    inputs,
                    (zeros, zeros),
                    direction,
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

    @staticmethod
    def _fused_directions(
        x: Tensor, x_reversed: Tensor, weights: list[list[Tensor]], last: Tensor
    ) -> list[Tensor]:
        """Each direction's final state on the fused loops (sketchrnn.nn.fused): the same
        numbers as ``torch.lstm`` to float rounding, the two directions side by side on two
        threads, the recurrent products on oneDNN with packed weights."""
        projections, recurrent = [], []
        for inputs, (w_ih, w_hh, b_ih, b_hh) in zip((x, x_reversed), weights, strict=True):
            projections.append(loop_inputs(inputs, w_ih, b_ih + b_hh, True))
            recurrent.append(w_hh)
        h_alls = fused.bidirectional_lstm_loops(
            projections[0], projections[1], recurrent[0], recurrent[1]
        )
        rows = torch.arange(x.size(0), device=x.device)
        return [h_all[last.squeeze(1), rows] for h_all in h_alls]


BACKBONES = ("conv4", "resnet12")
_N_POOLS = 4  # both backbones halve the image four times


class Conv4(nn.Module):
    """Four blocks of [conv 3x3 (64 filters), BatchNorm, ReLU, MaxPool 2], then flatten.

    The few-shot backbone of Vinyals et al. (2016). Input ``(batch, in_channels, S, S)``,
    output ``(batch, 64 * (S // 16) ** 2)``, e.g. 64 features at 28x28, 1600 at 84x84.
    """

    def __init__(self, in_channels: int = 1, width: int = 64):
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for _ in range(_N_POOLS):
            layers += [
                nn.Conv2d(channels, width, kernel_size=3, padding=1),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            channels = width
        self.blocks = nn.Sequential(*layers)
        self.width = width

    def out_features(self, image_size: int) -> int:
        """Length of the flattened output for square images of side ``image_size``."""
        side = image_size
        for _ in range(_N_POOLS):
            side //= 2
        return self.width * side * side

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(batch, in_channels, S, S)`` -> ``(batch, out_features(S))``."""
        return self.blocks(images).flatten(1)


class _ResidualBlock(nn.Module):
    """Three [conv 3x3, BatchNorm] with ReLU between, a 1x1 conv shortcut, max pool 2.

    ReLU as SketchEmbedNet Appendix B says (Oreshkin et al. used LeakyReLU).
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        # The shortcut changes the width, so it needs its own 1x1 projection.
        self.shortcut = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels)
        )
        self.activation = nn.ReLU()
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.activation(self.body(x) + self.shortcut(x)))


class ResNet12(nn.Module):
    """Four residual blocks of widths 64-128-256-512 (Oreshkin et al. 2018), global average pool.

    Input ``(batch, in_channels, S, S)`` with ``S >= 16``, output ``(batch, 512)``.
    """

    def __init__(self, in_channels: int = 1, widths: tuple[int, ...] = (64, 128, 256, 512)):
        super().__init__()
        blocks = []
        channels = in_channels
        for width in widths:
            blocks.append(_ResidualBlock(channels, width))
            channels = width
        self.blocks = nn.Sequential(*blocks)
        self.width = channels

    def out_features(self, image_size: int) -> int:
        """Length of the output vector (independent of the image size: global pooling)."""
        return self.width

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(batch, in_channels, S, S)`` -> ``(batch, 512)``."""
        return self.blocks(images).mean(dim=(2, 3))


class ImageEncoder(nn.Module):
    """A conv backbone and a linear Gaussian head: images -> (``mu``, ``sigma_hat``).

    ``backbone`` is ``"conv4"`` or ``"resnet12"``; images are square ``image_size`` pixels with
    ``in_channels`` channels (1 for greyscale, 3 for RGB). ``z_size`` is the embedding size.
    """

    def __init__(
        self,
        backbone: Literal["conv4", "resnet12"] = "conv4",
        in_channels: int = 1,
        z_size: int = 256,
        image_size: int = 28,
    ):
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {backbone!r}: use one of {BACKBONES}")
        if in_channels < 1 or z_size < 1:
            raise ValueError(f"in_channels and z_size must be positive ({in_channels}, {z_size})")
        if image_size < 2**_N_POOLS:
            raise ValueError(f"image_size must be at least {2**_N_POOLS} (four 2x poolings)")
        self.backbone_name = backbone
        self.in_channels = in_channels
        self.z_size = z_size
        self.image_size = image_size
        self.backbone: Conv4 | ResNet12 = (
            Conv4(in_channels) if backbone == "conv4" else ResNet12(in_channels)
        )
        self.feature_size = self.backbone.out_features(image_size)
        # One projection for both halves: mu and sigma_hat come from the same features.
        self.head = nn.Linear(self.feature_size, 2 * z_size)

    def check_images(self, images: torch.Tensor) -> None:
        """ValueError unless ``images`` is ``(batch, in_channels, image_size, image_size)``."""
        expected = (self.in_channels, self.image_size, self.image_size)
        if images.dim() != 4 or tuple(images.shape[1:]) != expected:
            raise ValueError(
                f"{self.backbone_name} encoder expects images of shape (batch, {expected[0]}, "
                f"{expected[1]}, {expected[2]}), got {tuple(images.shape)}"
            )

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Backbone features ``(batch, feature_size)`` of ``(batch, C, H, W)`` images."""
        self.check_images(images)
        return self.backbone(images)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(batch, C, H, W)`` -> ``mu (batch, z_size)``, ``sigma_hat (batch, z_size)``."""
        mu, sigma_hat = self.head(self.features(images)).chunk(2, dim=1)
        return mu, sigma_hat
