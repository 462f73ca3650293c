"""The masked heatmap loss: stack sum, masking, shapes."""

from __future__ import annotations

import pytest
import torch

from hourglass.losses import heatmap_loss


def test_matches_the_formula_and_sums_over_stacks() -> None:
    g = torch.Generator().manual_seed(0)
    out = torch.rand(2, 3, 4, 5, 6, generator=g)
    tgt = torch.rand(2, 4, 5, 6, generator=g)
    w = torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 1.0, 0.5]])
    expected = sum(((out[:, s] - tgt) ** 2 * w[:, :, None, None]).mean() for s in range(3))
    assert heatmap_loss(out, tgt, w).item() == pytest.approx(expected.item(), rel=1e-6)
    # a single stack (B, K, h, w) is the same as one stack of a (B, 1, K, h, w) output
    assert heatmap_loss(out[:, 0], tgt, w).item() == pytest.approx(heatmap_loss(out[:, :1], tgt, w).item())


def test_masked_joints_get_no_gradient() -> None:
    out = torch.rand(1, 2, 3, 4, 4, requires_grad=True)
    w = torch.tensor([[1.0, 0.0, 1.0]])
    heatmap_loss(out, torch.zeros(1, 3, 4, 4), w).backward()
    assert out.grad[:, :, 1].abs().sum() == 0
    assert out.grad[:, :, 0].abs().sum() > 0 and out.grad[:, :, 2].abs().sum() > 0


def test_bf16_outputs_give_a_float32_loss() -> None:
    loss = heatmap_loss(torch.ones(1, 1, 2, 4, 4, dtype=torch.bfloat16), torch.zeros(1, 2, 4, 4), torch.ones(1, 2))
    assert loss.dtype == torch.float32 and loss.item() == 1.0


@pytest.mark.parametrize(
    ("out", "tgt", "w", "match"),
    [
        ((1, 1, 2, 4, 4), (1, 3, 4, 4), (1, 2), "targets must be"),
        ((1, 1, 2, 4, 4), (1, 2, 4, 4), (2,), "weights must be"),
        ((4, 4), (1, 2, 4, 4), (1, 2), "outputs must be"),
    ],
)
def test_shape_errors_name_the_tensor(out: tuple, tgt: tuple, w: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        heatmap_loss(torch.zeros(out), torch.zeros(tgt), torch.zeros(w))
