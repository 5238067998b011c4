"""Downloading the official Quick, Draw! sketch-rnn training files (``<class>.npz``).

Each class is one file, ``<base url>/<class name, URL-quoted>.npz`` (for example
``the%20eiffel%20tower.npz``), saved under its plain name in a cache folder. Downloads resume:
bytes arrive in ``<name>.npz.part`` and a later call continues it with an HTTP ``Range``
request (starting over when the server ignores the range); the finished file is checked to be
a readable zip (npz) and only then renamed to ``<name>.npz``, so a complete-looking file is
always complete.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

__all__ = [
    "QUICKDRAW_URL",
    "DownloadError",
    "default_cache_dir",
    "quickdraw_url",
    "download_quickdraw",
    "fetch_file",
]

QUICKDRAW_URL = "https://storage.googleapis.com/quickdraw_dataset/sketchrnn/"
_CHUNK_BYTES = 1 << 16


class DownloadError(OSError):
    """A download that failed; the message is one line saying what and why."""


def default_cache_dir() -> Path:
    """``$SKETCHRNN_CACHE/quickdraw`` if that variable is set, else
    ``~/.cache/sketchrnn/quickdraw``."""
    root = os.environ.get("SKETCHRNN_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "sketchrnn"
    return base / "quickdraw"


def quickdraw_url(class_name: str, base_url: str | None = None) -> str:
    """The URL of one class's npz: ``base_url`` (else ``$SKETCHRNN_QUICKDRAW_URL``, else the
    official storage) joined with the URL-quoted class name."""
    base = base_url or os.environ.get("SKETCHRNN_QUICKDRAW_URL") or QUICKDRAW_URL
    return base.rstrip("/") + "/" + urllib.parse.quote(f"{class_name}.npz")


def _check_class_name(name: str) -> None:
    # The name becomes a file name in the cache: refuse anything that could leave the folder.
    if not name or name != name.strip() or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"not a Quick, Draw! class name: {name!r}")


def _is_complete_npz(path: Path) -> bool:
    """True when ``path`` is a zip archive whose members all pass their CRC check."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None and len(archive.namelist()) > 0
    except (zipfile.BadZipFile, OSError, EOFError):
        return False


def _open(url: str, start: int, timeout: float):
    headers = {"User-Agent": "sketchrnn"}
    if start > 0:
        headers["Range"] = f"bytes={start}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def _fetch(
    url: str,
    part: Path,
    class_name: str,
    progress: bool,
    timeout: float,
    *,
    desc: str | None = None,
    not_found: str | None = None,
) -> None:
    """Append the rest of ``url`` to ``part`` (starting it over if the server sends it whole).

    ``desc`` labels the progress bar (default ``<class_name>.npz``); ``not_found`` is what a
    404 error says after the URL (default: the Quick, Draw! class name is probably wrong)."""
    start = part.stat().st_size if part.exists() else 0
    try:
        try:
            response = _open(url, start, timeout)
        except urllib.error.HTTPError as e:
            if e.code != 416 or start == 0:
                raise
            # Range not satisfiable: the partial file is not a prefix we can continue.
            part.unlink()
            start = 0
            response = _open(url, 0, timeout)
        with response:
            if start > 0 and response.status != 206:
                start = 0  # the server ignored the Range header and sends the whole file
            length = response.headers.get("Content-Length")
            total = start + int(length) if length and length.isdigit() else None
            from sketchrnn.progress import progress_bar

            with (
                open(part, "ab" if start else "wb") as out,
                progress_bar(
                    total=total,
                    initial=start,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=desc or f"{class_name}.npz",
                    disable=not progress,
                    leave=False,
                ) as bar,
            ):
                while chunk := response.read(_CHUNK_BYTES):
                    out.write(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as e:
        if e.code == 404:
            raise DownloadError(
                f"{url}: "
                + (
                    not_found
                    or f"not found (HTTP 404); the class name {class_name!r} is probably wrong "
                    "(names are lower case with spaces, e.g. 'cat', 'the eiffel tower')"
                )
            ) from None
        raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
        reason = getattr(e, "reason", e)
        raise DownloadError(
            f"{url}: cannot reach the server ({reason}); are you offline?"
        ) from None


def download_quickdraw(
    classes: str | Iterable[str],
    to: str | os.PathLike | None = None,
    base_url: str | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> list[Path]:
    """Download Quick, Draw! sketch-rnn files for ``classes``; return their local paths.

    ``to`` is the folder (default :func:`default_cache_dir`); ``base_url`` overrides the
    source (else ``$SKETCHRNN_QUICKDRAW_URL``, else the official storage). Files already
    complete are skipped; an interrupted download resumes from its ``.part`` file. Raises
    :class:`DownloadError` with a one-line message when the server cannot be reached, a class
    does not exist (HTTP 404) or the downloaded file is not a valid npz.
    """
    names = [classes] if isinstance(classes, str) else list(classes)
    for name in names:
        _check_class_name(name)
    folder = Path(to).expanduser() if to is not None else default_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        target = folder / f"{name}.npz"
        paths.append(target)
        if target.is_file() and _is_complete_npz(target):
            continue
        url = quickdraw_url(name, base_url)
        part = target.with_name(target.name + ".part")
        _fetch(url, part, name, progress, timeout)
        if not _is_complete_npz(part):
            part.unlink(missing_ok=True)  # a corrupt partial file must not be resumed
            raise DownloadError(f"{url}: the downloaded file is not a valid npz (zip) archive")
        os.replace(part, target)
    return paths


def fetch_file(
    url: str,
    target: str | os.PathLike,
    *,
    check: Callable[[Path], str | None] | None = None,
    label: str | None = None,
    not_found: str | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to ``target``: resumable through ``<target>.part``, atomic (renamed
    into place only when complete and, with ``check``, when ``check(part)`` returns ``None``
    rather than a reason it is not the expected file), with a progress bar labelled
    ``label``. Raises :class:`DownloadError` (one line, naming the URL) and leaves no
    ``.part`` behind for a file that fails ``check``. ``not_found`` replaces the text of an
    HTTP 404 error after the URL."""
    target = Path(target)
    part = target.with_name(target.name + ".part")
    _fetch(url, part, target.name, progress, timeout, desc=label or target.name,
           not_found=not_found)  # fmt: skip
    reason = check(part) if check is not None else None
    if reason is not None:
        part.unlink(missing_ok=True)  # a corrupt partial file must not be resumed
        raise DownloadError(f"{url}: {reason}")
    os.replace(part, target)
    return target
