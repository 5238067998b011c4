"""magenta.js sketch-rnn model JSON (``*.gen.json``): read, validate, write, and convert.

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

:func:`read_magenta_json` / :func:`write_magenta_json` handle the file with numpy only;
:mod:`sketchrnn.models.magenta` converts it to and from a SketchRNN.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from sketchrnn.io.files import SketchFileError, atomic_path, env_limit, limit_hint, size_text

__all__ = [
    "MAGENTA_NUM_MIXTURES",
    "MagentaWeights",
    "read_magenta_json",
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
# What exported files say in `info` where the model has nothing better (the values in the
# released models: mode 2 is magenta.js's decoder-only generator, format version 6).
DEFAULT_MODE = 2
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
        """The five arrays in file order."""
        return [
            self.output_kernel,
            self.output_bias,
            self.input_kernel,
            self.recurrent_kernel,
            self.lstm_bias,
        ]


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
    if isinstance(sf, bool) or not isinstance(sf, int | float) or not math.isfinite(sf) or sf <= 0:
        raise SketchFileError(path, f"info.scale_factor must be a positive number, got {sf!r:.60}")
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


def _check_shapes(path: str | os.PathLike, shapes: Any) -> int:
    """Validate ``shapes`` and return the hidden size."""
    ok = (
        isinstance(shapes, list)
        and all(isinstance(s, list) for s in shapes)
        and all(isinstance(d, int) and not isinstance(d, bool) for s in shapes for d in s)
    )
    if not ok:
        raise SketchFileError(path, "shapes (second entry) must be a list of lists of integers")
    if len(shapes) != len(ARRAY_NAMES):
        raise SketchFileError(
            path,
            f"expected {len(ARRAY_NAMES)} weight arrays (a decoder-only sketch-rnn with a basic "
            f"LSTM), the file has {len(shapes)}",
        )
    if any(d < 0 for s in shapes for d in s):
        raise SketchFileError(path, "shapes hold a negative size")
    if len(shapes[0]) != 2 or shapes[0][0] <= 0:
        raise SketchFileError(path, f"output kernel shape must be [H, 123], got {shapes[0]}")
    hidden = shapes[0][0]
    want = expected_shapes(hidden)
    for name, got, exp in zip(ARRAY_NAMES, shapes, want, strict=True):
        if got != exp:
            raise SketchFileError(
                path,
                f"{name} has shape {got}, expected {exp} for a {hidden}-unit LSTM with "
                f"{MAGENTA_NUM_MIXTURES} mixtures",
            )
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


def read_magenta_json(path: str | os.PathLike) -> MagentaWeights:
    """Read and validate a magenta.js sketch-rnn JSON; no torch involved.

    Raises :class:`SketchFileError` naming the file for unreadable or non-JSON files, JSON
    that is not a sketch-rnn model, missing ``info`` fields, wrong shapes and bad base64.
    """
    try:
        size = os.stat(path).st_size
        if size > env_limit("SKETCHRNN_MAX_JSON_BYTES"):
            raise SketchFileError(
                path, f"{size_text(size)}, " + limit_hint("SKETCHRNN_MAX_JSON_BYTES")
            )
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except OSError as e:
        raise SketchFileError(path, f"cannot read file ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise SketchFileError(path, "not a text file (invalid UTF-8)") from None
    except json.JSONDecodeError as e:
        raise SketchFileError(path, f"invalid JSON: {e.msg}", line=e.lineno) from None
    except RecursionError:
        raise SketchFileError(path, "invalid JSON: nested too deeply") from None
    except SketchFileError:
        raise
    except (ValueError, MemoryError) as e:  # e.g. an integer of more than 4300 digits
        raise SketchFileError(path, f"invalid JSON: {type(e).__name__}: {str(e)[:80]}") from None
    if not isinstance(doc, list) or len(doc) != 3:
        raise SketchFileError(
            path, "not a magenta.js sketch-rnn model: expected a JSON list [info, shapes, weights]"
        )
    info_raw, shapes, weights = doc
    info = _check_info(path, info_raw)
    _check_shapes(path, shapes)
    if not isinstance(weights, list) or len(weights) != len(shapes):
        raise SketchFileError(
            path, f"weights (third entry) must be a list of {len(shapes)} base64 strings"
        )
    arrays = [
        _decode_array(path, name, text, shape)
        for name, text, shape in zip(ARRAY_NAMES, weights, shapes, strict=True)
    ]
    return MagentaWeights(info, *arrays)


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


def write_magenta_json(path: str | os.PathLike, weights: MagentaWeights) -> None:
    """Write ``weights`` as a magenta.js JSON (int16 quantised), atomically.

    Raises :class:`SketchFileError` (and leaves no file) for inconsistent shapes, missing
    ``info`` fields, non-finite values or values beyond +-10.
    """
    info = _check_info(path, weights.info)
    shapes = [list(a.shape) for a in weights.arrays()]
    _check_shapes(path, shapes)
    encoded = [
        _encode_array(path, name, a) for name, a in zip(ARRAY_NAMES, weights.arrays(), strict=True)
    ]
    text = json.dumps([info, shapes, encoded], separators=(",", ":"))
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _kind(value: Any) -> str:
    return type(value).__name__
