"""A tiny stacked hourglass with non-trivial BatchNorm statistics, shared by the deploy tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from hourglass.checkpoint.io import save_checkpoint
from hourglass.models import StackedHourglass, create_model

TINY_INPUT = (32, 32)
PREDICT_INPUT = (128, 64)  # (H, W) of the predict checkpoint: a non-square input checks the aspect-ratio handling


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
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small untrained hg1 (16 MPII joints, input :data:`PREDICT_INPUT`) saved the way training saves them."""
    torch.manual_seed(0)
    kwargs = {"num_joints": 16, "num_channels": 32}
    model = create_model("hg1", **kwargs)
    meta = {
        "model": {"name": "hg1", "kwargs": kwargs},
        "data": {"input_size": list(PREDICT_INPUT), "heatmap_size": [32, 16], "sigma": 2.0, "skeleton": "mpii_16"},
        "step": 0,
        "epoch": 0,
        "metrics": {},
    }
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "hg1.safetensors", model, meta)
