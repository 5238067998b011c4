"""``atomic_path``: a write that fails (permission denied, disk full, read-only file system)
says so in one line naming the real target file, never its hidden temporary file, leaves the
target as it was and no ``.part`` file behind; the command line shows it without a traceback."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile

import numpy as np
import pytest
from helpers import random_sketches

from sketchrnn.cli import main
from sketchrnn.io import files
from sketchrnn.io.files import SketchFileError, atomic_path

AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def _raise(err: BaseException):
    def fail(*args, **kwargs):
        raise err

    return fail


def test_a_successful_write_replaces_the_target(tmp_path):
    out = tmp_path / "sub" / "out.txt"
    with atomic_path(out) as tmp:
        assert tmp.parent == out.parent and tmp.name.endswith(".part")
        tmp.write_text("new")
    assert out.read_text() == "new" and _leftovers(out.parent) == []


@pytest.mark.skipif(AS_ROOT, reason="root writes into a 0o500 folder anyway")
def test_a_read_only_folder_names_the_target(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(SketchFileError) as info:
            with atomic_path(folder / "out.png") as tmp:
                tmp.write_bytes(b"x")
    finally:
        folder.chmod(0o700)
    assert str(info.value) == f"{folder / 'out.png'}: cannot write file (permission denied)"
    assert _leftovers(folder) == []


@pytest.mark.parametrize(
    "code, reason",
    [
        (errno.EACCES, "permission denied"),
        (errno.EROFS, "read-only file system"),
        (errno.ENOSPC, "no space left on device"),
    ],
)
def test_the_temporary_file_cannot_be_made(code, reason, tmp_path, monkeypatch):
    """What a read-only folder or file system does (simulated: the tests may run as root)."""
    hidden = str(tmp_path / ".out.png.abc123.part")
    monkeypatch.setattr(tempfile, "mkstemp", _raise(OSError(code, os.strerror(code), hidden)))
    with pytest.raises(SketchFileError) as info:
        with atomic_path(tmp_path / "out.png"):
            pass
    message = str(info.value)
    assert message == f"{tmp_path / 'out.png'}: cannot write file ({reason})"
    assert ".part" not in message and info.value.errno == code
    assert _leftovers(tmp_path) == []


def test_disk_full_while_writing_names_the_file_and_keeps_the_old_one(tmp_path):
    out = tmp_path / "out.npz"
    out.write_bytes(b"the previous file")
    with pytest.raises(SketchFileError, match="out.npz: cannot write file \\(no space left on"):
        with atomic_path(out) as tmp:
            tmp.write_bytes(b"half")
            raise OSError(errno.ENOSPC, "No space left on device")  # as write() says it
    assert out.read_bytes() == b"the previous file"
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "err",
    [
        PermissionError(errno.EACCES, "Permission denied"),
        OSError(errno.EROFS, "Read-only file system"),
    ],
)
def test_the_rename_refused_names_the_target(err, tmp_path, monkeypatch):
    out = tmp_path / "out.svg"
    monkeypatch.setattr(os, "replace", _raise(err))
    with pytest.raises(SketchFileError, match=r"out\.svg: cannot write file \((permission|read)"):
        with atomic_path(out) as tmp:
            tmp.write_text("<svg/>")
    assert not out.exists() and _leftovers(tmp_path) == []


def test_a_writer_error_on_a_full_disk_is_reported_as_disk_full(tmp_path, monkeypatch):
    """torch.save says "file write failed" (a RuntimeError, no file name) when the disk fills."""
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage._replace(free=0))
    with pytest.raises(SketchFileError, match=r"ckpt\.pt: cannot write file \(no space left"):
        with atomic_path(tmp_path / "ckpt.pt"):
            raise RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")
    assert _leftovers(tmp_path) == []


def test_other_errors_pass_through_unchanged(tmp_path):
    with pytest.raises(RuntimeError, match="a bug"):
        with atomic_path(tmp_path / "a.txt"):
            raise RuntimeError("a bug")  # plenty of space: not a disk-full
    elsewhere = FileNotFoundError(errno.ENOENT, "No such file or directory", "input.npz")
    with pytest.raises(FileNotFoundError):
        with atomic_path(tmp_path / "b.txt"):
            raise elsewhere  # about another file: not the target's
    assert _leftovers(tmp_path) == []


def test_the_target_being_a_folder_names_it(tmp_path):
    (tmp_path / "grid.svg").mkdir()
    with pytest.raises(SketchFileError, match=r"grid\.svg: cannot write file \(is a directory\)"):
        with atomic_path(tmp_path / "grid.svg") as tmp:
            tmp.write_text("<svg/>")
    assert _leftovers(tmp_path) == []


def test_a_file_where_a_folder_should_be_names_it(tmp_path):
    (tmp_path / "notes").write_text("a file")
    with pytest.raises(SketchFileError) as info:
        with atomic_path(tmp_path / "notes" / "grid.svg"):
            pass
    target, parent = tmp_path / "notes" / "grid.svg", tmp_path / "notes"
    assert str(info.value) == f"{target}: cannot write file ({parent} is not a folder)"


# ----------------------------------------------------------------------------- the CLI


@pytest.fixture
def sketch_npz(tmp_path):
    sketches = random_sketches(12)
    path = tmp_path / "in.npz"
    np.savez(path, train=np.array(sketches, dtype=object), allow_pickle=True)
    return path


@pytest.mark.parametrize(
    "code, reason",
    [
        (errno.EACCES, "permission denied"),
        (errno.ENOSPC, "no space left on device"),
        (errno.EROFS, "read-only file system"),
    ],
)
def test_cli_reports_an_unwritable_output_in_one_line(
    code, reason, tmp_path, sketch_npz, monkeypatch, capsys
):
    out = tmp_path / "out" / "grid.svg"
    real_replace = os.replace

    def refuse(src, dst, *args, **kwargs):
        if os.fspath(dst) == os.fspath(out):
            raise OSError(code, os.strerror(code), os.fspath(src), None, os.fspath(dst))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", refuse)
    assert main(["data", "render", str(sketch_npz), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"sketchrnn: error: {out}: cannot write file ({reason})"]
    assert not out.exists() and _leftovers(out.parent) == []


@pytest.mark.skipif(AS_ROOT, reason="root writes into a 0o500 folder anyway")
def test_cli_read_only_folder_is_one_line(tmp_path, sketch_npz, capsys):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        assert main(["data", "render", str(sketch_npz), "--out", str(folder / "g.svg")]) == 2
    finally:
        folder.chmod(0o700)
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"sketchrnn: error: {folder / 'g.svg'}: cannot write file (permission denied)"]


def test_cli_file_system_errors_from_anywhere_are_one_line():
    """An OSError the file system raised inside another library (not through atomic_path)."""
    from sketchrnn.cli import _is_user_error, _one_line

    err = OSError(errno.ENOSPC, "No space left on device", "out.png")
    assert _is_user_error(err) and _one_line(err) == "out.png: no space left on device"
    err = OSError(errno.EROFS, "Read-only file system", "a.part", None, "a.png")
    assert _is_user_error(err) and _one_line(err) == "a.part -> a.png: read-only file system"
    assert not _is_user_error(OSError(errno.EBADF, "Bad file descriptor"))  # a bug, not the disk
    assert files.write_error("x.png", err).errno == errno.EROFS


def test_replace_folder_keeps_the_old_folder_until_the_new_one_has_its_name(tmp_path, monkeypatch):
    out, new = tmp_path / "site", tmp_path / ".site.part"
    out.mkdir()
    (out / "old.txt").write_text("old")
    new.mkdir()
    (new / "new.txt").write_text("new")

    def failing_rename(src, dst):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(files.os, "rename", failing_rename)
        with pytest.raises(OSError):
            files.replace_folder(new, out, replace=True)
    assert (out / "old.txt").read_text() == "old"  # put back
    files.replace_folder(new, out, replace=True)
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]  # nothing set aside is left
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x").write_text("x")
    with pytest.raises(OSError):
        files.replace_folder(tmp_path / "other", out, replace=False)  # never replaces silently
    assert (out / "new.txt").exists()
