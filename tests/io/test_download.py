"""Download tests against a local HTTP server on 127.0.0.1 (never a real remote host)."""

import http.server
import re
import socket
import threading
import urllib.parse
import zipfile
from pathlib import Path

import pytest
from helpers import shared_file

from sketchrnn.io.download import (
    DownloadError,
    default_cache_dir,
    download_quickdraw,
    quickdraw_url,
)


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves files of ``server.folder`` by name, honouring ``Range: bytes=N-`` unless
    ``server.honour_range`` is false; records every request's path and Range header."""

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.server.requests.append((self.path, self.headers.get("Range")))
        name = urllib.parse.unquote(self.path.lstrip("/"))
        file = self.server.folder / name
        if "/" in name or not file.is_file():
            self.send_error(404)
            return
        data = file.read_bytes()
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match and self.server.honour_range:
            start = int(match.group(1))
            if start >= len(data):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            data = data[start:]
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    folder = shared_file("sketchrnn/aaron_sheep.npz").parent
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.folder, httpd.honour_range, httpd.requests = folder, True, []
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def _original() -> bytes:
    return shared_file("sketchrnn/aaron_sheep.npz").read_bytes()


def test_full_download_then_skip(server, tmp_path):
    (path,) = download_quickdraw("aaron_sheep", to=tmp_path, base_url=server.url, progress=False)
    assert path == tmp_path / "aaron_sheep.npz"
    assert path.read_bytes() == _original()
    assert zipfile.ZipFile(path).namelist()
    assert not (tmp_path / "aaron_sheep.npz.part").exists()
    assert server.requests == [("/aaron_sheep.npz", None)]
    # already complete: no second request
    download_quickdraw(["aaron_sheep"], to=tmp_path, base_url=server.url, progress=False)
    assert len(server.requests) == 1


def test_resume_from_partial_file(server, tmp_path):
    data = _original()
    (tmp_path / "aaron_sheep.npz.part").write_bytes(data[:1000])
    (path,) = download_quickdraw("aaron_sheep", to=tmp_path, base_url=server.url, progress=True)
    assert server.requests == [("/aaron_sheep.npz", "bytes=1000-")]
    assert path.read_bytes() == data


def test_server_ignoring_range_restarts(server, tmp_path):
    server.honour_range = False
    data = _original()
    (tmp_path / "aaron_sheep.npz.part").write_bytes(data[:1000])
    (path,) = download_quickdraw("aaron_sheep", to=tmp_path, base_url=server.url, progress=False)
    assert server.requests == [("/aaron_sheep.npz", "bytes=1000-")]
    assert path.read_bytes() == data


def test_unsatisfiable_range_restarts(server, tmp_path):
    data = _original()
    (tmp_path / "aaron_sheep.npz.part").write_bytes(data + b"extra")
    (path,) = download_quickdraw("aaron_sheep", to=tmp_path, base_url=server.url, progress=False)
    assert [r for _, r in server.requests] == [f"bytes={len(data) + 5}-", None]
    assert path.read_bytes() == data


def test_corrupt_result_is_rejected_and_not_kept(server, tmp_path):
    (tmp_path / "aaron_sheep.npz.part").write_bytes(b"garbage that is not a zip prefix")
    with pytest.raises(DownloadError, match="not a valid npz"):
        download_quickdraw("aaron_sheep", to=tmp_path, base_url=server.url, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_unknown_class_says_name_is_wrong(server, tmp_path):
    with pytest.raises(DownloadError, match=r"HTTP 404.*'no such thing' is probably wrong"):
        download_quickdraw("no such thing", to=tmp_path, base_url=server.url, progress=False)
    assert server.requests == [("/no%20such%20thing.npz", None)]
    assert list(tmp_path.iterdir()) == []


def test_unreachable_server_is_one_line_error(tmp_path):
    with socket.socket() as s:  # a port that was free a moment ago has no server
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError, match="cannot reach the server") as info:
        download_quickdraw("cat", to=tmp_path, base_url=f"http://127.0.0.1:{port}/", progress=False)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "cat.npz").exists()


def test_class_names_cannot_leave_the_cache_folder(tmp_path):
    for bad in ["../evil", "a/b", ".hidden", ""]:
        with pytest.raises(ValueError, match="class name"):
            download_quickdraw(bad, to=tmp_path, base_url="http://127.0.0.1:9/", progress=False)


def test_urls_and_cache_folder_from_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("SKETCHRNN_QUICKDRAW_URL", raising=False)
    monkeypatch.delenv("SKETCHRNN_CACHE", raising=False)
    assert quickdraw_url("the eiffel tower") == (
        "https://storage.googleapis.com/quickdraw_dataset/sketchrnn/the%20eiffel%20tower.npz"
    )
    assert default_cache_dir() == Path.home() / ".cache" / "sketchrnn" / "quickdraw"
    monkeypatch.setenv("SKETCHRNN_QUICKDRAW_URL", "http://mirror.invalid/qd")
    monkeypatch.setenv("SKETCHRNN_CACHE", str(tmp_path))
    assert quickdraw_url("cat") == "http://mirror.invalid/qd/cat.npz"
    assert quickdraw_url("cat", base_url="http://other.invalid/") == "http://other.invalid/cat.npz"
    assert default_cache_dir() == tmp_path / "quickdraw"


def test_default_folder_comes_from_environment(server, monkeypatch, tmp_path):
    monkeypatch.setenv("SKETCHRNN_CACHE", str(tmp_path))
    monkeypatch.setenv("SKETCHRNN_QUICKDRAW_URL", server.url)
    (path,) = download_quickdraw("aaron_sheep", progress=False)
    assert path == tmp_path / "quickdraw" / "aaron_sheep.npz" and path.is_file()
