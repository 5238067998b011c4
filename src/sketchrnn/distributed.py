"""Where a process of a training job stands: its rank among the job's processes and its
device, joining the process group when launched by ``torchrun`` (gloo on CPU, nccl on GPU),
and the collective yes/no questions the ranks agree on (:class:`DistributedContext`).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistributedContext"]


@dataclass
class DistributedContext:
    """Where this process stands: its rank among ``world_size`` and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = dataclasses.field(default_factory=lambda: torch.device("cpu"))
    initialized_here: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @classmethod
    def from_env(cls, device: str = "auto") -> DistributedContext:
        """Join the process group when launched by ``torchrun`` (``WORLD_SIZE`` > 1)."""
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
        if device not in ("auto", "cuda"):
            dev = torch.device(device)
        elif use_cuda:
            dev = torch.device("cuda", local_rank)
        else:
            dev = torch.device("cpu")
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        initialized_here = False
        if world_size > 1 and not dist.is_initialized():
            dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
            initialized_here = True
        if dist.is_initialized():
            rank, world_size = dist.get_rank(), dist.get_world_size()
        return cls(rank, world_size, local_rank, dev, initialized_here)

    def all_agree(self, flag: bool) -> bool:
        """True on every rank iff ``flag`` is true on every rank (a collective call)."""
        if not self.distributed:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
        return bool(t.item() > 0.5)

    def any(self, flag: bool) -> bool:
        """True on every rank iff ``flag`` is true on some rank (a collective call)."""
        return not self.all_agree(not flag)

    def close(self) -> None:
        if self.initialized_here and dist.is_initialized():
            # Wait for every rank (rank 0 may still be writing the last checkpoint): a rank
            # that tears gloo down while its peer is busy can abort the peer's process.
            dist.barrier()
            dist.destroy_process_group()
