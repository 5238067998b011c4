"""A bounded HTTP ``GET``: the answer's headers and body read under a watchdog.

:func:`open_bounded` opens ``url`` (optionally from a byte offset) with the standard library's
``urllib`` (proxies, TLS) and a watchdog thread (:class:`Watch`) that shuts the connection's
socket down, ending any blocked read at once, when the connection plus the headers take longer
than :attr:`TransferLimits.stall`, when no byte of the body arrives for that long, or when the
body is slower than :attr:`TransferLimits.min_rate` over any :attr:`TransferLimits.rate_window`
seconds. Redirects are followed at most :data:`MAX_REDIRECTS` times, to ``http``/``https``
only and never from ``https`` down to ``http``. :mod:`sketchrnn.io.download` builds the
verified, resumable file download on it.

Written here because no HTTP client library enforces a minimum rate or a deadline on the
headers: ``urllib``/``urllib3``/``httpx`` time out each socket read, not a trickle.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import os
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from dataclasses import dataclass
from typing import Any

from sketchrnn.io.files import size_text

__all__ = [
    "MAX_REDIRECTS",
    "TransferLimits",
    "Watch",
    "open_bounded",
    "content_range",
    "unsatisfiable_size",
    "content_length",
    "quoted",
]

MAX_REDIRECTS = 5
_REASON_CHARS = 120  # of a server's own text quoted in an error (a status reason, a header)


def _env_seconds(name: str, default: float, allow_zero: bool = False) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"${name} must be a number, got {text!r:.40}") from None
    if not (value >= 0 if allow_zero else value > 0) or value == float("inf"):
        what = "a finite number >= 0" if allow_zero else "a positive finite number"
        raise ValueError(f"${name} must be {what}, got {text!r:.40}")
    return value


@dataclass(frozen=True)
class TransferLimits:
    """How long a transfer may take before it is stopped (see the module docstring).

    ``stall``: seconds without a byte (and for the connection plus the answer's headers);
    ``min_rate``: bytes per second, averaged over every ``rate_window`` seconds of the body
    (0: no minimum). A trickle can thus last at most ``cap / min_rate`` seconds."""

    stall: float = 60.0
    min_rate: float = 16 * 1024
    rate_window: float = 60.0

    @classmethod
    def from_env(cls, stall: float | None = None) -> TransferLimits:
        """The limits from ``$SKETCHRNN_DOWNLOAD_STALL_SECONDS``,
        ``$SKETCHRNN_DOWNLOAD_MIN_RATE`` (bytes/s) and
        ``$SKETCHRNN_DOWNLOAD_RATE_WINDOW_SECONDS``, else the defaults; ``stall`` (a
        caller's ``timeout``) wins over the environment."""
        d = cls()
        return cls(
            stall=stall if stall is not None else _env_seconds(
                "SKETCHRNN_DOWNLOAD_STALL_SECONDS", d.stall),
            min_rate=_env_seconds("SKETCHRNN_DOWNLOAD_MIN_RATE", d.min_rate, allow_zero=True),
            rate_window=_env_seconds("SKETCHRNN_DOWNLOAD_RATE_WINDOW_SECONDS", d.rate_window),
        )  # fmt: skip


class Watch:
    """A watchdog thread over one transfer: it shuts the connection's socket down (which ends
    any blocked read at once) when the headers take longer than ``stall``, when no byte
    arrives for ``stall`` seconds, or when the body is slower than ``min_rate``; ``reason``
    then says which."""

    def __init__(self, limits: TransferLimits):
        self.limits = limits
        self.reason: str | None = None
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._started = time.monotonic()
        self._body_since: float | None = None
        self._last_byte = self._started
        self._received = 0
        self._samples: deque[tuple[float, int]] = deque()
        self._thread = threading.Thread(target=self._run, name="download-watch", daemon=True)
        self._thread.start()

    def attach(self, sock: socket.socket) -> None:
        with self._lock:
            self._socks.append(sock)
            if self.reason is not None:
                _shutdown(sock)

    def body_started(self) -> None:
        now = time.monotonic()
        self._body_since = self._last_byte = now
        self._samples.append((now, 0))

    def got(self, n: int) -> None:
        self._received += n
        self._last_byte = time.monotonic()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def _check(self, now: float) -> str | None:
        stall = self.limits.stall
        if self._body_since is None:
            if now - self._started > stall:
                return f"no answer within {stall:g} s (stalled)"
            return None
        if now - self._last_byte > stall:
            return f"no data for {stall:g} s (stalled after {size_text(self._received)})"
        window, rate = self.limits.rate_window, self.limits.min_rate
        self._samples.append((now, self._received))
        while len(self._samples) > 1 and now - self._samples[1][0] >= window:
            self._samples.popleft()
        then, received_then = self._samples[0]
        if rate > 0 and now - then >= window and self._received - received_then < rate * window:
            got = self._received - received_then
            return (
                f"too slow: {size_text(got)} in the last {now - then:.0f} s, under the minimum "
                f"of {size_text(int(rate))}/s ($SKETCHRNN_DOWNLOAD_MIN_RATE lowers it)"
            )
        return None

    def _run(self) -> None:
        tick = min(0.25, self.limits.stall / 4, self.limits.rate_window / 4)
        while not self._done.wait(tick):
            reason = self._check(time.monotonic())
            if reason is not None:
                with self._lock:
                    self.reason = reason
                    for sock in self._socks:
                        _shutdown(sock)
                return


def _shutdown(sock: socket.socket) -> None:
    # The plain socket's shutdown (not SSLSocket's, which would drop its TLS state under a
    # read in progress in the other thread): the blocked read then returns or fails at once.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


# ----------------------------------------------------------------------------- HTTP


class _Watched:
    """What both connection classes add: every socket they open is handed to the watchdog,
    the plain one as soon as it is connected (so a crawling TLS handshake is bounded too) and
    the TLS one after the handshake; reads then time out only at the backstop."""

    sock: Any
    timeout: Any

    def _watch_sockets(self, watch: Watch) -> None:
        self._watch = watch
        create = self._create_connection  # type: ignore[has-type]

        def create_connection(*args: Any, **kwargs: Any) -> socket.socket:
            sock = create(*args, **kwargs)
            watch.attach(sock)
            return sock

        self._create_connection = create_connection

    def _connected(self) -> None:
        self._watch.attach(self.sock)
        self.sock.settimeout(_backstop(self._watch.limits))


class _WatchedHTTP(_Watched, http.client.HTTPConnection):
    def __init__(self, *args: Any, watch: Watch, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._watch_sockets(watch)

    def connect(self) -> None:
        super().connect()
        self._connected()


class _WatchedHTTPS(_Watched, http.client.HTTPSConnection):
    def __init__(self, *args: Any, watch: Watch, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._watch_sockets(watch)

    def connect(self) -> None:
        super().connect()
        self._connected()


def _backstop(limits: TransferLimits) -> float:
    # The watchdog stops a stall at `stall` seconds (saying how far the transfer got); the
    # socket's own timeout is only a backstop behind it.
    return 2 * limits.stall + 1


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, watch: Watch):
        super().__init__()
        self.watch = watch

    def http_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(functools.partial(_WatchedHTTP, watch=self.watch), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, watch: Watch):
        super().__init__()
        self.watch = watch

    def https_open(self, req: urllib.request.Request) -> Any:
        # http.client's default TLS context, as urlopen uses it.
        return self.do_open(functools.partial(_WatchedHTTPS, watch=self.watch), req)


class _Redirects(urllib.request.HTTPRedirectHandler):
    max_redirections = MAX_REDIRECTS

    def redirect_request(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        old = urllib.parse.urlsplit(req.full_url).scheme
        new = urllib.parse.urlsplit(newurl).scheme.lower()
        if new not in ("http", "https") or (old == "https" and new == "http"):
            raise urllib.error.HTTPError(
                req.full_url, code, f"redirect to {newurl!r:.{_REASON_CHARS}} refused", headers, fp
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def open_bounded(url: str, start: int, watch: Watch) -> Any:
    """The answer to ``GET url`` (with ``Range: bytes=start-`` when ``start``)."""
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        _HTTPHandler(watch),
        _HTTPSHandler(watch),
        _Redirects(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    headers = {"User-Agent": "sketchrnn", "Accept-Encoding": "identity"}
    if start > 0:
        headers["Range"] = f"bytes={start}-"
    request = urllib.request.Request(url, headers=headers)
    return opener.open(request, timeout=watch.limits.stall)  # the connect's own timeout


def quoted(text: object) -> str:
    return " ".join(str(text).split())[:_REASON_CHARS]


def content_range(headers: Any) -> tuple[int, int, int | None] | None:
    """``Content-Range: bytes FIRST-LAST/TOTAL`` as numbers (``TOTAL`` ``None`` for ``*``),
    or ``None`` when absent or malformed."""
    unit, _, spec = (headers.get("Content-Range") or "").strip().partition(" ")
    span, _, total = spec.strip().partition("/")
    first, _, last = span.partition("-")
    if unit.lower() != "bytes" or not (first.isdigit() and last.isdigit()):
        return None
    if int(last) < int(first) or not (total == "*" or total.isdigit()):
        return None
    return int(first), int(last), None if total == "*" else int(total)


def unsatisfiable_size(headers: Any) -> int | None:
    """The size in a 416 answer's ``Content-Range: bytes */SIZE``, if it says one."""
    value = (headers.get("Content-Range") or "").strip()
    size = value.removeprefix("bytes */")
    return int(size) if value.startswith("bytes */") and size.isdigit() else None


def content_length(headers: Any) -> int | None:
    value = (headers.get("Content-Length") or "").strip()
    return int(value) if value.isdigit() else None
