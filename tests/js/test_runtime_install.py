"""``sketchrnn runtime install``: onnxruntime-web fetched once from a local server, verified
against package-lock.json's integrity, kept in the cache, copied beside sketchrnn.js."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from helpers import FolderServer
from js.jsrun import real_tarball

from sketchrnn.io import js_runtime
from sketchrnn.io.download import DownloadError
from sketchrnn.io.js_runtime import (
    RUNTIME_FILES,
    RuntimeFilesError,
    copy_runtime,
    install_runtime,
    installed_runtime,
)

ROOT = Path(__file__).resolve().parents[2]
TARBALL = f"onnxruntime-web-{js_runtime.ORT_WEB_VERSION}.tgz"


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SKETCHRNN_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SKETCHRNN_RUNTIME_URL", raising=False)
    return tmp_path / "cache"


def make_tarball(path: Path, files: dict[str, bytes]) -> str:
    """An npm-style tarball (``package/...``) holding ``files``; its ``sha512-`` integrity."""
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    digest = hashlib.sha512(path.read_bytes()).digest()
    return "sha512-" + base64.b64encode(digest).decode()


FAKE = {f"package/dist/{n}": f"contents of {n}".encode() * 100 for n in RUNTIME_FILES}
FAKE["package/package.json"] = b"{}"


def test_the_pinned_version_is_the_lock_files():
    lock = json.loads((ROOT / "package-lock.json").read_text())
    entry = lock["packages"]["node_modules/onnxruntime-web"]
    assert entry["version"] == js_runtime.ORT_WEB_VERSION
    assert entry["integrity"] == js_runtime.ORT_WEB_INTEGRITY
    # npm's registry names a tarball NAME/-/NAME-VERSION.tgz (the lock leaves it implicit).
    assert js_runtime.ORT_WEB_TARBALL.endswith(f"/onnxruntime-web/-/{TARBALL}")
    package = json.loads((ROOT / "package.json").read_text())
    assert package["dependencies"]["onnxruntime-web"] == js_runtime.ORT_WEB_VERSION
    # sketchrnn.js imports the first runtime file in a browser.
    source = js_runtime.sketchrnn_js_path().read_text()
    assert f"export const ORT_WEB_FILE = '{RUNTIME_FILES[0]}';" in source


def test_install_fetches_once_verifies_and_copies(tmp_path, cache):
    served = tmp_path / "served"
    served.mkdir()
    integrity = make_tarball(served / TARBALL, FAKE)
    with FolderServer(served) as server:
        folder = install_runtime(server.url + TARBALL, integrity=integrity, progress=False)
        assert folder == js_runtime.runtime_cache_dir()
        assert folder.is_relative_to(cache)
        for name in RUNTIME_FILES:
            assert (folder / name).read_bytes() == FAKE[f"package/dist/{name}"]
        assert sorted(p.name for p in folder.parent.iterdir()) == [folder.name]  # no tarball
        # Installed: nothing is fetched again.
        assert install_runtime(server.url + TARBALL, integrity=integrity) == folder
        assert len(server.requests) == 1
        # A damaged file is noticed and fetched again.
        (folder / RUNTIME_FILES[1]).write_bytes(b"x")
        assert installed_runtime() is None
        install_runtime(server.url + TARBALL, integrity=integrity, progress=False)
        assert len(server.requests) == 2
        assert installed_runtime() == folder

    page = tmp_path / "page"
    written = copy_runtime(page)
    assert sorted(p.name for p in page.iterdir()) == sorted(["sketchrnn.js", *RUNTIME_FILES])
    assert written[0].read_bytes() == js_runtime.sketchrnn_js_path().read_bytes()


def test_an_altered_tarball_is_refused_and_nothing_is_left(tmp_path, cache):
    served = tmp_path / "served"
    served.mkdir()
    integrity = make_tarball(served / TARBALL, FAKE)
    make_tarball(served / TARBALL, {**FAKE, "package/dist/extra": b"!"})  # other bytes
    with FolderServer(served) as server:
        with pytest.raises(DownloadError, match=r"differs from package-lock.json's"):
            install_runtime(server.url + TARBALL, integrity=integrity, progress=False)
        with pytest.raises(DownloadError, match=r"HTTP 404.*no onnxruntime-web"):
            install_runtime(server.url + "nothing.tgz", progress=False)
    assert installed_runtime() is None
    assert not any(cache.rglob("*")) or all(p.is_dir() for p in cache.rglob("*"))


def test_a_tarball_without_the_runtime_is_refused(tmp_path, cache):
    served = tmp_path / "served"
    served.mkdir()
    incomplete = {k: v for k, v in FAKE.items() if not k.endswith(".wasm")}
    integrity = make_tarball(served / TARBALL, incomplete)
    with FolderServer(served) as server:
        with pytest.raises(RuntimeFilesError, match=r"holds no package/dist/ort-wasm"):
            install_runtime(server.url + TARBALL, integrity=integrity, progress=False)
    assert installed_runtime() is None
    assert [p for p in cache.rglob("*") if p.is_file()] == []


def test_copy_refuses_a_missing_runtime_and_a_file_target(tmp_path):
    with pytest.raises(RuntimeFilesError, match=r"not installed \(sketchrnn runtime install\)"):
        copy_runtime(tmp_path / "page")
    (tmp_path / "file").write_text("x")
    fake = tmp_path / "runtime"
    fake.mkdir()
    for name in RUNTIME_FILES:
        (fake / name).write_bytes(b"1")
    (fake / "installed.json").write_text(
        json.dumps({n: {"bytes": 1, "sha256": ""} for n in RUNTIME_FILES})
    )
    with pytest.raises(RuntimeFilesError, match=r"file: not a folder"):
        copy_runtime(tmp_path / "file", fake)


@pytest.mark.slow
def test_cli_installs_the_real_runtime_from_a_local_server(tmp_path, cache):
    served = tmp_path / "served"
    served.mkdir()
    real_tarball(served)
    run = [sys.executable, "-m", "sketchrnn.cli", "runtime", "install"]
    with FolderServer(served) as server:
        page = tmp_path / "page"
        done = subprocess.run(
            [*run, str(page), "--url", server.url + TARBALL],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert f"wrote {page / 'sketchrnn.js'}" in done.stdout
        wasm = page / "ort-wasm-simd-threaded.wasm"
        assert wasm.read_bytes()[:4] == b"\0asm"
        lock_dir = ROOT / "node_modules" / "onnxruntime-web" / "dist"
        if lock_dir.is_dir():  # the same bytes npm ci installed
            assert wasm.read_bytes() == (lock_dir / wasm.name).read_bytes()

        # An altered tarball: one line, exit 2, the cache untouched.
        shutil.rmtree(cache)
        data = bytearray((served / TARBALL).read_bytes())
        data[len(data) // 2] ^= 1
        (served / TARBALL).write_bytes(bytes(data))
        done = subprocess.run(
            [*run, "--url", server.url + TARBALL], capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 2
        error = done.stderr.splitlines()[-1]  # after the progress bar
        assert error.startswith(f"sketchrnn: error: {server.url}{TARBALL}: sha512 ")
        assert "differs from package-lock.json's" in error
        assert installed_runtime() is None
