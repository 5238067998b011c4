"""The judge by name: downloaded once from a local HTTP server over ../shared/data/doodlenet
(``$SKETCHRNN_JUDGE_URL``), cached, and refused when a file is not the pinned one."""

from __future__ import annotations

import shutil

import pytest
from helpers import FolderServer, shared_file

from sketchrnn.cli import main
from sketchrnn.judge import load_judge
from sketchrnn.judge.files import (
    DOODLENET_URL,
    JUDGE_FILES,
    JudgeDownloadError,
    judge_cache_dir,
    judge_url,
)


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SKETCHRNN_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_url_and_cache_folder(cache, monkeypatch):
    monkeypatch.delenv("SKETCHRNN_JUDGE_URL", raising=False)
    assert judge_url() == DOODLENET_URL
    monkeypatch.setenv("SKETCHRNN_JUDGE_URL", "http://mirror/doodlenet")
    assert judge_url() == "http://mirror/doodlenet/"
    assert judge_cache_dir() == cache / "doodlenet"
    with pytest.raises(ValueError, match="not a judge"):
        judge_url("resnet")


def test_downloads_once_then_uses_the_cache(cache, monkeypatch):
    with FolderServer(shared_file("doodlenet")) as server:
        monkeypatch.setenv("SKETCHRNN_JUDGE_URL", server.url)
        judge = load_judge("doodlenet", progress=False)
        assert len(judge.classes) == 345
        assert sorted(p.name for p in (cache / "doodlenet").iterdir()) == sorted(
            JUDGE_FILES["doodlenet"]
        )
        fetched = len(server.requests)
        assert fetched == 3
        load_judge("doodlenet", progress=False)
        assert len(server.requests) == fetched  # nothing fetched the second time


def test_a_changed_file_is_not_kept(cache, tmp_path, monkeypatch):
    upstream = tmp_path / "upstream"
    shutil.copytree(shared_file("doodlenet"), upstream)
    (upstream / "class_names.txt").write_text("cat\n" * 345)
    with FolderServer(upstream) as server:
        monkeypatch.setenv("SKETCHRNN_JUDGE_URL", server.url)
        with pytest.raises(JudgeDownloadError, match=r"class_names.txt: not the pinned file"):
            load_judge("doodlenet", progress=False)
    folder = cache / "doodlenet"
    assert not (folder / "class_names.txt").exists()
    assert not list(folder.glob("*.part"))  # no resumable part of a wrong file either


def test_missing_file_and_no_server(cache, tmp_path, monkeypatch, capsys):
    with FolderServer(shared_file("doodlenet")) as server:
        server.missing.add("group1-shard1of1.bin")
        monkeypatch.setenv("SKETCHRNN_JUDGE_URL", server.url)
        with pytest.raises(JudgeDownloadError, match=r"group1-shard1of1.bin: not found \(HTTP 404"):
            load_judge("doodlenet", progress=False)
    # the CLI: one line, exit 2, naming the URL
    monkeypatch.setenv("SKETCHRNN_JUDGE_URL", server.url)  # closed now: nobody answers
    drawings = shared_file("quickdraw/simplified/cat.ndjson")
    assert main(["judge", "--drawings", str(drawings), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len([line for line in err if "error" in line]) == 1
    assert "judge doodlenet" in err[-1] and server.url in err[-1]
