"""Loss of a trained sketch-rnn over a whole split (the paper's Table 1 figures).

Choice made here, and kept everywhere (validation during training, ``sketchrnn evaluate``,
benchmarks): the VAE's ``z`` is *sampled* from ``N(mu, sigma)`` exactly as in training,
because the paper's L_R and L_KL in Table 1 are the training objective's terms measured on
the test set. To make the figure reproducible the noise comes from a fixed seed, in a forked
RNG so that evaluating never changes the random stream of the training it interrupts.
Recurrent dropout is off (``model.eval()``) and there is no augmentation.

``loss`` is the un-annealed eq. 11: ``L_R + w_KL * L_KL``.

Evaluating on files (:func:`evaluate_files`, :func:`evaluate_files_by_class`) normalises the
data with the *model's* scale factor, so the data must be in the units the model was trained
in. The magenta.js models were trained on sketch-rnn's Quick, Draw! npz files, which keep each
drawing's own pixel units; the simplified ndjson files are rescaled into a 0-255 box, which
makes most drawings smaller than those models expect. Raw ndjson files are therefore read "as
sketch-rnn's npz were made" for magenta.js models (``raw_ndjson="auto"``; see
:func:`sketchrnn.io.quickdraw.simplify_raw_drawing_sketchrnn`, which also gives the figures
measured), and every result reports ``offset_std_ratio``, the data's offset std over the
model's scale factor (1 for the model's own training data; 0.34-0.98, median 0.58, for the
shared raw drawings read so under the 20 released models that have them; 0.35-0.49 for the
0-255 box).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "evaluate",
    "iterate_eval_batches",
    "evaluate_files",
    "evaluate_files_by_class",
    "EvaluationReport",
    "RAW_NDJSON_CHOICES",
    "EVAL_SPLITS",
]

RAW_NDJSON_CHOICES = ("auto", "quickdraw", "sketch-rnn")
EVAL_SPLITS = ("train", "valid", "test", "all")


def iterate_eval_batches(dataset: Any, batch_size: int) -> Iterator[Any]:
    """The whole split in order, in batches (the last one may be smaller), not augmented."""
    n = len(dataset)
    for start in range(0, n, batch_size):
        yield dataset.batch(np.arange(start, min(start + batch_size, n)), augment=False)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    dataset: Any,
    batch_size: int = 100,
    *,
    kl_weight: float = 1.0,
    seed: int = 0,
) -> dict[str, float]:
    """Mean ``L_R, L_s, L_p, L_KL`` and ``loss = L_R + kl_weight * L_KL`` over ``dataset``.

    Each batch's losses are means over its sketches, so batches are weighted by their size:
    the result does not depend on ``batch_size``. ``dataset`` is a
    :class:`sketchrnn.data.SketchDataset`, or for an image model (``uses_images``,
    SketchEmbedNet) an image dataset, whose every loss term is averaged and whose ``loss`` is
    the model's final objective (``alpha = alpha_max``), so that losses of different training
    steps compare. Eval mode; ``z`` is sampled as in training, from ``seed`` in a forked RNG;
    the model's own device is used.
    """
    if len(dataset) == 0:
        raise ValueError("cannot evaluate on an empty split")
    device = next(model.parameters()).device
    uses_images = bool(getattr(model, "uses_images", False))
    use_labels = int(getattr(model.config, "num_classes", 0) or 0) > 0
    was_training = model.training
    model.eval()
    totals: dict[str, float] = {}
    devices = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            for batch in iterate_eval_batches(dataset, batch_size):
                strokes, lengths = batch.strokes.to(device), batch.lengths.to(device)
                if uses_images:
                    losses = model.losses(batch.images.to(device), strokes, lengths)
                else:
                    labels = batch.labels.to(device) if use_labels else None
                    losses = model.losses(strokes, lengths, labels)
                for k, v in losses.items():
                    totals[k] = totals.get(k, 0.0) + float(v) * len(batch.lengths)
    finally:
        model.train(was_training)
    result = {k: v / len(dataset) for k, v in totals.items()}
    if "loss" not in result:
        result["loss"] = result["L_R"] + kl_weight * result["L_KL"]
    return result


@dataclass
class EvaluationReport:
    """What :func:`evaluate_files_by_class` measured.

    ``total`` and every ``per_class[name]`` hold ``L_R, L_s, L_p, L_KL, loss``, ``sketches``
    (how many were evaluated) and ``offset_std_ratio`` (std of the data's offsets over the
    model's scale factor: about 1 when data and model share units). ``split`` is the split
    evaluated (``"all"``: every drawing), ``raw_ndjson`` how raw ndjson drawings were
    simplified, ``dropped_too_long`` how many drawings were longer than the model's
    ``N_max`` and left out.
    """

    split: str
    raw_ndjson: str
    total: dict[str, float]
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)
    dropped_too_long: int = 0


def is_magenta_json_model(model_path: str | os.PathLike) -> bool:
    """Whether ``model_path`` names a magenta.js ``.json`` model (as :func:`load_model` sees it)."""
    path = Path(model_path)
    return path.is_file() and path.suffix.lower() == ".json"


def resolve_raw_ndjson(raw_ndjson: str, model_path: str | os.PathLike) -> str:
    """``"auto"`` -> ``"sketch-rnn"`` for magenta.js models (trained on sketch-rnn's pixel-unit
    npz files), else ``"quickdraw"`` (what ``sketchrnn train`` reads raw ndjson as)."""
    if raw_ndjson not in RAW_NDJSON_CHOICES:
        raise ValueError(
            f"raw_ndjson must be one of {', '.join(RAW_NDJSON_CHOICES)}, got {raw_ndjson!r}"
        )
    if raw_ndjson == "auto":
        return "sketch-rnn" if is_magenta_json_model(model_path) else "quickdraw"
    return raw_ndjson


def _measure(model: nn.Module, dataset: Any, batch_size: int, kl_weight: float, seed: int):
    from sketchrnn import strokes

    result = evaluate(model, dataset, batch_size, kl_weight=kl_weight, seed=seed)
    result["sketches"] = float(len(dataset))
    # The sketches are already divided by the model's scale factor.
    result["offset_std_ratio"] = strokes.scale_factor(dataset.sketches)
    return result


def evaluate_files_by_class(
    model_path: str | os.PathLike,
    data_paths: Sequence[str | os.PathLike],
    split: str | None = None,
    batch_size: int = 100,
    *,
    raw_ndjson: str = "auto",
    kl_weight: float = 1.0,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> EvaluationReport:
    """``sketchrnn evaluate``: the losses of a saved model on data files, in all and per class.

    The data is normalised with the *model's* scale factor (not one recomputed from these
    files) and padded to the model's ``N_max``; drawings longer than ``N_max`` are left out
    and counted. Splits are assigned as ``sketchrnn train`` assigns them (per file and class,
    seeded), so ``split="test"`` is the test split a model trained here on the same files never
    saw. ``split=None`` means ``"test"``, except for magenta.js models, which were trained
    elsewhere (on Google's 70K/2.5K/2.5K npz split, not recorded in these files): for them it
    means ``"all"``, every drawing. ``raw_ndjson`` says how raw ndjson drawings are simplified
    (``"auto"``: see :func:`resolve_raw_ndjson`); simplified ndjson is read as it is.
    """
    from sketchrnn.data import SketchDataset, load_datasets
    from sketchrnn.models import load_model

    if split is None:
        split = "all" if is_magenta_json_model(model_path) else "test"
    if split not in EVAL_SPLITS:
        raise ValueError(f"split must be one of {', '.join(EVAL_SPLITS)}, got {split!r}")
    if not data_paths:
        raise ValueError("no data files given")
    raw_ndjson = resolve_raw_ndjson(raw_ndjson, model_path)
    model = load_model(model_path, device)
    # The same splits as `sketchrnn train` assigns; padded to the model's N_max (L_s and L_p
    # are divided by N_max, so the figures compare with training only with the same padding).
    splits = load_datasets(
        [os.fspath(p) for p in data_paths],
        max_len=int(model.config.max_seq_len),
        scale_factor=getattr(model, "scale_factor", None),
        pad_to_max_len=True,
        raw_simplification=raw_ndjson,
    )
    dropped = sum(splits.dropped_too_long.values())
    chosen = (
        [splits.train, splits.valid, splits.test] if split == "all" else [getattr(splits, split)]
    )
    dataset = SketchDataset(
        [s for d in chosen for s in d.sketches],
        np.concatenate([d.labels for d in chosen]),
        splits.classes,
        splits.scale_factor,
        splits.max_len,
    )
    if len(dataset) == 0:
        raise ValueError(
            f"no {split} sketches in {', '.join(os.fspath(p) for p in data_paths)} "
            f"(within the model's N_max of {int(model.config.max_seq_len)} points)"
        )
    if int(getattr(model.config, "num_classes", 0) or 0) > 0:
        _relabel_to_model_classes(dataset, list(getattr(model, "classes", None) or []))
    report = EvaluationReport(
        split, raw_ndjson, _measure(model, dataset, batch_size, kl_weight, seed), {}, dropped
    )
    present = sorted(set(dataset.labels.tolist()))
    if len(present) > 1:
        for k in present:
            report.per_class[dataset.classes[k]] = _measure(
                model, dataset.subset(dataset.labels == k), batch_size, kl_weight, seed
            )
    return report


def evaluate_files(
    model_path: str | os.PathLike,
    data_paths: Sequence[str | os.PathLike],
    split: str | None = "test",
    batch_size: int = 100,
    *,
    kl_weight: float = 1.0,
    seed: int = 0,
    device: str | torch.device = "cpu",
    raw_ndjson: str = "auto",
) -> dict[str, float]:
    """The ``total`` of :func:`evaluate_files_by_class`: ``L_R, L_s, L_p, L_KL, loss``,
    ``sketches`` and ``offset_std_ratio`` over all the data's ``split``."""
    return evaluate_files_by_class(
        model_path,
        data_paths,
        split,
        batch_size,
        raw_ndjson=raw_ndjson,
        kl_weight=kl_weight,
        seed=seed,
        device=device,
    ).total


def _relabel_to_model_classes(dataset: Any, model_classes: list[str]) -> None:
    """A class-conditional model knows its classes by index: map the data's labels onto them."""
    if not model_classes:
        raise ValueError("the class-conditional model does not list its classes")
    where = {name: k for k, name in enumerate(model_classes)}
    unknown = sorted(set(dataset.classes) - set(where))
    if unknown:
        raise ValueError(
            f"the data has classes the model was not trained on: {', '.join(unknown[:10])}"
        )
    mapping = np.array([where[name] for name in dataset.classes], dtype=np.int64)
    dataset.labels = mapping[dataset.labels]
    dataset.classes = list(model_classes)
