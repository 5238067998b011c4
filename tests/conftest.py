"""Shared fixtures: where the public sketch data lives, and skipping when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# ../shared/data beside the checkout; SKETCHRNN_SHARED_DATA overrides it.
SHARED_DATA = Path(
    os.environ.get("SKETCHRNN_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def shared_file(relative: str) -> Path:
    """Path of a file under the shared data folder, or skip the test saying what is missing."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"shared data not found: {path} (set SKETCHRNN_SHARED_DATA)")
    return path


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
