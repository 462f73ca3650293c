"""Module-level functions for the workers of ``tests/training/test_local.py`` (spawned processes import them)."""

from __future__ import annotations

import os
from collections.abc import Callable

import torch.distributed as dist

from hourglass.errors import DataError
from hourglass.training.distributed import init_distributed, shutdown_distributed


def rank_sum(values: list[float], log: Callable[[str], None] | None = None) -> dict:
    """Join the group, all-reduce ``values[rank]``, say hello from rank 0; return what this rank saw."""
    import torch

    info = init_distributed("cpu")
    try:
        t = torch.tensor([values[info.rank]])
        dist.all_reduce(t)
        if log is not None:
            log(f"hello from rank {info.rank} of {info.world_size}")
        return {"rank": info.rank, "world": info.world_size, "sum": float(t), "threads": torch.get_num_threads()}
    finally:
        shutdown_distributed()


def rank1_raises(path: str, log: Callable[[str], None] | None = None) -> None:
    """Rank 1 raises a DataError naming ``path``; rank 0 waits at a barrier it would never leave."""
    info = init_distributed("cpu")
    if info.rank == 1:
        raise DataError(f"{path}: record 3 has 15 keypoints, expected 16")
    dist.barrier()


def rank1_dies(log: Callable[[str], None] | None = None) -> None:
    """Rank 1 exits abruptly (as if killed); rank 0 waits at a barrier it would never leave."""
    info = init_distributed("cpu")
    if info.rank == 1:
        os._exit(3)
    dist.barrier()
