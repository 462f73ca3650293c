"""Service fixtures: a tiny checkpoint, a real photo, a server with a key (helpers in ``tests/servers.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from servers import API_KEY, CORS_ORIGIN, Server, serve


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained hg1 with 16 channels at 64x64, MPII skeleton, written by the real checkpoint writer."""
    import torch

    from hourglass.checkpoint.io import save_checkpoint
    from hourglass.models import create_model

    torch.manual_seed(0)
    meta = {
        "model": {"name": "hg1", "kwargs": {"num_channels": 16}},
        "data": {"input_size": [64, 64], "skeleton": "mpii_16"},
    }
    path = tmp_path_factory.mktemp("serve") / "tiny.safetensors"
    return save_checkpoint(path, create_model("hg1", num_channels=16).eval(), meta)


@pytest.fixture(scope="session")
def photo(real_samples_dir: Path) -> Path:
    """A real photo (MPII validation, one person)."""
    return real_samples_dir / "mpii" / "004645041.jpg"


@pytest.fixture(scope="session")
def keyed_server(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with an API key (from HOURGLASS_API_KEY), one CORS origin, small caps and batching on."""
    options = ("--cors-origin", CORS_ORIGIN, "--max-body-mb", "0.25", "--max-pixels", "2000000")
    options += ("--max-batch", "4", "--max-wait-ms", "20", "--max-queue", "16", "--log-level", "warning")
    options += ("--backend", "eager", "--precision", "fp32")  # the reference: answers are compared with eager's
    with serve(tiny_checkpoint, tmp_path_factory.mktemp("keyed"), *options, env={"HOURGLASS_API_KEY": API_KEY}) as s:
        yield s
