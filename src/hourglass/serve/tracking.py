"""Track ids for the WebSocket stream: one tracker per connection, the video tracker of ``hourglass predict``.

:class:`Tracker` is what ``/v1/stream`` needs: given the people of a frame, one id each, the same id for the same
person from frame to frame. :class:`StreamTracker` gives it with :class:`hourglass.people.track.Tracker` (box
IoU and pose OKS, Hungarian assignment, a person unseen for up to ``patience`` frames keeps their id, a newcomer
gets an id never used before, the first being 1), counting the connection's frames itself.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from hourglass.data import Skeleton
from hourglass.people.track import Tracker as VideoTracker
from hourglass.people.track import oks_sigmas

STREAM_PATIENCE = 30
"""Frames a person may go unseen on a stream and keep their id (a camera page sends about 10 to 30 a second)."""


class Tracker(Protocol):
    """Ids for the people of consecutive frames of one stream."""

    def update(self, boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray) -> list[int]:
        """One id per person of this frame: ``boxes`` ``(P, 4)`` ``(x, y, w, h)``, ``keypoints`` ``(P, K, 2)``,
        ``scores`` ``(P, K)``."""
        ...


class StreamTracker:
    """:class:`hourglass.people.track.Tracker` over the frames of one connection, numbered as they come.

    Example:
        >>> from hourglass.data import get_skeleton
        >>> t = StreamTracker(get_skeleton("mpii_16"))
        >>> pose = np.tile([[10.0, 10.0]], (16, 1))
        >>> t.update(np.array([[0, 0, 30, 50], [200, 0, 30, 50]]), np.stack([pose, pose + 200]), np.ones((2, 16)))
        [1, 2]
        >>> t.update(np.array([[202, 0, 30, 50]]), (pose + 202)[None], np.ones((1, 16)))
        [2]
    """

    def __init__(self, skeleton: Skeleton, patience: int = STREAM_PATIENCE) -> None:
        self.tracker = VideoTracker(oks_sigmas(skeleton), patience=patience)
        self.frame = 0

    def update(self, boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray) -> list[int]:
        ids = self.tracker.update(self.frame, boxes, keypoints, scores)
        self.frame += 1
        return [int(i) for i in ids]


def new_tracker(skeleton: Skeleton) -> Tracker:
    """The tracker of one new stream connection, for people of ``skeleton``."""
    return StreamTracker(skeleton)
