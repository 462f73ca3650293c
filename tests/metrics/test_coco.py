"""COCO OKS AP/AR through pycocotools with caller-given sigmas: hand-computed OKS, any joint count."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest

from hourglass.data import COCO_17
from hourglass.metrics import COCO_STATS, coco_keypoint_eval

K = 5
SIGMAS = np.array([0.03, 0.05, 0.07, 0.09, 0.04])
AREA = 400.0


def _gt(visible: list[int] | None = None) -> dict:
    xy = np.array([[10, 10], [20, 12], [30, 15], [25, 30], [15, 28]], dtype=float)
    v = visible or [2] * K
    kps = [c for (x, y), vis in zip(xy, v, strict=True) for c in (x, y, vis)]
    return {
        "images": [{"id": 7, "width": 64, "height": 64, "file_name": "a.png"}],
        "categories": [{"id": 1, "name": "figure"}],
        "annotations": [{"id": 1, "image_id": 7, "category_id": 1, "keypoints": kps, "bbox": [5, 5, 30, 30],
                         "area": AREA, "iscrowd": 0}],
    }  # fmt: skip


def _result(offsets: np.ndarray, gt: dict) -> dict:
    kp = np.array(gt["annotations"][0]["keypoints"], dtype=float).reshape(K, 3)
    kp[:, :2] += offsets
    kp[:, 2] = 1.0
    return {"image_id": 7, "category_id": 1, "keypoints": kp.ravel().tolist(), "score": 0.9}


def _offsets_for_oks(oks: float) -> np.ndarray:
    """Shift every keypoint in x so that each contributes exp(-e) = oks (COCO: e = d^2 / (2 area (2 sigma)^2))."""
    e = -math.log(oks)
    d = np.sqrt(e * 2 * AREA * (2 * SIGMAS) ** 2)
    return np.stack([d, np.zeros(K)], axis=1)


def test_perfect_prediction_scores_one() -> None:
    gt = _gt()
    stats = coco_keypoint_eval(gt, [_result(np.zeros((K, 2)), gt)], SIGMAS)
    assert set(stats) == set(COCO_STATS)
    assert stats["AP"] == pytest.approx(1.0) and stats["AR"] == pytest.approx(1.0)


@pytest.mark.parametrize(("oks", "expected"), [(0.77, 0.6), (0.52, 0.1), (0.93, 0.9)])
def test_ap_follows_hand_computed_oks(oks: float, expected: float) -> None:
    """One instance of OKS ``oks`` is matched at the thresholds 0.50:0.05:0.95 below it."""
    gt = _gt()
    stats = coco_keypoint_eval(gt, [_result(_offsets_for_oks(oks), gt)], SIGMAS)
    assert stats["AP"] == pytest.approx(expected, abs=1e-6)
    assert stats["AR"] == pytest.approx(expected, abs=1e-6)
    assert stats["AP50"] == pytest.approx(1.0)


def test_unlabelled_keypoints_do_not_count_and_inputs_are_untouched() -> None:
    gt = _gt(visible=[2, 2, 2, 2, 0])
    offsets = _offsets_for_oks(0.77)
    offsets[4] = [500.0, 500.0]  # far off, but that keypoint is not labelled
    results = [_result(offsets, gt)]
    before = copy.deepcopy((gt, results))
    stats = coco_keypoint_eval(gt, results, SIGMAS)
    assert stats["AP"] == pytest.approx(0.6, abs=1e-6)
    assert (gt, results) == before


def test_other_sigmas_change_the_score() -> None:
    gt = _gt()
    res = [_result(_offsets_for_oks(0.77), gt)]
    assert coco_keypoint_eval(gt, res, SIGMAS * 2)["AP"] > coco_keypoint_eval(gt, res, SIGMAS)["AP"]


def test_no_results_scores_zero() -> None:
    assert coco_keypoint_eval(_gt(), [], SIGMAS)["AP"] == 0.0


def test_bad_input_is_named() -> None:
    gt = _gt()
    good = _result(np.zeros((K, 2)), gt)
    with pytest.raises(ValueError, match="result 1: keypoints has 12 numbers, expected 3\\*5"):
        coco_keypoint_eval(gt, [good, {**good, "keypoints": [0.0] * 12}], SIGMAS)
    with pytest.raises(ValueError, match="image_id 8 is not in the ground truth"):
        coco_keypoint_eval(gt, [{**good, "image_id": 8}], SIGMAS)
    bad_gt = copy.deepcopy(gt)
    del bad_gt["annotations"][0]["bbox"]
    with pytest.raises(ValueError, match="annotation 0 has no 'bbox'"):
        coco_keypoint_eval(bad_gt, [good], SIGMAS)
    with pytest.raises(ValueError, match="annotation 0: keypoints has 15 numbers, expected 3\\*4"):
        coco_keypoint_eval(gt, [good], SIGMAS[:4])


def test_missing_area_is_0_53_of_the_box_with_one_warning(real_samples_dir: Path) -> None:
    """The real COCO sample without its ``area`` fields (as CrowdPose and AI Challenger ship theirs) is scored
    with mmpose's fallback, 0.53 x the box area, and one warning naming the file and how many lacked it."""
    path = real_samples_dir / "coco" / "test_coco.json"
    gt = json.loads(path.read_text())
    rng = np.random.default_rng(0)
    results = []
    for ann in gt["annotations"]:  # every labelled person, each joint a few pixels off: OKS depends on the area
        kp = np.array(ann["keypoints"], dtype=float).reshape(-1, 3)
        kp[:, :2] += rng.normal(0, 4, (len(kp), 2))
        kp[:, 2] = 1.0
        results.append({"image_id": ann["image_id"], "category_id": 1, "keypoints": kp.ravel().tolist(), "score": 1.0})
    without = copy.deepcopy(gt)
    for ann in without["annotations"]:
        del ann["area"]
    by_hand = copy.deepcopy(gt)
    for ann in by_hand["annotations"]:
        ann["area"] = max(ann["bbox"][2] * ann["bbox"][3] * 0.53, 1.0)
    with pytest.warns(UserWarning, match=rf"{path}: 14 of 14 annotations have no 'area'; .* 0\.53 x their box area"):
        stats = coco_keypoint_eval(without, results, COCO_17.sigmas, source=str(path))
    assert stats == coco_keypoint_eval(by_hand, results, COCO_17.sigmas)
    assert stats["AP"] != coco_keypoint_eval(gt, results, COCO_17.sigmas)["AP"]  # the fallback is what was scored
    assert all("area" not in ann for ann in without["annotations"])  # the caller's ground truth is left as it was
