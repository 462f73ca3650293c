"""MPII PCKh by the official protocol, and by the bearpaw and HRNet conventions for comparison.

The official MATLAB evaluation (``evaluatePCKh.m`` of the MPII Human Pose benchmark):

* head size = 0.6 x the diagonal of the annotated head box (``SC_BIAS``);
* a joint counts when ``distance / head size <= threshold``;
* joints that are not annotated (``jnt_missing = 1``) are not scored; occluded but annotated ones are;
* Head = mean of the upper-neck and head-top PCKh, each limb = mean of its left and right joint;
* Total = pooled over the 14 joints other than pelvis and thorax (each annotated joint weighs the same).

Two other scripts are in circulation and give other figures on the same predictions:

* ``"bearpaw"`` (bearpaw/pytorch-pose ``evaluation/eval_PCKh.py``): Head = head top only, strict ``<``,
  Total = unweighted mean of the 14 per-joint PCKh (this is the "Mean" in bearpaw's README);
* ``"hrnet"`` (HRNet ``lib/dataset/mpii.py``, copied by mmpose 0.x): Head = head top only, ``<=``,
  Total = count-weighted mean of the 14 joints (equal to the official Total). Its ``Mean@0.1`` reads row 11
  of ``np.arange(0, 0.51, 0.01)``, i.e. a threshold of 0.11, not 0.1; we reproduce that so that figures
  compare with HRNet's tables, and the official protocol uses 0.1.

Joint order is MPII's (the order of ``hourglass.data.MPII_16``): 0 r_ankle, 1 r_knee, 2 r_hip, 3 l_hip,
4 l_knee, 5 l_ankle, 6 pelvis, 7 thorax, 8 upper_neck, 9 head_top, 10 r_wrist, 11 r_elbow, 12 r_shoulder,
13 l_shoulder, 14 l_elbow, 15 l_wrist. Scores are percentages.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from hourglass.errors import ConfigError, InputError

from .pck import keypoint_distances, pck_from_distances

Protocol = Literal["official", "bearpaw", "hrnet"]
PROTOCOLS: tuple[str, ...] = ("official", "bearpaw", "hrnet")
PCKH_COLUMNS: tuple[str, ...] = ("Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Total")
MPII_NUM_JOINTS = 16
HEAD_SIZE_FACTOR = 0.6  # SC_BIAS of the official evaluation

_PELVIS, _THORAX, _NECK, _HEAD_TOP = 6, 7, 8, 9
TOTAL_JOINTS: tuple[int, ...] = tuple(j for j in range(MPII_NUM_JOINTS) if j not in (_PELVIS, _THORAX))
"""The 14 joints pooled into the Total (all but pelvis and thorax), by every protocol here."""
_LIMBS = {"Shoulder": (12, 13), "Elbow": (11, 14), "Wrist": (10, 15), "Hip": (2, 3), "Knee": (1, 4), "Ankle": (0, 5)}


def mpii_head_size(headboxes: ArrayLike, factor: float = HEAD_SIZE_FACTOR) -> np.ndarray | float:
    """Head size ``(N,)`` = ``factor`` x the diagonal of each head box ``(N, 2, 2)`` = ``[[x1, y1], [x2, y2]]``;
    for one box ``(4,)`` = ``(x1, y1, x2, y2)``, a float. The one head-size function (datasets, evaluation).

    (The ``headboxes_src`` array of ``gt_valid.mat`` is ``(2, 2, N)``; transpose it with ``.transpose(2, 0, 1)``.)
    """
    boxes = np.asarray(headboxes, dtype=np.float64)
    if boxes.shape == (4,):  # one box as (x1, y1, x2, y2)
        return factor * float(np.hypot(boxes[2] - boxes[0], boxes[3] - boxes[1]))
    if boxes.ndim != 3 or boxes.shape[1:] != (2, 2):
        raise InputError(f"head boxes must have shape (N, 2, 2) as [[x1, y1], [x2, y2]], got {boxes.shape}")
    return factor * np.linalg.norm(boxes[:, 1] - boxes[:, 0], axis=-1)


def mpii_pckh_per_joint(
    pred: ArrayLike, gt: ArrayLike, visible: ArrayLike, head_size: ArrayLike, thr: float, inclusive: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Per-joint PCKh in percent ``(16,)`` (NaN for a joint never annotated) and the scored counts ``(16,)``.

    Args:
        pred: ``(N, 16, 2)`` predictions; gt: ``(N, 16, 2)``; both in one pixel convention (1-based MATLAB
            or 0-based, as long as it is the same).
        visible: ``(N, 16)`` true where the joint is annotated (``1 - jnt_missing``).
        head_size: ``(N,)`` the normalising length, already multiplied by 0.6 (see :func:`mpii_head_size`).
        thr: threshold as a fraction of the head size; inclusive: ``<=`` (official) or ``<`` (bearpaw).
    """
    gt = np.asarray(gt)
    if gt.ndim != 3 or gt.shape[1:] != (MPII_NUM_JOINTS, 2):
        raise InputError(f"MPII ground truth must have shape (N, 16, 2), got {gt.shape}")
    dist = keypoint_distances(pred, gt, visible, head_size)
    result = pck_from_distances(dist, thr, inclusive)
    return 100.0 * result.per_joint, (~np.isnan(dist)).sum(axis=0)


def summarize_pckh(per_joint: ArrayLike, counts: ArrayLike, protocol: Protocol = "official") -> dict[str, float]:
    """The table columns (:data:`PCKH_COLUMNS`) from per-joint PCKh ``(16,)`` and counts ``(16,)``."""
    check_protocol(protocol)
    pckh = np.asarray(per_joint, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    if protocol == "official":
        head = 0.5 * (pckh[_NECK] + pckh[_HEAD_TOP])
    else:
        head = pckh[_HEAD_TOP]
    out = {"Head": float(head)}
    for name, (a, b) in _LIMBS.items():
        out[name] = float(0.5 * (pckh[a] + pckh[b]))
    idx = list(TOTAL_JOINTS)
    if protocol == "bearpaw":
        total = np.nanmean(pckh[idx]) if np.isfinite(pckh[idx]).any() else np.nan
    else:
        weights = counts[idx]
        total = np.nansum(pckh[idx] * weights) / weights.sum() if weights.sum() else np.nan
    out["Total"] = float(total)
    return out


def mpii_pckh(
    pred: ArrayLike,
    gt: ArrayLike,
    visible: ArrayLike,
    head_size: ArrayLike,
    thr: float = 0.5,
    protocol: Protocol = "official",
) -> dict[str, float]:
    """PCKh@``thr`` in percent: ``{"Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Total"}``.

    Shapes as in :func:`mpii_pckh_per_joint`; ``protocol`` is ``"official"`` (default), ``"bearpaw"`` or
    ``"hrnet"`` (see the module docstring for how they differ).

    Example:
        >>> gt = np.tile(np.arange(32.0).reshape(1, 16, 2), (2, 1, 1))
        >>> mpii_pckh(gt + 1.0, gt, np.ones((2, 16), bool), np.array([10.0, 2.0]))["Total"]
        50.0
    """
    check_protocol(protocol)
    per_joint, counts = mpii_pckh_per_joint(pred, gt, visible, head_size, thr, inclusive=protocol != "bearpaw")
    return summarize_pckh(per_joint, counts, protocol)


def mpii_pckh_report(
    pred: ArrayLike,
    gt: ArrayLike,
    visible: ArrayLike,
    head_size: ArrayLike,
    thr: float = 0.5,
    protocol: Protocol = "official",
) -> dict[str, float]:
    """:func:`mpii_pckh` at ``thr`` plus ``"Mean@0.1"``: the Total at 0.1 (at 0.11 for ``"hrnet"``, as HRNet)."""
    out = mpii_pckh(pred, gt, visible, head_size, thr, protocol)
    low = 0.11 if protocol == "hrnet" else 0.1
    out["Mean@0.1"] = mpii_pckh(pred, gt, visible, head_size, low, protocol)["Total"]
    return out


def check_protocol(protocol: str) -> None:
    """Raise ConfigError unless ``protocol`` is one of :data:`PROTOCOLS`."""
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown PCKh protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")
