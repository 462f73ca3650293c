"""The One Euro filter on the joints of a synthetic walker with pixel noise: less jitter, no lag."""

from __future__ import annotations

import numpy as np
import pytest

from hourglass.errors import ConfigError
from hourglass.people.smooth import OneEuro
from hourglass.synthetic.video import SyntheticVideo

NOISE = 2.0  # pixels, standard deviation, on each coordinate


def jitter(track: np.ndarray) -> float:
    """Frame-to-frame acceleration: RMS length of the second difference of ``(T, K, 2)`` positions, pixels/frame^2."""
    return float(np.sqrt((np.diff(track, 2, axis=0) ** 2).sum(-1).mean()))


def best_lag(track: np.ndarray, true: np.ndarray, most: int = 4) -> int:
    """The delay (frames) of ``track`` behind ``true`` that fits best (least RMS distance after the first 10)."""
    errors = [np.sqrt(((track[10 + s :] - true[10 : len(true) - s]) ** 2).sum(-1).mean()) for s in range(most)]
    return int(np.argmin(errors))


def _walker() -> tuple[np.ndarray, float]:
    video = SyntheticVideo("side-by-side")
    true = np.stack([next(p.keypoints for p in video.truth(t) if p.track_id == 1) for t in range(video.num_frames)])
    return true, video.fps


def test_jitter_falls_without_lag_on_a_walker() -> None:
    true, fps = _walker()
    noisy = true + np.random.default_rng(0).normal(0, NOISE, true.shape)
    smooth = OneEuro(fps)
    out = np.stack([smooth(1, t, noisy[t]) for t in range(len(noisy))])
    factor = jitter(noisy) / jitter(out)
    assert factor > 1.5, factor  # measured 1.68 (docs/PREDICT.md)
    rms = lambda x: np.sqrt(((x - true) ** 2).sum(-1).mean())  # noqa: E731
    assert rms(out) < 1.05 * rms(noisy)  # no further from the truth than the raw positions
    assert best_lag(out, true) == 0 == best_lag(noisy, true)


def test_a_joint_at_rest_is_smoothed_hard() -> None:
    true = np.tile(np.array([[100.0, 50.0]]), (100, 1, 1))
    noisy = true + np.random.default_rng(1).normal(0, NOISE, true.shape)
    smooth = OneEuro(25.0)
    out = np.stack([smooth(3, t, noisy[t]) for t in range(len(noisy))])
    assert jitter(noisy) / jitter(out) > 2  # measured 2.45: noise alone makes a speed that raises the cutoff


def test_tracks_are_filtered_apart_and_forgotten() -> None:
    smooth = OneEuro(25.0)
    smooth(1, 0, np.zeros((1, 2)))
    assert smooth(2, 1, np.full((1, 2), 100.0)).tolist() == [[100.0, 100.0]]  # a new track starts where it is
    smooth.forget({2})
    assert list(smooth.states) == [2]
    with pytest.raises(ConfigError, match="min_cutoff > 0"):
        OneEuro(25.0, min_cutoff=0.0)
    with pytest.raises(ConfigError, match="frame rate"):
        OneEuro(0.0)
