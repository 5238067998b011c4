"""Episodic few-shot evaluation: sampling, scoring, confidence intervals, baselines, tables."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import shared_file

from sketchrnn.baselines import random_conv4_embedding, raw_pixel_embedding
from sketchrnn.fewshot import (
    FewShotResult,
    evaluate_embedding,
    format_fewshot_table,
    run_fewshot_table,
    sample_episodes,
)


def _separable_classes(n_classes: int = 12, per_class: int = 20, seed: int = 0):
    """Class c's 'images' are 16-d points near the corner e_c: trivially separable."""
    rng = np.random.default_rng(seed)
    return {
        f"class{c}": np.eye(n_classes, 16, dtype=np.float32)[c]
        + 0.05 * rng.standard_normal((per_class, 16)).astype(np.float32)
        for c in range(n_classes)
    }


def _random_embedding(images: np.ndarray) -> np.ndarray:
    """An embedding that ignores the image: any classifier on it is at chance."""
    return np.random.default_rng(len(images)).standard_normal((len(images), 32))


def test_separable_embedding_scores_perfectly():
    classes = _separable_classes()
    episodes = sample_episodes(classes, n_way=5, k_shot=1, n_query=5, n_episodes=40, seed=1)
    result = evaluate_embedding(raw_pixel_embedding, episodes, classes)
    assert result.mean_accuracy == 1.0 and result.ci95 == 0.0 and result.n_episodes == 40


@pytest.mark.parametrize("n_way", [5, 10])
def test_random_embedding_scores_chance(n_way):
    classes = _separable_classes(n_classes=12)
    episodes = sample_episodes(classes, n_way, k_shot=1, n_query=5, n_episodes=300, seed=2)
    result = evaluate_embedding(_random_embedding, episodes, classes)
    assert abs(result.mean_accuracy - 1 / n_way) < 0.04
    assert abs(result.mean_accuracy - 1 / n_way) < 3 * result.ci95


def test_confidence_interval_shrinks_with_more_episodes():
    classes = _separable_classes()
    few = evaluate_embedding(
        _random_embedding, sample_episodes(classes, 5, 1, 5, n_episodes=25, seed=3), classes
    )
    many = evaluate_embedding(
        _random_embedding, sample_episodes(classes, 5, 1, 5, n_episodes=400, seed=3), classes
    )
    # sqrt(400 / 25) = 4: the interval should shrink about four-fold.
    assert many.ci95 < few.ci95 / 2.5


def test_confidence_interval_formula():
    result = FewShotResult.from_accuracies([1.0, 0.0, 1.0, 0.0])
    assert result.mean_accuracy == 0.5
    assert result.ci95 == pytest.approx(1.96 * 0.5 / 2)
    assert result.per_episode.tolist() == [1.0, 0.0, 1.0, 0.0]


def test_same_seed_replays_the_same_episodes():
    classes = _separable_classes()
    first = sample_episodes(classes, 5, 2, 3, n_episodes=20, seed=7)
    again = sample_episodes(classes, 5, 2, 3, n_episodes=20, seed=7)
    other = sample_episodes(classes, 5, 2, 3, n_episodes=20, seed=8)
    assert all(
        a.classes == b.classes
        and np.array_equal(a.support, b.support)
        and np.array_equal(a.query, b.query)
        for a, b in zip(first, again, strict=True)
    )
    assert any(a.classes != b.classes for a, b in zip(first, other, strict=True))


def test_episode_contents():
    classes = _separable_classes()
    for episode in sample_episodes(classes, 5, 3, 4, n_episodes=30, seed=0):
        assert len(set(episode.classes)) == 5
        assert episode.support.shape == (5, 3) and episode.query.shape == (5, 4)
        for support, query in zip(episode.support, episode.query, strict=True):
            # Support and query never share an example.
            assert len(set(support) | set(query)) == 7


def test_too_many_shots_or_ways_is_a_clear_error():
    classes = _separable_classes(n_classes=6, per_class=20)
    with pytest.raises(ValueError, match=r"at least 21 examples each, but only 0 of 6"):
        sample_episodes(classes, n_way=5, k_shot=6, n_query=15, n_episodes=1)
    with pytest.raises(ValueError, match=r"needs 20 classes"):
        sample_episodes(classes, n_way=20, k_shot=1, n_query=5, n_episodes=1)


def test_class_groups_keep_each_episode_within_one_group():
    classes = _separable_classes(n_classes=12)
    groups = {name: ("A" if i < 7 else "B") for i, name in enumerate(classes)}
    episodes = sample_episodes(classes, 5, 1, 5, n_episodes=50, seed=0, class_groups=groups)
    used_groups = [{groups[c] for c in episode.classes} for episode in episodes]
    assert all(len(g) == 1 for g in used_groups)
    assert {"A", "B"} == set().union(*used_groups)
    # Only group A has 6 classes: 6-way episodes all come from it.
    six_way = sample_episodes(classes, 6, 1, 5, n_episodes=20, seed=0, class_groups=groups)
    assert all(groups[c] == "A" for episode in six_way for c in episode.classes)
    with pytest.raises(ValueError, match="no group holds 8 classes"):
        sample_episodes(classes, 8, 1, 5, n_episodes=1, class_groups=groups)


def test_every_image_is_embedded_once():
    classes = _separable_classes(n_classes=8)
    calls = []

    def counting_embedding(images):
        calls.append(len(images))
        return raw_pixel_embedding(images)

    episodes = sample_episodes(classes, 5, 1, 5, n_episodes=50, seed=0)
    evaluate_embedding(counting_embedding, episodes, classes, batch_size=64)
    used = {c for episode in episodes for c in episode.classes}
    assert sum(calls) == 20 * len(used)
    assert max(calls) <= 64


def test_embedding_of_the_wrong_shape_is_reported():
    classes = _separable_classes()
    episodes = sample_episodes(classes, 5, 1, 5, n_episodes=2)
    with pytest.raises(ValueError, match=r"must return \(N, D\)"):
        evaluate_embedding(lambda images: np.zeros(len(images)), episodes, classes)


def test_random_conv4_embedding_is_seeded_and_leaves_global_rng_alone():
    images = np.random.default_rng(0).random((6, 28, 28), dtype=np.float32)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = random_conv4_embedding(seed=1)(images)
    assert torch.equal(torch.get_rng_state(), state)
    assert first.shape == (6, 64)
    np.testing.assert_array_equal(first, random_conv4_embedding(seed=1)(images))
    assert not np.array_equal(first, random_conv4_embedding(seed=2)(images))
    # An image's embedding does not depend on the batch it came in (BatchNorm in eval mode).
    np.testing.assert_allclose(random_conv4_embedding(seed=1)(images[:2]), first[:2], atol=1e-5)
    assert random_conv4_embedding(seed=1, output="mu")(images).shape == (6, 256)


def test_table_shares_episodes_across_embedders_and_formats():
    classes = _separable_classes(n_classes=12)
    rows = run_fewshot_table(
        {
            "pixels": raw_pixel_embedding,
            "pixels again": raw_pixel_embedding,
            "noise": _random_embedding,
        },
        classes,
        ways=(2, 5),
        shots=(1, 3),
        episodes=20,
        n_query=5,
    )
    assert len(rows) == 3 * 2 * 2
    by_key = {(r.embedder, r.n_way, r.k_shot): r.result for r in rows}
    assert by_key["pixels", 5, 3].mean_accuracy == 1.0
    # The same embedding on the same episodes gives the same per-episode accuracies.
    np.testing.assert_array_equal(
        by_key["pixels", 5, 1].per_episode, by_key["pixels again", 5, 1].per_episode
    )
    table = format_fewshot_table(rows)
    assert "| embedding | 2-way 1-shot | 2-way 3-shot | 5-way 1-shot | 5-way 3-shot |" in table
    assert "| pixels | 100.00 ± 0.00 |" in table
    assert "20 episodes" in table


@pytest.mark.slow
def test_real_omniglot_pixel_baseline_beats_chance():
    from sketchrnn.io.omniglot_images import load_omniglot_split

    root = shared_file("omniglot/vinyals_splits/test.txt").parents[1]
    split = load_omniglot_split(root, "test", image_size=28)
    episodes = sample_episodes(split.images, n_way=5, k_shot=1, n_episodes=30, seed=0)
    result = evaluate_embedding(raw_pixel_embedding, episodes, split.images)
    assert result.mean_accuracy > 0.35  # chance is 0.2; pixels reach about 0.5
