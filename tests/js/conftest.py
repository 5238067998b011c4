"""Fixtures of the JavaScript runtime's tests (see jsrun.py): the exported models and the
Node and Chromium runners, each skipping with its reason."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from typing import Any

import pytest
from js.jsrun import (
    CHROMIUM,
    CHROMIUM_ARGS,
    ChromiumRunner,
    ModelStore,
    NodeRunner,
    Site,
    npm_missing,
)


@pytest.fixture(scope="session")
def exported(tmp_path_factory) -> ModelStore:
    pytest.importorskip("onnx", reason="the export extra (onnx, onnxruntime) is not installed")
    return ModelStore(tmp_path_factory.mktemp("portable-models"))


@pytest.fixture(scope="session")
def node_runner(tmp_path_factory) -> NodeRunner:
    missing = npm_missing("onnxruntime-node")
    if missing:
        pytest.skip(missing)
    return NodeRunner(tmp_path_factory.mktemp("node-jobs"))


@pytest.fixture(scope="module")
def chromium_runner(tmp_path_factory, exported) -> Iterator[ChromiumRunner]:
    missing = npm_missing("onnxruntime-web")
    if importlib.util.find_spec("playwright") is None:
        missing = "playwright is not installed (pip install -e .[dev])"
    elif not os.path.exists(CHROMIUM):
        missing = f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    if missing:
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    site = Site(tmp_path_factory.mktemp("site") / "root", exported.root)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield ChromiumRunner(browser, site, exported.root)
        finally:
            browser.close()
            site.close()


@pytest.fixture(scope="module", params=["node", "chromium"])
def runner(request) -> Any:
    """Each test that takes it runs once in Node and once in Chromium.

    Module scope, not session: a live sync Playwright keeps its event loop running in the
    main thread, and every later test that calls asyncio.run would fail."""
    return request.getfixturevalue(f"{request.param}_runner")
