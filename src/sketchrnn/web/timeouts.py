"""How long a request may take to arrive: a connection that sends its headers or its body a
byte at a time ("slowloris") is dropped in bounded time instead of being held forever.

Two pieces, because the ASGI app only sees a request once its headers are complete:

- :func:`header_deadline_protocol` makes uvicorn's HTTP protocol close a connection whose next
  request's headers have not all arrived ``seconds`` after it opened or after its last answer
  (uvicorn's own keep-alive timeout stops as soon as one byte of a new request arrives);
- :class:`BodyDeadline`, an ASGI middleware, gives a request's body ``seconds`` after its
  headers; a body later than that raises :class:`RequestTimeout` in whoever reads it (the app
  answers 408 and closes the connection).
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["RequestTimeout", "BodyDeadline", "header_deadline_protocol"]

_GRACE_S = 0.05


class RequestTimeout(Exception):
    """A request body that did not arrive in time."""


class BodyDeadline:
    """ASGI middleware: the body of each HTTP request must be complete ``seconds`` after the
    app is called (its headers are in by then); reading it later raises
    :class:`RequestTimeout`. Once the body is in, ``receive`` is passed through untouched (a
    streaming answer waits on it for the client to leave)."""

    def __init__(self, app: Any, seconds: float):
        if not seconds > 0:
            raise ValueError(f"the body timeout must be positive, got {seconds}")
        self.app, self.seconds = app, float(seconds)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.seconds
        body_done = False

        async def receive_in_time() -> dict:
            nonlocal body_done
            if body_done:
                return await receive()
            # A message that has arrived is taken even after the deadline (a slow handler
            # that reads the empty body of a GET late must not fail): a short grace for it.
            try:
                message = await asyncio.wait_for(receive(), max(deadline - loop.time(), _GRACE_S))
            except TimeoutError:
                raise RequestTimeout(
                    f"the request body did not arrive within {self.seconds:g} s"
                ) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        await self.app(scope, receive_in_time, send)


def header_deadline_protocol(base: type[asyncio.Protocol], seconds: float) -> type:
    """A subclass of uvicorn's HTTP protocol class ``base`` (h11 or httptools: both keep the
    request being answered as ``cycle``) that closes the connection when no new request's
    headers have arrived ``seconds`` after the connection opened or after its last answer."""
    if not seconds > 0:
        raise ValueError(f"the header timeout must be positive, got {seconds}")

    class HeaderDeadlineProtocol(base):  # type: ignore[valid-type,misc]
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._await_headers()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._await_headers()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
            super().connection_lost(exc)

        def _await_headers(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
            waiting_after = getattr(self, "cycle", None)
            loop = asyncio.get_running_loop()
            self._header_timer = loop.call_later(seconds, self._headers_late, waiting_after)

        def _headers_late(self, waiting_after: Any) -> None:
            # A new request began (its headers complete) since the timer was set: not late.
            if getattr(self, "cycle", None) is not waiting_after:
                return
            transport = getattr(self, "transport", None)
            if transport is not None and not transport.is_closing():
                transport.close()

    HeaderDeadlineProtocol.__name__ = f"HeaderDeadline{base.__name__}"
    return HeaderDeadlineProtocol
