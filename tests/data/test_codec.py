"""Heatmap codec: targets, decoding (argmax + quarter shift, DARK), flip helpers."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hourglass.data import MPII_16, DataError, HeatmapCodec, flip_back, flip_keypoints

CODEC = HeatmapCodec((256, 256), (64, 64), sigma=2.0)
DARK = HeatmapCodec((256, 256), (64, 64), sigma=2.0, dark=True)
FLIP = MPII_16.flip_index


def interior_keypoints(margin: float, size: int = 64, stride: float = 4.0, n: int = 16) -> st.SearchStrategy:
    """(n, 2) input-pixel keypoints whose heatmap position lies in [margin, size - 1 - margin].

    At the border the quarter shift has no neighbour on one side (and at exactly 0.5 px from it the argmax
    is a tie), so "inside the map" means at least one heatmap pixel in from the edge.
    """
    coord = st.floats(margin * stride, (size - 1 - margin) * stride, allow_nan=False)
    return st.lists(st.tuples(coord, coord), min_size=n, max_size=n).map(np.array)


@settings(max_examples=60, deadline=None)
@given(interior_keypoints(1.0))
def test_round_trip_within_a_quarter_heatmap_pixel(kp: np.ndarray) -> None:
    hm, w = CODEC.encode(kp, np.ones(16))
    assert hm.shape == (16, 64, 64) and hm.dtype == np.float32 and (w == 1).all()
    dec, scores = CODEC.decode(hm)
    assert dec.shape == (16, 2) and scores.shape == (16,)
    assert np.abs(dec - kp).max() / 4 <= 0.25 + 1e-4
    assert (scores > 0.75).all()  # sub-pixel centre: the peak sample is at most half a pixel off per axis


@settings(max_examples=30, deadline=None)
@given(interior_keypoints(6.0))
def test_dark_recovers_the_sub_pixel_position(kp: np.ndarray) -> None:
    hm, _ = DARK.encode(kp, np.ones(16))
    dec, _ = DARK.decode(hm)
    assert np.abs(dec - kp).max() / 4 < 0.01


def dark_reference(heatmaps: np.ndarray, kernel: int = 11) -> np.ndarray:
    """mmpose 1.x ``gaussian_blur`` + ``refine_keypoints_dark`` re-stated with OpenCV, one map at a time."""
    out = []
    border = (kernel - 1) // 2
    for hm in heatmaps:
        h, w = hm.shape
        py, px = np.unravel_index(hm.argmax(), hm.shape)
        padded = np.zeros((h + 2 * border, w + 2 * border))
        padded[border:-border, border:-border] = hm
        blurred = cv2.GaussianBlur(padded, (kernel, kernel), 0)[border:-border, border:-border]
        blurred *= hm.max() / blurred.max()
        lg = np.pad(np.log(np.maximum(blurred, 1e-10)), 2, mode="edge")
        y, x = py + 2, px + 2
        dx = 0.5 * (lg[y, x + 1] - lg[y, x - 1])
        dy = 0.5 * (lg[y + 1, x] - lg[y - 1, x])
        dxx = 0.25 * (lg[y, x + 2] - 2 * lg[y, x] + lg[y, x - 2])
        dxy = 0.25 * (lg[y + 1, x + 1] - lg[y - 1, x + 1] - lg[y + 1, x - 1] + lg[y - 1, x - 1])
        dyy = 0.25 * (lg[y + 2, x] - 2 * lg[y, x] + lg[y - 2, x])
        step = -np.linalg.solve(np.array([[dxx, dxy], [dxy, dyy]]), np.array([dx, dy]))
        out.append(np.array([px, py]) + (step if np.abs(step).max() <= 1 else 0))
    return np.array(out)


def test_dark_matches_the_reference_on_arbitrary_maps() -> None:
    rng = np.random.default_rng(3)
    kp = np.concatenate([rng.uniform(0, 255, (12, 2)), [[0.0, 0.0], [255.0, 3.0], [2.0, 250.0], [128.0, 255.0]]])
    hm, _ = CODEC.encode(kp, np.ones(16))
    hm = hm + 0.3 * CODEC.encode(rng.uniform(0, 255, (16, 2)), np.ones(16))[0]  # a second, weaker peak
    hm = hm + rng.uniform(0, 0.02, hm.shape).astype(np.float32)
    dec, _ = DARK.decode(hm)
    np.testing.assert_allclose(dec / 4, dark_reference(hm), atol=2e-3)


def test_decode_is_batched_and_keeps_the_array_kind() -> None:
    rng = np.random.default_rng(0)
    kp = rng.uniform(8, 248, (2, 3, 16, 2))
    hm = np.stack([[CODEC.encode(k, np.ones(16))[0] for k in b] for b in kp])
    dec_np, _ = CODEC.decode(hm)
    dec_t, s_t = CODEC.decode(torch.from_numpy(hm))
    assert isinstance(dec_np, np.ndarray) and isinstance(dec_t, torch.Tensor)
    assert dec_np.shape == (2, 3, 16, 2) and s_t.shape == (2, 3, 16)
    np.testing.assert_allclose(dec_t.numpy(), dec_np)
    for b in range(2):
        for i in range(3):
            np.testing.assert_allclose(CODEC.decode(hm[b, i])[0], dec_np[b, i])


def test_gaussian_is_centred_on_the_exact_position() -> None:
    hm, _ = CODEC.encode(np.array([[40.0, 100.0]]), np.array([1]))  # heatmap (10, 25): on a pixel centre
    assert hm[0, 25, 10] == pytest.approx(1.0)
    assert hm[0, 25, 12] == pytest.approx(np.exp(-4 / 8), rel=1e-5)  # two pixels away, sigma 2
    assert np.unravel_index(hm[0].argmax(), hm[0].shape) == (25, 10)


def test_weights_zero_for_unlabelled_outside_and_nan() -> None:
    kp = np.array([[10.0, 10.0], [10.0, 10.0], [-3.0, 50.0], [50.0, 256.0], [np.nan, 4.0], [255.4, 0.0]])
    hm, w = CODEC.encode(kp, np.array([1, 0, 1, 1, 1, 1]))
    np.testing.assert_array_equal(w, [1, 0, 0, 0, 0, 1])
    assert (hm[w == 0] == 0).all() and np.isfinite(hm).all()


def test_encode_refuses_mismatched_shapes() -> None:
    with pytest.raises(DataError, match=r"expected keypoints \(K, 2\)"):
        CODEC.encode(np.zeros((16, 3)), np.ones(16))
    with pytest.raises(DataError, match="expected heatmaps"):
        CODEC.decode(np.zeros((16, 32, 32), np.float32))


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_flip_twice_is_identity(seed: int) -> None:
    rng = np.random.default_rng(seed)
    hm = rng.random((2, 16, 8, 6)).astype(np.float32)
    np.testing.assert_array_equal(flip_back(flip_back(hm, FLIP, shift=False), FLIP, shift=False), hm)
    t = torch.from_numpy(hm)
    assert torch.equal(flip_back(flip_back(t, FLIP, shift=False), FLIP, shift=False), t)
    kp = rng.uniform(-5, 300, (3, 16, 2))
    np.testing.assert_allclose(flip_keypoints(flip_keypoints(kp, FLIP, 256), FLIP, 256), kp)


def test_flip_back_swaps_joints_mirrors_and_shifts() -> None:
    hm = np.zeros((16, 4, 6), np.float32)
    hm[10, 1, 1] = 1.0  # r_wrist at column 1
    out = flip_back(hm, FLIP, shift=False)
    assert out[15, 1, 4] == 1.0 and out[10].sum() == 0  # becomes l_wrist at column 6 - 1 - 1
    shifted = flip_back(hm, FLIP)
    assert shifted[15, 1, 5] == 1.0
    torch_shifted = flip_back(torch.from_numpy(hm), FLIP)
    np.testing.assert_array_equal(torch_shifted.numpy(), shifted)


def test_flip_test_recovers_keypoints() -> None:
    """Encode keypoints on the mirrored crop, bring the maps back, decode: the original keypoints."""
    rng = np.random.default_rng(1)
    kp = rng.uniform(16, 240, (16, 2))
    hm_flipped, _ = CODEC.encode(flip_keypoints(kp, FLIP, 256), np.ones(16))
    dec, _ = CODEC.decode(flip_back(hm_flipped, FLIP))
    # the one-pixel shift approximates the exact 0.75 px offset: quarter shift + 0.25 px, in input pixels
    assert np.abs(dec - kp).max() <= 4 * 0.5 + 1e-3


def test_codec_dict_round_trip_and_errors() -> None:
    back = HeatmapCodec.from_dict(DARK.to_dict())
    assert (back.input_size, back.heatmap_size, back.sigma, back.dark) == ((256, 256), (64, 64), 2.0, True)
    assert HeatmapCodec.from_dict({"input_size": [128, 96]}).heatmap_size == (32, 24)
    with pytest.raises(DataError, match="meta: no input_size"):
        HeatmapCodec.from_dict({"sigma": 2.0}, "meta")
    with pytest.raises(DataError, match="meta: not a heatmap codec"):
        HeatmapCodec.from_dict({"input_size": "big"}, "meta")
