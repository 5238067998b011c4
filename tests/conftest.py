"""Shared fixtures (helper functions are in helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import SHARED_DATA, shared_file  # noqa: F401  (shared_file: for old imports)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder not found: {SHARED_DATA} (set SKETCHRNN_SHARED_DATA)")
    return SHARED_DATA


def pytest_configure(config):
    # Small recurrent steps run far slower with two threads fighting over two cores than with
    # one; tests measure behaviour, not speed, so one thread each.
    import torch

    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Every test starts on one thread, whatever an earlier one left: the bit-for-bit resume
    tests compare two runs, and a thread count that differs between them (or that the
    Trainer's ThreadGovernor lowers under load) changes float rounding. (The one leak found,
    UMAP's, is mended where it happens: figures.umap_projection.)"""
    import torch

    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)
    yield
