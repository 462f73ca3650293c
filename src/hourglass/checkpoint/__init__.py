"""Checkpoints, bottom to top: typed metadata (``meta``), our safetensors files read and written (``io``), foreign
weights converted in (``convert``), published weights by name or URL fetched and cached (``hub``), and a network
from any of them (``load``: :func:`load_model`). Each imports only those before it.

Below training, evaluation and inference, which all read checkpoints; imports models and data only.
"""

from .io import read_meta, save_checkpoint
from .load import load_model
from .meta import CheckpointMeta

__all__ = ["CheckpointMeta", "load_model", "read_meta", "save_checkpoint"]
