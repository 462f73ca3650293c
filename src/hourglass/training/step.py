"""One training step, the one ``hourglass train`` runs and ``hourglass bench --train`` times.

A step is: move the batch to the device in the training memory format, forward under the training
precision, :func:`~hourglass.losses.heatmap_loss` over all stacks, backward, optional gradient clipping,
optimiser step. Two ways to run it in bf16 (``train.step``; ``auto``, the default, picks ``bf16_weights``
for bf16 on a CPU in one process, where it measured faster, and ``autocast`` otherwise):

- ``autocast``: the model's parameters stay fp32 and ``torch.autocast`` casts each convolution's weight
  to bf16 in every forward (and its gradient back in every backward).
- ``bf16_weights``: a working copy of the model holds its convolution (and other non-normalisation)
  parameters in bf16 and runs without autocast; the model itself keeps the fp32 master weights, which
  the optimiser updates from the working copy's gradients (cast to fp32) and which are copied back into
  the working copy after every step. Normalisation layers (BatchNorm, GroupNorm) share their fp32
  parameters and running statistics with the master, so batch statistics are kept in fp32 and the
  master model is always ready to save or evaluate. The optimiser and its state are the same as with
  ``autocast`` (they hold the master parameters): checkpoints and ``--resume`` do not change.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from hourglass.device import autocast_context
from hourglass.errors import ConfigError
from hourglass.losses import heatmap_loss

if TYPE_CHECKING:
    from hourglass.config import TrainConfig
    from hourglass.training.distributed import DistInfo

STEP_MODES = ("auto", "autocast", "bf16_weights")

_NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


class TrainStep:
    """Callable training step over ``model`` (the master, fp32) and ``optimizer`` (over its parameters).

    Args:
        model: the network being trained; its parameters are what the optimiser updates and what is saved.
        optimizer: built over ``model.parameters()``.
        device: where the batch goes.
        amp: ``none``, ``bf16`` or ``fp16`` (``train.amp``).
        channels_last: feed images (and keep the working copy) in channels_last (``train.channels_last``).
        mode: ``auto``, ``autocast`` or ``bf16_weights`` (``train.step``; see the module docstring and
            :func:`resolve_step_mode`); ``self.mode`` is the one that runs.
        grad_clip: clip the global gradient norm of the master parameters to this value.
        scaler: the fp16 gradient scaler (``autocast`` mode only); a disabled one by default.
        wrap: applied to the module that runs forward and backward (DDP); identity by default.

    Raises:
        ConfigError: ``bf16_weights`` with ``amp`` other than ``bf16``.

    Example:
        >>> from hourglass.models import create_model
        >>> net = create_model("hg1", num_channels=16, depth=2, num_joints=4)
        >>> step = TrainStep(net, torch.optim.Adam(net.parameters()), torch.device("cpu"), "bf16",
        ...                  channels_last=True, mode="bf16_weights")
        >>> batch = {"image": torch.rand(2, 3, 64, 64), "heatmaps": torch.rand(2, 4, 16, 16),
        ...          "weights": torch.ones(2, 4)}
        >>> step(batch).dtype
        torch.float32
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        device: torch.device,
        amp: str,
        channels_last: bool,
        mode: str = "autocast",
        grad_clip: float | None = None,
        scaler: Any = None,
        wrap: Callable[[nn.Module], nn.Module] | None = None,
    ) -> None:
        if mode not in STEP_MODES:
            raise ConfigError(f"train.step must be one of {', '.join(STEP_MODES)}, got {mode!r}")
        if mode == "bf16_weights" and amp != "bf16":
            raise ConfigError(f"train.step=bf16_weights needs train.amp=bf16, got train.amp={amp!r}")
        mode = resolve_step_mode(mode, amp, device)
        self.model = model
        self.optimizer = optimizer
        self.device = device
        self.mode = mode
        self.grad_clip = grad_clip
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.scaler = scaler if scaler is not None else torch.amp.GradScaler(device.type, enabled=False)
        self.autocast = autocast_context(device, amp if mode == "autocast" else "none")
        self.pairs: list[tuple[nn.Parameter, nn.Parameter]] = []
        work = model
        if mode == "bf16_weights":
            work, self.pairs = bf16_working_copy(model, self.memory_format)
        self.work = work
        self.net = wrap(work) if wrap is not None else work
        self.input_dtype = torch.bfloat16 if mode == "bf16_weights" else None

    def __call__(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """One optimiser step on ``batch`` (``image (B, 3, H, W)``, ``heatmaps (B, K, h, w)``, ``weights (B, K)``).

        Returns the loss before the step, a detached fp32 scalar.
        """
        images = batch["image"].to(self.device, non_blocking=True, memory_format=self.memory_format)
        if self.input_dtype is not None:
            images = images.to(self.input_dtype)
        targets = batch["heatmaps"].to(self.device, non_blocking=True)
        weights = batch["weights"].to(self.device, non_blocking=True)
        self.net.train()
        with self.autocast:
            outputs = self.net(images)
        loss = heatmap_loss(outputs, targets, weights)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.pairs:
            for master, work in self.pairs:
                master.grad = None if work.grad is None else work.grad.float()
                work.grad = None
        if self.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.pairs:
            with torch.no_grad():
                torch._foreach_copy_([w for _, w in self.pairs], [m for m, _ in self.pairs])
        return loss.detach()


def make_train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    cfg: TrainConfig,
    info: DistInfo,
    scaler: Any = None,
) -> TrainStep:
    """The :class:`TrainStep` of ``cfg`` (``train`` settings) for this process: DDP-wrapped when ``info`` is
    distributed, the mode resolved for it. The training loop and ``hourglass bench --train`` both use this.

    Raises:
        ConfigError: ``train.step=bf16_weights`` in a distributed run.
    """
    if info.distributed and cfg.step == "bf16_weights":
        raise ConfigError(
            "train.step='bf16_weights' runs in one process; use train.step=autocast (or auto) with "
            "train.procs > 1 or torchrun"
        )
    mode = resolve_step_mode(cfg.step, cfg.amp, info.device, info.distributed)

    def wrap(net: nn.Module) -> nn.Module:
        if not info.distributed:
            return net
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(net, device_ids=[info.device] if info.device.type == "cuda" else None)

    return TrainStep(model, optimizer, info.device, cfg.amp, cfg.channels_last, mode, cfg.grad_clip, scaler, wrap)


def resolve_step_mode(mode: str, amp: str, device: torch.device, distributed: bool = False) -> str:
    """``auto`` -> ``bf16_weights`` for ``amp=bf16`` on a CPU in one process, else ``autocast``; others as given.

    ``bf16_weights`` measured 1.02-1.03x the autocast step on a quiet AMD EPYC (its casts are 1-2% of a
    step there; they were a quarter on an Intel Xeon with AMX, ``docs/BENCHMARKS.md``); it is not used
    under DDP (one process only) nor on CUDA, where it was not measured.
    """
    if mode != "auto":
        return mode
    return "bf16_weights" if amp == "bf16" and device.type == "cpu" and not distributed else "autocast"


def bf16_working_copy(
    model: nn.Module, memory_format: torch.memory_format = torch.channels_last
) -> tuple[nn.Module, list[tuple[nn.Parameter, nn.Parameter]]]:
    """A copy of ``model`` whose parameters are bf16, except normalisation layers, which share ``model``'s.

    Returns ``(work, pairs)``: ``pairs`` lists ``(master, working)`` parameters for every parameter that
    was cast; normalisation layers' parameters and buffers are the very tensors of ``model`` (fp32), so
    their gradients land in the master directly and their running statistics update it in place.
    """
    work = copy.deepcopy(model)
    pairs: list[tuple[nn.Parameter, nn.Parameter]] = []
    for master_mod, work_mod in zip(model.modules(), work.modules(), strict=True):
        if isinstance(work_mod, _NORMS):
            work_mod._parameters = master_mod._parameters
            work_mod._buffers = master_mod._buffers
            continue
        for name, master in master_mod.named_parameters(recurse=False):
            fmt = memory_format if master.dim() == 4 else torch.contiguous_format
            cast = nn.Parameter(master.detach().to(torch.bfloat16, memory_format=fmt), master.requires_grad)
            setattr(work_mod, name, cast)
            pairs.append((master, cast))
    return work, pairs
