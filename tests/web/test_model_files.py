"""What the page downloads from ``sketchrnn serve`` to draw in the browser: the listing, each
served model's portable folder (exported once, immutable, its SHA-256 as ETag, gzipped when it
pays) and onnxruntime-web's files; what the server says when it has none of them; the CSP the
WebAssembly needs, and nothing more."""

from __future__ import annotations

import gzip
import hashlib
import json

import pytest

pytest.importorskip("starlette", reason="the web extra is not installed (pip install -e .[web])")
from starlette.testclient import TestClient  # noqa: E402
from web.fixtures import tiny_models  # noqa: E402

from sketchrnn.web import create_app  # noqa: E402
from sketchrnn.web.files import IMMUTABLE, REVALIDATE  # noqa: E402
from sketchrnn.web.guard import SECURITY_HEADERS  # noqa: E402
from sketchrnn.web.listing import page_constants  # noqa: E402
from sketchrnn.web.portable_cache import PortableStore, PortableUnavailable, portable_key  # noqa: E402

BASE = "http://127.0.0.1"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return tiny_models(tmp_path_factory.mktemp("file-models"))


@pytest.fixture
def fake_runtime(tmp_path):
    folder = tmp_path / "runtime"
    folder.mkdir()
    (folder / "ort.wasm.bundle.min.mjs").write_text("export const ort = 1;\n" * 400)
    (folder / "ort-wasm-simd-threaded.wasm").write_bytes(b"\0asm" + bytes(range(256)) * 64)
    return folder


def client_of(app):
    return TestClient(app, base_url=BASE)


def test_the_listing_says_where_each_model_is_and_how_to_map_a_canvas(models, tmp_path):
    store = PortableStore(tmp_path / "portable")
    app = create_app({"vae": models["vae"], "embednet": models["embednet"]}, portable=store,
                     runtime=None)  # fmt: skip
    with client_of(app) as c:
        data = c.get("/api/models").json()
    assert data["catalog"] is True
    assert data["page"] == page_constants()
    assert data["runtime"]["ready"] is False
    assert "sketchrnn runtime install" in data["runtime"]["message"]
    by_name = {m["name"]: m for m in data["models"]}
    vae = by_name["vae"]
    assert vae["portable"] == f"models/vae-{portable_key(models['vae'])}/"
    assert vae["portable_ready"] is False and vae["portable_bytes"] is None
    assert vae["portable_error"] is None
    assert vae["typical_extent"] > 0
    assert by_name["embednet"]["typical_extent"] == pytest.approx(10 * 10.0)  # 10 units


def test_portable_key_follows_the_weights(models):
    import copy

    import torch

    key = portable_key(models["vae"])
    assert len(key) == 16 and portable_key(copy.deepcopy(models["vae"])) == key
    changed = copy.deepcopy(models["vae"])
    with torch.no_grad():
        next(changed.parameters()).add_(1e-3)
    assert portable_key(changed) != key
    assert portable_key(models["decoder"]) != key


@pytest.mark.slow
def test_model_files_are_exported_once_and_sent_immutable(models, portable_store, fake_runtime):
    app = create_app({"vae": models["vae"]}, portable=portable_store, runtime=fake_runtime)
    with client_of(app) as c:
        url = "/" + c.get("/api/models").json()["models"][0]["portable"]
        r = c.get(url + "manifest.json")
        assert r.status_code == 200, r.text
        assert r.headers["cache-control"] == IMMUTABLE
        manifest = r.json()
        assert manifest["format"] == "sketchrnn-portable" and manifest["name"] == "vae"
        assert r.headers["etag"] == f'"{hashlib.sha256(r.content).hexdigest()}"'
        entry = c.get("/api/models").json()["models"][0]
        assert entry["portable_ready"] is True
        total = 0
        for graph in manifest["graphs"].values():
            r = c.get(url + graph["file"], headers={"accept-encoding": "identity"})
            assert r.status_code == 200 and r.headers["cache-control"] == IMMUTABLE
            assert len(r.content) == graph["bytes"]
            assert r.headers["etag"] == f'"{graph["sha256"]}"'
            assert hashlib.sha256(r.content).hexdigest() == graph["sha256"]
            total += graph["bytes"]
            again = c.get(url + graph["file"], headers={"if-none-match": r.headers["etag"]})
            assert again.status_code == 304 and again.content == b""
        assert entry["portable_bytes"] == total + len(json.dumps(manifest, indent=2)) + 1
        # gzipped for a browser that takes it, when that makes it smaller
        r = c.get(url + "manifest.json", headers={"accept-encoding": "gzip"})
        assert r.headers.get("content-encoding") == "gzip" and r.json() == manifest
        # only the files the manifest lists, of a folder this server has now
        for path in ("config.json", "..%2Fmanifest.json", "manifest.json.gz", "step.onnx.part"):
            assert c.get(url + path).status_code == 404
        assert c.get("/models/vae-0000000000000000/manifest.json").status_code == 404
        assert c.get("/models/other-" + url.split("-")[-1] + "manifest.json").status_code == 404


def test_the_runtime_files_and_the_page(models, tmp_path, fake_runtime):
    store = PortableStore(tmp_path / "portable")
    app = create_app({"vae": models["vae"]}, portable=store, runtime=fake_runtime)
    with client_of(app) as c:
        assert c.get("/api/models").json()["runtime"] == {"ready": True, "message": None}
        r = c.get("/static/ort-wasm-simd-threaded.wasm", headers={"accept-encoding": "gzip"})
        assert r.status_code == 200 and r.headers["content-type"] == "application/wasm"
        assert r.headers["cache-control"] == REVALIDATE
        assert r.headers["content-encoding"] == "gzip"
        raw = (fake_runtime / "ort-wasm-simd-threaded.wasm").read_bytes()
        assert r.content == raw  # httpx undoes the gzip
        assert r.headers["etag"] == f'"{hashlib.sha256(raw).hexdigest()}"'
        assert (
            c.get(
                "/static/ort-wasm-simd-threaded.wasm", headers={"if-none-match": r.headers["etag"]}
            ).status_code
            == 304
        )
        r = c.get("/static/ort.wasm.bundle.min.mjs")
        assert r.headers["content-type"].startswith("text/javascript")
        # compressed once, kept: the gzipped copy is in the store's folder
        assert list((store.root / ".gzip").glob("*.gz"))
        r = c.get("/static/sketchrnn.js")
        assert r.status_code == 200 and "export class SketchModel" in r.text
        r = c.get("/")
        assert r.status_code == 200 and 'src="static/app.js"' in r.text
        assert r.headers["cache-control"] == "no-cache"
        for other in ("/static/index.html", "/index.html"):
            r = c.get(other, follow_redirects=False)
            assert r.status_code == 308 and r.headers["location"] == "/"


def test_without_the_runtime_the_page_is_told_what_to_run(models, tmp_path):
    app = create_app({"vae": models["vae"]}, portable=PortableStore(tmp_path / "p"), runtime=None)
    with client_of(app) as c:
        r = c.get("/static/ort-wasm-simd-threaded.wasm")
        assert r.status_code == 404
        assert "sketchrnn runtime install" in r.json()["error"]["message"]


def test_a_model_without_a_portable_form_says_why(models, tmp_path):
    class Broken(PortableStore):
        def export(self, served):
            self._failed[self.key(served)] = f"{served.name}: no portable form (onnx missing)"
            raise PortableUnavailable(self._failed[self.key(served)])

    app = create_app({"vae": models["vae"]}, portable=Broken(tmp_path / "p"), runtime=None)
    with client_of(app) as c:
        url = "/" + c.get("/api/models").json()["models"][0]["portable"]
        r = c.get(url + "manifest.json")
        assert r.status_code == 422 and "onnx missing" in r.json()["error"]["message"]
        entry = c.get("/api/models").json()["models"][0]
        assert entry["portable"] is None and "onnx missing" in entry["portable_error"]


def test_the_csp_allows_webassembly_and_nothing_else_more():
    policy = dict(
        part.strip().split(" ", 1)
        for part in SECURITY_HEADERS["Content-Security-Policy"].split(";")
    )
    assert policy["script-src"] == "'self' 'wasm-unsafe-eval'"
    assert policy["default-src"] == "'self'" and policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'" and policy["object-src"] == "'none'"
    assert "unsafe-inline" not in SECURITY_HEADERS["Content-Security-Policy"]
    assert "'unsafe-eval'" not in SECURITY_HEADERS["Content-Security-Policy"]
    assert "worker-src" not in policy and "http" not in SECURITY_HEADERS["Content-Security-Policy"]


def test_gzip_is_made_once_per_content(tmp_path):
    from sketchrnn.web.files import _Blobs

    blobs = _Blobs(tmp_path / "gz")
    text = tmp_path / "a.json"
    text.write_text(json.dumps({"x": list(range(2000))}))
    first = blobs.get(text)
    assert first.gzipped is not None
    assert gzip.decompress(first.gzipped.read_bytes()) == text.read_bytes()
    random = tmp_path / "c.onnx"
    random.write_bytes(b"".join(hashlib.sha256(bytes([i])).digest() for i in range(250)))
    assert blobs.get(random).gzipped is None  # does not pay
    assert (tmp_path / "gz" / f"{blobs.get(random).sha256}.raw").exists()
    assert _Blobs(tmp_path / "gz").get(text).gzipped == first.gzipped  # kept for next time
