"""Request validation for the web API: every field is checked here, before any model runs.

Each check raises :class:`ApiError` (an HTTP status, a short machine-readable ``code`` and a
message a person can act on); the app turns it into a JSON error response and goes on
serving. The bounds live in :class:`Limits` so that a test (or a deployment) can tighten them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "ApiError",
    "Limits",
    "parse_json",
    "Fields",
]


class ApiError(Exception):
    """An error answered to the client: ``status`` (4xx/5xx), ``code``, ``message``."""

    def __init__(self, status: int, code: str, message: str, **extra: Any):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def to_json(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, **self.extra}}


@dataclass(frozen=True)
class Limits:
    """The bounds of one request."""

    max_body_bytes: int = 1_000_000
    max_points: int = 2000  # per drawing, as sent (before simplification)
    max_total_points: int = 20_000  # over all the drawings of one request (few-shot examples)
    max_sketches: int = 32  # drawings in one request (few-shot examples + queries)
    max_n: int = 64  # sketches asked for in one request (n, steps, grid cells)
    max_grid_size: int = 8  # a four-corner grid of size x size (64 cells)
    max_coordinate: float = 100_000.0  # |dx|, |dy| and every absolute position, in pixels
    max_temperature: float = 5.0
    max_canvas_side: float = 20_000.0
    min_canvas_side: float = 8.0
    max_concepts: int = 8  # few-shot: concepts taught in one request
    max_name_length: int = 100
    header_timeout_s: float = 10.0  # a request's headers, from connecting or the last answer
    body_timeout_s: float = 30.0  # its body, from its headers
    max_connections: int = 512  # served at once by uvicorn (503 beyond)


#: The most digits an integer in a request may have (a coordinate, a seed, a canvas side):
#: more is no drawing, and Python would spend time converting it (or refuse past 4300).
MAX_INTEGER_DIGITS = 20


def _integer(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INTEGER_DIGITS:
        raise ApiError(
            400,
            "bad_json",
            f"the request body holds an integer of {digits} digits; numbers in a request "
            f"have at most {MAX_INTEGER_DIGITS}",
        )
    return int(text)


def parse_json(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object; 400 ``bad_json`` otherwise (not UTF-8, not JSON,
    nested too deeply, an integer of more than :data:`MAX_INTEGER_DIGITS` digits). ``NaN``,
    ``Infinity`` and a float too big for a double (infinity) are refused by the field that
    holds them."""
    try:
        value = json.loads(body.decode("utf-8"), parse_int=_integer)
    except UnicodeDecodeError:
        raise ApiError(400, "bad_json", "the request body is not UTF-8 text") from None
    except json.JSONDecodeError as err:
        raise ApiError(
            400, "bad_json", f"the request body is not valid JSON: {err.msg} at {err.pos}"
        ) from None
    except RecursionError:
        raise ApiError(400, "bad_json", "the request body is nested too deeply") from None
    except ValueError as err:  # e.g. a number json cannot convert: never a 422 or a 500
        raise ApiError(400, "bad_json", f"the request body is not valid JSON: {err}") from None
    if not isinstance(value, dict):
        raise ApiError(
            400, "bad_json", f"the request body must be a JSON object, got {_kind(value)}"
        )
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(422, "invalid_field", f"{field}: {message}", field=field)


def _finite(value: int | float) -> float | None:
    """``value`` as a finite float, or None (NaN, infinite, or an integer beyond a double)."""
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


class Fields:
    """Typed access to the fields of one request body; unknown fields are refused (a typo
    such as ``"temprature"`` would otherwise be silently ignored).

    Every getter raises :class:`ApiError` 422 ``invalid_field`` naming the field.
    """

    def __init__(self, body: Mapping[str, Any], allowed: Sequence[str], limits: Limits):
        unknown = sorted(set(body) - set(allowed))
        if unknown:
            raise ApiError(
                422,
                "unknown_field",
                f"unknown field(s): {', '.join(unknown)}; this endpoint takes {', '.join(allowed)}",
                fields=unknown,
            )
        self.body = body
        self.limits = limits
        self._points = 0  # points of the drawings read so far (max_total_points)
        self._sketches = 0

    # ------------------------------------------------------------------------- scalars

    def has(self, name: str) -> bool:
        return self.body.get(name) is not None

    def string(self, name: str, default: str | None = None, *, required: bool = False) -> Any:
        value = self.body.get(name)
        if value is None:
            if required:
                raise _invalid(name, "is required")
            return default
        if not isinstance(value, str):
            raise _invalid(name, f"must be a string, got {_kind(value)}")
        if len(value) > self.limits.max_name_length:
            raise _invalid(name, f"is longer than {self.limits.max_name_length} characters")
        return value

    def choice(self, name: str, options: Sequence[str], default: str | None = None) -> Any:
        value = self.string(name, default)
        if value is not None and value not in options:
            raise _invalid(name, f"must be one of {', '.join(options)}, got {value!r}")
        return value

    def integer(self, name: str, default: int | None, lo: int, hi: int, *, what: str = "") -> Any:
        value = self.body.get(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _invalid(name, f"must be an integer, got {_kind(value)}")
        if isinstance(value, float) and (not math.isfinite(value) or value != int(value)):
            raise _invalid(name, f"must be an integer, got {value!r}")
        value = int(value)
        if not lo <= value <= hi:
            shown = value if abs(value) < 10**12 else f"{value:.3g}"
            raise _invalid(name, f"must be between {lo} and {hi}{what}, got {shown}")
        return value

    def number(self, name: str, default: float | None, lo: float, hi: float) -> Any:
        value = self.body.get(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _invalid(name, f"must be a number, got {_kind(value)}")
        number = _finite(value)
        if number is None:
            raise _invalid(name, "must be a finite number")
        if not lo <= number <= hi:
            raise _invalid(name, f"must be between {lo:g} and {hi:g}, got {number:g}")
        return number

    # ------------------------------------------------------------------------- common

    def count(self, name: str = "n", default: int | None = 1, most: int | None = None) -> Any:
        return self.integer(name, default, 1, self.limits.max_n if most is None else most)

    def temperature(self) -> float | None:
        """``temperature`` (0 to ``max_temperature``), or None: the library's default."""
        return self.number("temperature", None, 0.0, self.limits.max_temperature)

    def seed(self) -> int | None:
        return self.integer("seed", None, 0, 2**31 - 1)

    def max_len(self, model_max: int | None) -> int | None:
        """``max_len``: the most points to draw, at most the model's ``max_seq_len``."""
        if model_max is None:
            return self.integer("max_len", None, 1, 1)  # unused by this model: only None
        return self.integer(
            "max_len", None, 1, model_max, what=f" (the model's max_seq_len is {model_max})"
        )

    def canvas(self) -> tuple[float, float] | None:
        """``canvas: {"width": W, "height": H}`` (pixels the drawing lives in), or None."""
        value = self.body.get("canvas")
        if value is None:
            return None
        if not isinstance(value, dict):
            shape = '{"width": W, "height": H}'
            raise _invalid("canvas", f"must be an object {shape}, got {_kind(value)}")
        unknown = sorted(set(value) - {"width", "height"})
        if unknown:
            raise _invalid("canvas", f"unknown field(s) {', '.join(unknown)}")
        sides = []
        lo, hi = self.limits.min_canvas_side, self.limits.max_canvas_side
        for key in ("width", "height"):
            side = value.get(key)
            if isinstance(side, bool) or not isinstance(side, int | float):
                raise _invalid(f"canvas.{key}", f"must be a number, got {_kind(side)}")
            number = _finite(side)
            if number is None or not lo <= number <= hi:
                raise _invalid(f"canvas.{key}", f"must be between {lo:g} and {hi:g} pixels")
            sides.append(number)
        return sides[0], sides[1]

    def label(self, classes: Sequence[str], num_classes: int, name: str = "label") -> int | None:
        """A class index for a class-conditional model (a name or an index), else None."""
        value = self.body.get(name)
        if num_classes <= 0:
            if value is not None:
                raise _invalid(name, "the model is not class-conditional: leave it out")
            return None
        if value is None:
            raise _invalid(
                name, f"the model is class-conditional: pick one of {', '.join(classes)}"
            )
        if isinstance(value, str):
            if value not in classes:
                known = ", ".join(classes)
                raise _invalid(name, f"unknown class {value!r}; the model knows {known}")
            return list(classes).index(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise _invalid(name, f"must be a class name or index, got {_kind(value)}")
        if not 0 <= value < num_classes:
            raise _invalid(name, f"class index {value} is out of range [0, {num_classes})")
        return value

    # ------------------------------------------------------------------------- drawings

    def sketch(self, name: str) -> np.ndarray:
        """A stroke-3 drawing ``[[dx, dy, pen], ...]`` in pixels as float32 ``(n, 3)``."""
        value = self.body.get(name)
        if value is None:
            raise _invalid(name, "is required (a stroke-3 drawing [[dx, dy, pen], ...])")
        return self.read_sketch(value, name)

    def sketches(self, name: str, lo: int, hi: int) -> list[np.ndarray]:
        value = self.body.get(name)
        if not isinstance(value, list):
            raise _invalid(name, f"must be an array of stroke-3 drawings, got {_kind(value)}")
        if not lo <= len(value) <= hi:
            raise _invalid(name, f"must hold {lo} to {hi} drawings, got {len(value)}")
        return [self.read_sketch(v, f"{name}[{i}]") for i, v in enumerate(value)]

    def read_sketch(self, value: Any, where: str) -> np.ndarray:
        limits = self.limits
        if not isinstance(value, list):
            raise _invalid(where, f"must be an array of [dx, dy, pen] rows, got {_kind(value)}")
        if len(value) == 0:
            raise _invalid(where, "is an empty drawing (no points)")
        if len(value) > limits.max_points:
            raise ApiError(
                422,
                "too_many_points",
                f"{where}: the drawing has {len(value)} points, more than the limit of "
                f"{limits.max_points}; undo or clear some strokes",
                field=where,
                points=len(value),
                limit=limits.max_points,
            )
        self._points += len(value)
        self._sketches += 1
        if self._points > limits.max_total_points:
            raise ApiError(
                422,
                "too_many_points",
                f"the request holds more than {limits.max_total_points} points in all",
                limit=limits.max_total_points,
            )
        if self._sketches > limits.max_sketches:
            raise _invalid(where, f"a request holds at most {limits.max_sketches} drawings")
        for i, row in enumerate(value):
            if not isinstance(row, list) or len(row) != 3:
                raise _invalid(f"{where}[{i}]", "each row must be [dx, dy, pen]")
            for v in row:
                if isinstance(v, bool) or not isinstance(v, int | float):
                    raise _invalid(f"{where}[{i}]", f"values must be numbers, got {_kind(v)}")
                if isinstance(v, int) and _finite(v) is None:
                    raise _invalid(where, "holds NaN or infinite values")
        a = np.asarray(value, dtype=np.float64)
        if not np.isfinite(a).all():
            raise _invalid(where, "holds NaN or infinite values")
        if not np.isin(a[:, 2], (0.0, 1.0)).all():
            raise _invalid(where, "the pen column (third) must be 0 or 1")
        bound = limits.max_coordinate
        if np.abs(a[:, 0:2]).max() > bound or np.abs(np.cumsum(a[:, 0:2], axis=0)).max() > bound:
            raise _invalid(
                where, f"coordinates beyond +-{bound:g} pixels: not a drawing on a screen"
            )
        return a.astype(np.float32)

    def concepts(self, name: str = "concepts") -> list[tuple[str, list[np.ndarray]]]:
        """Few-shot concepts ``[{"name": ..., "examples": [drawings]}, ...]`` (2 to
        ``max_concepts``, names unique) as ``(name, drawings)``; their drawings count in this
        request's budget of points and drawings."""
        value = self.body.get(name)
        hi = self.limits.max_concepts
        if not isinstance(value, list) or not 2 <= len(value) <= hi:
            raise ApiError(
                422,
                "invalid_field",
                f"concepts: must be an array of 2 to {hi} objects "
                '{"name": ..., "examples": [drawings]}',
                field="concepts",
            )
        out, names = [], set()
        for i, concept in enumerate(value):
            where = f"concepts[{i}]"
            if not isinstance(concept, dict) or set(concept) - {"name", "examples"}:
                raise ApiError(
                    422,
                    "invalid_field",
                    f'{where}: must be {{"name": ..., "examples": [drawings]}}',
                    field=where,
                )
            sub = Fields(concept, ("name", "examples"), self.limits)
            sub._points, sub._sketches = self._points, self._sketches  # one budget per request
            label = sub.string("name", required=True).strip()
            if not label or label in names:
                raise ApiError(
                    422, "invalid_field", f"{where}.name: empty or repeated", field=where
                )
            names.add(label)
            examples = sub.sketches("examples", 1, self.limits.max_sketches)
            self._points, self._sketches = sub._points, sub._sketches
            out.append((label, examples))
        return out
