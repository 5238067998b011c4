"""Fixtures of the web tests: one folder of exported (portable) models for the whole run, and
onnxruntime-web's files for the page's browser tests."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "node_modules" / "onnxruntime-web" / "dist"


@pytest.fixture(scope="session")
def portable_store(request, tmp_path_factory):
    """A PortableStore kept in pytest's cache folder (a temporary one without the cache
    plugin): each tiny test model (seeded, so the same weights every run) is exported once,
    not once per test or run. Its folder names carry a digest of the weights and of the
    exporter's code, so a stale export is never reused."""
    from sketchrnn.web.portable_cache import PortableStore

    cache = getattr(request.config, "cache", None)
    root = cache.mkdir("sketchrnn-portable") if cache else tmp_path_factory.mktemp("portable")
    return PortableStore(Path(root))


@pytest.fixture(scope="session")
def runtime_dir() -> Path:
    """onnxruntime-web's files from the pinned lock (``make node_modules``)."""
    if not (RUNTIME / "ort.wasm.bundle.min.mjs").is_file():
        pytest.skip("onnxruntime-web is not in node_modules: run `make node_modules` (npm ci)")
    return RUNTIME
