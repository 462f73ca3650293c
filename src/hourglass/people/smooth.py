"""Smoothing keypoints through time: the One Euro filter (Casiez, Roussel, Vogel, "1 Euro Filter: A Simple
Speed-based Low-pass Filter for Noisy Input in Interactive Systems", CHI 2012), one per track and joint.

A first-order low-pass filter whose cutoff rises with speed: ``cutoff = min_cutoff + beta * |speed|``. A joint that
holds still is smoothed hard (``min_cutoff``, jitter removed); a joint that moves fast gets a high cutoff (little
lag). Units here: positions in image pixels, time in seconds at the source's frame rate (frame ``i`` is at
``i / fps``), so ``min_cutoff`` and ``d_cutoff`` are in hertz and ``beta`` in hertz per pixel-per-second; the
speed is that of the joint (the length of its ``(x, y)`` velocity), itself low-passed at ``d_cutoff``.

Defaults (:data:`MIN_CUTOFF`, :data:`BETA`, :data:`D_CUTOFF`) were chosen on the synthetic walkers of
:mod:`hourglass.synthetic.video` with 2 px of noise on every joint at 25 frames/s (see ``docs/PREDICT.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hourglass.errors import ConfigError

MIN_CUTOFF = 1.0  # Hz: cutoff of a joint at rest
BETA = 0.05  # Hz per (pixel / second): how fast the cutoff rises with speed
D_CUTOFF = 1.0  # Hz: cutoff of the speed estimate (the paper's default)


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    """Smoothing factor of a first-order low-pass filter at ``cutoff`` Hz for a step of ``dt`` seconds."""
    tau = 1.0 / (2.0 * np.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


@dataclass
class _State:
    t: float
    x: np.ndarray  # (K, 2) filtered positions
    dx: np.ndarray  # (K,) filtered speeds (pixels / second)


class OneEuro:
    """One Euro filters for the joints of every track (module docstring).

    Args:
        fps: frame rate of the source (frame ``i`` is at ``i / fps`` seconds).
        min_cutoff, beta, d_cutoff: the filter's parameters (hertz; hertz per pixel/second; hertz).

    Example:
        >>> smooth = OneEuro(fps=25.0)
        >>> smooth(7, 0, np.array([[10.0, 10.0]])).tolist()  # the first position of a track is kept
        [[10.0, 10.0]]
        >>> bool(smooth(7, 1, np.array([[12.0, 10.0]]))[0, 0] < 12.0)  # later ones are pulled back a little
        True
    """

    def __init__(self, fps: float, min_cutoff: float = MIN_CUTOFF, beta: float = BETA, d_cutoff: float = D_CUTOFF):
        if not fps > 0:
            raise ConfigError(f"smoothing needs the source's frame rate > 0, got {fps}")
        if not (min_cutoff > 0 and d_cutoff > 0 and beta >= 0):
            raise ConfigError(
                f"One Euro parameters must be min_cutoff > 0, beta >= 0, d_cutoff > 0; got {min_cutoff}, {beta}, "
                f"{d_cutoff}"
            )
        self.fps, self.min_cutoff, self.beta, self.d_cutoff = float(fps), min_cutoff, beta, d_cutoff
        self.states: dict[int, _State] = {}

    def __call__(self, track_id: int, frame: int, keypoints: np.ndarray) -> np.ndarray:
        """Filtered keypoints ``(K, 2)`` of track ``track_id`` at ``frame`` from its raw ``keypoints`` ``(K, 2)``."""
        t = frame / self.fps
        x = np.asarray(keypoints, dtype=np.float64)
        state = self.states.get(track_id)
        if state is None or t <= state.t or state.x.shape != x.shape:
            self.states[track_id] = _State(t, x.copy(), np.zeros(len(x)))
            return x.copy()
        dt = t - state.t
        speed = np.linalg.norm(x - state.x, axis=1) / dt
        a_d = _alpha(self.d_cutoff, dt)
        dx = a_d * speed + (1 - a_d) * state.dx
        a = np.asarray(_alpha(self.min_cutoff + self.beta * dx, dt))[:, None]
        filtered = a * x + (1 - a) * state.x
        self.states[track_id] = _State(t, filtered, dx)
        return filtered

    def forget(self, live: set[int]) -> None:
        """Drop the states of tracks not in ``live`` (those the tracker has dropped)."""
        for track_id in [k for k in self.states if k not in live]:
            del self.states[track_id]
