"""Training losses, as pure functions of tensors."""

from __future__ import annotations

import torch

from hourglass.errors import InputError


def heatmap_loss(outputs: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Masked mean squared error on heatmaps, summed over stacks (intermediate supervision).

    ``loss = sum_s mean_{b,k,y,x} w[b,k] * (outputs[b,s,k,y,x] - targets[b,k,y,x])**2``

    Each stack is compared with the same target (Newell et al., Sec. 3.4). The official Torch code uses
    an unmasked ``nn.MSECriterion`` per stack, so joints without a label pull their heatmap towards zero;
    here a joint with weight 0 (unlabelled, or its Gaussian off the map) contributes nothing. The mean runs
    over all ``B*K*h*w`` entries, masked or not, like the official criterion (bearpaw's ``JointsMSELoss``
    adds a factor 0.5 and averages per joint; the gradients differ only by a constant factor).

    Args:
        outputs: ``(B, S, K, h, w)`` heatmaps of every stack, or ``(B, K, h, w)`` for a single one.
        targets: ``(B, K, h, w)`` target heatmaps.
        weights: ``(B, K)`` per-joint weights (0 masks a joint out).

    Returns:
        A scalar tensor in float32, whatever the dtype of ``outputs`` (mixed precision).

    Example:
        >>> out = torch.zeros(2, 3, 16, 8, 8)
        >>> heatmap_loss(out, torch.ones(2, 16, 8, 8), torch.ones(2, 16)).item()
        3.0
    """
    if outputs.dim() == 4:
        outputs = outputs.unsqueeze(1)
    if outputs.dim() != 5:
        raise InputError(f"heatmap_loss: outputs must be (B, S, K, h, w), got shape {tuple(outputs.shape)}")
    b, _, k, h, w = outputs.shape
    if targets.shape != (b, k, h, w):
        raise InputError(
            f"heatmap_loss: targets must be (B, K, h, w) = {(b, k, h, w)} to match outputs "
            f"{tuple(outputs.shape)}, got {tuple(targets.shape)}"
        )
    if weights.shape != (b, k):
        raise InputError(f"heatmap_loss: weights must be (B, K) = {(b, k)}, got {tuple(weights.shape)}")
    diff = outputs.float() - targets.float().unsqueeze(1)
    per_joint = diff.pow(2).mean(dim=(-2, -1))
    return (per_joint * weights.float().unsqueeze(1)).mean(dim=(0, 2)).sum()
