"""MPII PCKh maths on small hand-built cases: protocols, pooling, head size, missing joints."""

from __future__ import annotations

import numpy as np
import pytest

from hourglass.metrics import PROTOCOLS, mpii_head_size, mpii_pckh, mpii_pckh_per_joint, mpii_pckh_report


def _case() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Two people; person 0 exact, person 1 has every joint off by exactly 0.5 head sizes."""
    gt = np.random.default_rng(0).integers(0, 100, size=(2, 16, 2)).astype(np.float64)
    pred = gt.copy()
    pred[1, :, 0] += 5.0  # head size 10 -> normalised distance exactly 0.5
    visible = np.ones((2, 16), bool)
    head_size = np.array([10.0, 10.0])
    return pred, gt, visible, head_size


def test_head_size_is_0_6_of_the_diagonal() -> None:
    boxes = np.array([[[10.0, 20.0], [40.0, 60.0]]])  # diagonal 50
    np.testing.assert_allclose(mpii_head_size(boxes), [30.0])
    with pytest.raises(ValueError, match=r"\(N, 2, 2\)"):
        mpii_head_size(np.zeros((2, 2, 5)))


def test_official_threshold_is_inclusive_bearpaw_strict() -> None:
    pred, gt, visible, head_size = _case()
    assert mpii_pckh(pred, gt, visible, head_size, 0.5, "official")["Total"] == 100.0
    assert mpii_pckh(pred, gt, visible, head_size, 0.5, "hrnet")["Total"] == 100.0
    assert mpii_pckh(pred, gt, visible, head_size, 0.5, "bearpaw")["Total"] == 50.0


def test_head_column_per_protocol() -> None:
    pred, gt, visible, head_size = _case()
    pred[1] = gt[1]
    pred[:, 8] += 100.0  # upper neck wrong for everyone, head top right
    assert mpii_pckh(pred, gt, visible, head_size, 0.5, "official")["Head"] == 50.0
    assert mpii_pckh(pred, gt, visible, head_size, 0.5, "bearpaw")["Head"] == 100.0
    assert mpii_pckh(pred, gt, visible, head_size, 0.5, "hrnet")["Head"] == 100.0


def test_total_excludes_pelvis_thorax_and_pools_by_count() -> None:
    pred, gt, visible, head_size = _case()
    pred[1] = gt[1]
    pred[:, [6, 7]] += 100.0  # pelvis and thorax wrong: not part of Total
    pred[:, 0] += 100.0  # right ankle wrong for both people
    visible[1, 1:6] = False  # person 1: only the r_ankle of the leg joints annotated
    per_joint, counts = mpii_pckh_per_joint(pred, gt, visible, head_size, 0.5)
    assert counts[0] == 2 and counts[1] == 1 and per_joint[6] == 0.0
    scored = 14 * 2 - 5
    official = mpii_pckh(pred, gt, visible, head_size, 0.5, "official")
    assert official["Total"] == pytest.approx(100.0 * (scored - 2) / scored)
    bearpaw = mpii_pckh(pred, gt, visible, head_size, 0.5, "bearpaw")
    assert bearpaw["Total"] == pytest.approx(100.0 * 13 / 14)  # unweighted mean: r_ankle 0, others 100
    assert official["Ankle"] == 50.0


def test_unannotated_joints_are_not_scored() -> None:
    pred, gt, visible, head_size = _case()
    pred[1] += 1000.0
    visible[1] = False
    assert mpii_pckh(pred, gt, visible, head_size)["Total"] == 100.0


def test_report_mean_at_0_1_thresholds() -> None:
    pred, gt, visible, head_size = _case()
    pred[1] = gt[1]
    pred[:, :, 0] += 1.05  # 0.105 head sizes: a miss at 0.1, a hit at HRNet's 0.11
    assert mpii_pckh_report(pred, gt, visible, head_size, 0.5, "official")["Mean@0.1"] == 0.0
    assert mpii_pckh_report(pred, gt, visible, head_size, 0.5, "hrnet")["Mean@0.1"] == 100.0


def test_unknown_protocol() -> None:
    pred, gt, visible, head_size = _case()
    with pytest.raises(ValueError, match=", ".join(PROTOCOLS)):
        mpii_pckh(pred, gt, visible, head_size, 0.5, "matlab")  # type: ignore[arg-type]


def test_wrong_joint_count() -> None:
    with pytest.raises(ValueError, match=r"\(N, 16, 2\)"):
        mpii_pckh(np.zeros((1, 17, 2)), np.zeros((1, 17, 2)), np.ones((1, 17)), np.ones(1))


def test_joint_order_is_the_data_packages_mpii_16() -> None:
    """metrics/mpii.py hard-codes MPII indices (metrics import no data); they must name the same joints."""
    from hourglass.data import MPII_16

    names = MPII_16.joint_names
    assert (names[6], names[7], names[8], names[9]) == ("pelvis", "thorax", "upper_neck", "head_top")
    assert [n.replace("_", "")[:4] for n in names] == [
        "rank", "rkne", "rhip", "lhip", "lkne", "lank", "pelv", "thor",
        "uppe", "head", "rwri", "relb", "rsho", "lsho", "lelb", "lwri",
    ]  # fmt: skip
