"""Building blocks: the pre-activation bottleneck residual of Newell et al. (2016).

Shapes follow the kornia convention: ``(B, C, H, W)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import torch
from torch import nn

NormLayer = Callable[[int], nn.Module]
Activation = Callable[[], nn.Module]

relu_inplace: Activation = partial(nn.ReLU, inplace=True)
"""The default activation: ``nn.ReLU(inplace=True)``, as in the seed."""


def group_norm(num_channels: int) -> nn.GroupNorm:
    """GroupNorm (Wu and He, 2018) with at most 32 groups of at least 4 channels (``gcd(C // 4, 32)`` groups).

    Statistics are per sample, so the output does not depend on how a batch is split (over processes,
    for instance). At 256 channels this is the paper's GN with 32 groups; narrow layers get fewer, wider
    groups rather than the per-channel statistics that would be unstable on small feature maps.
    """
    return nn.GroupNorm(max(1, math.gcd(num_channels // 4, 32)), num_channels)


NORM_LAYERS: dict[str, NormLayer] = {"batch": nn.BatchNorm2d, "group": group_norm}
"""Normalisation layers by the name stored in checkpoint metadata (``kwargs["norm_layer"]``)."""


class ResidualBlock(nn.Module):
    """Pre-activation bottleneck: BN-ReLU-1x1 (C -> C/2), BN-ReLU-3x3, BN-ReLU-1x1 (C/2 -> C), plus skip.

    Exactly the seed's block (attribute names ``bn1, conv1, bn2, conv2, bn3, conv3, relu``, biases on,
    identity skip); with the default 256 channels it has 214,528 parameters.

    Departures from the seed, both opt-in: ``out_channels`` different from ``num_channels`` adds a 1x1
    projection ``skip`` (with bias, as in the official Torch code's ``skipLayer``) on the residual path,
    which the stem of :class:`~hourglass.models.StackedHourglass` needs (64 -> 128 -> 256); and the norm
    and activation layers can be injected as types (``norm_layer``, ``activation``).

    Args:
        num_channels: input channels ``C``.
        out_channels: output channels, ``C`` when ``None``. The bottleneck width is ``out_channels // 2``.
        norm_layer: called with a channel count, returns the normalisation module.
        activation: called with no argument, returns the activation module (shared by the three stages).

    Shape:
        ``(B, C, H, W) -> (B, out_channels, H, W)``.

    Example:
        >>> block = ResidualBlock(256)
        >>> block(torch.rand(1, 256, 8, 8)).shape
        torch.Size([1, 256, 8, 8])
    """

    def __init__(
        self,
        num_channels: int = 256,
        out_channels: int | None = None,
        norm_layer: NormLayer = nn.BatchNorm2d,
        activation: Activation = relu_inplace,
    ) -> None:
        super().__init__()
        out_channels = num_channels if out_channels is None else out_channels
        mid = out_channels // 2
        self.in_channels = num_channels
        self.out_channels = out_channels

        self.bn1 = norm_layer(num_channels)
        self.conv1 = nn.Conv2d(num_channels, mid, kernel_size=1, bias=True)
        self.bn2 = norm_layer(mid)
        self.conv2 = nn.Conv2d(mid, mid, kernel_size=3, stride=1, padding=1, bias=True)
        self.bn3 = norm_layer(mid)
        self.conv3 = nn.Conv2d(mid, out_channels, kernel_size=1, bias=True)
        self.relu = activation()
        self.skip = nn.Conv2d(num_channels, out_channels, 1) if out_channels != num_channels else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.skip is None else self.skip(x)

        out = self.conv1(self.relu(self.bn1(x)))
        out = self.conv2(self.relu(self.bn2(out)))
        out = self.conv3(self.relu(self.bn3(out)))
        return out + residual
