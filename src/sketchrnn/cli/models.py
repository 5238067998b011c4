"""``sketchrnn models list`` / ``models download``: the official sketch-rnn collection by name
and the package's built-in models (:mod:`sketchrnn.models.zoo`)."""

from __future__ import annotations

import argparse

from sketchrnn.cli.options import add_command


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser(
        "models", help="list and download models by name (the official collection, built-ins)"
    )
    sub = group.add_subparsers(dest="models_command", metavar="SUBCOMMAND")
    add_command(
        sub,
        "list",
        _list,
        _list_args,
        help="every official model (kinds gen, vae), what is cached, the built-in models",
    )
    add_command(
        sub,
        "download",
        _download,
        _download_args,
        help="download official models into the cache folder",
    )


def _list_args(q: argparse.ArgumentParser) -> None:
    q.add_argument("--cached", action="store_true", help="only the models already downloaded")


def _download_args(q: argparse.ArgumentParser) -> None:
    q.add_argument("names", nargs="+", metavar="NAME", help="model names, e.g. cat, cat.vae")
    q.add_argument(
        "--kind",
        choices=("gen", "vae", "both"),
        default=None,
        help="which files of a bare NAME (default gen; both: all the collection has)",
    )


def _list(args: argparse.Namespace) -> None:
    from sketchrnn.models import zoo

    files = zoo.cached_model_files()  # path -> what the file really is
    cached = zoo.cached_models()
    folder = zoo.models_cache_dir()
    builtins = sorted(zoo.BUILTIN_MODELS)
    print(f"built-in models ({len(builtins)}):")
    for name in builtins:
        print(f"  {name:24s} {zoo.BUILTIN_MODELS[name]}")
    if not builtins:
        print("  (none)")
    # Files whose name says another kind than they are (left by an older version, or put there
    # by hand): shown as what they are.
    wrong = {p: found for p, found in files.items() if not p.name.endswith(f".{found}.json")}
    wrong_names = {p.name.split(".")[0] for p in wrong}
    shown = [n for n in zoo.OFFICIAL_MODELS if not args.cached or n in cached or n in wrong_names]
    print(
        f"official sketch-rnn models ({len(shown)} of {len(zoo.OFFICIAL_MODELS)}; "
        f"{len(cached)} cached in {folder}):"
    )
    for name in shown:
        kinds = ",".join(zoo.model_kinds(name))
        have = ",".join(cached.get(name, ()))
        print(f"  {name:24s} {kinds:8s} {'cached: ' + have if have else ''}".rstrip())
        for kind in zoo.model_kinds(name):
            path = folder / f"{name}.{kind}.json"
            if path in wrong:
                what = {"gen": "a decoder-only model", "vae": "a VAE"}.get(wrong[path] or "")
                print(
                    f"    {path.name} is {what or 'not a sketch-rnn model'}, so not counted as "
                    f"{kind} (`sketchrnn models download {name}.{kind}` replaces it)"
                )


def _download(args: argparse.Namespace) -> None:
    from sketchrnn.models import zoo

    wanted: list[tuple[str, str]] = []
    for spec in args.names:
        name, kind = zoo.parse_model_name(spec)
        if kind is not None and args.kind not in (None, kind, "both"):
            raise zoo.ModelNameError(f"{spec!r} names the {kind} model, but --kind {args.kind}")
        if kind is not None:
            kinds: tuple[str, ...] = (kind,)
        elif args.kind == "both":
            kinds = zoo.model_kinds(name)
        else:
            kinds = (args.kind or "gen",)
            zoo.parse_model_name(f"{name}.{kinds[0]}")
        wanted += [(name, k) for k in kinds if (name, k) not in wanted]
    for name, kind in wanted:
        path = zoo.download_model(name, kind)
        print(f"{name}.{kind}: {path}")


__all__ = ["register"]
