"""Where the page's models come from, in Chromium: the official collection fetched through the
server (a local server in the collection's layout, never the internet), converted and drawn
with, with its progress, its 403/404 answers and no network said as such; and the static site
of ``sketchrnn export-site``, opened from ``python -m http.server`` with no sketchrnn process
behind it, drawing in every mode its models allow. Also the site's writer itself: what it
holds, and what it refuses."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest
from helpers import free_port
from models.test_zoo import server as collection  # noqa: F401 (the fixture: a local collection)
from web.fixtures import tiny_models
from web.live import chromium, chromium_missing, draw, live_server, open_page

from sketchrnn.web.site import SiteError, export_site

STROKE = [(0.30, 0.30), (0.45, 0.28), (0.55, 0.40), (0.50, 0.55), (0.35, 0.60)]
BOX = [(0.3, 0.3), (0.7, 0.3), (0.7, 0.7), (0.3, 0.7), (0.3, 0.3)]
LINE = [(0.2, 0.5), (0.5, 0.5), (0.8, 0.5)]
DONE = "#status:has-text('drew'), #status:has-text('finished')"


def needs_browser():
    missing = chromium_missing()
    if missing:
        pytest.skip(f"browser tests need Chromium and Playwright: {missing}")
    pytest.importorskip("onnx", reason="the onnx extra is not installed")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("site-models")
    return root, tiny_models(root)


@pytest.fixture(scope="module")
def browser():
    needs_browser()
    with chromium() as b:
        yield b


def settle(page):
    assert page.errors == [], page.errors
    assert page.outside == [], f"the page fetched from outside: {page.outside}"
    assert page.drawing_requests == [], (
        f"the page asked the server to draw: {page.drawing_requests}"
    )


# ----------------------------------------------------------------------------- the site


@pytest.fixture(scope="module")
def site(models, portable_store, runtime_dir, tmp_path_factory):
    pytest.importorskip("onnx", reason="the onnx extra is not installed")
    root, _ = models
    specs = [f"{name}={root / name}" for name in ("vae", "decoder", "classes", "embednet")]
    out = tmp_path_factory.mktemp("sites") / "site"
    return export_site(out, specs, runtime=runtime_dir, store=portable_store)


def test_the_site_holds_the_page_the_runtime_and_the_models(site):
    listing = json.loads((site / "models.json").read_text())
    assert [m["name"] for m in listing["models"]] == ["vae", "decoder", "classes", "embednet"]
    assert listing["runtime"]["ready"] and listing["page"]["drawing_fill"] > 0
    for entry in listing["models"]:
        folder = site / entry["portable"]
        manifest = json.loads((folder / "manifest.json").read_text())
        files = {"manifest.json", *(g["file"] for g in manifest["graphs"].values())}
        assert {p.name for p in folder.iterdir()} == files
        assert entry["portable_bytes"] == sum(p.stat().st_size for p in folder.iterdir())
        assert entry["typical_extent"] > 0
    static = {p.name for p in (site / "static").iterdir()}
    assert {"app.js", "sketchrnn.js", "style.css", "ort.wasm.bundle.min.mjs",
            "ort-wasm-simd-threaded.wasm"} <= static  # fmt: skip
    assert (site / "index.html").read_text().count('src="static/app.js"') == 1


def test_the_site_writer_refuses_and_leaves_nothing_behind(
    site, models, runtime_dir, portable_store, tmp_path
):
    root, _ = models
    vae = [f"vae={root / 'vae'}"]
    kw = {"runtime": runtime_dir, "store": portable_store}
    with pytest.raises(SiteError, match="exists"):
        export_site(site, vae, **kw)
    other = tmp_path / "mine"
    other.mkdir()
    (other / "index.html").write_text("my own page")
    with pytest.raises(SiteError, match="not a site"):
        export_site(other, vae, overwrite=True, **kw)
    assert (other / "index.html").read_text() == "my own page"
    with pytest.raises(SiteError, match="holds no"):
        export_site(tmp_path / "new", vae, runtime=tmp_path, store=portable_store)
    with pytest.raises(Exception, match="nothing-here"):
        export_site(tmp_path / "new", [str(tmp_path / "nothing-here")], **kw)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no half-written site


def test_export_site_on_the_command_line(tmp_path, capsys):
    from sketchrnn.cli import main

    assert main(["export-site", str(tmp_path)]) == 2  # a folder that is not a site
    err = capsys.readouterr().err
    assert "exists" in err and str(tmp_path) in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_the_static_site_draws_in_every_mode(site, browser):
    port = free_port()
    httpd = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "-d", str(site)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            assert time.monotonic() < deadline, "http.server did not start"
            time.sleep(0.1)
        page = open_page(browser, f"http://127.0.0.1:{port}")
        assert page.locator("body").get_attribute("data-static") == "true"
        assert "this site" in page.locator("footer").text_content()
        assert page.locator("#model optgroup").count() == 1  # no collection to fetch from

        def pick(name):
            page.select_option("#model", name)
            page.wait_for_selector(f"body[data-model='{name}']")

        for name in ("vae", "decoder", "classes"):
            pick(name)
            page.click("#together-clear")
            draw(page, "#pad-together", STROKE)
            page.wait_for_selector(DONE)
            page.wait_for_selector("body[data-busy=false]")
            assert int(page.locator("#pad-together").get_attribute("data-model-strokes")) >= 1
        page.click("#tabs [data-mode=endings]")
        page.fill("#endings-n", "3")
        page.click("#endings-go")
        page.wait_for_selector("#endings-grid .cell >> nth=2")
        pick("vae")
        page.click("#tabs [data-mode=mimic]")
        draw(page, "#pad-mimic", BOX)
        page.click("#mimic-go")
        page.wait_for_selector("#mimic-results .cell >> nth=5")
        page.click("#tabs [data-mode=morph]")
        for slot in "ABCD":
            page.click(f".slot[data-slot={slot}] .sample")
            page.wait_for_selector("body[data-busy=false]")
        page.click("#morph-go")
        page.wait_for_selector("#morph-results .cell >> nth=6")
        page.click("#grid-go")
        page.wait_for_selector("#morph-results .cell >> nth=24")
        pick("embednet")
        page.click("#tabs [data-mode=imitate]")
        draw(page, "#pad-imitate", BOX)
        page.click("#imitate-go")
        page.wait_for_selector("#imitate-results .cell >> nth=3")
        draw(page, "#pad-concept-1", BOX)
        draw(page, "#pad-concept-2", LINE)
        draw(page, "#pad-query", LINE)
        page.wait_for_selector("#teach-result[data-label]")
        settle(page)
        page.context.close()
    finally:
        httpd.terminate()
        httpd.wait(timeout=10)


# ----------------------------------------------------------------------------- the collection


@pytest.fixture
def served(models, portable_store, runtime_dir, collection):  # noqa: F811 (the fixture)
    _, tiny = models
    with live_server({"vae": tiny["vae"]}, portable=portable_store, runtime=runtime_dir) as url:
        yield url


@pytest.mark.slow
def test_an_official_model_is_a_click_away(browser, served, collection):  # noqa: F811
    page = open_page(browser, served)
    try:
        labels = page.locator("#model optgroup").evaluate_all("(gs) => gs.map((g) => g.label)")
        assert labels[1:] == [
            "Official collection (fetched on demand)",
            "Official VAEs (also mimic and morph)",
        ]
        assert page.locator("#model option[value='official:cat:gen']").count() == 1
        assert page.locator("#model option[value='official:everything:vae']").count() == 0
        seen = []
        page.expose_function("seen", lambda text: seen.append(text))
        page.evaluate(
            """() => new MutationObserver(() => window.seen(
              document.querySelector('#loading-text').textContent)).observe(
              document.querySelector('#loading'),
              {subtree: true, childList: true, characterData: true})"""
        )
        page.select_option("#model", "official:sheep:vae")  # the collection's toy VAE
        page.wait_for_selector("body[data-model='sheep']", timeout=180_000)
        page.wait_for_selector("#loading", state="hidden", timeout=180_000)
        assert any("fetching sheep (VAE)" in s for s in seen)
        assert any("converting" in s for s in seen)
        assert "sheep.vae.json" in str(collection.requests)
        assert page.locator("#model option[value='official:sheep:vae']").count() == 0
        assert page.locator("#model option[value='sheep']").count() == 1
        draw(page, "#pad-together", STROKE)
        page.wait_for_selector(DONE)
        page.click("#tabs [data-mode=mimic]")  # a VAE: mimic works too
        draw(page, "#pad-mimic", BOX)
        page.click("#mimic-go")
        page.wait_for_selector("#mimic-results .cell >> nth=0")
        settle(page)
    finally:
        page.context.close()


@pytest.mark.slow
@pytest.mark.parametrize(
    "value,said",
    [
        ("official:bear:vae", "refuses to give it (403)"),
        ("official:cat:gen", "has no such model (404)"),
        ("official:ant:vae", "not a sketch-rnn model"),
        ("offline", "cannot reach the official collection"),
    ],
)
def test_what_the_collection_says_is_said(browser, served, collection, monkeypatch, value, said):  # noqa: F811
    if value == "offline":
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            closed = s.getsockname()[1]  # nothing listens there once closed
        monkeypatch.setenv("SKETCHRNN_MODELS_URL", f"http://127.0.0.1:{closed}/")
        value = "official:rabbit:gen"
    page = open_page(browser, served)
    try:
        page.select_option("#model", value)
        page.wait_for_selector("#error:not([hidden])", timeout=120_000)
        assert said in page.locator("#error-text").text_content()
        page.wait_for_selector("#loading", state="hidden")  # no fetch shown; the first model in
        assert page.locator("body").get_attribute("data-model") == "vae"  # still drawing with it
        draw(page, "#pad-together", STROKE)
        page.wait_for_selector(DONE)
        page.errors = [e for e in page.errors if "Failed to load" not in e]
        settle(page)
    finally:
        page.context.close()
