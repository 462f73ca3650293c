"""COCO keypoint AP/AR (object keypoint similarity) through pycocotools' ``COCOeval``, for any skeleton.

``COCOeval`` is the reference implementation; we only feed it. Its per-joint OKS constants
(``params.kpt_oks_sigmas``) are hard-coded for the 17 COCO joints; here they come from the caller (a
skeleton's ``sigmas``), so any COCO-format keypoint dataset can be scored. Inputs are not modified
(pycocotools writes ``id``, ``area`` and ``bbox`` into result dicts; we pass copies) and its progress
prints are silenced.
"""

from __future__ import annotations

import contextlib
import copy
import io
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from hourglass.errors import DataError, InputError
from hourglass.extras import require_extra

COCO_STATS: tuple[str, ...] = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")
AREA_PER_BOX = 0.53  # mmpose 1.x BaseCocoStyleDataset.parse_data_info: area = clip(w * h * 0.53, 1, None)


def coco_keypoint_eval(
    gt: Mapping[str, Any],
    results: Sequence[Mapping[str, Any]],
    sigmas: ArrayLike,
    source: str = "COCO ground truth",
) -> dict[str, float]:
    """AP/AR over OKS thresholds 0.50:0.05:0.95, as ``COCOeval(iouType="keypoints")`` computes them.

    Args:
        gt: a COCO keypoint annotation file's content: ``images``, ``categories`` and ``annotations``, each
            annotation with ``image_id``, ``category_id``, ``keypoints`` (``3K`` numbers ``x, y, v``),
            ``bbox``, ``area`` (OKS scale: the instance's segment area; when absent, as in the CrowdPose and AI
            Challenger files, :func:`area_from_box` with one warning) and optionally ``iscrowd`` and
            ``num_keypoints`` (counted from ``v > 0`` when absent; instances with none are ignored).
        results: COCO results, each ``{"image_id", "category_id", "keypoints": [x, y, s] * K, "score"}``.
        sigmas: ``(K,)`` per-joint OKS constants (COCO's are 0.025 to 0.107; a skeleton's ``sigmas``).
        source: what ``gt`` is in messages (its file).

    Returns:
        ``{"AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"}`` as fractions; -1 where
        pycocotools finds nothing to score (e.g. no medium instances). With no results at all, AP and AR
        are 0.

    Raises:
        DataError: naming the annotation or result index whose keypoints do not have ``3K`` numbers or
            that lacks a field, or a result for an image that is not in ``gt``.
    """
    COCO = require_extra("pycocotools.coco", "coco").COCO
    COCOeval = require_extra("pycocotools.cocoeval", "coco").COCOeval

    sigmas = np.asarray(sigmas, dtype=np.float64)
    if sigmas.ndim != 1 or not (sigmas > 0).all():
        raise InputError(f"sigmas must be a (K,) array of positive numbers, got shape {sigmas.shape}")
    k = sigmas.shape[0]
    dataset = _checked_gt(gt, k, source)
    dets = _checked_results(results, k, {img["id"] for img in dataset["images"]})

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = dataset
        coco_gt.createIndex()
        if not dets:
            stats = np.array([0.0 if coco_gt.getAnnIds(iscrowd=False) else -1.0] * len(COCO_STATS))
            return dict(zip(COCO_STATS, stats.tolist(), strict=True))
        coco_dt = coco_gt.loadRes(dets)
        evaluator = COCOeval(coco_gt, coco_dt, iouType="keypoints")
        evaluator.params.kpt_oks_sigmas = sigmas
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return dict(zip(COCO_STATS, (float(s) for s in evaluator.stats), strict=True))


def area_from_box(bbox: Sequence[float]) -> float:
    """The OKS scale of a person without ``area``: 0.53 x its box's ``w * h``, at least 1 (mmpose's rule).

    0.53 is mmpose's ratio of a person's segment area to its box area; mmpose applies it to the box clipped
    to the image, here it is the box as written (the same for a box inside its image).

    Example:
        >>> area_from_box([10, 20, 40, 100]), area_from_box([0, 0, 1, 1])
        (2120.0, 1.0)
    """
    w, h = float(bbox[2]), float(bbox[3])
    return float(np.clip(w * h * AREA_PER_BOX, 1.0, None))


def _checked_gt(gt: Mapping[str, Any], k: int, source: str) -> dict[str, Any]:
    for key in ("images", "annotations", "categories"):
        if key not in gt:
            raise DataError(f"{source} has no {key!r} list")
    anns = []
    for i, ann in enumerate(gt["annotations"]):
        for key in ("image_id", "category_id", "keypoints", "bbox"):
            if key not in ann:
                raise DataError(f"{source}: annotation {i} has no {key!r}")
        kp = np.asarray(ann["keypoints"], dtype=np.float64)
        if kp.shape != (3 * k,):
            raise DataError(f"{source}: annotation {i}: keypoints has {kp.size} numbers, expected 3*{k}")
        ann = dict(ann)
        if "area" not in ann:
            try:
                ann["area"] = area_from_box(ann["bbox"])
            except (TypeError, ValueError, IndexError):
                raise DataError(f"{source}: annotation {i}: bbox {ann['bbox']!r} is not [x, y, w, h]") from None
        ann.setdefault("iscrowd", 0)
        ann.setdefault("num_keypoints", int((kp[2::3] > 0).sum()))
        ann.setdefault("id", i + 1)
        anns.append(ann)
    missing = sum("area" not in ann for ann in gt["annotations"])
    if missing:
        warnings.warn(
            f"{source}: {missing} of {len(anns)} annotations have no 'area'; their OKS scale is 0.53 x their box "
            "area (mmpose's rule)",
            stacklevel=3,
        )
    dataset = {key: copy.deepcopy(value) for key, value in gt.items() if key != "annotations"}
    dataset["annotations"] = anns
    return dataset


def _checked_results(results: Sequence[Mapping[str, Any]], k: int, image_ids: set[Any]) -> list[dict[str, Any]]:
    dets = []
    for i, res in enumerate(results):
        for key in ("image_id", "category_id", "keypoints", "score"):
            if key not in res:
                raise DataError(f"COCO result {i} has no {key!r}")
        kp = np.asarray(res["keypoints"], dtype=np.float64)
        if kp.shape != (3 * k,):
            raise DataError(f"COCO result {i}: keypoints has {kp.size} numbers, expected 3*{k}")
        if res["image_id"] not in image_ids:
            raise DataError(f"COCO result {i}: image_id {res['image_id']!r} is not in the ground truth")
        dets.append(
            {
                "image_id": res["image_id"],
                "category_id": res["category_id"],
                "keypoints": kp.tolist(),
                "score": float(res["score"]),
            }
        )
    return dets
