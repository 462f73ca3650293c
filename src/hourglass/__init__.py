"""hourglass: Stacked Hourglass Networks for 2D keypoint estimation with PyTorch."""

from typing import TYPE_CHECKING, Any

from .models import Hourglass, ResidualBlock, StackedHourglass, create_model, list_models

if TYPE_CHECKING:
    from .inference.predictor import Predictor

__version__ = "0.1.0"

__all__ = ["Hourglass", "Predictor", "ResidualBlock", "StackedHourglass", "__version__", "create_model", "list_models"]


def __getattr__(name: str) -> Any:
    """Lazy exports: ``hourglass.Predictor`` imports the inference engine (OpenCV, data) on first use only."""
    if name == "Predictor":
        from .inference.predictor import Predictor

        return Predictor
    raise AttributeError(f"module 'hourglass' has no attribute {name!r}")
