"""magenta.js / sketch-rnn-js models <-> our SketchRNN: the weight mapping between the two (the
file itself is read and written by :mod:`sketchrnn.io.magenta_json`, numpy only).

``*.gen.json`` is our decoder-only plain-LSTM SketchRNN; ``*.vae.json`` our LSTM VAE (the
:class:`~sketchrnn.nn.encoders.BiLSTMEncoder` encoder). The mapping is exact up to the file's
int16 quantisation: sketch_rnn.js's LSTM is the standard one (TensorFlow's gate order with a
+1 forget bias at run time, folded into our ``bias_ih``), its encoder reads the sketch
forwards and reversed from zero states like ours, ``sigma = sqrt(exp(presig))`` is our
``exp(sigma_hat / 2)``, its initial state ``tanh(W z + b)`` is ``[c0; h0]`` where ours is
``[h0; c0]`` (the halves are swapped), and its decoder reads ``[x; z]`` like ours. One
difference in the runtime itself is not followed: for files of ``info.version`` < 6, its
``get_init_state_from_latent_vector`` (not its ``decode``) passes z through ``tanh`` first.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from sketchrnn.io.files import SketchFileError
from sketchrnn.io.magenta_json import (
    DEFAULT_MODE,
    DEFAULT_VAE_MODE,
    DEFAULT_VERSION,
    MAGENTA_FORGET_BIAS,
    MAGENTA_NUM_MIXTURES,
    MagentaVAEWeights,
    MagentaWeights,
    read_magenta_json,
    write_magenta_json,
)
from sketchrnn.models.interface import SketchModel
from sketchrnn.models.sketch_rnn import SketchRNN, SketchRNNConfig
from sketchrnn.models.units import check_scale_factor

__all__ = [
    "load_magenta_json",
    "export_magenta_json",
    "magenta_export_problem",
    "magenta_to_state_dict",
    "magenta_vae_to_state_dict",
]

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


def _lstm_to_torch(
    input_kernel: np.ndarray, recurrent_kernel: np.ndarray, bias: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A TensorFlow-layout LSTM (gates ``i, j, f, o``, +1 forget bias at run time) as
    PyTorch's ``weight_ih``, ``weight_hh``, ``bias_ih`` (forget bias folded in), ``bias_hh``."""
    hidden = recurrent_kernel.shape[0]
    cols = _gate_columns(hidden)
    b = np.asarray(bias, dtype=np.float32)[cols].copy()
    b[FORGET_GATE * hidden : (FORGET_GATE + 1) * hidden] += MAGENTA_FORGET_BIAS
    return (
        np.ascontiguousarray(input_kernel[:, cols].T),
        np.ascontiguousarray(recurrent_kernel[:, cols].T),
        b,
        np.zeros(4 * hidden, dtype=np.float32),
    )


def _lstm_from_torch(
    state: dict[str, np.ndarray], prefix: str, suffix: str = ""
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The inverse of :func:`_lstm_to_torch` for ``prefix + "weight_ih_l0" + suffix`` etc."""
    w_ih = state[f"{prefix}weight_ih_l0{suffix}"]
    w_hh = state[f"{prefix}weight_hh_l0{suffix}"]
    hidden = w_hh.shape[1]
    cols = _gate_columns(hidden)  # its own inverse (it swaps gates 1 and 2)
    bias = state[f"{prefix}bias_ih_l0{suffix}"] + state[f"{prefix}bias_hh_l0{suffix}"]
    bias[FORGET_GATE * hidden : (FORGET_GATE + 1) * hidden] -= MAGENTA_FORGET_BIAS
    return w_ih.T[:, cols], w_hh.T[:, cols], bias[cols]


def magenta_vae_to_state_dict(weights: MagentaVAEWeights) -> dict[str, np.ndarray]:
    """Our LSTM VAE's parameters (``encoder.*``, ``decoder.*``) from sketch-rnn-js arrays."""
    out: dict[str, np.ndarray] = {}
    directions = (
        ("", weights.enc_fw_input_kernel, weights.enc_fw_recurrent_kernel, weights.enc_fw_bias),
        ("_reverse", weights.enc_bw_input_kernel, weights.enc_bw_recurrent_kernel,
         weights.enc_bw_bias),
    )  # fmt: skip
    for suffix, w_x, w_h, b in directions:
        tensors = _lstm_to_torch(w_x, w_h, b)
        for name, t in zip(_LSTM_NAMES, tensors, strict=True):
            out[f"encoder.lstm.{name}{suffix}"] = t
    out["encoder.to_latent.weight"] = np.ascontiguousarray(
        np.concatenate([weights.mu_kernel, weights.presig_kernel], axis=1).T
    )
    out["encoder.to_latent.bias"] = np.concatenate([weights.mu_bias, weights.presig_bias])
    tensors = _lstm_to_torch(weights.input_kernel, weights.recurrent_kernel, weights.lstm_bias)
    for name, t in zip(_LSTM_NAMES, tensors, strict=True):
        out[f"decoder.cell.lstm.{name}"] = t
    hidden = weights.hidden_size
    swap = np.concatenate([np.arange(hidden, 2 * hidden), np.arange(hidden)])  # [c; h] <-> [h; c]
    out["decoder.init_state.weight"] = np.ascontiguousarray(weights.init_kernel[:, swap].T)
    out["decoder.init_state.bias"] = weights.init_bias[swap].copy()
    out["decoder.output.weight"] = np.ascontiguousarray(weights.output_kernel.T)
    out["decoder.output.bias"] = weights.output_bias.copy()
    return out


_LSTM_NAMES = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")


def load_magenta_json(path: str | os.PathLike) -> SketchRNN:
    """A magenta.js model as our SketchRNN (cell ``"lstm"``, 20 mixtures, no dropout), with
    ``scale_factor`` and ``max_seq_len`` from the file's ``info`` and ``classes`` =
    ``[info.name]``, in eval mode: decoder-only for a ``.gen.json``, the VAE
    (``conditional=True``, bidirectional LSTM encoder) for a ``.vae.json``."""
    weights = read_magenta_json(path)
    latent: dict[str, Any]
    if isinstance(weights, MagentaVAEWeights):
        latent = dict(enc_hidden=weights.enc_hidden, z_size=weights.z_size, conditional=True)
        state = magenta_vae_to_state_dict(weights)
    else:
        latent = dict(conditional=False)
        state = magenta_to_state_dict(weights)
    config = SketchRNNConfig(
        **latent,
        dec_hidden=weights.hidden_size,
        num_mixtures=MAGENTA_NUM_MIXTURES,
        cell="lstm",
        recurrent_dropout=0.0,
        max_seq_len=int(weights.info["max_seq_len"]),
        scale_factor=weights.scale_factor,
        classes=[str(weights.info["name"])],
    )
    model = SketchRNN(config)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    return model.eval()


def magenta_export_problem(model: SketchModel) -> str | None:
    """Why the magenta.js format cannot hold a model of ``model``'s kind (it holds sketch-rnn
    models only), or ``None``; what else it cannot hold, :func:`export_magenta_json` says."""
    if isinstance(model, SketchRNN):
        return None
    return (
        f"cannot export a {type(model).__name__}: the magenta.js format holds sketch-rnn "
        "models only (export it to a folder: a portable model)"
    )


def export_magenta_json(
    model: SketchModel,
    path: str | os.PathLike,
    *,
    name: str | None = None,
    scale_factor: float | None = None,
) -> None:
    """Write a plain-LSTM SketchRNN with 20 mixtures as a magenta.js JSON: a decoder-only
    model as a ``.gen.json`` (magenta.js and sketch_rnn.js run it), a VAE as a ``.vae.json``
    (sketch_rnn.js runs it).

    ``scale_factor`` defaults to ``model.scale_factor`` and ``name`` to the model's first
    class name (else ``"sketch"``). Weights are quantised to int16 (steps of 10/32767, so
    every weight must lie within +-10). Raises :class:`SketchFileError` and writes nothing
    for a model the format cannot hold (class conditioning, another cell, another number of
    mixtures, no scale factor or one outside :data:`~sketchrnn.models.units.SCALE_FACTOR_RANGE`),
    or when ``path`` ends in ``.gen.json`` for a VAE or in ``.vae.json`` for a decoder-only
    model, and for a model of another kind (:func:`magenta_export_problem`).
    """
    if not isinstance(model, SketchRNN):
        raise SketchFileError(path, str(magenta_export_problem(model)))
    config = model.config
    vae = bool(config.conditional)
    lower = os.fspath(path).lower()
    problems = []
    if vae and lower.endswith(".gen.json"):
        problems.append("it has an encoder (a VAE): name the file *.vae.json")
    if not vae and lower.endswith(".vae.json"):
        problems.append("it is decoder-only (no encoder): name the file *.gen.json")
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
    try:
        scale = check_scale_factor(scale)
    except ValueError as e:
        raise SketchFileError(path, f"cannot export to magenta.js: {e}") from None
    if name is None:
        name = model.classes[0] if model.classes else "sketch"
    state = {k: v.detach().cpu().double().numpy() for k, v in model.state_dict().items()}
    info = {
        "mode": DEFAULT_VAE_MODE if vae else DEFAULT_MODE,
        "version": DEFAULT_VERSION,
        "max_seq_len": int(config.max_seq_len),
        "name": str(name),
        "scale_factor": float(scale),
    }
    input_kernel, recurrent_kernel, lstm_bias = _lstm_from_torch(state, "decoder.cell.lstm.")
    decoder = dict(
        output_kernel=state["decoder.output.weight"].T,
        output_bias=state["decoder.output.bias"],
        input_kernel=input_kernel,
        recurrent_kernel=recurrent_kernel,
        lstm_bias=lstm_bias,
    )
    weights: MagentaWeights | MagentaVAEWeights
    if not vae:
        weights = MagentaWeights(info, **decoder)
    else:
        fw = _lstm_from_torch(state, "encoder.lstm.")
        bw = _lstm_from_torch(state, "encoder.lstm.", "_reverse")
        z = config.z_size
        latent_w = state["encoder.to_latent.weight"].T  # (2E, 2Z): [mu | presig]
        latent_b = state["encoder.to_latent.bias"]
        hidden = config.dec_hidden
        swap = np.concatenate([np.arange(hidden, 2 * hidden), np.arange(hidden)])
        weights = MagentaVAEWeights(
            info,
            *fw,
            *bw,
            mu_kernel=latent_w[:, :z],
            mu_bias=latent_b[:z],
            presig_kernel=latent_w[:, z:],
            presig_bias=latent_b[z:],
            init_kernel=state["decoder.init_state.weight"].T[:, swap],
            init_bias=state["decoder.init_state.bias"][swap],
            **decoder,
        )
    write_magenta_json(path, weights)
