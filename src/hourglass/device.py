"""Devices and mixed precision: one device resolver and one autocast policy for training, evaluation and inference."""

from __future__ import annotations

from contextlib import AbstractContextManager

import torch

from hourglass.errors import ConfigError


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> ``cuda:<local_rank>`` when CUDA is available, else CPU; ``cuda`` without CUDA is an error."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"train.device={name!r} but CUDA is not available; use 'cpu' or 'auto'")
        return torch.device("cuda", local_rank) if name == "cuda" else torch.device(name)
    return torch.device(name)


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
