"""Image and stroke datasets for SketchEmbedNet: rendering, batching, sources, model samples."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import random_sketches, shared_file

from sketchrnn import strokes as S
from sketchrnn.data import datasets_from_sketchset, load_image_datasets
from sketchrnn.datasets import ImageBatch, ImageSketchDataset, render_images
from sketchrnn.io.files import SketchFileError
from sketchrnn.io.npz import read_npz, write_npz
from sketchrnn.io.raster import image_padding
from sketchrnn.io.sketchset import SketchSet
from sketchrnn.model_samples import read_sample_info, sample_magenta_models


def test_padding_is_ten_percent_rounded_to_whole_pixels():
    assert image_padding(28) == pytest.approx(3 / 28)
    assert image_padding(84) == pytest.approx(8 / 84)


def test_render_scales_and_centres_inside_the_margin():
    # A wide horizontal line: it must span the width minus the 3-pixel margins, centred.
    line = np.array([[0, 0, 0], [100, 0, 1]], dtype=np.float32)
    image = render_images([line], 28)[0]
    assert image.dtype == np.uint8 and image.shape == (28, 28)
    # the line runs from x = 3 to x = 25: every pixel centre between is inked...
    assert image[:, 3:25].max(axis=0).min() > 127
    # ...and nothing beyond the round caps (half the 1.5 pixel line width) is
    assert image[:, :2].max() == 0 and image[:, 26:].max() == 0
    rows = np.nonzero(image.max(axis=1) > 127)[0]
    assert rows.min() >= 13 and rows.max() <= 14  # centred vertically (y = 14)


def make_dataset(n: int = 12, image_size: int = 16, in_channels: int = 1) -> ImageSketchDataset:
    sketches = SketchSet(random_sketches(n), ["a"] * (n // 2) + ["b"] * (n - n // 2))
    splits = datasets_from_sketchset(sketches, max_len=20, split_fractions=(1.0, 0.0, 0.0))
    return ImageSketchDataset(splits.train, image_size, in_channels=in_channels)


def test_batch_pairs_images_with_strokes():
    data = make_dataset(12, image_size=16, in_channels=3)
    batch = data.batch([0, 5, 7])
    assert isinstance(batch, ImageBatch)
    assert batch.images.shape == (3, 3, 16, 16) and batch.images.dtype == torch.float32
    assert batch.strokes.shape == (3, data.max_len + 1, 5)
    assert torch.equal(batch.lengths, torch.as_tensor(data.lengths[[0, 5, 7]]))
    # the three channels repeat one grey image, ink in [0, 1]
    assert torch.equal(batch.images[:, 0], batch.images[:, 2])
    assert float(batch.images.min()) == 0.0 and 0.9 < float(batch.images.max()) <= 1.0
    # image k is the rendering of sketch k
    expected = render_images([data.sketches.sketches[5]], 16)[0] / 255.0
    assert np.allclose(batch.images[1, 0].numpy(), expected, atol=1e-6)


def test_augmentation_is_refused_with_a_reason():
    data = make_dataset()
    with pytest.raises(ValueError, match="cannot be augmented"):
        data.batch([0, 1], augment=True)


def test_load_drops_too_long_sketches_and_counts_them(tmp_path):
    short = random_sketches(20, seed=1, lengths=(4, 10))
    long = random_sketches(5, seed=2, lengths=(30, 40))
    path = tmp_path / "mixed.npz"
    write_npz(path, SketchSet(short + long, ["mixed"] * 25))
    data = load_image_datasets(path, image_size=16, max_len=20)
    assert data.dropped_too_long == {str(path): 5}
    assert len(data.train) + len(data.valid) + len(data.test) == 20
    assert data.max_len <= 20 and data.classes == ["mixed"]
    assert data.train.images.shape[1:] == (16, 16)
    # offsets are normalised by the training set's standard deviation
    train_offsets = np.concatenate([s[:, :2] for s in data.train.sketches.sketches])
    assert train_offsets.std() == pytest.approx(1.0, rel=1e-3)


def test_rdp_simplification_brings_long_sketches_under_the_cap(tmp_path):
    # 100 collinear points: RDP keeps the two ends.
    line = np.zeros((100, 3), dtype=np.float32)
    line[:, 0] = 1
    line[-1, 2] = 1
    path = tmp_path / "lines.npz"
    write_npz(path, SketchSet([line] * 10, ["lines"] * 10))
    with pytest.raises(SketchFileError, match="no sketches of at most 64 points"):
        load_image_datasets(path, 16, 64)
    data = load_image_datasets(path, 16, 64, rdp_epsilon=0.5)
    assert data.dropped_too_long == {str(path): 0}
    assert data.max_len == 2


def test_omniglot_background_strokes_give_labelled_images():
    path = shared_file("omniglot/strokes_background_small1.zip")
    data = load_image_datasets(path, 28, 64, rdp_epsilon=2.0, limit_per_file=60)
    assert all("/character" in c for c in data.classes)
    assert data.max_len <= 64
    batch = data.train.batch([0, 1])
    assert batch.images.shape == (2, 1, 28, 28)
    assert float(batch.images.sum()) > 0  # something is drawn


def test_magenta_samples_are_cached_with_their_settings(tmp_path):
    models = [
        shared_file("magenta_models/sheep.gen.json"),
        shared_file("magenta_models/key.gen.json"),
    ]
    out = tmp_path / "samples.npz"
    sample_magenta_models(models, 3, 0.3, out)
    info = read_sample_info(out)
    assert info == {"models": ["sheep", "key"], "temperature": 0.3, "count": 3, "simplified": False}
    sketches = read_npz(out)
    assert set(sketches.labels) <= {"sheep", "key"} and 1 <= len(sketches) <= 6
    # the same request reuses the file; another temperature redraws it
    stamp = out.stat().st_mtime_ns
    sample_magenta_models(models, 3, 0.3, out)
    assert out.stat().st_mtime_ns == stamp
    sample_magenta_models(models[:1], 2, 0.1, out)
    assert read_sample_info(out) == {
        "models": ["sheep"],
        "temperature": 0.1,
        "count": 2,
        "simplified": False,
    }
    # the cache is a plain sketch file: the image loader reads it
    data = load_image_datasets(out, 16, 250)
    assert data.classes == ["sheep"]


def test_magenta_samples_can_be_simplified_like_the_quickdraw_files(tmp_path):
    model = shared_file("magenta_models/sheep.gen.json")
    raw = read_npz(sample_magenta_models([model], 6, 0.5, tmp_path / "raw.npz"))
    out = sample_magenta_models([model], 6, 0.5, tmp_path / "simple.npz", simplify=True)
    assert read_sample_info(out)["simplified"] is True
    simple = read_npz(out)
    assert len(simple) == len(raw)
    for a, b in zip(raw.strokes, simple.strokes, strict=True):
        assert np.array_equal(b, np.round(b))  # whole pixels (stored as int16)
        xy = np.cumsum(b[:, :2], axis=0)
        assert xy.min() >= 0 and xy.max() == 255  # the simplified files' box
        assert len(b) < len(a)
        assert len(S.stroke3_to_polylines(b)) == len(S.stroke3_to_polylines(a))


def test_sample_info_of_a_plain_file_is_none_and_of_garbage_an_error(tmp_path):
    plain = tmp_path / "plain.npz"
    write_npz(plain, SketchSet(random_sketches(3), ["plain"] * 3))
    assert read_sample_info(plain) is None
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(SketchFileError, match="bad.npz"):
        read_sample_info(bad)
