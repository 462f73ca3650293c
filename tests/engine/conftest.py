"""Fixtures of the engine tests: a tiny synthetic dataset written by the real writer, and tiny configs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from hourglass.data import write_synthetic
from hourglass.engine.checkpoints import save_checkpoint
from hourglass.models import create_model

PREDICT_INPUT = (128, 64)  # (H, W) of the predict checkpoint: a non-square input checks the aspect-ratio handling


@pytest.fixture(scope="session")
def synth_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``train/`` (32 figures, seed 1) and ``val/`` (8 figures, seed 2) in MPII format, 64x64 images."""
    root = tmp_path_factory.mktemp("synth")
    write_synthetic(root / "train", 32, format="mpii", seed=1, image_size=(64, 64))
    write_synthetic(root / "val", 8, format="mpii", seed=2, image_size=(64, 64))
    return root


def tiny_config(data: Path, out: Path, **sections: dict) -> dict:
    """A config dict for a 1-stack, 16-channel, depth-2 hourglass at 64x64 on ``data``; ``sections`` override."""
    cfg = {
        "model": {"name": "hg1", "kwargs": {"num_channels": 16, "depth": 2}},
        "data": {
            "format": "mpii",
            "train": {"annotations": str(data / "train" / "annotations.json"), "images": str(data / "train")},
            "val": {"annotations": str(data / "val" / "annotations.json"), "images": str(data / "val")},
            "input_size": [64, 64],
            "heatmap_size": [16, 16],
            "sigma": 1.0,
            "num_workers": 0,
        },
        "optim": {"name": "adam", "lr": 1e-3, "schedule": "constant"},
        "train": {
            "epochs": 2,
            "batch_size": 8,
            "amp": "none",
            "channels_last": False,
            "out_dir": str(out),
            "log_every": 1,
            "val_every": 0,
            "progress": False,
            "tensorboard": False,
        },
        "eval": {"batch_size": 8},
    }
    for name, values in sections.items():
        cfg[name].update(values)
    return cfg


def write_config(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture
def make_config(tmp_path: Path, synth_data: Path):
    """``make_config(overrides, data=None, **sections)`` -> (Config, YAML path) of a tiny run in ``tmp_path/run``."""
    from hourglass.engine.config import load_config

    counter = iter(range(1000))

    def make(overrides: list[str] | None = None, data: Path | None = None, **sections: dict):
        cfg = tiny_config(data or synth_data, tmp_path / "run", **sections)
        path = write_config(tmp_path / f"cfg{next(counter)}.yaml", cfg)
        return load_config(path, overrides), path

    return make


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
