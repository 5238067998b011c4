"""What every config dataclass shares (the models' and training's): JSON round trips, one help
line per field, and the stroke units a model carries.

Each field says what it is in its metadata, so that the command line can offer it as an option
with its name, type, default and help, each written once, here::

    batch_size: int = option(100, "sketches per optimizer step")
    classes: list[str] = option(factory=list, help="class names", cli=False)

``metadata["help"]`` is the help line; ``metadata["cli"] is False`` marks a field that is not a
command-line option (it comes from the data, or from another option); ``metadata["choices"]``
lists the values a field accepts, where it is one of a few. A number says the values it accepts
with ``low``/``high`` (and ``low_open``/``high_open`` for a strict bound)::

    lr: float = option(1e-3, "learning rate", low=0, low_open=True, high=1)

:meth:`ConfigDict.check_bounds` (each config's ``__post_init__`` calls it) refuses any other
value with a ``ValueError`` naming the field, what it accepts and the value, and the command
line checks the same bounds as it parses (:func:`field_bounds`). A bounded float must also be
finite (NaN never is; infinity only where a bound is ``math.inf``, as ``grad_clip``'s) and fit
a float32 (the tensors it ends up in: ``--grad-clip 1e308`` would overflow there). Every
number declares both bounds: the shared ceilings below (:data:`MAX_STEPS`, ...) where nothing
smaller fits the field.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Self

from sketchrnn.strokes import scale_factor_problem

__all__ = [
    "Bounds",
    "ConfigDict",
    "FLOAT32_MAX",
    "DEVICE_FORMS",
    "UnitsConfig",
    "check_device",
    "field_bounds",
    "option",
    "MAX_BATCH_SIZE",
    "MAX_IMAGE_SIDE",
    "MAX_LOSS_WEIGHT",
    "MAX_SECONDS",
    "MAX_SEED",
    "MAX_SEQ_LEN",
    "MAX_STEPS",
    "MAX_WIDTH",
    "SCALE_FACTOR_HELP",
    "CLASSES_HELP",
]

SCALE_FACTOR_HELP = "pixels per model unit: the std of the training offsets (set from the data)"
CLASSES_HELP = "class names, in the order of the data's labels (set from the data)"

# The widest layer a model config accepts (cell sizes, latent and embedding sizes): 4x the
# paper's 2048, so that a config.json asking for 10^7 is refused before anything is allocated
# (an LSTM of 8192 already holds 0.5 G parameters).
MAX_WIDTH = 8192
# The longest sketch a model config accepts, in points (N_max comes from the data; the readers
# refuse drawings over $SKETCHRNN_MAX_POINTS, 200,000 by default).
MAX_SEQ_LEN = 1_000_000
# The largest image side (SketchEmbedNet and Conv-VAE inputs, the pixel loss's raster).
MAX_IMAGE_SIDE = 1024
# The most sketches in one batch (training and evaluation).
MAX_BATCH_SIZE = 1_000_000
# The most optimizer steps (and the longest interval between validations, checkpoints, log
# rows): 10^9 steps are years of training at the paper's speed.
MAX_STEPS = 10**9
# The longest wall-time budget, in seconds (about 31 years).
MAX_SECONDS = 10**9
# The largest weight of a loss term (KL weights, floors): 10^4 times the paper's; beyond it
# the term swamps the rest (and 1e308 overflows the float32 loss).
MAX_LOSS_WEIGHT = 1e4
# The largest seed: 32 bits, what every generator a seed reaches takes (numpy's legacy
# RandomState, which UMAP uses, refuses more; torch and numpy's default_rng take more).
MAX_SEED = 2**32 - 1
# The largest finite float32: every bounded float ends up in a float32 tensor.
FLOAT32_MAX = 3.4028234663852886e38


def option(
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    cli: bool = True,
    choices: Sequence[Any] | None = None,
    factory: Callable[[], Any] | None = None,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> Any:
    """A dataclass field with its help line (and ``cli``, ``choices``, the bounds ``low`` and
    ``high``, strict with ``low_open``/``high_open``) in its metadata; ``factory`` for a
    mutable default (a list)."""
    metadata: dict[str, Any] = {"help": help}
    if not cli:
        metadata["cli"] = False
    if choices is not None:
        metadata["choices"] = tuple(choices)
    for key, value in (("low", low), ("high", high)):
        if value is not None:
            metadata[key] = value
    if low_open:
        metadata["low_open"] = True
    if high_open:
        metadata["high_open"] = True
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _show_number(x: float) -> str:
    return f"{x:,}" if isinstance(x, int) and abs(x) >= 10_000 else f"{x:g}"


@dataclasses.dataclass(frozen=True)
class Bounds:
    """The numbers a value may take: ``low``/``high`` (``None``: unbounded; strict with
    ``low_open``/``high_open``), whole numbers only with ``integer``, ``None`` too with
    ``optional``. A float must be finite, except for an infinite bound that is not open
    (``high=math.inf``: infinity is a value, such as "no clipping"); NaN never is. A finite
    float must fit a float32 (at most :data:`FLOAT32_MAX` in size), whatever the bounds."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    optional: bool = False

    def accepted(self) -> str:
        """What is accepted, as an error message says it: ``"must be > 0 and finite"``,
        ``"must be >= 1"``, ``"must be in (0, 1]"``, ``"... or none"``."""
        low, high = self.low, self.high
        infinite_ok = (high == math.inf and not self.high_open) or (
            low == -math.inf and not self.low_open
        )
        low = None if low == -math.inf else low
        high = None if high == math.inf else high
        if low is not None and high is not None:
            text = (
                f"in {'(' if self.low_open else '['}{_show_number(low)}, "
                f"{_show_number(high)}{')' if self.high_open else ']'}"
            )
        elif low is not None:
            text = f"{'>' if self.low_open else '>='} {_show_number(low)}"
        elif high is not None:
            text = f"{'<' if self.high_open else '<='} {_show_number(high)}"
        else:
            text = "a number"
        if self.integer:
            text = "a whole number" if text == "a number" else f"a whole number {text}"
        elif infinite_ok:
            text += f" (finite ones at most {FLOAT32_MAX:.4g} in size, a float32)"
        elif low is None or high is None:
            text += " and finite" if text != "a number" else ""
        return f"must be {text}" + (" or none" if self.optional else "")

    def problem(self, value: Any) -> str | None:
        """``None`` when ``value`` is accepted, else :meth:`accepted`."""
        if value is None:
            return None if self.optional else self.accepted()
        kind = numbers.Integral if self.integer else numbers.Real
        if isinstance(value, bool) or not isinstance(value, kind):
            return self.accepted()
        try:
            x = float(value)
        except OverflowError:  # an integer of hundreds of digits
            return self.accepted()
        if math.isnan(x) or (math.isinf(x) and x not in (self.low, self.high)):
            return self.accepted()
        if not self.integer and math.isfinite(x) and abs(x) > FLOAT32_MAX:
            return self.accepted()
        # A whole number is compared exactly (2^63 - 1 is no float).
        v: Any = value if self.integer else x
        if self.low is not None and (v <= self.low if self.low_open else v < self.low):
            return self.accepted()
        if self.high is not None and (v >= self.high if self.high_open else v > self.high):
            return self.accepted()
        return None

    def check(self, name: str, value: Any) -> Any:
        """``value`` (as an ``int``/``float``), or ``ValueError("NAME must be ..., got V")``."""
        problem = self.problem(value)
        if problem is not None:
            raise ValueError(f"{name} {problem}, got {value!r}")
        if value is None:
            return None
        return int(value) if self.integer else float(value)


DEVICE_FORMS = "auto, cpu, cuda, cuda:N (a GPU's index) or another torch device (mps, xpu)"


def check_device(device: str) -> str:
    """``device`` if it names a device (``auto``: CUDA when there is a GPU, else the CPU; or
    anything ``torch.device`` reads, such as ``cpu``, ``cuda``, ``cuda:1``), else ValueError
    saying the accepted forms. Whether the device is present is asked where it is used."""
    if not isinstance(device, str):
        raise ValueError(f"device must be a string ({DEVICE_FORMS}), got {device!r}")
    if device == "auto":
        return device
    import torch  # only here: a config is made without torch elsewhere

    try:
        torch.device(device)
    except (RuntimeError, ValueError):
        raise ValueError(f"device must be {DEVICE_FORMS}; got {device!r}") from None
    return device


def _annotation_text(annotation: Any) -> str:
    """``"float | None"`` for the annotation (a string under ``from __future__ import
    annotations``, else a type)."""
    if isinstance(annotation, str):
        return annotation
    return getattr(annotation, "__name__", None) or str(annotation)


def field_bounds(f: dataclasses.Field) -> Bounds | None:
    """The :class:`Bounds` of a dataclass field made by :func:`option`, or ``None`` when it
    declares none (whole numbers for an ``int`` field, ``None`` allowed for ``X | None``)."""
    meta = f.metadata
    if "low" not in meta and "high" not in meta:
        return None
    parts = [p.strip() for p in _annotation_text(f.type).split("|")]
    return Bounds(
        low=meta.get("low"),
        high=meta.get("high"),
        low_open=bool(meta.get("low_open")),
        high_open=bool(meta.get("high_open")),
        integer=[p for p in parts if p not in ("None", "NoneType")] == ["int"],
        optional="None" in parts or "NoneType" in parts,
    )


class ConfigDict:
    """``to_dict``/``from_dict`` for the config dataclasses (models' and training's), so that
    configs round-trip through JSON and checkpoints; unknown keys are an error, not dropped.
    :meth:`check_bounds` checks every field against the bounds its :func:`option` declares."""

    def check_bounds(self) -> None:
        """ValueError for the first field outside its bounds (``lr must be > 0 and finite,
        got -1.0``); bounded values are stored as plain ``int``/``float`` (a numpy integer
        from the data becomes an ``int``, so the config stays JSON)."""
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            bounds = field_bounds(f)
            if bounds is not None:
                value = bounds.check(f.name, getattr(self, f.name))
                object.__setattr__(self, f.name, value)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Any:
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields: {', '.join(unknown)}")
        return cls(**values)


class UnitsConfig(ConfigDict):
    """A model config holding the model's stroke units: ``scale_factor`` (pixels per model
    unit: the std of the training offsets; ``None`` while unknown) and ``classes`` (the class
    names, in the order of the labels). Each model config declares the two fields itself, last
    (so that they never shift the others), with :data:`SCALE_FACTOR_HELP` and
    :data:`CLASSES_HELP`, and calls :meth:`_check_units` in ``__post_init__``."""

    scale_factor: float | None
    classes: list[str]
    #: Named configurations: name -> the field values it sets (:meth:`preset`).
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> Self:
        """The configuration :data:`PRESETS` names ``name``, with ``overrides``; ValueError for
        a name it does not know."""
        if name not in cls.PRESETS:
            known = ", ".join(cls.PRESETS) or "none: this model has no presets"
            raise ValueError(f"unknown preset {name!r}; expected one of {known}")
        return cls(**{**cls.PRESETS[name], **overrides})

    def _check_units(self) -> None:
        if self.scale_factor is not None:
            problem = scale_factor_problem(self.scale_factor)
            if problem is not None:
                raise ValueError(f"scale_factor {problem}, got {self.scale_factor!r}")
            self.scale_factor = float(self.scale_factor)
        if isinstance(self.classes, str):
            raise ValueError(f"classes must be a list of names, got the string {self.classes!r}")
        self.classes = [str(c) for c in self.classes]
