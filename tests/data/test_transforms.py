"""Affine crop, its exact inverse, warping, boxes, augmentation draws and colour jitter."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hourglass.data import (
    Augmentation,
    AugmentParams,
    DataError,
    box_to_center_scale,
    colour_jitter,
    get_affine_matrix,
    mirror_matrix,
    transform_points,
    warp_image,
)

finite = st.floats(-2000, 2000, allow_nan=False)


@settings(max_examples=100, deadline=None)
@given(
    cx=finite,
    cy=finite,
    scale=st.floats(0.05, 20),
    rotation=st.floats(-180, 180),
    size=st.tuples(st.integers(8, 512), st.integers(8, 512)),
    points=st.lists(st.tuples(finite, finite), min_size=1, max_size=20),
)
def test_forward_then_inverse_within_a_thousandth_pixel(cx, cy, scale, rotation, size, points) -> None:
    p = np.array(points)
    m = get_affine_matrix((cx, cy), (scale, scale * size[0] / size[1]), rotation, size)
    inv = get_affine_matrix((cx, cy), (scale, scale * size[0] / size[1]), rotation, size, inverse=True)
    assert np.abs(transform_points(transform_points(p, m), inv) - p).max() < 1e-3
    assert np.abs(transform_points(transform_points(p, inv), m) - p).max() < 1e-3 * max(1.0, 200 * scale / size[1])


def test_center_maps_to_crop_centre_and_box_fills_width() -> None:
    m = get_affine_matrix((300.0, 200.0), (1.0, 1.0), 0.0, (128, 256))
    np.testing.assert_allclose(transform_points(np.array([300.0, 200.0]), m), [128.0, 64.0])
    np.testing.assert_allclose(transform_points(np.array([400.0, 200.0]), m), [256.0, 64.0])  # box 200 px -> W


def test_positive_rotation_turns_the_crop_up_clockwise_in_the_image() -> None:
    m = get_affine_matrix((0.0, 0.0), 1.0, 90.0, (200, 200))
    # HRNet's get_affine_transform: the image point right of the centre ends up above the crop centre
    np.testing.assert_allclose(transform_points(np.array([50.0, 0.0]), m), [100.0, 50.0], atol=1e-9)


def test_warp_keeps_image_and_points_aligned() -> None:
    img = np.zeros((300, 400, 3), np.uint8)
    pts = np.array([[120.0, 80.0], [250.0, 210.0], [333.0, 150.0]])
    for x, y in pts:
        img[int(y), int(x)] = 255
    m = mirror_matrix(get_affine_matrix((200.0, 150.0), 1.6, 25.0, (128, 128)), 128)
    crop = warp_image(cv2.GaussianBlur(img, (0, 0), 3).astype(np.float32), m, (128, 128))
    for target in transform_points(pts, m):
        x, y = np.round(target).astype(int)
        window = crop[y - 4 : y + 5, x - 4 : x + 5, 0]
        dy, dx = np.unravel_index(window.argmax(), window.shape)
        assert abs(dx - 4) <= 1 and abs(dy - 4) <= 1


def test_mirror_matrix_mirrors_the_output() -> None:
    m = get_affine_matrix((50.0, 60.0), 0.7, 10.0, (64, 48))
    p = np.array([[40.0, 70.0]])
    a, b = transform_points(p, m), transform_points(p, mirror_matrix(m, 48))
    np.testing.assert_allclose(b[:, 0], 47 - a[:, 0])
    np.testing.assert_allclose(b[:, 1], a[:, 1])


def test_batched_transform_points() -> None:
    ms = np.stack([get_affine_matrix((10.0 * i, 5.0), 1.0, 7.0 * i, (64, 64)) for i in range(3)])
    p = np.random.default_rng(0).uniform(0, 100, (3, 16, 2))
    out = transform_points(p, ms)
    for i in range(3):
        np.testing.assert_allclose(out[i], transform_points(p[i], ms[i]))


def test_box_to_center_scale_pads_to_the_aspect_ratio() -> None:
    c, s = box_to_center_scale((10, 20, 100, 50), aspect_ratio=0.75)
    np.testing.assert_allclose(c, [60, 45])
    np.testing.assert_allclose(s, np.array([100, 100 / 0.75]) / 200 * 1.25)
    with pytest.raises(DataError, match="no area"):
        box_to_center_scale((0, 0, 0, 10), 1.0)
    with pytest.raises(DataError, match="scale > 0"):
        get_affine_matrix((0, 0), 0.0, 0, (8, 8))


def test_augmentation_draws_are_seeded_and_in_range() -> None:
    aug = Augmentation()
    draws = [aug.sample(np.random.default_rng((3, i))) for i in range(400)]
    assert draws[7] == aug.sample(np.random.default_rng((3, 7)))
    assert all(abs(d.rotation) <= 30 and 0.75 <= d.scale <= 1.25 and 0.8 <= d.brightness <= 1.2 for d in draws)
    assert 0.4 < np.mean([d.flip for d in draws]) < 0.6
    assert 0.5 < np.mean([d.rotation != 0 for d in draws]) < 0.7


def test_colour_jitter_matches_the_three_steps_and_stays_in_range() -> None:
    img = np.random.default_rng(0).random((16, 16, 3), dtype=np.float32) * 0.8
    np.testing.assert_array_equal(colour_jitter(img, AugmentParams()), img)
    p = AugmentParams(brightness=1.1, contrast=0.8, saturation=1.3)
    grey_weights = np.array([0.299, 0.587, 0.114])
    x = img.astype(np.float64) * p.brightness
    x = p.contrast * x + (1 - p.contrast) * (x @ grey_weights).mean()
    x = p.saturation * x + (1 - p.saturation) * (x @ grey_weights)[..., None]
    np.testing.assert_allclose(colour_jitter(img, p), np.clip(x, 0, 1), atol=1e-5)
    bright = colour_jitter(img, AugmentParams(brightness=3.0))
    assert bright.min() >= 0 and bright.max() == 1.0
    grey = colour_jitter(img, AugmentParams(saturation=0.0))
    np.testing.assert_allclose(grey[..., 0], grey[..., 1], atol=1e-6)
    u8 = colour_jitter((img * 255).astype(np.uint8), p)
    assert u8.dtype == np.uint8 and np.abs(u8 / 255.0 - np.clip(x, 0, 1)).max() < 2 / 255
