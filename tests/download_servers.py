"""Hostile HTTP servers on 127.0.0.1 for the download tests (never a real remote host).

:class:`HostileServer` serves named byte strings the way a broken or malicious server might:
ranges ignored or answered from the wrong byte, bodies that trickle, stall, stop short, never
end or are announced bigger than they are, redirects (good, looping, to another scheme),
headers that crawl in, answers that are not HTTP. Set :attr:`HostileServer.behaviour` (or
pass ``behaviour=`` per file) to one of :data:`BEHAVIOURS`; ``rate`` throttles every body (for
killing a download half-way). Import with ``from download_servers import HostileServer``.
"""

from __future__ import annotations

import http.server
import re
import threading
import time
import urllib.parse

#: What the server can do wrong (``"honest"`` does nothing wrong).
BEHAVIOURS = (
    "honest",  # ranges honoured, 416 with "bytes */SIZE" past the end
    "ignore-range",  # 200 and the whole file for a Range request
    "range-from-zero",  # 206 for a Range request, but Content-Range "bytes 0-..." and all bytes
    "range-lie",  # 206 "bytes N-..." as asked, but the bytes sent are those from byte 0
    "range-elsewhere",  # 206 honestly labelled, but starting 100 bytes before the byte asked
    "trickle",  # a few bytes, a pause, a few bytes, ... (too slow to matter)
    "stall",  # the headers and a first piece, then nothing, the connection kept open
    "truncate",  # Content-Length of the whole file, half of it sent, then the connection closed
    "endless",  # no Content-Length, bytes forever
    "huge",  # Content-Length of 1 TB
    "slow-headers",  # the status line, then one header byte a second
    "not-http",  # a line of garbage instead of an HTTP answer
    "no-length",  # no Content-Length: the body ends when the connection closes
    "redirect",  # 302 to the same path under /moved/
    "redirect-loop",  # 302 to itself
    "redirect-file",  # 302 to file:///etc/passwd
    "short-length",  # Content-Length 100 bytes short of the file, and only that much sent
    "chunked-cut",  # chunked transfer encoding, the connection closed before the last chunk
    "range-garbled",  # 206 for a Range request with a Content-Range that is not one
    "error-500",  # 500 Internal Server Error
)


class HostileServer:
    """Serves ``files`` (name -> bytes) under ``/`` (and ``/moved/``); ``requests`` records
    ``(path, Range header)``; ``behaviour`` applies to every file unless ``per_file`` names
    another; ``rate`` (bytes/s) throttles the bodies. A context manager: the server runs in a
    thread until the block ends."""

    def __init__(self, files: dict[str, bytes], behaviour: str = "honest", rate: float = 0):
        self.files = dict(files)
        self.behaviour = behaviour
        self.per_file: dict[str, str] = {}
        self.rate = rate
        self.requests: list[tuple[str, str | None]] = []
        self.trickle = (16, 0.2)  # bytes, seconds between them
        self._closing = threading.Event()  # ends the endless answers when the block ends
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 (http.server's naming)
                outer.requests.append((self.path, self.headers.get("Range")))
                try:
                    outer._answer(self)
                except (ConnectionError, OSError):
                    pass  # the client went away (or was killed): nothing to do

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False

        self._httpd = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/"

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._closing.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    # ------------------------------------------------------------------ answers

    def _send_body(self, h, data: bytes, *, close: bool = False) -> None:
        step = 1 << 14
        for i in range(0, len(data), step):
            h.wfile.write(data[i : i + step])
            if self.rate:
                time.sleep(step / self.rate)
        h.wfile.flush()
        if close:
            h.close_connection = True

    def _answer(self, h) -> None:
        path = urllib.parse.unquote(h.path)
        name = path.removeprefix("/moved/").lstrip("/")
        data = self.files.get(name)
        how = self.per_file.get(name, self.behaviour)
        if data is None:
            h.send_error(404)
            return
        if how == "error-500":
            h.send_error(500)
            return
        if how == "not-http":
            h.wfile.write(b"SSH-2.0-OpenSSH_9.6 this is not HTTP\r\n\r\n")
            h.close_connection = True
            return
        if how == "slow-headers":
            h.wfile.write(b"HTTP/1.1 200 OK\r\n")
            while not self._closing.wait(0.05):
                h.wfile.write(b"X")
                h.wfile.flush()
            return
        if how.startswith("redirect") and not path.startswith("/moved/"):
            target = {
                "redirect": "/moved/" + urllib.parse.quote(name),
                "redirect-loop": h.path,
                "redirect-file": "file:///etc/passwd",
            }[how]
            h.send_response(302)
            h.send_header("Location", target)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        match = re.fullmatch(r"bytes=(\d+)-", h.headers.get("Range") or "")
        start = int(match.group(1)) if match else None
        if start is not None and how in ("honest", "range-lie", "range-elsewhere", "redirect"):
            if start >= len(data):
                h.send_response(416)
                h.send_header("Content-Range", f"bytes */{len(data)}")
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
            first = max(0, start - 100) if how == "range-elsewhere" else start
            body = data[first:] if how != "range-lie" else data[: len(data) - first]
            h.send_response(206)
            h.send_header("Content-Range", f"bytes {first}-{len(data) - 1}/{len(data)}")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            self._send_body(h, body)
            return
        if start is not None and how == "range-garbled":
            h.send_response(206)
            h.send_header("Content-Range", "bytes lots-more/many")
            h.send_header("Content-Length", str(len(data) - start))
            h.end_headers()
            self._send_body(h, data[start:])
            return
        if start is not None and how == "range-from-zero":
            h.send_response(206)
            h.send_header("Content-Range", f"bytes 0-{len(data) - 1}/{len(data)}")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            self._send_body(h, data)
            return
        h.send_response(200)
        if how == "endless":
            h.send_header("Connection", "close")
            h.end_headers()
            chunk = data[: 1 << 16] or b"x" * (1 << 16)
            while not self._closing.is_set():
                h.wfile.write(chunk)
            return
        if how == "chunked-cut":
            h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
            half = data[: len(data) // 2]
            for i in range(0, len(half), 1 << 14):
                piece = half[i : i + (1 << 14)]
                h.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            h.wfile.flush()
            h.close_connection = True
            return
        if how == "short-length":
            h.send_header("Content-Length", str(len(data) - 100))
            h.end_headers()
            self._send_body(h, data[:-100])
            return
        if how == "no-length":
            h.send_header("Connection", "close")
            h.end_headers()
            self._send_body(h, data, close=True)
            return
        h.send_header("Content-Length", str(10**12 if how == "huge" else len(data)))
        h.end_headers()
        if how == "trickle":
            size, pause = self.trickle
            for i in range(0, len(data), size):
                h.wfile.write(data[i : i + size])
                h.wfile.flush()
                if self._closing.wait(pause):
                    return
        elif how == "stall":
            h.wfile.write(data[:1000])
            h.wfile.flush()
            self._closing.wait(600)
        elif how == "truncate":
            self._send_body(h, data[: len(data) // 2], close=True)
        else:
            self._send_body(h, data)
