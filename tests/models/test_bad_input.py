"""Bad input tensors are refused before any computation, with expected and actual shapes named."""

from __future__ import annotations

import pytest
import torch

from hourglass import Hourglass, ResidualBlock, create_model


class CountingBlock(ResidualBlock):
    calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        CountingBlock.calls += 1
        return super().forward(x)


@pytest.mark.parametrize(
    ("shape", "pattern"),
    [
        ((3, 64, 64), r"expected a 4-D tensor \(B, 3, H, W\), got 3-D with shape \(3, 64, 64\)"),
        ((1, 1, 64, 64), r"expected 3 channels, shape \(B, 3, H, W\), got shape \(1, 1, 64, 64\)"),
        ((1, 3, 64, 60), r"height and width must be divisible by 64, got shape \(1, 3, 64, 60\)"),
        ((1, 3, 96, 64), r"height and width must be divisible by 64, got shape \(1, 3, 96, 64\)"),
    ],
)
def test_stacked_network_rejects_bad_shapes(shape: tuple[int, ...], pattern: str) -> None:
    model = create_model("hg1", num_channels=16)
    with pytest.raises(ValueError, match=r"StackedHourglass input: " + pattern):
        model(torch.rand(*shape))


def test_hourglass_rejects_bad_shapes_before_computing() -> None:
    hg = Hourglass(CountingBlock, num_channels=16)
    CountingBlock.calls = 0
    with pytest.raises(ValueError, match=r"expected 16 channels.*got shape \(1, 8, 32, 32\)"):
        hg(torch.rand(1, 8, 32, 32))
    with pytest.raises(ValueError, match=r"divisible by 16, got shape \(1, 16, 24, 32\)"):
        hg(torch.rand(1, 16, 24, 32))
    with pytest.raises(ValueError, match=r"4-D"):
        hg(torch.rand(16, 32, 32))
    assert CountingBlock.calls == 0


def test_non_tensor_input() -> None:
    with pytest.raises(ValueError, match=r"expected a torch\.Tensor"):
        create_model("hg1", num_channels=16)([[1.0]])
