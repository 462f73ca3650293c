"""hourglass: Stacked Hourglass Networks for 2D keypoint estimation with PyTorch.

The top level holds the model builders and, imported on first use, what a user of a trained model needs:
``hourglass.load_model(path)`` (a checkpoint's network and :class:`~hourglass.checkpoint.meta.CheckpointMeta`)
and ``hourglass.Predictor`` (images in, keypoints out). ``create_model(name, pretrained=True)`` loads published
weights by name (``hourglass weights list``); ``hourglass.models.create_model`` builds presets only.
"""

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from torch import nn

from . import models
from .models import Hourglass, ResidualBlock, StackedHourglass, list_models

if TYPE_CHECKING:
    from .checkpoint.load import load_model
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


def create_model(name: str, pretrained: bool = False, **overrides: Any) -> nn.Module:
    """Build the preset ``name`` (:func:`hourglass.models.create_model`), or, with ``pretrained=True``, the
    network of the published weights ``name`` (a name of ``hourglass weights list``, or a URL) with those
    weights, fetched, converted once and cached on first use, returned in eval mode.

    With ``pretrained=True``, ``overrides`` (e.g. ``num_joints=16``) must agree with the weights' settings:
    a mismatch is a :class:`~hourglass.errors.CheckpointError` naming the setting.

    Example:
        >>> create_model("hg2", num_joints=17).num_joints
        17
    """
    if not pretrained:
        return models.create_model(name, **overrides)
    from .checkpoint.load import load_model

    model, _ = load_model(name, expect=overrides or None)
    return model


def __getattr__(name: str) -> Any:
    """Lazy exports: ``Predictor`` and ``load_model`` import OpenCV, safetensors and the data code on first use only."""
    if name == "Predictor":
        from .inference.predictor import Predictor

        return Predictor
    if name == "load_model":
        from .checkpoint.load import load_model

        return load_model
    raise AttributeError(f"module 'hourglass' has no attribute {name!r}")
