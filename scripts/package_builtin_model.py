"""Turn a training run into a built-in model folder: weights in float16, the card beside them.

    .venv/bin/python scripts/package_builtin_model.py RUN_DIR/best NAME --card CARD.md

Loads the run with :func:`sketchrnn.models.load_model` (which also reads older formats), saves it
with ``save_pretrained`` into ``src/sketchrnn/builtin_models/NAME`` and rewrites the weights as
float16 (they load back into the float32 parameters; the largest relative rounding error is
printed so a model that does not survive the cast is noticed).
"""

from __future__ import annotations

import argparse
import shutil

import torch
from safetensors.torch import load_file, save_file

from sketchrnn.models import load_model
from sketchrnn.models.builtin import BUILTIN_DIR
from sketchrnn.models.pretrained import record_weights_digest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a pretrained folder or run folder")
    parser.add_argument("name")
    parser.add_argument("--card", required=True, help="the model card (Markdown)")
    args = parser.parse_args()
    out = BUILTIN_DIR / args.name
    model = load_model(args.run)
    model.save_pretrained(out)
    weights = out / "model.safetensors"
    tensors = load_file(weights)
    half = {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}
    worst = max(
        float((h.float() - v).abs().max() / v.abs().max().clamp_min(1e-12))
        for (k, v), h in zip(tensors.items(), half.values(), strict=True)
        if v.is_floating_point() and v.numel()
    )
    save_file(half, str(weights), metadata={"format": model.format_name()})
    record_weights_digest(out)  # the weights were rewritten: config.json records their digest
    shutil.copyfile(args.card, out / "README.md")
    size = sum(f.stat().st_size for f in out.iterdir())
    print(f"{out}: {size / 1e6:.2f} MB, float16 relative rounding at most {worst:.2e}")
    reloaded = load_model(out)
    assert all(p.dtype == torch.float32 for p in reloaded.parameters())


if __name__ == "__main__":
    main()
