"""sketch-rnn .npz reader/writer: real files, round trips, bad files and hostile pickles."""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
from helpers import shared_file

from sketchrnn.io.files import SketchFileError
from sketchrnn.io.npz import read_npz, write_npz
from sketchrnn.io.sketchset import SketchSet


def _npy_bytes_with_pickle(payload: bytes, shape: tuple[int, ...]) -> bytes:
    """A .npy member claiming an object array of ``shape`` whose data is ``payload``."""
    f = io.BytesIO()
    np.lib.format.write_array_header_1_0(f, {"descr": "|O", "fortran_order": False, "shape": shape})
    return f.getvalue() + payload


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _sketch(n: int, seed: int = 0, integral: bool = True) -> np.ndarray:
    rng = np.random.default_rng(seed)
    s = np.zeros((n, 3), dtype=np.float32)
    s[:, 0:2] = rng.integers(-50, 50, size=(n, 2)) if integral else rng.normal(size=(n, 2))
    s[rng.random(n) < 0.2, 2] = 1
    s[-1, 2] = 1
    return s


# ----------------------------------------------------------------------------- real files


def test_reads_aaron_sheep_like_numpy_does():
    path = shared_file("sketchrnn/aaron_sheep.npz")
    sketches = read_npz(path)
    assert len(sketches) == 8000
    assert [sketches.splits.count(s) for s in ("train", "valid", "test")] == [7400, 300, 300]
    assert sketches.classes == ["aaron_sheep"]
    assert sketches.scale_factor is None
    with np.load(path, allow_pickle=True, encoding="latin1") as trusted:  # our own test data
        reference = list(trusted["train"]) + list(trusted["valid"]) + list(trusted["test"])
    assert reference[0].dtype == np.int16
    for i in (0, 1, 7399, 7400, 7999):
        assert sketches.strokes[i].dtype == np.float32
        np.testing.assert_array_equal(sketches.strokes[i], reference[i])


def test_reads_float64_kanji_and_label_argument():
    sketches = read_npz(shared_file("sketchrnn/kanji.rdp100.npz"), label="kanji")
    assert [sketches.splits.count(s) for s in ("train", "valid", "test")] == [10358, 600, 500]
    assert sketches.classes == ["kanji"]
    assert all(s.dtype == np.float32 and s.shape[1] == 3 for s in sketches.strokes[:50])


# ----------------------------------------------------------------------------- round trips


def test_round_trip_integral_offsets_are_int16(tmp_path):
    strokes = [_sketch(n, seed=n) for n in (5, 9, 9, 3)]
    original = SketchSet(strokes, ["cat"] * 4, ["train", "train", "valid", "test"])
    path = tmp_path / "cat.npz"
    write_npz(path, original)

    back = read_npz(path)
    assert back.splits == original.splits and back.labels == original.labels
    for a, b in zip(back.strokes, strokes, strict=True):
        np.testing.assert_array_equal(a, b)
    with np.load(path, allow_pickle=True) as plain:  # plain numpy reads what we write
        assert sorted(plain.files) == ["test", "train", "valid"]  # stem labels not stored
        assert plain["train"].dtype == object and len(plain["train"]) == 2
        assert plain["train"][0].dtype == np.int16


def test_same_length_sketches_stay_an_object_array(tmp_path):
    path = tmp_path / "same.npz"
    write_npz(path, SketchSet([_sketch(4, 1), _sketch(4, 2)], splits=["train", "train"]))
    with np.load(path, allow_pickle=True) as plain:
        assert plain["train"].dtype == object and plain["train"].shape == (2,)


@pytest.mark.parametrize("big", [False, True])
def test_non_int16_offsets_are_float32(tmp_path, big):
    s = _sketch(6, integral=big)
    if big:
        s[0, 0] = 40000.0  # integral, but outside int16
    path = tmp_path / "x.npz"
    write_npz(path, SketchSet([s], ["x"], ["valid"]))
    with np.load(path, allow_pickle=True) as plain:
        assert plain["valid"][0].dtype == np.float32
    np.testing.assert_array_equal(read_npz(path).strokes[0], s)


def test_round_trip_labels_scale_factor_and_unsplit(tmp_path):
    original = SketchSet(
        [_sketch(3, 1), _sketch(4, 2), _sketch(5, 3)],
        ["cat", "dog", "cat"],
        ["train", "", "test"],
        scale_factor=12.5,
    )
    path = tmp_path / "mixed.npz"
    write_npz(path, original)
    back = read_npz(path)
    assert back.scale_factor == 12.5
    # The unsplit sketch went to train; order within a split is kept.
    assert back.splits == ["train", "train", "test"]
    assert back.labels == ["cat", "dog", "cat"]
    np.testing.assert_array_equal(back.strokes[1], original.strokes[1])


def test_failed_write_leaves_nothing_and_keeps_old_file(tmp_path):
    path = tmp_path / "out.npz"
    write_npz(path, SketchSet([_sketch(3)], splits=["train"]))
    before = path.read_bytes()
    bad = _sketch(4)
    bad[2, 1] = np.nan
    with pytest.raises(SketchFileError, match="sketch 1.*NaN"):
        write_npz(path, SketchSet([_sketch(3), bad], splits=["train", "train"]))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npz"]


# ----------------------------------------------------------------------------- bad files


def test_missing_file(tmp_path):
    with pytest.raises(SketchFileError, match="no such file"):
        read_npz(tmp_path / "nope.npz")


def test_not_a_zip(tmp_path):
    path = tmp_path / "text.npz"
    path.write_text("hello, I am not a zip\n")
    with pytest.raises(SketchFileError, match=r"text\.npz.*not a valid \.npz"):
        read_npz(path)


def test_truncated_file(tmp_path):
    path = tmp_path / "t.npz"
    write_npz(path, SketchSet([_sketch(200, i) for i in range(20)], splits=["train"] * 20))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(SketchFileError, match=r"t\.npz"):
        read_npz(path)


def test_corrupt_member_data(tmp_path):
    header_only = _npy_bytes_with_pickle(b"\x80\x02cnumpy\nndar", (3,))
    path = _zip(tmp_path / "c.npz", {"train.npy": header_only})
    with pytest.raises(SketchFileError, match="'train' holds a damaged object array"):
        read_npz(path)


def test_no_split_keys(tmp_path):
    path = tmp_path / "k.npz"
    np.savez(path, foo=np.zeros(3), bar=np.ones(2))
    with pytest.raises(SketchFileError, match=r"no 'train'.*\['bar', 'foo'\]"):
        read_npz(path)


def test_numeric_member_that_is_not_sketches(tmp_path):
    path = tmp_path / "n.npz"
    np.savez(path, train=np.zeros((4, 3)))
    with pytest.raises(SketchFileError, match="'train' must be a sequence of \\(n, 3\\)"):
        read_npz(path)


def test_numeric_3d_member_is_accepted(tmp_path):
    path = tmp_path / "n3.npz"
    block = np.stack([_sketch(4, 1), _sketch(4, 2)]).astype(np.int16)
    np.savez(path, valid=block)
    back = read_npz(path)
    assert back.splits == ["valid", "valid"]
    np.testing.assert_array_equal(back.strokes[1], block[1])


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (np.zeros((4, 2)), r"valid\[1\]: expected shape \(n, 3\)"),
        (np.array(["a", "b", "c"]), r"valid\[1\]: expected a numeric stroke-3 array, got <U1"),
        ("a string", r"valid\[1\]: expected a numeric stroke-3 array, got str"),
        (np.array([[1.0, np.inf, 1.0]]), r"valid\[1\]: contains NaN or infinite"),
        (np.array([[1.0, 2.0, np.nan]]), r"valid\[1\]: contains NaN or infinite"),
        (np.zeros((0, 3)), r"valid\[1\]: empty drawing"),
    ],
)
def test_bad_sketch_names_split_and_index(tmp_path, item, message):
    column = np.empty(2, dtype=object)
    column[0] = _sketch(3).astype(np.int16)
    column[1] = item
    path = tmp_path / "bad.npz"
    np.savez(path, train=np.empty(0, dtype=object), valid=column)
    with pytest.raises(SketchFileError, match=r"bad\.npz: " + message):
        read_npz(path)


def test_python2_style_pickle_with_codecs_encode_loads(tmp_path):
    # Protocol 2 stores bytes through _codecs.encode(text, "latin1"), as kanji.rdp100.npz does.
    column = np.empty(2, dtype=object)
    column[0] = np.array([[1.5, -2.25, 0.0], [3.0, 4.0, 1.0]])
    column[1] = np.array([[7, 8, 1]], dtype=np.int16)
    payload = pickle.dumps(column, protocol=2)
    assert b"_codecs" in payload
    path = _zip(tmp_path / "p2.npz", {"test.npy": _npy_bytes_with_pickle(payload, (2,))})
    back = read_npz(path)
    np.testing.assert_array_equal(back.strokes[0], column[0])
    np.testing.assert_array_equal(back.strokes[1], column[1])


# ----------------------------------------------------------------------------- hostile pickles


class _RunsShell:
    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class _CallsCodecsEncode:
    def __reduce__(self):
        import _codecs

        return (_codecs.encode, ("payload", "rot13"))


def test_pickle_calling_os_system_is_refused_not_run(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_RunsShell(f"touch {marker}"), protocol=2)
    path = _zip(tmp_path / "evil.npz", {"train.npy": _npy_bytes_with_pickle(payload, (1,))})
    with pytest.raises(
        SketchFileError, match=r"evil\.npz: .*forbidden global '(posix|nt)\.system'"
    ):
        read_npz(path)
    assert not marker.exists()


def test_hostile_object_inside_an_object_array_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    column = np.empty(2, dtype=object)
    column[0] = _sketch(3)
    column[1] = _RunsShell(f"touch {marker}")
    buffer = io.BytesIO()
    np.save(buffer, column, allow_pickle=True)
    path = _zip(tmp_path / "evil2.npz", {"valid.npy": buffer.getvalue()})
    with pytest.raises(SketchFileError, match="forbidden global"):
        read_npz(path)
    assert not marker.exists()


def test_codecs_encode_only_with_latin1(tmp_path):
    payload = pickle.dumps(_CallsCodecsEncode(), protocol=2)
    path = _zip(tmp_path / "codec.npz", {"train.npy": _npy_bytes_with_pickle(payload, (1,))})
    with pytest.raises(SketchFileError, match="forbidden codec 'rot13'"):
        read_npz(path)


@pytest.mark.parametrize("name", ["builtins\neval", "subprocess\nPopen", "numpy\nload"])
def test_other_globals_are_refused(tmp_path, name):
    module, attr = name.split("\n")
    payload = b"\x80\x02c" + module.encode() + b"\n" + attr.encode() + b"\n)R."
    path = _zip(tmp_path / "g.npz", {"test.npy": _npy_bytes_with_pickle(payload, (1,))})
    with pytest.raises(SketchFileError, match=f"forbidden global '{module}.{attr}'"):
        read_npz(path)


def test_a_member_that_would_decompress_past_the_limit_is_refused_unread(tmp_path, monkeypatch):
    zeros = io.BytesIO()
    np.save(zeros, np.zeros(3 << 18, dtype=np.int16))  # 1.5 MiB of zeros: a tiny compressed file
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("train.npy", zeros.getvalue())
    assert path.stat().st_size < 20_000
    monkeypatch.setenv("SKETCHRNN_NPZ_MAX_MEMBER_BYTES", str(1 << 20))
    opened = []
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda *a, **k: opened.append(a) or b"")
    with pytest.raises(
        SketchFileError,
        match=r"bomb\.npz.*'train\.npy' would inflate to 1\.5 MiB, over the limit of 1.0 MiB; "
        r"\$SKETCHRNN_NPZ_MAX_MEMBER_BYTES raises it",
    ):
        read_npz(path)
    assert opened == []  # refused from the zip's directory, before decompressing anything


def test_strings_numpy_cannot_hold_are_refused(tmp_path):
    # numpy's fixed-width strings drop trailing NULs: a label "a\0" would read back as "a".
    path = tmp_path / "nul.npz"
    with pytest.raises(SketchFileError, match="npz strings cannot end in NUL"):
        write_npz(path, SketchSet([_sketch(3)], ["a\0"], ["train"]))
    assert not path.exists()


def test_metadata_and_float64_notes_round_trip(tmp_path):
    meta = {"key_id": 2**64 - 1, "countrycode": "DE", "recognized": False, "timestamp": 1.5}
    original = SketchSet([_sketch(3), _sketch(4)], ["a", "b"], ["train", "test"],
                         metadata=[meta, dict(meta, key_id=3)])  # fmt: skip
    path = tmp_path / "meta.npz"
    write_npz(path, original)
    back = read_npz(path)
    assert back.metadata == original.metadata and back.notes == []
    with np.load(path) as plain:  # plain arrays, no pickle
        assert plain["train_key_id"].dtype == np.uint64
        assert plain["test_countrycode"].tolist() == ["DE"]
    column = np.empty(1, dtype=object)
    column[0] = np.array([[0.1, 0.2, 1.0]])  # float64 that float32 cannot hold
    np.savez(tmp_path / "f64.npz", train=column)
    (note, rounded) = read_npz(tmp_path / "f64.npz").notes
    assert "labelled 'f64'" in note and "rounded to float32" in rounded


def test_pickle_whose_list_is_shorter_than_its_shape_is_refused_not_a_crash(tmp_path):
    # numpy's own ndarray.__setstate__ reads past the list (a segfault under np.load).
    column = _objects_of(_sketch(4))
    state = list(column.__reduce__()[2])
    state[1] = (1000,)

    class Forged:
        def __reduce__(self):
            return (column.__reduce__()[0], column.__reduce__()[1], tuple(state))

    payload = pickle.dumps(Forged(), protocol=3)
    path = _zip(tmp_path / "short.npz", {"train.npy": _npy_bytes_with_pickle(payload, (1000,))})
    with pytest.raises(SketchFileError, match="object array of 1000 items holds 1 items"):
        read_npz(path)


def test_header_declaring_more_data_than_the_member_holds_is_refused(tmp_path):
    f = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        f, {"descr": "<i2", "fortran_order": False, "shape": (3 << 40, 1, 3)}
    )
    path = _zip(tmp_path / "liar.npz", {"train.npy": f.getvalue() + bytes(200)})
    with pytest.raises(SketchFileError, match=r"liar\.npz: member 'train': its header declares"):
        read_npz(path)


def _objects_of(*items) -> np.ndarray:
    column = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        column[i] = item
    return column
