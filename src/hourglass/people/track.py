"""Identities through a video: which person of frame ``t`` is which of frame ``t - 1`` (:class:`Tracker`).

Each frame's people are matched to the live tracks by the Hungarian method
(``scipy.optimize.linear_sum_assignment``) on a similarity, the larger of box IoU and pose OKS (for a partial view,
the share of its box inside the expected one stands for the IoU), computed against where each track is expected to
be: its box and pose moved on at its velocity (pixels per frame) since it was last
seen. A pair is kept when the similarity is at least ``threshold`` (0.3, mmpose 0.x's ``tracking_thr``); a person
left over starts a new track with an id never used before (1, 2, 3 ...); a track unseen for more than ``patience``
frames is dropped, so a person hidden for fewer frames keeps their id.

The velocity is learnt only from full views, observations whose box area is at least :data:`FULL_VIEW` of the
track's running average: a box that shrinks because its person goes behind something or out of the frame would
otherwise slow the track down, and the track would not be where its person comes back into view. The expected box
is the last full view moved on, grown a little for each frame since.

OKS here is COCO's (``exp(-d^2 / (2 s^2 k^2))`` averaged over joints, ``k = 2 sigma``, ``s^2`` the box area) over the
joints both poses score at least :data:`JOINT_THRESHOLD`; the sigmas are the skeleton's, mmpose's MPII sigmas for
``mpii_16`` (which defines none for evaluation), else :data:`DEFAULT_SIGMA` for every joint.

:func:`identity_switches` scores a tracker against ground truth (the count of the MOT benchmarks' IDSW).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from hourglass.data import Skeleton
from hourglass.errors import ConfigError, InputError
from hourglass.people.boxes import box_iou

TRACK_THRESHOLD = 0.3  # mmpose 0.x demo/top_down_video_demo_with_mmdet / PoseTracker: tracking_thr 0.3
JOINT_THRESHOLD = 0.3  # joints scoring under this are left out of OKS
FULL_VIEW = 0.8  # an observation whose box area is under this share of the track's usual area is a partial view
GROWTH = 0.03  # the expected box of a track without a full view for n frames is 1 + n * GROWTH times larger (<= 2)
HISTORY = 12  # full views the velocity is fitted to (least squares, box centre against frame)
DEFAULT_SIGMA = 0.08
MPII_SIGMAS = (0.089, 0.083, 0.107, 0.107, 0.083, 0.089, 0.026, 0.026,
               0.026, 0.026, 0.062, 0.072, 0.179, 0.179, 0.072, 0.062)  # fmt: skip
"""mmpose ``configs/_base_/datasets/mpii.py``'s sigmas (adapted from COCO's), MPII_16 order."""


def oks_sigmas(skeleton: Skeleton) -> np.ndarray:
    """``(K,)`` per-joint OKS sigmas for tracking: the skeleton's, :data:`MPII_SIGMAS` for ``mpii_16``, else
    :data:`DEFAULT_SIGMA` each."""
    if skeleton.sigmas is not None:
        return np.asarray(skeleton.sigmas, dtype=np.float64)
    if skeleton.name == "mpii_16" and skeleton.num_joints == len(MPII_SIGMAS):
        return np.asarray(MPII_SIGMAS, dtype=np.float64)
    return np.full(skeleton.num_joints, DEFAULT_SIGMA)


def pose_oks(
    a: np.ndarray, a_scores: np.ndarray, b: np.ndarray, b_scores: np.ndarray, area: float, sigmas: np.ndarray
) -> float:
    """OKS of poses ``a`` and ``b`` ``(K, 2)`` over joints both score at least :data:`JOINT_THRESHOLD`; 0 if none."""
    both = (a_scores >= JOINT_THRESHOLD) & (b_scores >= JOINT_THRESHOLD)
    if not both.any() or area <= 0:
        return 0.0
    d2 = ((a[both] - b[both]) ** 2).sum(axis=1)
    return float(np.exp(-d2 / (2.0 * area * (2.0 * sigmas[both]) ** 2)).mean())


@dataclass
class Track:
    """One person followed through the video.

    Attributes:
        track_id: never reused.
        box: ``(4,)`` ``(x, y, w, h)`` of the last observation; keypoints ``(K, 2)`` and scores ``(K,)`` its pose.
        last_frame: frame index of the last observation.
        anchor: ``(4,)`` the last full view (see the module docstring), seen at ``anchor_frame``.
        velocity: ``(2,)`` pixels per frame, of the box centre, fitted to the last :data:`HISTORY` full ``views``
            ``(frame, centre x, centre y, box area)``; area: the largest box area of these views.
        box_score: detection score of the last observation.
    """

    track_id: int
    box: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray
    last_frame: int
    anchor: np.ndarray
    anchor_frame: int
    velocity: np.ndarray
    area: float
    box_score: float = 1.0
    views: list[tuple[float, float, float, float]] = field(default_factory=list)

    def expected(self, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """Where the track should be at ``frame``: box ``(4,)`` (the anchor's size, grown by :data:`GROWTH` for each
        frame since it: the longer without a full view, the less sure) and keypoints ``(K, 2)``."""
        centre = self.anchor[:2] + self.anchor[2:] / 2 + self.velocity * (frame - self.anchor_frame)
        size = self.anchor[2:] * min(1.0 + GROWTH * max(frame - self.anchor_frame - 1, 0), 2.0)
        box = np.concatenate([centre - size / 2, size])
        return box, self.keypoints + (centre - (self.box[:2] + self.box[2:] / 2))


class Tracker:
    """Gives each person of each frame a ``track_id``, stable while they stay in view (module docstring).

    Args:
        sigmas: ``(K,)`` OKS sigmas (:func:`oks_sigmas`).
        patience: frames a track may go unseen and still take its person back (about one second of video).
        threshold: least similarity (max of IoU and OKS) for a match.

    Example:
        >>> tracker = Tracker(np.full(2, 0.08), patience=5)
        >>> pose = np.array([[[10.0, 10.0], [20.0, 40.0]]])
        >>> tracker.update(0, np.array([[0.0, 0.0, 30, 50]]), pose, np.ones((1, 2))).tolist()
        [1]
        >>> tracker.update(1, np.array([[2.0, 0.0, 30, 50], [200, 0, 30, 50]]), np.concatenate([pose, pose + 200]),
        ...                np.ones((2, 2))).tolist()
        [1, 2]
    """

    def __init__(self, sigmas: np.ndarray, patience: int = 30, threshold: float = TRACK_THRESHOLD) -> None:
        if patience < 0:
            raise ConfigError(f"--track-patience must be >= 0 frames, got {patience}")
        self.sigmas = np.asarray(sigmas, dtype=np.float64)
        self.patience = int(patience)
        self.threshold = float(threshold)
        self.tracks: list[Track] = []
        self.next_id = 1

    def update(
        self,
        frame: int,
        boxes: np.ndarray,
        keypoints: np.ndarray,
        scores: np.ndarray,
        box_scores: Sequence[float] | None = None,
        known: Sequence[int | None] | None = None,
    ) -> np.ndarray:
        """Track ids ``(N,)`` int of frame ``frame``'s people: boxes ``(N, 4)`` ``(x, y, w, h)``, keypoints
        ``(N, K, 2)``, joint scores ``(N, K)``, box scores ``(N,)`` (1 if None). Frames come in increasing order.

        ``known`` gives, per person, the id of the track their box came from (``--detect-every``: a box made from
        that track's last pose), or None: such a person is that track's while it lives, without matching."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        n = len(boxes)
        k = len(self.sigmas)
        keypoints = np.asarray(keypoints, dtype=np.float64).reshape(n, -1, 2) if n else np.zeros((0, k, 2))
        scores = np.asarray(scores, dtype=np.float64).reshape(n, -1) if n else np.zeros((0, k))
        box_scores = np.ones(n) if box_scores is None else np.asarray(box_scores, dtype=np.float64).reshape(n)
        if keypoints.shape[1] != k:
            raise InputError(f"tracker: poses have {keypoints.shape[1]} joints, expected {k}")
        self.tracks = [t for t in self.tracks if frame - t.last_frame - 1 <= self.patience]  # frames unseen
        ids = np.zeros(n, dtype=np.int64)
        matched: set[int] = set()
        by_id = {t.track_id: t for t in self.tracks}
        for c, track_id in enumerate(known or []):
            if track_id is not None and track_id in by_id:
                track = by_id.pop(track_id)
                self._observe(track, frame, boxes[c], keypoints[c], scores[c], box_scores[c])
                ids[c] = track_id
                matched.add(c)
        free, rest = list(by_id.values()), [c for c in range(n) if c not in matched]
        if rest and free:
            similarity = self.similarity(frame, boxes[rest], keypoints[rest], scores[rest], free)
            rows, cols = linear_sum_assignment(-similarity)
            for r, j in zip(rows, cols, strict=True):
                if similarity[r, j] >= self.threshold:
                    c = rest[j]
                    self._observe(free[r], frame, boxes[c], keypoints[c], scores[c], box_scores[c])
                    ids[c] = free[r].track_id
                    matched.add(c)
        for c in range(n):
            if c not in matched:
                track = Track(
                    self.next_id, boxes[c].copy(), keypoints[c].copy(), scores[c].copy(), frame,
                    boxes[c].copy(), frame, np.zeros(2), float(boxes[c, 2] * boxes[c, 3]), float(box_scores[c]),
                )  # fmt: skip
                track.views.append((frame, *(boxes[c, :2] + boxes[c, 2:] / 2), track.area))
                self.tracks.append(track)
                ids[c] = track.track_id
                self.next_id += 1
        return ids

    def similarity(
        self,
        frame: int,
        boxes: np.ndarray,
        keypoints: np.ndarray,
        scores: np.ndarray,
        tracks: Sequence[Track] | None = None,
    ) -> np.ndarray:
        """``(T, N)`` max of IoU and OKS between each track (of ``tracks``, default all) where it is expected at
        ``frame`` and each person (for a partial view, a box under :data:`FULL_VIEW` of the track's area, the share of
        it inside the expected box counts as its IoU)."""
        tracks = self.tracks if tracks is None else tracks
        out = np.zeros((len(tracks), len(boxes)))
        for r, track in enumerate(tracks):
            box, pose = track.expected(frame)
            area = float(box[2] * box[3])
            overlap = box_iou(box, boxes)
            inside = _intersection(box, boxes) / np.maximum(boxes[:, 2] * boxes[:, 3], 1e-9)
            partial = boxes[:, 2] * boxes[:, 3] < FULL_VIEW * track.area
            overlap = np.where(partial, np.maximum(overlap, inside), overlap)
            oks = [pose_oks(pose, track.scores, keypoints[c], scores[c], area, self.sigmas) for c in range(len(boxes))]
            out[r] = np.maximum(overlap, oks)
        return out

    def _observe(
        self, track: Track, frame: int, box: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, box_score: float
    ) -> None:
        area = float(box[2] * box[3])
        if area >= FULL_VIEW * track.area:  # a full view: it moves the velocity
            track.views.append((frame, *(box[:2] + box[2:] / 2), area))
            del track.views[:-HISTORY]
            views = np.asarray(track.views)
            if len(views) > 1:
                track.velocity = np.polyfit(views[:, 0], views[:, 1:3], 1)[0]
            track.area = float(views[:, 3].max())
            track.anchor, track.anchor_frame = box.copy(), frame
        track.box, track.keypoints, track.scores = box.copy(), keypoints.copy(), scores.copy()
        track.last_frame, track.box_score = frame, float(box_score)

    def live(self, frame: int) -> list[Track]:
        """The tracks observed at ``frame``."""
        return [t for t in self.tracks if t.last_frame == frame]


def _intersection(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection areas ``(N,)`` of one ``(x, y, w, h)`` box with ``boxes`` ``(N, 4)``."""
    x, y, w, h = (float(v) for v in box)
    iw = np.clip(np.minimum(x + w, boxes[:, 0] + boxes[:, 2]) - np.maximum(x, boxes[:, 0]), 0.0, None)
    ih = np.clip(np.minimum(y + h, boxes[:, 1] + boxes[:, 3]) - np.maximum(y, boxes[:, 1]), 0.0, None)
    return iw * ih


def identity_switches(
    truth: Sequence[Mapping[int, np.ndarray]], predicted: Sequence[Mapping[int, np.ndarray]], iou: float = 0.5
) -> tuple[int, dict[int, list[int]]]:
    """Identity switches of ``predicted`` tracks against ``truth``, and the predicted ids each true person had.

    Both are one ``{track_id: box (4,)}`` per frame. In each frame the true and predicted boxes are matched by the
    Hungarian method on IoU (pairs under ``iou`` left unmatched); a switch is a true person matched to another
    predicted id than at their last match (the MOT benchmarks' IDSW). Returns ``(switches, {true id: [predicted
    ids in order of first match]})``.
    """
    if len(truth) != len(predicted):
        raise InputError(f"identity_switches: {len(truth)} frames of truth but {len(predicted)} predicted")
    last: dict[int, int] = {}
    seen: dict[int, list[int]] = {}
    switches = 0
    for gt, pred in zip(truth, predicted, strict=True):
        g_ids, p_ids = list(gt), list(pred)
        if not g_ids or not p_ids:
            continue
        overlap = np.stack([box_iou(gt[g], np.asarray([pred[p] for p in p_ids])) for g in g_ids])
        for r, c in zip(*linear_sum_assignment(-overlap), strict=True):
            if overlap[r, c] < iou:
                continue
            g, p = g_ids[r], p_ids[c]
            if g in last and last[g] != p:
                switches += 1
            last[g] = p
            if p not in seen.setdefault(g, []):
                seen[g].append(p)
    return switches, seen
