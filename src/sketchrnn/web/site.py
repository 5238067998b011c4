"""``sketchrnn export-site DIR [MODEL...]``: the page as a static site, for any static host
(GitHub Pages, ``python -m http.server``): no sketchrnn process runs behind it.

::

    DIR/index.html          the page (the same file ``sketchrnn serve`` serves at /)
    DIR/static/             its modules and style, sketchrnn.js, onnxruntime-web's two files
    DIR/models.json         the listing the page reads where there is no API
    DIR/models/NAME/        each model in portable form (manifest.json and its graphs)

The page finds out by itself that it is on a static site (``api/models`` does not answer,
``models.json`` does); everything draws in the visitor's browser as it does when served, but
there is no collection to fetch from. Models are exported through the same cache as the
server's (:class:`~sketchrnn.web.portable_cache.PortableStore`), so a second site of the same
models costs no export. The folder is written beside ``DIR`` under a temporary name and renamed
at the end: a failure leaves nothing half-written, and ``DIR`` is only replaced (``overwrite``)
when it is a site this command wrote.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from sketchrnn.io.files import SketchFileError, replace_folder
from sketchrnn.web.listing import STATIC_DIR, model_entry, page_constants
from sketchrnn.web.portable_cache import PortableStore, PortableUnavailable

__all__ = ["export_site", "SiteError", "SITE_MARKER"]

#: The listing a site holds; with index.html, it marks a folder this command wrote.
SITE_MARKER = "models.json"


class SiteError(SketchFileError):
    """A site that cannot be written: the message names the folder or model and why."""


def _check_out(out: Path, overwrite: bool) -> None:
    if not out.exists() and not out.is_symlink():
        return
    if not overwrite:
        raise SiteError(
            out, "exists; name a new folder (or --overwrite a site made by export-site)"
        )
    if out.is_symlink() or not (out / SITE_MARKER).is_file() or not (out / "index.html").is_file():
        raise SiteError(out, "exists and is not a site made by sketchrnn export-site: not replaced")


def export_site(
    out: str | os.PathLike,
    model_specs: Sequence[str] | None = None,
    *,
    overwrite: bool = False,
    runtime: str | os.PathLike | None = None,
    store: PortableStore | None = None,
    log: TextIO | None = None,
) -> Path:
    """Write the static site ``out`` with the models of ``model_specs`` (as ``sketchrnn serve``
    takes them; default :func:`sketchrnn.web.server.default_models`). ``runtime`` is the
    folder of onnxruntime-web's files (default: installed into the cache first, as
    ``sketchrnn runtime install`` does). Raises :class:`SiteError` for a model without a
    portable form or an ``out`` that cannot be written; nothing is left half-written."""
    from sketchrnn.io.js_runtime import RUNTIME_FILES, install_runtime
    from sketchrnn.web.server import default_models, load_models

    out = Path(out)
    _check_out(out, overwrite)
    runtime_dir = Path(runtime) if runtime is not None else install_runtime(progress=False)
    missing = [n for n in RUNTIME_FILES if not (runtime_dir / n).is_file()]
    if missing:
        raise SiteError(runtime_dir, f"holds no {', '.join(missing)} (sketchrnn runtime install)")
    table = load_models(list(model_specs or default_models()), log=log)
    store = store or PortableStore()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp's folder is private; a site is for a web server to read
        entries: list[dict[str, Any]] = []
        for name, served in table.items():
            try:
                folder = store.export(served)
            except PortableUnavailable as e:
                raise SiteError(out, str(e)) from None
            target = tmp / "models" / name
            target.mkdir(parents=True)
            manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
            for file in ["manifest.json", *(g["file"] for g in manifest["graphs"].values())]:
                shutil.copyfile(folder / file, target / file)
            entries.append(model_entry(served, f"models/{name}/", target))
            if log is not None:
                print(f"  models/{name}/: {entries[-1]['portable_bytes'] / 1e6:.1f} MB", file=log)
        static = tmp / "static"
        static.mkdir()
        for path in sorted(STATIC_DIR.iterdir()):
            if path.is_file() and path.name != "index.html":
                shutil.copyfile(path, static / path.name)
        for name in RUNTIME_FILES:
            shutil.copyfile(runtime_dir / name, static / name)
        shutil.copyfile(STATIC_DIR / "index.html", tmp / "index.html")
        listing = {
            "models": entries,
            "runtime": {"ready": True, "message": None},
            "page": page_constants(),
        }
        (tmp / SITE_MARKER).write_text(json.dumps(listing, indent=1) + "\n", encoding="utf-8")
        replace_folder(tmp, out, replace=out.exists())
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
