"""LSP's PCK@0.2 of the torso: a case worked out by hand, the torso's joints, the per-part columns, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from hourglass.errors import InputError
from hourglass.metrics import LSP_COLUMNS, lsp_pck, lsp_torso_size

# LSP order: 0 r_ankle 1 r_knee 2 r_hip 3 l_hip 4 l_knee 5 l_ankle 6 r_wrist 7 r_elbow 8 r_shoulder 9 l_shoulder
# 10 l_elbow 11 l_wrist 12 neck 13 head_top


def _people() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three people worked out by hand (the docstring of each is the arithmetic).

    A: left shoulder (0, 0), right hip (30, 40): torso 50, so 0.2 x torso = 10 px. The other diagonal (right
       shoulder (40, 0), left hip (-10, 40)) is 64 px long: with it joints 3 and 7 would count too.
       Horizontal errors [0, 5, 10, 10.5, 20, 3, 9.99, 11, 0, 0, 30, 2, 10, 15]: hits at <= 10 are joints
       0 1 2 5 6 8 9 11 12 (9 of 14; joints 2 and 12 are exactly on the threshold).
    B: left shoulder (100, 100), right hip (100, 180): torso 80, threshold 16 px. Right shoulder (60, 100), left hip
       (140, 180): the other diagonal is 113 px. Joints 4 and 13 unlabelled (their predictions are NaN: not
       scored). Errors [15, 17, 0, 16, -, 40, 1, 16.5, 3, 0, 8, 50, 2, -]: hits 0 2 3 6 8 9 10 12 (8 of 12).
    C: no labelled left shoulder: no torso, not scored, although every prediction of it is 1,000 px off.
    """
    gt = np.zeros((3, 14, 2))
    gt[0, :, 1] = np.arange(14) * 7.0  # any distinct positions; the torso joints below
    gt[0, 9], gt[0, 2], gt[0, 8], gt[0, 3] = (0, 0), (30, 40), (40, 0), (-10, 40)
    gt[1, :, 1] = 100 + np.arange(14) * 5.0
    gt[1, 9], gt[1, 2], gt[1, 8], gt[1, 3] = (100, 100), (100, 180), (60, 100), (140, 180)
    gt[2, :, 0] = np.arange(14) * 3.0
    visible = np.ones((3, 14), bool)
    visible[1, [4, 13]] = False
    visible[2, 9] = False
    errors_a = [0, 5, 10, 10.5, 20, 3, 9.99, 11, 0, 0, 30, 2, 10, 15]
    errors_b = [15, 17, 0, 16, np.nan, 40, 1, 16.5, 3, 0, 8, 50, 2, np.nan]
    pred = gt.copy()
    pred[0, :, 0] += errors_a
    pred[1, :, 0] += errors_b
    pred[2] += 1000.0
    return pred, gt, visible


def test_torso_is_left_shoulder_to_right_hip_and_nan_without_them() -> None:
    _, gt, visible = _people()
    np.testing.assert_array_equal(lsp_torso_size(gt, visible), [50.0, 80.0, np.nan])


def test_hand_computed_table() -> None:
    """Per joint (hits of scored), from the arithmetic in :func:`_people`:
    0: 2/2, 1: 1/2, 2: 2/2, 3: 1/2, 4: 0/1, 5: 1/2, 6: 2/2, 7: 0/2, 8: 2/2, 9: 2/2, 10: 1/2, 11: 1/2, 12: 2/2, 13: 0/1.
    Head = (neck 100 + head top 0) / 2 = 50; Shoulder (100 + 100) / 2; Elbow (r 0 + l 50) / 2 = 25; Wrist (100 + 50)
    / 2 = 75; Hip (100 + 50) / 2 = 75; Knee (50 + 0) / 2 = 25; Ankle (100 + 50) / 2 = 75; Mean pools the 26 scored
    joints: (9 + 8) / 26."""
    pred, gt, visible = _people()
    table = lsp_pck(pred, gt, visible)
    assert tuple(table) == LSP_COLUMNS
    expected = {"Head": 50.0, "Shoulder": 100.0, "Elbow": 25.0, "Wrist": 75.0, "Hip": 75.0, "Knee": 25.0,
                "Ankle": 75.0, "Mean": 100 * 17 / 26}  # fmt: skip
    assert table == pytest.approx(expected)


def test_a_fully_labelled_set_has_mean_equal_to_the_mean_of_the_columns() -> None:
    """The LSP test set labels every joint: then the pooled Mean is the mean of the 7 columns (as in the papers)."""
    rng = np.random.default_rng(3)
    gt = rng.uniform(0, 200, (40, 14, 2))
    pred = gt + rng.normal(0, 15, gt.shape)
    table = lsp_pck(pred, gt, np.ones((40, 14), bool))
    assert table["Mean"] == pytest.approx(np.mean([table[c] for c in LSP_COLUMNS[:-1]]))


def test_threshold_and_misses() -> None:
    pred, gt, visible = _people()
    # at 0.5: 25 px for A (only joint 10, 30 px off, misses), 40 px for B (joint 11, 50 px off, misses; 40 counts)
    assert lsp_pck(pred, gt, visible, thr=0.5)["Mean"] == pytest.approx(100 * 24 / 26)
    pred[0, 12] = np.nan  # a missing prediction is a miss
    assert lsp_pck(pred, gt, visible)["Head"] == pytest.approx(25.0)  # neck 1/2, head top 0/1


def test_a_person_whose_torso_joints_coincide_is_not_scored() -> None:
    pred, gt, visible = _people()
    gt[1, 9] = gt[1, 2]
    assert lsp_pck(pred, gt, visible)["Mean"] == pytest.approx(100 * 9 / 14)  # A only


@pytest.mark.parametrize(
    ("gt_shape", "visible_shape", "match"),
    [((2, 16, 2), (2, 16), r"shape \(N, 14, 2\), got \(2, 16, 2\)"), ((2, 14, 2), (2, 13), r"visible must have")],
)
def test_bad_shapes_are_named(gt_shape, visible_shape, match) -> None:
    with pytest.raises(InputError, match=match):
        lsp_pck(np.zeros(gt_shape), np.zeros(gt_shape), np.ones(visible_shape, bool))
