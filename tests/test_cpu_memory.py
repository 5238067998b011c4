"""sketchrnn.cpu_memory: while on, big blocks come from glibc's heap and stay there when freed
(to be reused without new page faults: benchmarks/roofline.py measures the gain); after stop,
glibc's defaults are back; the Trainer turns it on for fit() only."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest
from helpers import recording_trainer

from sketchrnn import cpu_memory

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)

# Where a 64 MiB tensor's memory comes from: glibc's count of bytes in blocks of their own
# mapping (mallinfo2().hblkhd) while the tensor lives, with the setting off, on, or on and then
# stopped again; and whether a freed one is kept in the heap (arena bytes after the free).
_SCRIPT = """
import ctypes, sys, torch
from sketchrnn.cpu_memory import FreedMemoryKept

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
kept, other = FreedMemoryKept(), FreedMemoryKept()
if sys.argv[1] in ("on", "stopped"):
    assert kept.start() and kept.start() and other.start()
    other.stop()  # still on: kept holds it
if sys.argv[1] == "stopped":
    kept.stop()
before = libc.mallinfo2()
t = torch.ones(16 * 2**20)  # 64 MiB
during = libc.mallinfo2()
del t
after = libc.mallinfo2()
print((during.hblkhd - before.hblkhd) >> 20, (after.arena - before.arena) >> 20)
"""


def _blocks(mode: str) -> tuple[int, int]:
    """MiB in mappings of their own while the tensor lives, MiB the heap keeps after it."""
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, mode], capture_output=True, text=True, check=True
    )
    mapped, kept = done.stdout.split()
    return int(mapped), int(kept)


def test_big_blocks_come_from_the_heap_and_stay_there_while_on():
    assert _blocks("default") == (64, 0)  # glibc's own: a mapping, unmapped when freed
    mapped, kept = _blocks("on")
    assert mapped == 0 and kept >= 64


def test_stop_puts_the_defaults_back():
    assert _blocks("stopped") == (64, 0)


def test_the_trainer_keeps_memory_only_while_fitting(monkeypatch):
    seen = []
    monkeypatch.setattr(cpu_memory.FreedMemoryKept, "start", lambda self: seen.append("start"))
    monkeypatch.setattr(cpu_memory.FreedMemoryKept, "stop", lambda self: seen.append("stop"))
    trainer = recording_trainer(monkeypatch, 2, lambda: seen.append("step"))
    trainer.fit()
    assert seen == ["start", "step", "step", "stop"]
