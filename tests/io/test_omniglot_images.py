"""Omniglot image splits: id mapping, rotations, polarity, resizing, and clear file errors."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from helpers import shared_file, write_fake_runs
from PIL import Image

from sketchrnn.fewshot import sample_episodes
from sketchrnn.io.files import SketchFileError
from sketchrnn.io.omniglot_images import (
    load_character_images,
    load_omniglot_split,
    load_one_shot_runs,
    read_alphabets,
    read_split_file,
    resize_ink_images,
)

# ---------------------------------------------------------------- a small synthetic Omniglot

ALPHABETS_TSV = (
    "set\tfirst_id\tlast_id\talphabet\n"
    "background\t1\t2\tAlpha\n"
    "background\t3\t5\tBeta\n"
    "evaluation\t6\t7\tGamma\n"
)


def _character(character_id: int, drawer: int) -> np.ndarray:
    """A raw 105x105 bool image (True = paper) whose ink encodes its id and drawer."""
    raw = np.ones((105, 105), dtype=bool)
    raw[: 5 * character_id, :10] = False  # a bar along the left edge, its length = the id
    raw[100:, : 5 * (drawer + 1)] = False  # a bar along the bottom edge for the drawer
    return raw


def _write_fake_omniglot(root: Path, splits: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "alphabets.tsv").write_text(ALPHABETS_TSV)
    for name, ids in (("background", range(1, 6)), ("evaluation", range(6, 8))):
        images = np.stack([np.stack([_character(c, d) for d in range(20)]) for c in ids])
        labels = np.repeat(np.arange(len(ids))[:, None], 20, axis=1)
        np.savez_compressed(root / f"images_{name}.npz", images=images, labels=labels)
    split_dir = root / "vinyals_splits"
    split_dir.mkdir(exist_ok=True)
    splits = splits or {
        "test": "Beta/character02/rot000\nBeta/character02/rot090\nGamma/character01/rot180\n"
    }
    for name, text in splits.items():
        (split_dir / f"{name}.txt").write_text(text)
    return root


def test_synthetic_split_maps_lines_to_ids_rotations_and_ink(tmp_path):
    root = _write_fake_omniglot(tmp_path / "omniglot")
    split = load_omniglot_split(root, "test", image_size=105)
    assert list(split.images) == [
        "Beta/character02/rot000",
        "Beta/character02/rot090",
        "Gamma/character01/rot180",
    ]
    assert split.alphabet_of["Gamma/character01/rot180"] == "Gamma"
    upright = split.images["Beta/character02/rot000"]
    assert upright.shape == (20, 105, 105) and upright.dtype == np.float32
    # Beta/character02 is id 3 + 2 - 1 = 4; ink (the raw False pixels) becomes 1.
    np.testing.assert_array_equal(upright[7], (~_character(4, 7)).astype(np.float32))
    np.testing.assert_array_equal(split.images["Beta/character02/rot090"][7], np.rot90(upright[7]))
    # Evaluation ids continue after the background ones: Gamma/character01 is id 6, row 0.
    np.testing.assert_array_equal(
        split.images["Gamma/character01/rot180"][3],
        np.rot90(~_character(6, 3), 2).astype(np.float32),
    )


def test_synthetic_lake_split_is_the_evaluation_alphabets_unrotated(tmp_path):
    root = _write_fake_omniglot(tmp_path / "omniglot")
    split = load_omniglot_split(root, "lake", image_size=28)
    assert list(split.images) == ["Gamma/character01", "Gamma/character02"]
    assert set(split.alphabet_of.values()) == {"Gamma"}
    assert split.images["Gamma/character02"].shape == (20, 28, 28)


def test_resize_keeps_ink_polarity_and_range():
    paper = np.ones((2, 105, 105), dtype=bool)
    assert resize_ink_images(paper, 28).max() == 0.0
    assert resize_ink_images(~paper, 28).min() == pytest.approx(1.0)
    half = np.ones((105, 105), dtype=bool)
    half[:, :52] = False  # left half (nearly) inked
    small = resize_ink_images(half, 28)
    assert small.shape == (28, 28) and small.dtype == np.float32
    assert small[:, :13].min() == pytest.approx(1.0) and small[:, 15:].max() == 0.0
    assert 0.0 <= small.min() and small.max() <= 1.0


@pytest.mark.parametrize(
    ("text", "fragment", "line"),
    [
        ("Beta/character02/rot000\nBeta/char2/rot000\n", "alphabet/characterNN/rotDEG", 2),
        ("Beta/character02/rot045\n", "rotation must be", 1),
    ],
)
def test_split_file_format_errors_name_file_and_line(tmp_path, text, fragment, line):
    path = tmp_path / "test.txt"
    path.write_text(text)
    with pytest.raises(SketchFileError, match=re.escape(fragment)) as err:
        read_split_file(path)
    assert err.value.path == str(path) and err.value.line == line


@pytest.mark.parametrize(
    ("text", "fragment", "line"),
    [
        ("Delta/character01/rot000\n", "'Delta' is not in alphabets.tsv", 1),
        ("Beta/character01/rot000\nBeta/character04/rot000\n", "Beta has 3 characters", 2),
    ],
)
def test_split_lines_that_do_not_resolve(tmp_path, text, fragment, line):
    root = _write_fake_omniglot(tmp_path / "omniglot", {"test": text})
    with pytest.raises(SketchFileError, match=re.escape(fragment)) as err:
        load_omniglot_split(root, "test")
    assert err.value.path.endswith("test.txt") and err.value.line == line


def test_bad_alphabets_tsv(tmp_path):
    path = tmp_path / "alphabets.tsv"
    path.write_text("set\tfirst_id\tlast_id\talphabet\nbackground\t1\tten\tAlpha\n")
    with pytest.raises(SketchFileError, match="must be integers") as err:
        read_alphabets(path)
    assert err.value.line == 2
    path.write_text("alphabet\tids\n")
    with pytest.raises(SketchFileError, match="header"):
        read_alphabets(path)


def test_missing_files_are_named(tmp_path):
    root = _write_fake_omniglot(tmp_path / "omniglot")
    with pytest.raises(SketchFileError, match=r"val\.txt: file not found"):
        load_omniglot_split(root, "val")
    (root / "images_evaluation.npz").unlink()
    with pytest.raises(SketchFileError, match=r"images_evaluation\.npz: file not found"):
        load_omniglot_split(root, "lake")
    with pytest.raises(ValueError, match="unknown split"):
        load_omniglot_split(root, "everything")


def test_malformed_npz_gives_clear_errors_and_is_never_unpickled(tmp_path):
    wrong_shape = tmp_path / "wrong_shape.npz"
    np.savez(wrong_shape, images=np.ones((2, 20, 28, 28), dtype=bool))
    with pytest.raises(SketchFileError, match=r"wrong_shape\.npz.*shape \(C, 20, 105, 105\)"):
        load_character_images(wrong_shape)

    no_images = tmp_path / "no_images.npz"
    np.savez(no_images, labels=np.zeros(3))
    with pytest.raises(SketchFileError, match="no 'images' array"):
        load_character_images(no_images)

    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, images=np.array([{"not": "an image"}], dtype=object))
    with pytest.raises(SketchFileError, match=r"pickled\.npz: .*object array \(pickle\)"):
        load_character_images(pickled)

    not_npz = tmp_path / "text.npz"
    not_npz.write_text("hello")
    with pytest.raises(SketchFileError, match=r"text\.npz"):
        load_character_images(not_npz)

    good = tmp_path / "good.npz"
    np.savez(good, images=np.ones((2, 20, 105, 105), dtype=bool))
    with pytest.raises(SketchFileError, match="expected 3 characters, found 2"):
        load_character_images(good, expected_characters=3)


# ---------------------------------------------------------------- the real data


def test_real_vinyals_test_split():
    root = shared_file("omniglot/vinyals_splits/test.txt").parents[1]
    split = load_omniglot_split(root, "test")
    assert len(split) == 423 * 4  # 423 characters, each in four rotations
    assert len({label.rsplit("/", 1)[0] for label in split.images}) == 423
    upright = split.images["Gurmukhi/character42/rot000"]
    assert upright.shape == (20, 28, 28) and upright.dtype == np.float32
    assert 0.0 <= upright.min() and upright.max() <= 1.0
    # Ink is the minority of a character image: a polarity mistake would give ~0.9.
    assert 0.02 < np.mean([im.mean() for im in split.images.values()]) < 0.25
    np.testing.assert_array_equal(
        split.images["Gurmukhi/character42/rot270"], np.rot90(upright, 3, axes=(1, 2))
    )


def test_real_character_index_matches_the_original_png_files():
    """characterNN -> id first_id + NN - 1, drawer DD -> row DD - 1: checked against the
    original PNGs (named IIII_DD.png) of Early_Aramaic, a Vinyals validation alphabet."""
    root = shared_file("omniglot/images_background_small1.zip").parent
    split = load_omniglot_split(root, "val")
    checked = 0
    for zip_name in ("images_background_small1.zip", "images_background_small2.zip"):
        with zipfile.ZipFile(root / zip_name) as archive:
            for name in archive.namelist():
                match = re.search(r"/Early_Aramaic/character(\d+)/\d{4}_(\d{2})\.png$", name)
                if not match:
                    continue
                raw = np.array(Image.open(io.BytesIO(archive.read(name)))).astype(bool)
                label = f"Early_Aramaic/character{int(match.group(1)):02d}/rot000"
                expected = resize_ink_images(raw, 28)
                np.testing.assert_array_equal(
                    split.images[label][int(match.group(2)) - 1], expected
                )
                checked += 1
    assert checked == 22 * 20


def test_real_lake_split():
    root = shared_file("omniglot/images_evaluation.npz").parent
    split = load_omniglot_split(root, "lake", image_size=28)
    assert len(split) == 659
    assert len(set(split.alphabet_of.values())) == 20
    assert "Angelic/character20" in split.images and "Angelic/character21" not in split.images
    # Within-alphabet episodes: 20-way episodes drawn with the alphabets as class groups.
    episodes = sample_episodes(
        split.images, 20, 1, 5, n_episodes=50, seed=0, class_groups=split.alphabet_of
    )
    assert all(len({split.alphabet_of[c] for c in e.classes}) == 1 for e in episodes)
    assert len({split.alphabet_of[e.classes[0]] for e in episodes}) > 5


# ---------------------------------------------------------------- Lake et al.'s one-shot runs


def test_one_shot_runs_pair_each_class_with_its_test_image(tmp_path):
    runs = load_one_shot_runs(write_fake_runs(tmp_path / "all_runs.zip"), image_size=28)
    assert len(runs.runs) == 2 and len(runs.images) == 40
    assert runs.runs[0][0] == "run01/training/class01"
    for images in runs.images.values():
        assert images.shape == (2, 28, 28) and images.dtype == np.float32
        # the test image is the noisy copy of the class's own training image
        assert np.abs(images[0] - images[1]).mean() < 0.05


def test_the_real_one_shot_runs_load():
    runs = load_one_shot_runs(shared_file("omniglot/all_runs.zip"))
    assert len(runs.runs) == 20 and all(len(classes) == 20 for classes in runs.runs)
    ink = np.array([images.mean() for images in runs.images.values()])
    assert (ink > 0.02).all() and (ink < 0.5).all()  # characters, neither blank nor inverted


@pytest.mark.parametrize(
    "tweak, message",
    [
        (lambda lines: [lines[0], lines[0].replace("item01", "item02"), *lines[2:]], "two test"),
        (lambda lines: [*lines[:-1], lines[-1].replace("training", "nowhere")], "names missing"),
        (lambda lines: ["just-one-column", *lines[1:]], "expected 'test.png training.png'"),
    ],
)
def test_broken_one_shot_runs_are_named_errors(tmp_path, tweak, message):
    path = write_fake_runs(tmp_path / "all_runs.zip", n_runs=1, tweak=tweak)
    with pytest.raises(SketchFileError, match=message) as err:
        load_one_shot_runs(path)
    assert "all_runs.zip" in str(err.value)
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with pytest.raises(SketchFileError, match="not a readable zip"):
        load_one_shot_runs(tmp_path / "junk.zip")
