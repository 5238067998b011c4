"""Fused CPU kernels for the recurrent cells (a C++ extension compiled on first use).

(Over 500 lines: building and loading the extension and the sequence loops on it (the three
cells' and the encoder's pair), with their backward passes and the input terms they take
(projected or narrow), are one module's job. The extension it builds also carries the mixture
loss's kernel, ``csrc/mixture_kernels.cpp``, which :mod:`sketchrnn.nn.fused_mixture` wraps; if
more kernels join, building and loading the extension is the part to move into a module of
its own.)

``csrc/cell_kernels.cpp`` holds, per time step, one fused forward and one fused backward pass
over the elementwise part of a cell step (layer norm of each gate, sigmoid/tanh, recurrent
dropout, the cell update, the layer norm of ``c``; the HyperLSTM's weight modulation),
vectorised and parallel over the batch rows. On top of them each cell's whole time loop is one
autograd node (:class:`LSTMSequence`, :class:`LayerNormLSTMSequence`, both loops in C++;
:class:`HyperLSTMSequence`, its loop in Python without autograd bookkeeping): the backward is
a reversed loop of fused steps and ``dgates @ W`` products, and each recurrent weight's
gradient is ONE matmul over all steps. The per-step matmuls run on oneDNN with the weight
packed once per sequence (see ``_packed_weights``), the sequence buffers are reused from
one call to the next (:func:`empty_cache`), and the dropout masks of all steps are drawn at
once by a parallel counter-based generator seeded from torch's (:func:`dropout_masks`). With
exactly two torch threads, the plain and LayerNorm loops split a batch of 16 rows or more in
two halves, each half's whole time loop on one thread (rows are independent: no hand-over
between threads at any step; the weight gradients are summed after), and the encoder's two
directions run side by side the same way (:class:`LSTMSequencePair`). Narrow inputs (the
strokes' five columns) are not projected before the plain and LayerNorm loops: the row
kernels add ``x_t @ w_x.T`` and the per-row term themselves (:class:`NarrowInputs`).

What each piece gave, measured with benchmarks/train_throughput.py: ``docs/performance.md``.
Gradient checks and comparisons with the Python loops: tests/nn/test_fused_cells.py.

The extension is built with :func:`torch.utils.cpp_extension.load` (ninja and a C++ compiler)
the first time a cell needs it, once per process, and cached in PyTorch's extensions
directory (``TORCH_EXTENSIONS_DIR``, by default ``~/.cache/torch_extensions``), so later
processes load it in a fraction of a second. Where it cannot be built (no compiler, ...) or
where the environment sets ``SKETCHRNN_NO_EXTENSION=1``, :func:`available` is ``False``, one
warning says so, and the cells run their Python loops instead (same maths). The fused path
serves CPU tensors of float32 and float64 only; everything else takes the Python loops.
``SKETCHRNN_FUSED_MATMUL=aten`` keeps the matmuls on torch.mm.

The loop functions here mirror those of :mod:`sketchrnn.nn.cells` (same arguments, same
results up to float rounding; the plain and LayerNorm loops also take ``NarrowInputs`` in
place of ``x_proj``); the cells call them.
"""

from __future__ import annotations

import hashlib
import os
import platform
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from sketchrnn.nn.hyper_weights import HyperLSTMWeights

__all__ = [
    "available",
    "usable",
    "empty_cache",
    "lstm_loop",
    "bidirectional_lstm_loops",
    "layernorm_lstm_loop",
    "hyper_lstm_loop",
]

# The recurrent cells' kernels (which define the module) and the mixture loss's.
_SOURCES = tuple(
    Path(__file__).with_name("csrc") / name for name in ("cell_kernels.cpp", "mixture_kernels.cpp")
)
_FLAGS = ["-O3", "-ffast-math", "-march=native", "-fopenmp"]
_LDFLAGS = ["-fopenmp", "-lm"]
_EPS = 1e-5  # F.layer_norm's default
DISABLE_ENV = "SKETCHRNN_NO_EXTENSION"

_lock = threading.Lock()
_module = None
_failed: str | None = None  # why the build failed (then it is not tried again)
_warned_disabled = False


def _cpu_tag() -> str:
    """A short fingerprint of the CPU's instruction sets: the module is compiled with
    -march=native, so a build directory shared between different machines must not hand one
    machine's binary to another."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:
        flags = ""
    return hashlib.sha1((platform.machine() + flags).encode()).hexdigest()[:8]


def _extension_name() -> str:
    # The compiled module depends on the Python and PyTorch versions and the CPU: name it
    # after them, so that an upgrade builds a new one instead of loading a stale binary.
    # Also after the environment (its torch headers are in the build file): two virtual
    # environments sharing one build folder would rebuild it in turn, and a build killed
    # half-way leaves a lock the other one would wait on.
    version = torch.__version__.replace(".", "_").replace("+", "_")
    python = f"py{sys.version_info[0]}{sys.version_info[1]}"
    env = hashlib.sha1(sys.prefix.encode()).hexdigest()[:8]
    return f"sketchrnn_cell_kernels_{python}_torch{version}_{_cpu_tag()}_{env}"


def _build_directory(name: str) -> Path:
    from torch.utils.cpp_extension import get_default_build_root

    root = os.environ.get("TORCH_EXTENSIONS_DIR") or get_default_build_root()
    return Path(root) / name


# A build killed half-way (Ctrl-C, a timeout) leaves torch's lock file behind, and every later
# process would wait for it forever; a build takes about a minute, so an older lock is stale.
_STALE_LOCK_SECONDS = 600


def _sources_in(build_dir: Path) -> list[Path]:
    """The kernels' sources copied into the build folder (each replaced only when it
    changed), so that checkouts in other folders share one build instead of rebuilding it in
    turn (the build file records the sources' paths)."""
    copies = []
    for source in _SOURCES:
        copy = build_dir / source.name
        text = source.read_bytes()
        if not copy.exists() or copy.read_bytes() != text:
            copy.write_bytes(text)
        copies.append(copy)
    return copies


def _remove_stale_lock(build_dir: Path) -> None:
    lock = build_dir / "lock"
    try:
        age = time.time() - lock.stat().st_mtime
    except FileNotFoundError:
        return
    if age > _STALE_LOCK_SECONDS:
        print(
            f"sketchrnn: removing {lock}, left {age / 60:.0f} minutes ago by a build that was "
            "stopped half-way",
            file=sys.stderr,
            flush=True,
        )
        lock.unlink(missing_ok=True)


def _load():
    """The compiled module, building it first if needed; ``None`` where that fails."""
    global _module, _failed
    if _module is not None or _failed is not None:
        return _module
    with _lock:
        if _module is not None or _failed is not None:
            return _module
        try:
            from torch.utils.cpp_extension import load

            name = _extension_name()
            build_dir = _build_directory(name)
            build_dir.mkdir(parents=True, exist_ok=True)
            sources = _sources_in(build_dir)
            _remove_stale_lock(build_dir)
            built = build_dir / f"{name}.so"
            newest = max(source.stat().st_mtime for source in sources)
            if not built.exists() or built.stat().st_mtime < newest:
                print(
                    f"sketchrnn: compiling the fused cell kernels into {build_dir} "
                    "(once, about a minute)...",
                    file=sys.stderr,
                    flush=True,
                )
            _module = load(
                name=name,
                sources=[str(source) for source in sources],
                extra_cflags=_FLAGS,
                extra_ldflags=_LDFLAGS,
                build_directory=str(build_dir),
                verbose=False,
            )
        except Exception as error:  # no compiler, no ninja, a compile error, ...
            reason = str(error).strip().splitlines()
            _failed = f"{type(error).__name__}: {reason[-1] if reason else ''}"
            warnings.warn(
                f"sketchrnn: the fused cell kernels could not be built ({_failed}); the "
                "recurrent cells fall back to their (slower) Python loops",
                RuntimeWarning,
                stacklevel=3,
            )
    return _module


def available() -> bool:
    """Whether the fused kernels can be used in this process (builds them on first call).

    ``False`` where ``SKETCHRNN_NO_EXTENSION=1`` is set (checked at every call) or where the
    build failed; either way one warning says so, once per process."""
    global _warned_disabled
    if os.environ.get(DISABLE_ENV, "") not in ("", "0"):
        if not _warned_disabled:
            _warned_disabled = True
            warnings.warn(
                f"sketchrnn: {DISABLE_ENV} is set; the recurrent cells use their Python loops",
                RuntimeWarning,
                stacklevel=2,
            )
        return False
    return _load() is not None


def usable(*tensors: Tensor | None) -> bool:
    """Whether the fused path serves these tensors: all on the CPU, all float32 or all
    float64 (``None`` entries are skipped), and the extension available."""
    dtype = None
    for t in tensors:
        if t is None:
            continue
        if t.device.type != "cpu" or t.dtype not in (torch.float32, torch.float64):
            return False
        if dtype is None:
            dtype = t.dtype
        elif t.dtype != dtype:
            return False
    return available()


def empty_cache() -> None:
    """Free the sequence buffers that the fused loops keep for reuse.

    The saved activations and input gradient of a sequence (hundreds of MB at batch 100, T 250,
    hidden 512) are kept once released and handed out again to the next sequence of the same
    size, which saves the kernel's zero-filling of fresh pages (about 15% of a training step).
    Call this to return that memory after training."""
    if _module is not None:
        _module.release_workspace()


def dropout_masks(p: float, shape: tuple[int, ...], like: Tensor) -> Tensor:
    """Recurrent-dropout masks ``(steps, batch, width)``: ``1 / (1 - p)`` with probability
    ``1 - p``, else 0, drawn in parallel by the extension from a seed that torch's default
    generator gives (so ``torch.manual_seed`` fixes them). 20x faster than ``bernoulli_``."""
    seed = int(torch.randint(-(2**63), 2**63 - 1, (1,), dtype=torch.int64).item())
    return _ext().dropout_masks(list(shape), float(p), seed, like)


def _ext():
    module = _load()
    if module is None:
        raise RuntimeError(f"the fused cell kernels are not available ({_failed})")
    return module


# ----------------------------------------------------------------------------- matmuls
# The recurrent matmuls of the sequence loops, (B, H) @ (H, 4H) forward and (B, 4H) @ (4H, H)
# backward at every step, are most of a step's time. oneDNN's float32 GEMM with the weight
# packed once per sequence runs them about 2.5x faster than torch.mm (MKL) here, at float32
# accuracy (docs/performance.md). It is reached through the operators that PyTorch's inductor
# uses (torch.ops.mkldnn._reorder_linear_weight / _linear_pointwise); where they are missing or
# fail a probe, the loops use torch.mm.
ONEDNN_ENV = "SKETCHRNN_FUSED_MATMUL"  # "aten" forces torch.mm
_onednn_state: bool | None = None


def _onednn_ok() -> bool:
    global _onednn_state
    if os.environ.get(ONEDNN_ENV, "") == "aten":
        return False
    if _onednn_state is None:
        _onednn_state = False
        try:
            ops = torch.ops.mkldnn
            if torch.backends.mkldnn.is_available():
                gen = torch.Generator().manual_seed(0)
                w = torch.randn(96, 40, generator=gen)
                x = torch.randn(7, 40, generator=gen)
                packed = ops._reorder_linear_weight(w, 7)
                y = ops._linear_pointwise(x, packed, None, "none", [], "")
                ref = x.double() @ w.double().t()
                error = float((y.double() - ref).abs().max() / ref.abs().max())
                # The C++ loops call the same operator through the dispatcher, with the
                # signature of this PyTorch's (cell_kernels.cpp, packed_linear).
                from_loops = _ext().packed_linear(x, packed)
                _onednn_state = y.shape == ref.shape and error < 1e-5 and torch.equal(from_loops, y)
        except Exception:  # operator missing or unsupported here
            _onednn_state = False
    return _onednn_state


# Packing a (2048, 512) weight takes about as long as two products with it: below this many
# steps (generation runs one at a time) the loops keep torch.mm.
_MIN_PACKED_STEPS = 8
_MIN_PACKED_ROWS = 1024  # the same for the input projection (rows = steps x batch)


def _packed_weights(w_hh: Tensor, batch: int, steps: int) -> tuple[Tensor | None, Tensor | None]:
    """``w_hh`` packed for oneDNN's ``h @ w_hh.T`` (forward) and ``d @ w_hh`` (backward), as
    the C++ loops take them, or ``(None, None)`` for torch.mm."""
    if w_hh.dtype != torch.float32 or steps < _MIN_PACKED_STEPS or not _onednn_ok():
        return None, None
    ops = torch.ops.mkldnn
    w = w_hh.detach()
    packed_f = ops._reorder_linear_weight(w, batch)
    packed_b = ops._reorder_linear_weight(w.t().contiguous(), batch)
    return packed_f, packed_b


class _OneDNNLinear(torch.autograd.Function):
    """``x @ w.T (+ b) (+ add)`` with oneDNN for the product and the input gradient (the
    weight gradient, a product over all rows, stays torch.mm's). ``add`` broadcasts against
    the result (a decoder's per-sketch term ``(batch, n)`` for ``x`` ``(time, batch, k)``)
    and is added in place, inside: no second result-sized buffer."""

    @staticmethod
    def forward(ctx, x, w, b, add):
        ops = torch.ops.mkldnn
        rows = x.numel() // x.size(-1)
        packed = ops._reorder_linear_weight(w, rows)
        ctx.save_for_backward(x, w)
        ctx.has_bias = b is not None
        ctx.add_shape = None if add is None else add.shape
        out = ops._linear_pointwise(x, packed, b, "none", [], "")
        return out if add is None else out.add_(add)

    @staticmethod
    @once_differentiable
    def backward(ctx, dy):
        x, w = ctx.saved_tensors
        ops = torch.ops.mkldnn
        dy2 = dy.reshape(-1, dy.size(-1))
        dx = dw = db = d_add = None
        if ctx.needs_input_grad[0]:
            packed = ops._reorder_linear_weight(w.t(), dy2.size(0))
            dx = ops._linear_pointwise(dy2, packed, None, "none", [], "").view(x.shape)
        if ctx.needs_input_grad[1]:
            dw = weight_grad(dy2, x.reshape(-1, x.size(-1)))
        if ctx.has_bias and ctx.needs_input_grad[2]:
            db = dy2.sum(0)
        if ctx.add_shape is not None and ctx.needs_input_grad[3]:
            d_add = dy.sum_to_size(ctx.add_shape)
        return dx, dw, db, d_add


def weight_grad(d: Tensor, x: Tensor) -> Tensor:
    """``d.T @ x`` for ``d`` ``(rows, n)`` and ``x`` ``(rows, k)``: a linear layer's weight
    gradient over all rows. For a narrow input (``4k <= n``: the decoder's input projection,
    k = 5 + z) MKL runs ``(x.T @ d).T`` 1.35-1.45x faster (k = 69..133 here; 16-19x at k = 5),
    the same numbers to rounding; for wider inputs both take the same time."""
    if 4 * x.size(1) <= d.size(1):
        return (x.t() @ d).t().contiguous()
    return d.t() @ x


def linear(x: Tensor, w: Tensor, b: Tensor | None = None, add: Tensor | None = None) -> Tensor:
    """``F.linear(x, w, b) + add`` (``x`` of any leading shape, ``add`` broadcasting against
    the result, added in place), on oneDNN for float32 CPU tensors where it passed its probe
    (2.6x faster input gradient, 1.5x faster product here) and there are enough rows to pay
    for packing the weight."""
    rows = x.numel() // max(x.size(-1), 1)
    if (
        x.dtype == torch.float32
        and rows >= _MIN_PACKED_ROWS
        and usable(x, w, b, add)
        and _onednn_ok()
    ):
        return _OneDNNLinear.apply(x.contiguous(), w, b, add)
    out = torch.nn.functional.linear(x, w, b)
    return out if add is None else out.add_(add)


# ----------------------------------------------------------------------------- inputs
# Inputs this narrow (the strokes' five columns, a decoder's per-sketch part aside) are not
# projected before the loop: the row kernels add x_t @ w_x.T (K multiply-adds an entry) and
# the per-row term to each step's recurrent product themselves. A (T, B, 4H) projection is
# 100-200 MB at batch 100, N_max 250: writing it and reading it back at every step was
# memory traffic of its own (docs/performance.md).
NARROW_INPUTS_MAX = 8


class NarrowInputs(NamedTuple):
    """A sequence's input term ``x_t @ w_x.T + row`` for the loops' row kernels to take:
    ``x`` ``(T, B, K)`` time-major with ``K <= NARROW_INPUTS_MAX``, ``w_x`` ``(4H, K)``,
    ``row`` ``(B, 4H)``, the term the same at every step (the bias, a decoder's per-sketch
    projection), or None."""

    x: Tensor
    w_x: Tensor
    row: Tensor | None


def _input_term(inputs: Tensor | NarrowInputs) -> tuple[Tensor | None, ...]:
    """``(x_proj, x_in, w_x, row)`` as the autograd functions take them."""
    if isinstance(inputs, NarrowInputs):
        return (None, *inputs)
    return (inputs, None, None, None)


def _steps(x_proj: Tensor | None, x_in: Tensor | None) -> int:
    term = x_proj if x_proj is not None else x_in
    assert term is not None, "x_proj or x_in is needed"
    return term.size(0)


def _input_grads(needs: tuple[bool, ...], dx: Tensor, d_row, d_w, x_proj, x_in, w_x) -> tuple:
    """The gradients of ``(x_proj, x_in, w_x, row)`` from the loop's ``dx`` ``(T, B, 4H)``,
    the gradient of each step's input term; ``d_row`` (its sum over the steps) and ``d_w``
    (w_x's) as the loop summed them, None where not needed (``_loop_sums``); ``needs`` their
    ``needs_input_grad``."""
    if x_proj is not None:
        return (dx if needs[0] else None), None, None, None
    d_x = (dx.reshape(-1, dx.size(-1)) @ w_x).view(x_in.shape) if needs[1] else None
    return None, d_x, d_w, d_row


def _loop_sums(needs: tuple[bool, ...], x_in: Tensor | None) -> tuple[bool, Tensor | None]:
    """What a backward loop sums for narrow inputs: the per-row term's gradient (flag) and
    w_x's (given x_in), each where it is needed."""
    return bool(needs[3]), (x_in if needs[2] else None)


# ----------------------------------------------------------------------------- autograd


class LSTMSequence(torch.autograd.Function):
    """The whole plain-LSTM loop: ``(x_proj (T, B, 4H) incl. bias, or None, x_in, w_x, row
    (NarrowInputs) or None, h0, c0, w_hh (4H, H), masks (T, B, H) or None) -> (h_all,
    c_all)``, each ``(T, B, H)``."""

    @staticmethod
    def forward(ctx, x_proj, x_in, w_x, row, h0, c0, w_hh, masks):
        packed_f, ctx.packed_b = _packed_weights(w_hh, h0.size(0), _steps(x_proj, x_in))
        h_all, c_all, act, tc = _ext().lstm_seq_forward(
            x_proj, h0, c0, w_hh, masks, packed_f, x_in, w_x, row
        )
        ctx.save_for_backward(h0, c0, w_hh, masks, h_all, c_all, act, tc, x_proj, x_in, w_x)
        ctx.set_materialize_grads(False)
        return h_all, c_all

    @staticmethod
    @once_differentiable
    def backward(ctx, dh_all, dc_all):
        h0, c0, w_hh, masks, h_all, c_all, act, tc, x_proj, x_in, w_x = ctx.saved_tensors
        needs = ctx.needs_input_grad[:4]
        dx, dh0, dc0, dw, d_row, d_w = _ext().lstm_seq_backward(
            dh_all, dc_all, h0, c0, w_hh, masks, h_all, c_all, act, tc, ctx.packed_b,
            *_loop_sums(needs, x_in),
        )  # fmt: skip
        inputs = _input_grads(needs, dx, d_row, d_w, x_proj, x_in, w_x)
        return *inputs, dh0, dc0, dw, None


class LSTMSequencePair(torch.autograd.Function):
    """Two independent plain-LSTM loops from zero states, without dropout (the two directions
    of a bidirectional encoder): ``(w_hh_a, w_hh_b, then each one's x_proj, x_in, w_x, row as
    LSTMSequence's) -> (h_all_a, h_all_b)``. Forward and backward run the two side by side,
    one thread each, where torch has exactly two threads (C++ ``side_by_side``); one after
    the other otherwise."""

    @staticmethod
    def forward(ctx, w_hh_a, w_hh_b, *terms):
        weights = (w_hh_a, w_hh_b)
        a, b = terms[:4], terms[4:]
        batch = (a[0] if a[0] is not None else a[1]).size(1)
        packed = [
            _packed_weights(w, batch, _steps(t[0], t[1]))
            for w, t in zip(weights, (a, b), strict=True)
        ]
        outs = _ext().lstm_seq_forward_many(
            [a[0], b[0]], list(weights), [p for p, _ in packed], [a[1], b[1]], [a[2], b[2]],
            [a[3], b[3]],
        )  # fmt: skip
        ctx.packed_b = [p for _, p in packed]
        ctx.save_for_backward(w_hh_a, w_hh_b, *outs, *a[:3], *b[:3])
        ctx.set_materialize_grads(False)
        return outs[0], outs[4]

    @staticmethod
    @once_differentiable
    def backward(ctx, dh_a, dh_b):
        w_hh_a, w_hh_b, *saved = ctx.saved_tensors
        saved, inputs_a, inputs_b = saved[:8], saved[8:11], saved[11:]
        dh = [
            d if d is not None else torch.zeros_like(h)
            for d, h in ((dh_a, saved[0]), (dh_b, saved[4]))
        ]
        needs = ctx.needs_input_grad
        sums = [_loop_sums(needs[2:6], inputs_a[1]), _loop_sums(needs[6:10], inputs_b[1])]
        out = _ext().lstm_seq_backward_many(
            dh, saved, [w_hh_a, w_hh_b], ctx.packed_b, [s[0] for s in sums], [s[1] for s in sums]
        )
        (dx_a, dw_a, d_row_a, d_w_a), (dx_b, dw_b, d_row_b, d_w_b) = out[:4], out[4:]
        return (
            dw_a,
            dw_b,
            *_input_grads(needs[2:6], dx_a, d_row_a, d_w_a, *inputs_a),
            *_input_grads(needs[6:10], dx_b, d_row_b, d_w_b, *inputs_b),
        )


class LayerNormLSTMSequence(torch.autograd.Function):
    """The whole LayerNorm-LSTM loop: ``(x_proj, x_in, w_x, row as LSTMSequence's, h0, c0,
    w_hh, gate_gamma, gate_beta, cell_gamma, cell_beta, masks or None) -> (h_all, c_all)``."""

    @staticmethod
    def forward(
        ctx, x_proj, x_in, w_x, row, h0, c0, w_hh, gate_gamma, gate_beta, cell_gamma, cell_beta,
        masks,
    ):  # fmt: skip
        packed_f, ctx.packed_b = _packed_weights(w_hh, h0.size(0), _steps(x_proj, x_in))
        outs = _ext().ln_lstm_seq_forward(
            x_proj, h0, c0, w_hh, gate_gamma, gate_beta, cell_gamma, cell_beta, masks, _EPS,
            packed_f, x_in, w_x, row,
        )  # fmt: skip
        h_all, c_all = outs[0], outs[1]
        ctx.save_for_backward(h0, c0, w_hh, gate_gamma, cell_gamma, masks, x_proj, x_in, w_x, *outs)
        ctx.set_materialize_grads(False)
        return h_all, c_all

    @staticmethod
    @once_differentiable
    def backward(ctx, dh_all, dc_all):
        h0, c0, w_hh, gate_gamma, cell_gamma, masks, x_proj, x_in, w_x, *outs = ctx.saved_tensors
        needs = ctx.needs_input_grad[:4]
        dx, dh0, dc0, dw, dgg, dgb, dcg, dcb, d_row, d_w = _ext().ln_lstm_seq_backward(
            dh_all, dc_all, h0, c0, w_hh, gate_gamma, cell_gamma, masks, *outs, ctx.packed_b,
            *_loop_sums(needs, x_in),
        )  # fmt: skip
        inputs = _input_grads(needs, dx, d_row, d_w, x_proj, x_in, w_x)
        return *inputs, dh0, dc0, dw, dgg, dgb, dcg, dcb, None


# ----------------------------------------------------------------------------- the loops
# Same arguments and results as cells._lstm_loop, _layernorm_lstm_loop, _hyper_lstm_loop.


def lstm_loop(
    x_proj: Tensor | NarrowInputs, h: Tensor, c: Tensor, w_hh: Tensor, masks: Tensor | None
) -> tuple[Tensor, Tensor, Tensor]:
    h_all, c_all = LSTMSequence.apply(*_input_term(x_proj), h, c, w_hh, masks)
    return h_all, h_all[-1], c_all[-1]


def bidirectional_lstm_loops(
    x_proj_forward: Tensor | NarrowInputs,
    x_proj_backward: Tensor | NarrowInputs,
    w_hh_forward: Tensor,
    w_hh_backward: Tensor,
) -> tuple[Tensor, Tensor]:
    """Both directions of a bidirectional LSTM from zero states, without dropout: each
    direction's input projection ``(T, B, 4H)`` (bias included; the backward direction's
    already reversed) or narrow inputs, and recurrent weight -> each direction's ``h_all``
    ``(T, B, H)``."""
    return LSTMSequencePair.apply(
        w_hh_forward, w_hh_backward, *_input_term(x_proj_forward), *_input_term(x_proj_backward)
    )


def layernorm_lstm_loop(
    x_proj: Tensor | NarrowInputs,
    h: Tensor,
    c: Tensor,
    w_hh: Tensor,
    gate_gamma: Tensor,
    gate_beta: Tensor,
    cell_gamma: Tensor,
    cell_beta: Tensor,
    masks: Tensor | None,
) -> tuple[Tensor, Tensor, Tensor]:
    h_all, c_all = LayerNormLSTMSequence.apply(
        *_input_term(x_proj), h, c, w_hh, gate_gamma, gate_beta, cell_gamma, cell_beta, masks
    )
    return h_all, h_all[-1], c_all[-1]


class _Matmul:
    """``x @ w.T`` (forward) and ``d @ w`` (backward) for one weight over a sequence: oneDNN
    with the weight packed once where it serves (float32), else torch.mm."""

    def __init__(self, w: Tensor, batch: int, steps: int):
        self.w = w
        self.packed_f, self.packed_b = _packed_weights(w, batch, steps)

    def fwd(self, x: Tensor) -> Tensor:
        if self.packed_f is None:
            return x @ self.w.t()
        return torch.ops.mkldnn._linear_pointwise(x, self.packed_f, None, "none", [], "")

    def bwd(self, d: Tensor) -> Tensor:
        if self.packed_b is None:
            return d @ self.w
        return torch.ops.mkldnn._linear_pointwise(d, self.packed_b, None, "none", [], "")


def _add(a: Tensor | None, b: Tensor | None) -> Tensor | None:
    if a is None:
        return b
    if b is None:
        return a
    return a + b


class HyperLSTMSequence(torch.autograd.Function):
    """The whole HyperLSTM loop as one autograd node: ``(x_proj, h0, c0, hyper_h0, hyper_c0,
    masks, hyper_masks, *weights)`` with ``weights`` the fields of :class:`HyperLSTMWeights`
    (see :func:`hyper_lstm_loop`). Per step the fused LayerNorm-LSTM kernels for the hyper and
    the main cell and the weight modulation in plain torch ops without autograd bookkeeping;
    the weight gradients of the recurrent, hyper-recurrent and embedding matmuls are one
    product each over all steps. Returns ``h_all, c_T, hyper_h_T, hyper_c_T``."""

    @staticmethod
    def forward(ctx, x_proj, h0, c0, hh0, hc0, masks, hyper_masks, *weights):
        w = HyperLSTMWeights(*weights)
        hyper_norms = (w.hyper_gate_gamma, w.hyper_gate_beta, w.hyper_cell_gamma, w.hyper_cell_beta)
        norms = (w.gate_gamma, w.gate_beta, w.cell_gamma, w.cell_beta)
        scale_weight = w.scale_weight
        ext = _ext()
        steps, batch = x_proj.size(0), h0.size(0)
        hidden, hyper_hidden = h0.size(1), hh0.size(1)
        n_vectors, embed = scale_weight.size(0), scale_weight.size(1)
        width = 4 * hidden
        mm_all = _Matmul(w.w_h_all, batch, steps)
        mm_hyper = _Matmul(w.hyper_w_hh, batch, steps)
        mm_embed = _Matmul(w.embed_weight, batch, steps)
        bias = w.bias.contiguous()
        x_proj = x_proj.contiguous()
        h0, c0, hh0, hc0 = (t.contiguous() for t in (h0, c0, hh0, hc0))

        def new(*shape):
            return ext.workspace_empty(list(shape), x_proj)

        h_all, c_all = new(steps, batch, hidden), new(steps, batch, hidden)
        hh_all, hc_all = new(steps, batch, hyper_hidden), new(steps, batch, hyper_hidden)
        hm_all = new(steps, batch, w.w_h_all.size(0))  # h_{t-1} @ w_h_all.T
        z_all = new(steps, batch, n_vectors * embed)
        d_all = new(steps, n_vectors, batch, hidden)  # kept: recomputing costs 5% of a step
        # What the backward needs of the two cells' steps: xh, act (4 widths), xc, ty, stats.
        saved_main = [new(steps, batch, k * hidden) for k in (4, 4, 1, 1)]
        saved_main.append(new(steps, batch, 5))
        saved_hyper = [new(steps, batch, k * hyper_hidden) for k in (4, 4, 1, 1)]
        saved_hyper.append(new(steps, batch, 5))
        h, hyper_h = h0, hh0
        for t in range(steps):
            hm = mm_all.fwd(h)
            hm_all[t] = hm
            hyper_pre = mm_hyper.fwd(hyper_h).add_(x_proj[t, :, width:]).add_(hm[:, width:])
            mask = None if hyper_masks is None else hyper_masks[t]
            hyper_h, hyper_c = hh_all[t], hc_all[t]
            ext.ln_lstm_step_forward_out(
                hyper_pre, hc_all[t - 1] if t else hc0, *hyper_norms, mask, _EPS,
                hyper_h, hyper_c, *(buffer[t] for buffer in saved_hyper),
            )  # fmt: skip
            z = torch.add(mm_embed.fwd(hyper_h), w.embed_bias, out=z_all[t])
            d = torch.bmm(
                z.view(batch, n_vectors, embed).transpose(0, 1), scale_weight, out=d_all[t]
            )
            pre = ext.hyper_modulate_forward(x_proj[t, :, :width], hm[:, :width], d, bias)
            mask = None if masks is None else masks[t]
            h, c = h_all[t], c_all[t]
            ext.ln_lstm_step_forward_out(
                pre, c_all[t - 1] if t else c0, *norms, mask, _EPS,
                h, c, *(buffer[t] for buffer in saved_main),
            )  # fmt: skip
        ctx.saved_main, ctx.saved_hyper = saved_main, saved_hyper
        ctx.mms = (mm_all, mm_hyper, mm_embed)
        ctx.save_for_backward(
            x_proj, h0, c0, hh0, hc0, h_all, c_all, hh_all, hc_all, hm_all, z_all, d_all,
            scale_weight, w.hyper_gate_gamma, w.hyper_cell_gamma, w.gate_gamma, w.cell_gamma,
            masks, hyper_masks,
        )  # fmt: skip
        ctx.set_materialize_grads(False)
        return h_all, c_all[-1].clone(), hh_all[-1].clone(), hc_all[-1].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, dh_all, dc_T, dhh_T, dhc_T):
        ext = _ext()
        (
            x_proj, h0, c0, hh0, hc0, h_all, c_all, hh_all, hc_all, hm_all, z_all, d_all,
            scale_weight, hgg, hcg, gg, cg, masks, hyper_masks,
        ) = ctx.saved_tensors  # fmt: skip
        mm_all, mm_hyper, mm_embed = ctx.mms
        steps, batch, hidden = h_all.shape
        hyper_hidden = hh_all.size(2)
        n_vectors, embed = scale_weight.size(0), scale_weight.size(1)
        width = 4 * hidden
        dx = ext.workspace_empty(list(x_proj.shape), x_proj)  # its hyper part: d hyper_pre
        dhm = ext.workspace_empty(list(hm_all.shape), x_proj)  # d (h_{t-1} @ w_h_all.T)
        dz_all = ext.workspace_empty(list(z_all.shape), x_proj)
        d_scale = torch.zeros_like(scale_weight)
        d_bias = x_proj.new_zeros(4 * hidden)
        grads = {}  # the norm parameters' gradients, summed over the steps

        def accumulate(prefix, values):
            for name, value in zip(("gg", "gb", "cg", "cb"), values, strict=True):
                key = prefix + name
                grads[key] = value if key not in grads else grads[key].add_(value)

        dh, dc, dhh, dhc = None, dc_T, dhh_T, dhc_T
        for t in range(steps - 1, -1, -1):
            dh = _add(None if dh_all is None else dh_all[t], dh)
            c_prev = c0 if t == 0 else c_all[t - 1]
            mask = None if masks is None else masks[t]
            d_pre, dc, *d_norm = ext.ln_lstm_step_backward(
                dh, dc, *(buffer[t] for buffer in ctx.saved_main), c_prev, mask, gg, cg
            )
            accumulate("", d_norm)
            z = z_all[t].view(batch, n_vectors, embed).transpose(0, 1)
            d = d_all[t]
            dd = ext.hyper_modulate_backward(
                d_pre, x_proj[t, :, :width], hm_all[t, :, :width], d, dx[t, :, :width],
                dhm[t, :, :width],
            )  # fmt: skip
            d_bias += d_pre.sum(0)
            d_scale.baddbmm_(z.transpose(1, 2), dd)
            dz = torch.bmm(dd, scale_weight.transpose(1, 2)).transpose(0, 1)
            dz_all[t] = dz.reshape(batch, n_vectors * embed)
            dhh = _add(mm_embed.bwd(dz_all[t]), dhh)
            hc_prev = hc0 if t == 0 else hc_all[t - 1]
            mask = None if hyper_masks is None else hyper_masks[t]
            d_hpre, dhc, *d_norm = ext.ln_lstm_step_backward(
                dhh, dhc, *(buffer[t] for buffer in ctx.saved_hyper), hc_prev, mask, hgg, hcg
            )
            accumulate("h", d_norm)
            dx[t, :, width:] = d_hpre
            dhm[t, :, width:] = d_hpre
            dhh = mm_hyper.bwd(d_hpre)
            dh = mm_all.bwd(dhm[t])
        if dc is None:
            dc = torch.zeros_like(c0)
        if dhc is None:
            dhc = torch.zeros_like(hc0)

        def weight_grad(d_out: Tensor, first: Tensor, inputs: Tensor) -> Tensor:
            """sum_t d_out[t].T @ input_{t-1}, with input_{-1} = first."""
            grad = d_out[0].t() @ first
            if steps > 1:
                rows = (steps - 1) * batch
                grad.addmm_(
                    d_out[1:].reshape(rows, -1).t(), inputs[:-1].reshape(rows, inputs.size(2))
                )
            return grad

        d_w_h_all = weight_grad(dhm, h0, h_all)
        d_hyper_w_hh = weight_grad(dx[:, :, width:], hh0, hh_all)
        flat_dz = dz_all.view(steps * batch, -1)
        d_embed_weight = flat_dz.t() @ hh_all.view(steps * batch, hyper_hidden)
        d_embed_bias = flat_dz.sum(0)
        d_weights = HyperLSTMWeights(
            w_h_all=d_w_h_all,
            hyper_w_hh=d_hyper_w_hh,
            hyper_gate_gamma=grads["hgg"],
            hyper_gate_beta=grads["hgb"],
            hyper_cell_gamma=grads["hcg"],
            hyper_cell_beta=grads["hcb"],
            embed_weight=d_embed_weight,
            embed_bias=d_embed_bias,
            scale_weight=d_scale,
            bias=d_bias,
            gate_gamma=grads["gg"],
            gate_beta=grads["gb"],
            cell_gamma=grads["cg"],
            cell_beta=grads["cb"],
        )
        return (dx, dh, dc, dhh, dhc, None, None, *d_weights)


def hyper_lstm_loop(
    x_proj: Tensor,
    h: Tensor,
    c: Tensor,
    hyper_h: Tensor,
    hyper_c: Tensor,
    weights: HyperLSTMWeights,
    masks: Tensor | None,
    hyper_masks: Tensor | None,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    h_all, c, hyper_h, hyper_c = HyperLSTMSequence.apply(
        x_proj, h, c, hyper_h, hyper_c, masks, hyper_masks, *weights
    )
    return h_all, h_all[-1], c, hyper_h, hyper_c
