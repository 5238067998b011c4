"""magenta.js models <-> our SketchRNN: the weight mapping between the two (the file itself is
read and written by :mod:`sketchrnn.io.magenta_json`, numpy only)."""

from __future__ import annotations

import os

import numpy as np
import torch

from sketchrnn.io.files import SketchFileError
from sketchrnn.io.magenta_json import (
    DEFAULT_MODE,
    DEFAULT_VERSION,
    MAGENTA_FORGET_BIAS,
    MAGENTA_NUM_MIXTURES,
    MagentaWeights,
    read_magenta_json,
    write_magenta_json,
)
from sketchrnn.models.sketch_rnn import SketchRNN, SketchRNNConfig

__all__ = ["load_magenta_json", "export_magenta_json", "magenta_to_state_dict"]

# TensorFlow's basic LSTM stacks its gates as (i, j, f, o), PyTorch's nn.LSTM as (i, f, g, o)
# with g = j: PyTorch gate k is TensorFlow gate TF_GATE_OF[k], and the inverse is the same
# permutation (it swaps the middle two).
TF_GATE_OF = (0, 2, 1, 3)
FORGET_GATE = 1  # in PyTorch's order


def _gate_columns(hidden: int) -> np.ndarray:
    """Column indices that reorder a ``(..., 4H)`` TensorFlow gate axis into PyTorch's."""
    return np.concatenate([np.arange(g * hidden, (g + 1) * hidden) for g in TF_GATE_OF])


def magenta_to_state_dict(weights: MagentaWeights) -> dict[str, np.ndarray]:
    """Our decoder-only plain-LSTM SketchRNN's parameters from magenta.js arrays.

    Keys are those of ``SketchRNN.state_dict()`` (``decoder.cell.lstm.*``,
    ``decoder.output.*``). The +1.0 forget bias magenta adds at run time is folded into
    ``bias_ih``; ``bias_hh`` is zero. The output layer needs no reordering: our head uses
    magenta's output order.
    """
    hidden = weights.hidden_size
    cols = _gate_columns(hidden)
    bias = weights.lstm_bias[cols].copy()
    bias[FORGET_GATE * hidden : (FORGET_GATE + 1) * hidden] += MAGENTA_FORGET_BIAS
    return {
        "decoder.cell.lstm.weight_ih_l0": np.ascontiguousarray(weights.input_kernel[:, cols].T),
        "decoder.cell.lstm.weight_hh_l0": np.ascontiguousarray(weights.recurrent_kernel[:, cols].T),
        "decoder.cell.lstm.bias_ih_l0": bias,
        "decoder.cell.lstm.bias_hh_l0": np.zeros(4 * hidden, dtype=np.float32),
        "decoder.output.weight": np.ascontiguousarray(weights.output_kernel.T),
        "decoder.output.bias": weights.output_bias.copy(),
    }


def load_magenta_json(path: str | os.PathLike) -> SketchRNN:
    """A magenta.js model as our decoder-only SketchRNN (cell ``"lstm"``, 20 mixtures, no
    dropout), with ``scale_factor`` and ``max_seq_len`` from the file's ``info`` and
    ``classes`` = ``[info.name]``, in eval mode."""
    weights = read_magenta_json(path)
    config = SketchRNNConfig(
        dec_hidden=weights.hidden_size,
        num_mixtures=MAGENTA_NUM_MIXTURES,
        cell="lstm",
        conditional=False,
        recurrent_dropout=0.0,
        max_seq_len=int(weights.info["max_seq_len"]),
        scale_factor=weights.scale_factor,
        classes=[str(weights.info["name"])],
    )
    model = SketchRNN(config)
    tensors = {k: torch.from_numpy(v) for k, v in magenta_to_state_dict(weights).items()}
    model.load_state_dict(tensors)
    return model.eval()


def export_magenta_json(
    model: SketchRNN,
    path: str | os.PathLike,
    *,
    name: str | None = None,
    scale_factor: float | None = None,
) -> None:
    """Write a decoder-only plain-LSTM SketchRNN with 20 mixtures as a magenta.js JSON.

    ``scale_factor`` defaults to ``model.scale_factor`` and ``name`` to the model's first
    class name (else ``"sketch"``). Weights are quantised to int16 (steps of 10/32767, so
    every weight must lie within +-10). Raises :class:`SketchFileError` and writes nothing
    for a model magenta.js cannot run (an encoder, class conditioning, another cell, another
    number of mixtures, no scale factor).
    """
    config = model.config
    problems = []
    if config.conditional:
        problems.append("it has an encoder (magenta.js runs decoder-only models)")
    if config.num_classes > 0:
        problems.append("it is class-conditional")
    if config.cell != "lstm":
        problems.append(f"its cell is {config.cell!r}, not 'lstm'")
    if config.num_mixtures != MAGENTA_NUM_MIXTURES:
        problems.append(f"it has {config.num_mixtures} mixtures, not {MAGENTA_NUM_MIXTURES}")
    if problems:
        raise SketchFileError(path, "cannot export to magenta.js: " + "; ".join(problems))
    scale = model.scale_factor if scale_factor is None else scale_factor
    if scale is None:
        raise SketchFileError(
            path,
            "cannot export to magenta.js: no scale_factor (pass scale_factor, or record it "
            "with model.set_units(scale_factor=...))",
        )
    if name is None:
        name = model.classes[0] if model.classes else "sketch"
    state = {k: v.detach().cpu().double().numpy() for k, v in model.state_dict().items()}
    hidden = config.dec_hidden
    cols = _gate_columns(hidden)  # its own inverse (it swaps gates 1 and 2)
    bias = state["decoder.cell.lstm.bias_ih_l0"] + state["decoder.cell.lstm.bias_hh_l0"]
    bias[FORGET_GATE * hidden : (FORGET_GATE + 1) * hidden] -= MAGENTA_FORGET_BIAS
    info = {
        "mode": DEFAULT_MODE,
        "version": DEFAULT_VERSION,
        "max_seq_len": int(config.max_seq_len),
        "name": str(name),
        "scale_factor": float(scale),
    }
    weights = MagentaWeights(
        info,
        output_kernel=state["decoder.output.weight"].T,
        output_bias=state["decoder.output.bias"],
        input_kernel=state["decoder.cell.lstm.weight_ih_l0"].T[:, cols],
        recurrent_kernel=state["decoder.cell.lstm.weight_hh_l0"].T[:, cols],
        lstm_bias=bias[cols],
    )
    write_magenta_json(path, weights)
