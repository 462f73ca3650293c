"""PCK for any skeleton: hand-computed cases, threshold conventions, masks and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from hourglass.metrics import bbox_size, keypoint_distances, keypoint_pck_accuracy, pck_from_distances


def test_hand_computed_case() -> None:
    gt = np.zeros((2, 3, 2))
    pred = np.array(
        [
            [[3.0, 4.0], [6.0, 8.0], [0.0, 0.0]],  # distances 5, 10, 0 with norm 10 -> 0.5, 1.0, 0.0
            [[1.0, 0.0], [0.0, 0.0], [30.0, 40.0]],  # with norm 100 -> 0.01, 0.0, 0.5
        ]
    )
    mask = np.array([[True, True, True], [True, False, True]])
    res = keypoint_pck_accuracy(pred, gt, mask, 0.5, np.array([10.0, 100.0]))
    np.testing.assert_allclose(res.per_joint, [1.0, 0.0, 1.0])  # joint 1: only instance 0 scored (1.0 > 0.5)
    assert res.count == 5
    assert res.average == pytest.approx(4 / 5)


def test_inclusive_and_strict_threshold_differ_on_ties() -> None:
    gt = np.zeros((1, 1, 2))
    pred = np.array([[[3.0, 4.0]]])  # distance 5 -> exactly 0.5 of 10
    norm = np.array([10.0])
    mask = np.ones((1, 1), bool)
    assert keypoint_pck_accuracy(pred, gt, mask, 0.5, norm).average == 1.0
    assert keypoint_pck_accuracy(pred, gt, mask, 0.5, norm, inclusive=False).average == 0.0


def test_per_axis_norm_and_unscored_joint() -> None:
    gt = np.zeros((1, 2, 2))
    pred = np.array([[[4.0, 1.0], [0.0, 0.0]]])
    dist = keypoint_distances(pred, gt, np.array([[True, False]]), np.array([[8.0, 2.0]]))
    assert dist[0, 0] == pytest.approx(np.hypot(0.5, 0.5))
    assert np.isnan(dist[0, 1])
    res = pck_from_distances(dist, 0.5)
    assert res.per_joint[0] == 0.0 and np.isnan(res.per_joint[1])


def test_non_finite_prediction_is_a_miss() -> None:
    gt = np.zeros((1, 2, 2))
    pred = np.array([[[np.nan, 0.0], [0.0, 0.0]]])
    res = keypoint_pck_accuracy(pred, gt, np.ones((1, 2), bool), 0.5, np.array([1.0]))
    np.testing.assert_array_equal(res.per_joint, [0.0, 1.0])


def test_zero_norm_is_an_error_naming_the_instance() -> None:
    gt = np.zeros((3, 1, 2))
    with pytest.raises(ValueError, match="instance 2"):
        keypoint_pck_accuracy(gt, gt, np.ones((3, 1), bool), 0.5, np.array([1.0, 1.0, 0.0]))
    # an instance with nothing to score may have any length
    res = keypoint_pck_accuracy(gt, gt, np.array([[True], [True], [False]]), 0.5, np.array([1.0, 1.0, 0.0]))
    assert res.average == 1.0


@pytest.mark.parametrize(
    ("pred_shape", "mask_shape", "norm_shape", "match"),
    [((2, 3, 3), (2, 3), (2,), "gt must have shape"), ((2, 4, 2), (2, 3), (2,), "pred must have the shape"),
     ((2, 3, 2), (3, 2), (2,), "mask must have shape"), ((2, 3, 2), (2, 3), (3,), "norm must have shape")],
)  # fmt: skip
def test_bad_shapes_are_named(pred_shape, mask_shape, norm_shape, match) -> None:
    gt = np.zeros(pred_shape if match == "gt must have shape" else (2, 3, 2))
    with pytest.raises(ValueError, match=match):
        keypoint_pck_accuracy(np.zeros(pred_shape), gt, np.ones(mask_shape, bool), 0.5, np.ones(norm_shape))


def test_bbox_size_is_longer_side() -> None:
    np.testing.assert_array_equal(bbox_size([[0, 0, 10, 30], [5, 5, 8, 2]]), [30, 8])
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        bbox_size([[0, 0, 10]])
