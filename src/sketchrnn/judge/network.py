"""A Keras ``Sequential`` image classifier (read by :mod:`sketchrnn.io.tfjs_layers`) in PyTorch.

The layers DoodleNet uses are rebuilt with their Keras meaning: ``Conv2D`` (``same`` padding
for odd kernels at stride 1, or ``valid``), ``MaxPooling2D`` (``valid``: sizes round down),
``Dropout`` (nothing at inference), ``Flatten`` (in Keras' channels-last order, so the dense
kernel's rows line up) and ``Dense``, each with its activation (``relu``, ``tanh``,
``softmax``, ``linear``). The last ``Dense`` gives the logits (its softmax is taken in log
space by the caller); what enters it is the *penultimate feature* vector that Frechet
distances and precision / recall are computed in. Any other layer is refused by name.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from sketchrnn.io.files import SketchFileError
from sketchrnn.io.tfjs_layers import LayersModel

__all__ = ["SequentialClassifier"]

_ACTIVATIONS: dict[str, Any] = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "linear": None,
    "softmax": None,  # the last layer's: the logits are kept, log_softmax taken by the caller
}


class SequentialClassifier(nn.Module):
    """Images ``(B, H, W)`` (or ``(B, H, W, C)``) in the model's input range -> logits
    ``(B, classes)`` and the penultimate features ``(B, D)``, from a :class:`LayersModel`."""

    def __init__(self, model: LayersModel):
        super().__init__()
        self.input_shape = model.input_shape
        self.steps: list[tuple[str, Any, Any]] = []  # (kind, module or size, activation)
        self.layers = nn.ModuleList()
        self.feature_size = 0  # the input size of the last Dense layer
        shape = model.input_shape  # (H, W, C) channels last, or (D,) once flattened
        dense = [i for i, layer in enumerate(model.layers) if layer["class_name"] == "Dense"]
        if not dense or dense[-1] != len(model.layers) - 1:
            raise SketchFileError(model.path, "the last layer must be the Dense classifier")
        for i, layer in enumerate(model.layers):
            kind, config = layer["class_name"], layer["config"]
            if config.get("data_format", "channels_last") != "channels_last":
                raise SketchFileError(model.path, f"layer {i} ({kind}): not channels_last")
            activation = config.get("activation", "linear")
            last = i == dense[-1]  # the classifier: softmax or linear, and only it softmax
            if (
                activation not in _ACTIVATIONS
                or (activation == "softmax") > last
                or (last and activation not in ("softmax", "linear"))
            ):
                raise SketchFileError(model.path, f"layer {i} ({kind}): activation {activation!r}")
            if kind == "Conv2D":
                shape = self._conv(model, i, config, shape)
            elif kind == "MaxPooling2D":
                shape = self._pool(model, i, config, shape)
            elif kind == "Dropout":
                continue
            elif kind == "Flatten":
                self.steps.append(("flatten", None, None))
                shape = (math.prod(shape),)
            elif kind == "Dense":
                shape = self._dense(model, i, config, shape)
            else:
                raise SketchFileError(model.path, f"layer {i}: {kind} layers are not supported")
        self.num_classes = int(shape[0])

    def _weights(self, model: LayersModel, i: int, config: dict) -> tuple[Tensor, Tensor | None]:
        name = config.get("name")
        found = {}
        for part in ("kernel", "bias"):
            keys = [k for k in model.weights if k.split("/")[-2:] == [name, part]]
            if len(keys) == 1:
                found[part] = torch.from_numpy(model.weights[keys[0]].copy())
        if "kernel" not in found or (config.get("use_bias", True) and "bias" not in found):
            raise SketchFileError(model.path, f"layer {i} ({name}): its weights are missing")
        return found["kernel"], found.get("bias")

    def _conv(self, model: LayersModel, i: int, config: dict, shape: tuple) -> tuple:
        kernel, bias = self._weights(model, i, config)
        if kernel.dim() != 4:
            raise SketchFileError(model.path, f"layer {i} (Conv2D): kernel {tuple(kernel.shape)}")
        kh, kw, c_in, c_out = kernel.shape
        strides = tuple(config.get("strides", (1, 1)))
        dilation = tuple(config.get("dilation_rate", (1, 1)))
        padding = config.get("padding", "valid")
        same = padding == "same"
        fits = len(shape) == 3 and shape[2] == c_in
        if not fits or dilation != (1, 1) or config.get("groups", 1) != 1:
            raise SketchFileError(
                model.path,
                f"layer {i} (Conv2D): kernel {tuple(kernel.shape)} does not fit its input {shape}",
            )
        odd = kh % 2 == 1 and kw % 2 == 1
        if padding not in ("same", "valid") or (same and (strides != (1, 1) or not odd)):
            raise SketchFileError(
                model.path,
                f"layer {i} (Conv2D): padding {padding!r} with kernel {kh}x{kw}, strides "
                f"{strides} is not supported",
            )
        conv = nn.Conv2d(
            c_in,
            c_out,
            (kh, kw),
            stride=strides,
            padding=(kh // 2, kw // 2) if same else 0,
            bias=bias is not None,
        )
        with torch.no_grad():
            conv.weight.copy_(kernel.permute(3, 2, 0, 1))  # Keras (kh, kw, in, out)
            if bias is not None and conv.bias is not None:
                conv.bias.copy_(bias)
        self.layers.append(conv)
        self.steps.append(("module", conv, _ACTIVATIONS[config.get("activation", "linear")]))
        h, w = (shape[0], shape[1]) if same else (shape[0] - kh + 1, shape[1] - kw + 1)
        return ((h - 1) // strides[0] + 1, (w - 1) // strides[1] + 1, c_out)

    def _pool(self, model: LayersModel, i: int, config: dict, shape: tuple) -> tuple:
        size = tuple(config.get("pool_size", (2, 2)))
        strides = tuple(config.get("strides") or size)
        if len(shape) != 3 or config.get("padding", "valid") != "valid":
            raise SketchFileError(model.path, f"layer {i} (MaxPooling2D): only 'valid' padding")
        pool = nn.MaxPool2d(size, strides)
        self.steps.append(("module", pool, None))
        h = (shape[0] - size[0]) // strides[0] + 1
        w = (shape[1] - size[1]) // strides[1] + 1
        return (h, w, shape[2])

    def _dense(self, model: LayersModel, i: int, config: dict, shape: tuple) -> tuple:
        kernel, bias = self._weights(model, i, config)
        if len(shape) != 1 or kernel.dim() != 2 or kernel.shape[0] != shape[0]:
            raise SketchFileError(
                model.path,
                f"layer {i} (Dense): kernel {tuple(kernel.shape)} does not fit its input {shape}",
            )
        linear = nn.Linear(kernel.shape[0], kernel.shape[1], bias=bias is not None)
        with torch.no_grad():
            linear.weight.copy_(kernel.T)  # Keras (in, out)
            if bias is not None and linear.bias is not None:
                linear.bias.copy_(bias)
        self.layers.append(linear)
        self.steps.append(("module", linear, _ACTIVATIONS[config.get("activation", "linear")]))
        self.feature_size = int(kernel.shape[0])
        return (kernel.shape[1],)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """``images`` ``(B, H, W)`` or ``(B, H, W, C)`` -> ``(logits (B, classes), features
        (B, D))``, the features being the input of the last Dense layer."""
        x = images if images.dim() == 4 else images.unsqueeze(-1)
        if tuple(x.shape[1:]) != tuple(self.input_shape):
            raise ValueError(f"images must be (batch, {self.input_shape}), got {tuple(x.shape)}")
        x = x.permute(0, 3, 1, 2)  # channels last -> torch's channels first
        features = x
        last = len(self.steps) - 1
        for k, (kind, module, activation) in enumerate(self.steps):
            if k == last:
                features = x
            if kind == "flatten":
                x = x.permute(0, 2, 3, 1).flatten(1)  # Keras flattens (H, W, C)
                continue
            x = module(x)
            if activation is not None and k != last:
                x = activation(x)
        return x, features
