"""BatchNorm folding: exact in eval mode, only where a convolution directly precedes the BatchNorm."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hourglass.inference.fold import count_batchnorms, fold_batchnorm, fuse_conv_bn
from hourglass.models import ResidualBlock, create_model


def test_fuse_conv_bn_matches_conv_then_bn(randomise) -> None:
    torch.manual_seed(0)
    for bias in (True, False):
        conv = nn.Conv2d(6, 5, 3, padding=1, bias=bias)
        bn = randomise(nn.Sequential(nn.BatchNorm2d(5)), seed=1)[0]
        x = torch.randn(2, 6, 7, 9)
        with torch.no_grad():
            torch.testing.assert_close(fuse_conv_bn(conv, bn)(x), bn(conv(x)), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="BatchNorm over 4 channels"):
        fuse_conv_bn(nn.Conv2d(3, 5, 1), nn.BatchNorm2d(4))


def test_folded_network_matches_and_keeps_only_bn1(tiny: nn.Module) -> None:
    folded = fold_batchnorm(tiny)
    blocks = [m for m in folded.modules() if isinstance(m, ResidualBlock)]
    # bn1 follows a residual sum (and is followed by a ReLU): the only BatchNorm left, one per block.
    assert count_batchnorms(folded) == len(blocks)
    assert all(isinstance(b.bn1, nn.BatchNorm2d) and isinstance(b.bn2, nn.Identity) for b in blocks)
    assert isinstance(folded.stem.bn, nn.Identity) and isinstance(folded.features[0].bn, nn.Identity)
    assert count_batchnorms(tiny) == 3 * len(blocks) + 1 + tiny.num_stacks  # the original is untouched
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        want, got = tiny(x), folded(x)
    assert want.abs().max() > 0.1
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_seed_module_folds(randomise) -> None:
    hg = randomise(create_model("hourglass-module", num_channels=16, depth=2, num_bottom_blocks=1))
    x = torch.rand(1, 16, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(fold_batchnorm(hg)(x), hg(x), rtol=1e-5, atol=1e-5)
