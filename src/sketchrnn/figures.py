"""Figures of what SketchEmbedNet's embeddings show (Wang et al. 2021, sections 6-7), as PNG.
(The embeddings of any image or sketch files are :func:`sketchrnn.embeddings.embed_files`.)

- :func:`one_shot_figure`: unseen Omniglot characters (evaluation alphabets) drawn from one
  image each, the input beside the model's drawing.
- :func:`composition_figure`: ``z(snowman) - z(circle) + z(square)`` decoded (section 6).
- :func:`arrangements_figure`: 2-D UMAP projections of embeddings of synthetic arrangements
  (a circle left of / right of / above / below a square; 1, 2, 3 stacked circles), one panel
  per model, points coloured by arrangement, with a legend.

Sketches are rendered with :func:`sketchrnn.datasets.render_images`; the panels are put
together with Pillow (matplotlib is not a dependency). UMAP needs the optional ``umap-learn``
(:class:`MissingExtraError` says how to install it, before any work). Every figure is a PNG:
an output named otherwise (``x.npz``) is refused before any work, never written as a PNG.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from sketchrnn import generate
from sketchrnn import strokes as S
from sketchrnn.datasets import render_images
from sketchrnn.embeddings import l2_normalise, load_embed_net, read_image_file
from sketchrnn.extras import MissingExtraError
from sketchrnn.io.files import atomic_path
from sketchrnn.io.formats import read_sketches
from sketchrnn.io.omniglot_images import load_omniglot_split
from sketchrnn.models import ConvVAE, SketchModel
from sketchrnn.synthetic import synthetic_sketch

__all__ = [
    "ARRANGEMENTS",
    "arrangement_sketch",
    "load_input_images",
    "one_shot_figure",
    "composition_figure",
    "arrangements_figure",
    "umap_projection",
    "scatter_plot",
]

CELL = 84  # pixels per image in the figures
ARRANGEMENTS = (
    "circle left of square",
    "circle right of square",
    "circle above square",
    "circle below square",
    "1 circle",
    "2 stacked circles",
    "3 stacked circles",
)
COMPOSED = ("snowman", "circle", "square")  # the composition drawn: snowman - circle + square
# Distinct colours for up to 10 groups (the Tableau 10 palette).
PALETTE = "#4e79a7 #f28e2b #e15759 #76b7b2 #59a14f #edc948 #b07aa1 #ff9da7 #9c755f #bab0ac".split()


# ----------------------------------------------------------------------------- inputs


def _shape(name: str, rng: np.random.Generator, center: tuple[float, float], size: float):
    """The polylines of a package-drawn ``name`` sketch, fitted into a ``size`` box at
    ``center``."""
    polylines = S.stroke3_to_polylines(synthetic_sketch(name, rng).astype(np.float64))
    points = np.concatenate(polylines)
    low, high = points.min(axis=0), points.max(axis=0)
    scale = size / max(float((high - low).max()), 1e-9)
    middle = (low + high) / 2
    return [(p - middle) * scale + np.asarray(center) for p in polylines]


def arrangement_sketch(name: str, rng: np.random.Generator) -> np.ndarray:
    """One stroke-3 sketch of arrangement ``name`` (see :data:`ARRANGEMENTS`), built from the
    package's synthetic circles and squares with a little random jitter of place and size."""
    if name not in ARRANGEMENTS:
        raise ValueError(f"unknown arrangement {name!r}; choose from {', '.join(ARRANGEMENTS)}")
    size = 40.0 * rng.uniform(0.9, 1.1)
    gap = size * rng.uniform(1.1, 1.3)
    jitter = rng.normal(0.0, 3.0, 2)
    offsets = {
        "circle left of square": ((-gap / 2, 0), (gap / 2, 0)),
        "circle right of square": ((gap / 2, 0), (-gap / 2, 0)),
        "circle above square": ((0, -gap / 2), (0, gap / 2)),  # y grows downwards
        "circle below square": ((0, gap / 2), (0, -gap / 2)),
    }
    if name in offsets:
        circle_at, square_at = offsets[name]
        polylines = _shape("circle", rng, tuple(np.add(circle_at, jitter)), size)
        polylines += _shape("square", rng, tuple(np.add(square_at, jitter)), size)
    else:
        count = int(name[0])
        polylines = []
        for i in range(count):
            y = (i - (count - 1) / 2) * size * 1.05
            polylines += _shape("circle", rng, (jitter[0], y + jitter[1]), size)
    return S.polylines_to_stroke3(polylines)


def load_input_images(
    inputs: Sequence[str], omniglot: str | os.PathLike, image_size: int, n_characters: int
) -> tuple[np.ndarray, list[str]]:
    """Images ``(n, S, S)`` float32 (ink = 1) and their names for the one-shot figure.

    Each input is a PNG/JPEG file (converted to grey; dark ink on light paper is inverted) or
    an Omniglot evaluation character ``alphabet/characterNN`` (its first drawer's image). No
    inputs: the first character of each of the first ``n_characters`` evaluation alphabets.
    """
    images, names = [], []
    wanted = [name for name in inputs if not Path(name).is_file()]
    split = None
    if wanted or not inputs:
        split = load_omniglot_split(omniglot, "lake", image_size)
    if not inputs:
        assert split is not None
        first_of_alphabet: dict[str, str] = {}
        for label, alphabet in split.alphabet_of.items():
            first_of_alphabet.setdefault(alphabet, label)
        inputs = list(first_of_alphabet.values())[:n_characters]
    for name in inputs:
        path = Path(name)
        if path.is_file():
            images.append(read_image_file(path, image_size))
        else:
            assert split is not None  # every such name is in `wanted`
            if name not in split.images:
                raise ValueError(
                    f"{name!r} is neither an image file nor an Omniglot evaluation character "
                    "('alphabet/characterNN', e.g. 'Angelic/character01')"
                )
            images.append(split.images[name][0])
        names.append(name)
    return np.stack(images), names


def _model_images(model: SketchModel, images: np.ndarray) -> torch.Tensor:
    """``(n, S, S)`` ink images -> ``(n, C, S, S)`` for ``model``; ValueError for a wrong size."""
    size, channels = model.config.image_size, model.config.in_channels
    if images.shape[-2:] != (size, size):
        raise ValueError(f"the model takes {size}x{size} images, got {images.shape[-2:]}")
    batch = torch.as_tensor(np.asarray(images, dtype=np.float32)).unsqueeze(1)
    return batch.expand(-1, channels, -1, -1)


def _render(sketches: Sequence[np.ndarray], image_size: int) -> np.ndarray:
    return render_images(list(sketches), image_size).astype(np.float32) / 255.0


# ----------------------------------------------------------------------------- drawing


def _tile(image: np.ndarray) -> Image.Image:
    """An ink image ``(S, S)`` in [0, 1] as a ``CELL`` square tile, black ink on white."""
    grey = np.rint(255 * (1.0 - np.clip(image, 0, 1))).astype(np.uint8)
    return Image.fromarray(grey, "L").resize((CELL, CELL), Image.Resampling.NEAREST).convert("RGB")


def _sketch_tile(sketch: np.ndarray) -> Image.Image:
    """A drawn sketch rendered at ``CELL`` pixels; a blank tile for an empty sketch."""
    if len(sketch) == 0:
        return Image.new("RGB", (CELL, CELL), "white")
    return _tile(_render([sketch], CELL)[0])


def _save_rows(path: str | os.PathLike, rows: Sequence[Sequence[Image.Image | str | None]]) -> None:
    """Rows of tiles, text labels and blank cells (``None``) as one PNG, written atomically.
    A label leading a row takes the width of the longest such label; others their own."""
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength
    first = max((measure(r[0]) + 12 for r in rows if r and isinstance(r[0], str)), default=0)

    widths = [
        [
            (int(first) if i == 0 else int(measure(item)) + 8)
            if isinstance(item, str)
            else CELL + 4
            for i, item in enumerate(row)
        ]
        for row in rows
    ]
    width = max(sum(w) for w in widths) + 4
    canvas = Image.new("RGB", (width, len(rows) * (CELL + 4) + 4), "white")
    draw = ImageDraw.Draw(canvas)
    for r, (row, row_widths) in enumerate(zip(rows, widths, strict=True)):
        x, y = 4, 4 + r * (CELL + 4)
        for item, w in zip(row, row_widths, strict=True):
            if isinstance(item, str):
                draw.text((x, y + CELL // 2 - 6), item, fill="black")
            elif item is not None:
                canvas.paste(item, (x, y))
                draw.rectangle([x, y, x + CELL - 1, y + CELL - 1], outline="#cccccc")
            x += w
    _save_png(canvas, path)


def _check_png_name(path: str | os.PathLike) -> None:
    """ValueError unless ``path`` ends in ``.png``: a figure is a PNG image, and a PNG under
    another name (``x.npz``) would mislead every program that opens it."""
    if Path(path).suffix.lower() != ".png":
        raise ValueError(f"{os.fspath(path)}: a figure is a PNG image; name the file *.png")


def _save_png(image: Image.Image, path: str | os.PathLike) -> None:
    _check_png_name(path)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def scatter_plot(
    panels: Sequence[tuple[str, np.ndarray]],
    labels: Sequence[str],
    legend: Sequence[str],
    path: str | os.PathLike,
    panel_size: int = 360,
) -> None:
    """Side-by-side 2-D scatter panels ``(title, points (n, 2))`` coloured by ``labels``
    (names from ``legend``), with the legend below; written atomically as PNG."""
    if len(legend) > len(PALETTE):
        raise ValueError(f"at most {len(PALETTE)} groups can be coloured, got {len(legend)}")
    colour_of = dict(zip(legend, PALETTE, strict=False))
    margin, legend_height = 20, 18 * len(legend) + 10
    width = len(panels) * (panel_size + margin) + margin
    canvas = Image.new("RGB", (width, panel_size + 2 * margin + legend_height), "white")
    draw = ImageDraw.Draw(canvas)
    for p, (title, points) in enumerate(panels):
        left, top = margin + p * (panel_size + margin), margin
        draw.text((left, 4), title, fill="black")
        draw.rectangle([left, top, left + panel_size, top + panel_size], outline="#888888")
        low, high = points.min(axis=0), points.max(axis=0)
        span = np.maximum(high - low, 1e-9)
        inner = panel_size - 20
        xy = (points - low) / span * inner + 10 + np.array([left, top])
        for (x, y), label in zip(xy, labels, strict=True):
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour_of[label])
    y = panel_size + 2 * margin
    for name in legend:
        draw.rectangle([margin, y + 3, margin + 10, y + 13], fill=colour_of[name])
        draw.text((margin + 16, y + 2), name, fill="black")
        y += 18
    _save_png(canvas, path)


def _import_umap() -> Any:
    """The ``umap`` module, or :class:`MissingExtraError` with the install line."""
    try:
        import umap
    except ImportError as e:
        raise MissingExtraError(
            "the arrangements figure needs UMAP, which is not installed: "
            f"pip install 'sketchrnn[figures]' (or pip install umap-learn) ({e})"
        ) from None
    return umap


def umap_projection(embeddings: np.ndarray, seed: int = 0) -> np.ndarray:
    """UMAP of ``(n, D)`` embeddings to ``(n, 2)`` (cosine metric, as the few-shot embeddings
    are compared after L2 normalisation). :class:`MissingExtraError` (an ImportError) with the
    install line without ``umap-learn``. Torch's thread count is left as it was (numba's
    OpenMP layer, which UMAP runs on, sets the process-wide OpenMP count that torch reads)."""
    umap = _import_umap()
    neighbours = min(15, len(embeddings) - 1)
    reducer = umap.UMAP(
        n_components=2, n_neighbors=neighbours, metric="cosine", random_state=seed, n_jobs=1
    )
    threads = torch.get_num_threads()
    try:
        return reducer.fit_transform(np.asarray(embeddings, dtype=np.float32))
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


# ----------------------------------------------------------------------------- figures


def one_shot_figure(
    model_path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    inputs: Sequence[str] = (),
    omniglot: str | os.PathLike = "../shared/data/omniglot",
    n_characters: int = 8,
    temperature: float = 0.1,
    seed: int = 0,
) -> int:
    """One row per input: the input image, then the model's drawing of it (decoded from
    ``mu``). Returns the number of inputs drawn."""
    _check_png_name(out)
    if n_characters < 1:
        raise ValueError(f"n_characters must be at least 1, got {n_characters}")
    model = load_embed_net(model_path)
    images, names = load_input_images(inputs, omniglot, model.config.image_size, n_characters)
    z = model.embed(_model_images(model, images))
    drawings = generate.decode(model, z, temperature=temperature, seed=seed)
    rows: list[list[Image.Image | str | None]] = [
        [name, _tile(image), _sketch_tile(drawing)]
        for name, image, drawing in zip(names, images, drawings, strict=True)
    ]
    _save_rows(out, rows)
    return len(rows)


def _composition_inputs(
    examples: Sequence[str | os.PathLike] | None, count: int, rng: np.random.Generator
) -> list[list[np.ndarray]]:
    """Three equally long lists of stroke-3 sketches: snowmen, circles, squares."""
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    if examples is None:
        return [[synthetic_sketch(name, rng) for _ in range(count)] for name in COMPOSED]
    if len(examples) != 3:
        raise ValueError(
            f"examples: give three sketch files (snowmen, circles, squares), got {len(examples)}"
        )
    parts = [list(read_sketches(path).strokes)[:count] for path in examples]
    n = min(len(p) for p in parts)
    return [p[:n] for p in parts]


def composition_figure(
    model_path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    examples: Sequence[str | os.PathLike] | None = None,
    count: int = 25,
    conv_vae: str | os.PathLike | None = None,
    n_rows: int = 4,
    temperature: float = 0.1,
    seed: int = 0,
) -> int:
    """Conceptual composition (section 6): ``z(snowman) - z(circle) + z(square)``, decoded.

    The concepts come from ``count`` drawings each: the package's synthetic shapes, or the
    three sketch files ``examples`` (snowmen, circles, squares, e.g. Quick, Draw!'s
    ``snowman.ndjson circle.ndjson square.ndjson``: their first ``count`` drawings). The first
    row decodes, four times, the composition of the concept means (each concept's mean
    embedding, which averages out what single drawings add); then ``n_rows`` rows
    ``snowman, circle, square | drawing`` of single drawings. With ``conv_vae``, each row ends
    with that model's decoded pixels for the same arithmetic on its own embeddings.
    Returns the number of drawings per concept used.
    """
    _check_png_name(out)
    model = load_embed_net(model_path)
    parts = _composition_inputs(examples, count, np.random.default_rng(seed))
    n, shown = len(parts[0]), min(n_rows, len(parts[0]))
    size = model.config.image_size
    images = [_render(p, size) for p in parts]
    z = [model.embed(_model_images(model, im)) for im in images]
    of_means = (z[0].mean(0) - z[1].mean(0) + z[2].mean(0)).expand(4, -1)
    mean_drawings = generate.decode(model, of_means, temperature=temperature, seed=seed)
    singles = (z[0] - z[1] + z[2])[:shown]
    drawings = generate.decode(model, singles, temperature=temperature, seed=seed)
    rows: list[list[Image.Image | str | None]] = [
        [f"mean of {n} each: snowman - circle + square =", None, None, None]
        + [_sketch_tile(d) for d in mean_drawings]
    ]
    for i in range(shown):
        inputs = [_tile(im[i]) for im in images]
        rows.append(["snowman - circle + square =", *inputs, _sketch_tile(drawings[i])])
    if conv_vae is not None:
        vae = ConvVAE.from_pretrained(conv_vae).eval()
        vae_size = vae.config.image_size
        v = [vae.embed(_model_images(vae, _render(p, vae_size))) for p in parts]
        v_of_means = v[0].mean(0) - v[1].mean(0) + v[2].mean(0)
        composed = torch.cat([v_of_means[None], (v[0] - v[1] + v[2])[:shown]])
        with torch.no_grad():
            pixels = torch.sigmoid(vae.decode(composed))[:, 0].numpy()
        columns = len(rows[0])  # the Conv-VAE column follows the widest row, the means'
        for row, image in zip(rows, pixels, strict=True):
            row += [None] * (columns - len(row)) + ["Conv-VAE:", _tile(image)]
    _save_rows(out, rows)
    return n


def arrangements_figure(
    model_path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    conv_vae: str | os.PathLike | None = None,
    per_arrangement: int = 40,
    seed: int = 0,
) -> int:
    """UMAP panels of the model's (and, if given, a Conv-VAE's) embeddings of
    ``per_arrangement`` sketches of each :data:`ARRANGEMENTS`. Returns the number of points."""
    _check_png_name(out)
    if per_arrangement < 2:
        raise ValueError(f"per_arrangement must be at least 2, got {per_arrangement}")
    _import_umap()  # before any work: say now that it is missing
    model = load_embed_net(model_path)
    rng = np.random.default_rng(seed)
    labels = [name for name in ARRANGEMENTS for _ in range(per_arrangement)]
    sketches = [arrangement_sketch(name, rng) for name in labels]
    embedders: list[tuple[str, Callable[[np.ndarray], torch.Tensor], int]] = [
        ("SketchEmbedNet", lambda x: model.embed(_model_images(model, x)), model.config.image_size)
    ]
    if conv_vae is not None:
        vae = ConvVAE.from_pretrained(conv_vae)
        embedders.append(
            ("Conv-VAE", lambda x: vae.embed(_model_images(vae, x)), vae.config.image_size)
        )
    panels = []
    for title, embed_fn, size in embedders:
        embeddings = l2_normalise(embed_fn(_render(sketches, size)).cpu().numpy())
        panels.append((title, umap_projection(embeddings, seed)))
    scatter_plot(panels, labels, ARRANGEMENTS, out)
    return len(labels)
