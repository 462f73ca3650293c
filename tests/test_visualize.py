"""Drawing: colours from the skeleton, faded low-score joints, hidden joints, panels, montages, atomic writes."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from hourglass.data import COCO_17, MPII_16
from hourglass.visualize import (
    draw_skeleton,
    heatmap_montage,
    joint_colours,
    paint_skeleton,
    prediction_panel,
    side_by_side,
    to_rgb_uint8,
    write_image,
)


def _pose(size: int = 160) -> np.ndarray:
    """MPII keypoints spread over a ``size`` square so that joints do not overlap."""
    rng = np.random.default_rng(3)
    grid = np.stack(np.meshgrid(np.arange(4), np.arange(4)), -1).reshape(16, 2)
    return (grid[rng.permutation(16)] + 0.5) * size / 4


def test_joints_and_limbs_take_skeleton_colours() -> None:
    kp = _pose()
    out = draw_skeleton(np.zeros((160, 160, 3), np.uint8), kp, MPII_16, radius=5, thickness=3)
    for j, colour in enumerate(joint_colours(MPII_16)):
        x, y = np.round(kp[j]).astype(int)
        np.testing.assert_array_equal(out[y, x], colour)
    # a limb drawn alone shows its colour midway between its joints
    a, b = MPII_16.edges[0]
    only = np.zeros(16)
    only[[a, b]] = 1
    out = draw_skeleton(np.zeros((160, 160, 3), np.uint8), kp, MPII_16, visible=only, radius=2, thickness=3)
    mx, my = np.round((kp[a] + kp[b]) / 2).astype(int)
    np.testing.assert_array_equal(out[my, mx], MPII_16.colours[0])
    assert out.sum(axis=2).astype(bool).sum() < 160 * 160 / 4  # nothing else drawn


def test_low_score_joint_is_faded_and_hidden_joint_not_drawn() -> None:
    kp = _pose()
    scores = np.ones(16)
    scores[5] = 0.1
    visible = np.ones(16)
    visible[9] = 0
    out = draw_skeleton(np.zeros((160, 160, 3), np.uint8), kp, MPII_16, scores=scores, radius=5)
    x, y = np.round(kp[5]).astype(int)
    full = np.array(joint_colours(MPII_16)[5])
    assert 0 < out[y, x].astype(int).sum() < 0.6 * full.sum()
    out = draw_skeleton(np.zeros((160, 160, 3), np.uint8), kp, MPII_16, visible=visible, radius=5)
    x, y = np.round(kp[9]).astype(int)
    assert out[y, x].sum() == 0


@pytest.mark.parametrize("corner", [(20.0, 30.0), (-60.0, 250.0)])  # inside; half out of the frame
def test_faded_strokes_blend_only_where_they_are(corner: tuple[float, float]) -> None:
    # All joints weak: the picture must be the full-strength drawing blended at faded_alpha over the image, and
    # pixels away from the person untouched, whatever region the blend is limited to.
    image = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    kp = _pose(120) + np.array(corner)
    weak = draw_skeleton(image, kp, MPII_16, scores=np.zeros(16), faded_alpha=0.35)
    expected = cv2.addWeighted(draw_skeleton(image, kp, MPII_16), 0.35, image, 0.65, 0.0)
    np.testing.assert_array_equal(weak, expected)
    assert (weak != image).any()
    canvas = image.copy()
    assert paint_skeleton(canvas, kp, MPII_16, scores=np.zeros(16)) is canvas  # in place
    np.testing.assert_array_equal(canvas, weak)
    with pytest.raises(ValueError, match="C-contiguous"):
        paint_skeleton(image[:, ::2], kp, MPII_16)


def test_input_kinds_and_input_untouched() -> None:
    tensor = torch.rand(3, 32, 48)
    rgb = to_rgb_uint8(tensor)
    assert rgb.shape == (32, 48, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[..., 0], np.round(tensor[0].numpy() * 255).astype(np.uint8))
    image = np.zeros((64, 64, 3), np.uint8)
    draw_skeleton(image, _pose(64), MPII_16)
    assert image.sum() == 0
    with pytest.raises(ValueError, match=r"shape \(16, 2\) for skeleton 'mpii_16'"):
        draw_skeleton(image, np.zeros((17, 2)), MPII_16)


def test_panel_and_montage_shapes() -> None:
    image = np.full((80, 60, 3), 100, np.uint8)
    kp = np.random.default_rng(0).uniform(5, 55, (17, 2))
    panel = prediction_panel(image, kp, kp + 2, COCO_17, scores=np.linspace(0, 1, 17))
    assert panel.shape[1] == 2 * 60 + 4 and panel.shape[0] > 80
    wide = side_by_side([image, np.zeros((40, 40, 3), np.uint8)])
    assert wide.shape == (80, 60 + 4 + 80, 3)
    montage = heatmap_montage(np.random.default_rng(1).random((17, 16, 12)), image, COCO_17.joint_names, cell=32)
    assert montage.shape == (4 * 32, 5 * 24, 3)  # 17 joints: 5 columns (ceil sqrt), 4 rows


def test_montage_peak_is_hot() -> None:
    hm = np.zeros((2, 8, 8), np.float32)
    hm[0, 2, 5] = 1.0
    montage = heatmap_montage(hm, columns=2, cell=8)
    r, _g, b = montage[2, 5].astype(int)
    assert r > 100 and b < 50  # JET: the peak is red, zero is dark blue
    assert montage[6, 1, 2] > 100 and montage[6, 1, 0] < 50


def test_write_image_round_trip_and_bad_extension(tmp_path: Path) -> None:
    image = np.zeros((10, 12, 3), np.uint8)
    image[..., 0] = 255  # pure red in RGB
    path = write_image(tmp_path / "sub" / "red.png", image)
    back = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(back, image)
    (tmp_path / "keep.xyz").write_bytes(b"old")
    with pytest.raises(ValueError, match="cannot encode"):
        write_image(tmp_path / "keep.xyz", image)
    assert (tmp_path / "keep.xyz").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.xyz", "sub"]
