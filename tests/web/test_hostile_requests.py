"""Hostile requests, each case of the outside probe (issue 19): another site's page using the
server (Host, Origin, Content-Type), frames, requests that never finish arriving, numbers of
any size or smallness, abandoned requests, and a sweep of hostile values over every route
and field that must never answer 5xx. Through the ASGI test client where that suffices, and
a real uvicorn server on 127.0.0.1 (as ``sketchrnn serve`` configures it) for the sockets."""

from __future__ import annotations

import collections
import json
import math
import socket
import sys
import threading
import time

import numpy as np
import pytest

pytest.importorskip("starlette", reason="the web extra is not installed (pip install -e .[web])")
pytest.importorskip("uvicorn", reason="the web extra is not installed (pip install -e .[web])")
from starlette.testclient import TestClient  # noqa: E402
from web.fixtures import tiny_models  # noqa: E402
from web.live import live_server  # noqa: E402

from sketchrnn.cli import main  # noqa: E402
from sketchrnn.web import Limits, create_app  # noqa: E402

SKETCH = [[100, 100, 0], [10, 0, 0], [0, 10, 1], [5, 5, 0], [10, -3, 1]]
CANVAS = {"width": 600, "height": 450}
BASE = "http://127.0.0.1"
JSON = {"content-type": "application/json"}
# The raw JSON of a number too long for json.dumps to write (Python refuses > 4300 digits).
HUGE = "1" + "0" * 4999


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return tiny_models(tmp_path_factory.mktemp("hostile-models"))


@pytest.fixture(scope="module")
def app(models):
    return create_app(models)


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app, base_url=BASE) as c:
        yield c


def served(app) -> int:
    """Jobs the inference queue has run, once it is idle (a job counts itself last)."""
    queue = app.state.queue
    deadline = time.monotonic() + 10
    while queue.stats()["running"] + queue.stats()["waiting"] and time.monotonic() < deadline:
        time.sleep(0.01)
    return queue.stats()["served"]


def assert_error(r, status, code, *words):
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code, error
    for w in words:
        assert w in error["message"], error["message"]
    return error


# ----------------------------------------------------------------------------- another site


def test_a_request_naming_another_host_is_refused_before_any_model_runs(app, client):
    before = served(app)
    body = {"model": "vae", "n": 1}
    for host in ("evil.example", "evil.example:8000", "127.0.0.1.evil.example", ""):
        r = client.post("/api/sample", json=body, headers={"host": host})
        assert_error(r, 400, "host_not_allowed", "--allow-host")
        r = client.get("/api/models", headers={"host": host})
        assert_error(r, 400, "host_not_allowed")
    assert served(app) == before
    for host in ("127.0.0.1:8000", "localhost:8000", "LOCALHOST", "[::1]:8000", "localhost."):
        assert client.get("/api/health", headers={"host": host}).status_code == 200, host


def test_more_names_are_let_in_by_allow_host(models):
    app = create_app({"vae": models["vae"]}, allowed_hosts=["drawing.example", "192.168.1.5"])
    with TestClient(app, base_url="http://drawing.example:8000") as c:
        assert c.get("/api/health").status_code == 200
        assert c.get("/api/health", headers={"host": "192.168.1.5:8000"}).status_code == 200
        r = c.get("/api/health", headers={"host": "evil.example"})
        assert_error(r, 400, "host_not_allowed", "drawing.example")
    with TestClient(create_app({"vae": models["vae"]}, allowed_hosts=["*"]), base_url=BASE) as c:
        assert c.get("/api/health", headers={"host": "anything.example"}).status_code == 200


def test_a_post_from_another_origin_is_refused(app, client):
    before = served(app)
    body = {"model": "vae", "n": 1}
    for origin in ("http://evil.example", "http://127.0.0.1:9999", "null", "file://"):
        r = client.post("/api/sample", json=body, headers={"origin": origin})
        assert_error(r, 403, "origin_not_allowed")
    assert served(app) == before
    # the page's own fetches carry its origin; programs send none
    r = client.post("/api/sample", json=body, headers={"origin": BASE})
    assert r.status_code == 200, r.text
    assert client.post("/api/sample", json=body).status_code == 200


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", None]
)
def test_a_post_must_say_it_is_json(app, client, content_type):
    before = served(app)
    headers = {"content-type": content_type} if content_type else {}
    r = client.post("/api/sample", content=b'{"model": "vae"}', headers=headers)
    assert_error(r, 415, "unsupported_media_type", "Content-Type: application/json")
    assert served(app) == before
    ok = {"content-type": "application/json; charset=utf-8"}
    assert client.post("/api/sample", content=b'{"model": "vae"}', headers=ok).status_code == 200


def test_the_probes_no_cors_request_does_not_run_the_model(app, client):
    """Host evil.example, Origin http://evil.example, Content-Type text/plain: what a page on
    another site (or DNS rebinding) sends; before, it was served and ran the model."""
    before = served(app)
    headers = {
        "host": "evil.example",
        "origin": "http://evil.example",
        "content-type": "text/plain;charset=UTF-8",
    }
    body = json.dumps({"model": "vae", "n": 64})
    for path in ("/api/sample", "/api/complete/stream"):
        r = client.post(path, content=body, headers=headers)
        assert r.status_code in (400, 403, 415), r.text
    # the right Host but a foreign page still cannot
    r = client.post("/api/sample", content=body, headers={**headers, "host": "127.0.0.1:8000"})
    assert r.status_code == 403
    assert served(app) == before


@pytest.mark.parametrize(
    "path",
    ["/", "/static/index.html", "/static/app.js", "/static/style.css", "/api/models", "/nope"],
)
def test_every_answer_has_the_security_headers(client, path):
    r = client.get(path)
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    r = client.post("/api/sample", json={"model": "vae"}, headers={"origin": "http://x.example"})
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]


# ----------------------------------------------------------------------------- numbers


def raw_body(template: dict, raw_number: str) -> bytes:
    """``template`` as JSON with the string ``"RAW"`` replaced by ``raw_number`` as is."""
    return json.dumps(template).replace('"RAW"', raw_number).encode()


HUGE_INT_PLACES = [
    ("/api/sample", {"model": "vae", "temperature": "RAW"}),
    ("/api/sample", {"model": "vae", "canvas": {"width": "RAW", "height": 400}}),
    ("/api/sample", {"model": "vae", "seed": "RAW"}),
    ("/api/sample", {"model": "vae", "n": "RAW"}),
    ("/api/complete", {"model": "vae", "sketch": [[0, 0, 0], ["RAW", 0, 1]]}),
    ("/api/complete", {"model": "vae", "sketch": [[0, 0, 0], [1, 0, "RAW"]]}),
    ("/api/complete/stream", {"model": "vae", "sketch": [[0, 0, 0], [0, "RAW", 1]]}),
    ("/api/embed", {"model": "vae", "sketches": [[[0, 0, 0], ["RAW", 1, 1]]]}),
]


@pytest.mark.parametrize("digits", [400, 5000])
@pytest.mark.parametrize("path, template", HUGE_INT_PLACES)
def test_integers_of_hundreds_or_thousands_of_digits_are_400_bad_json(
    client, path, template, digits
):
    for sign in ("", "-"):
        r = client.post(path, content=raw_body(template, sign + HUGE[:digits]), headers=JSON)
        error = assert_error(r, 400, "bad_json", f"{digits} digits")
        for internals in ("int_max_str_digits", "sys.set", "Exceeds the limit", "Traceback"):
            assert internals not in error["message"]


@pytest.mark.parametrize("raw", ["1" + "0" * 19, "1e309", "-1e309", "1" + "0" * 400 + ".5"])
@pytest.mark.parametrize("path, template", HUGE_INT_PLACES)
def test_numbers_beyond_any_drawing_are_4xx_never_500(client, path, template, raw):
    r = client.post(path, content=raw_body(template, raw), headers=JSON)
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["error"]["code"] in ("invalid_field", "bad_json"), r.text


TINY = [1e-30, 1.1e-38, 1e-39, 1e-45, 1e-300, 5e-324]


@pytest.mark.parametrize("tau", TINY)
def test_a_temperature_above_0_but_tiny_draws_never_nan(client, tau):
    assert tau > 0
    bodies = [
        ("/api/sample", {"model": "vae", "n": 4, "seed": 1}),
        ("/api/sample", {"model": "classes", "label": "cat", "n": 2}),
        ("/api/complete", {"model": "decoder", "sketch": SKETCH, "n": 3, "canvas": CANVAS}),
        ("/api/reconstruct", {"model": "vae", "sketch": SKETCH, "n": 2}),
        ("/api/interpolate", {"model": "vae", "a": SKETCH, "b": SKETCH[:3], "steps": 3}),
        ("/api/grid", {"model": "vae", "corners": [SKETCH] * 4, "size": 2}),
        ("/api/imitate", {"model": "embednet", "sketch": SKETCH, "n": 2}),
    ]
    for path, body in bodies:
        r = client.post(path, json={**body, "temperature": tau})
        assert r.status_code == 200, (path, r.text)
        for sketch in r.json()["sketches"]:
            assert all(math.isfinite(v) for row in sketch for v in row)
    r = client.post(
        "/api/complete/stream", json={"model": "vae", "sketch": SKETCH, "temperature": tau}
    )
    assert r.status_code == 200 and "event: error" not in r.text and "event: done" in r.text


# ----------------------------------------------------------------------------- the sweep

HOSTILE_VALUES = [
    "RAW:" + "9" * 400,
    "RAW:-" + "9" * 400,
    "RAW:" + HUGE,
    "RAW:1e309",
    "RAW:NaN",
    "RAW:-Infinity",
    "RAW:" + "[" * 5000 + "]" * 5000,
    2**63,
    -(2**63),
    1e308,
    -1e308,
    5e-324,
    1e-39,
    -0.0,
    0,
    -1,
    0.5,
    True,
    None,
    "",
    "x" * 5000,
    "../../etc/passwd",
    [],
    {},
    [[0, 0, 0]],
    {"width": 1},
]
ROUTES = {
    "/api/sample": {"model": "vae", "n": 1, "seed": 0, "canvas": CANVAS},
    "/api/complete": {"model": "vae", "sketch": SKETCH, "n": 2, "z_from": "prior", "seed": 0},
    "/api/complete/stream": {"model": "vae", "sketch": SKETCH, "seed": 0, "canvas": CANVAS},
    "/api/reconstruct": {"model": "vae", "sketch": SKETCH, "n": 1, "temperature": 0.3},
    "/api/interpolate": {"model": "vae", "a": SKETCH, "b": SKETCH, "steps": 2, "method": "linear"},
    "/api/grid": {"model": "vae", "corners": [SKETCH] * 4, "size": 2},
    "/api/imitate": {"model": "embednet", "sketch": SKETCH, "n": 1},
    "/api/embed": {"model": "vae", "sketches": [SKETCH], "canvas": CANVAS},
    "/api/classify": {
        "model": "embednet",
        "concepts": [{"name": "a", "examples": [SKETCH]}, {"name": "b", "examples": [SKETCH]}],
        "query": SKETCH,
    },
}


def hostile_bodies():
    """Every route with each of its fields (and a coordinate, a pen, a canvas side) replaced
    by each hostile value: ``(path, raw JSON body)``."""
    for path, base in ROUTES.items():
        places = [(k,) for k in base] + [("sketch", 1, 0), ("sketch", 1, 2), ("canvas", "width")]
        for place in places:
            if place[0] not in base:
                continue
            for value in HOSTILE_VALUES:
                body = json.loads(json.dumps(base))
                target = body
                for key in place[:-1]:
                    target = target[key]
                raw = value.startswith("RAW:") if isinstance(value, str) else False
                target[place[-1]] = "RAW" if raw else value
                text = json.dumps(body)
                yield path, text.replace('"RAW"', value[4:]) if raw else text


def test_no_hostile_value_anywhere_gets_a_5xx(client):
    statuses: collections.Counter = collections.Counter()
    for path, text in hostile_bodies():
        r = client.post(path, content=text.encode(), headers=JSON)
        statuses[r.status_code] += 1
        assert r.status_code < 500, (path, text[:300], r.text)
        if r.status_code == 200 and path.endswith("/stream"):
            assert "event: error" not in r.text, (text[:300], r.text)
        elif r.status_code >= 400:
            assert set(r.json()["error"]) >= {"code", "message"}
    total = sum(statuses.values())
    print(f"hostile sweep: {total} requests, statuses {dict(sorted(statuses.items()))}")
    assert total > 500 and statuses[200] > 0


# ----------------------------------------------------------------------------- a real server


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=15)
    return sock


def closed_within(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """Whether the server closes ``sock`` within ``seconds`` (reading what it sends)."""
    sock.settimeout(0.2)
    received = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return True, received
        if not chunk:
            return True, received
        received += chunk
    return False, received


@pytest.fixture(scope="module")
def live(models):
    limits = Limits(header_timeout_s=0.5, body_timeout_s=0.5)
    with live_server({"vae": models["vae"]}, limits=limits) as url:
        yield url


def test_headers_that_never_finish_are_dropped(live):
    idle = connect(live)  # connects and sends nothing
    slow = connect(live)  # sends a byte at a time, forever
    slow.sendall(b"POST /api/sample HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    stop = threading.Event()

    def drip():
        while not stop.is_set():
            try:
                slow.sendall(b"X")
            except OSError:
                return
            time.sleep(0.1)

    threading.Thread(target=drip, daemon=True).start()
    try:
        assert closed_within(idle, 10)[0]
        assert closed_within(slow, 10)[0]
    finally:
        stop.set()
        idle.close()
        slow.close()
    # and the server goes on serving
    with connect(live) as ok:
        ok.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        done, answer = closed_within(ok, 10)
        assert done and answer.startswith(b"HTTP/1.1 200")


def test_a_body_that_never_finishes_is_a_408_and_dropped(live):
    with connect(live) as sock:
        sock.sendall(
            b"POST /api/sample HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"model"'
        )
        done, answer = closed_within(sock, 10)
    assert done and answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"request_timeout" in answer


class SlowSteps:
    """Makes a model's decoding steps slow and counts them."""

    def __init__(self, model, seconds: float):
        self.model, self.seconds, self.steps = model, seconds, 0
        self.inner = model.decode_step

    def __enter__(self):
        def step(*args, **kwargs):
            self.steps += 1
            time.sleep(self.seconds)
            return self.inner(*args, **kwargs)

        self.model.decode_step = step
        return self

    def __exit__(self, *exc):
        del self.model.decode_step


@pytest.mark.parametrize("path", ["/api/sample", "/api/complete/stream"])
def test_an_abandoned_request_stops_its_drawing(models, path):
    """A client that goes away stops its computation (before, 30 dropped n=64 requests kept
    the server busy for 17 s): streamed or not, the drawing stops at its next step."""
    model = models["decoder"]
    body = json.dumps({"model": "decoder", "n": 8})
    if path.endswith("/stream"):
        body = json.dumps({"model": "decoder", "sketch": SKETCH})
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    ).encode()
    with live_server({"decoder": model}, workers=1) as url, SlowSteps(model, 0.02) as s:
        with connect(url) as sock:
            sock.sendall(request)
            deadline = time.monotonic() + 10
            while s.steps < 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert s.steps >= 3, "the drawing did not start"
        # the client is gone: the drawing stops within a step or two
        deadline = time.monotonic() + 10
        while True:
            stats = health(url)["queue"]
            if stats["running"] == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        steps_then = s.steps
        time.sleep(0.3)
        assert stats["running"] == 0 and stats["cancelled"] == 1, stats
        assert s.steps == steps_then  # nothing more is drawn
        assert steps_then < model.config.max_seq_len  # it did not run to the end


def health(url: str) -> dict:
    with connect(url) as sock:
        sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        _, answer = closed_within(sock, 10)
    return json.loads(answer.split(b"\r\n\r\n", 1)[1])


# ----------------------------------------------------------------------------- the command


def test_serve_without_the_web_extra_says_what_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn raises ImportError
    assert main(["serve", "--port", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert "pip install 'sketchrnn[web]'" in err and "uvicorn" in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("workers", ["0", "1000", "two"])
def test_serve_workers_are_bounded(capsys, workers):
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--workers", workers])
    assert exit_.value.code == 2
    assert "--workers" in capsys.readouterr().err


def test_the_sweep_values_are_what_they_claim():
    """The sweep's raw numbers really are beyond a double or Python's int conversion."""
    assert len(HUGE) == 5000 and np.isinf(float("1e309"))
    with pytest.raises(ValueError):
        int(HUGE)  # Python's own limit (4300 digits): what used to leak as a 422
