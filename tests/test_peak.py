"""The machine's peak: median and spread of the fastest engine, measured once per process, one error line."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from hourglass.errors import ConfigError
from hourglass.peak import PEAK_CONV, Peak, conv_peak, measure_peak, reference_conv, torch_engine


def four_times(conv: nn.Conv2d, x: torch.Tensor, precision: str) -> Callable[[], object]:
    """An engine that does the work of four calls in one: its peak is a quarter of PyTorch's."""
    once = torch_engine(conv, x, precision)

    def call() -> object:
        for _ in range(4):
            once()
        return None

    return call


def test_the_fastest_engine_gives_the_peak_with_its_spread() -> None:
    peak = measure_peak("fp32", {"slow": four_times, "torch": torch_engine}, rounds=3, iters=2, warmup=1, size=16)
    assert (peak.precision, peak.engine, peak.rounds) == ("fp32", "torch", 3)
    assert 0 < peak.gflops_min <= peak.gflops <= peak.gflops_max
    assert peak.share(peak.gflops / 2) == pytest.approx(0.5)
    text = peak.describe()
    assert text.startswith(f"{peak.gflops:.1f} GFLOP/s (3x3 conv, fp32, torch; median of 3 rounds, ")
    assert f"{peak.gflops_min:.1f}-{peak.gflops_max:.1f})" in text


def test_the_reference_convolution_and_its_flops() -> None:
    conv, x, flops = reference_conv("bf16")
    n, c = PEAK_CONV["batch"]["bf16"], PEAK_CONV["channels"]
    assert x.shape == (n, c, 64, 64) and (conv.in_channels, conv.out_channels, conv.kernel_size) == (c, c, (3, 3))
    assert flops == 2 * n * c * c * 9 * 64 * 64
    with torch.no_grad():  # the bf16 engine computes the same convolution, within bf16's precision
        want = conv(x)
        got = torch_engine(conv, x, "bf16")().float()
    assert torch.allclose(got, want, rtol=0.05, atol=0.05)


def test_the_peak_is_measured_once_per_process() -> None:
    first = conv_peak("fp32")
    assert isinstance(first, Peak) and first.engine == "torch" and first.rounds == 5
    assert conv_peak("fp32") is first  # a fixed reference: every share of a run is of the same figure


def test_bad_precisions_and_engines_are_one_line() -> None:
    with pytest.raises(ConfigError, match="unknown precision 'fp16'; expected one of fp32, bf16, int8"):
        measure_peak("fp16")
    with pytest.raises(ConfigError, match="PyTorch runs the peak convolution in fp32 or bf16, not 'int8'"):
        measure_peak("int8", size=8)
    with pytest.raises(ConfigError, match="no engine given"):
        measure_peak("fp32", {})
