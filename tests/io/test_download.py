"""Download tests against local HTTP servers on 127.0.0.1 (never a real remote host): the
Quick, Draw! class files, and :func:`fetch` against hostile servers (ignored and wrong ranges,
lies, trickles, stalls, truncation, endless bodies, redirects, not HTTP at all), two writers
at once, and ``kill -9`` of a download at random moments."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from download_servers import HostileServer
from helpers import FolderServer, free_port, shared_file, write_quickdraw_npz

from sketchrnn.cli import main
from sketchrnn.io.bounded_http import TransferLimits
from sketchrnn.io.download import DownloadError, ServerUnreachableError, fetch, fetch_file
from sketchrnn.io.quickdraw_download import (
    QUICKDRAW_CLASSES,
    default_cache_dir,
    download_quickdraw,
    download_quickdraw_classes,
    downloaded_class_files,
    quickdraw_url,
    read_class_list,
)

# A hang guard for the bounded transfers below (limits of a fraction of a second): far above
# what they take, far below "forever". Not a timing measurement.
HANG_GUARD_S = 30.0
FAST = TransferLimits(stall=0.5, min_rate=2000, rate_window=0.5)


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


def test_a_partial_file_that_was_wrong_is_fetched_again_whole(server, tmp_path):
    """The server continues the .part faithfully, but the .part itself was not a prefix of the
    file: the result fails its check, so the file is fetched once more from byte 0."""
    (tmp_path / "aaron_sheep.npz.part").write_bytes(b"garbage that is not a zip prefix")
    (path,) = download_quickdraw("aaron_sheep", to=tmp_path, base_url=server.url, progress=False)
    assert [r for _, r in server.requests] == ["bytes=32-", None]
    assert path.read_bytes() == _original()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["aaron_sheep.npz"]


def test_unknown_class_says_name_is_wrong(server, tmp_path):
    with pytest.raises(DownloadError, match=r"HTTP 404.*'no such thing' is probably wrong"):
        download_quickdraw("no such thing", to=tmp_path, base_url=server.url, progress=False)
    assert server.requests == [("/no%20such%20thing.npz", None)]
    assert list(tmp_path.iterdir()) == []


def test_unreachable_server_is_one_line_error(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/"  # a port that was free a moment ago has no server
    with pytest.raises(ServerUnreachableError, match="cannot reach the server") as info:
        download_quickdraw("cat", to=tmp_path, base_url=url, progress=False)
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_class_names_cannot_leave_the_cache_folder(tmp_path):
    for bad in ["../evil", "a/b", ".hidden", "", "cat\x00", "tab\there", "x" * 300]:
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
    assert QUICKDRAW_CLASSES[0] == "aircraft carrier" and QUICKDRAW_CLASSES[-1] == "zigzag"
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


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (bytes(range(256)) * 4, r"not a text file of class names \(byte 128 is not UTF-8\)"),
        (b"cat\n" * 300_000, "over 1.0 MiB: not a list of class names"),
        (b"cat\ndog\x00\n", r":2: not a Quick, Draw! class name: 'dog\\x00'"),
        (None, r"cannot read the list \(is a directory\)"),
    ],
    ids=["binary", "huge", "nul", "folder"],
)
def test_data_download_list_of_the_wrong_kind_is_one_line(tmp_path, capsys, content, message):
    listed = tmp_path / "classes"
    if content is None:
        listed.mkdir()
    else:
        listed.write_bytes(content)
    assert main(["data", "download", "--list", str(listed), "--to", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"sketchrnn: error: {listed}:")
    assert re.search(message, err), err
    assert not (tmp_path / "c").exists()


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
    lines = []
    names = ["cat", "dog", "owl", "ant", "bee"]
    url = f"http://127.0.0.1:{free_port()}/"  # a port that was free a moment ago
    report = download_quickdraw_classes(
        names, to=tmp_path, base_url=url, progress=False, echo=lambda line, how: lines.append(line)
    )
    assert list(report.failed) == names and not report.paths
    assert all("cannot reach the server" in report.failed[n] for n in names[:3])
    assert all(report.failed[n] == "not tried: the server did not answer" for n in names[3:])
    assert lines[-1] == "the server does not answer: the other 2 classes not tried"


# ----------------------------------------------------------------------------- what is kept


def _zip_of(tmp_path: Path, **arrays) -> bytes:
    path = tmp_path / "made.npz"
    np.savez(path, **arrays)
    return path.read_bytes()


def _npz(tmp_path: Path, seed: int = 0) -> bytes:
    return write_quickdraw_npz(tmp_path / f"made{seed}.npz", n=(30, 4, 4), seed=seed).read_bytes()


@pytest.mark.parametrize(
    ("made", "message"),
    [
        (lambda t: _zip_of(t, x=np.arange(10)), r"no 'train', 'valid' or 'test' array"),
        (lambda t: _zip_of(t, train=np.arange(10)), "not a valid sketch-rnn npz"),
        (
            lambda t: _npz(t)[:-200] + bytes(200),  # the zip's central directory zeroed
            "not a valid sketch-rnn npz",
        ),
    ],
    ids=["valid-zip-other-keys", "numbers-not-sketches", "damaged-zip"],
)
def test_a_file_that_is_not_a_sketch_npz_never_enters_the_cache(tmp_path, made, message):
    cache = tmp_path / "cache"
    with HostileServer({"cat.npz": made(tmp_path)}) as bad:
        with pytest.raises(DownloadError, match=message) as info:
            download_quickdraw("cat", to=cache, base_url=bad.url, progress=False)
        assert str(info.value).startswith(f"{bad.url}cat.npz: ") and "\n" not in str(info.value)
        assert list(cache.iterdir()) == []  # not the file, not a .part
        report = download_quickdraw_classes(["cat"], to=cache, base_url=bad.url, progress=False)
        assert report.failed and not report.paths and list(cache.iterdir()) == []


def test_an_npz_missing_a_split_is_not_an_official_file(tmp_path):
    sketches = np.empty(2, dtype=object)
    sketches[0] = sketches[1] = np.array([[1, 2, 0], [3, 4, 1]], dtype=np.int16)
    with HostileServer({"cat.npz": _zip_of(tmp_path, train=sketches, valid=sketches)}) as bad:
        with pytest.raises(DownloadError, match="not a Quick, Draw! sketch-rnn file: no test"):
            download_quickdraw("cat", to=tmp_path / "c", base_url=bad.url, progress=False)


def test_a_damaged_file_already_in_the_cache_is_replaced(tmp_path):
    """A file an older version let in (a valid zip that is no sketch npz) is fetched again."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "cat.npz").write_bytes(_zip_of(tmp_path, x=np.arange(3)))
    good = _npz(tmp_path)
    with HostileServer({"cat.npz": good}) as ok:
        download_quickdraw("cat", to=cache, base_url=ok.url, progress=False)
    assert (cache / "cat.npz").read_bytes() == good


# ----------------------------------------------------------------------------- hostile servers


@pytest.mark.parametrize(
    "behaviour",
    ["honest", "ignore-range", "range-from-zero", "range-lie", "range-elsewhere", "range-garbled"],
)
def test_a_resume_keeps_only_what_continues_the_partial_file(tmp_path, behaviour):
    """Whatever the server does with the Range request, the result is the file."""
    data = _npz(tmp_path)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "cat.npz.part").write_bytes(data[:1000])
    with HostileServer({"cat.npz": data}, behaviour) as bad:
        (path,) = download_quickdraw("cat", to=cache, base_url=bad.url, progress=False)
    assert path.read_bytes() == data
    assert sorted(p.name for p in cache.iterdir()) == ["cat.npz"]
    ranges = [r for _, r in bad.requests]
    # continued when the answer continues the .part, otherwise fetched whole once more
    assert ranges == (["bytes=1000-"] if behaviour in ("honest", "ignore-range") else
                      ["bytes=1000-", None])  # fmt: skip


def test_a_truncated_transfer_is_an_error_then_resumes(tmp_path):
    data = _npz(tmp_path)
    cache = tmp_path / "cache"
    with HostileServer({"cat.npz": data}, "truncate") as bad:
        with pytest.raises(DownloadError, match="closed after .* bytes; run again to resume"):
            download_quickdraw("cat", to=cache, base_url=bad.url, progress=False)
        assert not (cache / "cat.npz").exists()
        assert (cache / "cat.npz.part").read_bytes() == data[: len(data) // 2]
        bad.behaviour = "honest"
        (path,) = download_quickdraw("cat", to=cache, base_url=bad.url, progress=False)
    assert path.read_bytes() == data and bad.requests[-1][1] == f"bytes={len(data) // 2}-"


def _fails(url: str, target: Path, message: str, **options) -> DownloadError:
    began = time.monotonic()
    with pytest.raises(DownloadError, match=message) as info:
        fetch(url, target, progress=False, **options)
    assert time.monotonic() - began < HANG_GUARD_S
    assert str(info.value).startswith(url) and "\n" not in str(info.value)
    assert not target.exists()
    return info.value


@pytest.mark.parametrize(
    ("behaviour", "message", "part_kept"),
    [
        ("stall", r"no data for 0.5 s \(stalled after 1,000 bytes\); run again to resume", True),
        ("trickle", r"too slow: .* under the minimum of 1,999 bytes/s", True),
        ("slow-headers", r"no answer within 0.5 s", False),
        ("huge", r"the server announces .* MiB, over the limit of 1.0 MiB", False),
        ("endless", r"more than 1.0 MiB arrived, over the limit of 1.0 MiB", False),
        ("not-http", r"not valid HTTP", False),
        ("redirect-loop", r"HTTP 302 .*(infinite loop|redirect)", False),
        ("redirect-file", r"HTTP 302 .*'file:///etc/passwd' is not allowed", False),
        ("short-length", r": not the file$", False),
        ("chunked-cut", r"the connection closed before the end of the file", True),
        ("error-500", r"HTTP 500 Internal Server Error$", False),
    ],
)
def test_hostile_servers_stop_with_one_line(tmp_path, monkeypatch, behaviour, message, part_kept):
    monkeypatch.setenv("SKETCHRNN_MAX_DOWNLOAD_BYTES", str(1 << 20))
    data = _npz(tmp_path)
    limits = TransferLimits(stall=0.5, min_rate=1999, rate_window=0.5)
    with HostileServer({"cat.npz": data}, behaviour) as bad:
        target = tmp_path / "cat.npz"

        def check(path: Path) -> str | None:
            return None if path.read_bytes() == data else "not the file"

        _fails(bad.url + "cat.npz", target, message, limits=limits, check=check)
        part = tmp_path / "cat.npz.part"
        assert part.exists() == part_kept
        if part_kept:  # what arrived is the start of the file: a later call resumes it
            assert data.startswith(part.read_bytes())


def test_redirects_and_bodies_without_a_length_are_fine(tmp_path):
    data = _npz(tmp_path)
    with HostileServer({"cat.npz": data}, "redirect") as moved:
        path = fetch_file(moved.url + "cat.npz", tmp_path / "a.npz", progress=False)
        assert path.read_bytes() == data
        assert [p for p, _ in moved.requests] == ["/cat.npz", "/moved/cat.npz"]
    with HostileServer({"cat.npz": data}, "no-length") as unsized:
        path = fetch_file(unsized.url + "cat.npz", tmp_path / "b.npz", progress=False)
        assert path.read_bytes() == data


def test_limits_from_the_environment(monkeypatch):
    monkeypatch.setenv("SKETCHRNN_DOWNLOAD_STALL_SECONDS", "2.5")
    monkeypatch.setenv("SKETCHRNN_DOWNLOAD_MIN_RATE", "0")
    monkeypatch.setenv("SKETCHRNN_DOWNLOAD_RATE_WINDOW_SECONDS", "7")
    assert TransferLimits.from_env() == TransferLimits(stall=2.5, min_rate=0, rate_window=7)
    assert TransferLimits.from_env(stall=9).stall == 9
    for bad in ("0", "-1", "nan", "inf", "soon"):
        monkeypatch.setenv("SKETCHRNN_DOWNLOAD_STALL_SECONDS", bad)
        with pytest.raises(ValueError, match=r"\$SKETCHRNN_DOWNLOAD_STALL_SECONDS must be"):
            TransferLimits.from_env()


def test_only_http_urls(tmp_path):
    for url in ("file:///etc/passwd", "ftp://127.0.0.1/x", "cat.npz"):
        _fails(url, tmp_path / "x", "not an http:// or https:// URL")
    for url in ("http://127.0.0.1:9/a b", "http://[::1/x", "http:///x", "http://h:port/x"):
        _fails(url, tmp_path / "x", r"not a valid URL \(")
    assert list(tmp_path.iterdir()) == []


def test_a_mirror_that_is_no_http_url_is_refused_once(tmp_path, capsys):
    """Not 345 failures: one line before anything is fetched."""
    args = ["data", "download", "--all", "--to", str(tmp_path), "--base-url", "ftp://mirror/"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err == "sketchrnn: error: ftp://mirror/aircraft%20carrier.npz: not an http:// or " \
        "https:// URL\n"  # fmt: skip


def test_a_server_that_hangs_up_without_answering(tmp_path):
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()

        def hang_up() -> None:
            conn, _ = listener.accept()
            conn.recv(1024)
            conn.close()

        threading.Thread(target=hang_up, daemon=True).start()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/cat.npz"
        error = _fails(url, tmp_path / "cat.npz", "closed the connection without an answer")
    assert not isinstance(error, ServerUnreachableError)


# ----------------------------------------------------------------------------- the judge's files


def test_pinned_files_are_checked_by_size_and_digest(tmp_path):
    """The judge's files (DoodleNet) are pinned by size and SHA-256."""
    from sketchrnn.io.download import sha256_of

    folder = shared_file("doodlenet")
    weights = folder / "group1-shard1of1.bin"
    size, digest = weights.stat().st_size, sha256_of(weights)
    with FolderServer(folder) as doodle:
        url = doodle.url + weights.name
        got = fetch(url, tmp_path / weights.name, size=size, sha256=digest, progress=False)
        assert got.how == "downloaded" and got.path.read_bytes() == weights.read_bytes()
        again = fetch(url, tmp_path / weights.name, size=size, sha256=digest, progress=False)
        assert again.how == "complete" and len(doodle.requests) == 1
        _fails(url, tmp_path / "other.bin", "its SHA-256 is not 0000", sha256="0" * 64)
        _fails(url, tmp_path / "other.bin", f"announces 2.1 MiB, the file should have {size - 1:,}",
               size=size - 1)  # fmt: skip
        assert not list(tmp_path.glob("other*"))


# ----------------------------------------------------------------------------- two at once


def test_two_fetches_of_one_file_at_once_both_succeed(tmp_path):
    """Two writers of one file (here two threads; two processes in the slow test below): the
    second waits on the .part's lock, says so, then finds the file complete."""
    data = _original()
    waits, results = [], []
    with HostileServer({"sheep.npz": data}, rate=4e6) as slow:
        url = slow.url + "sheep.npz"

        def one() -> None:
            results.append(fetch(url, tmp_path / "sheep.npz", progress=False, on_wait=waits.append))

        threads = [threading.Thread(target=one) for _ in range(2)]
        for t in threads:
            t.start()
            time.sleep(0.1)
        for t in threads:
            t.join(HANG_GUARD_S)
    assert sorted(r.how for r in results) == ["complete", "downloaded"]
    assert len(waits) == 1 and "another process is downloading this file; waiting" in waits[0]
    assert len(slow.requests) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sheep.npz"]
    assert (tmp_path / "sheep.npz").read_bytes() == data


# ----------------------------------------------------------------------------- kill -9


def _download_command(cache: Path, url: str) -> list[str]:
    return [sys.executable, "-m", "sketchrnn.cli", "data", "download", "aaron_sheep",
            "--to", str(cache), "--base-url", url, "--no-progress"]  # fmt: skip


def _run_and_kill(command: list[str], after: float, env: dict[str, str]) -> None:
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    time.sleep(after)
    with_signal = proc.poll() is None
    if with_signal:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(HANG_GUARD_S)


BEHAVIOURS_AFTER_A_KILL = ["honest", "ignore-range", "range-from-zero", "range-lie",
                           "range-elsewhere", "truncate"]  # fmt: skip


@pytest.mark.parametrize(
    "seed", [0] + [pytest.param(s, marks=pytest.mark.slow) for s in range(1, 6)]
)
def test_kill_9_at_random_moments_never_leaves_a_wrong_file(tmp_path, seed):
    """``data download`` killed with SIGKILL at random moments, against servers that answer
    the resume in every wrong way: the file under its real name, whenever it exists, is the
    real file, and a last run without a kill gives the real file or a one-line error."""
    rng = random.Random(seed)
    data = _original()
    cache = tmp_path / "cache"
    target = cache / "aaron_sheep.npz"
    env = {**os.environ, "SKETCHRNN_DOWNLOAD_STALL_SECONDS": "2"}
    with HostileServer({"aaron_sheep.npz": data}, rate=3e6) as bad:
        for behaviour in rng.sample(BEHAVIOURS_AFTER_A_KILL, 4):
            bad.behaviour = behaviour
            _run_and_kill(_download_command(cache, bad.url), rng.uniform(0.05, 2.0), env)
            if target.exists():
                assert target.read_bytes() == data, behaviour
                target.unlink()  # start the next round with only a .part (or nothing)
        bad.behaviour = rng.choice(BEHAVIOURS_AFTER_A_KILL)
        done = subprocess.run(_download_command(cache, bad.url), capture_output=True, text=True,
                              env=env, timeout=HANG_GUARD_S * 2)  # fmt: skip
    if done.returncode == 0:
        assert target.read_bytes() == data
        assert not list(cache.glob("*.part"))
    else:  # only a server that cuts the transfer short fails a whole run
        assert bad.behaviour == "truncate" and done.returncode == 2, done.stderr
        assert "run again to resume" in done.stderr and "Traceback" not in done.stderr
        assert not target.exists()
