"""The packed store: packing, equality with load_datasets, batches, resume, validation."""

from __future__ import annotations

import gc
import json
import os
import pickle
import shutil

import numpy as np
import pytest
import torch
from helpers import shared_file

import sketchrnn.store.packing as pack_module
from sketchrnn.data import load_datasets
from sketchrnn.datasets import SketchDataset
from sketchrnn.io.files import SketchFileError
from sketchrnn.io.formats import write_sketches
from sketchrnn.io.sketchset import SketchSet
from sketchrnn.store import (
    FORMAT_VERSION,
    StoreDataset,
    StoreWriter,
    batch_loader,
    open_store,
    pack,
    store_datasets,
)
from sketchrnn.store.format import npy_header

SPLITS = ("train", "valid", "test")


def random_sketch(rng: np.random.Generator, n: int, spread: float = 10.0, whole=True):
    s3 = np.zeros((n, 3), dtype=np.float32)
    xy = rng.normal(0, spread, size=(n, 2))
    s3[:, :2] = xy.round() if whole else xy
    s3[rng.random(n) < 0.2, 2] = 1
    s3[-1, 2] = 1
    return s3


def sketch_set(seed: int, count: int, labels=("",), splits=True, whole=True, longest=40):
    rng = np.random.default_rng(seed)
    strokes = [random_sketch(rng, int(n), whole=whole) for n in rng.integers(1, longest, count)]
    return SketchSet(
        strokes,
        [labels[i % len(labels)] for i in range(count)],
        [SPLITS[i % 3] if splits else "" for i in range(count)],
    )


@pytest.fixture
def synthetic_files(tmp_path):
    """An npz with splits, an ndjson without (splits assigned, two classes), and an npz of
    float offsets (after the int16 ones: the points array is upgraded to float32 mid-pack)."""
    a, b, c = tmp_path / "cats.npz", tmp_path / "mixed.ndjson", tmp_path / "floaty.npz"
    write_sketches(a, sketch_set(1, 30))
    write_sketches(b, sketch_set(2, 40, labels=("dog", "owl"), splits=False))
    # An offset beyond offset_limit, to check the clipping matches too.
    floaty = sketch_set(3, 25, whole=False)
    floaty.strokes[0][0, 0] = 2500.5
    write_sketches(c, floaty)
    return [a, b, c]


def assert_same_splits(store_data, ref, exact_scale=True):
    assert store_data.classes == ref.classes
    assert store_data.max_len == ref.max_len
    assert store_data.dropped_too_long == ref.dropped_too_long
    assert store_data.scale_factor == pytest.approx(ref.scale_factor, rel=1e-9)
    for split in SPLITS:
        a, b = getattr(store_data, split), getattr(ref, split)
        assert isinstance(a, StoreDataset) and isinstance(a, SketchDataset)
        assert len(a) == len(b)
        np.testing.assert_array_equal(a.labels, b.labels)
        np.testing.assert_array_equal(a.lengths, b.lengths)
        if exact_scale:
            for x, y in zip(a.sketches, b.sketches, strict=True):
                np.testing.assert_array_equal(x, y)


def assert_same_batch(x, y):
    assert x.strokes.shape == y.strokes.shape
    for u, v in zip(x, y, strict=True):
        assert u.dtype == v.dtype
        assert torch.equal(u, v)


# ----------------------------------------------------------------------------- packing


def test_store_equals_load_datasets_on_synthetic_files(synthetic_files, tmp_path):
    report = pack(synthetic_files, tmp_path / "s.store", progress=False)
    assert report.num_sketches == 95 and report.points_dtype == "float32"
    assert report.classes == ["cats", "dog", "floaty", "owl"]
    store = open_store(tmp_path / "s.store")
    assert store.sources[1]["splits_assigned"] == 40
    for max_len in (20, 250):
        ref = load_datasets(synthetic_files, max_len=max_len)
        assert_same_splits(store_datasets(tmp_path / "s.store", max_len), ref, exact_scale=False)
        # With the very same float scale factor, the normalised sketches are equal bit for bit.
        assert_same_splits(store_datasets(store, max_len, scale_factor=ref.scale_factor), ref)
    # An offset_limit the pack did not gather sums for takes the streaming path.
    for limit in (None, 50.0):
        ref = load_datasets(synthetic_files, max_len=30, offset_limit=limit)
        data = store_datasets(store, 30, offset_limit=limit)
        assert data.scale_factor == pytest.approx(ref.scale_factor, rel=1e-9)
    padded = store_datasets(store, 60, pad_to_max_len=True)
    assert padded.max_len == 60 == load_datasets(synthetic_files, 60, pad_to_max_len=True).max_len


def test_svg_folders_and_pack_time_length_limit(synthetic_files, tmp_path):
    from sketchrnn.io.svg import write_svg

    rng = np.random.default_rng(0)
    for label in ("cat", "dog"):
        for k in range(6):
            write_svg(tmp_path / "svgs" / label / f"{k}.svg", random_sketch(rng, 6, spread=20.0))
    files = [*synthetic_files, tmp_path / "svgs"]
    pack(files, tmp_path / "s.store", max_length=30, progress=False)
    for max_len in (20, 30):
        ref = load_datasets(files, max_len=max_len)
        data = store_datasets(tmp_path / "s.store", max_len, scale_factor=ref.scale_factor)
        assert_same_splits(data, ref)
    assert open_store(tmp_path / "s.store").sources[0]["dropped"]["too_long"] > 0


def test_store_equals_load_datasets_on_shipped_files(tmp_path):
    files = [
        shared_file("sketchrnn/aaron_sheep.npz"),
        shared_file("quickdraw/simplified/cat.ndjson"),
        shared_file("quickdraw/simplified/The Mona Lisa.ndjson"),
        shared_file("quickdraw/raw/cat.ndjson"),
    ]
    pack(files, tmp_path / "q.store", progress=False)
    ref = load_datasets(files, max_len=100)
    assert sum(ref.dropped_too_long.values()) > 0
    data = store_datasets(tmp_path / "q.store", max_len=100)
    assert_same_splits(data, ref, exact_scale=False)
    exact = store_datasets(tmp_path / "q.store", max_len=100, scale_factor=ref.scale_factor)
    assert_same_splits(exact, ref)
    idx = np.random.default_rng(0).permutation(len(ref.train))[:100]
    for augment, drop in ((False, 0.0), (True, 0.0), (True, 0.2)):
        x = exact.train.batch(idx, augment, np.random.default_rng(5), drop_prob=drop)
        y = ref.train.batch(idx, augment, np.random.default_rng(5), drop_prob=drop)
        assert_same_batch(x, y)
    with pytest.raises(SketchFileError, match=r"aaron_sheep\.npz: sketch #\d+ \(\w+\) has"):
        store_datasets(tmp_path / "q.store", max_len=100, too_long="error")


def test_batches_equal_the_per_sketch_path_and_are_deterministic(synthetic_files, tmp_path):
    pack(synthetic_files, tmp_path / "s.store", progress=False)
    ref = load_datasets(synthetic_files, max_len=30)
    data = store_datasets(tmp_path / "s.store", max_len=30, scale_factor=ref.scale_factor)
    train, valid = data.train, data.valid
    for kwargs in ({}, {"augment": True}, {"augment": True, "drop_prob": 0.3}):
        mine = list(train.batches(8, seed=3, epoch=1, drop_last=False, **kwargs))
        theirs = list(ref.train.batches(8, seed=3, epoch=1, drop_last=False, **kwargs))
        assert len(mine) == len(theirs) == train.num_batches(8, drop_last=False)
        for x, y in zip(mine, theirs, strict=True):
            assert_same_batch(x, y)
        again = list(train.batches(8, seed=3, epoch=1, drop_last=False, **kwargs))
        for x, y in zip(mine, again, strict=True):
            assert_same_batch(x, y)
    # subset, negative indices, an empty batch, and the argument checks of SketchDataset.
    sub = valid.subset([2, 0])
    assert_same_batch(sub.batch([0, 1]), ref.valid.subset([2, 0]).batch([0, 1]))
    assert_same_batch(valid.batch([-1]), ref.valid.batch([-1]))
    assert valid.batch([]).strokes.shape == (0, 31, 5)
    with pytest.raises(ValueError, match="drop_prob"):
        valid.batch([0], drop_prob=0.1)
    with pytest.raises(IndexError):
        valid.batch([len(valid)])
    assert "StoreDataset(" in repr(valid)


def test_dataloader_workers_and_pickling_share_the_store(synthetic_files, tmp_path):
    pack(synthetic_files, tmp_path / "s.store", progress=False)
    train = store_datasets(tmp_path / "s.store", max_len=30).train
    blob = pickle.dumps(train)
    assert len(blob) < 20_000  # the path, the index and labels: no points
    clone = pickle.loads(blob)
    assert_same_batch(clone.batch([0, 3]), train.batch([0, 3]))
    loader = batch_loader(train, 8, num_workers=1, seed=1, augment=True, start_batch=1)
    expected = list(train.batches(8, seed=1, augment=True, start_batch=1))
    got = list(loader)
    assert len(got) == len(expected)
    for x, y in zip(got, expected, strict=True):
        assert_same_batch(x, y)


# ----------------------------------------------------------------------------- atomic, resumable


def _arrays(path):
    store = open_store(path)
    manifest = dict(store.manifest)
    manifest.pop("created_at")
    manifest.pop("manifest_digest")  # of created_at too
    return manifest, [
        np.array(a) for a in (store.points, store.offsets, store.labels, store.splits)
    ]


def assert_same_store(a, b):
    (ma, xa), (mb, xb) = _arrays(a), _arrays(b)
    assert ma == mb
    for u, v in zip(xa, xb, strict=True):
        assert u.dtype == v.dtype
        np.testing.assert_array_equal(u, v)


def test_a_killed_pack_resumes_after_the_last_finished_source(
    synthetic_files, tmp_path, monkeypatch
):
    files = synthetic_files + [tmp_path / "more.npz"]
    write_sketches(files[-1], sketch_set(4, 20, labels=("cats",)))
    pack(files, tmp_path / "fresh.store", progress=False)
    out = tmp_path / "out.store"

    real_read = pack_module.read_sketches
    reads = []

    def dies_on_third(path, **kwargs):
        reads.append(path)
        if len(reads) == 3:
            raise KeyboardInterrupt  # as a kill would stop it
        return real_read(path, **kwargs)

    monkeypatch.setattr(pack_module, "read_sketches", dies_on_third)
    with pytest.raises(KeyboardInterrupt):
        pack(files, out, progress=False)
    assert not out.exists() and (tmp_path / "out.store.part").is_dir()

    # Killed while upgrading the points to float32 (for the third source), then after the
    # third source's data are written but before their commit: both resume from two sources.
    monkeypatch.setattr(pack_module, "read_sketches", real_read)
    real_commit = StoreWriter._commit
    for kill_at in (1, 2):
        commits = []

        def dies_at_commit(self, kill_at=kill_at, commits=commits):
            commits.append(1)
            if len(commits) == kill_at:
                raise KeyboardInterrupt
            real_commit(self)

        monkeypatch.setattr(StoreWriter, "_commit", dies_at_commit)
        with pytest.raises(KeyboardInterrupt):
            pack(files, out, progress=False)
        assert not out.exists()
    part = tmp_path / "out.store.part"
    state = json.loads((part / "progress.json").read_text())
    assert len(state["sources"]) == 2 and state["points_dtype"] == "float32"
    written = (part / "points-float32.part").stat().st_size
    assert written > state["bytes"]["points-float32.part"]  # uncommitted rows, to be cut
    monkeypatch.setattr(StoreWriter, "_commit", real_commit)
    report = pack(files, out, progress=False)
    assert report.resumed_sources == 2
    assert not (tmp_path / "out.store.part").exists()
    assert_same_store(out, tmp_path / "fresh.store")


def test_changed_sources_or_options_start_over(synthetic_files, tmp_path, monkeypatch):
    out = tmp_path / "out.store"
    real_read = pack_module.read_sketches

    def dies_on_second(path, **kwargs):
        if path == str(synthetic_files[1]):
            raise KeyboardInterrupt
        return real_read(path, **kwargs)

    monkeypatch.setattr(pack_module, "read_sketches", dies_on_second)
    with pytest.raises(KeyboardInterrupt):
        pack(synthetic_files, out, progress=False)
    monkeypatch.setattr(pack_module, "read_sketches", real_read)
    report = pack(synthetic_files, out, split_seed=7, progress=False)
    assert report.resumed_sources == 0


def test_a_bad_source_leaves_the_existing_store_as_it_was(synthetic_files, tmp_path):
    out = tmp_path / "s.store"
    pack(synthetic_files[:1], out, progress=False)
    before = _arrays(out)
    bad = tmp_path / "bad.ndjson"
    bad.write_text('{"word": "cat", "drawing": [[[1, 2], [3, 4]]]}\n{"word": "cat", "dr')
    with pytest.raises(SketchFileError, match="bad.ndjson"):
        pack([synthetic_files[1], bad], out, overwrite=True, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir() if "s.store" in p.name) == ["s.store"]
    after = _arrays(out)
    assert before[0] == after[0]
    with pytest.raises(SketchFileError, match="already exists"):
        pack(synthetic_files[:1], out, progress=False)
    plain = tmp_path / "notastore"
    plain.mkdir()
    with pytest.raises(SketchFileError, match="not a packed store"):
        pack(synthetic_files[:1], plain, overwrite=True, progress=False)
    report = pack(synthetic_files[:2], out, overwrite=True, progress=False)
    assert report.num_sketches == 70 and open_store(out).num_points == report.num_points


def test_a_failed_pack_leaves_nothing_behind(synthetic_files, tmp_path, capsys):
    from sketchrnn.cli import main

    empty = tmp_path / "empty"
    empty.mkdir()
    before = sorted(tmp_path.iterdir())
    assert main(["data", "pack", str(empty), "--out", str(tmp_path / "x.store")]) == 2
    assert capsys.readouterr().err.split("\n")[-2:] == [
        f"sketchrnn: error: {empty}: folder holds no .svg files",
        "",
    ]
    assert sorted(tmp_path.iterdir()) == before  # no x.store.part, no lock file
    # Folders made for the store go too; a pack that succeeds afterwards is unaffected.
    deep = tmp_path / "a" / "b" / "x.store"
    with pytest.raises(SketchFileError, match="empty"):
        pack([empty], deep, progress=False)
    assert sorted(tmp_path.iterdir()) == before
    pack(synthetic_files[:1], deep, progress=False)
    assert sorted(p.name for p in deep.parent.iterdir()) == ["x.store"]
    with pytest.raises(ValueError, match="the store's path is empty"):
        pack(synthetic_files[:1], "", progress=False)
    with pytest.raises(SystemExit) as stop:  # the command line refuses any empty value first
        main(["data", "pack", str(synthetic_files[0]), "--out", ""])
    assert stop.value.code == 2
    assert "--out: empty value" in capsys.readouterr().err


def test_the_same_source_twice_is_refused(synthetic_files, tmp_path, monkeypatch):
    cats = synthetic_files[0]
    (tmp_path / "link.npz").symlink_to(cats)
    os.link(cats, tmp_path / "hard.npz")
    (tmp_path / "svgs" / "a").mkdir(parents=True)
    shutil.copy(cats, tmp_path / "svgs" / "a" / "c.npz")
    monkeypatch.chdir(tmp_path)
    for sources, said in (
        ([cats, cats], f"{cats}: given twice: give each source once"),
        (["cats.npz", "./cats.npz"], "./cats.npz: the same file as cats.npz"),
        ([cats, tmp_path / "link.npz"], f"{tmp_path / 'link.npz'}: the same file as {cats}"),
        ([tmp_path / "hard.npz", cats], f"{cats}: the same file as {tmp_path / 'hard.npz'}"),
        (["svgs/a/c.npz", "svgs"], "svgs/a/c.npz: inside the folder svgs, also given"),
        (["svgs", "svgs/a"], "svgs/a: inside the folder svgs, also given"),
    ):
        with pytest.raises(SketchFileError) as refused:
            pack(sources, tmp_path / "s.store", progress=False)
        assert str(refused.value).startswith(said)
        assert not (tmp_path / "s.store").exists() and not (tmp_path / "s.store.part").exists()
    pack([cats, "svgs/a/c.npz"], tmp_path / "s.store", progress=False)  # a copy is no duplicate


def test_pack_options_are_checked_against_the_store(synthetic_files, tmp_path):
    pack(synthetic_files, tmp_path / "s.store", split_seed=3, progress=False)
    store_datasets(tmp_path / "s.store", split_seed=3)
    with pytest.raises(ValueError, match="split_seed=3"):
        store_datasets(tmp_path / "s.store", split_seed=0)
    ref = load_datasets(synthetic_files, split_seed=3)
    assert_same_splits(store_datasets(tmp_path / "s.store", scale_factor=ref.scale_factor), ref)


# ----------------------------------------------------------------------------- validation


@pytest.fixture
def store_dir(synthetic_files, tmp_path):
    pack(synthetic_files, tmp_path / "s.store", progress=False)
    return tmp_path / "s.store"


def test_truncated_files_are_clear_errors(store_dir, tmp_path):
    for name in ("points.npy", "offsets.npy", "labels.npy", "splits.npy"):
        broken = tmp_path / f"broken-{name}"
        shutil.copytree(store_dir, broken)
        file = broken / name
        file.write_bytes(file.read_bytes()[:-7])
        with pytest.raises(SketchFileError, match=rf"{name}: truncated"):
            open_store(broken)
    (broken / "splits.npy").write_bytes(b"\x93NUMPY")
    with pytest.raises(SketchFileError, match="splits.npy: not a valid .npy"):
        open_store(broken)
    (broken / "splits.npy").unlink()
    with pytest.raises(SketchFileError, match="splits.npy: missing"):
        open_store(broken)


def test_an_index_that_disagrees_with_its_data_is_an_error(store_dir):
    offsets = np.load(store_dir / "offsets.npy")
    bad = offsets.copy()
    bad[5], bad[6] = bad[6], bad[5]
    np.save(store_dir / "offsets.npy", bad)
    with pytest.raises(SketchFileError, match="offsets.npy: offsets do not increase at sketch 5"):
        open_store(store_dir)
    bad = offsets.copy()
    bad[-1] -= 1
    np.save(store_dir / "offsets.npy", bad)
    with pytest.raises(SketchFileError, match="disagrees with the data"):
        open_store(store_dir)
    np.save(store_dir / "offsets.npy", offsets[:-1])  # a whole file, of the wrong shape
    with pytest.raises(SketchFileError, match="offsets.npy: holds int64 of shape"):
        open_store(store_dir)
    np.save(store_dir / "offsets.npy", offsets)
    labels = np.load(store_dir / "labels.npy")
    np.save(store_dir / "labels.npy", labels.astype(np.int32))
    with pytest.raises(SketchFileError, match="labels.npy: holds int32"):
        open_store(store_dir)
    labels[3] = 4
    np.save(store_dir / "labels.npy", labels)
    with pytest.raises(SketchFileError, match="labels.npy: label 4 of sketch 3 is outside the 4"):
        open_store(store_dir)


def test_manifest_problems_are_clear_errors(store_dir, tmp_path):
    manifest_file = store_dir / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    manifest_file.write_text(json.dumps({**manifest, "format_version": FORMAT_VERSION + 1}))
    with pytest.raises(SketchFileError, match="newer sketchrnn.*upgrade sketchrnn"):
        open_store(store_dir)
    manifest_file.write_text(json.dumps({**manifest, "num_sketches": 94}))
    with pytest.raises(SketchFileError, match="split_counts: add up to 95, not 94 sketches"):
        open_store(store_dir)
    manifest_file.write_text("{not json")
    with pytest.raises(SketchFileError, match="manifest.json: not a readable store manifest"):
        open_store(store_dir)
    manifest_file.unlink()
    with pytest.raises(SketchFileError, match="manifest.json: missing"):
        open_store(store_dir)
    with pytest.raises(SketchFileError, match="no such store"):
        store_datasets(tmp_path / "nothere")


def test_npy_header_is_what_numpy_reads(tmp_path):
    data = np.arange(12, dtype=np.int16).reshape(4, 3)
    (tmp_path / "x.npy").write_bytes(npy_header(data.shape, data.dtype) + data.tobytes())
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy"), data)
    assert len(npy_header((2**62, 3), np.float32)) == 128


# ----------------------------------------------------------------------------- scale


def test_opening_a_large_store_makes_no_python_object_per_sketch(tmp_path):
    rng = np.random.default_rng(0)
    n = 100_000
    lengths = rng.integers(5, 30, n)
    points = np.zeros((int(lengths.sum()), 3), dtype=np.int16)
    points[:, :2] = rng.integers(-20, 21, (len(points), 2))
    points[np.cumsum(lengths) - 1, 2] = 1
    codes = (np.arange(n) % 10 == 0).astype(np.uint8)
    writer = StoreWriter(tmp_path / "big.store", {"synthetic": n})
    writer.append({"path": "synthetic"}, points, lengths, ["a", "b"], np.arange(n) % 2, codes)
    writer.finish()
    gc.collect()
    before = len(gc.get_objects())
    data = store_datasets(tmp_path / "big.store", max_len=25)
    batch = data.train.batch(np.arange(100), augment=True, rng=np.random.default_rng(0))
    gc.collect()
    assert len(gc.get_objects()) - before < 2_000
    assert batch.strokes.shape == (100, 26, 5)
    kept = lengths <= 25
    assert len(data.train) == int((kept & (codes == 0)).sum())
    assert data.dropped_too_long == {"synthetic": int((~kept).sum())}
    xy = np.repeat(kept & (codes == 0), lengths)
    assert data.scale_factor == pytest.approx(points[xy, :2].astype(np.float64).std(), rel=1e-12)


def test_very_long_sketches_are_counted_at_open(tmp_path):
    """The train lengths are checked against the offset statistics at open; sketches of
    65,536 points and more are counted one by one (no histogram as long as the longest)."""
    lengths = np.array([70_000, 3, 80_000, 5])
    points = np.zeros((int(lengths.sum()), 3), dtype=np.int16)
    points[:, 0] = np.arange(len(points)) % 7 - 3
    points[np.cumsum(lengths) - 1, 2] = 1
    codes = np.array([0, 1, 0, 0], dtype=np.uint8)
    writer = StoreWriter(tmp_path / "long.store", {"long": 1})
    writer.append({"path": "long"}, points, lengths, ["a"], np.zeros(4, int), codes)
    writer.finish()
    assert len(open_store(tmp_path / "long.store")) == 4
    # The 70,000-point train sketch and the 3-point valid one trade splits: every count in
    # the manifest still agrees, the lengths of the train sketches do not.
    splits = np.load(tmp_path / "long.store" / "splits.npy", mmap_mode="r+")
    splits[:2] = [1, 0]
    splits.flush()
    del splits
    with pytest.raises(
        SketchFileError,
        match=r"offsets\.npy: 1 train sketches of 3 points, but the manifest's "
        r"train_offset_stats count 0",
    ):
        open_store(tmp_path / "long.store")
