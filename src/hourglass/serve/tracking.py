"""Track ids for the WebSocket stream: one tracker per connection, behind one small interface.

:class:`Tracker` is what ``/v1/stream`` needs: given the people of a frame, one id each, the same id
for the same person from frame to frame. :class:`IouTracker` is a minimal stand-in (greedy matching of
boxes by IoU with the previous frame) until the video tracker of ``hourglass.inference`` takes its place:
:func:`new_tracker` is the one place to point at it (``PoseService(tracker_factory=...)`` overrides it).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from hourglass.inference.boxes import box_iou


class Tracker(Protocol):
    """Ids for the people of consecutive frames of one stream."""

    def update(self, boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray) -> list[int]:
        """One id per person of this frame: ``boxes`` ``(P, 4)`` ``(x, y, w, h)``, ``keypoints`` ``(P, K, 2)``,
        ``scores`` ``(P, K)``."""
        ...


class IouTracker:
    """Each person takes the id of the previous frame's box it overlaps most (IoU >= ``threshold``, best pairs
    first, each old id used once); the others get new ids. No motion model, no memory past one frame.

    Example:
        >>> t = IouTracker()
        >>> t.update(np.array([[0, 0, 10, 10], [50, 0, 10, 10]]), np.zeros((2, 1, 2)), np.zeros((2, 1)))
        [0, 1]
        >>> t.update(np.array([[51, 0, 10, 10], [200, 0, 10, 10]]), np.zeros((2, 1, 2)), np.zeros((2, 1)))
        [1, 2]
    """

    def __init__(self, threshold: float = 0.3) -> None:
        self.threshold = threshold
        self._boxes = np.zeros((0, 4))
        self._ids: list[int] = []
        self._next = 0

    def update(self, boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray) -> list[int]:
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        iou = np.array([box_iou(box, self._boxes) for box in boxes]).reshape(len(boxes), len(self._boxes))
        ids: list[int | None] = [None] * len(boxes)
        taken: set[int] = set()
        for flat in np.argsort(-iou, axis=None, kind="stable"):
            new, old = divmod(int(flat), iou.shape[1])
            if iou[new, old] < self.threshold:
                break
            if ids[new] is None and old not in taken:
                ids[new] = self._ids[old]
                taken.add(old)
        for i, given in enumerate(ids):
            if given is None:
                ids[i] = self._next
                self._next += 1
        self._boxes, self._ids = boxes, [int(i) for i in ids if i is not None]
        return list(self._ids)


def new_tracker() -> Tracker:
    """The tracker of one new stream connection."""
    return IouTracker()
