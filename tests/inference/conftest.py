"""Inference fixtures: a tiny stacked hourglass (BatchNorm randomised), a predict checkpoint, the real MPII photos."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hourglass.checkpoint.io import save_checkpoint
from hourglass.models import StackedHourglass, create_model

TINY_INPUT = (32, 32)
PREDICT_INPUT = (128, 64)  # (H, W) of the predict checkpoint: a non-square input checks the aspect-ratio handling


@pytest.fixture(scope="session")
def tiny(randomise) -> StackedHourglass:
    """2 stacks, 16 channels, depth 2, 4 joints: input (B, 3, 32, 32) -> (B, 2, 4, 8, 8)."""
    torch.manual_seed(0)
    return randomise(StackedHourglass(num_stacks=2, num_joints=4, num_channels=16, depth=2))


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


@pytest.fixture(scope="session")
def mpii_photos(real_samples_dir: Path) -> list[Path]:
    """The real MPII photos (JPEG) of ``shared/data/real-samples/mpii``, sorted; ``test_mpii.json`` is beside them."""
    return sorted((real_samples_dir / "mpii").glob("*.jpg"))
