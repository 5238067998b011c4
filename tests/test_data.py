"""Datasets and batches: padding, determinism, augmentation, splits, scale factor, files."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from helpers import shared_file

from sketchrnn.data import datasets_from_sketchset, load_datasets
from sketchrnn.datasets import Batch, DataSplits, SketchDataset, assign_splits, make_batch
from sketchrnn.io.files import SketchFileError
from sketchrnn.io.formats import read_sketches
from sketchrnn.io.sketchset import SketchSet
from sketchrnn.strokes import PAD_ROW, START_TOKEN, stroke3_to_stroke5


def random_sketch(rng: np.random.Generator, n: int, spread: float = 10.0) -> np.ndarray:
    """A canonical stroke-3 sketch of ``n`` points with a pen lift every few points."""
    s3 = np.zeros((n, 3), dtype=np.float32)
    s3[:, :2] = rng.normal(0, spread, size=(n, 2)).round()
    s3[rng.random(n) < 0.2, 2] = 1
    s3[-1, 2] = 1
    return s3


def make_dataset(n: int = 23, max_len: int = 30, seed: int = 0) -> SketchDataset:
    rng = np.random.default_rng(seed)
    sketches = [random_sketch(rng, int(k)) for k in rng.integers(1, max_len + 1, size=n)]
    labels = [i % 3 for i in range(n)]
    return SketchDataset(sketches, labels, ["a", "b", "c"], 1.0, max_len)


# ----------------------------------------------------------------------------- make_batch


def test_make_batch_layout():
    rng = np.random.default_rng(1)
    sketches = [random_sketch(rng, n) for n in (5, 1, 12)]
    batch = make_batch(sketches, [2, 0, 1], max_len=12)
    assert batch.strokes.shape == (3, 13, 5)
    assert batch.strokes.dtype == torch.float32
    assert batch.lengths.dtype == torch.int64 and batch.labels.dtype == torch.int64
    assert batch.lengths.tolist() == [5, 1, 12]
    assert batch.labels.tolist() == [2, 0, 1]
    strokes = batch.strokes.numpy()
    for i, s3 in enumerate(sketches):
        np.testing.assert_array_equal(strokes[i, 0], START_TOKEN)
        np.testing.assert_array_equal(strokes[i, 1:], stroke3_to_stroke5(s3, 12))
        n = len(s3)
        np.testing.assert_array_equal(strokes[i, 1 + n :], np.tile(PAD_ROW, (12 - n, 1)))
        np.testing.assert_array_equal(strokes[i, 1 : 1 + n, :2], s3[:, :2])


def test_make_batch_of_too_long_sketch_is_an_error():
    with pytest.raises(ValueError, match="n_max=4"):
        make_batch([np.ones((5, 3), dtype=np.float32)], [0], max_len=4)


# ----------------------------------------------------------------------------- SketchDataset


def test_dataset_checks_its_inputs():
    s3 = np.array([[1, 1, 1]], dtype=np.float32)
    with pytest.raises(ValueError, match="labels"):
        SketchDataset([s3], [0, 1], ["a"], 1.0, 5)
    with pytest.raises(ValueError, match="index"):
        SketchDataset([s3], [1], ["a"], 1.0, 5)
    with pytest.raises(ValueError, match="max_len=0"):
        SketchDataset([s3], [0], ["a"], 1.0, 0)


def test_batch_picks_the_given_indices():
    data = make_dataset()
    batch = data.batch([4, 0, 4])
    assert batch.strokes.shape == (3, data.max_len + 1, 5)
    assert batch.lengths.tolist() == [len(data.sketches[i]) for i in (4, 0, 4)]
    assert batch.labels.tolist() == [data.labels[i] for i in (4, 0, 4)]
    n = len(data.sketches[0])
    np.testing.assert_array_equal(batch.strokes[1, 1 : n + 1, :2].numpy(), data.sketches[0][:, :2])


def test_epoch_visits_every_sketch_once_in_a_seeded_order():
    data = make_dataset(n=23)
    batches = list(data.batches(5, seed=3, epoch=0, drop_last=False))
    assert [len(b.lengths) for b in batches] == [5, 5, 5, 5, 3]
    order = data.order(seed=3, epoch=0)
    assert sorted(order.tolist()) == list(range(23))
    assert not np.array_equal(order, np.arange(23))
    seen = torch.cat([b.lengths for b in batches]).numpy()
    np.testing.assert_array_equal(seen, data.lengths[order])
    np.testing.assert_array_equal(data.order(shuffle=False), np.arange(23))


def test_batches_are_deterministic_per_seed_and_epoch():
    data = make_dataset()

    def run(seed, epoch):
        return [b.strokes for b in data.batches(4, seed=seed, epoch=epoch, augment=True)]

    same = run(0, 1)
    for a, b in zip(same, run(0, 1), strict=True):
        assert torch.equal(a, b)
    assert not all(torch.equal(a, b) for a, b in zip(same, run(0, 2), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(same, run(1, 1), strict=True))


def test_drop_last_and_resume_from_a_batch():
    data = make_dataset(n=23)
    assert data.num_batches(5) == 4 and data.num_batches(5, drop_last=False) == 5
    full = list(data.batches(5, seed=7, epoch=2, augment=True, drop_prob=0.2))
    assert len(full) == 4
    resumed = list(data.batches(5, seed=7, epoch=2, augment=True, drop_prob=0.2, start_batch=2))
    assert len(resumed) == 2
    for a, b in zip(full[2:], resumed, strict=True):
        assert torch.equal(a.strokes, b.strokes) and torch.equal(a.lengths, b.lengths)


def test_augmentation_scales_each_axis_in_range_and_keeps_pens():
    data = make_dataset(n=8)
    plain = data.batch(range(8))
    augmented = data.batch(range(8), augment=True, rng=np.random.default_rng(0))
    assert torch.equal(plain.lengths, augmented.lengths)
    assert torch.equal(plain.strokes[..., 2:], augmented.strokes[..., 2:])
    for axis in (0, 1):
        a, p = augmented.strokes[..., axis], plain.strokes[..., axis]
        nonzero = p != 0
        ratio = a[nonzero] / p[nonzero]
        assert 0.9 - 1e-6 <= ratio.min() and ratio.max() <= 1.1 + 1e-6
        assert ratio.std() > 0  # a factor per sketch, not one for the whole batch


def test_point_dropping_shortens_sketches_but_keeps_strokes():
    data = make_dataset(n=10, max_len=30)
    plain = data.batch(range(10))
    dropped = data.batch(range(10), augment=True, rng=np.random.default_rng(0), drop_prob=0.9)
    assert (dropped.lengths <= plain.lengths).all() and (dropped.lengths < plain.lengths).any()
    assert torch.equal(plain.strokes[..., 3].sum(1), dropped.strokes[..., 3].sum(1))
    assert dropped.strokes.shape == plain.strokes.shape


def test_batch_options_that_would_do_nothing_are_errors():
    data = make_dataset(n=5)
    with pytest.raises(ValueError, match="augment=True"):
        data.batch([0], drop_prob=0.1)
    with pytest.raises(ValueError, match="augment=True"):
        data.batches(2, drop_prob=0.1)
    with pytest.raises(ValueError, match="fewer than batch_size=10"):
        data.batches(10)
    assert len(list(data.batches(10, drop_last=False))) == 1
    with pytest.raises(ValueError, match="batch_size"):
        data.batches(0)


# ----------------------------------------------------------------------------- splits


def labelled_set(counts: dict[str, int], seed: int = 0, split: str = "") -> SketchSet:
    rng = np.random.default_rng(seed)
    strokes, labels = [], []
    for label, count in counts.items():
        strokes += [random_sketch(rng, int(rng.integers(2, 20))) for _ in range(count)]
        labels += [label] * count
    return SketchSet(strokes, labels, [split] * len(strokes))


def test_assign_splits_per_class_with_fractions():
    sketches = assign_splits(labelled_set({"cat": 50, "dog": 20}), (0.6, 0.2, 0.2), seed=1)
    for label, n in (("cat", 50), ("dog", 20)):
        splits = [
            s for s, lab in zip(sketches.splits, sketches.labels, strict=True) if lab == label
        ]
        assert splits.count("valid") == round(0.2 * n) == splits.count("test")
        assert splits.count("train") == n - 2 * round(0.2 * n)


def test_assign_splits_is_seeded_and_stable_when_classes_are_added():
    base = labelled_set({"cat": 30})
    more = labelled_set({"cat": 30, "dog": 30})
    a = assign_splits(base, seed=5, name="x.ndjson").splits
    assert a == assign_splits(base, seed=5, name="x.ndjson").splits
    assert a != assign_splits(base, seed=6, name="x.ndjson").splits
    assert assign_splits(more, seed=5, name="x.ndjson").splits[:30] == a


def test_assign_splits_keeps_existing_splits_and_checks_fractions():
    sketches = labelled_set({"cat": 10}, split="test")
    assert assign_splits(sketches).splits == ["test"] * 10
    with pytest.raises(ValueError, match="sum to 1"):
        assign_splits(sketches, (0.5, 0.2, 0.2))


# ----------------------------------------------------------------------------- DataSplits


def three_split_set() -> SketchSet:
    """Train offsets of std ~10, valid/test of std ~100: a scale factor from all splits differs."""
    rng = np.random.default_rng(0)
    strokes, labels, splits = [], [], []
    for split, spread, count in (("train", 10.0, 40), ("valid", 100.0, 10), ("test", 100.0, 10)):
        for k in range(count):
            strokes.append(random_sketch(rng, int(rng.integers(2, 15)), spread))
            labels.append("ab"[k % 2])
            splits.append(split)
    return SketchSet(strokes, labels, splits)


def test_scale_factor_comes_from_train_only_and_normalises_every_split():
    raw = three_split_set()
    data = datasets_from_sketchset(raw)
    train_raw = [s for s, sp in zip(raw.strokes, raw.splits, strict=True) if sp == "train"]
    expected = np.concatenate([s[:, :2].ravel() for s in train_raw]).std()
    assert data.scale_factor == pytest.approx(expected, rel=1e-6)
    assert data.valid.scale_factor == data.test.scale_factor == data.scale_factor
    valid_raw = [s for s, sp in zip(raw.strokes, raw.splits, strict=True) if sp == "valid"]
    for a, b in zip(data.valid.sketches, valid_raw, strict=True):
        np.testing.assert_allclose(a[:, :2], b[:, :2] / expected, rtol=1e-6)
    assert (len(data.train), len(data.valid), len(data.test)) == (40, 10, 10)


def test_given_scale_factor_and_offset_limit_are_used():
    raw = three_split_set()
    data = datasets_from_sketchset(raw, scale_factor=2.0, offset_limit=50.0)
    assert data.scale_factor == 2.0
    assert max(np.abs(s[:, :2]).max() for s in data.valid.sketches) == pytest.approx(25.0)


def test_labels_index_sorted_classes_and_every_class_is_kept():
    data = datasets_from_sketchset(labelled_set({"zebra": 30, "ant": 30, "cow": 30}))
    assert data.classes == ["ant", "cow", "zebra"]
    for split in (data.train, data.valid, data.test):
        assert split.classes == data.classes
        assert sorted(set(split.labels.tolist())) == [0, 1, 2]
    unlabelled = datasets_from_sketchset(labelled_set({"": 20}), name="sheep")
    assert unlabelled.classes == ["sheep"]


def test_n_max_is_the_longest_kept_sketch_unless_padding_to_max_len():
    raw = labelled_set({"cat": 30})
    longest = max(len(s) for s in raw.strokes)
    data = datasets_from_sketchset(raw, max_len=250)
    assert data.max_len == data.valid.max_len == data.test.max_len == longest
    assert data.train.batch([0]).strokes.shape == (1, longest + 1, 5)
    assert datasets_from_sketchset(raw, max_len=250, pad_to_max_len=True).max_len == 250


def test_too_long_sketches_are_dropped_and_counted(caplog):
    raw = labelled_set({"cat": 40})
    too_long = sum(len(s) > 10 for s in raw.strokes)
    assert 0 < too_long < 30
    with caplog.at_level(logging.WARNING, logger="sketchrnn.data"):
        data = datasets_from_sketchset(raw, max_len=10, name="cats")
    assert data.dropped_too_long == {"cats": too_long}
    assert len(data.train) + len(data.valid) + len(data.test) == 40 - too_long
    assert data.max_len <= 10
    assert f"dropped {too_long} of 40" in caplog.text and "cats" in caplog.text


def test_too_long_error_names_the_source_and_sketch():
    raw = labelled_set({"cat": 40})
    with pytest.raises(SketchFileError, match=r"cats\.ndjson: sketch #\d+ .* more than max_len=10"):
        datasets_from_sketchset(raw, max_len=10, name="cats.ndjson", too_long="error")


def test_bad_sketches_and_no_training_data_are_clear_errors():
    bad = SketchSet([np.zeros((0, 3), dtype=np.float32)], ["cat"], ["train"])
    with pytest.raises(SketchFileError, match=r"mine\.npz: sketch #0: empty"):
        datasets_from_sketchset(bad, name="mine.npz")
    only_test = labelled_set({"cat": 5}, split="test")
    with pytest.raises(ValueError, match="no training sketches"):
        datasets_from_sketchset(only_test)
    # With a known scale factor (evaluating a trained model) no train split is needed.
    test_only = datasets_from_sketchset(only_test, scale_factor=3.0)
    assert (len(test_only.train), len(test_only.test)) == (0, 5)
    with pytest.raises(ValueError, match="no sketches left"):
        datasets_from_sketchset(only_test, max_len=1, scale_factor=3.0)


def test_data_splits_type():
    data = datasets_from_sketchset(labelled_set({"cat": 20}))
    assert isinstance(data, DataSplits)
    batch = next(data.train.batches(4))
    assert isinstance(batch, Batch)


# ----------------------------------------------------------------------------- files


def test_missing_empty_and_unknown_files_are_clear_errors(tmp_path):
    with pytest.raises(SketchFileError, match="nothere.npz: no such file"):
        read_sketches(tmp_path / "nothere.npz")
    (tmp_path / "empty.ndjson").write_bytes(b"")
    with pytest.raises(SketchFileError, match="empty.ndjson: empty file"):
        read_sketches(tmp_path / "empty.ndjson")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(SketchFileError, match=r"notes.txt: unsupported file type '\.txt'"):
        read_sketches(tmp_path / "notes.txt")
    with pytest.raises(SketchFileError, match="no such file"):
        load_datasets([tmp_path / "nothere.npz"])
    with pytest.raises(ValueError, match="no data files"):
        load_datasets([])


def test_load_datasets_uses_every_file_with_its_own_splits_and_labels(tmp_path):
    from sketchrnn.io.npz import write_npz

    write_npz(tmp_path / "cats.npz", labelled_set({"": 12}, seed=1, split="train"))
    dogs = labelled_set({"": 9}, seed=2)
    dogs.splits = ["train"] * 5 + ["valid"] * 2 + ["test"] * 2
    write_npz(tmp_path / "dogs.npz", dogs)
    data = load_datasets([tmp_path / "cats.npz", tmp_path / "dogs.npz"])
    assert data.classes == ["cats", "dogs"]
    assert (len(data.train), len(data.valid), len(data.test)) == (17, 2, 2)
    assert np.bincount(data.train.labels).tolist() == [12, 5]
    assert data.test.labels.tolist() == [1, 1]
    assert set(data.dropped_too_long) == {str(tmp_path / "cats.npz"), str(tmp_path / "dogs.npz")}
    # A single path is accepted as well as a list.
    assert load_datasets(tmp_path / "dogs.npz").classes == ["dogs"]


def test_svg_folder_gets_folder_labels_and_a_seeded_split(tmp_path):
    from sketchrnn.io.svg import write_svg

    rng = np.random.default_rng(0)
    for label in ("cat", "dog"):
        for k in range(10):
            write_svg(tmp_path / label / f"{k}.svg", random_sketch(rng, 6, spread=20.0))
    data = load_datasets(tmp_path, split_fractions=(0.6, 0.2, 0.2), split_seed=1)
    assert data.classes == ["cat", "dog"]
    assert (len(data.train), len(data.valid), len(data.test)) == (12, 4, 4)
    again = load_datasets(tmp_path, split_fractions=(0.6, 0.2, 0.2), split_seed=1)
    for a, b in zip(data.test.sketches, again.test.sketches, strict=True):
        np.testing.assert_array_equal(a, b)


def test_quickdraw_bin_file_is_read(tmp_path):
    from sketchrnn.io.quickdraw import QuickDrawDrawing
    from sketchrnn.io.quickdraw_bin import write_bin

    square = [np.array([[10, 10], [60, 10], [60, 60], [10, 60], [10, 10]], dtype=np.float64)]
    drawings = [QuickDrawDrawing(k, "box", "US", True, 0, square) for k in range(10)]
    write_bin(tmp_path / "box.bin", drawings)
    data = load_datasets([tmp_path / "box.bin"])
    assert data.classes == ["box"]
    assert len(data.train) + len(data.valid) + len(data.test) == 10


def test_sheep_npz_keeps_its_splits_and_scale_factor_from_train():
    from sketchrnn.io.npz import read_npz

    path = shared_file("sketchrnn/aaron_sheep.npz")
    data = load_datasets([path], max_len=250)
    assert (len(data.train), len(data.valid), len(data.test)) == (7400, 300, 300)
    assert data.classes == ["aaron_sheep"] and data.max_len == 250
    raw = read_npz(path).split("train").strokes
    expected = np.concatenate([np.clip(s[:, :2], -1000, 1000).ravel() for s in raw]).std()
    assert data.scale_factor == pytest.approx(expected, rel=1e-5)
    short = load_datasets([path], max_len=100)
    assert sum(short.dropped_too_long.values()) > 0 and short.max_len == 100
    with pytest.raises(SketchFileError, match=r"aaron_sheep\.npz: sketch #\d+"):
        load_datasets([path], max_len=100, too_long="error")


def test_mixed_real_files_give_one_class_each():
    files = [
        shared_file("sketchrnn/aaron_sheep.npz"),
        shared_file("quickdraw/simplified/cat.ndjson"),
        shared_file("quickdraw/simplified/dog.ndjson"),
    ]
    data = load_datasets(files, max_len=250)
    assert data.classes == ["aaron_sheep", "cat", "dog"]
    for split in (data.train, data.valid, data.test):
        assert set(split.labels.tolist()) == {0, 1, 2}
    batch = next(data.train.batches(64, seed=0, augment=True))
    assert batch.strokes.shape == (64, data.max_len + 1, 5)
