"""The Stacked Hourglass Network with intermediate supervision (Newell et al., ECCV 2016, Fig. 4)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from functools import partial
from typing import Literal

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from hourglass.errors import ConfigError

from ._checks import check_image_batch
from .blocks import Activation, NormLayer, ResidualBlock, relu_inplace
from .hourglass import Hourglass


class StackedHourglass(nn.Module):
    """The official stacked hourglass network, returning the heatmaps of every stack.

    Layout of the authors' code (``princeton-vl/pose-hg-train``, ``pytorch_stacked_hourglass``):

    - stem: 7x7/2 conv 3->64 (bias) + BN + ReLU, Residual 64->128, 2x2 max-pool, Residual 128->128,
      Residual 128->C. The input is downsampled 4x before the first hourglass.
    - per stack ``s``: :class:`Hourglass` (``layout="newell"``) -> Residual C->C -> 1x1 conv + BN + ReLU
      (``features``) -> 1x1 conv to K heatmaps (``heads``).
    - between stacks: ``x = x + merge_features[s](features) + merge_heatmaps[s](heatmaps)`` (1x1 convs).

    With 16 joints at 256x256 the presets count 3.43M / 6.57M / 12.86M / 25.43M parameters and
    5.15 / 8.33 / 14.70 / 27.44 G multiply-adds for 1 / 2 / 4 / 8 stacks (see ``docs/ARCHITECTURE.md``).

    Departures: the residual blocks are the seed's :class:`ResidualBlock` (same arithmetic as the official
    ``Residual``; the official PyTorch code also builds an unused ``skip_layer`` in every block whose input
    and output widths match, which is not created here). ``num_bottom_blocks`` defaults to the official 1
    where the seed's module has 3.

    Variants, all off by default (the official network), for published weights of other layouts:

    - ``num_blocks``: residual blocks chained in every hourglass unit and in each stack's feature block
      (bearpaw/pytorch-pose's ``num_blocks``: 8, 4, 1 for its ``hg1``, ``hg2``, ``hg8``); with more than one
      these become ``nn.Sequential`` (keys ``features.0.res.0.bn1.weight``).
    - ``stem="bearpaw"``: bearpaw's stem widens earlier: Residual 64->128, pool, Residual 128->256 (with a
      1x1 projection), Residual 256->C, where the official stem has 128->128 then 128->C.
    - ``input_mean``, ``input_std``: per-channel ``(R, G, B)`` values subtracted from and divided into the
      input before the stem (non-persistent buffers: not in the state dict, rebuilt from the checkpoint's
      model kwargs). Published weights trained on mean-subtracted images get their normalisation this way,
      so every consumer of the model (predict, eval, export, bench) applies it without being told.

    Args:
        num_stacks: number of hourglasses ``S``.
        num_joints: heatmap channels ``K``.
        num_channels: feature width ``C`` (256 in the paper).
        depth: pooling levels per hourglass (4 in the paper).
        num_bottom_blocks: residual blocks at each hourglass's lowest resolution.
        in_channels: image channels.
        norm_layer, activation: injected layer types, used everywhere (stem, blocks, features).
        num_blocks: blocks per hourglass unit and per feature block (1 in the paper).
        stem: ``"newell"`` (the paper's) or ``"bearpaw"``, see above.
        input_mean, input_std: 3 (``in_channels``) values each, or None for none (the paper feeds [0, 1] RGB).

    Shape:
        ``(B, in_channels, H, W) -> (B, S, K, H/4, W/4)``, ``H`` and ``W`` divisible by ``4 * 2**depth``.
        All stacks are returned for intermediate supervision; ``[:, -1]`` is the prediction.

    Example:
        >>> net = StackedHourglass(num_stacks=2, num_joints=16)
        >>> net(torch.rand(1, 3, 256, 256)).shape
        torch.Size([1, 2, 16, 64, 64])
    """

    def __init__(
        self,
        num_stacks: int = 2,
        num_joints: int = 16,
        num_channels: int = 256,
        depth: int = 4,
        num_bottom_blocks: int = 1,
        in_channels: int = 3,
        norm_layer: NormLayer = nn.BatchNorm2d,
        activation: Activation = relu_inplace,
        num_blocks: int = 1,
        stem: Literal["newell", "bearpaw"] = "newell",
        input_mean: Sequence[float] | None = None,
        input_std: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        if stem not in ("newell", "bearpaw"):
            raise ConfigError(f"StackedHourglass: stem must be 'newell' or 'bearpaw', got {stem!r}")
        for label, values in (("input_mean", input_mean), ("input_std", input_std)):
            if values is not None and len(values) != in_channels:
                raise ConfigError(
                    f"StackedHourglass: {label} needs {in_channels} values (one per input channel), got {list(values)}"
                )
        if input_std is not None and any(v <= 0 for v in input_std):
            raise ConfigError(f"StackedHourglass: input_std must be positive, got {list(input_std)}")
        if num_stacks < 1:
            raise ConfigError(f"StackedHourglass: num_stacks must be >= 1, got {num_stacks}")
        if num_channels % 2 or num_channels < 4:
            raise ConfigError(f"StackedHourglass: num_channels must be even and >= 4, got {num_channels}")
        self.num_stacks = num_stacks
        self.num_joints = num_joints
        self.num_channels = num_channels
        self.depth = depth
        self.in_channels = in_channels
        self.grad_checkpointing = False
        block = partial(ResidualBlock, norm_layer=norm_layer, activation=activation)
        c = num_channels
        wide = 256 if stem == "bearpaw" else 128
        for name, values in (("input_mean", input_mean), ("input_std", input_std)):
            buffer = None if values is None else torch.tensor([float(v) for v in values]).view(1, -1, 1, 1)
            self.register_buffer(name, buffer, persistent=False)

        def unit(width: int) -> nn.Module:
            if num_blocks == 1:
                return block(width)
            return nn.Sequential(*(block(width) for _ in range(num_blocks)))

        self.stem = nn.Sequential(
            OrderedDict(
                conv=nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=True),
                bn=norm_layer(64),
                relu=activation(),
                res1=block(64, 128),
                pool=nn.MaxPool2d(kernel_size=2),
                res2=block(128, wide),
                res3=block(wide, c),
            )
        )
        self.hourglasses = nn.ModuleList(
            Hourglass(
                block, c, depth=depth, num_bottom_blocks=num_bottom_blocks, layout="newell", num_blocks=num_blocks
            )
            for _ in range(num_stacks)
        )
        self.features = nn.ModuleList(
            nn.Sequential(
                OrderedDict(
                    res=unit(c),
                    conv=nn.Conv2d(c, c, kernel_size=1, bias=True),
                    bn=norm_layer(c),
                    relu=activation(),
                )
            )
            for _ in range(num_stacks)
        )
        self.heads = nn.ModuleList(nn.Conv2d(c, num_joints, kernel_size=1) for _ in range(num_stacks))
        self.merge_features = nn.ModuleList(nn.Conv2d(c, c, kernel_size=1) for _ in range(num_stacks - 1))
        self.merge_heatmaps = nn.ModuleList(nn.Conv2d(num_joints, c, kernel_size=1) for _ in range(num_stacks - 1))

    @property
    def input_multiple(self) -> int:
        """Height and width of the input must be divisible by this (``4 * 2**depth``)."""
        return 4 * 2**self.depth

    def set_grad_checkpointing(self, enable: bool = True) -> StackedHourglass:
        """Recompute each hourglass in the backward pass instead of storing its activations.

        Trades about one extra forward of the hourglasses for memory (figures in ``docs/BENCHMARKS.md``).
        BatchNorm running statistics are updated once more per step during the recomputation.
        """
        self.grad_checkpointing = enable
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x, self.in_channels, self.input_multiple, "StackedHourglass input")
        if self.input_mean is not None:
            x = x - self.input_mean
        if self.input_std is not None:
            x = x / self.input_std
        x = self.stem(x)
        outputs = []
        use_ckpt = self.grad_checkpointing and self.training and torch.is_grad_enabled()
        for s in range(self.num_stacks):
            hg = self.hourglasses[s]
            y = checkpoint(hg, x, use_reentrant=False) if use_ckpt else hg(x)
            feats = self.features[s](y)
            heatmaps = self.heads[s](feats)
            outputs.append(heatmaps)
            if s < self.num_stacks - 1:
                x = x + self.merge_features[s](feats) + self.merge_heatmaps[s](heatmaps)
        return torch.stack(outputs, dim=1)


def last_stack(out: torch.Tensor) -> torch.Tensor:
    """``(B, S, K, h, w) -> (B, K, h, w)``: the last stack is the prediction; a 4-D output is returned as it is."""
    return out[:, -1] if out.dim() == 5 else out
