"""The seed tutorial's quiz, on this library (``examples/seed_walkthrough.py``, ``docs/seed-walkthrough.md``)."""

from __future__ import annotations

from torch import nn

from hourglass.engine.inspect import probe

QUIZ_LAYERS = ("midconv_1.conv2", "upconv_3.conv2")
SEED_INPUT = (256, 64, 64)


def quiz_answer(model: nn.Module, input_size: tuple[int, int, int] = SEED_INPUT) -> int:
    """The seed's quiz: ``A * (B - C // 3)`` of each hooked output ``(1, A, B, C)``, summed (3200 for the seed)."""
    shapes = probe(model, list(QUIZ_LAYERS), input_size)
    return sum(a * (b - c // 3) for _, a, b, c in shapes.values())
