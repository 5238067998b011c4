"""The browser runtime's own files: onnxruntime-web, fetched once from npm and verified.

``sketchrnn.js`` (in the package, ``web/static``) runs on onnxruntime-web in a browser. Its two
files (:data:`RUNTIME_FILES`: the ES module and its WebAssembly, about 14 MB) are not in the
wheel: they are another project's binaries, larger than all the built-in models together, and
only pages need them. ``sketchrnn runtime install`` fetches the npm package's tarball once
(:data:`ORT_WEB_TARBALL`, the URL ``package-lock.json`` resolves it to; ``--url`` or
``$SKETCHRNN_RUNTIME_URL`` for a mirror), checks it against the lock's SHA-512
:data:`ORT_WEB_INTEGRITY` (a test keeps the two equal), and keeps the two files in the cache
folder (:func:`runtime_cache_dir`); from then on nothing is fetched. With a folder it also
copies them there, beside ``sketchrnn.js``: everything a page needs to draw with an exported
model (docs/portable-models.md, "Use a model in your own page").
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
from importlib import resources
from pathlib import Path

from sketchrnn.io.download import fetch_file
from sketchrnn.io.files import replace_folder

__all__ = [
    "ORT_WEB_VERSION",
    "ORT_WEB_INTEGRITY",
    "ORT_WEB_TARBALL",
    "RUNTIME_FILES",
    "SKETCHRNN_JS",
    "RuntimeFilesError",
    "runtime_cache_dir",
    "runtime_url",
    "installed_runtime",
    "install_runtime",
    "copy_runtime",
    "sketchrnn_js_path",
]

ORT_WEB_VERSION = "1.30.0"
# package-lock.json's "integrity" of onnxruntime-web (tests/js/test_runtime_install.py).
ORT_WEB_INTEGRITY = (
    "sha512-q0y+JrrtukXSzsBWEMccVfqX25LRmosXHF+CaRJmg8pZClzcV7svNc4r"
    "KY3jL02Vb7QmRMDs1SigqR4CXAfKYQ=="
)
ORT_WEB_TARBALL = (
    f"https://registry.npmjs.org/onnxruntime-web/-/onnxruntime-web-{ORT_WEB_VERSION}.tgz"
)
# What sketchrnn.js imports in a browser (ORT_WEB_FILE there) and what that module loads: the
# single-threaded-capable CPU (WebAssembly) build, the only backend the runtime uses.
RUNTIME_FILES = ("ort.wasm.bundle.min.mjs", "ort-wasm-simd-threaded.wasm")
SKETCHRNN_JS = "sketchrnn.js"
_INSTALLED = "installed.json"  # the files' sizes and SHA-256, written once they are in place


class RuntimeFilesError(OSError):
    """The runtime cannot be installed or is damaged; one line naming the file or URL."""


def runtime_cache_dir() -> Path:
    """``$SKETCHRNN_CACHE/runtime/onnxruntime-web-VERSION`` if that variable is set, else
    ``~/.cache/sketchrnn/runtime/onnxruntime-web-VERSION`` (beside the data and models)."""
    root = os.environ.get("SKETCHRNN_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "sketchrnn"
    return base / "runtime" / f"onnxruntime-web-{ORT_WEB_VERSION}"


def runtime_url(url: str | None = None) -> str:
    """``url``, else ``$SKETCHRNN_RUNTIME_URL``, else :data:`ORT_WEB_TARBALL`."""
    return url or os.environ.get("SKETCHRNN_RUNTIME_URL") or ORT_WEB_TARBALL


def sketchrnn_js_path() -> Path:
    """The package's ``sketchrnn.js`` (``sketchrnn/web/static/sketchrnn.js``)."""
    return Path(str(resources.files("sketchrnn") / "web" / "static" / SKETCHRNN_JS))


def installed_runtime(folder: str | os.PathLike | None = None) -> Path | None:
    """The cache folder holding the runtime's files, or ``None`` when they are not (all)
    there. Each file's size is checked against what the install recorded (a full digest
    check is :func:`install_runtime`'s)."""
    folder = Path(folder) if folder is not None else runtime_cache_dir()
    try:
        record = json.loads((folder / _INSTALLED).read_text(encoding="utf-8"))
        ok = all((folder / n).stat().st_size == record[n]["bytes"] for n in RUNTIME_FILES)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return folder if ok else None


def _integrity_reason(path: Path, integrity: str) -> str | None:
    """Why ``path`` is not the tarball of ``integrity`` (``sha512-<base64>``), or ``None``."""
    algorithm, _, expected = integrity.partition("-")
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    got = base64.b64encode(digest.digest()).decode("ascii")
    if got != expected:
        return (
            f"{algorithm} {got[:16]}... differs from package-lock.json's {expected[:16]}... "
            "(not the pinned onnxruntime-web: an altered or other file)"
        )
    return None


def _extract(tarball: Path, into: Path) -> dict[str, dict[str, object]]:
    """Copy :data:`RUNTIME_FILES` out of the npm tarball's ``package/dist/`` into ``into``;
    their sizes and SHA-256."""
    record: dict[str, dict[str, object]] = {}
    try:
        with tarfile.open(tarball, "r:gz") as archive:
            for name in RUNTIME_FILES:
                try:
                    member = archive.getmember(f"package/dist/{name}")
                except KeyError:
                    raise RuntimeFilesError(f"{tarball}: holds no package/dist/{name}") from None
                source = archive.extractfile(member) if member.isfile() else None
                if source is None:
                    raise RuntimeFilesError(f"{tarball}: package/dist/{name} is not a file")
                data = source.read()
                (into / name).write_bytes(data)
                record[name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    except (tarfile.TarError, EOFError, OSError) as e:
        if isinstance(e, RuntimeFilesError):
            raise
        raise RuntimeFilesError(f"{tarball}: not a readable npm package ({e})") from None
    return record


def _verified(folder: Path) -> bool:
    """Whether every runtime file in ``folder`` has the SHA-256 its install recorded."""
    try:
        record = json.loads((folder / _INSTALLED).read_text(encoding="utf-8"))
        return all(
            hashlib.sha256((folder / n).read_bytes()).hexdigest() == record[n]["sha256"]
            for n in RUNTIME_FILES
        )
    except (OSError, ValueError, KeyError, TypeError):
        return False


def install_runtime(
    url: str | None = None,
    *,
    integrity: str = ORT_WEB_INTEGRITY,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """The cache folder with the runtime's files, fetching and verifying them first if they
    are missing or damaged (see the module's docstring). Atomic: the folder appears whole or
    not at all, and a failed fetch leaves no partial file behind. Raises
    :class:`~sketchrnn.io.download.DownloadError` (the fetch, the integrity) or
    :class:`RuntimeFilesError` (the tarball's contents), one line each."""
    folder = runtime_cache_dir()
    if installed_runtime(folder) and _verified(folder):
        return folder
    source = runtime_url(url)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tarball = folder.parent / f"onnxruntime-web-{ORT_WEB_VERSION}.tgz"

    def check(part: Path) -> str | None:
        return _integrity_reason(part, integrity)

    not_found = f"not found (HTTP 404): no onnxruntime-web {ORT_WEB_VERSION} there"
    fetch_file(
        source,
        tarball,
        check=check,
        label=tarball.name,
        not_found=not_found,
        progress=progress,
        timeout=timeout,
    )
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".part", dir=folder.parent))
    try:
        record = _extract(tarball, tmp)
        (tmp / _INSTALLED).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        # A folder already there is damaged (it failed the checks above): replaced.
        replace_folder(tmp, folder, replace=folder.exists())
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        tarball.unlink(missing_ok=True)  # 33 MB of which two files were kept
    return folder


def copy_runtime(to: str | os.PathLike, runtime: str | os.PathLike | None = None) -> list[Path]:
    """Copy ``sketchrnn.js`` and the runtime's files (from ``runtime``, default the installed
    cache) into the folder ``to`` (made if missing), each written whole (a temporary file
    renamed into place). Returns the paths written."""
    source = Path(runtime) if runtime is not None else installed_runtime()
    if source is None or installed_runtime(source) is None:
        raise RuntimeFilesError(
            f"{runtime_cache_dir()}: the runtime is not installed (sketchrnn runtime install)"
        )
    target = Path(to)
    if target.exists() and not target.is_dir():
        raise RuntimeFilesError(f"{target}: not a folder")
    target.mkdir(parents=True, exist_ok=True)
    written = []
    sources = [(sketchrnn_js_path(), SKETCHRNN_JS)] + [(source / n, n) for n in RUNTIME_FILES]
    for path, name in sources:
        part = target / f".{name}.part"
        try:
            shutil.copyfile(path, part)
            os.replace(part, target / name)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        written.append(target / name)
    return written
