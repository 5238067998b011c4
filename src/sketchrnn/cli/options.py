"""Command-line options made from the library's own config dataclasses and signatures.

Each default lives once, in the library: a config dataclass field (``SketchRNNConfig``,
``TrainConfig``, ...) becomes an option by :func:`add_config_options`; a function's keyword
default is read by :func:`defaults_of`. Nothing here imports torch: the parsers of commands
that need the library are filled in only when that command is parsed or its help is shown
(:class:`LazyParser`), so ``sketchrnn --help`` stays instant.

Config options are stored only when the user gives them (argparse default ``SUPPRESS``), so
``--preset`` plus explicit options work: :func:`given_options` returns just what was typed,
to be passed as overrides to ``Config.preset(name, **given)`` or ``TrainConfig.for_model``.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "HelpFormatter",
    "LazyParser",
    "add_command",
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
) -> list[str]:
    """Add one option per field of the dataclass ``config_class``; returns the field names.

    The option is ``--field-name``; its type comes from the annotation (``int``, ``float``,
    ``str``, ``X | None`` taking ``none``, ``bool`` as ``--x/--no-x``, ``Literal[...]`` as
    choices); its help from ``field.metadata["help"]``, followed by the default: the field's,
    or ``defaults[name]`` where the caller knows better (a model's training defaults, a
    preset's values), or ``notes[name]`` as text. ``field.metadata["choices"]`` restricts a
    string; ``aliases[name]`` are more flags for it. Fields with ``metadata["cli"] is False``,
    in ``exclude``, of a type a command line cannot spell (lists, dicts) or whose flag is
    already an option of ``parser`` are left out. The parsed value is stored as
    ``dest.field_name`` only when given: read it back with :func:`given_options`.
    """
    skip = set(exclude)
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
            kw["type"] = _converter(kind, optional)
            kw["metavar"] = _METAVARS.get(kind, "VALUE") + ("|none" if optional else "")
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
