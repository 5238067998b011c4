"""One verified, resumable, bounded HTTP download: :func:`fetch_file` (and :func:`fetch`).

Every file the project fetches (Quick, Draw! data, the official models, the judge's files)
goes through here, so each of these holds for all of them:

- **Atomic and verified.** Bytes arrive in ``<target>.part``; the finished file's size is
  checked against what the server announced, then its form (``check``: a sketch-rnn npz, a
  model of the kind named, a pinned SHA-256, ...), and only then is it renamed to ``target``.
  A file that fails is deleted, never kept under its real name.
- **Resumed only when it is safe.** A later call continues the ``.part`` with ``Range:
  bytes=N-`` and appends only on a ``206`` whose ``Content-Range`` starts at ``N``; any other
  answer (the whole file, a range from elsewhere, ``416``) starts over. A resumed file that
  then fails its check is fetched once more from the start.
- **Bounded.** A transfer with no byte for ``stall`` seconds, or fewer than ``min_rate``
  bytes a second over any ``rate_window`` seconds, or whose headers do not arrive within
  ``stall`` seconds, stops with a one-line error (:mod:`sketchrnn.io.bounded_http`, whose
  :class:`~sketchrnn.io.bounded_http.TransferLimits` the environment sets); a body larger
  than the cap of its kind of file is refused as soon as the server announces it or the bytes
  pass the cap. Redirects: at most five, to ``http``/``https`` only, never down from ``https``.
- **One writer.** The ``.part`` is held with ``flock`` while it is written: a second process
  fetching the same file waits for the first (saying so), then finds the file complete.

Written here because no HTTP client library offers a verified resume or a lock on the partial
file; the transfer itself is the standard library's ``urllib``.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import socket
import ssl
import sys
import urllib.error
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sketchrnn.io.bounded_http import (
    TransferLimits,
    Watch,
    content_length,
    content_range,
    open_bounded,
    quoted,
    unsatisfiable_size,
)
from sketchrnn.io.files import env_limit, limit_hint, size_text
from sketchrnn.progress import progress_bar

try:  # POSIX; elsewhere a .part is written unlocked
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "DownloadError",
    "ServerUnreachableError",
    "Fetched",
    "fetch",
    "fetch_file",
    "check_url",
    "sha256_of",
]

_CHUNK_BYTES = 1 << 16


class DownloadError(OSError):
    """A download that failed; the message is one line saying what and why."""

    def __init__(self, message: str):
        super().__init__(
            " ".join(message.split()) if "\n" in message or "\r" in message else message
        )


class ServerUnreachableError(DownloadError):
    """The server did not answer at all (offline, refused, name unknown, no answer in time)."""


# ----------------------------------------------------------------------------- the .part lock


@contextlib.contextmanager
def _locked_part(part: Path, on_wait: Callable[[str], None]) -> Iterator[int | None]:
    """The ``.part`` file open for writing and locked, or ``None`` when the file at that name
    changed while this process waited (the other writer finished or removed it)."""
    fd = os.open(part, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                on_wait(f"{part}: another process is downloading this file; waiting for it")
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError:
                pass  # a file system without flock: written unlocked
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(part))
        except FileNotFoundError:
            same = False
        yield fd if same else None
    finally:
        os.close(fd)  # releases the lock


# ----------------------------------------------------------------------------- fetching


@dataclass
class Fetched:
    """What :func:`fetch` did: ``path`` (the target), ``how`` (``"complete"``: already
    there, nothing fetched; ``"downloaded"``; ``"resumed"``: a ``.part`` continued) and the
    bytes ``received`` now."""

    path: Path
    how: str
    received: int


class _Restart(Exception):
    """The server's answer cannot continue the ``.part``: start over from byte 0."""


def sha256_of(path: str | os.PathLike) -> str:
    """The hex SHA-256 of a file (read in 1 MiB pieces)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def check_url(url: str) -> None:
    """Raise :class:`DownloadError` (one line) unless ``url`` is an ``http``/``https`` URL
    with a host (a mistyped mirror is refused before anything is fetched)."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 (a port that is not a number raises here)
    except ValueError as e:  # e.g. "Invalid IPv6 URL"
        raise DownloadError(f"{url}: not a valid URL ({e})") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise DownloadError(f"{url}: not an http:// or https:// URL")
    if not parts.hostname:
        raise DownloadError(f"{url}: not a valid URL (no host)")


def _print_wait(line: str) -> None:
    print(f"sketchrnn: {line}", file=sys.stderr, flush=True)


def fetch(
    url: str,
    target: str | os.PathLike,
    *,
    check: Callable[[Path], str | None] | None = None,
    check_existing: Callable[[Path], str | None] | None = None,
    size: int | None = None,
    sha256: str | None = None,
    max_bytes: int | None = None,
    limit_name: str = "SKETCHRNN_MAX_DOWNLOAD_BYTES",
    label: str | None = None,
    not_found: str | None = None,
    progress: bool = True,
    overall: Any = None,
    on_progress: Callable[[int, int | None], None] | None = None,
    on_wait: Callable[[str], None] = _print_wait,
    timeout: float | None = None,
    limits: TransferLimits | None = None,
) -> Fetched:
    """Make ``target`` a verified copy of ``url`` (see the module docstring for the rules).

    A ``target`` already there that passes ``check_existing`` (default ``check``) is kept
    (``how == "complete"``). The finished download must have ``size`` bytes and the SHA-256
    ``sha256`` when given, the length the server announced, and pass ``check(part)``, which
    returns ``None`` or the reason it is not the expected file. The body may not exceed
    ``max_bytes`` (default: the limit ``limit_name`` of :mod:`sketchrnn.io.files`, which its
    environment variable raises). ``label`` names the progress bar; ``not_found`` replaces
    the text of an HTTP 404 error after the URL; ``overall`` (a tqdm bar) counts the bytes
    instead of a bar of the file's own; ``on_progress(bytes so far, total or None)`` is
    called as bytes arrive; ``on_wait(line)`` says that another process holds the file.
    ``timeout`` overrides ``limits.stall``.

    Raises :class:`DownloadError` (one line naming the URL; a :class:`ServerUnreachableError`
    when the server never answered). A ``.part`` is left only when it is a prefix a later
    call may resume (a transfer cut short); one that fails its checks is removed.
    """
    check_url(url)
    target = Path(target)
    part = target.with_name(target.name + ".part")
    if limits is None:
        limits = TransferLimits.from_env(timeout)
    elif timeout is not None:
        limits = replace(limits, stall=timeout)
    if max_bytes is None:
        cap, cap_text = env_limit(limit_name), limit_hint(limit_name)
    else:
        cap, cap_text = max_bytes, f"over the limit of {size_text(max_bytes)} for this file"
    if size is not None:
        cap, cap_text = min(cap, size), f"the file should have {size:,} bytes"

    def verify(path: Path) -> str | None:
        got = path.stat().st_size
        if size is not None and got != size:
            return f"{got:,} bytes, but the file should have {size:,}"
        if sha256 is not None and sha256_of(path) != sha256.lower():
            return f"not the expected file (its SHA-256 is not {sha256[:16]}...)"
        return check(path) if check is not None else None

    def usable(path: Path) -> bool:
        if not path.is_file():
            return False
        return (check_existing or verify)(path) is None

    job = _Job(url, part, limits, cap, cap_text, label or target.name, not_found, progress,
               overall, on_progress)  # fmt: skip
    while True:
        if usable(target):
            return Fetched(target, "complete", 0)
        with _locked_part(part, on_wait) as fd:
            if fd is None:
                continue  # the other writer finished (or gave up): look again
            if usable(target):  # finished by another process between the look and the lock
                _drop_if_empty(part, fd)
                return Fetched(target, "complete", 0)
            return job.run(fd, target, verify)


def fetch_file(url: str, target: str | os.PathLike, **options: Any) -> Path:
    """:func:`fetch` (same options), returning the path of the verified file."""
    return fetch(url, target, **options).path


def _drop_if_empty(part: Path, fd: int) -> None:
    if os.fstat(fd).st_size == 0:
        part.unlink(missing_ok=True)


@dataclass
class _Job:
    url: str
    part: Path
    limits: TransferLimits
    cap: int
    cap_text: str
    label: str
    not_found: str | None
    progress: bool
    overall: Any
    on_progress: Callable[[int, int | None], None] | None

    def run(self, fd: int, target: Path, verify: Callable[[Path], str | None]) -> Fetched:
        """Fetch into the locked ``.part`` (``fd``), verify it and move it into place."""
        had = os.fstat(fd).st_size
        if had > self.cap:  # left by an older version that did not cap it: nothing to resume
            os.ftruncate(fd, 0)
            had = 0
        start, received = had, 0
        try:
            while True:
                try:
                    received += self._transfer(fd, start)
                except _Restart:
                    start = 0
                    continue
                reason = verify(self.part)
                if reason is None:
                    break
                if start > 0:  # a resumed file that is wrong: the old part was; fetch it whole
                    start = 0
                    continue
                os.ftruncate(fd, 0)
                raise DownloadError(f"{self.url}: {reason}")
            os.fsync(fd)
            os.replace(self.part, target)
        except BaseException:
            with contextlib.suppress(OSError):
                _drop_if_empty(self.part, fd)
            raise
        how = "resumed" if had > 0 and start == had else "downloaded"
        return Fetched(target, how, received)

    def _error(self, reason: str) -> DownloadError:
        return DownloadError(f"{self.url}: {reason}")

    def _transfer(self, fd: int, start: int) -> int:
        """Write the body into ``fd`` from byte ``start``; the number of bytes received.
        Raises :class:`_Restart` (the ``.part`` emptied) when the answer cannot continue
        it."""
        watch = Watch(self.limits)
        try:
            response, end, total = self._answer(fd, start, watch)
            if response is None:  # 416 for a part that is already whole
                return 0
            with response:
                return self._receive(response, fd, start, end, total, watch)
        except (http.client.HTTPException, OSError) as e:
            if isinstance(e, DownloadError):
                raise
            if watch.reason is not None:
                raise self._error(watch.reason + "; run again to resume") from None
            if isinstance(e, TimeoutError | socket.timeout):
                raise self._error(f"no data for {self.limits.stall:g} s (stalled)") from None
            if isinstance(e, http.client.IncompleteRead):
                raise self._error("the connection closed before the end of the file") from None
            raise self._error(f"transfer failed ({quoted(e) or type(e).__name__})") from None
        finally:
            watch.stop()

    def _answer(self, fd: int, start: int, watch: Watch) -> tuple[Any, int | None, int | None]:
        """The server's answer, checked: ``(response, end, total)`` as
        :meth:`_check_answer` gives them. ``response`` is ``None`` when a resume finds the
        ``.part`` already whole (416 naming its size)."""
        try:
            response = open_bounded(self.url, start, watch)
        except urllib.error.HTTPError as e:
            if watch.reason is not None:
                raise self._error(watch.reason) from None
            with e:
                if e.code == 416 and start > 0:
                    if unsatisfiable_size(e.headers) == start:
                        return None, start, start
                    os.ftruncate(fd, 0)
                    raise _Restart from None
                if e.code == 404:
                    raise self._error(self.not_found or "not found (HTTP 404)") from None
                raise self._error(f"HTTP {e.code} {quoted(e.reason)}") from None
        except urllib.error.URLError as e:
            if watch.reason is not None:
                raise ServerUnreachableError(f"{self.url}: {watch.reason}") from None
            if isinstance(e.reason, ssl.SSLError):  # it answered, but not as it should
                raise self._error(f"the secure connection failed ({quoted(e.reason)})") from None
            raise ServerUnreachableError(
                f"{self.url}: cannot reach the server ({quoted(e.reason)}); are you offline?"
            ) from None
        except (http.client.InvalidURL, ValueError) as e:  # spaces, control characters
            raise self._error(f"not a valid URL ({quoted(e)})") from None
        except (http.client.HTTPException, OSError) as e:
            if watch.reason is not None:
                raise self._error(watch.reason) from None
            if isinstance(e, http.client.RemoteDisconnected):
                raise self._error("the server closed the connection without an answer") from None
            text = quoted(e) or type(e).__name__
            raise self._error(f"the server's answer is not valid HTTP ({text})") from None
        try:
            end, total = self._check_answer(response, fd, start)
        except BaseException:
            response.close()
            raise
        return response, end, total

    def _check_answer(self, response: Any, fd: int, start: int) -> tuple[int | None, int | None]:
        """``(end, total)``: the size the ``.part`` will have after this answer, and the whole
        file's size (either ``None`` when the server does not say). Empties the ``.part``
        when the answer is the whole file; :class:`_Restart` when it is a range from
        elsewhere."""
        status, headers = response.status, response.headers
        length = content_length(headers)
        if status == 206:
            span = content_range(headers)
            if span is None or span[0] != start:
                if start > 0:  # not provably the continuation asked for: start over
                    os.ftruncate(fd, 0)
                    raise _Restart
                raise self._error(
                    "partial content that was not asked for "
                    f"(Content-Range {quoted(headers.get('Content-Range'))!r})"
                )
            first, last, total = span
            if length is not None and length != last - first + 1:
                raise self._error(
                    f"Content-Length {length} does not match Content-Range {first}-{last}"
                )
            if total is not None and last >= total:
                raise self._error(f"Content-Range {first}-{last} runs past its size {total}")
            end: int | None = last + 1
        elif status == 200:
            if start > 0:
                os.ftruncate(fd, 0)  # the server ignored the range: it sends the whole file
            end = total = length
        else:
            raise self._error(f"unexpected answer HTTP {status} {quoted(response.reason)}")
        biggest = max(n for n in (end, total, 0) if n is not None)
        if biggest > self.cap:
            raise self._error(f"the server announces {size_text(biggest)}, {self.cap_text}")
        return end, total

    def _receive(
        self, response: Any, fd: int, start: int, end: int | None, total: int | None, watch: Watch
    ) -> int:
        """Append the body to the ``.part`` (from 0 for a whole file); the bytes received."""
        begin = 0 if response.status == 200 else start
        received = 0
        watch.body_started()
        with (
            open(fd, "r+b", closefd=False) as out,
            progress_bar(
                total=total,
                initial=begin,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=self.label,
                disable=not self.progress or self.overall is not None,
                leave=False,
            ) as bar,
        ):
            out.seek(begin)
            out.truncate()
            while chunk := response.read1(_CHUNK_BYTES):
                if begin + received + len(chunk) > self.cap:
                    out.truncate(0)  # not a prefix of anything worth resuming
                    raise self._error(f"more than {size_text(self.cap)} arrived, {self.cap_text}")
                try:
                    out.write(chunk)
                except OSError as e:
                    raise DownloadError(
                        f"{self.part}: cannot write ({e.strerror or e}); run again to resume"
                    ) from None
                received += len(chunk)
                watch.got(len(chunk))
                (self.overall if self.overall is not None else bar).update(len(chunk))
                if self.on_progress is not None:
                    self.on_progress(begin + received, total)
            out.flush()
        if watch.reason is not None:
            raise self._error(watch.reason + "; run again to resume")
        have = begin + received
        if end is not None and have < end:
            raise self._error(
                f"the connection closed after {have:,} of {end:,} bytes; run again to resume"
            )
        if end is not None and have > end:
            os.ftruncate(fd, 0)
            raise self._error(f"{have:,} bytes arrived, more than the {end:,} announced")
        if total is not None and have < total:
            raise self._error(
                f"the server sent bytes {start:,}-{have - 1:,} of {total:,}; run again to resume"
            )
        return received
