"""Devices and mixed precision: one device resolver and one autocast policy for training, evaluation and inference."""

from __future__ import annotations

import os
import platform
from contextlib import AbstractContextManager

import torch

from hourglass.errors import ConfigError


def resolve_device(name: str | torch.device, local_rank: int = 0) -> torch.device:
    """The device of ``train.device`` or ``--device``: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.

    ``auto`` is ``cuda`` when CUDA is available, else ``cpu``; a bare ``cuda`` is ``cuda:<local_rank>`` (the
    process's GPU under torchrun).

    Raises:
        ConfigError: another device type, or CUDA asked for where there is none (naming the device).
    """
    text = str(name)
    if text == "auto":
        text = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(text)
    except RuntimeError:
        raise ConfigError(f"device {text!r}: expected cpu, cuda, cuda:N or auto") from None
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"device {text!r}: expected cpu, cuda, cuda:N or auto")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device {text!r}: CUDA is not available here (torch.cuda.is_available() is False); use cpu or auto"
            )
        if device.index is None:
            device = torch.device("cuda", local_rank)
    return device


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


def eager_precision(precision: str) -> tuple[bool, str]:
    """``(channels_last, amp)``: how eager PyTorch runs a network for inference at ``precision``, for the eager
    and compile runtimes and the peak convolution the benches compare with. bf16 is channels_last weights
    and inputs under bf16 autocast (oneDNN's fast path, AMX where the CPU has it); fp32 (and anything else)
    the layout as it is, without autocast."""
    return (True, "bf16") if precision == "bf16" else (False, "none")


def cpu_name() -> str:
    """The CPU model from ``/proc/cpuinfo`` (``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    """CPU cores this process may run on (``taskset`` and container limits included)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
