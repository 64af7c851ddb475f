"""torchrun's process group, in one place: `fusion train` (DDP) and `fusion eval` (samples
sharded over ranks) join the group torchrun describes in the environment (`WORLD_SIZE`,
`LOCAL_RANK`); a process started without torchrun is rank 0 of 1 and joins nothing.
`Shard` is `fusion eval`'s share of the samples. torch.distributed is imported only under
torchrun."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


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


@dataclass(frozen=True)
class Shard:
    """This process's share of the samples: rank `rank` of `world` takes the contiguous block
    `tokens[rank * per : (rank + 1) * per]`, per = ceil(n / world)."""

    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def of(self, tokens: Sequence[str]) -> list[str]:
        per = math.ceil(len(tokens) / self.world)
        return list(tokens[self.rank * per : (self.rank + 1) * per])


def init_shard() -> Shard:
    """Join the process group torchrun describes (gloo: only Python objects travel, once, at
    the end); a single process is one shard of one."""
    info = join_process_group("gloo")
    return Shard(info.rank, info.world_size)


def close_shard(shard: Shard) -> None:
    """Leave the process group together: every rank waits for rank 0's scoring, then tears the
    group down (a rank that exits with gloo's threads still running aborts the process)."""
    if shard.world > 1:
        leave_process_group(barrier=True)


def gather_to_main(shard: Shard, obj: Any) -> list[Any]:
    """Every rank's `obj` on rank 0, in rank order (a one-item list elsewhere)."""
    if shard.world == 1:
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * shard.world if shard.is_main else []
    dist.gather_object(obj, out if shard.is_main else None, dst=0)
    return out if shard.is_main else [obj]
