"""Cheap input checks shared by the models: they run before any computation."""

from __future__ import annotations

import torch

from hourglass.errors import InputError


def check_image_batch(x: torch.Tensor, channels: int, multiple: int, name: str) -> None:
    """Raise ``InputError`` unless ``x`` is ``(B, channels, H, W)`` with ``H`` and ``W`` divisible by ``multiple``."""
    if not isinstance(x, torch.Tensor):
        raise InputError(f"{name}: expected a torch.Tensor of shape (B, {channels}, H, W), got {type(x)!r}")
    if x.dim() != 4:
        raise InputError(
            f"{name}: expected a 4-D tensor (B, {channels}, H, W), got {x.dim()}-D with shape {tuple(x.shape)}"
        )
    if x.shape[1] != channels:
        raise InputError(
            f"{name}: expected {channels} channels, shape (B, {channels}, H, W), got shape {tuple(x.shape)}"
        )
    h, w = x.shape[-2], x.shape[-1]
    if h % multiple or w % multiple:
        raise InputError(
            f"{name}: height and width must be divisible by {multiple}, got shape {tuple(x.shape)} "
            f"(H={h}, W={w}); resize or pad the input to a multiple of {multiple}"
        )
