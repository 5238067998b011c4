"""``sketchrnn serve``: the draw-together page and its HTTP API (:mod:`sketchrnn.web`)."""

from __future__ import annotations

import argparse

from sketchrnn.cli.options import add_command, bounded, defaults_of


def register(subparsers: argparse._SubParsersAction) -> None:
    add_command(
        subparsers,
        "serve",
        _serve,
        _arguments,
        help="a local web page where you draw and the model draws with you",
    )


def _arguments(q: argparse.ArgumentParser) -> None:
    from sketchrnn.web.server import MAX_WORKERS, serve

    defaults = defaults_of(serve)
    q.add_argument(
        "models",
        nargs="*",
        metavar="MODEL",
        help="model folders, run folders or magenta.js .json files, optionally NAME=PATH "
        "(default: the built-in models and the models in the cache)",
    )
    q.add_argument("--host", default=defaults["host"], help="address to bind (default loopback)")
    q.add_argument(
        "--port",
        type=bounded(int, low=0, high=65535),
        default=defaults["port"],
        help=f"port to listen on (default {defaults['port']}; 0: a free one, printed)",
    )
    q.add_argument(
        "--allow-host",
        dest="allow_hosts",
        action="append",
        default=[],
        metavar="NAME",
        help="a name (or address) visitors may reach this server by, besides localhost and "
        "127.0.0.1 (repeatable; '*' allows any: only behind a proxy that checks them)",
    )
    q.add_argument(
        "--workers",
        type=bounded(int, low=1, high=MAX_WORKERS),
        default=defaults["workers"],
        help=f"threads that draw (default {defaults['workers']}, at most {MAX_WORKERS})",
    )


def _serve(args: argparse.Namespace) -> None:
    from sketchrnn.cli.common import CLIError
    from sketchrnn.web.server import require_web_extra, serve

    try:
        require_web_extra()  # the web extra is optional
    except ImportError as err:
        raise CLIError(str(err)) from None
    serve(
        args.models,
        host=args.host,
        port=args.port,
        allow_hosts=args.allow_hosts,
        workers=args.workers,
    )


__all__ = ["register"]
