"""hourglass: Stacked Hourglass Networks for 2D keypoint estimation with PyTorch.

The top level holds the model builders and, imported on first use, what a user of a trained model needs:
``hourglass.load_model(path)`` (a checkpoint's network and :class:`~hourglass.checkpoint.meta.CheckpointMeta`)
and ``hourglass.Predictor`` (images in, keypoints out).
"""

from typing import TYPE_CHECKING, Any

from .models import Hourglass, ResidualBlock, StackedHourglass, create_model, list_models

if TYPE_CHECKING:
    from .checkpoint.io import load_model
    from .inference.predictor import Predictor

__version__ = "0.1.0"

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
