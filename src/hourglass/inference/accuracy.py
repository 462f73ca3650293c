"""The accuracy cost of a faster runtime: PCKh against ground truth, and agreement with the fp32 reference.

Both runtimes see the same crops of a validation set (no flip test, no augmentation), through the loop
evaluation uses (:func:`~hourglass.data.dataset.predict_dataset`: last-stack heatmaps decoded by the set's
:class:`~hourglass.data.HeatmapCodec`, argmax + quarter-pixel shift, mapped back to image pixels with the
inverse crop transform), and are scored:

- PCKh@0.5 by the official MPII protocol (:func:`~hourglass.metrics.mpii_pckh`): a keypoint counts when it
  lies within half the head size of the ground truth (``<=``), pooled over the labelled keypoints of the
  14 joints other than pelvis and thorax, as ``hourglass eval`` reports it; in percent for both runtimes,
  and their difference in percentage points (candidate minus reference);
- ``within_1px``: the fraction of all keypoints (labelled or not) whose decoded position moved by at most
  one heatmap pixel from the reference's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from hourglass.data.dataset import KeypointDataset, predict_dataset
from hourglass.errors import DataError
from hourglass.inference.runtimes import HeatmapFn
from hourglass.metrics import TOTAL_JOINTS, mpii_pckh


@dataclass(frozen=True)
class AccuracyCost:
    """Official PCKh@0.5 (14 joints) of both runtimes in percent, their difference in points, the 1-heatmap-pixel
    agreement, the figures compared and the labelled keypoints the PCKh pools."""

    pckh_reference: float
    pckh: float
    pckh_diff: float
    within_1px: float
    instances: int
    keypoints: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def accuracy_cost(
    candidate: HeatmapFn, reference: HeatmapFn, dataset: KeypointDataset, batch_size: int = 8
) -> AccuracyCost:
    """Compare ``candidate`` (e.g. an int8 runtime) with ``reference`` (fp32) on ``dataset``.

    Args:
        candidate, reference: ``images (B, 3, H, W) -> heatmaps (B, 16, h, w)`` (e.g. :class:`Runtime`).
        dataset: a validation :class:`~hourglass.data.dataset.KeypointDataset` of MPII's 16 joints without
            augmentation whose records have head sizes (MPII, or
            :class:`~hourglass.synthetic.figures.SyntheticFigures`).
        batch_size: crops per call.

    Raises:
        DataError: an empty dataset, or one of another skeleton than MPII's 16 joints.
    """
    if len(dataset) == 0:
        raise DataError(f"{dataset.source}: empty validation set")
    k = dataset.skeleton.num_joints
    if k != 16:
        raise DataError(f"{dataset.source}: the official PCKh needs MPII's 16 joints, the skeleton has {k}")
    found = {
        name: predict_dataset(_numpy_call(fn), dataset, dataset.codec, k, batch_size)
        for name, fn in (("candidate", candidate), ("reference", reference))
    }
    stride = np.asarray(dataset.codec.stride)  # heatmap px per crop px, (x, y)
    moved = (found["candidate"].crop_keypoints - found["reference"].crop_keypoints) * stride
    gt = dataset.annotations()
    visible = np.asarray(gt["visible"]) > 0
    head = np.asarray(gt["head_size"], dtype=np.float64)
    pckh = {name: mpii_pckh(p.keypoints, gt["keypoints"], visible, head, 0.5)["Total"] for name, p in found.items()}
    return AccuracyCost(
        pckh_reference=pckh["reference"],
        pckh=pckh["candidate"],
        pckh_diff=pckh["candidate"] - pckh["reference"],
        within_1px=float((np.linalg.norm(moved, axis=-1) <= 1.0).mean()),
        instances=len(dataset),
        keypoints=int(visible[:, list(TOTAL_JOINTS)].sum()),
    )


def _numpy_call(fn: HeatmapFn) -> Any:
    """``fn`` taking the loader's image tensor as a float32 array."""

    def call(images: torch.Tensor) -> np.ndarray:
        return np.asarray(fn(images.numpy()), dtype=np.float32)

    return call
