"""The catalog of official models in the server: listing the collection, fetching a missing
model through the server into the cache with progress, then serving it; the collection's own
403/404 answers, a file that is not a model, and no network, each said as such. Against a
local server in the collection's layout (the fixture of ``sketchrnn models download``'s tests),
never the internet."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest

pytest.importorskip("starlette", reason="the web extra is not installed (pip install -e .[web])")
from models.test_zoo import server  # noqa: E402, F401 (the fixture: a local collection)
from starlette.testclient import TestClient  # noqa: E402
from web.fixtures import tiny_models  # noqa: E402

from sketchrnn.models import zoo  # noqa: E402
from sketchrnn.web import create_app  # noqa: E402
from sketchrnn.web.catalog import Catalog, failure_code  # noqa: E402
from sketchrnn.web.server import load_models  # noqa: E402

BASE = "http://127.0.0.1"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return tiny_models(tmp_path_factory.mktemp("catalog-models"))


@pytest.fixture
def collection(server):  # noqa: F811 (the imported fixture)
    """The local collection (``server`` of tests/models/test_zoo.py): the shared .gen.json
    files, a toy sheep.vae.json, bear.vae.json answering 403 and ant.vae.json that is not a
    model; SKETCHRNN_MODELS_URL and SKETCHRNN_CACHE_DIR point at it and at a fresh cache."""
    return server


@pytest.fixture
def client(models, collection):
    with TestClient(create_app({"vae": models["vae"]}), base_url=BASE) as c:
        yield c


def events(response) -> list[tuple[str, dict]]:
    out = []
    for block in response.text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        out.append((lines["event"], json.loads(lines["data"])))
    return out


def fetch(client, name, kind=None):
    body = {"name": name} if kind is None else {"name": name, "kind": kind}
    r = client.post("/api/fetch", json=body)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/event-stream")
    return events(r)


def test_the_catalog_lists_the_served_models_and_the_whole_collection(client):
    data = client.get("/api/catalog").json()
    assert data["served"] == ["vae"]
    official = {m["name"]: m for m in data["official"]}
    assert len(official) == 114 and list(official) == list(zoo.OFFICIAL_MODELS)
    assert official["cat"] == {
        "name": "cat",
        "kinds": ["gen", "vae"],
        "cached": [],
        "served": {"gen": None, "vae": None},
    }
    assert official["everything"]["kinds"] == ["gen"]


def test_fetching_a_missing_model_downloads_it_with_progress_then_serves_it(client, collection):
    got = fetch(client, "sheep")
    kinds = [kind for kind, _ in got]
    assert kinds[0] == "start" and kinds[-1] == "done" and "progress" in kinds
    assert got[0][1] == {"name": "sheep", "kind": "gen", "url": collection.url + "sheep.gen.json"}
    progress = [data for kind, data in got if kind == "progress"]
    sizes = [data["bytes"] for data in progress]
    assert sizes == sorted(sizes) and sizes[0] == 0
    size = (collection.cache / "sheep.gen.json").stat().st_size
    assert all(data["total"] in (None, size) for data in progress)
    done = got[-1][1]
    assert done["model"] == "sheep" and done["fetched"] is True
    assert done["info"]["kind"] == "SketchRNN decoder-only" and done["info"]["max_seq_len"] > 0
    assert collection.requests == ["/sheep.gen.json"]
    assert (collection.cache / "sheep.gen.json").is_file()

    # served now: listed, drawn with, and in the catalog
    names = [m["name"] for m in client.get("/api/models").json()["models"]]
    assert names == ["vae", "sheep"]
    r = client.post("/api/sample", json={"model": "sheep", "n": 2, "seed": 0, "max_len": 40})
    assert r.status_code == 200 and len(r.json()["sketches"]) == 2
    sheep = next(m for m in client.get("/api/catalog").json()["official"] if m["name"] == "sheep")
    assert sheep["cached"] == ["gen"] and sheep["served"] == {"gen": "sheep", "vae": None}

    # asked again: served already, nothing downloaded
    again = fetch(client, "sheep", "gen")
    assert [k for k, _ in again] == ["start", "done"] and again[-1][1]["fetched"] is False
    assert collection.requests == ["/sheep.gen.json"]

    # the VAE of the same name gets a name of its own
    vae = fetch(client, "sheep", "vae")[-1][1]
    assert vae["model"] == "sheep.vae" and vae["info"]["kind"] == "SketchRNN VAE"
    body = {"model": "sheep.vae", "sketch": [[0, 0, 0], [30, 0, 0], [0, 30, 1]]}
    assert client.post("/api/reconstruct", json={**body, "temperature": 0.2}).status_code == 200


def test_a_slow_download_reports_its_progress(models, monkeypatch, tmp_path):
    from download_servers import HostileServer
    from models.test_zoo import MODELS

    if not MODELS.is_dir():
        pytest.skip(f"shared data not found: {MODELS} (set SKETCHRNN_SHARED_DATA)")
    data = (MODELS / "sheep.gen.json").read_bytes()
    monkeypatch.setenv("SKETCHRNN_CACHE_DIR", str(tmp_path / "cache"))
    with HostileServer({"sheep.gen.json": data}, rate=len(data) / 1.5) as slow:
        monkeypatch.setenv("SKETCHRNN_MODELS_URL", slow.url)
        with TestClient(create_app({"vae": models["vae"]}), base_url=BASE) as c:
            got = fetch(c, "sheep")
    progress = [d for k, d in got if k == "progress"]
    assert got[-1][0] == "done" and got[-1][1]["fetched"]
    assert any(0 < d["bytes"] < len(data) and d["total"] == len(data) for d in progress)
    assert [d["bytes"] for d in progress] == sorted(d["bytes"] for d in progress)


def test_models_served_from_the_cache_at_start_are_known_to_the_catalog(models, collection):
    zoo.download_model("bicycle", "gen", progress=False, quiet=True)
    table = load_models([str(collection.cache / "bicycle.gen.json")])
    with TestClient(create_app(table), base_url=BASE) as c:
        bicycle = next(
            m for m in c.get("/api/catalog").json()["official"] if m["name"] == "bicycle"
        )
        assert bicycle["served"]["gen"] == "bicycle" and bicycle["cached"] == ["gen"]
        done = fetch(c, "bicycle")[-1]
        assert done == ("done", {**done[1], "model": "bicycle", "fetched": False})
    assert collection.requests == ["/bicycle.gen.json"]


@pytest.mark.parametrize(
    ("name", "kind", "code", "words"),
    [
        ("bear", "vae", "forbidden", ["HTTP 403", "bear.vae"]),
        (
            "cat",
            "vae",
            "not_found",
            ["HTTP 404", "cat.vae", "not (or no longer) in the collection"],
        ),
        ("ant", "vae", "not_a_model", ["not a sketch-rnn model"]),
    ],
)
def test_the_collections_own_refusals_are_said_as_such(client, collection, name, kind, code, words):
    got = fetch(client, name, kind)
    assert [k for k, _ in got][-1] == "error"
    error = got[-1][1]["error"]
    assert error["code"] == code and error["name"] == name and error["kind"] == kind
    for w in words:
        assert w in error["message"], error["message"]
    assert list(collection.cache.glob("*.json")) == []  # nothing half-written is kept
    assert [m["name"] for m in client.get("/api/models").json()["models"]] == ["vae"]


def test_offline_says_so(models, monkeypatch, tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("SKETCHRNN_MODELS_URL", f"http://127.0.0.1:{port}/")
    monkeypatch.setenv("SKETCHRNN_CACHE_DIR", str(tmp_path / "cache"))
    with TestClient(create_app({"vae": models["vae"]}), base_url=BASE) as c:
        error = fetch(c, "cat")[-1][1]["error"]
    assert error["code"] == "offline" and "are you offline?" in error["message"]


def test_names_not_in_the_collection_are_refused_before_anything_starts(client, collection):
    r = client.post("/api/fetch", json={"name": "catt"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_in_collection"
    assert "did you mean cat" in r.json()["error"]["message"]
    r = client.post("/api/fetch", json={"name": "everything", "kind": "vae"})
    assert r.status_code == 404 and "no vae model" in r.json()["error"]["message"]
    for body in ({"name": "../../etc/passwd"}, {"name": "cat", "kind": "exe"}, {}, {"x": 1}):
        assert 400 <= client.post("/api/fetch", json=body).status_code < 500
    assert collection.requests == []


def test_two_pages_asking_for_one_model_share_one_download(models, collection):
    async def scenario():
        table = {"vae": create_app({"vae": models["vae"]}).state.models["vae"]}
        catalog = Catalog(table)

        async def run():
            return [event async for event in catalog.fetch("sheep", "gen")]

        first, second = await asyncio.gather(run(), run())
        return first[-1], second[-1], table

    (k1, d1), (k2, d2), table = asyncio.run(scenario())
    assert k1 == k2 == "done" and d1["model"] == d2["model"] == "sheep"
    assert collection.requests == ["/sheep.gen.json"] and sorted(table) == ["sheep", "vae"]


def test_failure_codes():
    assert failure_code("model x.gen: u: not found (HTTP 404); ...") == "not_found"
    assert failure_code("model x.vae: u: HTTP 403 Forbidden (...)") == "forbidden"
    assert failure_code("model x.gen: u: cannot reach the server (...); are you offline?") == (
        "offline"
    )
    assert failure_code("model x.gen: the cache folder /c is not writable (...)") == (
        "cache_not_writable"
    )
    assert failure_code("model x.gen: u: something else") == "download_failed"
