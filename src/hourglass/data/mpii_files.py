"""Reading MPII ground-truth and prediction files (``hourglass eval-mpii``, head boxes of ``data.<split>.head_boxes``).

Scoring is :func:`hourglass.evaluation.evaluate.evaluate_mpii_files`, the maths :mod:`hourglass.metrics.mpii`.
Both files use 1-based MATLAB pixel coordinates (the official evaluation's convention; our own predictions
are 0-based and gain 1 when saved for MPII, as HRNet does).

Predictions: a ``.mat`` (MATLAB v5, or v7.3 which is HDF5) or ``.h5`` file holding ``preds`` in either layout
anibali/eval-mpii-pose reads, ``[n x 16 x 2]`` or ``[2 x 16 x n]`` (``evalMPII.m`` permutes the second when the
first axis has size 2), or a ``gt_valid.mat``-style file's ``pos_pred_src`` ``(16, 2, N)``.

Ground truth: a ``gt_valid.mat``-style file (``pos_gt_src`` ``(16, 2, N)``, ``jnt_missing`` ``(16, N)``,
1 = not annotated, ``headboxes_src`` ``(2, 2, N)``, optionally ``dataset_joints``), or the ``annot/valid.h5`` of
anewell/pose-hg-train (``part`` ``(N, 16, 2)``, a joint labelled where ``part`` is not ``(0, 0)``, and
``normalize`` ``(N,)``, the head size). ``part`` is the ground truth rounded to whole pixels, so scores against
``valid.h5`` differ from those against the official file by that rounding (on the 2,958 validation people:
at most 0.05 in a PCKh@0.5 column, 0.6 at PCKh@0.1).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hourglass.data.matfiles import read_arrays
from hourglass.data.skeletons import MPII_16, MPII_FILE_JOINTS
from hourglass.errors import DataError
from hourglass.metrics.mpii import MPII_NUM_JOINTS, mpii_head_size


@dataclass(frozen=True)
class MPIIGroundTruth:
    """One ``gt_valid.mat``: ``keypoints`` ``(N, 16, 2)``, ``visible`` ``(N, 16)`` (annotated), ``head_size`` ``(N,)``.

    ``keypoints`` are as in the file (1-based); ``head_size`` is 0.6 x the head-box diagonal.
    """

    keypoints: np.ndarray
    visible: np.ndarray
    head_size: np.ndarray
    path: Path


def read_mpii_ground_truth(path: str | os.PathLike[str]) -> MPIIGroundTruth:
    """Read a ``gt_valid.mat``-style file (head sizes 0.6 x the head-box diagonals) or a pose-hg-train ``valid.h5``."""
    path = Path(path)
    keys = ("pos_gt_src", "jnt_missing", "headboxes_src", "dataset_joints", "part", "normalize")
    arrays = read_arrays(path, keys, "ground truth")
    if "pos_gt_src" not in arrays and "part" in arrays:
        return _torch_ground_truth(path, arrays)
    for key in ("pos_gt_src", "jnt_missing", "headboxes_src"):
        if key not in arrays:
            raise DataError(
                f"{path}: ground truth has no {key!r} array (a gt_valid.mat-style file holds pos_gt_src, "
                "jnt_missing and headboxes_src; a pose-hg-train valid.h5 holds part and normalize)"
            )
    pos, missing, boxes = arrays["pos_gt_src"], arrays["jnt_missing"], arrays["headboxes_src"]
    _expect_shape(path, "pos_gt_src", pos, (MPII_NUM_JOINTS, 2, None), "(16, 2, N)")
    n = pos.shape[2]
    _expect_shape(path, "jnt_missing", missing, (MPII_NUM_JOINTS, n), f"(16, {n})")
    _expect_shape(path, "headboxes_src", boxes, (2, 2, n), f"(2, 2, {n})")
    names = _joint_names(arrays.get("dataset_joints"))
    if names is not None and names not in (MPII_FILE_JOINTS, MPII_16.joint_names):
        raise DataError(
            f"{path}: dataset_joints is {', '.join(names)}; expected the MPII order {', '.join(MPII_FILE_JOINTS)} "
            f"(or {', '.join(MPII_16.joint_names)})"
        )
    return MPIIGroundTruth(
        keypoints=pos.transpose(2, 0, 1).astype(np.float64),
        visible=(missing.T == 0),
        head_size=mpii_head_size(boxes.transpose(2, 0, 1)),
        path=path,
    )


def _torch_ground_truth(path: Path, arrays: dict[str, Any]) -> MPIIGroundTruth:
    """pose-hg-train's ``valid.h5``: labelled where ``part != (0, 0)``, head size ``normalize`` as stored."""
    if "normalize" not in arrays:
        raise DataError(f"{path}: has 'part' but no 'normalize' (the head sizes of a pose-hg-train valid.h5)")
    part, norm = arrays["part"], arrays["normalize"]
    _expect_shape(path, "part", part, (None, MPII_NUM_JOINTS, 2), "(N, 16, 2)")
    n = part.shape[0]
    norm = np.asarray(norm, dtype=np.float64).reshape(-1)
    if norm.shape != (n,):
        raise DataError(f"{path}: 'normalize' has {norm.size} values, expected one head size per person ({n})")
    part = part.astype(np.float64)
    visible = ~(part == 0).all(axis=-1)
    bad = np.flatnonzero(visible.any(axis=1) & ~(np.isfinite(norm) & (norm > 0)))
    if bad.size:
        raise DataError(f"{path}: 'normalize' (head size) of person {bad[0]} is {norm[bad[0]]}, expected > 0")
    return MPIIGroundTruth(keypoints=part, visible=visible, head_size=norm, path=path)


def read_mpii_predictions(path: str | os.PathLike[str]) -> np.ndarray:
    """``(N, 16, 2)`` predictions, 1-based, from ``preds`` (or a gt file's ``pos_pred_src``); NaN = no prediction.

    ``preds`` may be ``(N, 16, 2)`` or ``(2, 16, N)``. When both fit (N = 2) the tie is broken as
    ``evalMPII.m`` breaks it, in MATLAB's axis order (a first axis of size 2 is the coordinate axis), which is
    the file's order for a ``.mat`` and the reverse for a ``.h5``.
    """
    path = Path(path)
    arrays = read_arrays(path, ("preds", "pos_pred_src"), "predictions")
    if "preds" in arrays:
        preds = arrays["preds"]
        points_first = _fits(preds, (None, MPII_NUM_JOINTS, 2))
        coords_first = _fits(preds, (2, MPII_NUM_JOINTS, None))
        if not (points_first or coords_first):
            raise DataError(f"{path}: 'preds' has shape {preds.shape}, expected (N, 16, 2) or (2, 16, N)")
        if coords_first and points_first:  # N = 2: MATLAB's first axis is the file's last for a .h5
            coords_first = path.suffix.lower() == ".mat"
        if coords_first:
            preds = preds.transpose(2, 1, 0)
    elif "pos_pred_src" in arrays:
        _expect_shape(path, "pos_pred_src", arrays["pos_pred_src"], (MPII_NUM_JOINTS, 2, None), "(16, 2, N)")
        preds = arrays["pos_pred_src"].transpose(2, 0, 1)
    else:
        raise DataError(f"{path}: predictions file has no 'preds' (N, 16, 2) or (2, 16, N) array")
    if not np.issubdtype(preds.dtype, np.number):
        raise DataError(f"{path}: 'preds' holds {preds.dtype} values, expected numbers")
    return preds.astype(np.float64)


def _joint_names(array: np.ndarray | None) -> tuple[str, ...] | None:
    """Joint names of a MATLAB cell array of strings (as scipy reads it); None when absent or not strings."""
    if array is None:
        return None
    names = []
    for cell in np.ravel(array):
        value = np.ravel(cell)[0] if isinstance(cell, np.ndarray) and cell.size else cell
        if isinstance(value, bytes):
            value = value.decode(errors="replace")
        if not isinstance(value, str):
            return None
        names.append(str(value))
    return tuple(names)


def _fits(array: np.ndarray, shape: tuple[int | None, ...]) -> bool:
    return array.ndim == len(shape) and all(s is None or s == a for s, a in zip(shape, array.shape, strict=False))


def _expect_shape(path: Path, key: str, array: np.ndarray, shape: tuple[int | None, ...], text: str) -> None:
    if not _fits(array, shape):
        raise DataError(f"{path}: {key!r} has shape {array.shape}, expected {text}")
