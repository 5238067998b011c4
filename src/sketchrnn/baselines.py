"""The baselines ``sketchrnn fewshot`` scores beside a model, on the same episodes
(:mod:`sketchrnn.fewshot`): raw pixels, a random Conv4, and a Conv-VAE (SketchEmbedNet's
baseline, section 5) loaded or trained here on the Omniglot background set or on the model's
own training files.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from sketchrnn.data import load_image_datasets
from sketchrnn.datasets import ImageOnlyDataset
from sketchrnn.embeddings import EmbedFn, model_embedding
from sketchrnn.io.omniglot_images import load_character_images, resize_ink_images
from sketchrnn.models import SketchModel
from sketchrnn.models.conv_vae import ConvVAE, ConvVAEConfig
from sketchrnn.nn.encoders import ImageEncoder
from sketchrnn.train import Trainer
from sketchrnn.train_config import TrainConfig

__all__ = [
    "BASELINES",
    "DEFAULT_OMNIGLOT",
    "raw_pixel_embedding",
    "random_conv4_embedding",
    "omniglot_background_images",
    "train_quick_conv_vae",
    "parse_baselines",
    "build_embedders",
]

#: What ``sketchrnn fewshot --baselines`` takes.
BASELINES = ("conv-vae", "random-conv4", "pixels")
#: Where ``sketchrnn fewshot`` looks for the Omniglot data (``--omniglot``) by default.
DEFAULT_OMNIGLOT = "../shared/data/omniglot"


def raw_pixel_embedding(images: np.ndarray) -> np.ndarray:
    """The pixel baseline: each image ``(N, ...)`` flattened to ``(N, D)``."""
    images = np.asarray(images, dtype=np.float32)
    return images.reshape(len(images), -1)


def random_conv4_embedding(
    seed: int = 0,
    image_size: int = 28,
    in_channels: int = 1,
    output: str = "features",
) -> EmbedFn:
    """The random-CNN baseline: a randomly initialised Conv4 encoder as an embedding function.

    ``output="features"`` gives the flattened Conv4 features (64 at 28x28), ``"mu"`` the mean of
    its (random) Gaussian head. BatchNorm runs in eval mode so an image's embedding does not
    depend on the batch it is in. The seed fixes the weights without touching torch's global
    random state. The returned function maps ``(N, H, W)`` or ``(N, C, H, W)`` images to
    ``(N, D)`` numpy arrays.
    """
    if output not in ("features", "mu"):
        raise ValueError(f"output must be 'features' or 'mu', not {output!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        encoder = ImageEncoder("conv4", in_channels=in_channels, image_size=image_size)
    encoder.eval()

    def embed(images: np.ndarray) -> np.ndarray:
        batch = torch.as_tensor(np.asarray(images, dtype=np.float32))
        if batch.dim() == 3:
            batch = batch.unsqueeze(1)  # greyscale (N, H, W) -> (N, 1, H, W)
        with torch.inference_mode():
            out = encoder.features(batch) if output == "features" else encoder(batch)[0]
        return out.numpy()

    return embed


def omniglot_background_images(root: str, image_size: int = 28) -> np.ndarray:
    """All 964 x 20 Omniglot background-set images, float32 ``(19280, S, S)``, ink = 1.

    These alphabets never appear in the Vinyals test split or the Lake split, so a baseline
    trained on them sees no test character.
    """
    raw = load_character_images(Path(root) / "images_background.npz")
    images = resize_ink_images(raw, image_size)
    return images.reshape(-1, image_size, image_size)


def train_quick_conv_vae(
    images: np.ndarray, steps: int = 1500, seed: int = 0, z_size: int = 256, progress: bool = True
) -> ConvVAE:
    """A Conv4 Conv-VAE trained by the Trainer for ``steps`` on ``images`` ``(N, S, S)`` in
    ``[0, 1]`` (ink 1), with the Conv-VAE's training defaults (batches of 128, or all the
    images when there are fewer), on the CPU, writing no files; in eval mode.

    Seeded by ``seed`` (weights, data order, noise) without touching torch's global random
    state. ValueError for images of the wrong shape or range.
    """
    data = ImageOnlyDataset(images)
    config = TrainConfig.for_model(
        ConvVAE,
        max_steps=steps,
        batch_size=min(ConvVAE.TRAIN_DEFAULTS["batch_size"], len(data)),
        seed=seed,
        log_every=0,
        eval_every=0,
        save_every=0,
        progress=progress,
        out_dir=None,
        device="cpu",
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ConvVAE(ConvVAEConfig(image_size=data.images.shape[-1], z_size=z_size))
        model.encoder.check_images(data.images[:1])
        trainer = Trainer(model, config, data)
        try:
            trainer.fit()
        finally:
            trainer.close()
    return model.eval()


def parse_baselines(spec: str) -> list[tuple[str, str | None]]:
    """``"conv-vae:PATH,random-conv4,pixels"`` -> ``[("conv-vae", "PATH"), ...]``.

    Only ``conv-vae`` takes a path (a ConvVAE ``save_pretrained`` folder). ValueError otherwise.
    """
    out: list[tuple[str, str | None]] = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, path = item.partition(":")
        if name not in BASELINES:
            raise ValueError(f"unknown baseline {name!r}: use {', '.join(BASELINES)}")
        if path and name != "conv-vae":
            raise ValueError(f"baseline {name!r} takes no path (got {item!r})")
        out.append((name, path or None))
    return out


def build_embedders(
    model: SketchModel,
    baselines: str | Sequence[tuple[str, str | None]],
    image_size: int = 28,
    *,
    seed: int = 0,
    omniglot: str = DEFAULT_OMNIGLOT,
    conv_vae_steps: int | None = None,
    conv_vae_data: Sequence[str] | None = None,
    conv_vae_out: str | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, EmbedFn]:
    """The embedders to score on the same episodes: ``"sketchembednet"`` (``model``'s) first,
    then each of ``baselines`` (a :func:`parse_baselines` spec or its result), in order.

    ``conv-vae:PATH`` loads a saved ConvVAE; ``conv-vae`` alone trains one with
    :func:`train_quick_conv_vae` (``conv_vae_steps``, default that function's) on the images
    of ``conv_vae_data`` (stroke files rendered as SketchEmbedNet's training images), else on
    the Omniglot background set under ``omniglot``, and saves it to ``conv_vae_out`` if
    given. ``random-conv4`` is seeded by ``seed``. ``log`` receives one line per such step.
    """
    say = log or (lambda _message: None)
    if isinstance(baselines, str):
        baselines = parse_baselines(baselines)
    embedders: dict[str, EmbedFn] = {"sketchembednet": model_embedding(model, image_size)}
    for name, path in baselines:
        if name == "pixels":
            embedders[name] = raw_pixel_embedding
        elif name == "random-conv4":
            embedders[name] = random_conv4_embedding(seed, image_size)
        elif path is not None:
            embedders[name] = model_embedding(ConvVAE.from_pretrained(path), image_size)
        else:
            embedders[name] = model_embedding(
                _quick_conv_vae(
                    image_size, seed, omniglot, conv_vae_steps, conv_vae_data, conv_vae_out, say
                ),
                image_size,
            )
    return embedders


def _quick_conv_vae(
    image_size: int,
    seed: int,
    omniglot: str,
    steps: int | None,
    files: Sequence[str] | None,
    out: str | None,
    say: Callable[[str], None],
) -> ConvVAE:
    """The ``conv-vae`` baseline without a path: trained here (see :func:`build_embedders`)."""
    if steps is None:
        steps = inspect.signature(train_quick_conv_vae).parameters["steps"].default
    files = list(files or [])
    source = (
        "the Omniglot background"
        if not files
        else files[0]
        if len(files) == 1
        else f"{len(files)} files ({files[0]}, ...)"
    )
    say(
        f"conv-vae: no path given, training one for {steps} steps (batch 128) on images of "
        + source
    )
    if files:
        # The images the SketchEmbedNet under test learned from (rendered the same way).
        train = load_image_datasets(files, image_size).train
        images = train.images.astype(np.float32) / 255.0
    else:
        images = omniglot_background_images(omniglot, image_size)
    vae = train_quick_conv_vae(images, steps, seed)
    if out:
        vae.save_pretrained(out)
        say(f"conv-vae: saved to {out}")
    return vae
