"""``sketchrnn export-site DIR [MODEL...]``: the draw-together page as a static site
(:mod:`sketchrnn.web.site`): the page, the runtime and the models, for any static host."""

from __future__ import annotations

import argparse
import sys

from sketchrnn.cli.options import add_command


def register(subparsers: argparse._SubParsersAction) -> None:
    add_command(
        subparsers,
        "export-site",
        _export_site,
        _arguments,
        help="write the draw-together page, the runtime and models as a static site",
    )


def _arguments(q: argparse.ArgumentParser) -> None:
    q.add_argument("out", metavar="DIR", help="a new folder: the site (index.html at its root)")
    q.add_argument(
        "models",
        nargs="*",
        metavar="MODEL",
        help="model folders, run folders, magenta.js .json files or official model names, "
        "optionally NAME=PATH, as `sketchrnn serve` takes them (default: the built-in models "
        "and the models in the cache)",
    )
    q.add_argument(
        "--overwrite", action="store_true", help="replace DIR if it is a site made by export-site"
    )


def _export_site(args: argparse.Namespace) -> None:
    from sketchrnn.web.site import export_site

    print(f"sketchrnn export-site: writing {args.out}")
    out = export_site(args.out, args.models, overwrite=args.overwrite, log=sys.stdout)
    print(f"wrote {out}: serve it with any static web server, e.g. python -m http.server -d {out}")


__all__ = ["register"]
