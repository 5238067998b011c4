"""A small validator of JSON values against a declared schema, with one-line messages.

:class:`Spec` subclasses declare what a field holds (:class:`Whole`, :class:`Number`,
:class:`Text`, :class:`Record`, ...); ``spec.check(value, field)`` raises :class:`Wrong`
naming the field (``sources[3].count``) and what is wrong with it, on one line, whatever the
value (a huge string, a nested list). :mod:`~sketchrnn.store.manifest` declares the store's
manifest with them.

Written here, not taken from a JSON Schema library: that would be a new dependency for about
two hundred lines, and its messages run over several lines and quote whole values.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

__all__ = [
    "Wrong",
    "Spec",
    "Whole",
    "Number",
    "Text",
    "Flag",
    "Hex",
    "Equal",
    "Maybe",
    "Items",
    "Row",
    "Record",
    "Mapping",
    "shown",
    "MAX_COUNT",
]

MAX_COUNT = 1 << 62  # sketches, points, bytes: int64 offsets


class Wrong(Exception):
    """A field that is not what the schema says: ``field`` (``sources[3].count``) and what."""

    def __init__(self, field: str, what: str):
        super().__init__(f"{field}: {what}")
        self.field, self.what = field, what


def shown(value: Any) -> str:
    """A field's value for a message: short, one line, whatever it holds."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value[:40] + ("..." if len(value) > 40 else ""))
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "an object"
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} digits)"


class Spec:
    """One field's declared type and range; :meth:`check` raises :class:`Wrong`."""

    def check(self, value: Any, field: str) -> None:
        raise NotImplementedError


class Whole(Spec):
    """A whole number (not a bool, not a float) in ``[low, high]``."""

    def __init__(self, low: int | None = 0, high: int | None = MAX_COUNT):
        self.low, self.high = low, high

    def check(self, value: Any, field: str) -> None:
        ok = isinstance(value, int) and not isinstance(value, bool)
        if ok and (self.low is None or value >= self.low):
            ok = self.high is None or value <= self.high
        if not ok:
            bounds = "" if self.low is None else f" >= {self.low:,}"
            if self.high is not None and self.high < MAX_COUNT:
                bounds += f" and <= {self.high:,}"
            raise Wrong(field, f"must be a whole number{bounds}, got {shown(value)}")


class Number(Spec):
    """A finite number (a whole one or not; not a bool) ``>= low`` (``> low`` if ``open``)."""

    def __init__(self, low: float | None = None, high: float | None = None, *, open_low=False):
        self.low, self.high, self.open_low = low, high, open_low

    def check(self, value: Any, field: str) -> None:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        ok = ok and math.isfinite(value)
        if ok and self.low is not None:
            ok = value > self.low if self.open_low else value >= self.low
        if ok and self.high is not None:
            ok = value <= self.high
        if not ok:
            bounds = ""
            if self.low is not None:
                bounds += f" {'>' if self.open_low else '>='} {self.low:g}"
            if self.high is not None:
                bounds += f"{' and' if bounds else ''} <= {self.high:g}"
            raise Wrong(field, f"must be a finite number{bounds}, got {shown(value)}")


class Text(Spec):
    """A string; non-empty if asked; one of ``choices`` if given."""

    def __init__(self, choices: Sequence[str] | None = None, *, non_empty: bool = False):
        self.choices, self.non_empty = choices, non_empty

    def check(self, value: Any, field: str) -> None:
        if not isinstance(value, str) or (self.non_empty and not value):
            kind = "a non-empty string" if self.non_empty else "a string"
            raise Wrong(field, f"must be {kind}, got {shown(value)}")
        if self.choices is not None and value not in self.choices:
            raise Wrong(field, f"must be one of {', '.join(self.choices)}, got {shown(value)}")


class Flag(Spec):
    def check(self, value: Any, field: str) -> None:
        if not isinstance(value, bool):
            raise Wrong(field, f"must be true or false, got {shown(value)}")


class Hex(Spec):
    """A digest: exactly ``chars`` lowercase hex digits."""

    def __init__(self, chars: int):
        self.chars = chars

    def check(self, value: Any, field: str) -> None:
        if not (
            isinstance(value, str)
            and len(value) == self.chars
            and all(c in "0123456789abcdef" for c in value)
        ):
            raise Wrong(field, f"must be {self.chars} hex digits, got {shown(value)}")


class Equal(Spec):
    """Exactly ``expected`` (a constant of the format)."""

    def __init__(self, expected: Any):
        self.expected = expected

    def check(self, value: Any, field: str) -> None:
        if value != self.expected or type(value) is not type(self.expected):
            raise Wrong(field, f"must be {json.dumps(self.expected)}, got {shown(value)}")


class Maybe(Spec):
    """``null``, or what ``inner`` says."""

    def __init__(self, inner: Spec):
        self.inner = inner

    def check(self, value: Any, field: str) -> None:
        if value is not None:
            self.inner.check(value, field)


class Items(Spec):
    """A list of ``item``; at least ``min_items``; ``distinct``/``ascending`` if asked."""

    def __init__(self, item: Spec, *, min_items=0, distinct=False, ascending=False):
        self.item, self.min_items = item, min_items
        self.distinct, self.ascending = distinct, ascending

    def check(self, value: Any, field: str) -> None:
        if not isinstance(value, list):
            raise Wrong(field, f"must be a list, got {shown(value)}")
        if len(value) < self.min_items:
            raise Wrong(field, f"must hold at least {self.min_items} items, got {len(value)}")
        for i, item in enumerate(value):
            self.item.check(item, f"{field}[{i}]")
        if self.distinct and len(set(value)) != len(value):
            twice = next(v for v, k in Counter(value).items() if k > 1)
            raise Wrong(field, f"holds {shown(twice)} twice (items must be distinct)")
        if self.ascending and value != sorted(value):
            at = next(i for i in range(1, len(value)) if value[i] < value[i - 1])
            raise Wrong(
                field,
                f"must be in ascending order: item {at} ({shown(value[at])}) sorts before "
                f"item {at - 1} ({shown(value[at - 1])})",
            )


class Row(Spec):
    """A list of exactly ``len(items)`` values, each as its spec says."""

    def __init__(self, *items: Spec):
        self.items = items

    def check(self, value: Any, field: str) -> None:
        if not isinstance(value, list) or len(value) != len(self.items):
            raise Wrong(field, f"must be a list of {len(self.items)} values, got {shown(value)}")
        for i, (item, spec) in enumerate(zip(value, self.items, strict=True)):
            spec.check(item, f"{field}[{i}]")


class Record(Spec):
    """An object with the declared ``fields``; those in ``optional`` may be absent; other keys
    are refused unless ``extra``."""

    def __init__(self, fields: dict[str, Spec], *, optional=(), extra: bool = False):
        self.fields, self.optional, self.extra = fields, frozenset(optional), extra

    def check(self, value: Any, field: str) -> None:
        if not isinstance(value, dict):
            raise Wrong(field, f"must be an object, got {shown(value)}")
        prefix = f"{field}." if field else ""
        for name, spec in self.fields.items():
            if name in value:
                spec.check(value[name], prefix + name)
            elif name not in self.optional:
                raise Wrong(field or "manifest", f"has no {name!r}")
        if not self.extra:
            unknown = [k for k in value if k not in self.fields]
            if unknown:
                raise Wrong(prefix + unknown[0][:40], "unknown field")


class Mapping(Spec):
    """An object of any keys whose values are all as ``value`` says."""

    def __init__(self, value: Spec):
        self.value = value

    def check(self, value: Any, field: str) -> None:
        if not isinstance(value, dict):
            raise Wrong(field, f"must be an object, got {shown(value)}")
        for key, item in value.items():
            self.value.check(item, f"{field}.{key[:40]}")
