"""The ``sketchrnn`` command. Thin: parses arguments and calls the library.

One module per command group, each registering its subcommands next to their handlers:
:mod:`~sketchrnn.cli.data` (``data ...``), :mod:`~sketchrnn.cli.draw` (``sample``,
``reconstruct``, ``complete``, ``interpolate``, ``analogy``), :mod:`~sketchrnn.cli.demo`,
:mod:`~sketchrnn.cli.train`, :mod:`~sketchrnn.cli.evaluate`, :mod:`~sketchrnn.cli.judge`,
:mod:`~sketchrnn.cli.fewshot`,
:mod:`~sketchrnn.cli.embed`, :mod:`~sketchrnn.cli.export` (``export``) and
:mod:`~sketchrnn.cli.models` (``models list``, ``models download``),
:mod:`~sketchrnn.cli.runtime` (``runtime install``); :mod:`~sketchrnn.cli.serve` starts the web
page and :mod:`~sketchrnn.cli.site` (``export-site``) writes it as a static site. Options
come from the library's config dataclasses and function defaults
(:mod:`~sketchrnn.cli.options`), so each default lives once.

Library modules are imported inside each command (and each command's options are built when
it is parsed), so that ``sketchrnn --help`` is instant and commands that need no torch do not
load it.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
import traceback
from collections.abc import Sequence

from sketchrnn.cli import (
    data,
    demo,
    draw,
    embed,
    evaluate,
    export,
    fewshot,
    judge,
    models,
    runtime,
    serve,
    site,
    train,
)
from sketchrnn.cli.common import CLIError
from sketchrnn.cli.options import LazyParser

# In the order `sketchrnn --help` lists them.
COMMAND_GROUPS = (
    data, draw, demo, serve, site, train, evaluate, judge, fewshot, embed, export, models,
    runtime,
)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    from sketchrnn import __version__

    p = LazyParser(
        prog="sketchrnn",
        description="Generative models of vector sketches (sketch-rnn, SketchEmbedNet).",
    )
    p.add_argument("--version", action="version", version=f"sketchrnn {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = train.rewrite_model_option(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        # A group without its subcommand (or no command at all): its help, as a usage error.
        _parser_of(parser, argv).print_help(sys.stderr)
        return 2
    try:
        func(args)
    except KeyboardInterrupt:
        print("sketchrnn: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # user-facing errors of this package become one line
        if _is_user_error(e):
            print(f"sketchrnn: error: {_one_line(e)}", file=sys.stderr)
            return 2
        raise
    return 0


def _one_line(e: BaseException) -> str:
    """The error's message on one line; a file-system error as ``FILE: reason``
    (``out.png: permission denied``), not ``[Errno 13] Permission denied: 'out.png'``."""
    text = str(e)
    if isinstance(e, OSError) and e.strerror and e.filename is not None:
        reason = e.strerror[:1].lower() + e.strerror[1:]
        text = f"{os.fsdecode(e.filename)}: {reason}"
        if e.filename2 is not None:
            text = f"{os.fsdecode(e.filename)} -> {os.fsdecode(e.filename2)}: {reason}"
    return " ".join(text.split()) if "\n" in text or "\r" in text else text


def _parser_of(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.ArgumentParser:
    """The (sub)parser that ``argv``'s leading command words name."""
    for word in argv:
        choices = next(
            (a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)),
            None,
        )
        if not choices or word not in choices:
            break
        parser = choices[word]
    return parser


# File-system errors that describe the machine, not a bug: one line wherever they are raised.
_ENVIRONMENT_ERRNOS = frozenset(
    getattr(errno, name)
    for name in (
        "EACCES", "EPERM", "ENOSPC", "EROFS", "EDQUOT", "EFBIG", "EEXIST", "ENOTDIR",
        "EISDIR", "ENAMETOOLONG", "ENOENT", "EMFILE",
    )
    if hasattr(errno, name)
)  # fmt: skip


def _is_user_error(e: BaseException) -> bool:
    """Errors that describe bad input or environment, not bugs: shown without a traceback.

    Those are the package's own error classes (each names the file and what is wrong),
    ``ValueError``/``OSError`` raised by the package's own code (its argument checks), as
    opposed to ones escaping from inside a library, and the file system's refusals (permission
    denied, no space left, read-only, ...) wherever they come from. ``SKETCHRNN_DEBUG=1``
    shows the traceback.
    """
    if os.environ.get("SKETCHRNN_DEBUG"):
        return False
    if isinstance(e, CLIError | FileNotFoundError | PermissionError | IsADirectoryError):
        return True
    if isinstance(e, OSError) and e.errno in _ENVIRONMENT_ERRNOS:
        return True  # the file system's answer (disk full, read-only), wherever it came from
    if type(e).__module__.startswith("sketchrnn."):
        return True
    if isinstance(e, ValueError | OSError):
        frames = traceback.extract_tb(e.__traceback__)
        package_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        return bool(frames) and os.path.abspath(frames[-1].filename).startswith(package_dir)
    return False


__all__ = ["main", "build_parser", "CLIError"]
