"""Loss of a trained sketch-rnn over a whole split (the paper's Table 1 figures).

Choice made here, and kept everywhere (validation during training, ``sketchrnn evaluate``,
benchmarks): the VAE's ``z`` is *sampled* from ``N(mu, sigma)`` exactly as in training,
because the paper's L_R and L_KL in Table 1 are the training objective's terms measured on
the test set. To make the figure reproducible the noise comes from a fixed seed, in a forked
RNG so that evaluating never changes the random stream of the training it interrupts.
Recurrent dropout is off (``model.eval()``) and there is no augmentation.

``loss`` is the un-annealed eq. 11: ``L_R + w_KL * L_KL``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["evaluate", "iterate_eval_batches", "evaluate_files"]

LOSS_KEYS = ("L_R", "L_s", "L_p", "L_KL")


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
    :class:`sketchrnn.data.SketchDataset`; the model's own device is used.
    """
    if len(dataset) == 0:
        raise ValueError("cannot evaluate on an empty split")
    device = next(model.parameters()).device
    use_labels = int(getattr(model.config, "num_classes", 0) or 0) > 0
    was_training = model.training
    model.eval()
    totals = dict.fromkeys(LOSS_KEYS, 0.0)
    devices = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            for batch in iterate_eval_batches(dataset, batch_size):
                labels = batch.labels.to(device) if use_labels else None
                losses = model.losses(batch.strokes.to(device), batch.lengths.to(device), labels)
                size = len(batch.lengths)
                for k in LOSS_KEYS:
                    totals[k] += float(losses[k]) * size
    finally:
        model.train(was_training)
    result = {k: v / len(dataset) for k, v in totals.items()}
    result["loss"] = result["L_R"] + kl_weight * result["L_KL"]
    return result


def evaluate_files(
    model_path: str | os.PathLike,
    data_paths: Sequence[str | os.PathLike],
    split: str = "test",
    batch_size: int = 100,
    *,
    kl_weight: float = 1.0,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> dict[str, float]:
    """``sketchrnn evaluate``: load a model, read ``data_paths`` normalised with the *model's*
    scale factor (not one recomputed from these files) and evaluate one split."""
    from sketchrnn.data import load_datasets
    from sketchrnn.models import load_model

    model = load_model(model_path, device)
    if split not in ("train", "valid", "test"):
        raise ValueError(f"split must be train, valid or test, got {split!r}")
    # Pad to the model's N_max: L_s and L_p are divided by N_max, so the figures compare with
    # training only when the padding is the same (the CLI sets max_seq_len to the data's N_max).
    splits = load_datasets(
        [os.fspath(p) for p in data_paths],
        max_len=int(model.config.max_seq_len),
        scale_factor=getattr(model, "scale_factor", None),
        pad_to_max_len=True,
    )
    dataset = getattr(splits, split)
    if int(getattr(model.config, "num_classes", 0) or 0) > 0:
        _relabel_to_model_classes(dataset, list(getattr(model, "classes", None) or []))
    result = evaluate(model, dataset, batch_size, kl_weight=kl_weight, seed=seed)
    result["sketches"] = float(len(dataset))
    return result


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
