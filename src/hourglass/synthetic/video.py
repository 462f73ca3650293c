"""Synthetic videos with identities: the figures of :mod:`hourglass.synthetic.figures` walking through a static
scene, with per-frame ground truth (who is where: ``track_id``, box, keypoints), to test tracking, smoothing and
the video pipeline without any download.

Scenarios (:data:`VIDEO_SCENARIOS`), each one video:

- ``leave-arrive``: a person walks out of the frame on the right; some frames after, another walks in on the left
  (a newcomer: a tracker must give a new id).
- ``occlusion``: a person walks behind a pillar wider than themselves and is fully hidden for at least
  :data:`OCCLUDED_FRAMES` frames before reappearing (the same person: a tracker must keep the id).
- ``side-by-side``: two people walk in step, a small gap between their boxes (no identity switch).

Every figure keeps its look through the video (its colours come from ``(seed, track_id)``), swings its arms and
legs as it walks, and moves at a constant speed. The background (and the pillar) never changes: frame minus
:attr:`SyntheticVideo.background` is exactly the people, which is what :func:`moving_blobs` detects.

Everything is a function of ``(scenario, seed, size, fps, num_frames)``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from hourglass.data.skeletons import MPII_16
from hourglass.errors import DataError
from hourglass.files import make_temp_dir, replace_folder

from .figures import (
    L_ANK,
    L_ELB,
    L_HIP,
    L_KNE,
    L_SHO,
    L_WRI,
    R_ANK,
    R_ELB,
    R_HIP,
    R_KNE,
    R_SHO,
    R_WRI,
    Figure,
    draw_figure,
    figure_extent,
    sample_figure,
)

VIDEO_SCENARIOS = ("leave-arrive", "occlusion", "side-by-side")
VIDEO_SIZE = (270, 480)  # (H, W) of the scenario videos by default
VIDEO_FPS = 25.0
OCCLUDED_FRAMES = 6  # frames the pillar of ``occlusion`` hides its walker completely, at least
FULL_VIEW_FRAMES = 15  # frames the walker of ``occlusion`` is in full view before and after the pillar
PRESENT = 0.5  # a person is in the ground truth of a frame when at least this share of their box is seen
MAX_ASPECT = 0.55  # width / height of a walker's box, at most
SWING = np.deg2rad(12.0)  # amplitude of the arm and leg swing while walking
STRIDE_HZ = 1.6  # swings per second


@dataclass
class Walker:
    """One person of a scenario: a figure (joints about its box centre at the origin) walking in a straight line.

    ``position(t)`` is ``start + velocity * (t - first)``, in frame pixels; the walker exists from frame ``first``
    (inclusive) to ``last`` (exclusive).
    """

    track_id: int
    figure: Figure
    start: np.ndarray
    velocity: np.ndarray
    first: int
    last: int
    phase: float = 0.0


@dataclass
class PersonTruth:
    """Where one person is in one frame.

    Attributes:
        track_id: the person's identity (1, 2 ...), the same in every frame.
        bbox: ``(4,)`` ``(x, y, w, h)`` the person's box, clipped to the frame.
        keypoints: ``(16, 2)`` MPII_16 joints in frame pixels (also those hidden or outside).
        visible: ``(16,)`` 2 seen, 1 inside the frame but behind the pillar, 0 outside the frame (COCO's ``v``).
        seen: share of the unclipped box that is inside the frame and not behind the pillar.
    """

    track_id: int
    bbox: np.ndarray
    keypoints: np.ndarray
    visible: np.ndarray
    seen: float


class SyntheticVideo:
    """A scenario as frames (:meth:`frame`) and ground truth (:meth:`truth`), drawn on demand.

    Args:
        scenario: one of :data:`VIDEO_SCENARIOS`.
        seed: figure seed (looks and poses).
        size: ``(H, W)`` of the frames.
        fps: frames per second (walking speeds and swings are set in seconds, so motion looks alike at any rate).
        num_frames: length; by default the scenario's own (everything it shows has happened).

    Example:
        >>> video = SyntheticVideo("occlusion")
        >>> frame = video.frame(0)  # (270, 480, 3) uint8 RGB
        >>> [p.track_id for p in video.truth(0)], frame.shape
        ([1], (270, 480, 3))
    """

    def __init__(
        self,
        scenario: str,
        seed: int = 0,
        size: Sequence[int] = VIDEO_SIZE,
        fps: float = VIDEO_FPS,
        num_frames: int | None = None,
    ) -> None:
        if scenario not in VIDEO_SCENARIOS:
            raise DataError(f"synthetic video: scenario must be one of {', '.join(VIDEO_SCENARIOS)}, got {scenario!r}")
        if len(size) != 2:
            raise DataError(f"synthetic video: size must be H W, got {len(size)} numbers {tuple(size)}")
        self.scenario, self.seed, self.fps = scenario, int(seed), float(fps)
        self.size = (int(size[0]), int(size[1]))
        if min(self.size) < 64:
            raise DataError(f"synthetic video: size must be at least 64 x 64 pixels, got {self.size}")
        self.pillar: tuple[float, float] | None = None  # (x1, x2) of the occluding pillar, full height
        self.walkers, length = self._script()
        self.num_frames = int(num_frames) if num_frames is not None else length
        if self.num_frames < 1:
            raise DataError(f"synthetic video: num_frames must be at least 1, got {self.num_frames}")
        self.background = self._scene()

    # --- the script of each scenario ---------------------------------------------------------------------

    def _figure(self, track_id: int) -> Figure:
        """The first figure of this seed from index ``1000 * track_id`` on that is at most :data:`MAX_ASPECT` as wide
        as it is tall (a walker, not a star jump), without occluders, its box centred at the origin."""
        H = self.size[0]
        for index in range(1000 * track_id, 1000 * track_id + 1000):
            fig = sample_figure(index, self.seed, (int(0.8 * H), int(0.8 * H)))
            lo, hi = figure_extent(fig.points, fig.widths)
            if (hi - lo)[0] <= MAX_ASPECT * (hi - lo)[1]:
                break
        return dataclasses.replace(fig, points=fig.points - (lo + hi) / 2, occluders=[])

    def _script(self) -> tuple[list[Walker], int]:
        H, W = self.size
        speed = 0.4 * W / self.fps  # pixels per frame: crossing the frame in 2.5 s
        ground = 0.55 * H

        def extent(fig: Figure) -> np.ndarray:  # half width and height, with room for the swing
            lo, hi = figure_extent(fig.points, fig.widths)
            return (hi - lo) / 2 * np.array([1.15, 1.0])

        if self.scenario == "leave-arrive":
            a, b = self._figure(1), self._figure(2)
            ha, hb = extent(a), extent(b)
            x0 = 0.5 * W
            gone = int(np.ceil((W + ha[0] - x0) / speed))  # A's box has left the frame
            arrive = gone + round(0.3 * self.fps)  # B appears 0.3 s later, on the other side
            walkers = [
                Walker(1, a, np.array([x0, ground]), np.array([speed, 0.0]), 0, gone + 1),
                Walker(2, b, np.array([-hb[0], ground]), np.array([speed, 0.0]), arrive, 10**9, phase=1.0),
            ]
            return walkers, arrive + int(np.ceil((0.5 * W + hb[0]) / speed))
        if self.scenario == "occlusion":  # in view, behind the pillar, in view again
            a = self._figure(1)
            half = extent(a)[0]
            slow = speed
            x0 = half
            left = x0 + half + FULL_VIEW_FRAMES * slow  # the walker's right edge reaches the pillar after these
            self.pillar = (left, left + 2 * half / 1.15 + OCCLUDED_FRAMES * slow)
            end = min(self.pillar[1] + 2 * half + FULL_VIEW_FRAMES * slow, W - half)  # in full view at the end
            walker = Walker(1, a, np.array([x0, ground]), np.array([slow, 0.0]), 0, 10**9)
            return [walker], int((end - x0) / slow)
        a, b = self._figure(1), self._figure(2)  # side by side
        ha, hb = extent(a), extent(b)
        gap = 0.04 * W
        slow = 0.5 * speed
        xa = ha[0] + 2
        xb = xa + ha[0] + gap + hb[0]
        length = int((W - (xb + hb[0])) / slow)
        walkers = [
            Walker(1, a, np.array([xa, ground]), np.array([slow, 0.0]), 0, 10**9),
            Walker(2, b, np.array([xb, ground]), np.array([slow, 0.0]), 0, 10**9, phase=0.5),
        ]
        return walkers, max(length, int(self.fps))

    def _scene(self) -> np.ndarray:
        """The static background: a soft gradient, a floor, and the pillar of ``occlusion``."""
        H, W = self.size
        rng = np.random.default_rng((self.seed, 7919, 0))
        top, bottom = rng.integers(150, 220, 3).astype(np.float32), rng.integers(90, 150, 3).astype(np.float32)
        t = np.linspace(0, 1, H, dtype=np.float32)[:, None, None]
        img = np.clip(top * (1 - t) + bottom * t, 0, 255).astype(np.uint8).repeat(W, 1)
        floor = int(0.85 * H)
        img[floor:] = np.clip(bottom * 0.7, 0, 255).astype(np.uint8)
        if self.pillar is not None:
            self._draw_pillar(img)
        return img

    def _draw_pillar(self, img: np.ndarray) -> None:
        x1, x2 = self.pillar  # type: ignore[misc]
        H = img.shape[0]
        cv2.rectangle(img, (round(x1), 0), (round(x2), H), (96, 78, 60), -1)
        cv2.rectangle(img, (round(x1), 0), (round(x2), H), (60, 48, 36), 2)

    # --- frames and ground truth -------------------------------------------------------------------------

    def _pose(self, walker: Walker, t: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Joints ``(16, 2)`` and unclipped box corners of ``walker`` at frame ``t``, None when absent."""
        if not walker.first <= t < walker.last:
            return None
        j = walker.figure.points.copy()
        swing = SWING * np.sin(2 * np.pi * STRIDE_HZ * t / self.fps + walker.phase)
        for root, chain, sign in (
            (R_HIP, (R_KNE, R_ANK), 1),
            (L_HIP, (L_KNE, L_ANK), -1),
            (R_SHO, (R_ELB, R_WRI), -1),
            (L_SHO, (L_ELB, L_WRI), 1),
        ):
            c, s = np.cos(sign * swing), np.sin(sign * swing)
            rot = np.array([[c, -s], [s, c]])
            j[list(chain)] = (j[list(chain)] - j[root]) @ rot.T + j[root]
        j += walker.start + walker.velocity * (t - walker.first)
        lo, hi = figure_extent(j, walker.figure.widths)
        return j, np.concatenate([lo, hi])

    def truth(self, t: int) -> list[PersonTruth]:
        """The people of frame ``t`` seen at :data:`PRESENT` or more, by ``track_id``."""
        H, W = self.size
        out = []
        for walker in self.walkers:
            pose = self._pose(walker, t)
            if pose is None:
                continue
            j, (x1, y1, x2, y2) = pose
            area = max((x2 - x1) * (y2 - y1), 1e-6)
            cx1, cy1, cx2, cy2 = max(x1, 0.0), max(y1, 0.0), min(x2, W - 1.0), min(y2, H - 1.0)
            if cx2 <= cx1 or cy2 <= cy1:
                continue
            inside = (cx2 - cx1) * (cy2 - cy1)
            hidden = 0.0
            if self.pillar is not None:
                hidden = max(0.0, min(cx2, self.pillar[1]) - max(cx1, self.pillar[0])) * (cy2 - cy1)
            seen = (inside - hidden) / area
            if seen < PRESENT:
                continue
            in_frame = (j[:, 0] >= 0) & (j[:, 0] <= W - 1) & (j[:, 1] >= 0) & (j[:, 1] <= H - 1)
            behind = np.zeros(16, bool)
            if self.pillar is not None:
                behind = (j[:, 0] >= self.pillar[0]) & (j[:, 0] <= self.pillar[1])
            visible = np.where(in_frame, np.where(behind, 1, 2), 0).astype(np.uint8)
            box = np.array([cx1, cy1, cx2 - cx1, cy2 - cy1])
            out.append(PersonTruth(walker.track_id, box, j, visible, float(seen)))
        return out

    def frame(self, t: int) -> np.ndarray:
        """Frame ``t``: ``(H, W, 3)`` uint8 RGB."""
        img = self.background.copy()
        for walker in self.walkers:
            pose = self._pose(walker, t)
            if pose is not None:
                fig = dataclasses.replace(walker.figure, points=pose[0], image_size=self.size)
                draw_figure(img, fig, np.random.default_rng((self.seed, walker.track_id, 2)))
        if self.pillar is not None:
            self._draw_pillar(img)
        return img

    def frames(self) -> Iterator[np.ndarray]:
        """Every frame in order."""
        for t in range(self.num_frames):
            yield self.frame(t)


def moving_blobs(
    rgb: np.ndarray, background: np.ndarray, threshold: int = 40, min_area: int = 150
) -> tuple[np.ndarray, np.ndarray]:
    """A person detector for scenes with a known static ``background``: boxes ``(N, 4)`` ``(x, y, w, h)`` around the
    connected regions that differ from it, and scores ``(N,)`` (1 for all).

    A pixel differs when one channel moves by more than ``threshold``; the mask is closed (5x5) to join a figure's
    parts, and regions under ``min_area`` pixels are dropped. With the same ``(H, W, 3)`` uint8 RGB signature as
    any detector ``hourglass predict`` takes.
    """
    diff = cv2.absdiff(rgb, background).max(axis=2)
    mask = (diff > threshold).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    boxes = [stats[i, :4].astype(np.float64) for i in range(1, count) if stats[i, cv2.CC_STAT_AREA] >= min_area]
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return b, np.ones(len(b))


def write_synthetic_video(
    out: str | os.PathLike[str],
    scenarios: Sequence[str] = VIDEO_SCENARIOS,
    seed: int = 0,
    size: Sequence[int] = VIDEO_SIZE,
    fps: float = VIDEO_FPS,
    num_frames: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Write each scenario under ``out`` as ``<scenario>.mp4`` with its ground truth, atomically.

    Files per scenario: ``<scenario>.mp4`` (``mp4v``, OpenCV's writer), ``<scenario>.truth.json``
    (``{"scenario", "fps", "width", "height", "skeleton": "mpii_16", "frames": [{"frame", "people":
    [{"track_id", "bbox", "keypoints": [x, y, v] * 16, "seen"}]}]}``) and ``<scenario>.boxes.json`` (the
    ground-truth boxes as COCO detection results, ``image_id`` = frame index, score 1: a ``--boxes`` file for
    ``hourglass predict``). Everything goes into a temporary folder renamed into place at the end.
    """
    videos = [SyntheticVideo(s, seed, size, fps, num_frames) for s in scenarios]
    out = Path(out)
    if out.exists() and not overwrite:
        raise DataError(f"{out}: already exists; choose another folder or pass --overwrite")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(out.parent, f".{out.name}.")
    try:
        for video in videos:
            _write_one(tmp, video)
        replace_folder(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _write_one(folder: Path, video: SyntheticVideo) -> None:
    H, W = video.size
    path = folder / f"{video.scenario}.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), video.fps, (W, H))
    if not writer.isOpened():
        raise DataError(f"{path}: OpenCV cannot write an mp4v video of {W}x{H}")
    frames, boxes = [], []
    try:
        for t in range(video.num_frames):
            writer.write(cv2.cvtColor(video.frame(t), cv2.COLOR_RGB2BGR))
            people = []
            for p in video.truth(t):
                bbox = [round(float(v), 3) for v in p.bbox]
                kps = np.concatenate([p.keypoints, p.visible[:, None]], 1).reshape(-1)
                people.append(
                    {
                        "track_id": p.track_id,
                        "bbox": bbox,
                        "keypoints": [round(float(v), 3) if k % 3 < 2 else int(v) for k, v in enumerate(kps)],
                        "seen": round(p.seen, 3),
                    }
                )
                boxes.append({"image_id": t, "category_id": 1, "bbox": bbox, "score": 1.0})
            frames.append({"frame": t, "people": people})
    finally:
        writer.release()
    truth = {"scenario": video.scenario, "fps": video.fps, "width": W, "height": H, "skeleton": MPII_16.name}
    (folder / f"{video.scenario}.truth.json").write_text(json.dumps({**truth, "frames": frames}))
    (folder / f"{video.scenario}.boxes.json").write_text(json.dumps(boxes))
