"""Training data drawn by models: sketches sampled from sketch-rnn models (e.g. the 24
magenta.js ``.gen.json`` models) and cached as a sketch-rnn ``.npz``, so SketchEmbedNet can
train on more drawings than the data files hold. (Above the models and :mod:`sketchrnn.generate`:
the data layer below never draws.)"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sketchrnn import strokes as S
from sketchrnn.datasets import assign_splits
from sketchrnn.generate import sample
from sketchrnn.io.files import SketchFileError, atomic_path
from sketchrnn.io.npz import write_npz
from sketchrnn.io.quickdraw_simplify import simplify_raw_drawing
from sketchrnn.io.sketchset import SketchSet
from sketchrnn.models import load_model

__all__ = ["sample_magenta_models", "read_sample_info"]

PathLike = str | os.PathLike


# ----------------------------------------------------------------------------- model samples

_INFO_KEYS = ("sample_models", "sample_temperature", "sample_count")
_SIMPLIFIED_KEY = "sample_simplified"  # optional: absent in caches written before it existed


def read_sample_info(path: PathLike) -> dict[str, object] | None:
    """What :func:`sample_magenta_models` recorded in ``path`` (model names, temperature,
    count per model), or ``None`` for a file without that record. Reads plain arrays only
    (no pickle)."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if not all(f"{k}.npy" in names for k in _INFO_KEYS):
                return None
            keys = [*_INFO_KEYS, *([_SIMPLIFIED_KEY] if f"{_SIMPLIFIED_KEY}.npy" in names else [])]
            arrays = {k: np.load(io.BytesIO(zf.read(f"{k}.npy")), allow_pickle=False) for k in keys}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise SketchFileError(path, f"not a readable .npz file ({e})") from None
    return {
        "models": [str(m) for m in arrays["sample_models"].tolist()],
        "temperature": float(arrays["sample_temperature"]),
        "count": int(arrays["sample_count"]),
        "simplified": bool(arrays.get(_SIMPLIFIED_KEY, False)),
    }


def sample_magenta_models(
    model_paths: Sequence[PathLike],
    n_per_model: int,
    temperature: float,
    out_npz: PathLike,
    *,
    seed: int = 0,
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    simplify: bool = False,
) -> Path:
    """Draw ``n_per_model`` sketches from each sketch-rnn model (e.g. the 24 magenta.js
    ``.gen.json`` models) at ``temperature`` and cache them in ``out_npz``; return its path.

    ``simplify=True`` passes every drawing through Google's simplification of the Quick, Draw!
    data (:func:`simplify_raw_drawing`: into the 0-255 box, resampled,
    RDP 2, whole pixels), so that the samples look like the simplified ``.ndjson`` files: the
    models draw in small steps (median 115 points at temperature 0.5, against 53 for real
    simplified drawings), which SketchEmbedNet's 64-point cap would mostly drop.

    The file is a sketch-rnn ``.npz`` in pixel units, labelled with each model's name (the file
    name without ``.gen.json``), split per class by ``split_fractions``; it also records the
    model names, temperature and count (:func:`read_sample_info`). When ``out_npz`` already
    holds samples of the same models, temperature and count it is reused, not regenerated.
    Written atomically.
    """
    if n_per_model < 1:
        raise ValueError(f"n_per_model must be >= 1, got {n_per_model}")
    if not model_paths:
        raise ValueError("no model files given")
    out_npz = Path(out_npz)
    names = [_model_name(p) for p in model_paths]
    if out_npz.exists():
        info = read_sample_info(out_npz)
        wanted = {
            "models": names,
            "temperature": float(temperature),
            "count": n_per_model,
            "simplified": bool(simplify),
        }
        if info == wanted:
            return out_npz
    strokes, labels = [], []
    for k, (path, name) in enumerate(zip(model_paths, names, strict=True)):
        model = load_model(path)
        drawn = sample(model, n_per_model, temperature=temperature, seed=seed + 1000 * k)
        # A drawing that ended at once has no points: nothing to render or learn from.
        drawn = [s for s in drawn if len(s)]
        if simplify:
            simplified = [_quickdraw_simplified(s) for s in drawn]
            drawn = [s for s in simplified if s is not None]
        strokes += drawn
        labels += [name] * len(drawn)
    sketches = assign_splits(SketchSet(strokes, labels), split_fractions, seed, name="samples")
    info_arrays = {
        "sample_models": np.array(names, dtype=str),
        "sample_temperature": np.array(float(temperature)),
        "sample_count": np.array(int(n_per_model)),
        _SIMPLIFIED_KEY: np.array(bool(simplify)),
    }
    with atomic_path(out_npz) as tmp:
        part = tmp.with_name(tmp.name + ".npz")  # write_npz writes atomically itself
        try:
            write_npz(part, sketches)
        except SketchFileError as e:  # named after the file asked for, not the temporary one
            raise SketchFileError(out_npz, str(e).removeprefix(f"{e.path}: ")) from None
        try:
            with zipfile.ZipFile(part, "a", compression=zipfile.ZIP_DEFLATED) as zf:
                for key, array in info_arrays.items():
                    buffer = io.BytesIO()
                    np.save(buffer, array, allow_pickle=False)
                    zf.writestr(f"{key}.npy", buffer.getvalue())
            os.replace(part, tmp)
        finally:
            part.unlink(missing_ok=True)
    return out_npz


def _quickdraw_simplified(s3: np.ndarray) -> np.ndarray | None:
    """``s3`` as Google simplified Quick, Draw! drawings, or None for a drawing that is a
    single point (nothing to scale)."""
    try:
        simplified = simplify_raw_drawing(S.stroke3_to_polylines(s3))
    except S.SketchError:
        return None
    return S.polylines_to_stroke3(simplified)


def _model_name(path: PathLike) -> str:
    name = Path(path).name
    for suffix in (".gen.json", ".json", ".pt"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name
