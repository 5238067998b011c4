"""Download tests against a local HTTP server on 127.0.0.1 (never a real remote host)."""

import socket
import zipfile
from pathlib import Path

import pytest
from helpers import FolderServer, shared_file, write_quickdraw_npz

from sketchrnn.io.download import (
    QUICKDRAW_CLASSES,
    DownloadError,
    default_cache_dir,
    download_quickdraw,
    download_quickdraw_classes,
    downloaded_class_files,
    quickdraw_url,
    read_class_list,
)


@pytest.fixture
def server():
    with FolderServer(shared_file("sketchrnn/aaron_sheep.npz").parent) as httpd:
        yield httpd


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


# ----------------------------------------------------------------------------- many classes


def test_the_class_list_has_345_names():
    assert len(QUICKDRAW_CLASSES) == len(set(QUICKDRAW_CLASSES)) == 345
    assert {"cat", "The Eiffel Tower", "zigzag", "t-shirt", "teddy-bear"} <= set(QUICKDRAW_CLASSES)
    # every class of the shared simplified sample (344 of them) is in the list
    folder = shared_file("quickdraw/simplified")
    assert {p.stem for p in folder.glob("*.ndjson")} <= set(QUICKDRAW_CLASSES)


def test_read_class_list(tmp_path):
    f = tmp_path / "classes.txt"
    f.write_text("# my classes\ncat\n\n  hot dog  \ncat\nThe Eiffel Tower\n")
    assert read_class_list(f) == ["cat", "hot dog", "The Eiffel Tower"]
    f.write_text("cat\n../evil\n")
    with pytest.raises(ValueError, match=r"classes.txt:2: not a Quick, Draw! class name"):
        read_class_list(f)
    f.write_text("# nothing\n")
    with pytest.raises(ValueError, match="no class names"):
        read_class_list(f)


@pytest.fixture
def storage(tmp_path):
    """A folder laid out like the official storage (``.../sketchrnn/<class>.npz``)."""
    folder = tmp_path / "storage"
    folder.mkdir()
    for seed, name in enumerate(["cat", "hot dog", "The Eiffel Tower"]):
        write_quickdraw_npz(folder / f"{name}.npz", seed=seed)
    with FolderServer(folder, prefix="/quickdraw_dataset/sketchrnn/") as server:
        yield server


def test_many_classes_carry_on_past_a_failure_and_resume(storage, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    cat = (storage.folder / "cat.npz").read_bytes()
    (cache / "cat.npz.part").write_bytes(cat[:500])  # an interrupted earlier run
    lines = []
    names = ["cat", "no such thing", "hot dog", "The Eiffel Tower"]
    report = download_quickdraw_classes(
        names, to=cache, base_url=storage.url, progress=True, echo=lambda *a: lines.append(a)
    )
    assert report.failed.keys() == {"no such thing"}
    assert "HTTP 404" in report.failed["no such thing"]
    assert report.resumed == ["cat"] and report.downloaded == ["hot dog", "The Eiffel Tower"]
    assert report.paths == [cache / f"{n}.npz" for n in names if n != "no such thing"]
    assert (cache / "cat.npz").read_bytes() == cat
    assert ("/quickdraw_dataset/sketchrnn/cat.npz", "bytes=500-") in storage.requests
    assert ("/quickdraw_dataset/sketchrnn/The%20Eiffel%20Tower.npz", None) in storage.requests
    total = sum((storage.folder / f"{n}.npz").stat().st_size for n in names[2:])
    assert report.bytes_received == total + len(cat) - 500
    assert [how for _, how in lines] == ["resumed", "failed", "downloaded", "downloaded"]
    assert lines[0][0].startswith(f"{cache / 'cat.npz'}: resumed")
    assert lines[1][0].startswith(f"{cache / 'no such thing.npz'}: failed: http://127.0.0.1:")
    assert "4 classes: 3 downloaded (1 resumed), 0 already complete, 1 failed" in str(report)
    assert not list(cache.glob("*.part"))

    # a second run fetches only what failed (and the server now has it)
    write_quickdraw_npz(storage.folder / "no such thing.npz", seed=9)
    storage.requests.clear()
    again = download_quickdraw_classes(names, to=cache, base_url=storage.url, progress=False)
    assert not again.failed and again.complete == ["cat", "hot dog", "The Eiffel Tower"]
    assert storage.requests == [("/quickdraw_dataset/sketchrnn/no%20such%20thing.npz", None)]
    paths, missing = downloaded_class_files(names + ["dog"], cache)
    assert paths == [cache / f"{n}.npz" for n in names] and missing == ["dog"]


def test_a_wrong_name_suggests_the_official_spelling(storage, tmp_path):
    with pytest.raises(DownloadError, match="did you mean 'The Eiffel Tower'"):
        download_quickdraw("the eiffel tower", to=tmp_path, base_url=storage.url, progress=False)


def test_many_classes_stop_trying_when_the_server_never_answers(tmp_path):
    with socket.socket() as s:  # a port that was free a moment ago has no server
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    lines = []
    names = ["cat", "dog", "owl", "ant", "bee"]
    url = f"http://127.0.0.1:{port}/"
    report = download_quickdraw_classes(
        names, to=tmp_path, base_url=url, progress=False, echo=lambda line, how: lines.append(line)
    )
    assert list(report.failed) == names and not report.paths
    assert all("cannot reach the server" in report.failed[n] for n in names[:3])
    assert all(report.failed[n] == "not tried: the server did not answer" for n in names[3:])
    assert lines[-1] == "the server does not answer: the other 2 classes not tried"
