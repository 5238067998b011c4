"""Episodic N-way K-shot evaluation of an embedding (the protocol of SketchEmbedNet, sec. 5).

Each episode draws ``n_way`` classes, ``k_shot`` support and ``n_query`` query examples per
class. The embeddings are L2-normalised, a logistic regression is fitted on the support set and
scored on the query set. The result is the mean accuracy over episodes with a 95% confidence
interval ``1.96 * std / sqrt(n_episodes)``.

Typical use (the embedders to compare: a model's, :func:`sketchrnn.embeddings.model_embedding`,
and the baselines of :mod:`sketchrnn.baselines`)::

    split = load_omniglot_split("../shared/data/omniglot", "test")
    rows = run_fewshot_table({"pixels": raw_pixel_embedding}, split.images, episodes=2000)
    print(format_fewshot_table(rows))

Episodes depend only on the classes (their number of examples, in dictionary order) and the
seed, so every model is scored on exactly the same episodes.
"""

from __future__ import annotations

import csv
import hashlib
import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from sketchrnn.embeddings import EmbedFn, l2_normalise
from sketchrnn.io.files import atomic_path
from sketchrnn.progress import progress_bar

__all__ = [
    "MAX_EPISODES",
    "MAX_SHOTS",
    "MAX_WAYS",
    "episodes_fingerprint",
    "write_fewshot_table",
    "Episode",
    "FewShotResult",
    "FewShotRow",
    "sample_episodes",
    "embed_classes",
    "evaluate_embedded",
    "evaluate_embedding",
    "run_fewshot_table",
    "run_episode_sets",
    "one_shot_run_episodes",
    "format_fewshot_table",
]


@dataclass(frozen=True, eq=False)  # eq would compare numpy arrays element-wise: ambiguous
class Episode:
    """One N-way K-shot task.

    ``classes[i]`` is the class that plays label ``i``; ``support[i]`` (``(n_way, k_shot)``) and
    ``query[i]`` (``(n_way, n_query)``) are indices of examples within that class.
    """

    classes: tuple[Hashable, ...]
    support: np.ndarray
    query: np.ndarray

    @property
    def n_way(self) -> int:
        return len(self.classes)

    @property
    def k_shot(self) -> int:
        return self.support.shape[1]

    @property
    def n_query(self) -> int:
        return self.query.shape[1]


@dataclass(frozen=True)
class FewShotResult:
    """Accuracy over episodes: mean, 95% CI half-width, count and each episode's accuracy."""

    mean_accuracy: float
    ci95: float
    n_episodes: int
    per_episode: np.ndarray

    @classmethod
    def from_accuracies(cls, accuracies: Sequence[float]) -> FewShotResult:
        acc = np.asarray(accuracies, dtype=np.float64)
        if acc.size == 0:
            raise ValueError("no episodes to summarise")
        ci95 = 1.96 * float(acc.std()) / math.sqrt(acc.size)
        return cls(float(acc.mean()), ci95, int(acc.size), acc)


@dataclass(frozen=True)
class FewShotRow:
    """One cell of a few-shot table: an embedder's result in one N-way K-shot setting."""

    embedder: str
    n_way: int
    k_shot: int
    result: FewShotResult


# The largest episode settings: 10,000 episodes give a 95% interval of +-0.3 points already;
# each holds ways x (shots + queries) indices, so these keep the lists within tens of MB.
MAX_EPISODES = 10_000
MAX_WAYS = 10_000
MAX_SHOTS = 1_000  # and queries per class


def sample_episodes(
    class_to_images: Mapping[Hashable, np.ndarray],
    n_way: int,
    k_shot: int,
    n_query: int = 15,
    n_episodes: int = 2000,
    seed: int = 0,
    class_groups: Mapping[Hashable, Hashable] | None = None,
) -> list[Episode]:
    """Draw ``n_episodes`` seeded N-way K-shot episodes from ``class_to_images``.

    ``class_to_images[c]`` holds the examples of class ``c`` along its first axis. Only the
    number of examples per class, the classes' order and the seed decide the episodes, so the
    same seed replays the same episodes for every model.

    With ``class_groups`` (class -> group, e.g. Omniglot character -> alphabet) every episode
    first picks one group, uniformly among those holding at least ``n_way`` usable classes,
    then all its classes from that group (the within-alphabet Lake split).

    Raises ValueError when no episode of that shape fits: fewer than ``n_way`` classes (in any
    group), or no ``n_way`` classes with ``k_shot + n_query`` examples each.
    """
    if not (
        2 <= n_way <= MAX_WAYS
        and 1 <= k_shot <= MAX_SHOTS
        and 1 <= n_query <= MAX_SHOTS
        and 1 <= n_episodes <= MAX_EPISODES
    ):
        raise ValueError(
            f"need n_way in [2, {MAX_WAYS:,}], k_shot and n_query in [1, {MAX_SHOTS:,}] and "
            f"n_episodes in [1, {MAX_EPISODES:,}]; got n_way={n_way}, k_shot={k_shot}, "
            f"n_query={n_query}, n_episodes={n_episodes}"
        )
    per_class = k_shot + n_query
    classes = list(class_to_images)
    counts = {c: len(class_to_images[c]) for c in classes}
    eligible = [c for c in classes if counts[c] >= per_class]
    if len(eligible) < n_way:
        raise ValueError(
            f"a {n_way}-way {k_shot}-shot episode with {n_query} queries needs {n_way} classes "
            f"with at least {per_class} examples each, but only {len(eligible)} of "
            f"{len(classes)} classes have that many (largest: {max(counts.values(), default=0)})"
        )
    if class_groups is None:
        pools = [eligible]
    else:
        missing = [c for c in eligible if c not in class_groups]
        if missing:
            raise ValueError(
                f"class_groups gives no group for {len(missing)} classes, e.g. {missing[0]!r}"
            )
        grouped: dict[Hashable, list[Hashable]] = {}
        for c in eligible:
            grouped.setdefault(class_groups[c], []).append(c)
        pools = [members for members in grouped.values() if len(members) >= n_way]
        if not pools:
            raise ValueError(
                f"no group holds {n_way} classes with {per_class} examples each "
                f"(largest group: {max(len(m) for m in grouped.values())})"
            )

    rng = np.random.default_rng(seed)
    episodes = []
    for _ in range(n_episodes):
        pool = pools[rng.integers(len(pools))]
        chosen = [pool[i] for i in rng.choice(len(pool), size=n_way, replace=False)]
        picks = np.stack([rng.choice(counts[c], size=per_class, replace=False) for c in chosen])
        episodes.append(Episode(tuple(chosen), picks[:, :k_shot], picks[:, k_shot:]))
    return episodes


def embed_classes(
    embed_fn: EmbedFn,
    class_to_images: Mapping[Hashable, np.ndarray],
    classes: Iterable[Hashable] | None = None,
    batch_size: int = 512,
    progress: bool = False,
) -> dict[Hashable, np.ndarray]:
    """Embed every image of ``classes`` (all by default) once, in batches across classes.

    Returns ``class -> (n_examples, D)`` float64 embeddings, each row L2-normalised.
    """
    classes = list(class_to_images if classes is None else dict.fromkeys(classes))
    sizes = [len(class_to_images[c]) for c in classes]
    if not classes:
        return {}
    images = np.concatenate([np.asarray(class_to_images[c]) for c in classes])
    chunks = []
    starts = range(0, len(images), batch_size)
    for start in progress_bar(starts, desc="embedding", unit="batch", disable=not progress):
        batch = images[start : start + batch_size]
        out = np.asarray(embed_fn(batch), dtype=np.float64)
        if out.ndim != 2 or out.shape[0] != len(batch):
            raise ValueError(
                f"embed_fn must return (N, D) for N={len(batch)} images, got shape {out.shape}"
            )
        chunks.append(out)
    embeddings = l2_normalise(np.concatenate(chunks))
    offsets = np.cumsum([0, *sizes])
    return {c: embeddings[offsets[i] : offsets[i + 1]] for i, c in enumerate(classes)}


def evaluate_embedded(
    class_to_embeddings: Mapping[Hashable, np.ndarray],
    episodes: Sequence[Episode],
    regularization: float = 1.0,
    progress: bool = False,
) -> FewShotResult:
    """Score precomputed (L2-normalised) embeddings on ``episodes``.

    Per episode a multinomial ``LogisticRegression(C=regularization)`` is fitted on the
    ``n_way * k_shot`` support embeddings and its accuracy measured on the queries.
    """
    accuracies = []
    for episode in progress_bar(episodes, desc="episodes", unit="ep", disable=not progress):
        support = np.concatenate(
            [
                class_to_embeddings[c][idx]
                for c, idx in zip(episode.classes, episode.support, strict=True)
            ]
        )
        query = np.concatenate(
            [
                class_to_embeddings[c][idx]
                for c, idx in zip(episode.classes, episode.query, strict=True)
            ]
        )
        support_labels = np.repeat(np.arange(episode.n_way), episode.k_shot)
        query_labels = np.repeat(np.arange(episode.n_way), episode.n_query)
        classifier = LogisticRegression(C=regularization, max_iter=1000)
        classifier.fit(support, support_labels)
        accuracies.append(float(np.mean(classifier.predict(query) == query_labels)))
    return FewShotResult.from_accuracies(accuracies)


def evaluate_embedding(
    embed_fn: EmbedFn,
    episodes: Sequence[Episode],
    class_to_images: Mapping[Hashable, np.ndarray],
    regularization: float = 1.0,
    batch_size: int = 512,
    progress: bool = False,
) -> FewShotResult:
    """Embed the images the episodes use, each once, and score them (:func:`evaluate_embedded`)."""
    used = dict.fromkeys(c for episode in episodes for c in episode.classes)
    embedded = embed_classes(embed_fn, class_to_images, used, batch_size, progress)
    return evaluate_embedded(embedded, episodes, regularization, progress)


def run_fewshot_table(
    embedders: Mapping[str, EmbedFn],
    split: Mapping[Hashable, np.ndarray],
    ways: Sequence[int] = (5, 20),
    shots: Sequence[int] = (1, 5),
    episodes: int = 2000,
    seed: int = 0,
    n_query: int = 15,
    class_groups: Mapping[Hashable, Hashable] | None = None,
    regularization: float = 1.0,
    progress: bool = False,
) -> list[FewShotRow]:
    """Score each embedder in every (ways x shots) setting on the same seeded episodes.

    ``split`` maps class -> images (e.g. ``load_omniglot_split(...).images``). Each embedder
    embeds the split once; each setting's episodes are drawn once and shared by all embedders.
    """
    settings = [(n_way, k_shot) for n_way in ways for k_shot in shots]
    episode_sets = {
        (n_way, k_shot): sample_episodes(
            split, n_way, k_shot, n_query, episodes, seed, class_groups=class_groups
        )
        for n_way, k_shot in settings
    }
    return run_episode_sets(embedders, split, episode_sets, regularization, progress)


def run_episode_sets(
    embedders: Mapping[str, EmbedFn],
    split: Mapping[Hashable, np.ndarray],
    episode_sets: Mapping[tuple[int, int], Sequence[Episode]],
    regularization: float = 1.0,
    progress: bool = False,
) -> list[FewShotRow]:
    """Score each embedder on given episodes, ``(n_way, k_shot) -> episodes``, embedding the
    images of ``split`` (class -> images) once per embedder."""
    rows = []
    for name, embed_fn in embedders.items():
        embedded = embed_classes(embed_fn, split, progress=progress)
        for (n_way, k_shot), episodes in episode_sets.items():
            result = evaluate_embedded(embedded, episodes, regularization, progress)
            rows.append(FewShotRow(name, n_way, k_shot, result))
    return rows


def one_shot_run_episodes(runs: Sequence[Sequence[Hashable]]) -> list[Episode]:
    """Lake et al.'s original runs as episodes: for each run's classes (each holding its
    training image, then its test image; :func:`sketchrnn.io.omniglot_images.load_one_shot_runs`)
    a 20-way 1-shot episode with the training images as support and the test images as queries."""
    return [
        Episode(
            tuple(classes),
            np.zeros((len(classes), 1), dtype=np.int64),
            np.ones((len(classes), 1), dtype=np.int64),
        )
        for classes in runs
    ]


def format_fewshot_table(rows: Sequence[FewShotRow]) -> str:
    """A Markdown table: one line per embedder, one column per setting, ``mean ± ci95`` in %."""
    settings = list(dict.fromkeys((r.n_way, r.k_shot) for r in rows))
    names = list(dict.fromkeys(r.embedder for r in rows))
    cells = {(r.embedder, r.n_way, r.k_shot): r.result for r in rows}
    header = ["embedding"] + [f"{n}-way {k}-shot" for n, k in settings]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in names:
        line = [name]
        for n_way, k_shot in settings:
            result = cells.get((name, n_way, k_shot))
            line.append(
                "-"
                if result is None
                else f"{100 * result.mean_accuracy:.2f} ± {100 * result.ci95:.2f}"
            )
        lines.append("| " + " | ".join(line) + " |")
    episode_counts = sorted({r.result.n_episodes for r in rows})
    lines.append(f"\n(accuracy %, 95% CI over {', '.join(map(str, episode_counts))} episodes)")
    return "\n".join(lines)


def episodes_fingerprint(episodes: Sequence[Episode]) -> str:
    """A short hash of the episodes' classes, support and query ids: equal fingerprints mean
    the same episodes (a rerun with the same seed and split replays them exactly)."""
    digest = hashlib.sha256()
    for episode in episodes:
        digest.update(repr(episode.classes).encode())
        digest.update(np.ascontiguousarray(episode.support, dtype=np.int64).tobytes())
        digest.update(np.ascontiguousarray(episode.query, dtype=np.int64).tobytes())
    return digest.hexdigest()[:12]


def write_fewshot_table(path: str, rows: Sequence[FewShotRow]) -> None:
    """Write ``rows`` to ``.csv`` (embedder, n_way, k_shot, accuracy, ci95, episodes) or, for
    any other suffix, the Markdown of :func:`format_fewshot_table`; atomically."""
    path_obj = Path(path)
    with atomic_path(path_obj) as tmp:
        if path_obj.suffix.lower() == ".csv":
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                writer = csv.writer(f)
                writer.writerow(["embedder", "n_way", "k_shot", "accuracy", "ci95", "episodes"])
                for r in rows:
                    writer.writerow(
                        [
                            r.embedder,
                            r.n_way,
                            r.k_shot,
                            f"{r.result.mean_accuracy:.6f}",
                            f"{r.result.ci95:.6f}",
                            r.result.n_episodes,
                        ]
                    )
        else:
            Path(tmp).write_text(format_fewshot_table(rows) + "\n", encoding="utf-8")
