"""The hourglass module: repeated bottom-up pooling and top-down upsampling with a skip branch per level.

Newell, Yang, Deng, "Stacked Hourglass Networks for Human Pose Estimation", ECCV 2016, Fig. 3.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from hourglass.errors import ConfigError

from ._checks import check_image_batch
from .blocks import ResidualBlock

Layout = Literal["seed", "newell"]


class Hourglass(nn.Module):
    """A ``depth``-level hourglass of residual blocks, with the seed's sub-module names.

    Sub-modules, for level ``i = 1..depth`` (level 1 is full resolution): ``downconv_i``, ``pool_i``
    (2x2 max-pool), ``skipconv_i`` (the skip branch of level ``i``), ``upconv_i`` (``upconv_1`` is the
    coarsest level, as in the seed), and ``midconv_1..num_bottom_blocks`` at the lowest resolution.
    Upsampling is nearest-neighbour x2 (``F.interpolate``; no module is built in ``forward``).

    Two orders of the same modules, chosen by ``layout``:

    - ``"seed"`` (default; the tutorial's module): at level ``i`` the input goes through ``downconv_i``,
      its output feeds both ``skipconv_i`` and ``pool_i``; on the way up the upsampled coarse features are
      added to the skip and *then* pass through ``upconv``. With ``depth=4, num_bottom_blocks=3`` this is
      the seed's module exactly (3,217,920 parameters at 256 channels).
    - ``"newell"`` (the official Torch/PyTorch code, ``up1/low1/low2/low3``): ``skipconv_i`` acts on the
      level's input, the input is pooled *before* ``downconv_i``, and ``upconv`` runs at the coarse
      resolution before upsampling; the sum is the level's output. Same parameters as ``"seed"`` for the
      same number of bottom blocks, but fewer multiply-adds, since two of the three blocks per level run
      at half resolution. :class:`StackedHourglass` uses this layout so that its FLOPs match the paper's.

    Departure from the seed: the seed applies ``skipconv_2`` to the top-level skip and leaves
    ``skipconv_1`` unused (its parameters get no gradient). Here level 1 uses ``skipconv_1``.

    ``num_blocks`` (default 1) chains that many blocks in each ``downconv_i``, ``skipconv_i`` and
    ``upconv_i`` (an ``nn.Sequential``, so their keys gain an index: ``skipconv_1.0.bn1.weight``), as
    bearpaw/pytorch-pose's ``Hourglass(block, num_blocks, ...)`` does; with 1 the module is a single block
    and the keys are the seed's.

    Args:
        block: residual block type, called as ``block(num_channels)``; the seed passes ``ResidualBlock``.
        num_channels: feature channels ``C``, kept constant through the module.
        depth: number of pooling levels (``>= 1``).
        num_bottom_blocks: blocks at the lowest resolution (the seed: 3; the official network: 1).
        layout: ``"seed"`` or ``"newell"``, see above.
        num_blocks: blocks chained in each down, skip and up unit (1 in the paper), see above.

    Shape:
        ``(B, C, H, W) -> (B, C, H, W)``, with ``H`` and ``W`` divisible by ``2**depth``.

    Example:
        >>> hg = Hourglass(ResidualBlock)
        >>> hg(torch.rand(1, 256, 64, 64)).shape
        torch.Size([1, 256, 64, 64])
    """

    def __init__(
        self,
        block: Callable[[int], nn.Module] = ResidualBlock,
        num_channels: int = 256,
        depth: int = 4,
        num_bottom_blocks: int = 3,
        layout: Layout = "seed",
        num_blocks: int = 1,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ConfigError(f"Hourglass: depth must be >= 1, got {depth}")
        if num_bottom_blocks < 1:
            raise ConfigError(f"Hourglass: num_bottom_blocks must be >= 1, got {num_bottom_blocks}")
        if num_blocks < 1:
            raise ConfigError(f"Hourglass: num_blocks must be >= 1, got {num_blocks}")
        if layout not in ("seed", "newell"):
            raise ConfigError(f"Hourglass: layout must be 'seed' or 'newell', got {layout!r}")
        self.num_channels = num_channels
        self.depth = depth
        self.num_bottom_blocks = num_bottom_blocks
        self.layout = layout
        self.num_blocks = num_blocks

        def unit() -> nn.Module:
            if num_blocks == 1:
                return block(num_channels)
            return nn.Sequential(*(block(num_channels) for _ in range(num_blocks)))

        # Registered as attributes, in the seed's order, so that `model._modules["midconv_1"]` works.
        for i in range(1, depth + 1):
            setattr(self, f"downconv_{i}", unit())
            setattr(self, f"pool_{i}", nn.MaxPool2d(kernel_size=2))
        for i in range(1, num_bottom_blocks + 1):
            setattr(self, f"midconv_{i}", block(num_channels))
        for i in range(1, depth + 1):
            setattr(self, f"skipconv_{i}", unit())
        for i in range(1, depth + 1):
            setattr(self, f"upconv_{i}", unit())

    def _level(self, kind: str, i: int) -> nn.Module:
        return self._modules[f"{kind}_{i}"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x, self.num_channels, 2**self.depth, "Hourglass input")
        seed = self.layout == "seed"
        skips = []
        for i in range(1, self.depth + 1):
            if seed:
                x = self._level("downconv", i)(x)
                skips.append(self._level("skipconv", i)(x))
                x = self._level("pool", i)(x)
            else:
                skips.append(self._level("skipconv", i)(x))
                x = self._level("downconv", i)(self._level("pool", i)(x))
        for i in range(1, self.num_bottom_blocks + 1):
            x = self._level("midconv", i)(x)
        for i in range(1, self.depth + 1):
            skip = skips[self.depth - i]
            if seed:
                x = self._level("upconv", i)(F.interpolate(x, scale_factor=2.0, mode="nearest") + skip)
            else:
                x = F.interpolate(self._level("upconv", i)(x), scale_factor=2.0, mode="nearest") + skip
        return x
