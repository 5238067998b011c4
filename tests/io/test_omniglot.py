import io
import zipfile

import numpy as np
import pytest
from helpers import shared_file
from PIL import Image

from sketchrnn.io.files import SketchFileError
from sketchrnn.io.omniglot import (
    parse_omniglot_text,
    read_omniglot_drawings,
    read_omniglot_strokes,
)
from sketchrnn.strokes import stroke3_to_polylines


def _zip(tmp_path, files: dict[str, str]):
    path = tmp_path / "strokes.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


def test_parse_flips_y_and_splits_strokes():
    text = "START\n1.5,-2,0\n3,-4,10\nBREAK\n5,-6,20\nBREAK\n"
    strokes = parse_omniglot_text(text, "x.txt")
    assert len(strokes) == 2
    np.testing.assert_array_equal(strokes[0], [[1.5, 2, 0], [3, 4, 10]])
    np.testing.assert_array_equal(strokes[1], [[5, 6, 20]])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("START\n1,2,3\n1,oops,4\nBREAK\n", r"x\.txt:3: expected 'x,y,t'"),
        ("START\n1,2\nBREAK\n", r"x\.txt:2: expected 'x,y,t'"),
        ("1,2,3\nBREAK\n", r"x\.txt:1: expected START"),
        ("START\n1,2,3\nSTART\n", r"x\.txt:3: second START"),
        ("START\nBREAK\n", r"x\.txt: drawing has no points"),
        ("START\n1,nan,3\n", r"x\.txt:2: non-finite"),
    ],
)
def test_malformed_text_is_a_clear_error(text, message):
    with pytest.raises(SketchFileError, match=message):
        parse_omniglot_text(text, "x.txt")


def test_synthetic_zip_layout_labels_and_skipped_members(tmp_path):
    path = _zip(
        tmp_path,
        {
            "root/Latin/character02/0002_03.txt": "START\n0,0,0\n1,-1,5\nBREAK\n",
            "root/Latin/character01/0001_01.txt": "START\n0,0,0\nBREAK\n2,-2,9\nBREAK\n",
            "root/.DS_Store": "junk",
            "__MACOSX/root/Latin/character01/0001_01.txt": "resource fork",
        },
    )
    drawings = read_omniglot_drawings(path)
    assert [d.label for d in drawings] == ["Latin/character01", "Latin/character02"]
    assert (drawings[1].character_id, drawings[1].drawer) == (2, 3)
    sketches = read_omniglot_strokes(path)
    assert sketches.labels == ["Latin/character01", "Latin/character02"]
    np.testing.assert_array_equal(sketches.strokes[0], [[0, 0, 1], [2, 2, 1]])
    np.testing.assert_array_equal(sketches.strokes[1], [[0, 0, 0], [1, 1, 1]])


def test_zip_errors_name_the_member_or_file(tmp_path):
    path = _zip(tmp_path, {"r/A/character01/0001_01.txt": "START\n1,2,x\n"})
    with pytest.raises(SketchFileError, match=r"strokes\.zip/r/A/character01/0001_01\.txt:2"):
        read_omniglot_strokes(path)
    not_zip = tmp_path / "plain.zip"
    not_zip.write_text("hello")
    with pytest.raises(SketchFileError, match="plain.zip: not a readable zip"):
        read_omniglot_strokes(not_zip)
    with pytest.raises(SketchFileError, match="no such file"):
        read_omniglot_strokes(tmp_path / "missing.zip")
    with pytest.raises(SketchFileError, match="no Omniglot stroke files"):
        read_omniglot_strokes(_zip(tmp_path, {"readme.txt": "hi"}))


def test_real_zip_matches_the_published_images():
    strokes_zip = shared_file("omniglot/strokes_background_small1.zip")
    images_zip = shared_file("omniglot/images_background_small1.zip")
    drawings = read_omniglot_drawings(strokes_zip)
    assert len(drawings) == 2720  # 136 characters x 20 drawers
    assert len({d.label for d in drawings}) == 136
    assert {d.label.split("/")[0] for d in drawings} == {
        "Balinese",
        "Early_Aramaic",
        "Greek",
        "Korean",
        "Latin",
    }
    # With y flipped, the stroke points land on the ink of the matching 105x105 image (black
    # ink on white); unflipped they would fall on the blank, mirrored half.
    with zipfile.ZipFile(images_zip) as images:
        for drawing in drawings[::400]:
            member = "images_background_small1/" + drawing.member.split("/", 1)[1]
            png = images.read(member.replace(".txt", ".png"))
            ink = np.asarray(Image.open(io.BytesIO(png)).convert("L")) < 128
            xy = np.concatenate(stroke3_to_polylines(drawing.stroke3()))
            cols, rows = np.clip(np.round(xy).astype(int), 0, 104).T
            near_ink = np.zeros_like(ink)
            for dr in (-2, -1, 0, 1, 2):
                for dc in (-2, -1, 0, 1, 2):
                    near_ink |= np.roll(ink, (dr, dc), axis=(0, 1))
            assert near_ink[rows, cols].mean() > 0.95, drawing.member


def test_epsilon_simplifies():
    path = shared_file("omniglot/strokes_background_small2.zip")
    raw = read_omniglot_strokes(path)
    simple = read_omniglot_strokes(path, epsilon=1.0)
    assert len(raw) == len(simple) == 3120
    assert sum(map(len, simple.strokes)) < 0.5 * sum(map(len, raw.strokes))
    assert all(
        s[:, 2].sum() == r[:, 2].sum() for s, r in zip(simple.strokes, raw.strokes, strict=True)
    )


def test_a_flipped_bit_in_the_deflate_data_is_one_clear_error(tmp_path):
    name = "r/A/character01/0001_01.txt"
    path = _zip(tmp_path, {name: "START\n" + "".join(f"{i},{-i},{i * 16}\n" for i in range(400))})
    data = bytearray(path.read_bytes())
    start = 30 + len(name)  # the member's compressed data follows its local header
    for offset in range(start, start + 200, 7):  # zlib.error or a bad CRC, whichever it hits
        damaged = bytearray(data)
        damaged[offset] ^= 0x08
        path.write_bytes(bytes(damaged))
        try:
            read_omniglot_strokes(path)
        except SketchFileError as e:
            assert "strokes.zip" in str(e) and "\n" not in str(e)


def test_a_stroke_file_bomb_is_refused_from_the_directory(tmp_path):
    text = "START\n" + "12.5,-34.5,1234\n" * (1 << 16)  # 1 MiB of one line, 1.5 KB compressed
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for d in range(1, 21):
            archive.writestr(f"r/A/character01/0001_{d:02d}.txt", text)
    with pytest.raises(SketchFileError, match="refused as a likely decompression bomb"):
        read_omniglot_strokes(path)
