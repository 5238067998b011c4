"""File utilities every reader and writer shares: the one error type, atomic writes, limits.

**Limits.** Readers refuse input that would take unbounded time or memory, before allocating
for it. Each limit has a default that real data sits far below and an environment variable
that lifts it (a whole number):

================================== ============  =================================================
variable                           default       what it bounds
================================== ============  =================================================
``SKETCHRNN_MAX_INFLATE_BYTES``    1 GiB         bytes inflated from one archive (npz or zip), all
                                                 members together
``SKETCHRNN_NPZ_MAX_MEMBER_BYTES`` 256 MiB       bytes one ``.npy`` member of an npz inflates to
``SKETCHRNN_MAX_LINE_BYTES``       16 MiB        bytes of one ndjson line (one drawing)
``SKETCHRNN_MAX_POINTS``           200,000       points of one drawing in a text format (ndjson,
                                                 Omniglot stroke files, SVG), after sampling
``SKETCHRNN_MAX_JSON_BYTES``       256 MiB       bytes of a whole JSON file (magenta.js models)
``SKETCHRNN_MAX_SVG_BYTES``        64 MiB        bytes of one SVG file
``SKETCHRNN_MAX_DOWNLOAD_BYTES``   256 MiB       bytes of one downloaded file (a Quick, Draw!
                                                 npz; any file without a cap of its own)
``SKETCHRNN_MAX_MODEL_BYTES``      64 MiB        bytes of one downloaded model of the official
                                                 collection (``.gen.json``, ``.vae.json``)
================================== ============  =================================================

(The largest Quick, Draw! raw drawing in the shared data has 1,174 points on a 37 KB line; a
magenta.js model is 3 MB; a sketch-rnn npz of a 75K-drawing class inflates to ~50 MB.)
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "MAX_ABS_OFFSET",
    "SketchFileError",
    "atomic_path",
    "replace_folder",
    "write_error",
    "env_limit",
    "limit_hint",
    "size_text",
    "read_json_document",
    "LIMIT_DEFAULTS",
]


# Beyond this an offset (or a coordinate) is damage, not a drawing (as in Quick, Draw!):
# every reader refuses it and every writer too, so a file read is one that can be written.
MAX_ABS_OFFSET = 1e6


class SketchFileError(ValueError):
    """A file that cannot be read or written as asked. The message is one line: it names the
    file (and the line or record where that helps) and says what is wrong."""

    def __init__(self, path: str | os.PathLike, message: str, line: int | None = None):
        where = f"{os.fspath(path)}:{line}" if line is not None else os.fspath(path)
        text = f"{where}: {message}"
        # One line, whatever the message quotes (an exception's text, a file name).
        super().__init__(" ".join(text.splitlines()) if "\n" in text or "\r" in text else text)
        self.path = os.fspath(path)
        self.line = line


LIMIT_DEFAULTS = {
    "SKETCHRNN_MAX_INFLATE_BYTES": 1 << 30,
    "SKETCHRNN_NPZ_MAX_MEMBER_BYTES": 256 << 20,
    "SKETCHRNN_MAX_LINE_BYTES": 16 << 20,
    "SKETCHRNN_MAX_POINTS": 200_000,
    "SKETCHRNN_MAX_JSON_BYTES": 256 << 20,
    "SKETCHRNN_MAX_SVG_BYTES": 64 << 20,
    "SKETCHRNN_MAX_DOWNLOAD_BYTES": 256 << 20,
    "SKETCHRNN_MAX_MODEL_BYTES": 64 << 20,
}


def env_limit(name: str) -> int:
    """The limit ``name`` (see the module docstring): its environment variable if set, else
    its default. Read at each call, so a running program (or a test) can change it."""
    text = os.environ.get(name, "").strip().replace("_", "")
    if not text:
        return LIMIT_DEFAULTS[name]
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"${name} must be a whole number, got {os.environ[name]!r}") from None
    if value <= 0:
        raise ValueError(f"${name} must be positive, got {value}")
    return value


def size_text(n_bytes: int) -> str:
    """``"3.5 MiB"``, or ``"812 bytes"`` below a MiB."""
    return f"{n_bytes / 2**20:,.1f} MiB" if n_bytes >= 2**20 else f"{n_bytes:,} bytes"


def limit_hint(name: str) -> str:
    """``"over the limit of N; $NAME raises it"``, for error messages."""
    value = env_limit(name)
    shown = size_text(value) if name.endswith("_BYTES") else f"{value:,}"
    return f"over the limit of {shown}; ${name} raises it"


def read_json_document(path: str | os.PathLike) -> Any:
    """The parsed JSON of a file of at most ``$SKETCHRNN_MAX_JSON_BYTES``; a
    :class:`SketchFileError` naming the file (and the line of a syntax error) for a file that
    cannot be read, is not UTF-8 or not JSON."""
    try:
        size = os.stat(path).st_size
        if size > env_limit("SKETCHRNN_MAX_JSON_BYTES"):
            raise SketchFileError(
                path, f"{size_text(size)}, " + limit_hint("SKETCHRNN_MAX_JSON_BYTES")
            )
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as e:
        raise SketchFileError(path, f"cannot read file ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise SketchFileError(path, "not a text file (invalid UTF-8)") from None
    except json.JSONDecodeError as e:
        raise SketchFileError(path, f"invalid JSON: {e.msg}", line=e.lineno) from None
    except RecursionError:
        raise SketchFileError(path, "invalid JSON: nested too deeply") from None
    except SketchFileError:
        raise
    except (ValueError, MemoryError) as e:  # e.g. an integer of more than 4300 digits
        raise SketchFileError(path, f"invalid JSON: {type(e).__name__}: {str(e)[:80]}") from None


# Errors of the device itself (whichever file they name, or none): an atomic write reports
# them under the target's name (the temporary file's name means nothing to the user), as it
# does any error naming the temporary file, and a permission error naming no file.
_DEVICE_ERRNOS = frozenset(
    getattr(errno, name)
    for name in ("ENOSPC", "EROFS", "EDQUOT", "EFBIG", "EIO")
    if hasattr(errno, name)
)
_PERMISSION_ERRNOS = frozenset((errno.EACCES, errno.EPERM))


def write_error(path: str | os.PathLike, err: OSError) -> SketchFileError:
    """The one-line error for ``path`` that could not be written: ``out.png: cannot write
    file (no space left on device)``; ``errno`` kept, the ``OSError`` as its cause."""
    reason = os.strerror(err.errno) if err.errno else (err.strerror or str(err))
    reason = reason[:1].lower() + reason[1:]
    out = SketchFileError(path, f"cannot write file ({reason})")
    out.errno = err.errno  # type: ignore[attr-defined]
    out.__cause__ = err
    return out


def replace_folder(tmp: str | os.PathLike, out: str | os.PathLike, *, replace: bool) -> None:
    """Give the finished folder ``tmp`` the name ``out``. With ``replace``, the folder at
    ``out`` is moved aside first and removed only once ``tmp`` has its name (put back if the
    rename fails), so ``out`` is at every moment the old folder or the new one. Without, an
    ``OSError`` where ``out`` is a folder that is not empty (nothing is replaced)."""
    tmp, out = Path(tmp), Path(out)
    old = None
    if replace:
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
        os.replace(out, old / out.name)
    try:
        os.rename(tmp, out)
    except OSError:
        if old is not None:
            os.replace(old / out.name, out)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``.

    On any error the temporary file is removed and ``path`` is left as it was, so a
    half-written output never appears under the real name. A file-system error (permission
    denied, no space left on device, read-only file system, ...) while making the folder or
    the temporary file, writing it or renaming it is a :class:`SketchFileError` naming
    ``path`` and the reason (:func:`write_error`), not the temporary file.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except FileExistsError as e:  # a file where a folder of the path should be
        raise SketchFileError(path, f"cannot write file ({e.filename} is not a folder)") from e
    except OSError as e:
        raise write_error(path, e) from e
    tmp_path = Path(tmp)
    try:
        os.close(fd)
        # mkstemp creates the file 0600; give it the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            tmp_path.unlink(missing_ok=True)
        if isinstance(e, OSError) and _is_write_error(e, tmp_path):
            raise write_error(path, e) from e
        if isinstance(e, Exception) and not isinstance(e, OSError) and _disk_full(path.parent):
            # torch.save and safetensors say "file write failed" / "IoError(...)", no name
            full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            raise write_error(path, full) from e
        raise


# Free bytes under which a writer's own error (torch.save's RuntimeError) is taken to mean
# that the disk is full.
_FULL_BELOW_BYTES = 1 << 20


def _disk_full(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < _FULL_BELOW_BYTES
    except OSError:
        return False


def _is_write_error(err: OSError, tmp_path: Path) -> bool:
    """Whether ``err``, raised while writing ``tmp_path``, is the file system's refusal (to
    be reported under the target's name), not an error about another file."""
    if err.errno in _DEVICE_ERRNOS:
        return True
    names = {os.fspath(n) for n in (err.filename, err.filename2) if n is not None}
    if not names:
        return err.errno in _PERMISSION_ERRNOS
    return os.fspath(tmp_path) in names
