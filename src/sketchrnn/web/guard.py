"""Who may ask the server, and what every answer carries (an ASGI middleware, :class:`Guard`).

A web page on any other site can make the visitor's browser send requests here: a
``no-cors`` POST of ``text/plain`` is a "simple" request that needs no permission, and runs
the model; by DNS rebinding (its own name pointed at 127.0.0.1) such a page can even read the
answers. So, before any route runs:

- the ``Host`` header must name this server by one of the allowed names (loopback names by
  default, more with ``serve --allow-host``): a rebinding page's requests carry its own name;
- a POST that carries an ``Origin`` (browsers send one with every cross-site POST and with a
  page's own fetches; programs such as curl send none) must come from this server's own
  origin;
- a POST must say ``Content-Type: application/json``, which a cross-site form or ``no-cors``
  fetch cannot send without a CORS preflight, which this server never grants;

and every answer (the page, the static files, the API) carries the security headers, the
Content-Security-Policy among them (nothing from elsewhere, no framing). Refusals are the
API's JSON errors. Written here rather than with Starlette's ``TrustedHostMiddleware``, which
answers in plain text and checks neither Origin nor Content-Type.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

__all__ = ["Guard", "LOOPBACK_NAMES", "SECURITY_HEADERS", "host_name"]

#: The names of this machine a request may use unless more are allowed.
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")

#: On every answer. The page loads nothing from anywhere but this server and is never framed.
#: ``'wasm-unsafe-eval'`` lets it compile WebAssembly (onnxruntime-web, which draws in the
#: browser); it allows no JavaScript eval.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; "
        "script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'; object-src 'none'; "
        "base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
_HEADERS = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in SECURITY_HEADERS.items()]


def host_name(host: str) -> str:
    """The name in a ``Host`` header (or an origin's netloc): lower case, without the port,
    the brackets of an IPv6 address or a final dot."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


class Guard:
    """The ASGI middleware in front of the app: Host allowlist, Origin check and JSON-only
    POSTs (see the module's docstring), and :data:`SECURITY_HEADERS` on every answer.

    ``allowed_hosts``: names (``"localhost"``, ``"192.168.1.5"``, ``"drawing.example"``)
    requests may use besides :data:`LOOPBACK_NAMES`; ``"*"`` allows any (for a server behind
    a proxy that checks them itself).
    """

    def __init__(self, app: Any, allowed_hosts: Iterable[str] = ()):
        self.app = app
        self.allowed = {host_name(h) for h in (*LOOPBACK_NAMES, *allowed_hosts)}
        self.any_host = "*" in self.allowed

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self.refusal(scope)
        if refusal is not None:
            await _answer(send, *refusal)
            return

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in _HEADERS if k not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def refusal(self, scope: dict) -> tuple[int, str, str] | None:
        """``(status, code, message)`` of a request refused before it reaches a route."""
        headers: dict[str, str] = {}
        for key, value in scope.get("headers", []):
            headers.setdefault(key.decode("latin-1").lower(), value.decode("latin-1"))
        host = headers.get("host", "")
        name = host_name(host)
        if not self.any_host and name not in self.allowed:
            shown = sorted(self.allowed)
            return (
                400,
                "host_not_allowed",
                f"this server answers to {', '.join(shown)}, not {name or '(no Host header)'!r}; "
                "start it with --allow-host NAME to add a name",
            )
        if scope.get("method") != "POST":
            return None
        origin = headers.get("origin")
        if origin is not None and not self._same_origin(origin, host):
            return (
                403,
                "origin_not_allowed",
                f"a page from {origin!r} may not use this server (only its own page may)",
            )
        media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media != "application/json":
            return (
                415,
                "unsupported_media_type",
                "send the request body as JSON with the header Content-Type: application/json"
                f" (got {media or 'none'})",
            )
        return None

    @staticmethod
    def _same_origin(origin: str, host: str) -> bool:
        """Whether ``origin`` (``scheme://host[:port]``; ``null`` from a sandboxed or file
        page) is this server as the request names it. The scheme is not compared: behind a
        proxy that ends TLS the server sees http where the page has https."""
        parts = urlsplit(origin.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return False
        return parts.netloc.lower() == host.strip().lower()  # the Host is checked already


async def _answer(send: Any, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *_HEADERS,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
