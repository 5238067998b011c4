"""The web API through the ASGI test client: every route, every limit, and that the server
keeps serving after each refusal."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

pytest.importorskip("starlette", reason="the web extra is not installed (pip install -e .[web])")
from starlette.testclient import TestClient  # noqa: E402
from web.fixtures import MAGENTA_MODEL, tiny_models  # noqa: E402

from sketchrnn.web import Limits, create_app  # noqa: E402

SKETCH = [[100, 100, 0], [10, 0, 0], [0, 10, 1], [5, 5, 0], [10, -3, 1]]
# The server answers to loopback names only (the test client's default is "testserver").
BASE = "http://127.0.0.1"
CANVAS = {"width": 600, "height": 450}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return tiny_models(tmp_path_factory.mktemp("web-models"))


@pytest.fixture(scope="module")
def client(models):
    with TestClient(create_app(models), base_url=BASE) as c:
        yield c


def post(client, path, body):
    return client.post(path, json=body)


def assert_serving(client):
    r = client.get("/api/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    r = post(client, "/api/sample", {"model": "vae", "n": 1, "seed": 1})
    assert r.status_code == 200, r.text


def assert_error(r, status, code, *words):
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code, error
    for w in words:
        assert w in error["message"], error["message"]
    return error


def is_stroke3(rows):
    a = np.asarray(rows, dtype=float)
    return a.ndim == 2 and a.shape[1] == 3 and np.isin(a[:, 2], (0, 1)).all()


# ----------------------------------------------------------------------------- the routes


def test_models_list_capabilities(client):
    data = client.get("/api/models").json()
    by_name = {m["name"]: m for m in data["models"]}
    assert set(by_name) == {"vae", "decoder", "classes", "embednet"}
    assert by_name["vae"]["capabilities"]["reconstruct"]
    assert not by_name["decoder"]["capabilities"]["reconstruct"]
    assert "decoder-only" in by_name["decoder"]["reasons"]["reconstruct"]
    assert by_name["classes"]["classes"] == ["cat", "truck"]
    assert by_name["classes"]["class_conditional"]
    assert by_name["embednet"]["capabilities"]["imitate"]
    assert not by_name["embednet"]["capabilities"]["complete"]
    assert data["limits"]["max_points"] == 2000 and data["limits"]["max_n"] == 64


def test_page_and_static_files(client):
    r = client.get("/")
    assert r.status_code == 200 and "<canvas" in r.text
    assert "default-src 'self'" in r.headers["content-security-policy"]
    for name in ("app.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200
    # Nothing on the page comes from another host.
    for name in ("/", "/static/app.js", "/static/style.css"):
        text = client.get(name).text
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in text


def test_sample(client):
    r = post(client, "/api/sample", {"model": "vae", "n": 3, "seed": 0, "canvas": CANVAS})
    sketches = r.json()["sketches"]
    assert len(sketches) == 3 and all(is_stroke3(s) for s in sketches if s)
    again = post(client, "/api/sample", {"model": "vae", "n": 3, "seed": 0, "canvas": CANVAS})
    assert again.json()["sketches"] == sketches  # a seed reproduces
    r = post(client, "/api/sample", {"model": "classes", "n": 2, "label": "truck", "seed": 0})
    assert r.status_code == 200 and len(r.json()["sketches"]) == 2


def test_complete_returns_endings_after_the_prefix(client):
    body = {"model": "decoder", "sketch": SKETCH, "n": 9, "seed": 3, "canvas": CANVAS}
    data = post(client, "/api/complete", body).json()
    assert len(data["endings"]) == 9 and len(data["sketches"]) == 9
    prefix = np.asarray(data["prefix"])
    assert len(prefix) == len(SKETCH)
    # the prefix starts at the origin, with the drawing's own shape
    assert prefix[0, :2].tolist() == [0, 0]
    np.testing.assert_allclose(prefix[1:], np.asarray(SKETCH)[1:], atol=0.02)
    for whole, ending in zip(data["sketches"], data["endings"], strict=True):
        assert whole == data["prefix"] + ending


def test_complete_vae_from_prior_and_class_conditional(client):
    body = {"model": "vae", "sketch": SKETCH, "n": 2, "z_from": "prior"}
    assert post(client, "/api/complete", body).status_code == 200
    body = {"model": "classes", "sketch": SKETCH, "n": 2, "label": 1}
    assert post(client, "/api/complete", body).status_code == 200


def read_events(response):
    events = []
    for block in response.text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_stream_yields_strokes_then_done(client):
    body = {"model": "vae", "sketch": SKETCH, "seed": 5, "canvas": CANVAS}
    r = post(client, "/api/complete/stream", body)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = read_events(r)
    assert events[0][0] == "start" and events[-1][0] == "done"
    strokes = [data["stroke"] for kind, data in events if kind == "stroke"]
    assert strokes and events[-1][1]["strokes"] == len(strokes)
    for stroke in strokes:
        assert is_stroke3(stroke) and stroke[-1][2] == 1  # each ends where the pen lifts
    # the same ending as the non-streamed call with the same seed
    whole = np.asarray(post(client, "/api/complete", {**body, "n": 1}).json()["endings"][0])
    whole[-1, 2] = 1  # a stream's last stroke always ends with the pen lifted
    np.testing.assert_allclose(np.concatenate(strokes), whole, atol=0.05)
    deadline = time.monotonic() + 5  # the worker is free again (it counts itself done last)
    while client.get("/api/health").json()["queue"]["running"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert client.get("/api/health").json()["queue"]["running"] == 0


def test_reconstruct_interpolate_grid(client):
    # Without a temperature, generate.reconstruct's own: the paper's six (Fig. 5), n each.
    r = post(client, "/api/reconstruct", {"model": "vae", "sketch": SKETCH, "n": 4})
    assert len(r.json()["sketches"]) == 24
    body = {"model": "vae", "sketch": SKETCH, "n": 4, "temperature": 0.3}
    assert len(post(client, "/api/reconstruct", body).json()["sketches"]) == 4
    r = post(client, "/api/reconstruct", {"model": "classes", "sketch": SKETCH, "label": "cat"})
    assert len(r.json()["sketches"]) == 6  # the default
    r = post(client, "/api/interpolate", {"model": "vae", "a": SKETCH, "b": SKETCH[:3]})
    assert len(r.json()["sketches"]) == 10  # generate.interpolate's default steps
    body = {"model": "classes", "a": SKETCH, "b": SKETCH[:3], "steps": 3, "label": 0}
    assert len(post(client, "/api/interpolate", body).json()["sketches"]) == 3
    corners = [SKETCH, SKETCH[:3], SKETCH[1:], SKETCH[:2]]
    r = post(client, "/api/grid", {"model": "vae", "corners": corners, "size": 3})
    assert r.json()["size"] == 3 and len(r.json()["sketches"]) == 9


def test_imitate_embed_classify(client):
    r = post(client, "/api/imitate", {"model": "embednet", "sketch": SKETCH, "n": 3})
    assert len(r.json()["sketches"]) == 3
    r = post(client, "/api/embed", {"model": "embednet", "sketches": [SKETCH, SKETCH[:3]]})
    assert r.json()["size"] == 8 and len(r.json()["embeddings"]) == 2
    r = post(client, "/api/embed", {"model": "vae", "sketches": [SKETCH]})
    assert r.json()["size"] == 8
    line = [[0, 0, 0], [50, 0, 1]]
    concepts = [{"name": "box", "examples": [SKETCH]}, {"name": "line", "examples": [line]}]
    for model in ("embednet", "vae"):
        body = {"model": model, "concepts": concepts, "queries": [SKETCH, line]}
        predictions = post(client, "/api/classify", body).json()["predictions"]
        assert len(predictions) == 2
        for p in predictions:
            assert set(p["probabilities"]) == {"box", "line"}
            assert abs(sum(p["probabilities"].values()) - 1) < 1e-3
            assert p["label"] in ("box", "line")


def test_a_bigger_canvas_is_not_a_bigger_drawing(client):
    """The same drawing on a canvas twice the size reads the same to the model: the answers
    are the same drawing, twice the size."""
    small = {"model": "vae", "sketch": SKETCH, "n": 2, "seed": 7, "canvas": CANVAS}
    big_sketch = (np.asarray(SKETCH, float) * [2, 2, 1]).tolist()
    big_canvas = {"width": 1200, "height": 900}
    big = {**small, "sketch": big_sketch, "canvas": big_canvas}
    a = post(client, "/api/complete", small).json()
    b = post(client, "/api/complete", big).json()
    for ea, eb in zip(a["endings"], b["endings"], strict=True):
        np.testing.assert_allclose(np.asarray(eb)[:, :2], 2 * np.asarray(ea)[:, :2], atol=0.05)


def test_drawings_are_simplified_like_the_training_data(client):
    line = [[10, 10, 0]] + [[1, 0.01 * (-1) ** i, 0] for i in range(499)] + [[1, 0, 1]]
    data = post(client, "/api/complete", {"model": "vae", "sketch": line, "n": 1}).json()
    assert len(data["prefix"]) == 2  # a straight line of 501 points is two points


# ----------------------------------------------------------------------------- limits


def test_body_over_one_megabyte(client):
    body = json.dumps({"model": "vae", "sketch": SKETCH, "pad": "x" * 1_100_000})
    r = client.post("/api/complete", content=body, headers={"content-type": "application/json"})
    assert_error(r, 413, "body_too_large", "1000000")

    def chunks():  # no Content-Length: counted while read
        for _ in range(12):
            yield b" " * 100_000

    r = client.post("/api/complete", content=chunks(), headers={"content-type": "application/json"})
    assert_error(r, 413, "body_too_large")
    assert_serving(client)


def test_more_than_2000_points(client):
    sketch = [[1, 1, 0]] * 2000 + [[1, 1, 1]]
    r = post(client, "/api/complete", {"model": "vae", "sketch": sketch})
    error = assert_error(r, 422, "too_many_points", "2001", "2000")
    assert error["limit"] == 2000
    assert_serving(client)


def test_too_long_for_the_model_after_simplification(client):
    zigzag = [[0, 0, 0]] + [[5, 20 * (-1) ** i, 0] for i in range(199)] + [[5, 0, 1]]
    r = post(client, "/api/complete", {"model": "vae", "sketch": zigzag})
    assert_error(r, 422, "too_many_points", "max_seq_len")
    r = post(client, "/api/complete/stream", {"model": "vae", "sketch": zigzag})
    assert_error(r, 422, "too_many_points")
    assert_serving(client)


@pytest.mark.parametrize(
    "raw, words",
    [
        ('{"model": "vae", "sketch": [[NaN, 0, 1]]}', ["NaN"]),
        ('{"model": "vae", "sketch": [[Infinity, 0, 1]]}', ["NaN or infinite"]),
        ('{"model": "vae", "sketch": [[1e400, 0, 1]]}', ["NaN or infinite"]),
        ('{"model": "vae", "sketch": [[1e7, 0, 1]]}', ["coordinates beyond"]),
        ('{"model": "vae", "sketch": [[90000, 0, 0], [90000, 0, 1]]}', ["coordinates beyond"]),
    ],
)
def test_non_finite_or_absurd_coordinates(client, raw, words):
    r = client.post("/api/complete", content=raw, headers={"content-type": "application/json"})
    assert_error(r, 422, "invalid_field", *words)
    assert_serving(client)


@pytest.mark.parametrize(
    "path, body, words",
    [
        ("/api/sample", {"model": "vae", "n": 65}, ["n:", "64"]),
        ("/api/sample", {"model": "vae", "n": 0}, ["n:"]),
        ("/api/complete", {"model": "vae", "sketch": SKETCH, "n": 1000}, ["n:", "64"]),
        ("/api/interpolate", {"model": "vae", "a": SKETCH, "b": SKETCH, "steps": 65}, ["steps"]),
        ("/api/grid", {"model": "vae", "corners": [SKETCH] * 4, "size": 9}, ["size"]),
        ("/api/reconstruct", {"model": "vae", "sketch": SKETCH, "n": 100}, ["n:"]),
    ],
)
def test_n_over_64(client, path, body, words):
    assert_error(post(client, path, body), 422, "invalid_field", *words)
    assert_serving(client)


def test_steps_over_the_models_max(client):
    r = post(client, "/api/sample", {"model": "vae", "max_len": 61})
    assert_error(r, 422, "invalid_field", "max_len", "max_seq_len is 60")
    r = post(client, "/api/complete/stream", {"model": "vae", "sketch": SKETCH, "max_len": 10**6})
    assert_error(r, 422, "invalid_field", "max_len")
    assert post(client, "/api/sample", {"model": "vae", "max_len": 60}).status_code == 200
    assert_serving(client)


@pytest.mark.parametrize("name", ["nope", "../../etc/passwd", "/work/shared", "VAE", ""])
def test_unknown_model(client, name):
    r = post(client, "/api/sample", {"model": name})
    error = assert_error(r, 404, "unknown_model")
    assert "vae" in error["models"]
    assert_serving(client)


@pytest.mark.parametrize(
    "content, words",
    [
        (b"{not json", ["not valid JSON"]),
        (b"", ["not valid JSON"]),
        (b"[1, 2, 3]", ["JSON object", "array"]),
        (b'"vae"', ["JSON object"]),
        (b"\xff\xfe\x00", ["UTF-8"]),
        (b"[" * 100_000 + b"]" * 100_000, []),
    ],
)
def test_bad_json(client, content, words):
    r = client.post("/api/sample", content=content, headers={"content-type": "application/json"})
    assert_error(r, 400, "bad_json", *words)
    assert_serving(client)


@pytest.mark.parametrize(
    "path, body, field",
    [
        ("/api/sample", {"model": 3}, "model"),
        ("/api/sample", {"model": "vae", "n": "3"}, "n"),
        ("/api/sample", {"model": "vae", "n": 2.5}, "n"),
        ("/api/sample", {"model": "vae", "n": True}, "n"),
        ("/api/sample", {"model": "vae", "temperature": "hot"}, "temperature"),
        ("/api/sample", {"model": "vae", "temperature": -1}, "temperature"),
        ("/api/sample", {"model": "vae", "temperature": 50}, "temperature"),
        ("/api/sample", {"model": "vae", "seed": -1}, "seed"),
        ("/api/sample", {"model": "vae", "canvas": [600, 400]}, "canvas"),
        ("/api/sample", {"model": "vae", "canvas": {"width": 0, "height": 5}}, "canvas.width"),
        ("/api/sample", {"model": "vae", "canvas": {"width": "a", "height": 5}}, "canvas.width"),
        ("/api/sample", {"model": "vae", "label": "cat"}, "label"),
        ("/api/sample", {"model": "classes"}, "label"),
        ("/api/sample", {"model": "classes", "label": "dog"}, "label"),
        ("/api/sample", {"model": "classes", "label": 2}, "label"),
        ("/api/complete", {"model": "vae"}, "sketch"),
        ("/api/complete", {"model": "vae", "sketch": "M 0 0 L 1 1"}, "sketch"),
        ("/api/complete", {"model": "vae", "sketch": []}, "sketch"),
        ("/api/complete", {"model": "vae", "sketch": [[1, 2]]}, "sketch[0]"),
        ("/api/complete", {"model": "vae", "sketch": [[1, 2, "up"]]}, "sketch[0]"),
        ("/api/complete", {"model": "vae", "sketch": [[1, 2, 0.5]]}, "sketch"),
        ("/api/complete", {"model": "vae", "sketch": [[1, None, 1]]}, "sketch[0]"),
        ("/api/complete", {"model": "vae", "sketch": SKETCH, "z_from": "nowhere"}, "z_from"),
        ("/api/grid", {"model": "vae", "corners": [SKETCH] * 3}, "corners"),
        ("/api/embed", {"model": "vae", "sketches": SKETCH[0]}, "sketches[0]"),
        ("/api/classify", {"model": "vae", "concepts": [], "query": SKETCH}, "concepts"),
    ],
)
def test_wrong_types(client, path, body, field):
    r = post(client, path, body)
    error = assert_error(r, 422, "invalid_field")
    assert error["message"].startswith(field), error["message"]
    assert_serving(client)


def test_unknown_field(client):
    r = post(client, "/api/sample", {"model": "vae", "temprature": 0.3})
    error = assert_error(r, 422, "unknown_field", "temprature")
    assert error["fields"] == ["temprature"]


def test_classify_needs_two_named_concepts(client):
    one = [{"name": "box", "examples": [SKETCH]}, {"name": "box", "examples": [SKETCH]}]
    r = post(client, "/api/classify", {"model": "vae", "concepts": one, "query": SKETCH})
    assert_error(r, 422, "invalid_field", "repeated")
    two = [{"name": "a", "examples": [SKETCH]}, {"name": "b", "examples": [SKETCH]}]
    r = post(client, "/api/classify", {"model": "vae", "concepts": two})
    assert_error(r, 422, "invalid_field", "query")
    assert_serving(client)


@pytest.mark.parametrize(
    "path, body, words",
    [
        ("/api/reconstruct", {"model": "decoder", "sketch": SKETCH}, ["decoder-only"]),
        ("/api/interpolate", {"model": "decoder", "a": SKETCH, "b": SKETCH}, ["decoder-only"]),
        ("/api/imitate", {"model": "vae", "sketch": SKETCH}, ["SketchEmbedNet"]),
        ("/api/sample", {"model": "embednet"}, ["reads images"]),
        ("/api/complete/stream", {"model": "embednet", "sketch": SKETCH}, ["reads images"]),
        ("/api/embed", {"model": "decoder", "sketches": [SKETCH]}, ["decoder-only"]),
    ],
)
def test_what_a_model_cannot_do(client, path, body, words):
    assert_error(post(client, path, body), 422, "unsupported", *words)
    assert_serving(client)


def test_wrong_method_and_unknown_route(client):
    assert_error(client.get("/api/sample"), 405, "method_not_allowed")
    assert_error(client.get("/api/nothing"), 404, "not_found")
    assert_error(client.get("/static/../../pyproject.toml"), 404, "not_found")
    assert_serving(client)


# ----------------------------------------------------------------------------- load


def test_a_full_queue_answers_503_at_once(models):
    app = create_app({"vae": models["vae"]}, workers=1, max_pending=1)
    gate = threading.Event()
    with TestClient(app, base_url=BASE) as c:
        queue = app.state.queue
        c.portal.start_task_soon(queue.submit, gate.wait)  # the worker: busy
        c.portal.start_task_soon(queue.submit, lambda: None)  # the one waiting place: taken
        deadline = time.monotonic() + 5
        while queue.stats()["waiting"] < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        start = time.perf_counter()
        r = post(c, "/api/sample", {"model": "vae"})
        assert time.perf_counter() - start < 1.0
        assert_error(r, 503, "busy")
        assert r.headers["retry-after"] == "1"
        gate.set()
        deadline = time.monotonic() + 5
        while queue.stats()["running"] + queue.stats()["waiting"] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert post(c, "/api/sample", {"model": "vae"}).status_code == 200
        assert queue.stats()["rejected"] == 1


def test_tighter_limits_for_a_deployment(models):
    app = create_app({"vae": models["vae"]}, limits=Limits(max_points=10, max_body_bytes=5000))
    with TestClient(app, base_url=BASE) as c:
        r = post(c, "/api/complete", {"model": "vae", "sketch": [[1, 1, 0]] * 11})
        assert_error(r, 422, "too_many_points", "10")
        r = post(c, "/api/complete", {"model": "vae", "sketch": SKETCH, "x": "y" * 6000})
        assert_error(r, 413, "body_too_large")
        assert c.get("/api/models").json()["limits"]["max_points"] == 10


def test_a_magenta_model(tmp_path):
    path = MAGENTA_MODEL / "sheep.gen.json"
    if not path.exists():
        pytest.skip(f"shared data not found: {path}")
    from sketchrnn.models import load_model

    with TestClient(create_app({"sheep": load_model(path)}), base_url=BASE) as c:
        info = c.get("/api/models").json()["models"][0]
        assert info["kind"] == "SketchRNN decoder-only" and info["max_seq_len"] == 156
        body = {"model": "sheep", "sketch": SKETCH, "seed": 0, "canvas": CANVAS}
        events = read_events(post(c, "/api/complete/stream", body))
        assert events[-1][0] == "done" and events[-1][1]["strokes"] >= 1
        sketches = post(c, "/api/sample", {"model": "sheep", "n": 4, "seed": 0, "canvas": CANVAS})
        # drawn to fit the canvas the request names: about DRAWING_FILL of its shorter side
        sides = []
        for s in sketches.json()["sketches"]:
            xy = np.cumsum(np.asarray(s)[:, :2], axis=0)
            sides.append((xy.max(0) - xy.min(0)).max())
        assert 100 < np.median(sides) < 600


# ----------------------------------------------------------------------------- empty drawings


def ending_model(end_logit: float):
    """A decoder-only model whose end-of-sketch logit is ``end_logit`` at every step."""
    import torch

    from sketchrnn.models import SketchRNN, SketchRNNConfig

    torch.manual_seed(0)
    config = SketchRNNConfig(
        dec_hidden=16, num_mixtures=2, cell="lstm", conditional=False, max_seq_len=30
    )
    model = SketchRNN(config)
    with torch.no_grad():
        model.decoder.output.weight[:3] = 0.0
        model.decoder.output.bias[:3] = torch.tensor([1.0, -1.0, end_logit])
    model.set_units(scale_factor=10.0)
    return model.eval()


def test_empty_drawings_are_drawn_again_or_said_so():
    from sketchrnn import generate

    sometimes = ending_model(0.6)  # ends at its first step about a third of the time
    first = generate.sample(sometimes, 16, temperature=1.0, seed=0)
    assert any(len(s) == 0 for s in first), "the test needs empty first draws"
    always = ending_model(30.0)
    with TestClient(create_app({"sometimes": sometimes, "always": always}), base_url=BASE) as c:
        body = {"model": "sometimes", "n": 16, "temperature": 1.0, "seed": 0}
        data = c.post("/api/sample", json=body).json()
        assert data["empty"] == [] and "note" not in data
        assert all(data["sketches"])
        # a model that always ends at once: drawn again, still empty, and the answer says so
        data = c.post("/api/sample", json={**body, "model": "always", "n": 3}).json()
        assert data["sketches"] == [[], [], []] and data["empty"] == [0, 1, 2]
        assert "ended them at their first step" in data["note"]
        # endings say why they stopped, and why they are empty
        sketch = [[0, 0, 0], [40, 0, 0], [0, 40, 1]]
        data = c.post("/api/complete", json={"model": "always", "sketch": sketch, "n": 2}).json()
        assert data["endings"] == [[], []] and data["empty"] == [0, 1]
        assert data["stopped"] == ["end_of_sketch", "end_of_sketch"]
        assert "takes the drawing as finished" in data["note"]
        body = {"model": "sometimes", "sketch": sketch, "n": 4, "max_len": 5, "seed": 1}
        data = c.post("/api/complete", json=body).json()
        for ending, stopped in zip(data["endings"], data["stopped"], strict=True):
            assert stopped == ("max_len" if len(sketch) + len(ending) >= 5 else "end_of_sketch")
        r = c.post("/api/complete/stream", json={"model": "always", "sketch": sketch})
        done = read_events(r)[-1]
        assert done[0] == "done" and done[1]["strokes"] == 0
        assert done[1]["stopped"] == "end_of_sketch" and "finished" in done[1]["note"]


def test_answers_list_no_empty_drawings_when_there_are_none(client):
    data = post(client, "/api/sample", {"model": "vae", "n": 3, "seed": 0}).json()
    assert data["empty"] == [] and "note" not in data
    body = {"model": "decoder", "sketch": SKETCH, "n": 2, "seed": 3}
    data = post(client, "/api/complete", body).json()
    assert set(data["stopped"]) <= {"end_of_sketch", "max_len"} and len(data["stopped"]) == 2
