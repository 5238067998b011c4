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
    from sketchrnn.web.server import serve

    defaults = defaults_of(serve)
    q.add_argument(
        "models",
        nargs="*",
        metavar="MODEL",
        help="model folders, run folders or magenta.js .json files, optionally NAME=PATH "
        "(default: the built-in models and the models in the cache)",
    )
    q.add_argument("--host", default=defaults["host"], help="address to bind (default loopback)")
    q.add_argument("--port", type=bounded(int, low=0, high=65535), default=defaults["port"])
    q.add_argument(
        "--workers",
        type=bounded(int, low=1),
        default=defaults["workers"],
        help="threads that draw (default 2)",
    )


def _serve(args: argparse.Namespace) -> None:
    try:
        from sketchrnn.web.server import serve
    except ImportError as err:  # the web extra is optional
        from sketchrnn.cli.common import CLIError

        raise CLIError(
            f"the web server needs the web extra: pip install 'sketchrnn[web]' ({err})"
        ) from None
    serve(args.models, host=args.host, port=args.port, workers=args.workers)


__all__ = ["register"]
