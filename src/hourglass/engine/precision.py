"""Mixed precision: one autocast policy for training and evaluation."""

from __future__ import annotations

from contextlib import AbstractContextManager

import torch

from hourglass.engine.config import ConfigError


def autocast_context(device: torch.device, amp: str) -> AbstractContextManager:
    """``torch.autocast`` in bfloat16 (CPU or CUDA) or float16 (CUDA only), or a disabled one for ``none``.

    bf16 needs no gradient scaling; fp16 does (the training loop adds a ``GradScaler`` for it). On CPU,
    bf16 autocast with channels_last roughly halves a training step (``docs/BENCHMARKS.md``).

    Raises:
        ConfigError: ``fp16`` on a device other than CUDA.
    """
    if amp == "none":
        return torch.autocast(device_type=device.type, enabled=False)
    if amp == "fp16" and device.type != "cuda":
        raise ConfigError("train.amp='fp16' needs CUDA (gradient scaling); use 'bf16' or 'none' on CPU")
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16 if amp == "bf16" else torch.float16)
