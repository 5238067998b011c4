"""Loss of a trained model over a whole split (sketch-rnn: the paper's Table 1 figures).

Choice made here, and kept everywhere (validation during training, ``sketchrnn evaluate``,
benchmarks): the VAE's ``z`` is *sampled* from ``N(mu, sigma)`` exactly as in training,
because the paper's L_R and L_KL in Table 1 are the training objective's terms measured on
the test set. To make the figure reproducible the noise comes from a fixed seed, in a forked
RNG so that evaluating never changes the random stream of the training it interrupts.
Recurrent dropout is off (``model.eval()``) and there is no augmentation.

``loss`` is the model's evaluation objective, ``model.losses(batch, None)["loss"]``: for
sketch-rnn the un-annealed eq. 11, ``L_R + w_KL * L_KL`` with the model's own ``w_KL``
(``config.kl_weight``); for SketchEmbedNet its final objective (``alpha = alpha_max``); for
the Conv-VAE ``recon + kl_weight * kl``. Any model is evaluated on files: its batches are
built by the model from the sketches read (:meth:`sketchrnn.models.interface.SketchModel.dataset`:
a model of images renders them as its training images were).

Evaluating on files (:func:`evaluate_files`, :func:`evaluate_files_by_class`) normalises the
data with the *model's* scale factor (:func:`sketchrnn.models.units.model_scale_factor`: a
model without one is an error), so the data must be in the units the model was trained
in. The magenta.js models were trained on sketch-rnn's Quick, Draw! npz files, which keep each
drawing's own pixel units; the simplified ndjson files are rescaled into a 0-255 box, which
makes most drawings smaller than those models expect. Raw ndjson files are therefore read "as
sketch-rnn's npz were made" for magenta.js models (``raw_ndjson="auto"``; see
:func:`sketchrnn.io.quickdraw_simplify.simplify_raw_drawing_sketchrnn`, which also gives the figures
measured), and every result reports ``offset_std_ratio``, the data's offset std over the
model's scale factor (1 for the model's own training data; 0.34-0.98, median 0.58, for the
shared raw drawings read so under the 20 released models that have them; 0.35-0.49 for the
0-255 box).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from sketchrnn import strokes
from sketchrnn.data import load_datasets
from sketchrnn.datasets import BatchSource, SketchDataset, to_device
from sketchrnn.models import SketchModel, is_magenta_json_model, load_model
from sketchrnn.models.config import MAX_SEQ_LEN
from sketchrnn.models.decoding import check_count
from sketchrnn.models.units import model_scale_factor

__all__ = [
    "evaluate",
    "evaluate_files",
    "evaluate_files_by_class",
    "EvaluationReport",
    "resolve_raw_ndjson",
    "RAW_NDJSON_CHOICES",
    "EVAL_SPLITS",
]

RAW_NDJSON_CHOICES = ("auto", "quickdraw", "sketch-rnn")
EVAL_SPLITS = ("train", "valid", "test", "all")


@torch.no_grad()
def evaluate(
    model: SketchModel, dataset: BatchSource, batch_size: int = 100, *, seed: int = 0
) -> dict[str, float]:
    """The mean of every term of ``model.losses(batch, None)`` over ``dataset``: for sketch-rnn
    ``L_R, L_s, L_p, L_KL``, ``kl_weight`` and ``loss = L_R + w_KL * L_KL``.

    Each batch's losses are means over its items, so batches are weighted by their size: the
    result does not depend on ``batch_size``. ``dataset`` is of the model's batch type (as
    ``model.dataset(model.config, sketches)`` builds it: for SketchEmbedNet an image dataset,
    whose ``loss`` is the final objective, ``alpha = alpha_max``, so that losses of different
    training steps compare). Eval mode; ``z`` is sampled as in training, from ``seed`` in a
    forked RNG; the model's own device is used.
    """
    batch_size = check_count(batch_size, "batch_size")
    n = len(dataset)
    if n == 0:
        raise ValueError("cannot evaluate on an empty split")
    device = model.device
    was_training = model.training
    model.eval()
    totals: dict[str, float] = {}
    devices = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            for start in range(0, n, batch_size):
                indices = np.arange(start, min(start + batch_size, n))
                batch = to_device(dataset.batch(indices, augment=False), device)
                for k, v in model.losses(batch, None).items():
                    totals[k] = totals.get(k, 0.0) + float(v) * len(indices)
    finally:
        model.train(was_training)
    return {k: v / n for k, v in totals.items()}


@dataclass
class EvaluationReport:
    """What :func:`evaluate_files_by_class` measured.

    ``total`` and every ``per_class[name]`` hold the model's losses (sketch-rnn: ``L_R, L_s,
    L_p, L_KL, loss``), ``sketches`` (how many were evaluated) and ``offset_std_ratio`` (std of
    the data's offsets over the model's scale factor: about 1 when data and model share
    units). ``columns`` is what a table of them shows: column -> key of ``total`` (the model's
    ``LOSS_COLUMNS``). ``split`` is the split evaluated (``"all"``: every drawing),
    ``raw_ndjson`` how raw ndjson drawings were simplified, ``dropped_too_long`` how many
    drawings were longer than the model's ``N_max`` and left out.
    """

    split: str
    raw_ndjson: str
    total: dict[str, float]
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)
    dropped_too_long: int = 0
    columns: dict[str, str] = field(default_factory=dict)


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


def _measure(
    model: SketchModel, dataset: SketchDataset, batch_size: int, seed: int
) -> dict[str, float]:
    result = evaluate(model, model.dataset(model.config, dataset), batch_size, seed=seed)
    result["sketches"] = float(len(dataset))
    # The sketches are already divided by the model's scale factor.
    try:
        result["offset_std_ratio"] = strokes.scale_factor(dataset.sketches)
    except strokes.SketchError:  # all offsets equal (single points): a ratio of 0, not an error
        result["offset_std_ratio"] = 0.0
    return result


def evaluate_files_by_class(
    model_path: str | os.PathLike,
    data_paths: Sequence[str | os.PathLike],
    split: str | None = None,
    batch_size: int = 100,
    *,
    raw_ndjson: str = "auto",
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> EvaluationReport:
    """``sketchrnn evaluate``: the losses of a saved model (any kind) on data files, in all and
    per class.

    The data is normalised with the *model's* scale factor (not one recomputed from these
    files; a model of pixels alone, which has none, takes the data's) and padded to the
    model's ``N_max``; drawings longer than ``N_max`` are left out and counted. Splits are
    assigned as ``sketchrnn train`` assigns them to sketch-rnn (per file and class, seeded),
    so ``split="test"`` is the test split a model trained here on the same files never saw.
    (A model of images was trained on the files' own splits where they have them, as npz files
    do; the image reader, :func:`sketchrnn.data.load_image_datasets`, splits a file without
    them after leaving out its sketches too long, so such a split may differ by those.)
    ``split=None`` means ``"test"``, except for magenta.js models, which were trained
    elsewhere (on Google's 70K/2.5K/2.5K npz split, not recorded in these files): for them it
    means ``"all"``, every drawing. ``raw_ndjson`` says how raw ndjson drawings are simplified
    (``"auto"``: see :func:`resolve_raw_ndjson`); simplified ndjson is read as it is.
    ``loss`` is the model's evaluation objective (see :func:`evaluate`).
    """
    batch_size = check_count(batch_size, "batch_size")  # before any file is read
    if split is None:
        split = "all" if is_magenta_json_model(model_path) else "test"
    if split not in EVAL_SPLITS:
        raise ValueError(f"split must be one of {', '.join(EVAL_SPLITS)}, got {split!r}")
    if not data_paths:
        raise ValueError("no data files given")
    raw_ndjson = resolve_raw_ndjson(raw_ndjson, model_path)
    model = load_model(model_path, device)
    # The model's units, not the data's, wherever strokes enter or leave the model.
    scale_factor = model_scale_factor(model) if model.has_stroke_units else None
    n_max = model.max_seq_len
    # The same splits as `sketchrnn train` assigns; padded to the model's N_max (L_s and L_p
    # are divided by N_max, so the figures compare with training only with the same padding).
    splits = load_datasets(
        [os.fspath(p) for p in data_paths],
        max_len=MAX_SEQ_LEN if n_max is None else n_max,
        scale_factor=scale_factor,
        pad_to_max_len=n_max is not None,
        raw_simplification=raw_ndjson,
    )
    dropped = sum(splits.dropped_too_long.values())
    chosen = (
        [splits.train, splits.valid, splits.test] if split == "all" else [getattr(splits, split)]
    )
    for data in chosen:  # a packed store's digests, before its sketches are read (as training)
        verify = getattr(data, "verify", None)
        if verify is not None:
            verify()
    dataset = SketchDataset(
        [s for d in chosen for s in d.sketches],
        np.concatenate([d.labels for d in chosen]),
        splits.classes,
        splits.scale_factor,
        splits.max_len,
    )
    if len(dataset) == 0:
        within = "" if n_max is None else f" (within the model's N_max of {n_max} points)"
        raise ValueError(
            f"no {split} sketches in {', '.join(os.fspath(p) for p in data_paths)}{within}"
        )
    if model.num_classes > 0:
        _relabel_to_model_classes(dataset, model.classes)
    report = EvaluationReport(
        split,
        raw_ndjson,
        _measure(model, dataset, batch_size, seed),
        {},
        dropped,
        dict(model.LOSS_COLUMNS),
    )
    present = sorted(set(dataset.labels.tolist()))
    if len(present) > 1:
        for k in present:
            report.per_class[dataset.classes[k]] = _measure(
                model, dataset.subset(dataset.labels == k), batch_size, seed
            )
    return report


def evaluate_files(
    model_path: str | os.PathLike,
    data_paths: Sequence[str | os.PathLike],
    split: str | None = "test",
    batch_size: int = 100,
    *,
    seed: int = 0,
    device: str | torch.device = "cpu",
    raw_ndjson: str = "auto",
) -> dict[str, float]:
    """The ``total`` of :func:`evaluate_files_by_class`: the model's losses (sketch-rnn:
    ``L_R, L_s, L_p, L_KL, loss``), ``sketches`` and ``offset_std_ratio`` over all the data's
    ``split``."""
    return evaluate_files_by_class(
        model_path,
        data_paths,
        split,
        batch_size,
        raw_ndjson=raw_ndjson,
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
