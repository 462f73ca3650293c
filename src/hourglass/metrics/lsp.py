"""PCK@0.2 of the torso: the Leeds Sports Pose protocol (LSP and LSP-extended, 14 joints).

As the evaluation code that LSP papers report with computes it (MPII's ``evalLSP``, restated in
bearpaw/eval_pose ``utils/eval_pck.m``: "torso height: ||left_shoulder - right hip||", after Sapp and Taskar,
CVPR 2013):

* the normalising length of a person is the distance between the ground-truth left shoulder and right hip
  (joints 9 and 2 of :data:`hourglass.data.LSP_14`; :func:`lsp_torso_size`);
* a joint counts when ``distance / torso <= threshold`` (0.2);
* each column averages the per-joint PCK of a joint and its mirror partner: Head = neck and head top,
  Shoulder, Elbow, Wrist, Hip, Knee, Ankle = right and left;
* Mean pools every scored joint (the script's last column; on a fully labelled set it equals the mean of the
  14 per-joint PCKs and of the 7 columns).

The LSP test set labels all 14 joints of every person and the script scores them all. LSP-extended leaves about
12% of joints unlabelled: here only labelled joints are scored, and a person without a labelled left shoulder or
right hip (or with both at one point) has no torso and is not scored at all (28% of LSPet's people). Scores are
percentages. Joint order is LSP's: 0 right ankle, 1 right knee, 2 right hip, 3 left hip, 4 left knee,
5 left ankle, 6 right wrist, 7 right elbow, 8 right shoulder, 9 left shoulder, 10 left elbow, 11 left wrist,
12 neck, 13 head top.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from hourglass.errors import InputError

from .pck import keypoint_distances, pck_from_distances

LSP_NUM_JOINTS = 14
LSP_COLUMNS: tuple[str, ...] = ("Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Mean")
_RIGHT_HIP, _LEFT_SHOULDER = 2, 9
_PARTS = {"Head": (12, 13), "Shoulder": (8, 9), "Elbow": (7, 10), "Wrist": (6, 11), "Hip": (2, 3), "Knee": (1, 4),
          "Ankle": (0, 5)}  # fmt: skip


def lsp_torso_size(gt: ArrayLike, visible: ArrayLike) -> np.ndarray:
    """Torso length ``(N,)`` = ``|left shoulder - right hip|`` of ``(N, 14, 2)`` ground truth; NaN for a person
    whose left shoulder or right hip is not labelled (``visible`` ``(N, 14)`` false there)."""
    gt = _check(gt)
    visible = np.asarray(visible, dtype=bool)
    if visible.shape != gt.shape[:2]:
        raise InputError(f"visible must have shape {gt.shape[:2]} (N, 14), got {visible.shape}")
    size = np.linalg.norm(gt[:, _LEFT_SHOULDER] - gt[:, _RIGHT_HIP], axis=-1)
    return np.where(visible[:, _LEFT_SHOULDER] & visible[:, _RIGHT_HIP], size, np.nan)


def lsp_pck(pred: ArrayLike, gt: ArrayLike, visible: ArrayLike, thr: float = 0.2) -> dict[str, float]:
    """PCK@``thr`` of the torso in percent: ``{"Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Mean"}``.

    Args:
        pred: ``(N, 14, 2)`` predicted ``(x, y)``; non-finite coordinates count as misses.
        gt: ``(N, 14, 2)`` ground truth in the same pixel convention.
        visible: ``(N, 14)`` true where the ground-truth joint is labelled (it is scored).
        thr: threshold as a fraction of the torso length (:func:`lsp_torso_size`).

    People without a torso are left out (see the module docstring); a column none of whose joints was scored is NaN.

    Example:
        >>> gt = np.zeros((1, 14, 2)); gt[0, 9] = (0.0, 10.0)  # left shoulder 10 px above the right hip
        >>> pred = gt.copy(); pred[0, :7, 0] += 3.0  # legs and the right wrist 3 px off: 0.3 torso
        >>> lsp_pck(pred, gt, np.ones((1, 14), bool))["Mean"]
        50.0
    """
    gt = _check(gt)
    visible = np.asarray(visible, dtype=bool)
    torso = lsp_torso_size(gt, visible)
    has_torso = np.isfinite(torso) & (torso > 0)
    dist = keypoint_distances(pred, gt, visible & has_torso[:, None], np.where(has_torso, torso, np.nan))
    result = pck_from_distances(dist, thr)
    per_joint = 100.0 * result.per_joint
    out = {name: float(0.5 * (per_joint[a] + per_joint[b])) for name, (a, b) in _PARTS.items()}
    out["Mean"] = 100.0 * result.average
    return out


def _check(gt: ArrayLike) -> np.ndarray:
    gt = np.asarray(gt, dtype=np.float64)
    if gt.ndim != 3 or gt.shape[1:] != (LSP_NUM_JOINTS, 2):
        raise InputError(f"LSP ground truth must have shape (N, 14, 2), got {gt.shape}")
    return gt
