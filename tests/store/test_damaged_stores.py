"""Damaged stores: every damage of issue #25 (and a few more) is refused, never trained on.

Each damage is applied to a copy of a freshly packed store; then the library (``open_store``
and ``verify``), ``sketchrnn data info``, ``sketchrnn data verify`` and a one-step ``sketchrnn
train sketch-rnn`` must all refuse it with one error line naming the store's file and what is
wrong, and the training must leave no run folder behind.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xxhash
from helpers import random_sketches
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sketchrnn.cli import main
from sketchrnn.data import load_datasets
from sketchrnn.io.files import SketchFileError
from sketchrnn.io.formats import write_sketches
from sketchrnn.io.sketchset import SketchSet
from sketchrnn.models import SketchRNN, SketchRNNConfig
from sketchrnn.store import open_store, pack, store_datasets
from sketchrnn.store.manifest import manifest_digest
from sketchrnn.train import Trainer, new_model
from sketchrnn.train_config import TrainConfig

SPLITS = ("train", "valid", "test")


def _sources(folder: Path, mirrored: bool = False) -> list[Path]:
    """cats.npz (whole offsets) and dogs.npz (offsets with fractions: the store is float32);
    ``mirrored`` flips every dx (the same lengths and sizes, other points)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, seed, fraction in (("cats", 1, 0.0), ("dogs", 2, 0.25)):
        sketches = random_sketches(30, seed=seed, lengths=(6, 20))
        for s in sketches:
            s[:, :2] += fraction
            if mirrored:
                s[:, 0] *= -1
        splits = [SPLITS[min(i % 10, 8) // 8 + (i % 10 == 9)] for i in range(30)]
        path = folder / f"{name}.npz"
        write_sketches(path, SketchSet(sketches, [name] * 30, splits))
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def packed(tmp_path_factory) -> dict[str, Path]:
    """The store to damage, another of the same shape (for swapping files), and an int16 one."""
    root = tmp_path_factory.mktemp("packed")
    stores = {
        "float": pack(_sources(root / "a"), root / "float.store", progress=False).out_dir,
        "other": pack(_sources(root / "b", True), root / "other.store", progress=False).out_dir,
        "int16": pack(_sources(root / "a")[:1], root / "int16.store", progress=False).out_dir,
    }
    assert open_store(stores["float"]).points.dtype == np.float32
    assert open_store(stores["int16"]).points.dtype == np.int16
    return stores


# ----------------------------------------------------------------------------- damages


def _edit_array(name: str, edit: Callable[[np.ndarray], None]) -> Callable[[Path], None]:
    """Change an array file in place (its header, size and shape stay)."""

    def damage(store: Path) -> None:
        array = np.load(store / f"{name}.npy", mmap_mode="r+")
        edit(array)
        array.flush()
        del array

    return damage


def _resave_array(name: str, change: Callable[[np.ndarray], np.ndarray]) -> Callable[[Path], None]:
    """Write a new array file (another shape or dtype)."""

    def damage(store: Path) -> None:
        np.save(store / f"{name}.npy", change(np.load(store / f"{name}.npy")))

    return damage


def _edit_manifest(edit: Callable[[dict], object], *, redigest: bool = False):
    """Change the manifest's JSON; ``redigest`` records a matching manifest_digest too (a
    careful forger's edit: only the checks of the content against the arrays can see it)."""

    def damage(store: Path) -> None:
        file = store / "manifest.json"
        manifest = json.loads(file.read_text())
        edit(manifest)
        if redigest:
            manifest["manifest_digest"] = manifest_digest(manifest)
        file.write_text(json.dumps(manifest))

    return damage


def _set(*keys_and_value):
    *keys, value = keys_and_value

    def edit(m: dict) -> None:
        for k in keys[:-1]:
            m = m[k]
        m[keys[-1]] = value

    return edit


def _flip_byte(store: Path) -> None:
    file = store / "points.npy"
    data = bytearray(file.read_bytes())
    data[128 + (len(data) - 128) // 2] ^= 0x10
    file.write_bytes(bytes(data))


def _point(column: int, value: float) -> Callable[[Path], None]:
    def edit(points: np.ndarray) -> None:
        points[40, column] = value

    return _edit_array("points", edit)


def _swap_points(store: Path) -> None:
    other = store.parent / "other.store" / "points.npy"
    shutil.copyfile(other, store / "points.npy")


def _move_offset(delta: int):
    def edit(offsets: np.ndarray) -> None:
        lengths = np.diff(offsets)
        k = int(np.argmax((lengths[:-1] > 6) & (lengths[1:] > 6))) + 1  # room either side
        offsets[k] += delta

    return _edit_array("offsets", edit)


def _move_to_valid(store: Path) -> None:
    k = int(np.flatnonzero(np.load(store / "splits.npy") == 0)[0])
    _edit_array("splits", lambda s: s.__setitem__(k, 1))(store)


def _swap_train_and_valid(store: Path) -> None:
    """A train sketch to valid and a valid one of the same length and source to train: every
    count the manifest holds still agrees."""
    splits, lengths = np.load(store / "splits.npy"), np.diff(np.load(store / "offsets.npy"))
    source = np.arange(len(splits)) // 30
    a, b = next(
        (a, b)
        for a in np.flatnonzero(splits == 0)
        for b in np.flatnonzero(splits == 1)
        if lengths[a] == lengths[b] and source[a] == source[b]
    )
    _edit_array("splits", lambda s: s.__setitem__([a, b], [1, 0]))(store)


def _scale_statistics(columns: tuple[int, ...], redigest: bool = False, scale_too=False):
    def edit(m: dict) -> None:
        for row in m["train_offset_stats"]["by_length"]:
            for c in columns:
                row[c] *= 10
        if scale_too:
            rows = m["train_offset_stats"]["by_length"]
            count, total, squares = (sum(r[i] for r in rows) for i in (1, 2, 3))
            m["scale_factor"] = float(np.sqrt(squares / count - (total / count) ** 2))

    return _edit_manifest(edit, redigest=redigest)


def _nest(depth: int) -> Callable[[Path], None]:
    def damage(store: Path) -> None:
        file = store / "manifest.json"
        text = file.read_text()
        file.write_text(text[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}")

    return damage


def _nest_whole(store: Path) -> None:
    (store / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)


def _symlink_loop(name: str) -> Callable[[Path], None]:
    def damage(store: Path) -> None:
        (store / name).unlink()
        os.symlink(name, store / name)  # points at itself

    return damage


def _folder_instead(name: str) -> Callable[[Path], None]:
    def damage(store: Path) -> None:
        (store / name).unlink()
        (store / name).mkdir()

    return damage


def _fifo_instead(name: str) -> Callable[[Path], None]:
    def damage(store: Path) -> None:
        (store / name).unlink()
        os.mkfifo(store / name)  # open() would wait for a writer forever

    return damage


def _drop_stats_key(key: str):
    return _edit_manifest(lambda m: m["train_offset_stats"].pop(key))


NESTED = r"manifest\.json: not a readable store manifest \(nested too deeply\)"

# (id, damage, what the error line must say). The list first, in its order.
DAMAGES = [
    # trained on silently before
    ("points byte flipped", _flip_byte, r"points\.npy: content differs from the digest"),
    ("pen 7", _point(2, 7), r"points\.npy: content differs"),
    ("points of another store", _swap_points, r"points\.npy: content differs"),
    ("offset +1", _move_offset(1), r"offsets\.npy: "),
    ("offset -5", _move_offset(-5), r"offsets\.npy: "),
    (
        "two sketches merged",
        _resave_array("offsets", lambda o: np.delete(o, 7)),
        r"offsets\.npy: holds int64 of shape",
    ),
    (
        "label changed to another class",
        _edit_array("labels", lambda a: a.__setitem__(0, 1 - a[0])),
        r"labels\.npy: content differs",
    ),
    ("train sketch moved to valid", _move_to_valid, r"splits\.npy: train \d+ / valid"),
    ("train and valid sketch swapped", _swap_train_and_valid, r"splits\.npy: content differs"),
    (
        "classes swapped",
        _edit_manifest(lambda m: m["classes"].reverse()),
        r"classes: must be in ascending order",
    ),
    (
        "classes swapped, digest redone",
        _edit_manifest(lambda m: m["classes"].reverse(), redigest=True),
        r"classes: must be in ascending order",
    ),
    ("classes a string", _edit_manifest(_set("classes", "cats")), r"classes: must be a list"),
    (
        "classes a dict",
        _edit_manifest(_set("classes", {"cats": 0, "dogs": 1})),
        r"classes: must be a list",
    ),
    (
        "classes numbers",
        _edit_manifest(_set("classes", [0, 1])),
        r"classes\[0\]: must be a non-empty string",
    ),
    (
        "classes twice",
        _edit_manifest(_set("classes", ["cats", "cats"])),
        r"classes: holds \"cats\" twice",
    ),
    (
        "class renamed",
        _edit_manifest(_set("classes", ["cats", "wolves"])),
        r"manifest\.json: changed since the store was packed",
    ),
    (
        "num_sketches a float",
        _edit_manifest(lambda m: m.__setitem__("num_sketches", float(m["num_sketches"]))),
        r"num_sketches: must be a whole number",
    ),
    (
        "sources count off",
        _edit_manifest(lambda m: m["sources"][0].update(count=m["sources"][0]["count"] + 1)),
        r"sources\[0\]\.splits: do not add up",
    ),
    (
        "sources counts off, consistently",
        _edit_manifest(
            lambda m: [
                m["sources"][0].update(count=29, read=29),
                m["sources"][0]["splits"].update(train=m["sources"][0]["splits"]["train"] - 1),
                m["sources"][1].update(first=29, count=31, read=31),
                m["sources"][1]["splits"].update(train=m["sources"][1]["splits"]["train"] + 1),
            ]
        ),
        r"offsets\.npy: the sketches of sources\[0\] \(.*cats\.npz\) hold",
    ),
    ("statistics x10", _scale_statistics((1, 2, 3)), r"train_offset_stats\.by_length: counts"),
    (
        "statistics sums x10",
        _scale_statistics((2, 3)),
        r"train_offset_stats\.by_length\[\d+\]|scale_factor:",
    ),
    ("statistics squares x10", _scale_statistics((3,)), r"scale_factor: "),
    (
        "statistics and scale factor x10",
        _scale_statistics((2, 3), scale_too=True),
        r"train_offset_stats\.by_length\[\d+\]|manifest\.json: changed since",
    ),
    (
        "scale factor x10",
        _edit_manifest(lambda m: m.__setitem__("scale_factor", m["scale_factor"] * 10)),
        r"scale_factor: .* but train_offset_stats give",
    ),
    ("NaN point", _point(0, np.nan), r"points\.npy: content differs"),
    ("inf point", _point(1, np.inf), r"points\.npy: content differs"),
    ("1e38 point", _point(0, 1e38), r"points\.npy: content differs"),
    ("pen NaN", _point(2, np.nan), r"points\.npy: content differs"),
    ("pen 0.5", _point(2, 0.5), r"points\.npy: content differs"),
    # tracebacks before
    (
        "num_points null",
        _edit_manifest(_set("num_points", None)),
        r"num_points: must be a whole number >= 1, got null",
    ),
    ("classes null", _edit_manifest(_set("classes", None)), r"classes: must be a list, got null"),
    ("sources not a list", _edit_manifest(_set("sources", {"a": 1})), r"sources: must be a list"),
    (
        "sources strings",
        _edit_manifest(_set("sources", ["a.npz"])),
        r"sources\[0\]: must be an object",
    ),
    (
        "statistics without by_length",
        _drop_stats_key("by_length"),
        r"train_offset_stats: has no 'by_length'",
    ),
    (
        "statistics garbage",
        _edit_manifest(_set("train_offset_stats", "by_length", [["lots", 1, 2, 3]])),
        r"train_offset_stats\.by_length\[0\]\[0\]: must be a whole number",
    ),
    (
        "statistics rows short",
        _edit_manifest(_set("train_offset_stats", "by_length", [[3, 6]])),
        r"train_offset_stats\.by_length\[0\]: must be a list of 4 values",
    ),
    ("manifest nested 1e5 deep", _nest(100_000), NESTED),
    ("manifest one deep list", _nest_whole, NESTED),
    ("manifest nested 50 deep", _nest(50), r"manifest\.json: deep: unknown field"),
    (
        "points.npy a symlink loop",
        _symlink_loop("points.npy"),
        r"points\.npy: cannot read file \(too many levels of symbolic links",
    ),
    (
        "manifest a symlink loop",
        _symlink_loop("manifest.json"),
        r"manifest\.json: cannot read file \(too many levels of symbolic",
    ),
    # errors that named nothing before
    (
        "num_sketches lots",
        _edit_manifest(_set("num_sketches", "lots")),
        r"num_sketches: must be a whole number >= 1, got \"lots\"",
    ),
    (
        "offset_limit a string",
        _edit_manifest(_set("train_offset_stats", "offset_limit", "x")),
        r"train_offset_stats\.offset_limit: must be a finite number > 0",
    ),
    (
        "statistics zeroed",
        _edit_manifest(
            lambda m: [
                row.__setitem__(slice(2, 4), [0, 0]) for row in m["train_offset_stats"]["by_length"]
            ]
        ),
        r"scale_factor: .* but train_offset_stats give no scale factor",
    ),
    # more
    ("points.npy a folder", _folder_instead("points.npy"), r"points\.npy: not a regular file"),
    ("labels.npy a FIFO", _fifo_instead("labels.npy"), r"labels\.npy: not a regular file"),
    ("manifest a FIFO", _fifo_instead("manifest.json"), r"manifest\.json: not a regular file"),
    (
        "manifest NaN",
        _edit_manifest(_set("scale_factor", float("nan"))),
        r"scale_factor: must be a finite number",
    ),
    (
        "manifest unknown field",
        _edit_manifest(_set("extra", 1)),
        r"manifest\.json: extra: unknown field",
    ),
    (
        "digest missing",
        _edit_manifest(lambda m: m["digests"].pop("points")),
        r"digests: has no 'points'",
    ),
    (
        "old format (no digests)",
        _edit_manifest(_set("format_version", 1)),
        r"format version 1 .*no digests.*pack it again",
    ),
    (
        "labels int32",
        _resave_array("labels", lambda a: a.astype(np.int32)),
        r"labels\.npy: holds int32",
    ),
    (
        "splits code 3",
        _edit_array("splits", lambda a: a.__setitem__(4, 3)),
        r"splits\.npy: split code 3 of sketch 4 is not 0, 1 or 2",
    ),
    (
        "label out of range",
        _edit_array("labels", lambda a: a.__setitem__(2, 9)),
        r"labels\.npy: label 9 of sketch 2 is outside the 2 classes",
    ),
]


def damaged_copy(packed: dict[str, Path], tmp_path: Path, damage) -> Path:
    store = tmp_path / "float.store"
    shutil.copytree(packed["float"], store)
    shutil.copytree(packed["other"], tmp_path / "other.store")
    damage(store)
    return store


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("sketchrnn: error: "), err
    return lines[0]


TRAIN_ARGS = [
    "--steps", "1", "--batch-size", "4", "--enc-hidden", "8", "--dec-hidden", "8",
    "--z-size", "2", "--num-mixtures", "1", "--no-progress", "--device", "cpu",
]  # fmt: skip


@pytest.mark.parametrize(("damage", "said"), [d[1:] for d in DAMAGES], ids=[d[0] for d in DAMAGES])
def test_a_damaged_store_is_refused_everywhere(packed, tmp_path, capsys, damage, said):
    store = damaged_copy(packed, tmp_path, damage)
    with pytest.raises(SketchFileError, match=said) as refused:
        open_store(store).verify()
    assert str(refused.value).startswith(str(store))  # names the store's file
    assert "\n" not in str(refused.value)
    for argv in (["data", "info", str(store)], ["data", "verify", str(store)]):
        assert main(argv) == 2
        line = _one_error_line(capsys)
        assert str(store) in line
        assert line.removeprefix("sketchrnn: error: ") == str(refused.value)
    run = tmp_path / "run"
    assert main(["train", "sketch-rnn", "--data", str(store), "--out", str(run), *TRAIN_ARGS]) == 2
    assert str(refused.value) in _one_error_line(capsys)
    assert not run.exists()


def test_the_undamaged_stores_pass_the_same_commands(packed, tmp_path, capsys):
    store = damaged_copy(packed, tmp_path, lambda store: None)
    assert main(["data", "verify", str(store)]) == 0
    assert "every file matches its digest" in capsys.readouterr().out
    assert main(["data", "info", str(store)]) == 0
    assert "content: every file matches its digest (xxh3_128" in capsys.readouterr().out
    run = tmp_path / "run"
    assert main(["train", "sketch-rnn", "--data", str(store), "--out", str(run), *TRAIN_ARGS]) == 0
    assert (run / "checkpoint.pt").is_file()


def test_several_stores_are_all_verified_and_the_damaged_ones_named(packed, tmp_path, capsys):
    store = damaged_copy(packed, tmp_path, _flip_byte)
    good = packed["int16"]
    assert main(["data", "verify", str(good), str(store), str(packed["float"])]) == 2
    captured = capsys.readouterr()
    assert captured.out.count(": ok: ") == 2
    errors = captured.err.strip().splitlines()
    assert errors[0] == f"sketchrnn: error: {store / 'points.npy'}: " + (
        "content differs from the digest recorded when the store was packed (damaged, or "
        "replaced by another file): pack the store again"
    )
    assert errors[1] == "sketchrnn: error: 1 of 3 stores are damaged (the reasons are above)"


def test_info_no_verify_skips_only_the_points(packed, tmp_path, capsys):
    store = damaged_copy(packed, tmp_path, _point(2, 7))
    assert main(["data", "info", "--no-verify", str(store)]) == 0
    assert "content: index files match their digests" in capsys.readouterr().out
    bad_labels = damaged_copy(
        packed, tmp_path / "b", _edit_array("labels", lambda a: a.__setitem__(0, 1 - a[0]))
    )
    assert main(["data", "info", "--no-verify", str(bad_labels)]) == 2
    assert "labels.npy: content differs" in _one_error_line(capsys)


# ----------------------------------------------------------------------------- digests


def test_the_digests_are_xxh3_128_of_each_whole_file(packed):
    store = open_store(packed["float"])
    digests = store.manifest["digests"]
    assert digests["algorithm"] == "xxh3_128"
    for name in ("points", "offsets", "labels", "splits"):
        data = (packed["float"] / f"{name}.npy").read_bytes()
        assert digests[name] == xxhash.xxh3_128(data).hexdigest()  # what `xxh128sum` prints
    assert store.manifest["manifest_digest"] == manifest_digest(store.manifest)


# ----------------------------------------------------------------------------- batches


BAD_POINTS = [
    (2, 7, r"pen value 7 \(a pen is 0 or 1\)"),
    (2, 0.5, r"pen value 0\.5"),
    (2, np.nan, r"pen value nan"),
    (0, np.nan, r"coordinates \(nan, .*\) are not finite"),
    (1, -np.inf, r"coordinates \(.*, -inf\) are not finite"),
]


@pytest.mark.parametrize(
    ("kind", "column", "value", "said"),
    [("float", *bad) for bad in BAD_POINTS]
    + [("int16", *bad) for bad in BAD_POINTS if float(bad[1]).is_integer()],
)
def test_batches_refuse_points_no_sketch_can_hold(packed, tmp_path, kind, column, value, said):
    """Even unverified (a library caller that never calls verify()), a damaged point never
    reaches a batch: the error names the sketch, its source and the point."""
    store = tmp_path / "s.store"
    shutil.copytree(packed[kind], store)
    offsets = np.load(store / "offsets.npy")
    row = int(offsets[13]) + 2  # sketch 13, point 2

    def edit(points):
        points[row, column] = value

    _edit_array("points", edit)(store)
    data = store_datasets(store, max_len=250)
    source = open_store(store).sources
    assert source[0]["first"] == 0 and source[0]["count"] == 30
    expected = rf"s\.store/points\.npy: sketch 13 \(#13 of .*cats\.npz\), point 2: {said}"
    split = ("train", "valid", "test")[int(np.load(store / "splits.npy")[13])]
    dataset = getattr(data, split)
    position = int(np.flatnonzero(dataset.index == 13)[0])
    with pytest.raises(SketchFileError, match=expected):
        dataset.batch(np.arange(len(dataset)))
    with pytest.raises(SketchFileError, match=expected):
        dataset.sketches[position]
    dataset.batch(np.delete(np.arange(len(dataset)), position))  # the others are fine
    with pytest.raises(SketchFileError, match=r"points\.npy: content differs"):
        dataset.verify()


def test_the_trainer_verifies_the_store_before_its_first_step(packed, tmp_path):
    store = tmp_path / "s.store"
    shutil.copytree(packed["float"], store)
    data = load_datasets(store, max_len=250)
    config = SketchRNNConfig(enc_hidden=8, dec_hidden=8, z_size=2, num_mixtures=1)
    train_config = TrainConfig(max_steps=1, batch_size=4, progress=False, out_dir=None)
    Trainer(new_model(SketchRNN, config, 0), train_config, data.train, data.valid).fit()
    _flip_byte(store)  # after the open: the index checks passed
    data = load_datasets(store, max_len=250)
    with pytest.raises(SketchFileError, match=r"points\.npy: content differs"):
        Trainer(new_model(SketchRNN, config, 0), train_config, data.train, data.valid)


@pytest.mark.parametrize("name", ["manifest.json", "points.npy", "offsets.npy"])
def test_an_unreadable_file_is_a_one_line_file_error(packed, tmp_path, capsys, monkeypatch, name):
    """As a file without read permission reads to a user (root reads any file, so the tests
    make open() refuse)."""
    import builtins

    import sketchrnn.store.digest
    import sketchrnn.store.format
    import sketchrnn.store.manifest

    store = damaged_copy(packed, tmp_path, lambda store: None)
    real_open = builtins.open

    def refusing_open(file, *args, **kwargs):
        if os.fspath(file).endswith(name):
            raise PermissionError(13, "Permission denied", os.fspath(file))
        return real_open(file, *args, **kwargs)

    for module in (sketchrnn.store.digest, sketchrnn.store.format, sketchrnn.store.manifest):
        monkeypatch.setattr(module, "open", refusing_open, raising=False)
    expected = f"{store / name}: cannot read file (permission denied)"
    with pytest.raises(SketchFileError) as refused:
        open_store(store).verify()
    assert str(refused.value) == expected
    assert main(["data", "verify", str(store)]) == 2
    assert _one_error_line(capsys) == f"sketchrnn: error: {expected}"


# ----------------------------------------------------------------------------- any edit

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_edit_of_the_manifest_is_refused_with_one_line(packed, tmp_path, data):
    """Any change anywhere in the manifest (a field set to any JSON value, or removed) is
    refused with one SketchFileError line naming the manifest; nothing else escapes."""
    store = tmp_path / "s.store"
    if not store.exists():
        shutil.copytree(packed["float"], store)
    original = json.loads((packed["float"] / "manifest.json").read_text())
    manifest = json.loads(json.dumps(original))
    # Walk down to a random field, then replace or remove it.
    parent: Any = manifest
    key: Any = data.draw(st.sampled_from(sorted(manifest)))
    while isinstance(parent[key], dict | list) and parent[key] and data.draw(st.booleans()):
        parent = parent[key]
        key = data.draw(
            st.sampled_from(sorted(parent) if isinstance(parent, dict) else range(len(parent)))
        )
    if isinstance(parent, dict) and data.draw(st.booleans()):
        del parent[key]
    else:
        parent[key] = data.draw(JSON_VALUES)
    (store / "manifest.json").write_text(json.dumps(manifest))
    changed = json.dumps(manifest, sort_keys=True) != json.dumps(original, sort_keys=True)
    try:
        open_store(store).verify()
    except SketchFileError as e:
        assert changed, e
        assert str(e).startswith(str(store / "manifest.json")) and "\n" not in str(e)
    else:
        assert not changed


def test_a_store_without_its_manifest_is_still_named_a_store(packed, tmp_path, capsys):
    store = damaged_copy(packed, tmp_path, lambda store: (store / "manifest.json").unlink())
    expected = f"{store / 'manifest.json'}: missing: not a packed store, or an unfinished one"
    train = ["train", "--data", str(store), "--out", str(tmp_path / "run"), *TRAIN_ARGS]
    for argv in (["data", "info", str(store)], train):
        assert main(argv) == 2
        assert _one_error_line(capsys).startswith(f"sketchrnn: error: {expected}")


def test_sketchembednet_says_it_reads_no_store(packed, tmp_path, capsys):
    argv = ["train", "sketchembednet", "--data", str(packed["float"]), "--steps", "1"]
    assert main([*argv, "--out", str(tmp_path / "run")]) == 2
    assert not (tmp_path / "run").exists()
    assert _one_error_line(capsys) == (
        f"sketchrnn: error: {packed['float']}: a packed store: SketchEmbedNet reads sketch "
        "files (.npz, .ndjson, ...), not stores; give it the files the store was packed from"
    )


def test_evaluate_refuses_a_damaged_store(packed, tmp_path, capsys):
    store = damaged_copy(packed, tmp_path, lambda store: None)
    run = tmp_path / "run"
    assert main(["train", "sketch-rnn", "--data", str(store), "--out", str(run), *TRAIN_ARGS]) == 0
    assert main(["evaluate", str(run), "--data", str(store), "--split", "all"]) == 0
    capsys.readouterr()
    _point(0, 3.5)(store)  # a plausible value, in the middle of a sketch: only the digest sees it
    assert main(["evaluate", str(run), "--data", str(store), "--split", "all"]) == 2
    assert f"{store / 'points.npy'}: content differs" in _one_error_line(capsys)
