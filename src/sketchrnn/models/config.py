"""What every config dataclass shares (the models' and training's): JSON round trips, one help
line per field, and the stroke units a model carries.

Each field says what it is in its metadata, so that the command line can offer it as an option
with its name, type, default and help, each written once, here::

    batch_size: int = option(100, "sketches per optimizer step")
    classes: list[str] = option(factory=list, help="class names", cli=False)

``metadata["help"]`` is the help line; ``metadata["cli"] is False`` marks a field that is not a
command-line option (it comes from the data, or from another option); ``metadata["choices"]``
lists the values a field accepts, where it is one of a few.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["ConfigDict", "UnitsConfig", "option", "SCALE_FACTOR_HELP", "CLASSES_HELP"]

SCALE_FACTOR_HELP = "pixels per model unit: the std of the training offsets (set from the data)"
CLASSES_HELP = "class names, in the order of the data's labels (set from the data)"


def option(
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    cli: bool = True,
    choices: Sequence[Any] | None = None,
    factory: Callable[[], Any] | None = None,
) -> Any:
    """A dataclass field with its help line (and ``cli``, ``choices``) in its metadata;
    ``factory`` for a mutable default (a list)."""
    metadata: dict[str, Any] = {"help": help}
    if not cli:
        metadata["cli"] = False
    if choices is not None:
        metadata["choices"] = tuple(choices)
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


class ConfigDict:
    """``to_dict``/``from_dict`` for the config dataclasses (models' and training's), so that
    configs round-trip through JSON and checkpoints; unknown keys are an error, not dropped."""

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

    def _check_units(self) -> None:
        if self.scale_factor is not None:
            if isinstance(self.scale_factor, bool):
                raise ValueError(f"scale_factor must be a number, got {self.scale_factor!r}")
            factor = float(self.scale_factor)
            if not math.isfinite(factor) or factor <= 0:
                raise ValueError(
                    f"scale_factor must be a finite number > 0 (pixels per model unit), "
                    f"got {self.scale_factor!r}"
                )
            self.scale_factor = factor
        if isinstance(self.classes, str):
            raise ValueError(f"classes must be a list of names, got the string {self.classes!r}")
        self.classes = [str(c) for c in self.classes]
