"""Distributed data parallel plumbing: process group from torchrun's environment, sharded sampling.

``torchrun --nproc_per_node=N -m hourglass train ...`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``;
:func:`init_distributed` joins the group (NCCL when CUDA is in use, gloo otherwise). Without those
variables everything runs as a single process of rank 0 and no process group is created.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from hourglass.device import resolve_device
from hourglass.errors import ConfigError


@dataclass(frozen=True)
class DistInfo:
    """This process's place: ``rank`` of ``world_size``, ``local_rank`` on its machine, and its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes checkpoints, logs and prints progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the process group described by torchrun's environment variables, if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if world > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistInfo(rank=rank, world_size=world, local_rank=local_rank, device=dev)


def shutdown_distributed() -> None:
    """Leave the process group. Every rank meets at a barrier first: tearing down gloo without one aborts
    at exit about half the time on torch 2.13 (``../shared/NOTES.md``)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def all_reduce_mean(value: torch.Tensor) -> torch.Tensor:
    """Mean of ``value`` over all ranks (the value itself when not distributed)."""
    if dist.is_available() and dist.is_initialized():
        value = value.detach().clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        value /= dist.get_world_size()
    return value


def all_reduce_max(values: list[float], device: torch.device) -> list[float]:
    """Element-wise maximum of ``values`` over all ranks (``values`` itself when not distributed).

    The training loop sends ``[stop requested, time budget spent]`` through this once per step, so that
    every rank stops at the same step and anneals with the same learning rate.
    """
    if dist.is_available() and dist.is_initialized():
        t = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return t.tolist()
    return list(values)


class ShardedSampler(Sampler[int]):
    """Epoch-seeded shuffling split over ranks so that any world size sees the same global batches.

    Epoch ``e`` draws one permutation from ``torch.Generator().manual_seed(seed + e)`` and keeps the first
    ``num_batches * global_batch`` indices (the incomplete last batch is dropped). Global batch ``j`` is
    ``perm[j*G:(j+1)*G]``; rank ``r`` takes its entries ``r, r + W, r + 2W, ...``. One process with batch
    ``G`` and ``W`` processes with batch ``G/W`` therefore train on the same samples at every step, as in
    ``DistributedSampler`` but without its padding. ``set_epoch(e, start_batch=b)`` skips the first ``b``
    batches, which is how a resumed run picks up mid-epoch.

    Args:
        size: dataset length.
        global_batch: samples per optimiser step over all ranks (divisible by ``world_size``).
        rank, world_size: this process's shard.
        seed: base seed of the permutations.
        shuffle: ``False`` keeps dataset order (evaluation).
    """

    def __init__(
        self, size: int, global_batch: int, rank: int = 0, world_size: int = 1, seed: int = 0, shuffle: bool = True
    ) -> None:
        if global_batch % world_size:
            raise ConfigError(f"train.batch_size={global_batch} must be divisible by the {world_size} processes")
        self.size = size
        self.global_batch = global_batch
        self.rank = rank
        self.world_size = world_size
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0
        self.start_batch = 0

    @property
    def batches_per_epoch(self) -> int:
        return self.size // self.global_batch

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch = epoch
        self.start_batch = start_batch

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            perm = torch.randperm(self.size, generator=g).tolist()
        else:
            perm = list(range(self.size))
        used = perm[self.start_batch * self.global_batch : self.batches_per_epoch * self.global_batch]
        return iter(used[self.rank :: self.world_size])

    def __len__(self) -> int:
        return (self.batches_per_epoch - self.start_batch) * (self.global_batch // self.world_size)
