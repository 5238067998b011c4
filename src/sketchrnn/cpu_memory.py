"""Keep the memory a training step frees for the next step, instead of handing it back to the
operating system and taking it again (glibc only), while the Trainer trains on the CPU.

Why: PyTorch's CPU tensors come from the C library's ``malloc``, and glibc serves every block
over 32 MiB with a fresh ``mmap`` and returns it with ``munmap`` when the tensor is freed. A
SketchRNN training step makes the same big tensors at every step (the input projections of
the encoder and the decoder, the dropout masks, the gradients of the outputs), so at every
step the kernel maps them again and zero-fills each 4 KiB page on first touch: at the magenta
size (batch 100, N_max 250) about 160,000 page faults a step, a tenth of its time in the
kernel (``perf stat``; ``docs/performance.md``). While :class:`FreedMemoryKept` is on, glibc
serves big blocks from its heap and keeps what is freed there (``mallopt``: no ``mmap`` for
big blocks, the top of the heap trimmed only above 2 GiB), so the next step reuses the pages.

The cost: while on, the process holds the memory of its largest step (measured 9% above the
peak without it at the small preset with a validation pass every 25 steps, steady from the
150th step to the 300th: the Trainer's batches all have one shape). Tensors of ever-changing
shapes would fragment the heap and grow it; that is why it is on only inside ``fit()``.
:meth:`FreedMemoryKept.stop` puts glibc's limits back and returns the kept memory
(``malloc_trim``). Never at import: a program that embeds the library keeps its defaults.

Written here rather than taken from a library: the allocators that cache (jemalloc, tcmalloc)
must be preloaded before the process starts, which a library cannot do for its user; PyTorch's
huge-page switch (``THP_MEM_ALLOC_ENABLE``) cut the faults 10x but moved their cost into the
kernel's zeroing of huge pages (the same CPU time a step, measured).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import platform
import threading

__all__ = ["FreedMemoryKept"]

# glibc's malloc.h: mallopt parameters and glibc's defaults for them.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_DEFAULT_TRIM_THRESHOLD = 128 * 1024
_DEFAULT_MMAP_MAX = 65536
# Free memory at the top of the heap goes back to the system only above this many bytes
# (mallopt takes an int: 2 GiB is the most it can be told).
_TRIM_ABOVE = 2**31 - 1

_lock = threading.Lock()
_users = 0  # FreedMemoryKept objects on (a Trainer inside another's fit: kept until both stop)


@functools.cache
def _libc():
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.mallopt.restype = ctypes.c_int
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.malloc_trim.restype = ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


class FreedMemoryKept:
    """glibc keeps freed big blocks for reuse between :meth:`start` and :meth:`stop` (see the
    module's docstring). ``start`` returns whether it is in effect: ``False`` where the C
    library is not glibc (macOS, Windows, musl) or refused a setting. Both may be called more
    than once; the settings are the process's, counted across objects."""

    def __init__(self) -> None:
        self.on = False

    def start(self) -> bool:
        global _users
        if self.on:
            return True
        libc = _libc()
        if libc is None:
            return False
        with _lock:
            if _users == 0:
                ok = libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_ABOVE) and libc.mallopt(_M_MMAP_MAX, 0)
                if not ok:
                    _restore(libc)
                    return False
            _users += 1
        self.on = True
        return True

    def stop(self) -> None:
        global _users
        if not self.on:
            return
        self.on = False
        libc = _libc()
        if libc is None:
            return
        with _lock:
            _users -= 1
            if _users == 0:
                _restore(libc)


def _restore(libc) -> None:
    """glibc's default limits back (the threshold then stays fixed instead of adapting), and
    the free memory at the heap's top returned to the system."""
    libc.mallopt(_M_MMAP_MAX, _DEFAULT_MMAP_MAX)
    libc.mallopt(_M_TRIM_THRESHOLD, _DEFAULT_TRIM_THRESHOLD)
    libc.malloc_trim(0)
