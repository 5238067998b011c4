"""Random draws a run can repeat: a seed for each purpose of each step of each process, mixed
from ``(run seed, step, rank, purpose)`` (:func:`seed_for`), and the global random states a
checkpoint keeps so that a resumed run draws what an unbroken one would have
(:func:`rng_states`, :func:`set_rng_states`).
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

__all__ = ["seed_for", "rng_states", "set_rng_states"]


def seed_for(*parts: int) -> int:
    """A 63-bit seed mixing ``parts`` (numpy's SeedSequence hashing: no collisions to mind)."""
    words = np.random.SeedSequence([int(p) for p in parts]).generate_state(2, dtype=np.uint32)
    return (int(words[0]) << 31) ^ int(words[1])


def rng_states() -> dict[str, Any]:
    """The global RNG states, as plain Python values and tensors (``weights_only``-loadable)."""
    np_state: Any = np.random.get_state()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], np_state[1].tolist(), *[v for v in np_state[2:]]],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore the global RNG states :func:`rng_states` took (those present; CUDA's only where
    there is CUDA)."""
    if "torch" in states:
        torch.set_rng_state(states["torch"])
    if "numpy" in states:
        name, keys, *rest = states["numpy"]
        np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))
    if "python" in states:
        version, internal, gauss = states["python"]
        random.setstate((version, tuple(internal), gauss))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
