"""How many threads torch uses on the CPU while training, where OpenMP threads spin-wait: as
many as there are cores free, checked again as training goes.

Why: PyTorch starts one OpenMP thread per core and every small kernel of a recurrent step is
a parallel region whose threads wait for each other at its end. When another process holds a
core, the thread on that core is descheduled for a scheduler time slice while its partner
spins on the other core, keeping it from running there: a training step on 2 threads beside
one busy process took 25-31 s here where one thread took 4.8 s (``benchmarks/busy_machine.py``,
``docs/performance.md``).

Two remedies, measured there. Threads that sleep while they wait (``OMP_WAIT_POLICY=PASSIVE``)
leave the core to their descheduled partner: that alone brings a step beside a hog back to
the best thread count's time, without changing the arithmetic (the thread count, hence the
bits of the result, does not depend on the load). ``import sketchrnn`` sets it when torch is
not loaded yet and the user did not choose (``sketchrnn/__init__.py``; the CLI always gets
it). Where the threads spin anyway (torch imported before sketchrnn, or ``GOMP_SPINCOUNT``
set), :class:`ThreadGovernor` lowers the thread count to the free cores instead.

:class:`ThreadGovernor` reads how busy the cores this process may run on are
(``/proc/stat``, minus this process's own CPU time, so that the training itself does not count)
before training and then every few seconds, and sets ``torch.set_num_threads`` to the cores
that are free: a core counts as free when others use less than half of it. It only ever
lowers the thread count below the one found at the start (torch's default, or what the
program set), and puts that back at the end. It stays off where the threads wait passively,
where ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` is set (the user chose) and where
``/proc/stat`` cannot be read (not Linux). A changing thread count changes float rounding:
runs that must match bit for bit (a resume against an unbroken run) need the passive wait or
a fixed ``OMP_NUM_THREADS``. Written here rather than taken from a library: the libraries that
read the load (psutil) report the whole machine's, this process included, which is the part
to leave out.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = ["ThreadGovernor", "free_cores", "passive_wait", "CHOSEN_BY_USER"]

#: Environment variables through which a user fixes the thread count (the governor stays off).
CHOSEN_BY_USER = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")

# A core counts as free when other processes use less than this part of it.
_FREE_BELOW = 0.5
_STAT = Path("/proc/stat")


def _cores() -> list[int]:
    """The CPUs this process may run on."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def _quota() -> float | None:
    """The cgroup v2 CPU quota in cores (a container limited to 1.5 cores: 1.5), if any."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    return int(quota) / int(period)


@dataclass
class _Sample:
    """Busy and total time of the given CPUs (clock ticks) and this process's CPU time."""

    busy: int
    total: int
    own: float
    wall: float

    @classmethod
    def now(cls, cores: list[int]) -> _Sample:
        wanted = {f"cpu{c}" for c in cores}
        busy = total = 0
        with _STAT.open() as f:
            for line in f:
                name, *fields = line.split()
                if name not in wanted:
                    continue
                # user nice system idle iowait irq softirq steal (guest time is inside user)
                values = [int(v) for v in fields[:8]]
                idle = values[3] + (values[4] if len(values) > 4 else 0)
                busy += sum(values) - idle
                total += sum(values)
        return cls(busy, total, time.process_time(), time.monotonic())

    def others_since(self, earlier: _Sample, n_cores: int) -> float:
        """Cores kept busy by other processes between ``earlier`` and this sample."""
        ticks = self.total - earlier.total
        wall = self.wall - earlier.wall
        if ticks <= 0 or wall <= 0:
            return 0.0
        busy_cores = (self.busy - earlier.busy) / ticks * n_cores
        own_cores = (self.own - earlier.own) / wall
        return max(0.0, busy_cores - own_cores)


def passive_wait() -> bool:
    """Whether OpenMP threads wait passively here (``OMP_WAIT_POLICY=PASSIVE``, as
    ``import sketchrnn`` sets it before torch loads; libgomp reads it then)."""
    return os.environ.get("OMP_WAIT_POLICY", "").strip().upper() == "PASSIVE"


def _governable() -> bool:
    if passive_wait() or any(os.environ.get(name, "").strip() for name in CHOSEN_BY_USER):
        return False
    try:
        _Sample.now(_cores()[:1])
    except (OSError, ValueError, IndexError):
        return False
    return True


def free_cores(seconds: float = 0.2) -> float:
    """How many of this process's cores other processes left free over the next
    ``seconds`` (this process's own use does not count). ``nan`` where ``/proc/stat``
    cannot be read."""
    cores = _cores()
    try:
        first = _Sample.now(cores)
        time.sleep(seconds)
        others = _Sample.now(cores).others_since(first, len(cores))
    except (OSError, ValueError):
        return math.nan
    return _available(cores) - others


def _available(cores: list[int]) -> float:
    quota = _quota()
    return float(len(cores)) if quota is None else min(float(len(cores)), quota)


class ThreadGovernor:
    """Sets torch's thread count to the free cores: :meth:`start` before training (a short
    sample), :meth:`tick` after each step (acts every ``period`` seconds, on the load since
    the last time), :meth:`stop` at the end (the thread count of the start comes back).
    ``history`` holds ``(seconds since start, threads)`` of each change."""

    def __init__(self, period: float = 3.0, first_sample: float = 0.2):
        self.period = period
        self.first_sample = first_sample
        self.enabled = _governable()
        self.history: list[tuple[float, int]] = []
        self._cores = _cores()
        self._initial = self._ceiling = torch.get_num_threads()
        self._last: _Sample | None = None
        self._t0 = time.monotonic()

    def start(self) -> None:
        self._initial = torch.get_num_threads()
        self._ceiling = max(1, min(self._initial, math.floor(_available(self._cores))))
        self._t0 = time.monotonic()
        if not self.enabled:
            return
        self._last = _Sample.now(self._cores)
        time.sleep(self.first_sample)
        self._update()

    def tick(self) -> None:
        if self._last is not None and time.monotonic() - self._last.wall >= self.period:
            self._update()

    def stop(self) -> None:
        if self._last is not None and torch.get_num_threads() != self._initial:
            torch.set_num_threads(self._initial)
        self._last = None

    def threads_for(self, others: float) -> int:
        """The thread count for ``others`` cores busy with other processes."""
        free = _available(self._cores) - others
        return max(1, min(self._ceiling, math.floor(free + _FREE_BELOW)))

    def _update(self) -> None:
        assert self._last is not None
        try:
            now = _Sample.now(self._cores)
        except (OSError, ValueError):
            self._last = None  # /proc/stat went away: leave the threads as they are
            return
        if now.total <= self._last.total:
            return  # no clock tick since the last look: nothing to go by yet
        threads = self.threads_for(now.others_since(self._last, len(self._cores)))
        self._last = now
        if threads != torch.get_num_threads():
            torch.set_num_threads(threads)
        if not self.history or self.history[-1][1] != threads:
            self.history.append((round(now.wall - self._t0, 2), threads))
