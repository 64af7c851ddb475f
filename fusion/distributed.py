"""torchrun's process group, in one place: `fusion train` (DDP) and `fusion eval` (samples
sharded over ranks) join the group torchrun describes in the environment (`WORLD_SIZE`,
`LOCAL_RANK`); a process started without torchrun is rank 0 of 1 and joins nothing.
torch.distributed is imported only under torchrun."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the group: global rank, number of ranks, rank on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def local_rank() -> int:
    """The rank on this node torchrun gives (0 without torchrun): the index of its GPU."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def join_process_group(backend: str) -> DistInfo:
    """Join the process group torchrun describes (`nccl` for CUDA tensors, `gloo` for CPU ones
    and Python objects), once; a single process returns rank 0 of 1."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return DistInfo()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank())


def leave_process_group(barrier: bool) -> None:
    """Tear the group down (after a barrier when every rank must wait for the others: a rank
    that exits with gloo's threads still running aborts the process); nothing without one."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return
    import torch.distributed as dist

    if dist.is_initialized():
        if barrier:
            dist.barrier()
        dist.destroy_process_group()
