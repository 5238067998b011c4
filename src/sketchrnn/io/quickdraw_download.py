"""The official Quick, Draw! sketch-rnn training files (``<class>.npz``), by class name.

Each class is one file, ``<base url>/<class name, URL-quoted>.npz`` (for example
``the%20eiffel%20tower.npz``), saved under its plain name in a cache folder by
:func:`sketchrnn.io.download.fetch` (resumed safely, bounded, atomic, one writer at a time).
A file enters the cache only when it reads back, through the safe npz reader, as what the
official files are: a sketch-rnn npz holding ``train``, ``valid`` and ``test`` sketches.

:data:`QUICKDRAW_CLASSES` names the 345 classes of the collection (the data file
``quickdraw_classes.txt`` beside this module); :func:`download_quickdraw_classes` fetches many
of them (``sketchrnn data download --all``): one overall progress bar, a line per file, and it
carries on past a class that fails, naming the failures at the end.
:func:`downloaded_class_files` finds the finished files again (for ``sketchrnn data pack``).
"""

from __future__ import annotations

import difflib
import os
import urllib.parse
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from tqdm import tqdm

from sketchrnn.io.download import (
    DownloadError,
    Fetched,
    ServerUnreachableError,
    check_url,
    fetch,
)
from sketchrnn.io.files import SketchFileError, size_text
from sketchrnn.io.npz import read_npz
from sketchrnn.io.sketchset import SPLITS
from sketchrnn.progress import progress_bar

__all__ = [
    "QUICKDRAW_URL",
    "QUICKDRAW_CLASSES",
    "UNREACHABLE_GIVE_UP",
    "DownloadReport",
    "default_cache_dir",
    "quickdraw_url",
    "read_class_list",
    "download_quickdraw",
    "download_quickdraw_classes",
    "downloaded_class_files",
    "check_class_file",
]

QUICKDRAW_URL = "https://storage.googleapis.com/quickdraw_dataset/sketchrnn/"
# A list of class names is a few KB (the 345 names: 3 KB); a bigger file is something else.
_MAX_LIST_BYTES = 1 << 20
_MAX_NAME_CHARS = 200  # the name becomes a file name: stay well under the usual 255 bytes


def _check_class_name(name: str) -> None:
    # The name becomes a file name in the cache: refuse anything that could leave the folder.
    if (
        not name
        or name != name.strip()
        or "/" in name
        or "\\" in name
        or name.startswith(".")
        or not name.isprintable()
        or len(name) > _MAX_NAME_CHARS
    ):
        raise ValueError(f"not a Quick, Draw! class name: {name[:_MAX_NAME_CHARS]!r}")


def _class_names(text: str, where: str) -> list[str]:
    """The names of a list (one a line, blank lines and ``#`` comments ignored, each once)."""
    names: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        name = line.strip()
        if not name or name.startswith("#"):
            continue
        try:
            _check_class_name(name)
        except ValueError as e:
            raise ValueError(f"{where}:{number}: {e}") from None
        if name not in names:
            names.append(name)
    return names


#: The 345 classes of Quick, Draw!, spelled as the files are named (three start with "The").
QUICKDRAW_CLASSES: tuple[str, ...] = tuple(
    _class_names(
        resources.files("sketchrnn.io").joinpath("quickdraw_classes.txt").read_text("utf-8"),
        "quickdraw_classes.txt",
    )
)

# After this many classes in which the server never answered, a many-class download gives up
# on the rest (offline: 345 timeouts would take hours and say nothing new).
UNREACHABLE_GIVE_UP = 3


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


def read_class_list(path: str | os.PathLike) -> list[str]:
    """The class names of a list file: one a line, blank lines and ``#`` comments ignored,
    duplicates kept once (first place). Raises ``ValueError`` (one line naming the file) for a
    file that is not a small UTF-8 text file, and naming the line of a name that could not be
    a file name."""
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_LIST_BYTES + 1)
    except OSError as e:
        reason = e.strerror or str(e)
        raise ValueError(
            f"{os.fspath(path)}: cannot read the list ({reason[:1].lower() + reason[1:]})"
        ) from None
    if len(data) > _MAX_LIST_BYTES:
        raise ValueError(
            f"{os.fspath(path)}: over {size_text(_MAX_LIST_BYTES)}: not a list of class names "
            "(one a line)"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(
            f"{os.fspath(path)}: not a text file of class names (byte {e.start:,} is not UTF-8)"
        ) from None
    names = _class_names(text, os.fspath(path))
    if not names:
        raise ValueError(f"{os.fspath(path)}: no class names in the file (one a line)")
    return names


def _is_class_file(path: Path) -> str | None:
    """The cheap look at a file already in the cache (it passed :func:`check_class_file`
    when it arrived): a zip whose members pass their CRC check and include the three
    splits."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if not {f"{s}.npy" for s in SPLITS} <= names:
                return "not a Quick, Draw! sketch-rnn file (no train, valid and test arrays)"
            if archive.testzip() is not None:
                return "a damaged zip archive"
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        return f"not a valid npz (zip) archive ({e})"
    return None


def check_class_file(path: Path) -> str | None:
    """``None`` when ``path`` has the official files' form, else why not: read in full by
    the safe reader (no pickle runs), a sketch-rnn npz whose ``train``, ``valid`` and
    ``test`` all hold valid sketches. About 50 us a sketch (4 s for a 75K-sketch class)."""
    try:
        sketches = read_npz(path, label="check")
    except SketchFileError as e:
        text, prefix = str(e), os.fspath(path) + ": "
        return "not a valid sketch-rnn npz: " + text.removeprefix(prefix)
    missing = [s for s in SPLITS if s not in set(sketches.splits)]
    if missing:
        return f"not a Quick, Draw! sketch-rnn file: no {' or '.join(missing)} sketches"
    return None


def _not_found_hint(class_name: str) -> str:
    close = difflib.get_close_matches(class_name, QUICKDRAW_CLASSES, n=3, cutoff=0.6)
    if not close and class_name.lower() != class_name:
        close = difflib.get_close_matches(class_name.lower(), QUICKDRAW_CLASSES, n=3)
    if close:
        hint = f"did you mean {' or '.join(repr(c) for c in close)}?"
    else:
        hint = "the names are those of QUICKDRAW_CLASSES, e.g. 'cat', 'The Eiffel Tower'"
    return f"not found (HTTP 404); the class name {class_name!r} is probably wrong ({hint})"


def _cache_folder(to: str | os.PathLike | None) -> Path:
    return Path(to).expanduser() if to is not None else default_cache_dir()


def _download_class(
    name: str,
    folder: Path,
    base_url: str | None,
    progress: bool,
    timeout: float | None,
    overall: object = None,
) -> Fetched:
    return fetch(
        quickdraw_url(name, base_url),
        folder / f"{name}.npz",
        check=check_class_file,
        check_existing=_is_class_file,
        label=f"{name}.npz",
        not_found=_not_found_hint(name),
        progress=progress,
        overall=overall,
        timeout=timeout,
    )


def download_quickdraw(
    classes: str | Iterable[str],
    to: str | os.PathLike | None = None,
    base_url: str | None = None,
    progress: bool = True,
    timeout: float | None = None,
) -> list[Path]:
    """Download Quick, Draw! sketch-rnn files for ``classes``; return their local paths.

    ``to`` is the folder (default :func:`default_cache_dir`); ``base_url`` overrides the
    source (else ``$SKETCHRNN_QUICKDRAW_URL``, else the official storage); ``timeout`` the
    stall limit (:class:`sketchrnn.io.download.TransferLimits`). Files already complete are
    skipped; an interrupted download resumes from its ``.part`` file. Raises
    :class:`~sketchrnn.io.download.DownloadError` with a one-line message when the server
    cannot be reached, a class does not exist (HTTP 404), the transfer stalls, or the file is
    not a sketch-rnn npz (at the first such class; :func:`download_quickdraw_classes` carries
    on instead).
    """
    names = [classes] if isinstance(classes, str) else list(classes)
    for name in names:
        _check_class_name(name)
    folder = _cache_folder(to)
    folder.mkdir(parents=True, exist_ok=True)
    return [_download_class(name, folder, base_url, progress, timeout).path for name in names]


@dataclass
class DownloadReport:
    """What :func:`download_quickdraw_classes` did: the files now complete (in the order
    asked), which classes were already complete, downloaded or resumed, the failures (class ->
    one-line reason) and the bytes received."""

    paths: list[Path] = field(default_factory=list)
    complete: list[str] = field(default_factory=list)
    downloaded: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    bytes_received: int = 0

    def __str__(self) -> str:
        asked = len(self.paths) + len(self.failed)
        return (
            f"{asked} classes: {len(self.downloaded) + len(self.resumed)} downloaded "
            f"({len(self.resumed)} resumed), {len(self.complete)} already complete, "
            f"{len(self.failed)} failed; {_mib(self.bytes_received)} received"
        )


def _mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"


def download_quickdraw_classes(
    classes: Iterable[str] = QUICKDRAW_CLASSES,
    to: str | os.PathLike | None = None,
    base_url: str | None = None,
    progress: bool = True,
    timeout: float | None = None,
    echo: Callable[[str, str], None] | None = None,
) -> DownloadReport:
    """Download many classes (default: all of :data:`QUICKDRAW_CLASSES`) as
    :func:`download_quickdraw` does one, carrying on past a class that fails.

    One progress bar counts the files done and the bytes received; ``echo(line, how)`` is
    called once per file as it finishes, ``how`` one of ``"complete"``, ``"downloaded"``,
    ``"resumed"``, ``"failed"`` and ``line`` saying it: ``<path>: downloaded 54.1 MiB``, ...,
    ``<path>: failed: <reason>``. When the server has not answered at all for the first
    :data:`UNREACHABLE_GIVE_UP` classes (offline), the others are not tried (and count as
    failed). Run it again to fetch what failed: complete files are not fetched again, partial
    ones resume. Raises ``ValueError`` (before fetching anything) for a name that could not
    be a file name, and :class:`~sketchrnn.io.download.DownloadError` for a ``base_url``
    that is not an http(s) URL.
    """
    names = list(dict.fromkeys(classes))
    for name in names:
        _check_class_name(name)
    if names:
        check_url(quickdraw_url(names[0], base_url))
    folder = _cache_folder(to)
    folder.mkdir(parents=True, exist_ok=True)
    report = DownloadReport()

    def files_done() -> str:
        return f"{len(report.paths) + len(report.failed)}/{len(names)} files"

    with progress_bar(
        total=None,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=files_done(),
        disable=not progress,
    ) as bar:

        def say(line: str, how: str) -> None:
            if echo is not None:
                with tqdm.external_write_mode():  # keep the bar whole around the line
                    echo(line, how)

        answered = False  # has the server answered (a file or an HTTP error) at all?
        for name in names:
            if not answered and len(report.failed) >= UNREACHABLE_GIVE_UP:
                report.failed[name] = "not tried: the server did not answer"
                continue
            try:
                done = _download_class(name, folder, base_url, progress, timeout, overall=bar)
            except DownloadError as e:
                answered = answered or not isinstance(e, ServerUnreachableError)
                report.failed[name] = str(e)
                say(f"{folder / (name + '.npz')}: failed: {e}", "failed")
                if not answered and len(report.failed) == UNREACHABLE_GIVE_UP < len(names):
                    rest = len(names) - UNREACHABLE_GIVE_UP
                    say(f"the server does not answer: the other {rest} classes not tried", "failed")
            else:
                answered = answered or done.how != "complete"
                report.paths.append(done.path)
                report.bytes_received += done.received
                getattr(report, done.how).append(name)  # how names the list: complete, ...
                size = _mib(done.path.stat().st_size)
                if done.how == "complete":
                    say(f"{done.path}: already complete ({size})", done.how)
                elif done.how == "resumed":
                    say(
                        f"{done.path}: resumed, {size} ({_mib(done.received)} fetched now)",
                        "resumed",
                    )
                else:
                    say(f"{done.path}: downloaded {size}", done.how)
            bar.set_description_str(files_done(), refresh=False)
        bar.refresh()
    return report


def downloaded_class_files(
    classes: Iterable[str], to: str | os.PathLike | None = None
) -> tuple[list[Path], list[str]]:
    """``(paths, missing)``: the complete downloaded files of ``classes`` in the folder ``to``
    (default :func:`default_cache_dir`), and the classes that have none yet (or only a
    partial one)."""
    folder = _cache_folder(to)
    paths, missing = [], []
    for name in dict.fromkeys(classes):
        _check_class_name(name)
        path = folder / f"{name}.npz"
        # Only a finished, verified download has this name (bytes arrive in "<name>.npz.part").
        if path.is_file():
            paths.append(path)
        else:
            missing.append(name)
    return paths, missing
