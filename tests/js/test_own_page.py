"""docs/javascript.md, "Use a model in your own page", done as a reader does it: the page's HTML
taken from the doc, the model exported and the runtime installed with the commands it gives
(the runtime from a local server), the folder served with ``python -m http.server``, the page
opened in Debian's Chromium until it has drawn."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from helpers import FolderServer, free_port
from js.jsrun import CHROMIUM, CHROMIUM_ARGS, ROOT, real_tarball

pytestmark = pytest.mark.slow

DOC = ROOT / "docs" / "javascript.md"
MARKER = (
    "<!-- not run: tests/js/test_own_page.py serves this very block and opens it in Chromium -->"
)


def page_from_doc() -> str:
    text = DOC.read_text()
    assert MARKER in text, f"{DOC} lost the page's marker"
    block = re.search(r"```html\n(.*?)```", text[text.index(MARKER) :], re.S)
    assert block is not None
    return block.group(1)


def test_the_page_is_about_ten_lines():
    lines = page_from_doc().strip().splitlines()
    assert 7 <= len(lines) <= 12, lines


def sketchrnn(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sketchrnn.cli", *args],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip


def test_the_documented_page_draws_in_chromium(tmp_path, monkeypatch):
    pytest.importorskip("playwright", reason="playwright is not installed (pip install -e .[dev])")
    pytest.importorskip("onnx", reason="the export extra (onnx, onnxruntime) is not installed")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM}")
    served = tmp_path / "npm"
    served.mkdir()
    tarball = real_tarball(served)
    env = {**os.environ, "SKETCHRNN_CACHE": str(tmp_path / "cache")}
    page = tmp_path / "mypage"
    commands = DOC.read_text()
    assert "sketchrnn export shapes_gen mypage/model" in commands
    assert "sketchrnn runtime install mypage" in commands
    assert "python -m http.server -d mypage 8000" in commands
    done = sketchrnn("export", "shapes_gen", str(page / "model"), env=env)
    assert done.returncode == 0, done.stderr
    with FolderServer(served) as npm:
        done = sketchrnn("runtime", "install", str(page), "--url", npm.url + tarball.name, env=env)
    assert done.returncode == 0, done.stderr
    (page / "index.html").write_text(page_from_doc())

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", "-d", str(page), "--bind", "127.0.0.1", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(url, timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                tab = browser.new_page()
                errors: list[str] = []
                outside: list[str] = []
                tab.on("pageerror", lambda e: errors.append(str(e)))
                tab.on("request", lambda r: r.url.startswith(url) or outside.append(r.url))
                tab.goto(url)
                # The page has drawn when its canvas holds ink.
                try:
                    tab.wait_for_function(
                        """() => {
                            const c = document.getElementById('pad');
                            const px = c.getContext('2d').getImageData(0, 0, c.width, c.height);
                            for (let i = 3; i < px.data.length; i += 4) if (px.data[i]) return true;
                            return false;
                        }""",
                        timeout=60_000,
                    )
                except Exception as e:
                    raise AssertionError(f"the page drew nothing: {errors or e}") from None
                shot = os.environ.get("SKETCHRNN_PAGE_SHOT") or str(tmp_path / "page.png")
                tab.screenshot(path=shot)
            finally:
                browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert errors == [], errors
    assert outside == [], f"the page fetched from outside its folder: {outside}"
