"""Command-line options made from the library's own config dataclasses and signatures.

Each default lives once, in the library: a config dataclass field (``SketchRNNConfig``,
``TrainConfig``, ...) becomes an option by :func:`add_config_options`; a function's keyword
default is read by :func:`defaults_of`. Nothing here imports torch: the parsers of commands
that need the library are filled in only when that command is parsed or its help is shown
(:class:`LazyParser`), so ``sketchrnn --help`` stays instant.

Config options are stored only when the user gives them (argparse default ``SUPPRESS``), so
``--preset`` plus explicit options work: :func:`given_options` returns just what was typed,
to be passed as overrides to ``Config.preset(name, **given)`` or ``TrainConfig.for_model``.

A value outside what an option accepts is refused as it is parsed, in one line that names the
option, what it accepts and the value (``--lr: must be in (0, 1], got -1``), never
replaced: a config field's bounds (``option(..., low=, high=)`` in
:mod:`sketchrnn.models.config`) become its checker, and :func:`bounded` makes one for any
other number option. Every number has both bounds (a test walks the parser to check); a
count of drawings is at most :data:`MAX_SKETCHES` unless ``--no-limit`` (:func:`add_count`).
An empty value (``--out ''``) is refused for every option and argument: as a path it would
mean the current folder.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import math
import re
import sys
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "HelpFormatter",
    "LazyParser",
    "OptionValueError",
    "add_command",
    "bounded",
    "add_count",
    "MAX_SKETCHES",
    "MAX_SKETCHES_NO_LIMIT",
    "seed_type",
    "temperature_type",
    "MAX_TEMPERATURE",
    "value_check",
    "add_config_options",
    "given_options",
    "defaults_of",
    "option_flag",
    "show",
]

Populate = Callable[[argparse.ArgumentParser], None]


class HelpFormatter(argparse.HelpFormatter):
    """Shows ``(default: X)`` after an option's help when it has a default worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            action.option_strings
            and "default" not in text
            and default not in (None, False, argparse.SUPPRESS)
            and action.nargs != 0
        ):
            text += " (default: %(default)s)" if text else "default: %(default)s"
        return text


class OptionValueError(argparse.ArgumentError):
    """A value an option does not accept: said in one line, ``--flag: what is wrong``, without
    the usage (which for ``train`` runs to dozens of lines and hides the message). A message
    that starts with the value typed reads ``--flag VALUE: reason``."""

    def __init__(self, action: argparse.Action, message: str, value: str = ""):
        super().__init__(action, message)
        self.value = value

    def __str__(self) -> str:
        if self.value and self.message.startswith(f"{self.value}: "):
            return f"{self.argument_name} {self.message}"
        return f"{self.argument_name}: {self.message}"


def value_check(func: Callable[[str], Any]) -> Callable[[str], Any]:
    """Mark ``func`` (an argparse ``type=``) as a value check: the
    ``argparse.ArgumentTypeError`` it raises becomes a one-line :class:`OptionValueError`."""
    func.value_check = True  # type: ignore[attr-defined]
    return func


_NEGATIVE_NUMBER = re.compile(
    r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^-(inf|infinity|nan)$", re.IGNORECASE
)


class LazyParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose arguments are added by ``populate(parser)`` on first use.

    A command's options may come from library modules that import torch; building them only
    when the command is parsed (or its help or usage shown) keeps the top-level help fast.
    Subparsers made by ``add_subparsers`` are of this class too and take ``populate=``.
    """

    def __init__(self, *args: Any, populate: Populate | None = None, **kwargs: Any):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        self._populate = populate
        # A value such as -1e-5, -inf or -nan is a (negative) number, not an option: argparse
        # knows only -1 and -1.5, and said "expected one argument" with the whole usage.
        self._negative_number_matcher = _NEGATIVE_NUMBER

    def populate(self) -> None:
        """Add the pending arguments now (idempotent)."""
        populate, self._populate = self._populate, None
        if populate is not None:
            populate(self)

    def parse_known_args(self, args=None, namespace=None):
        self.populate()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        self.populate()
        return super().format_help()

    def format_usage(self) -> str:
        self.populate()
        return super().format_usage()

    def _get_value(self, action: argparse.Action, arg_string: str) -> Any:
        # An empty path would silently mean the current folder (--out '' wrote a run there).
        if arg_string == "" and not isinstance(action, argparse._SubParsersAction):
            raise OptionValueError(action, "empty value; give one (for the current folder: .)")
        try:
            return super()._get_value(action, arg_string)
        except argparse.ArgumentError as err:
            if getattr(action.type, "value_check", False):
                raise OptionValueError(action, err.message, arg_string) from None
            raise

    def error(self, message: str):
        """Exit 2 with one line: the message, then where the usage is (``train``'s usage runs
        to dozens of lines and would bury it)."""
        err = sys.exc_info()[1]  # error() is called while argparse handles the ArgumentError
        if isinstance(err, OptionValueError):
            self.exit(2, f"{self.prog}: error: {err}\n")
        text = " ".join(message.split())
        self.exit(2, f"{self.prog}: error: {text} (see {self.prog} --help)\n")


def add_command(
    subparsers: argparse._SubParsersAction,
    name: str,
    handler: Callable[[argparse.Namespace], None],
    arguments: Populate | None = None,
    **kwargs: Any,
) -> argparse.ArgumentParser:
    """A subcommand ``name`` running ``handler(args)``, its arguments added by ``arguments``
    when it is first parsed (see :class:`LazyParser`). ``kwargs`` go to ``add_parser``
    (``help``, ``description``, ``aliases``)."""
    parser = subparsers.add_parser(name, populate=arguments, **kwargs)
    parser.set_defaults(func=handler)
    return parser


def defaults_of(func: Callable[..., Any]) -> dict[str, Any]:
    """The keyword defaults of ``func`` by parameter name (the library's defaults, so the
    command line restates none of them)."""
    return {
        name: p.default
        for name, p in inspect.signature(func).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def show(value: Any) -> str:
    """A default as a user types it: ``none``, ``0.5``, ``10000``, ``lstm``, ``on``/``off``."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple | list):
        return " ".join(show(v) for v in value)
    return str(value)


def option_flag(name: str) -> str:
    """``max_seq_len`` -> ``--max-seq-len``."""
    return "--" + name.replace("_", "-")


# ----------------------------------------------------------------------------- config options


def _converter(kind: type, optional: bool) -> Callable[[str], Any]:
    """``kind(text)``, or None for ``none`` when the field may be None; named after ``kind``
    so that argparse says ``invalid int value: 'x'``."""

    def convert(text: str) -> Any:
        if optional and text.strip().lower() == "none":
            return None
        return kind(text)

    convert.__name__ = kind.__name__
    return convert


def _or_none(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    """``convert``, with ``none`` read as None (a field that may be None)."""

    def or_none(text: str) -> Any:
        return None if text.strip().lower() == "none" else convert(text)

    or_none.__name__ = getattr(convert, "__name__", "value")
    if getattr(convert, "value_check", False):
        value_check(or_none)
    return or_none


def _scalar_type(annotation: Any) -> tuple[Any, bool]:
    """``int`` -> ``(int, False)``; ``float | None`` -> ``(float, True)``; a ``Literal`` is
    returned as it is; anything else (lists, dicts) -> ``(None, ...)``: not an option."""
    optional = False
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(members) < len(typing.get_args(annotation))
        if len(members) != 1:
            return None, optional
        annotation = members[0]
        origin = typing.get_origin(annotation)
    if origin is typing.Literal or annotation in (bool, int, float, str):
        return annotation, optional
    return None, optional


def bounded(
    kind: type,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    optional: bool = False,
) -> Callable[[str], Any]:
    """An argparse ``type=`` reading an ``int`` or ``float`` (``none`` too with ``optional``)
    and refusing one outside ``low``/``high`` (strict with ``low_open``/``high_open``; a float
    must be finite): ``--n: must be a whole number >= 1, got 0``."""
    from sketchrnn.models.config import Bounds

    return _bounds_checker(
        kind, Bounds(low, high, low_open, high_open, integer=kind is int, optional=optional)
    )


# Drawings one command makes unless --no-limit: a grid of 10,000 is already a 100x100 picture,
# and 100,000 ran for minutes. With --no-limit, at most MAX_SKETCHES_NO_LIMIT (they are all
# held in memory, as the grid is made of them).
MAX_SKETCHES = 10_000
MAX_SKETCHES_NO_LIMIT = 1_000_000


def add_count(
    q: argparse.ArgumentParser | argparse._ArgumentGroup, flag: str, default: int, help: str
) -> None:
    """A count of drawings (``--n``, ``--steps``, ``--per-model``): a whole number in [1,
    :data:`MAX_SKETCHES_NO_LIMIT`], at most :data:`MAX_SKETCHES` unless ``--no-limit`` (added
    here once per parser; :func:`sketchrnn.cli.common.check_limit` checks it when the command
    runs)."""
    count = bounded(int, low=1, high=MAX_SKETCHES_NO_LIMIT)
    q.add_argument(flag, type=count, default=default, help=help)
    if "--no-limit" not in getattr(q, "_option_string_actions", {}):
        q.add_argument(
            "--no-limit",
            action="store_true",
            help=f"make more than {MAX_SKETCHES:,} drawings in one command",
        )


# The largest tau (as the web page's Limits.max_temperature): beyond it the mixture's
# variances swamp the drawing (at tau 1e9 the offsets' spread is 30,000x the model's).
MAX_TEMPERATURE = 5.0


def temperature_type(optional: bool = False) -> Callable[[str], float]:
    """The ``type=`` of every temperature option: a float in [0, MAX_TEMPERATURE] (0 = greedy;
    ``none`` too with ``optional``)."""
    return bounded(float, low=0, high=MAX_TEMPERATURE, optional=optional)


def seed_type() -> Callable[[str], int]:
    """The ``type=`` of every ``--seed``: a whole number in [0, 2^32 - 1]."""
    from sketchrnn.models.config import MAX_SEED

    return bounded(int, low=0, high=MAX_SEED)


def _bounds_checker(kind: type, bounds: Any) -> Callable[[str], Any]:
    """``kind(text)`` checked against ``bounds`` (a :class:`~sketchrnn.models.config.Bounds`),
    as a :func:`value_check`."""

    def convert(text: str) -> Any:
        if bounds.optional and text.strip().lower() == "none":
            return None
        try:
            value = kind(text)
        except ValueError:
            value = text
        if isinstance(value, float) and math.isinf(value) and "inf" not in text.lower():
            value = text  # 1e400 overflowed to inf: not the infinity an option may take
        problem = bounds.problem(value)
        if problem is not None:
            raise argparse.ArgumentTypeError(f"{problem}, got {_shown_value(text)}")
        return value

    convert.__name__ = kind.__name__
    convert.bounds = bounds  # type: ignore[attr-defined]  # what the option accepts, for tests
    return value_check(convert)


def _shown_value(text: str, most: int = 40) -> str:
    """``text`` as an error message quotes it: at most ``most`` characters (a number of
    thousands of digits would bury the message)."""
    return text if len(text) <= most else f"{text[:most]}... ({len(text):,} characters)"


_METAVARS = {int: "INT", float: "FLOAT", str: "TEXT"}
_BUILTIN_NAMES = {"bool": bool, "int": int, "float": float, "str": str, "None": type(None)}


def _field_types(config_class: type) -> dict[str, Any]:
    """Resolved annotations of a dataclass (its module uses ``from __future__ import
    annotations``, so they are strings); a string of builtins alone is resolved by hand when
    ``get_type_hints`` cannot resolve the module's names."""
    try:
        return typing.get_type_hints(config_class)
    except Exception:  # an annotation naming something not importable here
        out: dict[str, Any] = {}
        for f in dataclasses.fields(config_class):
            if not isinstance(f.type, str):
                out[f.name] = f.type
                continue
            parts = [p.strip() for p in f.type.split("|")]
            if all(p in _BUILTIN_NAMES for p in parts):
                members = [_BUILTIN_NAMES[p] for p in parts]
                out[f.name] = members[0] if len(members) == 1 else typing.Union[tuple(members)]  # noqa: UP007
        return out


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def add_config_options(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    config_class: type,
    dest: str,
    *,
    exclude: Iterable[str] = (),
    defaults: Mapping[str, Any] | None = None,
    notes: Mapping[str, str] | None = None,
    aliases: Mapping[str, Sequence[str]] | None = None,
    types: Mapping[str, Callable[[str], Any]] | None = None,
) -> list[str]:
    """Add one option per field of the dataclass ``config_class``; returns the field names.

    The option is ``--field-name``; its type comes from the annotation (``int``, ``float``,
    ``str``, ``X | None`` taking ``none``, ``bool`` as ``--x/--no-x``, ``Literal[...]`` as
    choices); its help from ``field.metadata["help"]``, followed by the default: the field's,
    or ``defaults[name]`` where the caller knows better (a model's training defaults, a
    preset's values), or ``notes[name]`` as text. ``field.metadata["choices"]`` restricts a
    string; ``aliases[name]`` are more flags for it. A number with bounds (``low``/``high`` in
    its metadata) is checked against them as it is parsed; ``types[name]`` replaces a field's
    converter (a :func:`value_check` such as the ``--device`` check). Fields with
    ``metadata["cli"] is False``, in ``exclude``, of a type a command line cannot spell (lists,
    dicts) or whose flag is already an option of ``parser`` are left out. The parsed value is
    stored as ``dest.field_name`` only when given: read it back with :func:`given_options`.
    """
    from sketchrnn.models.config import field_bounds

    skip = set(exclude)
    types = types or {}
    defaults = defaults or {}
    notes = notes or {}
    aliases = aliases or {}
    existing = getattr(parser, "_option_string_actions", {})
    hints = _field_types(config_class)
    added: list[str] = []
    for f in dataclasses.fields(config_class):
        if not f.init or f.name in skip or f.metadata.get("cli") is False:
            continue
        kind, optional = _scalar_type(hints.get(f.name, f.type))
        if kind is None:
            continue
        flags = [option_flag(f.name), *aliases.get(f.name, ())]
        if any(flag in existing for flag in flags):
            continue
        default = defaults.get(f.name, _field_default(f))
        text = str(f.metadata.get("help", "")).replace("%", "%%")
        shown = notes.get(f.name) or f"default: {show(default)}"
        kw: dict[str, Any] = {
            "dest": f"{dest}.{f.name}",
            "default": argparse.SUPPRESS,
            "help": f"{text} ({shown})" if text else shown,
        }
        allowed = f.metadata.get("choices")
        if kind is bool:
            kw["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(kind) is typing.Literal:
            allowed = list(typing.get_args(kind))
            kw["type"] = _converter(type(allowed[0]), optional)
        else:
            bounds = field_bounds(f) if kind in (int, float) else None
            kw["type"] = (
                _converter(kind, optional) if bounds is None else _bounds_checker(kind, bounds)
            )
            kw["metavar"] = _METAVARS.get(kind, "VALUE") + ("|none" if optional else "")
        if f.name in types:
            kw["type"] = _or_none(types[f.name]) if optional else types[f.name]
        if allowed and kind is not bool:
            kw["choices"] = [*allowed, *([None] if optional else [])]
            kw.pop("metavar", None)
            kw["metavar"] = "{" + ",".join(show(a) for a in kw["choices"]) + "}"
        parser.add_argument(*flags, **kw)
        added.append(f.name)
    return added


def given_options(args: argparse.Namespace, dest: str) -> dict[str, Any]:
    """The options stored under ``dest`` by :func:`add_config_options` that the user gave:
    ``{field_name: value}``, ready to override a preset or the defaults."""
    prefix = dest + "."
    return {k[len(prefix) :]: v for k, v in vars(args).items() if k.startswith(prefix)}
