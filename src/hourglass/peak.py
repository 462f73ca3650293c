"""The machine's peak: the fastest large 3x3 convolution, the reference for the benches' share of peak.

One 3x3 convolution, 256 -> 256 channels on ``(N, 256, 64, 64)`` (``N`` = 2 in fp32, 8 in bf16 and int8),
is timed by each engine given for the precision: PyTorch (:func:`torch_engine`: fp32 in the default layout,
bf16 with channels_last under autocast) for ``hourglass bench --train``, and also OpenVINO through its own
runtime for ``hourglass bench`` (the only engine for int8, so int8 is compared with an int8 peak). The
engines take turns over ``rounds`` rounds of ``iters`` calls each, so that a burst of load on a shared
machine hits them alike. A round's figure is its median call; an engine's peak is the median of its rounds,
and the slowest and fastest round give its spread. The engine with the highest median is the peak.

FLOPs count 2 per multiply-add (``2 N 256^2 9 64^2``), as the benches count the networks' convolutions.
:func:`conv_peak` measures once per process and precision and keeps the result, so every share a run
reports is of one fixed reference, printed with its spread.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from hourglass.device import autocast_context, eager_precision
from hourglass.errors import ConfigError

PEAK_CONV: dict[str, Any] = {"channels": 256, "size": 64, "batch": {"fp32": 2, "bf16": 8, "int8": 8}}
"""The reference convolution: channels in and out, height = width, batch per precision."""

Engine = Callable[[nn.Conv2d, torch.Tensor, str], Callable[[], object]]
"""``(conv, x, precision) -> call``: builds ``conv`` for ``precision`` on an engine and returns a call that
runs it once on ``x`` (its output left where the engine puts it: only the convolution is timed)."""


@dataclass(frozen=True)
class Peak:
    """A measured peak in GFLOP/s: the median round of the fastest engine, with its slowest and fastest round."""

    precision: str
    engine: str
    gflops: float
    gflops_min: float
    gflops_max: float
    rounds: int

    @classmethod
    def of_row(cls, row: Any) -> Peak:
        """The peak a benchmark row was compared with, from its ``precision``, ``peak_engine``, ``peak_gflops``,
        ``peak_gflops_min``, ``peak_gflops_max`` and ``peak_rounds`` (both benches' rows carry them)."""
        return cls(
            row.precision, row.peak_engine, row.peak_gflops, row.peak_gflops_min, row.peak_gflops_max, row.peak_rounds
        )

    def share(self, gflops: float) -> float:
        """``gflops`` as a fraction of this peak's median."""
        return gflops / self.gflops

    def describe(self) -> str:
        """``2301.5 GFLOP/s (3x3 conv, bf16, torch; median of 5 rounds, 2250.1-2330.4)``."""
        return (
            f"{self.gflops:.1f} GFLOP/s (3x3 conv, {self.precision}, {self.engine}; "
            f"median of {self.rounds} rounds, {self.gflops_min:.1f}-{self.gflops_max:.1f})"
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def torch_engine(conv: nn.Conv2d, x: torch.Tensor, precision: str) -> Callable[[], object]:
    """Eager PyTorch, set up as the eager runtime is (:func:`hourglass.device.eager_precision`): fp32 as given,
    bf16 with channels_last weights and input under CPU autocast."""
    if precision not in ("fp32", "bf16"):
        raise ConfigError(f"PyTorch runs the peak convolution in fp32 or bf16, not {precision!r}")
    channels_last, amp = eager_precision(precision)
    if channels_last:  # on a copy: the other engines get the convolution as it was
        conv = copy.deepcopy(conv).to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)

    def call() -> object:
        with torch.inference_mode(), autocast_context(torch.device("cpu"), amp):
            return conv(x)

    return call


def reference_conv(precision: str, size: int | None = None) -> tuple[nn.Conv2d, torch.Tensor, float]:
    """``(conv, x, FLOPs of one call)`` of the reference convolution at ``precision`` (``size`` overrides 64)."""
    if precision not in PEAK_CONV["batch"]:
        raise ConfigError(f"unknown precision {precision!r}; expected one of {', '.join(PEAK_CONV['batch'])}")
    c, n = PEAK_CONV["channels"], PEAK_CONV["batch"][precision]
    s = PEAK_CONV["size"] if size is None else size
    conv = nn.Conv2d(c, c, 3, padding=1).eval()
    x = torch.rand(n, c, s, s, generator=torch.Generator().manual_seed(0))
    return conv, x, float(2 * n * c * c * 9 * s * s)


def measure_peak(
    precision: str,
    engines: Mapping[str, Engine] | None = None,
    rounds: int = 5,
    iters: int = 4,
    warmup: int = 2,
    size: int | None = None,
) -> Peak:
    """Time the reference convolution on every engine in turn; the fastest median round is the peak.

    Args:
        precision: ``fp32``, ``bf16`` or ``int8``.
        engines: name -> :data:`Engine` (default: ``{"torch": torch_engine}``).
        rounds, iters: rounds per engine, calls per round (a round's figure is its median call).
        warmup: untimed calls per engine first.
        size: height and width of the input (default 64; smaller for a quick check).

    Raises:
        ConfigError: an unknown precision, or no engines.
    """
    engines = {"torch": torch_engine} if engines is None else engines
    if not engines:
        raise ConfigError(f"no engine given to measure the {precision} peak convolution")
    conv, x, flops = reference_conv(precision, size)
    calls = {name: build(conv, x, precision) for name, build in engines.items()}
    for call in calls.values():
        for _ in range(warmup):
            call()
    speeds: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            times = []
            for _ in range(iters):
                start = time.perf_counter()
                call()
                times.append(time.perf_counter() - start)
            speeds[name].append(flops / float(np.median(times)) / 1e9)
    best = max(speeds, key=lambda name: float(np.median(speeds[name])))
    runs = speeds[best]
    return Peak(precision, best, float(np.median(runs)), min(runs), max(runs), rounds)


_MEASURED: dict[tuple[str, tuple[str, ...]], Peak] = {}


def conv_peak(precision: str, engines: Mapping[str, Engine] | None = None) -> Peak:
    """:func:`measure_peak` once per process for each precision and set of engine names, then the same result."""
    key = (precision, tuple(sorted(engines or ("torch",))))
    if key not in _MEASURED:
        _MEASURED[key] = measure_peak(precision, engines)
    return _MEASURED[key]
