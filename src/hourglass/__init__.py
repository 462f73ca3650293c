"""hourglass: Stacked Hourglass Networks for 2D keypoint estimation with PyTorch."""

from .models import Hourglass, ResidualBlock, StackedHourglass, create_model, list_models

__version__ = "0.1.0"

__all__ = ["Hourglass", "ResidualBlock", "StackedHourglass", "__version__", "create_model", "list_models"]
