"""The seed tutorial's module: names, the quiz answer, the fixed skip, and its forward order."""

from __future__ import annotations

import base64
import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hourglass import Hourglass, ResidualBlock

SEED_NAMES = [
    *[n for i in range(1, 5) for n in (f"downconv_{i}", f"pool_{i}")],
    "midconv_1",
    "midconv_2",
    "midconv_3",
    *[f"skipconv_{i}" for i in range(1, 5)],
    *[f"upconv_{i}" for i in range(1, 5)],
]


def seed_calc_answer(model: nn.Module) -> int:
    """The seed's `Calculator`/`calc_anwser`, kept as written there (base64 layer names and all)."""

    class Calculator:
        def __init__(self, model: nn.Module) -> None:
            self.answer = 0
            modules = [b"bWlkY29udl8x\n", b"dXBjb252XzM=\n"]
            layer = b"Y29udjI=\n"
            for m in modules:
                self.hook = (
                    model._modules[base64.decodebytes(m).decode()]
                    ._modules[base64.decodebytes(layer).decode()]
                    .register_forward_hook(self.hook_fn)
                )

        def hook_fn(self, module: nn.Module, input: object, output: torch.Tensor) -> None:
            self.answer += self._get_answer(output)

        def _get_answer(self, l: torch.Tensor) -> int:
            _, A, B, C = l.shape
            return A * (B - C // 3)

    model_test = copy.deepcopy(model)
    calc = Calculator(model_test)
    model_test(torch.rand(1, 256, 64, 64))
    return calc.answer


def test_seed_construction_and_names() -> None:
    hg = Hourglass(ResidualBlock)
    assert list(hg._modules) == SEED_NAMES
    block = hg.midconv_1
    assert [n for n, _ in block.named_children()] == ["bn1", "conv1", "bn2", "conv2", "bn3", "conv3", "relu"]
    assert all(m.bias is not None for m in (block.conv1, block.conv2, block.conv3))
    assert (block.conv1.out_channels, block.conv2.kernel_size, block.conv3.out_channels) == (128, (3, 3), 256)


def test_seed_quiz_prints_3200() -> None:
    torch.manual_seed(0)
    assert seed_calc_answer(Hourglass(ResidualBlock)) == 3200


def seed_forward(hg: Hourglass, x: torch.Tensor, top_skip: str = "skipconv_1") -> torch.Tensor:
    """The seed's forward, statement by statement, on the module's own sub-blocks.

    ``top_skip="skipconv_2"`` reproduces the seed's original line ``x1 = self.skipconv_2(x1)``.
    """
    up = nn.Upsample(scale_factor=2)
    x1 = hg.downconv_1(x)
    x = hg.pool_1(x1)
    x2 = hg.downconv_2(x)
    x = hg.pool_2(x2)
    x3 = hg.downconv_3(x)
    x = hg.pool_3(x3)
    x4 = hg.downconv_4(x)
    x = hg.pool_4(x4)
    x = hg.midconv_1(x)
    x = hg.midconv_2(x)
    x = hg.midconv_3(x)
    x4 = hg.skipconv_4(x4)
    x = up(x)
    x = x + x4
    x = hg.upconv_1(x)
    x3 = hg.skipconv_3(x3)
    x = up(x)
    x = x + x3
    x = hg.upconv_2(x)
    x2 = hg.skipconv_2(x2)
    x = up(x)
    x = x + x2
    x = hg.upconv_3(x)
    x1 = getattr(hg, top_skip)(x1)
    x = up(x)
    x = x + x1
    x = hg.upconv_4(x)
    return x


def randomise_batchnorm(model: nn.Module) -> None:
    """Give BatchNorm layers non-trivial statistics so that an eval-mode comparison tests them too."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


def test_forward_matches_the_seed_order_with_the_fixed_skip() -> None:
    torch.manual_seed(0)
    hg = Hourglass(ResidualBlock, num_channels=32).eval()
    randomise_batchnorm(hg)
    x = torch.rand(2, 32, 32, 32)
    with torch.no_grad():
        ours = hg(x)
        torch.testing.assert_close(ours, seed_forward(hg, x), rtol=1e-5, atol=1e-5)
        # The seed's own line (skipconv_2 on the top-level skip) gives a different result: the fix is real.
        assert (ours - seed_forward(hg, x, top_skip="skipconv_2")).abs().max() > 1e-3


def test_skipconv_1_is_used_and_trained() -> None:
    hg = Hourglass(ResidualBlock, num_channels=16)
    hg(torch.rand(2, 16, 16, 16)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in hg.skipconv_1.parameters())


def newell_forward(hg: Hourglass, x: torch.Tensor, level: int = 1) -> torch.Tensor:
    """The official recursion (princeton-vl ``Hourglass.forward``: up1, pool1, low1, low2, low3, up2)."""
    up1 = getattr(hg, f"skipconv_{level}")(x)
    low1 = getattr(hg, f"downconv_{level}")(getattr(hg, f"pool_{level}")(x))
    if level < hg.depth:
        low2 = newell_forward(hg, low1, level + 1)
    else:
        low2 = low1
        for i in range(1, hg.num_bottom_blocks + 1):
            low2 = getattr(hg, f"midconv_{i}")(low2)
    low3 = getattr(hg, f"upconv_{hg.depth + 1 - level}")(low2)
    return up1 + F.interpolate(low3, scale_factor=2, mode="nearest")


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_newell_layout_matches_the_official_recursion(depth: int) -> None:
    torch.manual_seed(depth)
    hg = Hourglass(ResidualBlock, num_channels=16, depth=depth, num_bottom_blocks=1, layout="newell").eval()
    randomise_batchnorm(hg)
    x = torch.rand(2, 16, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(hg(x), newell_forward(hg, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("depth", [1, 2, 3, 5])
def test_any_depth_is_named_like_the_seed(depth: int) -> None:
    hg = Hourglass(ResidualBlock, num_channels=8, depth=depth, num_bottom_blocks=2)
    names = set(hg._modules)
    for i in range(1, depth + 1):
        assert {f"downconv_{i}", f"pool_{i}", f"skipconv_{i}", f"upconv_{i}"} <= names
    assert {"midconv_1", "midconv_2"} <= names and "midconv_3" not in names
    size = 2**depth * 2
    assert hg(torch.rand(2, 8, size, size)).shape == (2, 8, size, size)


def test_constructor_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="depth must be >= 1"):
        Hourglass(ResidualBlock, depth=0)
    with pytest.raises(ValueError, match="layout"):
        Hourglass(ResidualBlock, layout="other")  # type: ignore[arg-type]
