"""PCK: the fraction of keypoints within a threshold of the ground truth, after normalising distances.

Pure numpy functions in the style of mmpose's ``keypoint_pck_accuracy``; the normalising length is
whatever the protocol asks for (the head size for PCKh, the box size for PCK@bbox, the torso for PCK@torso).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from hourglass.errors import DataError, InputError


class PCKResult(NamedTuple):
    """Per-joint accuracy ``(K,)`` (NaN where no keypoint of that joint was scored), pooled accuracy, count."""

    per_joint: np.ndarray
    average: float
    count: int


def keypoint_distances(pred: ArrayLike, gt: ArrayLike, mask: ArrayLike, norm: ArrayLike) -> np.ndarray:
    """Normalised distances ``(N, K)``; NaN where a keypoint is not scored.

    Args:
        pred: ``(N, K, 2)`` predicted ``(x, y)``; non-finite coordinates count as misses (distance ``inf``).
        gt: ``(N, K, 2)`` ground-truth ``(x, y)`` in the same pixel convention as ``pred``.
        mask: ``(N, K)`` true where the ground-truth keypoint is annotated and must be scored.
        norm: ``(N,)`` one normalising length per instance (head size, box size), or ``(N, 2)`` one per
            axis (mmpose 0.x normalises x by the box width and y by its height).

    Raises:
        InputError, DataError: on shapes that do not fit, naming them, or on a normalising length that is not positive
            and finite for an instance with scored keypoints (naming the instance index).
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    norm = np.asarray(norm, dtype=np.float64)
    if gt.ndim != 3 or gt.shape[-1] != 2:
        raise InputError(f"gt must have shape (N, K, 2), got {gt.shape}")
    if pred.shape != gt.shape:
        raise InputError(f"pred must have the shape of gt {gt.shape}, got {pred.shape}")
    if mask.shape != gt.shape[:2]:
        raise InputError(f"mask must have shape {gt.shape[:2]} (N, K), got {mask.shape}")
    n = gt.shape[0]
    if norm.shape not in ((n,), (n, 2)):
        raise InputError(f"norm must have shape ({n},) or ({n}, 2), got {norm.shape}")
    norm2 = np.broadcast_to(norm.reshape(n, -1), (n, 2))
    bad = mask.any(axis=1) & ~(np.isfinite(norm2).all(axis=1) & (norm2 > 0).all(axis=1))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"normalising length of instance {i} is {norm[i]!r}; it must be positive and finite "
            f"({int(bad.sum())} instance(s) with scored keypoints have such a length)"
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        dist = np.linalg.norm((pred - gt) / norm2[:, None, :], axis=-1)
    dist[~np.isfinite(dist)] = np.inf
    dist[~mask] = np.nan
    return dist


def pck_from_distances(distances: ArrayLike, thr: float, inclusive: bool = True) -> PCKResult:
    """PCK of normalised distances ``(N, K)`` (NaN = not scored) at threshold ``thr``.

    A keypoint counts when ``distance <= thr`` (the official MPII evaluation) or, with ``inclusive=False``,
    when ``distance < thr`` (mmpose and bearpaw/pytorch-pose). ``average`` pools all scored keypoints
    (each keypoint weighs the same, as the official MPII "total" does); mmpose instead averages the
    per-joint accuracies, which weighs rarely annotated joints more.
    """
    d = np.asarray(distances, dtype=np.float64)
    if d.ndim != 2:
        raise InputError(f"distances must have shape (N, K), got {d.shape}")
    scored = ~np.isnan(d)
    with np.errstate(invalid="ignore"):
        hits = (d <= thr) if inclusive else (d < thr)
    hits &= scored
    counts = scored.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_joint = np.where(counts > 0, hits.sum(axis=0) / np.maximum(counts, 1), np.nan)
    total = int(counts.sum())
    average = float(hits.sum() / total) if total else float("nan")
    return PCKResult(per_joint, average, total)


def keypoint_pck_accuracy(
    pred: ArrayLike, gt: ArrayLike, mask: ArrayLike, thr: float, norm: ArrayLike, inclusive: bool = True
) -> PCKResult:
    """PCK at ``thr`` times a per-instance length, for any skeleton (mmpose's function, two departures).

    Args:
        pred: ``(N, K, 2)`` predicted ``(x, y)``.
        gt: ``(N, K, 2)`` ground truth.
        mask: ``(N, K)`` keypoints to score (annotated ones).
        thr: fraction of the normalising length, e.g. 0.5 for PCKh@0.5 or 0.2 for PCK@0.2 of the box.
        norm: ``(N,)`` or ``(N, 2)``, see :func:`keypoint_distances`; for PCK@bbox pass
            :func:`bbox_size` of the boxes (mmpose 1.x uses the longer side for both axes).
        inclusive: ``<=`` (default, as the official MPII evaluation) or ``<`` (as mmpose).

    Returns:
        :class:`PCKResult` with fractions in ``[0, 1]``. Departures from mmpose: unscored joints are NaN
        (mmpose: -1), ``average`` pools keypoints (mmpose: mean over joints), and ``count`` is the number
        of scored keypoints (mmpose: of joints with any).

    Example:
        >>> gt = np.zeros((1, 2, 2)); pred = np.array([[[3.0, 4.0], [0.0, 20.0]]])
        >>> keypoint_pck_accuracy(pred, gt, np.ones((1, 2), bool), 0.5, np.array([10.0])).average
        0.5
    """
    return pck_from_distances(keypoint_distances(pred, gt, mask, norm), thr, inclusive)


def bbox_size(boxes: ArrayLike) -> np.ndarray:
    """Normalising length ``(N,)`` of ``(N, 4)`` COCO ``[x, y, w, h]`` boxes: ``max(w, h)`` (mmpose 1.x)."""
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise InputError(f"boxes must have shape (N, 4) as [x, y, w, h], got {boxes.shape}")
    return np.maximum(boxes[:, 2], boxes[:, 3])
