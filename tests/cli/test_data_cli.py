"""``sketchrnn data download --all/--list``, ``data pack`` by class name, ``data info`` on a
packed store and ``data render --n`` checks, against a local server on 127.0.0.1 laid out like
the official Quick, Draw! storage (never the internet)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import FolderServer, random_sketches, write_quickdraw_npz

from sketchrnn.cli import main
from sketchrnn.io.formats import read_sketches
from sketchrnn.io.quickdraw_download import QUICKDRAW_CLASSES
from sketchrnn.io.sketchset import SketchSet
from sketchrnn.store import open_store, pack

PREFIX = "/quickdraw_dataset/sketchrnn/"
SERVED = ["cat", "hot dog", "The Eiffel Tower"]


@pytest.fixture
def storage(tmp_path):
    folder = tmp_path / "storage"
    folder.mkdir()
    for seed, name in enumerate(SERVED):
        write_quickdraw_npz(folder / f"{name}.npz", seed=seed)
    with FolderServer(folder, prefix=PREFIX) as server:
        yield server


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    return err[-1]


def test_download_list_then_pack_by_name(storage, tmp_path, capsys):
    cache = tmp_path / "cache"
    cache.mkdir()
    cat = (storage.folder / "cat.npz").read_bytes()
    (cache / "cat.npz.part").write_bytes(cat[: len(cat) // 2])  # killed half way last time
    classes = tmp_path / "classes.txt"
    classes.write_text("cat\nunicorn\nhot dog\nThe Eiffel Tower\n")
    args = ["data", "download", "--list", str(classes), "--to", str(cache)]
    args += ["--base-url", storage.url]

    assert main(args) == 2  # unicorn is not served: the rest still arrives
    out = capsys.readouterr()
    lines = out.out.splitlines()  # a line per file that arrived, then the summary
    assert lines[0].startswith(f"{cache / 'cat.npz'}: resumed")
    assert lines[1].startswith(f"{cache / 'hot dog.npz'}: downloaded")
    assert "4 classes: 3 downloaded (1 resumed), 0 already complete, 1 failed" in lines[3]
    errors = [line for line in out.err.splitlines() if line.startswith(("/", "sketchrnn"))]
    assert errors[0].startswith(f"{cache / 'unicorn.npz'}: failed: ") and "HTTP 404" in errors[0]
    assert errors[1].startswith("sketchrnn: error: 1 of 4 classes failed: unicorn ")
    assert len(errors) == 2
    assert (PREFIX + "cat.npz", f"bytes={len(cat) // 2}-") in storage.requests
    assert (cache / "cat.npz").read_bytes() == cat
    assert sorted(p.name for p in cache.iterdir()) == sorted(f"{n}.npz" for n in SERVED)

    # Packing by the names needs every class downloaded ...
    store = tmp_path / "qd.store"
    pack_args = ["data", "pack", "--list", str(classes), "--from", str(cache), "--out", str(store)]
    assert main(pack_args) == 2
    assert "no downloaded class file for: unicorn" in _error_line(capsys)
    assert not store.exists()
    # ... so fetch it (only it: the others are complete) and pack.
    write_quickdraw_npz(storage.folder / "unicorn.npz", seed=7)
    storage.requests.clear()
    assert main(args) == 0
    assert storage.requests == [(PREFIX + "unicorn.npz", None)]
    assert "3 already complete" in capsys.readouterr().out
    assert main(pack_args) == 0
    packed = open_store(store)
    assert packed.classes == sorted(["cat", "unicorn", "hot dog", "The Eiffel Tower"])
    assert len(packed) == 4 * 50 and packed.manifest["split_counts"]["train"] == 4 * 40
    assert {s["path"] for s in packed.sources} == {
        str(cache / f"{n}.npz") for n in ["cat", "unicorn", "hot dog", "The Eiffel Tower"]
    }

    # Bare class names resolve to the downloaded files too, beside ordinary paths.
    other = tmp_path / "other.npz"
    write_quickdraw_npz(other, seed=11)
    two = tmp_path / "two.store"
    assert main(["data", "pack", "cat", str(other), "--from", str(cache), "--out", str(two)]) == 0
    assert open_store(two).classes == ["cat", "other"]


def test_download_all_asks_for_every_class(storage, tmp_path, capsys):
    cache = tmp_path / "cache"
    args = ["data", "download", "--all", "--to", str(cache), "--base-url", storage.url]
    assert main([*args, "--no-progress"]) == 2
    assert len(storage.requests) == len(QUICKDRAW_CLASSES) == 345
    assert sorted(p.name for p in cache.iterdir()) == sorted(f"{n}.npz" for n in SERVED)
    out = capsys.readouterr()
    assert len(out.out.splitlines()) == 3 + 1  # a line per file that arrived, the summary
    assert len(out.err.splitlines()) == 342 + 1  # a line per failure, the error
    error = out.err.strip().splitlines()[-1]
    assert error.startswith("sketchrnn: error: 342 of 345 classes failed: aircraft carrier, ")
    assert "... (342 in all)" in error


def test_download_needs_some_classes(capsys):
    assert main(["data", "download"]) == 2
    assert "--list FILE or --all" in _error_line(capsys)


@pytest.fixture
def packed_store(tmp_path):
    sketches = random_sketches(30, seed=3, lengths=(2, 30))
    sketches.append(np.tile(np.array([[1.0, 0.0, 0.0]], np.float32), (300, 1)))  # too long
    sketches[-1][-1, 2] = 1
    labels = ["owl" if i % 3 else "ant" for i in range(len(sketches))]
    splits = ["train", "train", "valid", "test", "train"] * 6 + ["train"]
    source = tmp_path / "zoo.ndjson"
    from sketchrnn.io.formats import write_sketches

    write_sketches(tmp_path / "zoo.npz", SketchSet(sketches[:10], ["owl"] * 10, splits[:10]))
    write_sketches(source, SketchSet(sketches[10:], labels[10:], [""] * 21))
    store = tmp_path / "zoo.store"
    pack([tmp_path / "zoo.npz", source], store, max_length=200, progress=False)
    return store


def test_info_on_a_store_reads_no_sketch(packed_store, capsys, monkeypatch):
    import sketchrnn.io.formats
    import sketchrnn.store.format

    def refuse(*args, **kwargs):
        raise AssertionError("data info on a store must not read sketches")

    monkeypatch.setattr(sketchrnn.io.formats, "read_sketches", refuse)
    monkeypatch.setattr(sketchrnn.store.format.PackedStore, "sketch", refuse)
    assert main(["data", "info", str(packed_store)]) == 0
    out = capsys.readouterr().out
    store = open_store(packed_store)
    counts = store.manifest["split_counts"]
    assert f"{packed_store} (packed store, format 2" in out
    assert "sketches: 30" in out and f"train: {counts['train']}" in out
    assert f"valid: {counts['valid']}" in out and f"test: {counts['test']}" in out
    assert f"points: {store.num_points:,} (int16)" in out
    assert (
        f"scale factor (std of train offsets, clipped at 1000): {store.scale_factor():.4f}" in out
    )
    owls = int(np.sum(np.asarray(store.labels) == store.classes.index("owl")))
    assert f"classes: ant ({30 - owls}), owl ({owls})" in out
    assert f"size on disk: {store.nbytes / 2**20:,.1f} MiB (5 files)" in out
    assert "dropped: 1 too_long" in out
    assert f"{packed_store.parent / 'zoo.npz'}: 10 sketches of 10 read" in out
    assert "zoo.ndjson: 20 sketches of 21 read, 21 splits assigned, 1 too_long dropped" in out
    lengths = np.diff(np.asarray(store.offsets))
    pct = np.percentile(lengths, [0, 50, 90, 99, 100], method="lower").astype(int)
    assert "points per sketch: min {} / median {} / p90 {} / p99 {} / max {}".format(*pct) in out


def test_info_on_files_still_reads_them(tmp_path, capsys):
    path = tmp_path / "cat.npz"
    write_quickdraw_npz(path)
    assert main(["data", "info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "sketches: 50" in out and "train: 40" in out and "classes: cat" in out


@pytest.mark.parametrize("n", ["-1", "0"])
def test_render_needs_a_positive_count(tmp_path, capsys, n):
    path = write_quickdraw_npz(tmp_path / "cat.npz")
    out = tmp_path / "grid.png"
    with pytest.raises(SystemExit) as stop:
        main(["data", "render", str(path), "--out", str(out), "--n", n])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    message = f"--n: must be a whole number in [1, 1,000,000], got {n}"
    assert err == f"sketchrnn data render: error: {message}\n"
    assert not out.exists()
    assert len(read_sketches(path)) == 50
