"""Fold inference-mode BatchNorm into the convolution that feeds it.

A convolution ``y = W x + b`` followed directly by ``BN(y) = g (y - mu) / sqrt(var + eps) + beta`` is the
single convolution with ``W' = W * g / sqrt(var + eps)`` (per output channel) and
``b' = (b - mu) * g / sqrt(var + eps) + beta``: exact up to float rounding, once the running statistics
are frozen (eval mode).

Which pairs fold in our networks (the pre-activation order of Newell et al. decides it):

- :class:`~hourglass.models.ResidualBlock`: ``bn2`` follows ``conv1`` and ``bn3`` follows ``conv2``
  directly, so both fold. ``bn1`` does not: it normalises the block's *input*, which is a residual sum
  (or the stem's pooled output), and a ReLU stands between it and ``conv1``, so there is no convolution
  it directly follows and none it can be pushed into. It stays a BatchNorm (one per block; runtimes
  such as OpenVINO turn it into a per-channel multiply-add).
- ``nn.Sequential`` children ``Conv2d`` then ``BatchNorm2d`` (the stem's ``conv, bn`` and each stack's
  ``features`` ``conv, bn``) fold.

Model code stays torch-only and unaware of this; folding lives here and returns a new model.
"""

from __future__ import annotations

import copy
import itertools

import torch
from torch import nn

from hourglass.models import ResidualBlock

_BLOCK_PAIRS = (("conv1", "bn2"), ("conv2", "bn3"))


def fuse_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A new ``Conv2d`` (with bias) computing ``bn(conv(x))`` with ``bn``'s running statistics.

    Shapes: ``conv.weight`` ``(O, I, kh, kw)``, ``bn`` over ``O`` channels; raises ``ValueError`` otherwise.
    """
    if bn.num_features != conv.out_channels:
        raise ValueError(
            f"fuse_conv_bn: BatchNorm over {bn.num_features} channels cannot follow a convolution with "
            f"{conv.out_channels} output channels"
        )
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("fuse_conv_bn: BatchNorm without running statistics (track_running_stats=False)")
    fused = copy.deepcopy(conv)
    with torch.no_grad():
        w = conv.weight.double()
        scale = bn.running_var.double().add(bn.eps).rsqrt()
        if bn.weight is not None:
            scale = scale * bn.weight.double()
        bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(scale)
        new_bias = (bias - bn.running_mean.double()) * scale
        if bn.bias is not None:
            new_bias = new_bias + bn.bias.double()
        fused.weight.copy_((w * scale.view(-1, 1, 1, 1)).to(conv.weight.dtype))
        if fused.bias is None:
            fused.bias = nn.Parameter(torch.empty(conv.out_channels, dtype=conv.weight.dtype))
        fused.bias.copy_(new_bias.to(conv.weight.dtype))
    return fused


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in eval mode with every foldable conv+BN pair merged (see the module docstring).

    Folded BatchNorms become ``nn.Identity`` so that module names (and state-dict keys of the remaining
    layers) are unchanged. ``model`` itself is not modified. Outputs match the unfolded model in eval mode
    to float rounding (about 1e-6 relative in fp32).

    Example:
        >>> from hourglass import create_model
        >>> net = fold_batchnorm(create_model("hg1", num_channels=32))
        >>> isinstance(net.stem.bn, torch.nn.Identity)
        True
    """
    folded = copy.deepcopy(model).eval()
    for module in folded.modules():
        if isinstance(module, ResidualBlock):
            for conv_name, bn_name in _BLOCK_PAIRS:
                conv, bn = getattr(module, conv_name), getattr(module, bn_name)
                if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                    setattr(module, conv_name, fuse_conv_bn(conv, bn))
                    setattr(module, bn_name, nn.Identity())
        elif isinstance(module, nn.Sequential):
            names = list(module._modules)
            for first, second in itertools.pairwise(names):
                conv, bn = module._modules[first], module._modules[second]
                if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                    module._modules[first] = fuse_conv_bn(conv, bn)
                    module._modules[second] = nn.Identity()
    return folded


def count_batchnorms(model: nn.Module) -> int:
    """Number of ``BatchNorm2d`` modules left in ``model`` (after folding: one ``bn1`` per residual block)."""
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
