"""A tiny stacked hourglass with non-trivial BatchNorm statistics, shared by the deploy tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from hourglass.models import StackedHourglass

TINY_INPUT = (32, 32)


def randomise_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm random affine parameters and running statistics, so folding is not a no-op."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.2)
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.3)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
    return model.eval()


@pytest.fixture(scope="session")
def randomise():
    """:func:`randomise_batchnorm`, as a fixture (test modules here are not importable packages)."""
    return randomise_batchnorm


@pytest.fixture(scope="session")
def tiny() -> StackedHourglass:
    """2 stacks, 16 channels, depth 2, 4 joints: input (B, 3, 32, 32) -> (B, 2, 4, 8, 8)."""
    torch.manual_seed(0)
    return randomise_batchnorm(StackedHourglass(num_stacks=2, num_joints=4, num_channels=16, depth=2))


@pytest.fixture(scope="session")
def mpii_photos(real_samples_dir: Path) -> list[Path]:
    """The real MPII photos (JPEG) of ``shared/data/real-samples/mpii``, sorted; ``test_mpii.json`` is beside them."""
    return sorted((real_samples_dir / "mpii").glob("*.jpg"))
