"""A live server on 127.0.0.1 in a thread, for the browser tests and the screenshots."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from helpers import free_port

from sketchrnn.web import Limits, create_app
from sketchrnn.web.server import server_config

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def live_server(
    models: dict[str, Any], *, limits: Limits | None = None, **app_kwargs: Any
) -> Iterator[str]:
    """Serve ``models`` on a free loopback port as ``sketchrnn serve`` does (its uvicorn
    config: the header deadline, the connection bound); yields the base URL."""
    limits = limits or Limits()
    app = create_app(models, limits=limits, **app_kwargs)
    port = free_port()
    config = server_config(app, "127.0.0.1", port, limits, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    import importlib.util
    import os

    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (pip install -e .[dev])"
    if not os.path.exists(CHROMIUM):
        return f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    return None


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium under Playwright (nothing is downloaded)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def open_page(
    browser: Any,
    base_url: str,
    *,
    width: int = 1280,
    height: int = 900,
    touch: bool = False,
    path: str = "/",
    wait: bool = True,
) -> Any:
    """A new page at ``base_url`` once its models are listed; ``page.errors`` collects script
    errors, ``page.outside`` requests to anywhere but the server and ``page.drawing_requests``
    the POSTs that would have the server draw (the page draws in the browser: all three
    should stay empty). ``touch``: a phone's context (touch events, a mobile viewport)."""
    extra = {"has_touch": True, "is_mobile": True, "device_scale_factor": 2} if touch else {}
    context = browser.new_context(
        viewport={"width": width, "height": height}, accept_downloads=True, **extra
    )
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base_url)
    page = context.new_page()
    page.touch = touch
    page.errors = []
    page.outside = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))

    def console(message: Any) -> None:
        # A refused request (4xx) is logged as a console error by Chromium: expected there.
        if message.type == "error" and "Failed to load resource" not in message.text:
            page.errors.append(message.text)

    page.on("console", console)
    page.drawing_requests = []
    local = (base_url, "data:", "blob:")

    def request(r: Any) -> None:
        if not r.url.startswith(local):
            page.outside.append(r.url)
        elif r.method == "POST" and "/api/" in r.url and not r.url.endswith("/api/fetch"):
            page.drawing_requests.append(r.url)

    page.on("request", request)
    page.set_default_timeout(60_000)
    page.goto(base_url + path)
    if wait:
        page.wait_for_selector("body[data-ready=true]")
    return page


def draw(page: Any, selector: str, points: list[tuple[float, float]]) -> None:
    """One stroke through ``points`` (fractions of the canvas's size): with a finger on a
    touch page (:func:`open_page` with ``touch``: Chromium's own touch events, through the
    DevTools protocol), else with the mouse. The canvas is scrolled into view first."""
    page.locator(selector).scroll_into_view_if_needed()
    box = page.locator(selector).bounding_box()
    xy = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    if getattr(page, "touch", False):
        finger(page, xy)
        return
    page.mouse.move(*xy[0])
    page.mouse.down()
    for x, y in xy[1:]:
        page.mouse.move(x, y, steps=4)
    page.mouse.up()


def finger(page: Any, xy: list[tuple[float, float]], steps: int = 4) -> None:
    """One finger through the viewport points ``xy`` (``steps`` moves between two points)."""
    cdp = getattr(page, "cdp", None) or page.context.new_cdp_session(page)
    page.cdp = cdp

    def send(kind: str, at: tuple[float, float] | None) -> None:
        points = [] if at is None else [{"x": at[0], "y": at[1]}]
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

    send("touchStart", xy[0])
    for (x0, y0), (x1, y1) in zip(xy, xy[1:], strict=False):
        for k in range(1, steps + 1):
            send("touchMove", (x0 + (x1 - x0) * k / steps, y0 + (y1 - y0) * k / steps))
    send("touchEnd", None)
