"""hourglass: Stacked Hourglass Networks for 2D keypoint estimation with PyTorch.

The top level holds the model builders and, imported on first use, what a user of a trained model needs:
``hourglass.load_model(path)`` (a checkpoint's network and :class:`~hourglass.checkpoint.meta.CheckpointMeta`)
and ``hourglass.Predictor`` (images in, keypoints out).
"""

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from .models import Hourglass, ResidualBlock, StackedHourglass, create_model, list_models

if TYPE_CHECKING:
    from .checkpoint.io import load_model
    from .inference.predictor import Predictor

DISTRIBUTION = "hourglass-pose"
"""The name ``pip`` knows the package by."""

try:
    __version__ = version(DISTRIBUTION)
    """The installed distribution's version (its metadata, written from ``pyproject.toml``)."""
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "Hourglass",
    "Predictor",
    "ResidualBlock",
    "StackedHourglass",
    "__version__",
    "create_model",
    "list_models",
    "load_model",
]


def __getattr__(name: str) -> Any:
    """Lazy exports: ``Predictor`` and ``load_model`` import OpenCV, safetensors and the data code on first use only."""
    if name == "Predictor":
        from .inference.predictor import Predictor

        return Predictor
    if name == "load_model":
        from .checkpoint.io import load_model

        return load_model
    raise AttributeError(f"module 'hourglass' has no attribute {name!r}")
