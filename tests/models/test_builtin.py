"""The models shipped in the package: each loads offline as float32 with its units and card,
all together stay small, and the shapes VAE redraws a shape as that shape."""

from __future__ import annotations

import numpy as np
import torch

from sketchrnn import generate
from sketchrnn.models import load_model
from sketchrnn.models.builtin import BUILTIN_DIR, builtin_models
from sketchrnn.synthetic import synthetic_sketch
from sketchrnn.web.server import BUILTIN_MODELS


def test_every_builtin_model_loads_as_float32_with_its_units_and_card():
    models = builtin_models()
    assert {"shapes_vae", "shapes_gen", "omniglot_vae", "shapes_omniglot_sen"} <= set(models)
    for name, path in models.items():
        model = load_model(path)
        assert all(p.dtype == torch.float32 for p in model.parameters()), name
        assert model.scale_factor is not None and model.scale_factor > 0, name
        card = (path / "README.md").read_text()
        assert "Training" in card and "Test" in card and "licence" in card, name


def test_all_shipped_weights_together_stay_under_10_mb():
    size = sum(f.stat().st_size for f in BUILTIN_DIR.rglob("*.safetensors"))
    assert 0 < size <= 10_000_000


def test_the_server_serves_the_builtin_models_by_default():
    assert sorted(spec.split("=")[0] for spec in BUILTIN_MODELS) == sorted(builtin_models())


def test_the_shapes_vae_reconstructs_a_square_as_a_closed_four_sided_box():
    model = load_model(builtin_models()["shapes_vae"])
    rng = np.random.default_rng(3)
    square = synthetic_sketch("square", rng)
    (redrawn,) = generate.reconstruct(model, square, [0.0], seed=0)
    absolute = np.cumsum(redrawn[:, :2], axis=0)
    extent = absolute.max(0) - absolute.min(0)
    original = np.cumsum(square[:, :2], axis=0)
    # The same size as the input (within 25%) and ending near where it started (closed).
    assert np.allclose(extent, original.max(0) - original.min(0), rtol=0.25)
    assert np.linalg.norm(absolute[-1] - absolute[0]) < 0.25 * extent.max()
