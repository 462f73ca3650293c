"""A network from any checkpoint the project reads: a local file, the name of published weights, or a URL.

The top of the checkpoint room: :func:`load_model` resolves the source (:func:`hourglass.checkpoint.hub.
resolve_checkpoint`: fetched, converted once by :mod:`hourglass.checkpoint.convert`, cached) and reads the file
(:func:`hourglass.checkpoint.io.open_model`). Below it, one way: ``hub`` -> ``convert`` -> ``io``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from hourglass.checkpoint.hub import resolve_checkpoint
from hourglass.checkpoint.io import open_model
from hourglass.checkpoint.meta import CheckpointMeta

__all__ = ["load_model"]


def load_model(
    path: str | os.PathLike[str],
    map_location: str | torch.device = "cpu",
    expect: Mapping[str, Any] | None = None,
) -> tuple[nn.Module, CheckpointMeta]:
    """Rebuild the model of a checkpoint, load its weights, return ``(model.eval(), meta)``.

    ``path`` is a ``.safetensors`` file, or the name of published weights (``hourglass weights list``) or an
    ``http(s)://`` / ``file://`` URL, fetched, converted once and cached
    (:func:`hourglass.checkpoint.hub.resolve_checkpoint`).

    Example (a small untrained model saved, then rebuilt from the file alone):
        >>> import tempfile
        >>> from pathlib import Path
        >>> from hourglass.checkpoint.io import save_checkpoint
        >>> from hourglass.models import create_model
        >>> folder = Path(tempfile.mkdtemp())
        >>> data = {"input_size": [128, 128], "skeleton": "mpii_16"}
        >>> meta = {"model": {"name": "hg1", "kwargs": {"num_channels": 16}}, "data": data}
        >>> path = save_checkpoint(folder / "hg1.safetensors", create_model("hg1", num_channels=16), meta)
        >>> model, meta = load_model(path)
        >>> meta.input_size, meta.skeleton.name
        ((128, 128), 'mpii_16')
        >>> import shutil; shutil.rmtree(folder)

    ``expect`` optionally gives ``model`` settings (``name`` and/or kwargs such as ``num_joints``) that the
    checkpoint must match; a mismatch is a :class:`~hourglass.errors.CheckpointError` naming the setting and
    both values.
    """
    return open_model(resolve_checkpoint(path), map_location, expect)
