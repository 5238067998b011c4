"""Quick, Draw! readers/writers: ndjson (simplified and raw), .bin, Google's simplification."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from helpers import shared_file

from sketchrnn.io.files import SketchFileError
from sketchrnn.io.quickdraw import (
    QuickDrawDrawing,
    read_ndjson,
    read_quickdraw_ndjson,
    write_ndjson,
)
from sketchrnn.io.quickdraw_bin import read_bin, read_quickdraw_bin, write_bin
from sketchrnn.io.quickdraw_simplify import simplify_raw_drawing
from sketchrnn.strokes import SketchError, stroke3_to_polylines

CLASSES = ["cat", "airplane", "The Eiffel Tower", "bicycle"]


def _simplified(name: str):
    return shared_file(f"quickdraw/simplified/{name}.ndjson")


def _raw(name: str):
    return shared_file(f"quickdraw/raw/{name}.ndjson")


def _same_strokes(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def _line(**fields) -> str:
    record = {
        "word": "cat",
        "countrycode": "US",
        "timestamp": "2017-03-27 00:14:57.31033 UTC",
        "recognized": True,
        "key_id": "5201136883597312",
        "drawing": [[[0, 10, 20], [0, 5, 0]]],
    }
    record.update(fields)
    return json.dumps(record)


# ----------------------------------------------------------------------------- real files


@pytest.mark.parametrize("name", CLASSES)
def test_reads_simplified_files(name):
    drawings = read_ndjson(_simplified(name))
    assert len(drawings) == 25 and drawings.skipped == 0
    for d in drawings:
        assert d.word == name
        assert d.key_id > 0 and len(d.countrycode) == 2
        assert d.timestamp > 1_483_228_800  # drawn in 2017 or later
        assert d.polylines and all(p.ndim == 2 and p.shape[1] == 2 for p in d.polylines)
        coords = np.concatenate(d.polylines)
        assert coords.min() >= 0 and coords.max() <= 255
        np.testing.assert_array_equal(coords, np.round(coords))


def test_first_simplified_cat_matches_the_file_text():
    path = _simplified("cat")
    first = json.loads(path.read_text().splitlines()[0])
    d = read_ndjson(path)[0]
    assert d.key_id == int(first["key_id"]) and d.countrycode == first["countrycode"]
    assert d.recognized is first["recognized"]
    np.testing.assert_array_equal(d.polylines[0][:, 0], first["drawing"][0][0])
    np.testing.assert_array_equal(d.polylines[0][:, 1], first["drawing"][0][1])


def test_raw_without_simplification_keeps_float_pixels():
    drawings = read_ndjson(_raw("cat"), simplify_raw=False)
    first = json.loads(_raw("cat").read_text().splitlines()[0])
    np.testing.assert_allclose(drawings[0].polylines[0][:, 0], first["drawing"][0][0])
    assert max(np.concatenate(d.polylines).max() for d in drawings) > 255


def test_raw_through_google_pipeline_reproduces_google_simplified():
    # The shared raw and simplified files hold the same drawings (same key_id); our pipeline
    # reproduces about 94% of Google's exactly (benchmarks/quickdraw_raw_vs_simplified.py).
    pairs = 0
    identical = 0
    for name in CLASSES:
        google = {d.key_id: d for d in read_ndjson(_simplified(name))}
        for d in read_ndjson(_raw(name)):
            coords = np.concatenate(d.polylines)
            assert coords.min() == 0 and 240 <= coords.max() <= 255
            if d.key_id in google:
                pairs += 1
                identical += _same_strokes(d.polylines, google[d.key_id].polylines)
    assert pairs >= 90
    assert identical / pairs > 0.85


def test_read_quickdraw_ndjson_gives_a_labelled_sketchset():
    drawings = read_ndjson(_simplified("cat"))
    sketches = read_quickdraw_ndjson(_simplified("cat"))
    assert len(sketches) == 25 and sketches.classes == ["cat"] and set(sketches.splits) == {""}
    assert _same_strokes(stroke3_to_polylines(sketches.strokes[3]), drawings[3].polylines)


# ----------------------------------------------------------------------------- metadata


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2017-03-27 00:14:57.31033 UTC", 1490573697.31033),  # the fraction is kept
        ("2017-03-27 00:14:57 UTC", 1490573697),
        (1490573697, 1490573697),
        ("1490573697", 1490573697),
        (1490573697310, 1490573697.31),  # milliseconds
        (None, None),  # unknown, not made up
    ],
)
def test_timestamps(tmp_path, value, expected):
    path = tmp_path / "t.ndjson"
    path.write_text(_line(timestamp=value) + "\n")
    (drawing,) = read_ndjson(path)
    assert drawing.timestamp == expected
    write_ndjson(tmp_path / "again.ndjson", [drawing])
    record = json.loads((tmp_path / "again.ndjson").read_text())
    if value is None:
        assert "timestamp" not in record
    else:
        assert read_ndjson(tmp_path / "again.ndjson")[0].timestamp == expected
        if isinstance(value, str) and not value.isdigit():
            assert record["timestamp"] == value  # Google's layout, written back the same


def test_missing_metadata_stays_missing(tmp_path):
    path = tmp_path / "bare.ndjson"
    path.write_text(json.dumps({"word": "cat", "drawing": [[[0, 10], [0, 5]]]}) + "\n")
    (d,) = read_ndjson(path)
    assert (d.key_id, d.countrycode, d.recognized, d.timestamp) == (None, None, None, None)
    write_ndjson(tmp_path / "out.ndjson", [d])
    assert json.loads((tmp_path / "out.ndjson").read_text()) == {
        "word": "cat",
        "drawing": [[[0, 10], [0, 5]]],
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), ("false", False), ("true", True), (None, None)],
)
def test_recognized(tmp_path, value, expected):
    path = tmp_path / "r.ndjson"
    path.write_text(_line(recognized=value) + "\n")
    assert read_ndjson(path)[0].recognized is expected


def test_missing_word_falls_back_to_the_file_stem(tmp_path):
    path = tmp_path / "hedgehog.ndjson"
    record = json.loads(_line())
    del record["word"]
    path.write_text(json.dumps(record) + "\n\n")  # the blank line is ignored
    (d,) = read_ndjson(path)
    assert d.word == "hedgehog"


# ----------------------------------------------------------------------------- bad lines


BAD_LINES = [
    ('{"word": "cat", "drawing": [[[0, 1', "malformed JSON"),
    ('["not", "an", "object"]', "expected a JSON object, got list"),
    (_line(drawing=None).replace('"drawing": null', '"drawin": 1'), "missing 'drawing'"),
    (_line(drawing=[]), "empty drawing"),
    (_line(drawing=[[[], []]]), "empty drawing"),
    (_line(drawing=[[[5], [5]]]), "single-point drawing"),
    (_line(drawing=[[[0, 1], [0, 1]], [[1, 2], [3]]]), "stroke 1: x, y .* differ in length"),
    (_line(drawing=[[["0", "1"], ["0", "1"]]]), "stroke 0: coordinates must be numbers"),
    (_line(drawing=[[[0, 1], [0, 1], [0, 1], [0, 1]]]), r"stroke 0 is not a list \[x, y\]"),
    (_line(drawing=[[[0, 1], [0, 1]], [[0, 1], [0, 1], [0, 9]]]), "mixes"),
    (_line(drawing=[[[0, 2e7], [0, 1]]]), "beyond"),
    (_line(drawing=[[[0.5, 0.5, 0.5], [1.0, 1.0, 1.0], [0, 5, 9]]]), "all points .* coincide"),
    (_line(key_id="abc"), "key_id must be a non-negative 64-bit integer"),
    (_line(key_id=str(2**64)), "key_id must be a non-negative 64-bit integer"),
    (_line(timestamp="yesterday"), "timestamp 'yesterday' is not a date"),
    (_line(timestamp=True), "timestamp must be a date or a number"),
    (_line(recognized="maybe"), "recognized must be true or false"),
    (_line(word=7), "'word' must be a string"),
    (_line(countrycode=["US"]), "'countrycode' must be a string"),
    (_line(split="training"), "'split' must be train, valid or test"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"word": "cat", "drawing": [[[' + "1" * 5000 + "]]]}", "malformed JSON"),
]


@pytest.mark.parametrize(("line", "message"), BAD_LINES)
def test_invalid_line_is_an_error_naming_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.ndjson"
    path.write_text(_line() + "\n" + line + "\n" + _line() + "\n")
    with pytest.raises(SketchFileError, match=rf"bad\.ndjson:2: .*{message}") as info:
        read_ndjson(path)
    assert info.value.line == 2


@pytest.mark.parametrize(("line", "message"), BAD_LINES)
def test_invalid_line_is_skipped_and_counted(tmp_path, line, message):
    path = tmp_path / "bad.ndjson"
    path.write_text(_line() + "\n" + line + "\n" + _line(key_id="7") + "\n")
    drawings = read_ndjson(path, skip_invalid=True)
    assert [d.key_id for d in drawings] == [5201136883597312, 7]
    assert drawings.skipped == 1
    assert drawings.skip_reasons[0].startswith("line 2: ")


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_coordinates(tmp_path, literal):
    path = tmp_path / "nan.ndjson"
    path.write_text(_line().replace('"drawing": [[[0, 10', f'"drawing": [[[0, {literal}') + "\n")
    with pytest.raises(SketchFileError, match=r"nan\.ndjson:1: contains NaN or infinite"):
        read_ndjson(path)


def test_line_that_is_not_utf8(tmp_path):
    path = tmp_path / "latin.ndjson"
    path.write_bytes(_line(word="cafe").replace("cafe", "caf\u00e9").encode("latin-1") + b"\n")
    with pytest.raises(SketchFileError, match=r"latin\.ndjson:1: not UTF-8"):
        read_ndjson(path)


def test_missing_ndjson_file(tmp_path):
    with pytest.raises(SketchFileError, match="no such file"):
        read_ndjson(tmp_path / "missing.ndjson")


# ----------------------------------------------------------------------------- simplification


def test_simplify_raw_aligns_scales_and_reduces_a_straight_line():
    x = np.linspace(10.0, 110.0, 40)
    line = np.column_stack([x, 10.0 + 0.6 * (x - 10.0)])
    (out,) = simplify_raw_drawing([line])
    # Extent 100 -> scale 2.55: (100, 60) lands on (255, 153).
    np.testing.assert_array_equal(out, [[0, 0], [255, 153]])


def test_simplify_raw_keeps_corners_and_measures_distance_to_the_line():
    square = np.array([[0, 0], [100, 0], [100, 100], [0, 100], [0, 0]], dtype=float)
    (out,) = simplify_raw_drawing([square])
    np.testing.assert_array_equal(out, [[0, 0], [255, 0], [255, 255], [0, 255], [0, 0]])
    # Out to x=100 and back to x=40 along one line: every point lies on the line through the
    # ends, so Google's (line-distance) RDP keeps only the ends; a segment-distance RDP would
    # keep the turning point at x=100.
    back_and_forth = np.array([[0, 0], [100, 0], [40, 0]], dtype=float)
    dot = np.array([[0, 40]], dtype=float)
    out, dot_out = simplify_raw_drawing([back_and_forth, dot])
    np.testing.assert_array_equal(out, [[0, 0], [102, 0]])
    np.testing.assert_array_equal(dot_out, [[0, 102], [0, 102]])  # a dot: its point twice


def test_simplify_raw_refuses_a_drawing_without_extent():
    with pytest.raises(SketchError, match="coincide"):
        simplify_raw_drawing([np.array([[3.0, 4.0], [3.0, 4.0]])])


# ----------------------------------------------------------------------------- ndjson writer


def test_write_ndjson_round_trip(tmp_path):
    drawings = read_ndjson(_simplified("cat"))
    path = tmp_path / "cat.ndjson"
    write_ndjson(path, drawings)
    assert read_ndjson(path) == drawings
    record = json.loads(path.read_text().splitlines()[0])
    assert isinstance(record["key_id"], str) and record["timestamp"].endswith(" UTC")
    assert all(isinstance(v, int) for v in record["drawing"][0][0])


def test_write_ndjson_refuses_bad_drawing_and_writes_nothing(tmp_path):
    good = QuickDrawDrawing(1, "cat", "US", True, 0, [np.array([[0.0, 0.0], [1.0, 2.0]])])
    bad = QuickDrawDrawing(2, "cat", "US", True, 0, [np.array([[0.0, np.nan], [1.0, 2.0]])])
    path = tmp_path / "out.ndjson"
    with pytest.raises(SketchFileError, match="drawing 1: contains NaN"):
        write_ndjson(path, [good, bad])
    far_future = QuickDrawDrawing(3, "cat", "US", True, 10**20, good.polylines)
    with pytest.raises(SketchFileError, match="drawing 1: timestamp .* is not a date"):
        write_ndjson(path, [good, far_future])
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- .bin


def test_bin_layout_read_from_hand_made_bytes(tmp_path):
    record = struct.pack("<Q2sBIH", 2**64 - 1, b"DE", 1, 1490573697, 2)
    record += struct.pack("<H", 3) + bytes([0, 10, 255]) + bytes([5, 6, 7])
    record += struct.pack("<H", 2) + bytes([1, 2]) + bytes([3, 4])
    second = struct.pack("<Q2sBIH", 9, b"\0\0", 0, 0, 1) + struct.pack("<H", 2) + bytes(4)
    path = tmp_path / "owl.bin"
    path.write_bytes(record + second)
    first, other = read_bin(path)
    assert (first.key_id, first.word, first.countrycode) == (2**64 - 1, "owl", "DE")
    assert first.recognized is True and first.timestamp == 1490573697
    np.testing.assert_array_equal(first.polylines[0], [[0, 5], [10, 6], [255, 7]])
    np.testing.assert_array_equal(first.polylines[1], [[1, 3], [2, 4]])
    assert other.countrycode == "" and other.recognized is False
    assert path.read_bytes() == record + second  # reading changes nothing
    write_bin(tmp_path / "again.bin", [first, other])
    assert (tmp_path / "again.bin").read_bytes() == record + second


def test_bin_round_trip_real_drawings(tmp_path):
    drawings = read_ndjson(_simplified("cat"))
    path = tmp_path / "cat.bin"
    write_bin(path, drawings)
    # .bin holds whole seconds: the fraction of each timestamp is the one thing dropped.
    for d in drawings:
        d.timestamp = int(d.timestamp)
    assert read_bin(path) == drawings
    sketches = read_quickdraw_bin(path)
    assert len(sketches) == 25 and sketches.classes == ["cat"]
    assert sketches.metadata[0] == drawings[0].metadata()
    assert any("hold no class word" in n for n in sketches.notes)
    assert read_quickdraw_bin(path, word="kitten").classes == ["kitten"]


def test_truncated_bin_names_the_record(tmp_path):
    drawings = read_ndjson(_simplified("cat"))[:3]
    path = tmp_path / "cat.bin"
    write_bin(path, drawings)
    data = path.read_bytes()
    first_size = len(_bin_bytes(tmp_path, drawings[:1]))
    second_size = len(_bin_bytes(tmp_path, drawings[1:2]))
    # Inside record 1's header, its first stroke, and one byte short of its end.
    for cut in (first_size + 5, first_size + 20, first_size + second_size - 1):
        path.write_bytes(data[:cut])
        with pytest.raises(SketchFileError, match=r"cat\.bin: record 1 .*truncated"):
            read_bin(path)


def _bin_bytes(tmp_path, drawings) -> bytes:
    scratch = tmp_path / "scratch.bin"
    write_bin(scratch, drawings)
    return scratch.read_bytes()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"polylines": [np.array([[0.0, 0.0], [256.0, 3.0]])]}, "outside the integers 0-255"),
        ({"polylines": [np.array([[0.0, 0.0], [-1.0, 3.0]])]}, "outside the integers 0-255"),
        ({"polylines": [np.array([[0.0, 0.0], [1.5, 3.0]])]}, "outside the integers 0-255"),
        ({"countrycode": "USA"}, "longer than 2"),
        ({"timestamp": 2**32}, "does not fit uint32"),
        ({"key_id": -1}, "does not fit uint64"),
    ],
)
def test_write_bin_refuses_what_does_not_fit(tmp_path, change, message):
    fields = dict(key_id=1, word="cat", countrycode="US", recognized=True, timestamp=0)
    fields["polylines"] = [np.array([[0.0, 0.0], [4.0, 3.0]])]
    good = QuickDrawDrawing(**fields)
    bad = QuickDrawDrawing(**{**fields, **change})
    path = tmp_path / "out.bin"
    with pytest.raises(SketchFileError, match=rf"out\.bin: cannot write drawing 1: .*{message}"):
        write_bin(path, [good, bad])
    assert list(tmp_path.iterdir()) == []


def test_splits_and_metadata_survive_ndjson(tmp_path):
    path = tmp_path / "s.ndjson"
    path.write_text(_line(split="valid") + "\n" + _line(key_id="3") + "\n")
    first, second = read_ndjson(path)
    assert (first.split, second.split) == ("valid", "")
    sketches = read_quickdraw_ndjson(path)
    assert sketches.splits == ["valid", ""] and sketches.notes == []
    assert sketches.metadata[1] == {
        "key_id": 3,
        "countrycode": "US",
        "recognized": True,
        "timestamp": 1490573697.31033,
    }
    write_ndjson(tmp_path / "again.ndjson", [first, second])
    again = [json.loads(line) for line in (tmp_path / "again.ndjson").read_text().splitlines()]
    assert again == [json.loads(line) for line in path.read_text().splitlines()]


def test_read_notes_say_what_reading_changed(tmp_path):
    raw = tmp_path / "raw.ndjson"
    raw.write_text(_line(drawing=[[[0.5, 30.0, 70.0], [1.0, 9.0, 2.0], [0, 10, 20]]]) + "\n")
    (note,) = read_quickdraw_ndjson(raw).notes
    assert note.startswith(f"{raw}: 1 raw drawings simplified as Google's simplified files")
    record = json.loads(_line())
    del record["word"]
    unnamed = tmp_path / "owl.ndjson"
    unnamed.write_text(json.dumps(record) + "\n")
    (note,) = read_quickdraw_ndjson(unnamed).notes
    assert note == f"{unnamed}: 1 drawings have no 'word': labelled 'owl' after the file name"


def test_an_overlong_line_is_refused_or_skipped_in_bounded_memory(tmp_path, monkeypatch):
    monkeypatch.setenv("SKETCHRNN_MAX_LINE_BYTES", "4096")
    path = tmp_path / "long.ndjson"
    path.write_text(_line() + "\n" + " " * 10_000 + "{}\n" + _line(key_id="9") + "\n")
    with pytest.raises(SketchFileError, match=r"long\.ndjson:2: line longer than the limit"):
        read_ndjson(path)
    assert [d.key_id for d in read_ndjson(path, skip_invalid=True)] == [5201136883597312, 9]
