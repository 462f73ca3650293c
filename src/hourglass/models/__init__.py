"""Model layer: imports torch only."""

from .blocks import ResidualBlock
from .hourglass import Hourglass
from .registry import create_model, list_models, register_model
from .stacked import StackedHourglass

__all__ = ["Hourglass", "ResidualBlock", "StackedHourglass", "create_model", "list_models", "register_model"]
