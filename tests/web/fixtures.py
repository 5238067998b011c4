"""Tiny randomly initialised models for the web tests, saved and loaded as a user's would be."""

from __future__ import annotations

from pathlib import Path

import torch

from sketchrnn.models import (
    SketchEmbedNet,
    SketchEmbedNetConfig,
    SketchRNN,
    SketchRNNConfig,
    load_model,
)

MAGENTA_MODEL = Path(__file__).resolve().parents[3] / "shared" / "data" / "magenta_models"


def tiny_models(root: Path) -> dict[str, object]:
    """``{name: model}``: a VAE, a decoder-only model, a class-conditional VAE (HyperLSTM),
    a SketchEmbedNet; each saved with ``save_pretrained`` under ``root`` and loaded back."""
    torch.manual_seed(0)
    small = dict(enc_hidden=16, dec_hidden=32, z_size=8, num_mixtures=3, max_seq_len=60)
    specs = {
        "vae": (SketchRNN(SketchRNNConfig(cell="lstm", **small)), None),
        "decoder": (
            SketchRNN(SketchRNNConfig(cell="layernorm", conditional=False, **small)),
            None,
        ),
        "classes": (
            SketchRNN(
                SketchRNNConfig(
                    cell="hyper",
                    num_classes=2,
                    class_embed_size=4,
                    hyper_hidden=8,
                    hyper_embed=4,
                    **small,
                )
            ),
            ["cat", "truck"],
        ),
        "embednet": (
            SketchEmbedNet(
                SketchEmbedNetConfig(
                    z_size=8, dec_hidden=32, cell="lstm", num_mixtures=3, max_seq_len=40
                )
            ),
            None,
        ),
    }
    out = {}
    for name, (model, classes) in specs.items():
        _draws_on(model)
        path = root / name
        model.save_pretrained(path, scale_factor=10.0, classes=classes)
        out[name] = load_model(path)
    return out


def _draws_on(model: torch.nn.Module) -> None:
    """Make a random model draw scribbles of many strokes instead of stopping at once: its
    pen logits mostly their bias, "pen down" likely, "lift" sometimes, "end" rarely."""
    output = model.decoder.output
    with torch.no_grad():
        output.weight[:3] *= 0.05
        output.bias[:3] = torch.tensor([2.0, 0.0, -3.5])


def tiny_model_table(root: Path) -> dict[str, object]:
    """:func:`tiny_models` plus the magenta.js sheep (a real, magenta-size decoder-only LSTM)
    when the shared data is here."""
    table = tiny_models(root)
    sheep = MAGENTA_MODEL / "sheep.gen.json"
    if sheep.exists():
        table["sheep"] = load_model(sheep)
    return table
