"""``sketchrnn runtime install [DIR]``: the browser runtime's files (onnxruntime-web), fetched
once into the cache and verified (:mod:`sketchrnn.io.js_runtime`); with ``DIR``, copied there
beside ``sketchrnn.js`` for a page of your own."""

from __future__ import annotations

import argparse

from sketchrnn.cli.options import add_command


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser(
        "runtime", help="the JavaScript runtime's files for web pages (onnxruntime-web)"
    )
    sub = group.add_subparsers(dest="runtime_command", metavar="SUBCOMMAND")
    add_command(
        sub,
        "install",
        _install,
        _install_args,
        help="fetch onnxruntime-web once (verified against package-lock.json) into the cache; "
        "with DIR, copy it and sketchrnn.js there",
    )


def _install_args(q: argparse.ArgumentParser) -> None:
    from sketchrnn.io.js_runtime import ORT_WEB_TARBALL

    q.add_argument(
        "to",
        nargs="?",
        metavar="DIR",
        help="a folder for your page: sketchrnn.js and the runtime's two files are copied there",
    )
    q.add_argument(
        "--url",
        default=None,
        help=f"where to fetch the npm tarball from (default: $SKETCHRNN_RUNTIME_URL, else "
        f"{ORT_WEB_TARBALL})",
    )


def _install(args: argparse.Namespace) -> None:
    from sketchrnn.io.js_runtime import RUNTIME_FILES, copy_runtime, install_runtime

    folder = install_runtime(args.url)
    print(f"onnxruntime-web: {', '.join(RUNTIME_FILES)} in {folder}")
    if args.to is not None:
        for path in copy_runtime(args.to, folder):
            print(f"wrote {path}")
