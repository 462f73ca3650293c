"""Named model presets, timm-style: each preset only sets arguments and calls one builder."""

from __future__ import annotations

import difflib
import fnmatch
import inspect
import typing
from collections.abc import Callable
from typing import Any

from torch import nn

from hourglass.errors import ConfigError

from .blocks import ResidualBlock
from .hourglass import Hourglass
from .stacked import StackedHourglass

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register ``fn`` under its name with ``_`` written as ``-`` (``hourglass_module`` -> ``hourglass-module``).

    A second registration of a name is refused (a :class:`ConfigError` naming both functions), so a preset
    cannot silently replace another.
    """
    name = fn.__name__.replace("_", "-")
    if name in _REGISTRY:
        old = _REGISTRY[name]
        raise ConfigError(
            f"model {name!r} is already registered by {old.__module__}.{old.__qualname__}; "
            f"refusing {fn.__module__}.{fn.__qualname__}"
        )
    _REGISTRY[name] = fn
    return fn


def list_models(pattern: str = "*") -> list[str]:
    """Names accepted by :func:`create_model` that match the ``fnmatch`` wildcard ``pattern``, sorted.

    Example:
        >>> list_models("hg*")
        ['hg1', 'hg2', 'hg4', 'hg8']
    """
    return sorted(name for name in _REGISTRY if fnmatch.fnmatchcase(name, pattern))


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Build the preset ``name`` with keyword ``overrides`` of its arguments.

    Example:
        >>> net = create_model("hg2", num_joints=17)
        >>> net.num_joints
        17
    """
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    check_keywords(name, overrides)
    return _REGISTRY[name](**overrides)


def model_keywords(name: str) -> list[str] | None:
    """The keywords preset ``name`` accepts: those of the class it builds (its return annotation), whose
    ``__init__`` receives them, less ``self``; ``None`` when that cannot be told (no class annotated, or
    an ``__init__`` taking ``**kwargs``).

    Example:
        >>> "num_channels" in model_keywords("hg1")
        True
    """
    try:
        builder = typing.get_type_hints(_REGISTRY[name]).get("return")
    except NameError:  # an annotation that does not resolve: nothing to check against
        return None
    if not inspect.isclass(builder):
        return None
    params = inspect.signature(builder.__init__).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params if p.name != "self"]


def check_keywords(name: str, overrides: dict[str, Any]) -> None:
    """Refuse keywords the builder of preset ``name`` does not take, with the closest known one.

    Raises:
        ConfigError: ``unknown model keyword 'num_chanels' for hg1; did you mean 'num_channels'?``.
    """
    known = model_keywords(name)
    for key in overrides:
        if known is not None and key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(known)}"
            raise ConfigError(f"unknown model keyword {key!r} for {name}; {hint}")


def _stacked(num_stacks: int, **kwargs: Any) -> StackedHourglass:
    args: dict[str, Any] = dict(num_stacks=num_stacks, num_joints=16, num_channels=256, depth=4)
    args.update(kwargs)
    return StackedHourglass(**args)


@register_model
def hg1(**kwargs: Any) -> StackedHourglass:
    """1-stack official network: 3.43M parameters, 5.15 G multiply-adds at 256x256."""
    return _stacked(1, **kwargs)


@register_model
def hg2(**kwargs: Any) -> StackedHourglass:
    """2-stack official network: 6.57M parameters, 8.33 G multiply-adds at 256x256."""
    return _stacked(2, **kwargs)


@register_model
def hg4(**kwargs: Any) -> StackedHourglass:
    """4-stack official network: 12.86M parameters, 14.70 G multiply-adds at 256x256."""
    return _stacked(4, **kwargs)


@register_model
def hg8(**kwargs: Any) -> StackedHourglass:
    """8-stack official network (the paper's MPII model): 25.43M parameters, 27.44 G multiply-adds."""
    return _stacked(8, **kwargs)


MPII_RGB_MEAN = (0.4404, 0.4440, 0.4327)
"""Per-channel mean of MPII training images in [0, 1] RGB, which bearpaw/pytorch-pose subtracts from its inputs
(its ``color_normalize``; anibali/pytorch-stacked-hourglass's ``Mpii.RGB_MEAN`` holds the same values)."""


def _bearpaw(num_stacks: int, blocks: int, **kwargs: Any) -> StackedHourglass:
    """bearpaw's ``HourglassNet``: ``blocks`` per unit and at the bottom (unless overridden), its stem, MPII mean."""
    blocks = kwargs.get("num_blocks", blocks)
    args: dict[str, Any] = dict(num_blocks=blocks, num_bottom_blocks=blocks, stem="bearpaw", input_mean=MPII_RGB_MEAN)
    args.update(kwargs)
    return _stacked(num_stacks, **args)


@register_model
def bearpaw_hg1(**kwargs: Any) -> StackedHourglass:
    """bearpaw/pytorch-pose's ``hg1``: 1 stack of 8 blocks per unit, its wider stem, MPII mean subtracted."""
    return _bearpaw(1, 8, **kwargs)


@register_model
def bearpaw_hg2(**kwargs: Any) -> StackedHourglass:
    """bearpaw/pytorch-pose's ``hg2``: 2 stacks of 4 blocks per unit, its wider stem, MPII mean subtracted."""
    return _bearpaw(2, 4, **kwargs)


@register_model
def bearpaw_hg4(**kwargs: Any) -> StackedHourglass:
    """bearpaw/pytorch-pose's ``hg4``: 4 stacks of 2 blocks per unit, its wider stem, MPII mean subtracted."""
    return _bearpaw(4, 2, **kwargs)


@register_model
def bearpaw_hg8(**kwargs: Any) -> StackedHourglass:
    """bearpaw/pytorch-pose's ``hg8``: 8 stacks of 1 block per unit, its wider stem, MPII mean subtracted."""
    return _bearpaw(8, 1, **kwargs)


@register_model
def hourglass_module(**kwargs: Any) -> Hourglass:
    """The seed's module: ``Hourglass(ResidualBlock)``, 256 channels, depth 4, 3 bottom blocks."""
    args: dict[str, Any] = dict(block=ResidualBlock, num_channels=256, depth=4, num_bottom_blocks=3)
    args.update(kwargs)
    return Hourglass(**args)
