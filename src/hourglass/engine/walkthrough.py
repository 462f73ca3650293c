"""The seed tutorial retold on this library: build the module, summarise it, answer its quiz with hooks."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from hourglass.engine.inspect import probe, summarize
from hourglass.models import Hourglass, ResidualBlock

QUIZ_LAYERS = ("midconv_1.conv2", "upconv_3.conv2")
SEED_INPUT = (256, 64, 64)


def quiz_answer(model: nn.Module, input_size: tuple[int, int, int] = SEED_INPUT) -> int:
    """The seed's quiz: ``A * (B - C // 3)`` of each hooked output ``(1, A, B, C)``, summed (3200 for the seed)."""
    shapes = probe(model, list(QUIZ_LAYERS), input_size)
    return sum(a * (b - c // 3) for _, a, b, c in shapes.values())


def run_walkthrough(out: Callable[[str], None] = print) -> int:
    """Print the seed's steps and return the quiz answer."""
    hg = Hourglass(ResidualBlock)
    s = summarize(hg, SEED_INPUT, depth=1)
    out("Seed walkthrough: hg = Hourglass(ResidualBlock), input 1 x 256 x 64 x 64")
    out(s.table)
    out(f"Total parameters: {s.parameters:,} (the seed's summary: 3,217,920)")
    shapes = probe(hg, list(QUIZ_LAYERS), SEED_INPUT)
    for name, shape in shapes.items():
        out(f"  hook {name}: output {tuple(shape)}")
    answer = quiz_answer(hg)
    out(f"Your answer is : {answer}")
    return answer
