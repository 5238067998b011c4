"""Thread defaults on a busy CPU (sketchrnn.cpu_threads and sketchrnn/__init__): the passive
OpenMP wait set before torch loads, and the governor that lowers the thread count to the free
cores where threads spin."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest
import torch
from helpers import recording_trainer

from sketchrnn import cpu_threads
from sketchrnn.cpu_threads import ThreadGovernor, free_cores


@pytest.fixture
def spinning(monkeypatch):
    """An environment where threads spin-wait and nobody fixed the thread count."""
    for name in (*cpu_threads.CHOSEN_BY_USER, "OMP_WAIT_POLICY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(cpu_threads, "_cores", lambda: [0, 1, 2, 3])
    monkeypatch.setattr(cpu_threads, "_quota", lambda: None)
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


class FakeStat:
    """/proc/stat as a test drives it: other processes keep ``others`` cores busy."""

    def __init__(self, monkeypatch, cores: int = 4):
        self.cores, self.others, self.ticks, self.busy, self.clock = cores, 0.0, 0, 0, 0.0
        monkeypatch.setattr(cpu_threads._Sample, "now", classmethod(lambda cls, c: self.sample()))
        monkeypatch.setattr(cpu_threads.time, "sleep", self.advance)
        monkeypatch.setattr(cpu_threads.time, "monotonic", lambda: self.clock)

    def advance(self, seconds: float) -> None:
        self.clock += seconds
        self.ticks += round(100 * seconds * self.cores)
        self.busy += round(100 * seconds * self.others)

    def sample(self):
        return cpu_threads._Sample(self.busy, self.ticks, 0.0, self.clock)


def test_threads_for_the_load(spinning):
    torch.set_num_threads(4)
    governor = ThreadGovernor()
    governor.start()  # the real /proc/stat: whatever it finds, it stays within 1..4
    assert 1 <= torch.get_num_threads() <= 4
    governor.stop()
    assert torch.get_num_threads() == 4
    # A core counts as free when others use less than half of it.
    assert [governor.threads_for(x) for x in (0.0, 0.4, 0.6, 1.0, 1.6, 3.0, 9.0)] == [
        4, 4, 3, 3, 2, 1, 1,
    ]  # fmt: skip


def test_the_governor_follows_a_hog_and_restores_the_threads(spinning, monkeypatch):
    stat = FakeStat(monkeypatch)
    torch.set_num_threads(3)  # the program's choice: the ceiling
    governor = ThreadGovernor(period=3.0)
    assert governor.enabled
    governor.start()
    assert torch.get_num_threads() == 3  # an idle machine: 4 free, capped at 3
    stat.others = 2.0  # two busy processes start
    stat.advance(1.0)
    governor.tick()  # too early to look again
    assert torch.get_num_threads() == 3
    stat.advance(2.5)
    governor.tick()
    assert torch.get_num_threads() == 2
    stat.others = 0.2
    stat.advance(3.5)
    governor.tick()
    assert torch.get_num_threads() == 3
    stat.others = 3.9
    stat.advance(3.5)
    governor.tick()
    assert torch.get_num_threads() == 1
    governor.stop()
    assert torch.get_num_threads() == 3
    assert [n for _, n in governor.history] == [3, 2, 3, 1]


@pytest.mark.parametrize(
    "env", [{"OMP_NUM_THREADS": "2"}, {"MKL_NUM_THREADS": "1"}, {"OMP_WAIT_POLICY": "passive"}]
)
def test_off_where_the_user_chose_or_threads_wait_passively(spinning, monkeypatch, env):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    stat = FakeStat(monkeypatch)
    stat.others = 4.0
    torch.set_num_threads(3)
    governor = ThreadGovernor()
    assert not governor.enabled
    governor.start()
    governor.tick()
    assert torch.get_num_threads() == 3


def test_free_cores_of_this_machine():
    free = free_cores(0.05)
    if math.isnan(free):
        pytest.skip("no /proc/stat here")
    assert -0.5 <= free <= len(os.sched_getaffinity(0)) + 0.5


def _wait_policy(code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    done = subprocess.run(
        [sys.executable, "-c", code + "; import os; print(os.environ.get('OMP_WAIT_POLICY'))"],
        capture_output=True,
        text=True,
        env={**clean, **env},
        check=True,
    )
    return done.stdout.strip()


def test_import_sketchrnn_first_makes_openmp_threads_wait_passively():
    assert _wait_policy("import sketchrnn") == "PASSIVE"
    assert _wait_policy("import sketchrnn", OMP_WAIT_POLICY="ACTIVE") == "ACTIVE"
    assert _wait_policy("import sketchrnn", GOMP_SPINCOUNT="1000") == "None"
    # Too late once torch (and with it OpenMP) is loaded: left alone, the governor steps in.
    assert _wait_policy("import torch, sketchrnn") == "None"


def test_training_runs_under_the_governor(spinning, monkeypatch):
    stat = FakeStat(monkeypatch)
    stat.others = 3.5  # a busy machine
    torch.set_num_threads(2)
    seen = []
    trainer = recording_trainer(monkeypatch, 3, lambda: seen.append(torch.get_num_threads()))
    trainer.fit()
    assert seen and set(seen) == {1}
    assert torch.get_num_threads() == 2  # given back
