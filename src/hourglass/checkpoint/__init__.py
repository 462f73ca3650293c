"""Checkpoint files: typed metadata (``meta``), safetensors read and write (``io``), foreign weights in (``convert``).

Below training, evaluation and inference, which all read checkpoints; imports models and data only.
"""

from .io import load_model, read_meta, save_checkpoint
from .meta import CheckpointMeta

__all__ = ["CheckpointMeta", "load_model", "read_meta", "save_checkpoint"]
