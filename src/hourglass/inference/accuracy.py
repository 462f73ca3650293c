"""The accuracy cost of a faster runtime: PCKh against ground truth, and agreement with the fp32 reference.

Both runtimes see the same crops of a validation set (no flip test, no augmentation). Their last-stack
heatmaps are decoded by the set's :class:`~hourglass.data.HeatmapCodec` (argmax + quarter-pixel shift),
mapped back to image pixels with the inverse crop transform, and scored:

- PCKh@0.5: a keypoint counts when it lies within half the head size of the ground truth
  (``<=``, as the official MPII evaluation), pooled over all labelled keypoints; reported in percent
  for both runtimes, and their difference in percentage points (candidate minus reference);
- ``within_1px``: the fraction of all keypoints (labelled or not) whose decoded position moved by at most
  one heatmap pixel from the reference's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from torch.utils.data import DataLoader

from hourglass.data.dataset import KeypointDataset, collate
from hourglass.data.transforms import crop_to_image_matrices
from hourglass.errors import DataError
from hourglass.inference.runtimes import HeatmapFn
from hourglass.metrics import keypoint_pck_accuracy


@dataclass(frozen=True)
class AccuracyCost:
    """PCKh@0.5 of both runtimes (percent), their difference (points) and the 1-heatmap-pixel agreement."""

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
        candidate, reference: ``images (B, 3, H, W) -> heatmaps (B, K, h, w)`` (e.g. :class:`Runtime`).
        dataset: a validation :class:`~hourglass.data.dataset.KeypointDataset` without augmentation whose
            records have head sizes (MPII, or :class:`~hourglass.data.synthetic.SyntheticFigures`).
        batch_size: crops per call.

    Raises:
        DataError: a record without a positive head size (naming its index), or an empty dataset.
    """
    if len(dataset) == 0:
        raise DataError(f"{dataset.source}: empty validation set")
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate)
    stride = np.asarray(dataset.codec.stride)  # heatmap px per crop px, (x, y)
    preds: dict[str, list[np.ndarray]] = {"candidate": [], "reference": []}
    moved: list[np.ndarray] = []
    for batch in loader:
        images = batch["image"].numpy()
        crops = {}
        for name, fn in (("candidate", candidate), ("reference", reference)):
            matrices = crop_to_image_matrices(batch["meta"], dataset.codec.input_size)
            image_kp, _, crop_kp = dataset.codec.decode_to_image(np.asarray(fn(images), dtype=np.float32), matrices)
            crops[name] = crop_kp
            preds[name].append(image_kp)
        moved.append(np.linalg.norm((crops["candidate"] - crops["reference"]) * stride, axis=-1))
    gt = dataset.annotations()
    visible = np.asarray(gt["visible"]) > 0
    head = np.asarray(gt["head_size"], dtype=np.float64)
    pckh = {
        name: 100.0 * keypoint_pck_accuracy(np.concatenate(p), gt["keypoints"], visible, 0.5, head).average
        for name, p in preds.items()
    }
    distances = np.concatenate(moved)
    return AccuracyCost(
        pckh_reference=pckh["reference"],
        pckh=pckh["candidate"],
        pckh_diff=pckh["candidate"] - pckh["reference"],
        within_1px=float((distances <= 1.0).mean()),
        instances=len(dataset),
        keypoints=int(visible.sum()),
    )
