"""Inspecting a model: layer table, parameter and multiply-add counts, forward hooks on named layers, the seed quiz."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from hourglass.errors import ConfigError


def default_input_size(model: nn.Module) -> tuple[int, int, int]:
    """``(C, H, W)`` a model is usually fed: 3x256x256 for stacked networks, Cx64x64 for a lone hourglass."""
    if hasattr(model, "in_channels") and hasattr(model, "num_stacks"):
        return (model.in_channels, 256, 256)
    return (getattr(model, "num_channels", 256), 64, 64)


def image_size(given: Sequence[int], channels: int) -> tuple[int, int]:
    """``(H, W)`` of an input size given as ``H W`` or ``C H W``: the one reading of ``--input-size``.

    Every command and function that takes an input size reads it here (through :func:`input_shape` or
    :meth:`~hourglass.checkpoint.meta.CheckpointMeta.input_size_or`); ``C``, when given, must be the
    model's input channels ``channels``.

    Raises:
        ConfigError: another count of numbers, a ``C`` other than ``channels``, or a size below 1.

    Example:
        >>> image_size([3, 128, 96], channels=3), image_size([128, 96], channels=3)
        ((128, 96), (128, 96))
    """
    sizes = tuple(int(v) for v in given)
    text = " ".join(map(str, sizes))
    if len(sizes) not in (2, 3):
        raise ConfigError(
            f"input size '{text}': expected H W (or C H W, C = {channels} for this model), got {len(sizes)} "
            + ("number" if len(sizes) == 1 else "numbers")
        )
    if len(sizes) == 3 and sizes[0] != channels:
        raise ConfigError(
            f"input size '{text}': C = {sizes[0]} but the model takes {channels} channels; give H W or {channels} H W"
        )
    h, w = sizes[-2:]
    if h < 1 or w < 1:
        raise ConfigError(f"input size '{text}': height and width must be positive")
    return h, w


def input_shape(model: nn.Module, given: Sequence[int] | None = None) -> tuple[int, int, int]:
    """``(C, H, W)`` of one input of ``model``: ``given`` as ``H W`` or ``C H W`` (:func:`image_size`), the
    channels being the model's, or :func:`default_input_size` when nothing is given."""
    c, h, w = default_input_size(model)
    return (c, h, w) if given is None else (c, *image_size(given, c))


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (buffers such as BatchNorm running statistics excluded)."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, input_size: tuple[int, int, int], batch: int = 1) -> int:
    """Multiply-adds of one forward pass at ``(batch, *input_size)``, by ``torch.utils.flop_counter``.

    torch counts 2 FLOPs per multiply-add of convolutions and matmuls (normalisation, activation, pooling
    and additions are not counted); this returns half of its total. The pass runs on a copy of the model
    on the ``meta`` device, so it costs no arithmetic and leaves ``model`` untouched.
    """
    shadow = copy.deepcopy(model).to("meta").eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        shadow(torch.zeros(batch, *input_size, device="meta"))
    return counter.get_total_flops() // 2


@dataclass(frozen=True)
class Summary:
    table: str
    parameters: int
    macs: int
    input_size: tuple[int, int, int]


def summarize(model: nn.Module, input_size: tuple[int, int, int], depth: int = 3) -> Summary:
    """torchinfo's layer table (output shapes, parameters) plus totals from :func:`count_macs`.

    Raises:
        InputError: ``input_size`` does not fit the model (channels, or a side not divisible by its
            ``input_multiple``): found by the shape-only pass of :func:`count_macs` before torchinfo runs
            (which would wrap the error in its own).
    """
    import torchinfo

    macs = count_macs(model, input_size)
    stats = torchinfo.summary(
        model,
        input_size=(1, *input_size),
        depth=depth,
        col_names=("output_size", "num_params"),
        row_settings=("var_names",),
        device="cpu",
        mode="eval",
        verbose=0,
    )
    return Summary(str(stats), count_parameters(model), macs, input_size)


def probe(model: nn.Module, layers: list[str], input_size: tuple[int, int, int]) -> dict[str, tuple[int, ...]]:
    """Run one forward pass on ``rand(1, *input_size)`` and return each named layer's output shape.

    Layer names are dotted paths as in ``model.named_modules()`` (e.g. ``midconv_1.conv2``). A layer run
    several times reports its last output.
    """
    modules = dict(model.named_modules())
    missing = [name for name in layers if name not in modules]
    if missing:
        some = ", ".join(list(modules)[1:12])
        raise ConfigError(f"no layer named {', '.join(missing)} in the model; layers include: {some}, ...")
    shapes: dict[str, tuple[int, ...]] = {}
    handles = []
    for name in layers:

        def hook(_module: nn.Module, _inputs: object, output: torch.Tensor, name: str = name) -> None:
            shapes[name] = tuple(output.shape)

        handles.append(modules[name].register_forward_hook(hook))
    try:
        model.eval()
        with torch.no_grad():
            model(torch.rand(1, *input_size))
    finally:
        for h in handles:
            h.remove()
    return shapes


QUIZ_LAYERS = ("midconv_1.conv2", "upconv_3.conv2")
SEED_INPUT = (256, 64, 64)


def quiz_answer(model: nn.Module, input_size: tuple[int, int, int] = SEED_INPUT) -> int:
    """The seed tutorial's quiz (``examples/seed_walkthrough.py``, ``docs/seed-walkthrough.md``):
    ``A * (B - C // 3)`` of each hooked output ``(1, A, B, C)``, summed (3200 for the seed)."""
    shapes = probe(model, list(QUIZ_LAYERS), input_size)
    return sum(a * (b - c // 3) for _, a, b, c in shapes.values())
