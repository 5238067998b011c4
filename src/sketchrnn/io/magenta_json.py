"""magenta.js / sketch-rnn-js model JSON (``*.gen.json``, ``*.vae.json``): read, validate, write.

The file is a JSON list ``[info, shapes, weights]``:

* ``info``: ``{mode, version, max_seq_len, name, scale_factor}``. Pixel offsets are divided
  by ``scale_factor`` before they enter the network.
* ``shapes``: ``[[H, 123], [123], [5, 4H], [H, 4H], [4H]]``: output kernel, output bias, LSTM
  input kernel, LSTM recurrent kernel, LSTM bias.
* ``weights``: one base64 string per array, little-endian int16, ``value = int16 * 10 / 32767``.

The network is a decoder-only sketch-rnn with a basic LSTM (TensorFlow's gate order
``i, j, f, o`` with a forget bias of +1.0 added at run time) and 20 mixtures; its 123 outputs
are 3 pen logits, then 20 each of pi logits, mu_x, mu_y, log sigma_x, log sigma_y and raw
correlation. The reference runtime is the npm package ``@magenta/sketch``.

VAE files (``*.vae.json``, ``info.mode`` 0 or 1; read by the original runtime
``sketch_rnn.js`` of magenta-demos) hold 17 arrays instead (:data:`VAE_ARRAY_NAMES`): the
encoder's forward and backward LSTMs (``[5, 4E]``, ``[E, 4E]``, ``[4E]`` each, the same gate
order and +1 forget bias), ``mu`` and ``presig`` projections ``[2E, Z]`` + ``[Z]`` of the
concatenated final hidden states (``sigma = sqrt(exp(presig))``), the ``z -> initial state``
projection ``[Z, 2H]`` + ``[2H]`` (``tanh``, split into ``c`` then ``h``), then the decoder as
in a gen file, its LSTM reading ``[x; z]`` (input kernel ``[5 + Z, 4H]``).

:func:`read_magenta_json` / :func:`write_magenta_json` handle the file with numpy only;
:mod:`sketchrnn.models.magenta` converts it to and from a SketchRNN.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from sketchrnn.io.files import (
    SketchFileError,
    atomic_path,
    read_json_document,
)
from sketchrnn.strokes import scale_factor_problem

__all__ = [
    "MAGENTA_NUM_MIXTURES",
    "MagentaWeights",
    "MagentaVAEWeights",
    "GEN_MODES",
    "VAE_MODES",
    "read_magenta_json",
    "read_magenta_kind",
    "write_magenta_json",
]

MAGENTA_NUM_MIXTURES = 20
MAGENTA_OUTPUTS = 3 + 6 * MAGENTA_NUM_MIXTURES  # 123
MAGENTA_FORGET_BIAS = 1.0
# int16 quantisation: the largest representable magnitude and the int16 step for it.
QUANT_RANGE = 10.0
QUANT_STEPS = 32767
INFO_KEYS = ("mode", "version", "max_seq_len", "name", "scale_factor")
ARRAY_NAMES = ("output kernel", "output bias", "LSTM input kernel", "LSTM recurrent kernel",
               "LSTM bias")  # fmt: skip
VAE_ARRAY_NAMES = (
    "encoder forward LSTM input kernel", "encoder forward LSTM recurrent kernel",
    "encoder forward LSTM bias", "encoder backward LSTM input kernel",
    "encoder backward LSTM recurrent kernel", "encoder backward LSTM bias", "mu kernel",
    "mu bias", "presig kernel", "presig bias", "initial state kernel", "initial state bias",
) + ARRAY_NAMES  # fmt: skip
# info.mode: sketch_rnn.js reads 2 or "gen" as decoder-only and anything else as a VAE.
GEN_MODES = (2, "gen")
VAE_MODES = (0, 1, "vae")
# What exported files say in `info` where the model has nothing better (the values in the
# released models: mode 2 is magenta.js's decoder-only generator, format version 6).
DEFAULT_MODE = 2
DEFAULT_VAE_MODE = 1
DEFAULT_VERSION = 6
_MAX_SEQ_LEN = 1_000_000  # the released models say 250


@dataclass
class MagentaWeights:
    """The decoded arrays of a magenta.js model, float32, in the file's own layout.

    ``output_kernel`` ``(H, 123)``, ``output_bias`` ``(123,)``, ``input_kernel`` ``(5, 4H)``,
    ``recurrent_kernel`` ``(H, 4H)``, ``lstm_bias`` ``(4H,)`` (gates ``i, j, f, o``, without
    the +1 forget bias).
    """

    info: dict[str, Any]
    output_kernel: np.ndarray
    output_bias: np.ndarray
    input_kernel: np.ndarray
    recurrent_kernel: np.ndarray
    lstm_bias: np.ndarray

    @property
    def hidden_size(self) -> int:
        return int(self.output_kernel.shape[0])

    @property
    def scale_factor(self) -> float:
        return float(self.info["scale_factor"])

    def arrays(self) -> list[np.ndarray]:
        """The five arrays in file order (the fields' order)."""
        return _arrays_in_field_order(self)


@dataclass
class MagentaVAEWeights:
    """The decoded arrays of a sketch-rnn-js VAE (``*.vae.json``), float32, file layout.

    ``E`` encoder units per direction, ``Z`` latent size, ``H`` decoder units. Encoder LSTMs:
    ``enc_*_input_kernel`` ``(5, 4E)``, ``enc_*_recurrent_kernel`` ``(E, 4E)``,
    ``enc_*_bias`` ``(4E,)`` (gates ``i, j, f, o``, without the +1 forget bias);
    ``mu_kernel`` / ``presig_kernel`` ``(2E, Z)`` over ``[h_forward; h_backward]`` with biases
    ``(Z,)``; ``init_kernel`` ``(Z, 2H)`` and ``init_bias`` ``(2H,)``: ``tanh`` of them is the
    decoder's ``[c0; h0]``; the decoder as in :class:`MagentaWeights`, its ``input_kernel``
    ``(5 + Z, 4H)`` reading ``[x; z]``.
    """

    info: dict[str, Any]
    enc_fw_input_kernel: np.ndarray
    enc_fw_recurrent_kernel: np.ndarray
    enc_fw_bias: np.ndarray
    enc_bw_input_kernel: np.ndarray
    enc_bw_recurrent_kernel: np.ndarray
    enc_bw_bias: np.ndarray
    mu_kernel: np.ndarray
    mu_bias: np.ndarray
    presig_kernel: np.ndarray
    presig_bias: np.ndarray
    init_kernel: np.ndarray
    init_bias: np.ndarray
    output_kernel: np.ndarray
    output_bias: np.ndarray
    input_kernel: np.ndarray
    recurrent_kernel: np.ndarray
    lstm_bias: np.ndarray

    @property
    def hidden_size(self) -> int:
        return int(self.output_kernel.shape[0])

    @property
    def enc_hidden(self) -> int:
        return int(self.enc_fw_recurrent_kernel.shape[0])

    @property
    def z_size(self) -> int:
        return int(self.mu_bias.shape[0])

    @property
    def scale_factor(self) -> float:
        return float(self.info["scale_factor"])

    def arrays(self) -> list[np.ndarray]:
        """The 17 arrays in file order (the fields' order)."""
        return _arrays_in_field_order(self)


def _arrays_in_field_order(weights: Any) -> list[np.ndarray]:
    """Every array field of a weights dataclass, in declaration order (``info`` is not one):
    the fields are declared in the file's order, so that order is written once."""
    return [getattr(weights, f.name) for f in fields(weights) if f.name != "info"]


def expected_vae_shapes(enc: int, z: int, hidden: int) -> list[list[int]]:
    """The ``shapes`` entry of a VAE with encoder ``enc``, latent ``z``, decoder ``hidden``."""
    lstm_enc = [[5, 4 * enc], [enc, 4 * enc], [4 * enc]]
    head = [[2 * enc, z], [z], [2 * enc, z], [z], [z, 2 * hidden], [2 * hidden]]
    decoder = expected_shapes(hidden)
    decoder[2] = [5 + z, 4 * hidden]
    return lstm_enc + lstm_enc + head + decoder


def expected_shapes(hidden: int) -> list[list[int]]:
    """The ``shapes`` entry of a model with ``hidden`` LSTM units."""
    return [[hidden, MAGENTA_OUTPUTS], [MAGENTA_OUTPUTS], [5, 4 * hidden], [hidden, 4 * hidden],
            [4 * hidden]]  # fmt: skip


# ----------------------------------------------------------------------------- reading


def _check_info(path: str | os.PathLike, info: Any) -> dict[str, Any]:
    if not isinstance(info, dict):
        raise SketchFileError(path, f"info (first entry) must be an object, got {_kind(info)}")
    missing = [k for k in INFO_KEYS if k not in info]
    if missing:
        raise SketchFileError(path, f"info is missing {', '.join(missing)}")
    sf = info["scale_factor"]
    problem = scale_factor_problem(sf)
    if problem is not None:
        raise SketchFileError(path, f"info.scale_factor {problem}, got {sf!r:.60}")
    msl = info["max_seq_len"]
    if isinstance(msl, bool) or not isinstance(msl, int) or not 0 < msl <= _MAX_SEQ_LEN:
        raise SketchFileError(
            path,
            f"info.max_seq_len must be a positive integer (at most {_MAX_SEQ_LEN:,}), "
            f"got {msl!r:.60}",
        )
    if not isinstance(info["name"], str):
        raise SketchFileError(path, f"info.name must be a string, got {_kind(info['name'])}")
    return dict(info)


def _check_shapes(path: str | os.PathLike, shapes: Any, info: dict[str, Any] | None = None) -> int:
    """Validate ``shapes`` (and ``info.mode`` against them) and return the decoder's size."""
    ok = (
        isinstance(shapes, list)
        and all(isinstance(s, list) for s in shapes)
        and all(isinstance(d, int) and not isinstance(d, bool) for s in shapes for d in s)
    )
    if not ok:
        raise SketchFileError(path, "shapes (second entry) must be a list of lists of integers")
    if len(shapes) not in (len(ARRAY_NAMES), len(VAE_ARRAY_NAMES)):
        raise SketchFileError(
            path,
            f"expected {len(ARRAY_NAMES)} weight arrays (a decoder-only sketch-rnn with a basic "
            f"LSTM) or {len(VAE_ARRAY_NAMES)} (a VAE), the file has {len(shapes)}",
        )
    if any(d < 0 for s in shapes for d in s):
        raise SketchFileError(path, "shapes hold a negative size")
    vae = len(shapes) == len(VAE_ARRAY_NAMES)
    if info is not None:
        mode = info.get("mode")
        modes = VAE_MODES if vae else GEN_MODES
        if isinstance(mode, bool) or mode not in modes:
            kind = "a VAE" if vae else "a decoder-only model"
            raise SketchFileError(
                path,
                f"info.mode is {mode!r:.60} but the file's {len(shapes)} weight arrays make "
                f"{kind} (mode {' or '.join(repr(m) for m in modes)})",
            )
    names = VAE_ARRAY_NAMES if vae else ARRAY_NAMES
    first = 12 if vae else 0  # the output kernel
    if len(shapes[first]) != 2 or shapes[first][0] <= 0:
        raise SketchFileError(path, f"output kernel shape must be [H, 123], got {shapes[first]}")
    hidden = shapes[first][0]
    if vae:
        if len(shapes[1]) != 2 or shapes[1][0] <= 0 or len(shapes[7]) != 1 or shapes[7][0] <= 0:
            raise SketchFileError(
                path,
                f"encoder recurrent kernel must be [E, 4E] and mu bias [Z], got {shapes[1]} "
                f"and {shapes[7]}",
            )
        enc, z = shapes[1][0], shapes[7][0]
        want = expected_vae_shapes(enc, z, hidden)
        what = (
            f"a VAE with a {enc}-unit encoder, z of {z}, a {hidden}-unit decoder LSTM and "
            f"{MAGENTA_NUM_MIXTURES} mixtures"
        )
    else:
        want = expected_shapes(hidden)
        what = f"a {hidden}-unit LSTM with {MAGENTA_NUM_MIXTURES} mixtures"
    for name, got, exp in zip(names, shapes, want, strict=True):
        if got != exp:
            raise SketchFileError(path, f"{name} has shape {got}, expected {exp} for {what}")
    return hidden


def _decode_array(path: str | os.PathLike, name: str, text: Any, shape: list[int]) -> np.ndarray:
    if not isinstance(text, str):
        raise SketchFileError(path, f"{name}: weights must be a base64 string, got {_kind(text)}")
    count = math.prod(shape)
    if len(text) > 4 * ((2 * count + 2) // 3) + 4:  # far more text than the shape needs
        raise SketchFileError(
            path,
            f"{name}: {len(text)} characters of base64, expected {4 * ((2 * count + 2) // 3)} "
            f"({count} int16 values for shape {shape})",
        )
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise SketchFileError(path, f"{name}: invalid base64 ({e})") from None
    if len(raw) != 2 * count:
        raise SketchFileError(
            path,
            f"{name}: {len(raw)} bytes of data, expected {2 * count} "
            f"({count} int16 values for shape {shape})",
        )
    q = np.frombuffer(raw, dtype="<i2")
    return (q.astype(np.float32) * np.float32(QUANT_RANGE / QUANT_STEPS)).reshape(shape)


def read_magenta_json(path: str | os.PathLike) -> MagentaWeights | MagentaVAEWeights:
    """Read and validate a magenta.js sketch-rnn JSON; no torch involved.

    A decoder-only file (5 arrays, ``info.mode`` 2 or ``"gen"``) gives
    :class:`MagentaWeights`, a VAE (17 arrays, mode 0 or 1) :class:`MagentaVAEWeights`.

    Raises :class:`SketchFileError` naming the file for unreadable or non-JSON files, JSON
    that is not a sketch-rnn model, missing ``info`` fields, wrong shapes and bad base64.
    """
    doc = read_json_document(path)
    if not isinstance(doc, list) or len(doc) != 3:
        raise SketchFileError(
            path, "not a magenta.js sketch-rnn model: expected a JSON list [info, shapes, weights]"
        )
    info_raw, shapes, weights = doc
    info = _check_info(path, info_raw)
    _check_shapes(path, shapes, info)
    if not isinstance(weights, list) or len(weights) != len(shapes):
        raise SketchFileError(
            path, f"weights (third entry) must be a list of {len(shapes)} base64 strings"
        )
    vae = len(shapes) == len(VAE_ARRAY_NAMES)
    names = VAE_ARRAY_NAMES if vae else ARRAY_NAMES
    arrays = [
        _decode_array(path, name, text, shape)
        for name, text, shape in zip(names, weights, shapes, strict=True)
    ]
    if vae:
        return MagentaVAEWeights(info, *arrays)
    return MagentaWeights(info, *arrays)


_HEAD_BYTES = 1 << 16  # info and shapes come first and take a few hundred bytes


def read_magenta_kind(path: str | os.PathLike) -> str:
    """``"gen"`` (decoder-only) or ``"vae"``: what a magenta.js model file is, from its
    ``info`` and ``shapes`` alone (the first few hundred bytes; the weights are not read, so
    this is a quick look, not :func:`read_magenta_json`'s full check). Raises
    :class:`SketchFileError` naming the file when those do not make a sketch-rnn model."""
    try:
        with open(path, "rb") as f:
            head = f.read(_HEAD_BYTES).decode("utf-8", errors="replace")
    except OSError as e:
        raise SketchFileError(path, f"cannot read file ({e.strerror or e})") from None
    decoder = json.JSONDecoder()
    try:
        at = len(head) - len(head.lstrip())
        if head[at : at + 1] != "[":
            raise ValueError("not a list")
        at += 1
        info, at = decoder.raw_decode(head, at + len(head[at:]) - len(head[at:].lstrip()))
        rest = head[at:].lstrip()
        if not rest.startswith(","):
            raise ValueError("no shapes")
        at = len(head) - len(rest) + 1
        shapes, _ = decoder.raw_decode(head, at + len(head[at:]) - len(head[at:].lstrip()))
    except (ValueError, RecursionError):
        raise SketchFileError(
            path, "not a magenta.js sketch-rnn model: expected a JSON list [info, shapes, weights]"
        ) from None
    _check_shapes(path, shapes, _check_info(path, info))
    return "vae" if len(shapes) == len(VAE_ARRAY_NAMES) else "gen"


# ----------------------------------------------------------------------------- writing


def _encode_array(path: str | os.PathLike, name: str, a: np.ndarray) -> str:
    a = np.asarray(a, dtype=np.float64)
    if not np.isfinite(a).all():
        raise SketchFileError(path, f"cannot export: {name} contains NaN or infinite values")
    peak = float(np.abs(a).max()) if a.size else 0.0
    if peak > QUANT_RANGE:
        raise SketchFileError(
            path,
            f"cannot export: {name} has a value of magnitude {peak:.4g}, beyond the format's "
            f"int16 range of +-{QUANT_RANGE:g}",
        )
    q = np.rint(a * (QUANT_STEPS / QUANT_RANGE)).astype("<i2")
    return base64.b64encode(q.tobytes()).decode("ascii")


def write_magenta_json(
    path: str | os.PathLike, weights: MagentaWeights | MagentaVAEWeights
) -> None:
    """Write ``weights`` as a magenta.js JSON (int16 quantised), atomically: a ``.gen.json``
    for :class:`MagentaWeights`, a ``.vae.json`` for :class:`MagentaVAEWeights`.

    Raises :class:`SketchFileError` (and leaves no file) for inconsistent shapes, missing
    ``info`` fields, non-finite values or values beyond +-10.
    """
    info = _check_info(path, weights.info)
    shapes = [list(a.shape) for a in weights.arrays()]
    names = VAE_ARRAY_NAMES if isinstance(weights, MagentaVAEWeights) else ARRAY_NAMES
    if len(shapes) != len(names):
        raise SketchFileError(path, f"cannot export: {len(shapes)} arrays, expected {len(names)}")
    _check_shapes(path, shapes, info)
    encoded = [
        _encode_array(path, name, a) for name, a in zip(names, weights.arrays(), strict=True)
    ]
    text = json.dumps([info, shapes, encoded], separators=(",", ":"))
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _kind(value: Any) -> str:
    return type(value).__name__
