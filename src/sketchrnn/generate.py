"""Drawing with a trained sketch-rnn: sampling, completion, reconstruction, latent-space tricks.

Every function takes and returns stroke-3 sketches ``(n, 3)`` in the model's *pixel* units
when the model knows its ``scale_factor`` (models from :func:`load_model` do): inputs are
divided by it before they enter the network and outputs multiplied by it. A model without a
scale factor works in normalised units throughout.

Temperature ``tau`` follows the paper (eq. 8): mixture weights and pen logits are divided by
``tau``, variances multiplied by it. ``tau = 0`` is allowed where sampling happens and means
greedy decoding (the most likely component's mean and the most likely pen state).

All sampling is batched: each sketch stops at its own end-of-sketch and leaves the batch, so
the decoder only runs for the sketches still drawing and the loop ends when the last one has.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import numpy as np
import torch

from sketchrnn import strokes
from sketchrnn.data import make_batch
from sketchrnn.models import load_model
from sketchrnn.models.sketch_rnn import SketchRNN
from sketchrnn.nn import mixture

__all__ = [
    "load_model",
    "sample",
    "decode",
    "encode",
    "reconstruct",
    "complete",
    "interpolate",
    "interpolate_latents",
    "four_corner_grid",
    "analogy",
    "variations",
    "typical_extent",
    "fit_to_model_size",
]

SketchOrLatent = np.ndarray | torch.Tensor


# ----------------------------------------------------------------------------- loading


# ----------------------------------------------------------------------------- checks


def _check_temperature(tau: float, name: str = "temperature") -> float:
    tau = float(tau)
    if not math.isfinite(tau) or tau < 0:
        raise ValueError(f"{name} must be >= 0 (0 = greedy), got {tau}")
    return tau


def _check_count(n: int, name: str = "n") -> int:
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"{name} must be a positive integer, got {n!r}")
    return int(n)


def _require_encoder(model: SketchRNN, what: str) -> None:
    if not model.config.conditional:
        raise ValueError(
            f"{what} needs a model with an encoder (a VAE); this model is decoder-only "
            "(config.conditional=False)"
        )


def _max_len(model: SketchRNN, max_len: int | None) -> int:
    if max_len is None:
        return int(model.config.max_seq_len)
    return _check_count(max_len, "max_len")


def _scale(model: SketchRNN) -> float:
    sf = getattr(model, "scale_factor", None)
    return float(sf) if sf else 1.0


def _device(model: SketchRNN) -> torch.device:
    return next(model.parameters()).device


def _generator(model: SketchRNN, seed: int | None) -> torch.Generator | None:
    if seed is None:
        return None
    return torch.Generator(device=_device(model)).manual_seed(int(seed))


def _labels(model: SketchRNN, labels: Any, n: int) -> torch.Tensor | None:
    """Class indices ``(n,)`` for a class-conditional model (names or ints, one or ``n``)."""
    num_classes = int(model.config.num_classes)
    if num_classes <= 0:
        if labels is not None:
            raise ValueError("labels given, but the model is not class-conditional")
        return None
    if labels is None:
        raise ValueError(
            f"the model is class-conditional ({num_classes} classes): pass labels "
            "(class indices or names)"
        )
    if isinstance(labels, torch.Tensor | np.ndarray):
        labels = labels.reshape(-1).tolist()
    items = [labels] if isinstance(labels, int | str | np.integer) else list(labels)
    classes = list(getattr(model, "classes", None) or [])
    idx = []
    for item in items:
        if isinstance(item, str):
            if item not in classes:
                raise ValueError(f"unknown class {item!r}; the model knows {classes}")
            item = classes.index(item)
        if not 0 <= int(item) < num_classes:
            raise ValueError(f"class index {item} out of range [0, {num_classes})")
        idx.append(int(item))
    if len(idx) == 1:
        idx = idx * n
    if len(idx) != n:
        raise ValueError(f"expected 1 or {n} labels, got {len(idx)}")
    return torch.tensor(idx, dtype=torch.long, device=_device(model))


def _as_stroke5_rows(model: SketchRNN, s3: np.ndarray, where: str) -> torch.Tensor:
    """A pixel stroke-3 sketch as normalised stroke-5 rows ``(n, 5)`` (no start, no end row)."""
    s3 = strokes.validate_stroke3(s3, where=where)
    s5 = strokes.stroke3_to_stroke5(strokes.normalize([s3], _scale(model))[0], n_max=len(s3))
    return torch.from_numpy(s5).to(_device(model))


# ----------------------------------------------------------------------------- decoder loop


@contextlib.contextmanager
def _inference(model: SketchRNN) -> Iterator[None]:
    """Eval mode (no dropout) and no gradients, restoring the model's mode afterwards, so
    that drawing in the middle of training does not switch training off."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def _select(state: Any, keep: torch.Tensor) -> Any:
    """The rows ``keep`` of every tensor in a decoder state (tensors are ``(batch, ...)``)."""
    if isinstance(state, torch.Tensor):
        return state.index_select(0, keep)
    if isinstance(state, tuple | list):
        return type(state)(_select(s, keep) for s in state)
    return state


def _draw(
    model: SketchRNN,
    x: torch.Tensor,
    state: Any,
    z: torch.Tensor | None,
    labels: torch.Tensor | None,
    max_len: int,
    temperature: float,
    pen_temperature: float | None,
    generator: torch.Generator | None,
) -> list[np.ndarray]:
    """Run the decoder from input rows ``x`` ``(B, 5)`` and ``state`` until every sketch ends.

    Returns ``B`` arrays of sampled stroke-5 rows ``(k, 5)`` in normalised units, each up to
    and excluding its end-of-sketch row (at most ``max_len`` rows).
    """
    batch = x.shape[0]
    active = torch.arange(batch, device=x.device)  # original index of each row still drawing
    step_rows, step_owners = [], []
    for _ in range(max_len):
        params, state = model.decode_step(x, state, z=z, labels=labels)
        x = mixture.sample(params, temperature, pen_temperature, generator=generator)
        ended = x[:, 4] > 0.5
        going = torch.nonzero(~ended).squeeze(1)
        step_rows.append(x[going])
        step_owners.append(active[going])
        if going.numel() < active.numel():
            if going.numel() == 0:
                break
            active, x = active[going], x[going]
            state = _select(state, going)
            z = None if z is None else z[going]
            labels = None if labels is None else labels[going]
    # Group the recorded rows by sketch; a stable sort keeps each sketch's rows in order.
    rows = torch.cat(step_rows).cpu().numpy()
    owners = torch.cat(step_owners).cpu().numpy()
    order = np.argsort(owners, kind="stable")
    counts = np.bincount(owners, minlength=batch)
    return np.split(rows[order], np.cumsum(counts)[:-1])


def _to_pixels(model: SketchRNN, s5_rows: np.ndarray) -> np.ndarray:
    s3 = strokes.stroke5_to_stroke3(s5_rows) if len(s5_rows) else np.zeros((0, 3), np.float32)
    s3[:, 0:2] *= _scale(model)
    return s3


# ----------------------------------------------------------------------------- sampling


def decode(
    model: SketchRNN,
    z: torch.Tensor | None,
    n: int | None = None,
    *,
    temperature: float = 0.5,
    pen_temperature: float | None = None,
    labels: Any = None,
    max_len: int | None = None,
    seed: int | None = None,
) -> list[np.ndarray]:
    """Draw one sketch per latent row ``z`` ``(B, z_size)`` (or ``n`` for a decoder-only
    model, ``z=None``). Returns stroke-3 sketches in pixels."""
    temperature = _check_temperature(temperature)
    if pen_temperature is not None:
        pen_temperature = _check_temperature(pen_temperature, "pen_temperature")
    if z is not None:
        if not model.config.conditional:
            raise ValueError("z given, but the model is decoder-only (no latent space)")
        z = z.to(_device(model), dtype=torch.float32)
        if z.ndim == 1:
            z = z.unsqueeze(0)
        if z.ndim != 2 or z.shape[1] != model.config.z_size:
            raise ValueError(f"z must be (n, {model.config.z_size}), got {tuple(z.shape)}")
        n = z.shape[0]
    elif model.config.conditional:
        raise ValueError("the model is a VAE: decode needs z (use sample() to draw z ~ N(0, I))")
    if n is None:
        raise ValueError("decode needs n for a decoder-only model")
    n = _check_count(n)
    label_idx, limit = _labels(model, labels, n), _max_len(model, max_len)
    x = torch.from_numpy(np.tile(strokes.START_TOKEN, (n, 1))).to(_device(model))
    with _inference(model):
        state = model.initial_state(z, n)
        gen = _generator(model, seed)
        rows = _draw(model, x, state, z, label_idx, limit, temperature, pen_temperature, gen)
    return [_to_pixels(model, r) for r in rows]


def sample(
    model: SketchRNN,
    n: int,
    *,
    temperature: float = 0.5,
    pen_temperature: float | None = None,
    z: torch.Tensor | None = None,
    labels: Any = None,
    max_len: int | None = None,
    seed: int | None = None,
) -> list[np.ndarray]:
    """``n`` unconditional sketches, stroke-3 in pixels.

    A decoder-only model draws from its own prior; a VAE uses ``z`` ``(n, z_size)`` when
    given, else ``z ~ N(0, I)``. ``labels`` (class indices or names, one or ``n``) are needed
    for a class-conditional model. ``max_len`` defaults to ``model.config.max_seq_len``. A
    fixed ``seed`` makes the result reproducible; ``temperature=0`` is greedy and
    deterministic.
    """
    n = _check_count(n)
    if model.config.conditional and z is None:
        gen = _generator(model, seed)
        z = torch.randn(n, model.config.z_size, generator=gen, device=_device(model))
    if z is not None and z.shape[0] != n:
        raise ValueError(f"z has {z.shape[0]} rows, expected n={n}")
    return decode(
        model,
        z,
        n,
        temperature=temperature,
        pen_temperature=pen_temperature,
        labels=labels,
        max_len=max_len,
        seed=None if seed is None else seed + 1,
    )


# ----------------------------------------------------------------------------- latent space


def encode(
    model: SketchRNN, sketches: Sequence[np.ndarray], *, with_sigma: bool = False
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Latent means ``(B, z_size)`` of pixel stroke-3 sketches (and ``sigma_hat`` on request).

    The mean of ``q(z | sketch)`` is used so that encoding is deterministic.
    """
    _require_encoder(model, "encoding")
    if len(sketches) == 0:
        raise ValueError("no sketches to encode")
    max_len = int(model.config.max_seq_len)
    checked = [strokes.validate_stroke3(s, where=f"sketch {i}") for i, s in enumerate(sketches)]
    for i, s in enumerate(checked):
        if len(s) > max_len:
            raise ValueError(f"sketch {i} has {len(s)} points, more than max_seq_len={max_len}")
    normalised = strokes.normalize(checked, _scale(model))
    batch = make_batch(normalised, [0] * len(normalised), max(len(s) for s in normalised))
    with _inference(model):
        mu, sigma_hat = model.encode(batch.strokes.to(_device(model)), batch.lengths)
    return (mu, sigma_hat) if with_sigma else mu


def _latent(model: SketchRNN, item: SketchOrLatent) -> torch.Tensor:
    """A latent vector ``(z_size,)``: a tensor is used as is, a stroke-3 array is encoded."""
    if isinstance(item, torch.Tensor):
        z = item.detach().to(_device(model), dtype=torch.float32).reshape(-1)
        if z.shape[0] != model.config.z_size:
            raise ValueError(f"latent has size {z.shape[0]}, the model's is {model.config.z_size}")
        return z
    return encode(model, [item])[0]


def interpolate_latents(
    z_a: torch.Tensor,
    z_b: torch.Tensor,
    steps: int,
    method: Literal["slerp", "linear"] = "slerp",
) -> torch.Tensor:
    """``steps`` latents ``(steps, z_size)`` from ``z_a`` to ``z_b`` inclusive.

    ``slerp`` (spherical, as in the paper, section 4.2) keeps the norm typical of samples
    from a Gaussian prior; it falls back to linear when the two vectors are (anti)parallel
    enough for the sine to vanish.
    """
    steps = _check_count(steps, "steps")
    if method not in ("slerp", "linear"):
        raise ValueError(f"method must be 'slerp' or 'linear', got {method!r}")
    t = torch.linspace(0.0, 1.0, steps, dtype=torch.float64).unsqueeze(1)
    if steps == 1:
        t = torch.zeros(1, 1, dtype=torch.float64)
    a, b = z_a.double().reshape(1, -1), z_b.double().reshape(1, -1)
    out = (1 - t) * a + t * b
    if method == "slerp":
        cos = (a @ b.T / (a.norm() * b.norm()).clamp_min(1e-12)).clamp(-1.0, 1.0)
        omega = torch.arccos(cos)
        sin = torch.sin(omega)
        if float(sin) > 1e-6:
            out = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / sin
    return out.to(z_a.dtype)


def reconstruct(
    model: SketchRNN,
    s3: np.ndarray,
    temperatures: Sequence[float] = (0.01, 0.2, 0.4, 0.6, 0.8, 1.0),
    *,
    max_len: int | None = None,
    seed: int | None = None,
) -> list[np.ndarray]:
    """Decode the encoding of ``s3`` once per temperature (paper Fig. 5); stroke-3 in pixels."""
    _require_encoder(model, "reconstruction")
    if len(temperatures) == 0:
        raise ValueError("no temperatures given")
    z = encode(model, [s3])
    out = []
    for k, tau in enumerate(temperatures):
        sub_seed = None if seed is None else seed + k
        out += decode(model, z, temperature=tau, max_len=max_len, seed=sub_seed)
    return out


def variations(
    model: SketchRNN,
    s3: np.ndarray,
    n: int,
    temperature: float = 0.3,
    *,
    max_len: int | None = None,
    seed: int | None = None,
) -> list[np.ndarray]:
    """``n`` sketches "similar but unique" to ``s3``: latents drawn from the posterior
    ``q(z | s3) = N(mu, sigma^2)`` and each decoded at ``temperature``."""
    n = _check_count(n)
    mu, sigma_hat = encode(model, [s3], with_sigma=True)
    sigma = torch.exp(sigma_hat / 2)  # sigma_hat is the log variance (paper section 3.1)
    gen = _generator(model, seed)
    eps = torch.randn(n, mu.shape[1], generator=gen, device=mu.device)
    z = mu + sigma * eps
    return decode(
        model,
        z,
        temperature=temperature,
        max_len=max_len,
        seed=None if seed is None else seed + 1,
    )


def interpolate(
    model: SketchRNN,
    a: SketchOrLatent,
    b: SketchOrLatent,
    steps: int = 10,
    *,
    method: Literal["slerp", "linear"] = "slerp",
    temperature: float = 0.1,
    max_len: int | None = None,
    seed: int | None = None,
) -> list[np.ndarray]:
    """``steps`` sketches decoded along the path from ``a`` to ``b`` (sketches in pixels or
    latent vectors), paper section 4.2."""
    _require_encoder(model, "interpolation")
    z = interpolate_latents(_latent(model, a), _latent(model, b), steps, method)
    return decode(model, z, temperature=temperature, max_len=max_len, seed=seed)


def four_corner_grid(
    model: SketchRNN,
    corners: Sequence[SketchOrLatent],
    size: int = 5,
    *,
    method: Literal["slerp", "linear"] = "slerp",
    temperature: float = 0.1,
    max_len: int | None = None,
    seed: int | None = None,
) -> list[np.ndarray]:
    """A ``size x size`` grid (row-major list) interpolating four corners (supplement 5).

    ``corners`` are top-left, top-right, bottom-left, bottom-right. The left and right
    columns interpolate down from the top corners to the bottom ones, and each row
    interpolates across between them.
    """
    _require_encoder(model, "a four-corner grid")
    if len(corners) != 4:
        raise ValueError(f"expected 4 corners, got {len(corners)}")
    size = _check_count(size, "size")
    tl, tr, bl, br = (_latent(model, c) for c in corners)
    left = interpolate_latents(tl, bl, size, method)
    right = interpolate_latents(tr, br, size, method)
    z = torch.cat([interpolate_latents(left[r], right[r], size, method) for r in range(size)])
    return decode(model, z, temperature=temperature, max_len=max_len, seed=seed)


def analogy(
    model: SketchRNN,
    a: SketchOrLatent,
    minus: SketchOrLatent,
    plus: SketchOrLatent,
    n: int = 1,
    *,
    temperature: float = 0.1,
    max_len: int | None = None,
    seed: int | None = None,
) -> list[np.ndarray]:
    """Draw ``z_a - z_minus + z_plus`` ``n`` times (paper section 4.3: cat head - pig head +
    full pig = full cat)."""
    _require_encoder(model, "an analogy")
    n = _check_count(n)
    z = _latent(model, a) - _latent(model, minus) + _latent(model, plus)
    return decode(model, z.expand(n, -1), temperature=temperature, max_len=max_len, seed=seed)


# ----------------------------------------------------------------------------- completion


def complete(
    model: SketchRNN,
    prefix_s3: np.ndarray,
    n: int,
    temperature: float = 0.8,
    *,
    z_from: Literal["prefix", "prior"] = "prefix",
    pen_temperature: float | None = None,
    labels: Any = None,
    max_len: int | None = None,
    seed: int | None = None,
) -> list[np.ndarray]:
    """``n`` endings for an incomplete sketch (paper section 4.4); each result is the prefix
    followed by its ending, stroke-3 in pixels.

    The prefix is fed through the decoder (after the start token) to build the hidden state,
    then sampling continues from it. A VAE also needs ``z``: ``z_from="prefix"`` uses the
    mean encoding of the prefix (endings that agree with what is drawn), ``"prior"`` draws
    ``z ~ N(0, I)`` per ending (more varied). ``max_len`` bounds the whole sketch, prefix
    included (default ``model.config.max_seq_len``).
    """
    n = _check_count(n)
    temperature = _check_temperature(temperature)
    s3 = strokes.validate_stroke3(prefix_s3, where="prefix")
    limit = _max_len(model, max_len)
    if len(s3) >= limit:
        raise ValueError(
            f"prefix has {len(s3)} points; it must be shorter than max_len={limit} to leave "
            "room for an ending"
        )
    if z_from not in ("prefix", "prior"):
        raise ValueError(f"z_from must be 'prefix' or 'prior', got {z_from!r}")
    gen = _generator(model, seed)
    z = None
    if model.config.conditional:
        if z_from == "prefix":
            z = encode(model, [s3]).expand(n, -1).contiguous()
        else:
            z = torch.randn(n, model.config.z_size, generator=gen, device=_device(model))
    label_idx = _labels(model, labels, n)
    rows = _as_stroke5_rows(model, s3, "prefix")
    start = torch.from_numpy(strokes.START_TOKEN).to(rows.device).unsqueeze(0)
    inputs = torch.cat([start, rows[:-1]])  # the last prefix row is fed by _draw below
    pen_temperature = None if pen_temperature is None else _check_temperature(pen_temperature)
    with _inference(model):
        state = model.initial_state(z, n)
        for row in inputs:
            _, state = model.decode_step(row.expand(n, 5), state, z=z, labels=label_idx)
        last = rows[-1].expand(n, 5).contiguous()
        room = limit - len(s3)
        endings = _draw(model, last, state, z, label_idx, room, temperature, pen_temperature, gen)
    return [np.concatenate([s3, _to_pixels(model, e)]) for e in endings]


# ----------------------------------------------------------------------------- input size

# fit_to_model_size brings an input's longer side to the median longer side of this many of
# the model's own sketches (tau 0.5, seed 0). Measured: raw Quick, Draw! drawings in their own
# pixels have a longer side of about 5x their class model's scale factor (median over the 500
# shared raw drawings of the 20 classes with a released model), but the models' own sketches
# about 6-16x (sheep 12.6, bicycle 10.2, rabbit 12.8, calendar 6.1, dog 16.2), and their
# likelihood of the raw drawings improves when those are enlarged 1.25-1.5x: the models were
# trained on larger drawings than the raw files here hold, so the model itself is the measure.
TYPICAL_EXTENT_SAMPLES = 16
TYPICAL_EXTENT_TEMPERATURE = 0.5


def typical_extent(model: SketchRNN) -> float:
    """Median longer side of the bounding boxes of a few of the model's own sketches."""
    sketches = sample(model, TYPICAL_EXTENT_SAMPLES, temperature=TYPICAL_EXTENT_TEMPERATURE, seed=0)
    sides = []
    for s3 in sketches:
        if len(s3):
            lo_x, hi_x, lo_y, hi_y = strokes.bounds(s3)
            sides.append(max(hi_x - lo_x, hi_y - lo_y))
    return float(np.median(sides)) if sides else 0.0


def fit_to_model_size(model: SketchRNN, sketches: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Scale each stroke-3 sketch uniformly so its longer side is the model's
    :func:`typical_extent`: for drawing with a model trained on drawings of another size
    (e.g. a magenta.js model, in raw pixels, given a 0-255 simplified Quick, Draw! drawing)."""
    target = typical_extent(model)
    out = []
    for s3 in sketches:
        s3 = np.array(s3, dtype=np.float32, copy=True)
        lo_x, hi_x, lo_y, hi_y = strokes.bounds(s3)
        extent = max(hi_x - lo_x, hi_y - lo_y)
        if extent > 0 and target > 0:
            s3[:, 0:2] *= target / extent
        out.append(s3)
    return out
