"""Optimisers and learning-rate schedules built from :class:`~hourglass.config.OptimConfig`."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch.optim.lr_scheduler import LambdaLR

from hourglass.config import OptimConfig


def build_optimizer(params: Iterable[torch.nn.Parameter], cfg: OptimConfig) -> torch.optim.Optimizer:
    """RMSprop (the paper's, lr 2.5e-4), Adam, AdamW or SGD with the configured lr, weight decay, momentum.

    RMSprop uses torch's defaults otherwise (``alpha=0.99, eps=1e-8``); the official Torch code used
    ``optim.rmsprop`` with ``alpha=0.99, epsilon=1e-8`` too.

    Implementation: torch's fused kernels for Adam, AdamW and SGD (one pass over all parameters; on a CPU,
    hg1 with 128 channels: 1.0 ms per Adam step against 4.4 ms for torch's default per-parameter loop,
    ``docs/BENCHMARKS.md``), the multi-tensor (``foreach``) one for RMSprop, which has no fused kernel.
    The update rule is the same; the last bits may differ from the per-parameter loop, which
    ``optim.fused: false`` selects (the reference ``hourglass bench --train`` compares with).
    """
    params = list(params)
    if cfg.name == "rmsprop":
        return torch.optim.RMSprop(
            params, lr=cfg.lr, weight_decay=cfg.weight_decay, momentum=cfg.momentum, foreach=cfg.fused
        )
    supported = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
    impl: dict[str, bool] = {"foreach": False} if not cfg.fused else {"fused": True} if supported else {}
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **impl)
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **impl)
    return torch.optim.SGD(params, lr=cfg.lr, weight_decay=cfg.weight_decay, momentum=cfg.momentum, **impl)


def lr_factor(step: int, cfg: OptimConfig, steps_per_epoch: int, total_steps: int, time_fraction: float = 0.0) -> float:
    """Multiplier of the base learning rate at iteration ``step`` (0-based).

    Linear warm-up from ``1/warmup_steps`` to 1 over ``warmup_steps`` iterations, times the schedule:
    ``constant``; ``step`` (``gamma`` per epoch milestone passed, the paper's drop by 10); ``cosine``
    (from 1 to 0 over the run's progress ``max(step / total_steps, time_fraction)``).

    ``time_fraction`` is the share of a time budget (``train.time_limit_s``) already spent: a
    time-capped run anneals by whichever limit it will reach first, so it ends at a low learning rate
    however fast the machine is. Without a time limit it stays 0 and the schedule is a pure function of
    the step (exactly resumable).
    """
    warm = min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps else 1.0
    if cfg.schedule == "step":
        epoch = step // max(1, steps_per_epoch)
        return warm * cfg.gamma ** sum(epoch >= m for m in cfg.milestones)
    if cfg.schedule == "cosine":
        progress = min(1.0, max(step / max(1, total_steps), time_fraction))
        return warm * 0.5 * (1.0 + math.cos(math.pi * progress))
    return warm


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    cfg: OptimConfig,
    steps_per_epoch: int,
    total_steps: int,
    time_fraction: Callable[[], float] | None = None,
) -> LambdaLR:
    """A per-iteration :class:`LambdaLR` over :func:`lr_factor`; call ``.step()`` after each optimiser step.

    ``time_fraction`` (optional) returns the share of the time budget spent so far (see :func:`lr_factor`).
    """
    clock = time_fraction or (lambda: 0.0)
    return LambdaLR(optimizer, lambda step: lr_factor(step, cfg, steps_per_epoch, total_steps, clock()))
