"""A tiny TF.js layers model written to a folder, and a numpy forward pass with Keras' meaning,
for the judge's tests (the real DoodleNet is in ../shared/data/doodlenet)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SIDE = 28


def tiny_layers(classes: int = 7) -> list[dict]:
    """Conv 'same' + pool + conv 'valid' + dropout + flatten + dense tanh + dense softmax."""

    def layer(kind: str, **config) -> dict:
        return {"class_name": kind, "config": {"data_format": "channels_last", **config}}

    return [
        layer("Conv2D", name="c0", filters=3, kernel_size=[3, 3], padding="same",
              strides=[1, 1], activation="relu", batch_input_shape=[None, SIDE, SIDE, 1]),
        layer("MaxPooling2D", name="p0", pool_size=[2, 2], strides=[2, 2], padding="valid"),
        layer("Conv2D", name="c1", filters=4, kernel_size=[3, 3], padding="valid",
              strides=[1, 1], activation="relu"),
        layer("MaxPooling2D", name="p1", pool_size=[2, 2], strides=[2, 2], padding="valid"),
        {"class_name": "Dropout", "config": {"name": "d", "rate": 0.1}},
        layer("Flatten", name="f"),
        {"class_name": "Dense", "config": {"name": "h", "units": 5, "activation": "tanh"}},
        {"class_name": "Dense", "config": {"name": "out", "units": classes,
                                           "activation": "softmax"}},
    ]  # fmt: skip


def tiny_weights(classes: int = 7, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    shapes = {
        "c0/kernel": (3, 3, 1, 3), "c0/bias": (3,),
        "c1/kernel": (3, 3, 3, 4), "c1/bias": (4,),
        "h/kernel": (6 * 6 * 4, 5), "h/bias": (5,),
        "out/kernel": (5, classes), "out/bias": (classes,),
    }  # fmt: skip
    return {k: rng.normal(0, 0.5, s).astype(np.float32) for k, s in shapes.items()}


def write_layers_model(
    folder: Path,
    layers: list[dict] | None = None,
    weights: dict[str, np.ndarray] | None = None,
    class_names: list[str] | None = None,
    shard: bytes | None = None,
) -> Path:
    """``folder/model.json``, ``folder/w.bin`` and ``folder/class_names.txt``; returns the
    folder. ``shard`` replaces the weight file's bytes (for broken-file tests)."""
    folder.mkdir(parents=True, exist_ok=True)
    layers = tiny_layers() if layers is None else layers
    weights = tiny_weights() if weights is None else weights
    names = [f"class_{i}" for i in range(7)] if class_names is None else class_names
    specs = [{"name": k, "shape": list(v.shape), "dtype": "float32"} for k, v in weights.items()]
    doc = {
        "format": "layers-model",
        "modelTopology": {"model_config": {"class_name": "Sequential",
                                           "config": {"layers": layers}}},
        "weightsManifest": [{"paths": ["w.bin"], "weights": specs}],
    }  # fmt: skip
    (folder / "model.json").write_text(json.dumps(doc), encoding="utf-8")
    data = b"".join(v.astype("<f4").tobytes() for v in weights.values())
    (folder / "w.bin").write_bytes(data if shard is None else shard)
    (folder / "class_names.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    return folder


def _conv(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, same: bool) -> np.ndarray:
    """Keras Conv2D, channels last: x (H, W, C), kernel (kh, kw, C, F)."""
    kh, kw = kernel.shape[:2]
    if same:
        x = np.pad(x, ((kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
    h, w = x.shape[0] - kh + 1, x.shape[1] - kw + 1
    out = np.zeros((h, w, kernel.shape[3]))
    for i in range(h):
        for j in range(w):
            out[i, j] = np.einsum("abc,abcf->f", x[i : i + kh, j : j + kw], kernel)
    return out + bias


def _pool(x: np.ndarray) -> np.ndarray:
    h, w = x.shape[0] // 2, x.shape[1] // 2
    return x[: 2 * h, : 2 * w].reshape(h, 2, w, 2, -1).max(axis=(1, 3))


def reference_forward(weights: dict[str, np.ndarray], image: np.ndarray) -> tuple:
    """``(probabilities, features)`` of :func:`tiny_layers` for one ``(28, 28)`` image."""
    w = {k: v.astype(np.float64) for k, v in weights.items()}
    x = image.astype(np.float64)[:, :, None]
    x = _pool(np.maximum(_conv(x, w["c0/kernel"], w["c0/bias"], True), 0))
    x = _pool(np.maximum(_conv(x, w["c1/kernel"], w["c1/bias"], False), 0))
    features = np.tanh(x.reshape(-1) @ w["h/kernel"] + w["h/bias"])  # flattened (H, W, C)
    logits = features @ w["out/kernel"] + w["out/bias"]
    p = np.exp(logits - logits.max())
    return p / p.sum(), features
