"""Person boxes for ``hourglass predict``: which boxes can be cropped, reading a detections file, and choosing
the people of an image or frame (score threshold, then greedy suppression of overlapping boxes).

Boxes are ``(x, y, w, h)`` in image pixels, pixel centres at integers (0-based). The thresholds' defaults are
those of mmpose's top-down demo (``demo/topdown_demo_with_mmdet.py``: ``--bbox-thr 0.3``, keeping scores above
it, and ``--nms-thr 0.3``); the IoU here uses continuous areas (``w * h``, not mmpose's ``(w + 1) * (h + 1)``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hourglass.data.coco import read_detections
from hourglass.errors import InputError

BOX_THRESHOLD = 0.3  # mmpose demo/topdown_demo_with_mmdet.py: --bbox-thr 0.3 (keeps score > thr)
NMS_THRESHOLD = 0.3  # mmpose demo/topdown_demo_with_mmdet.py: --nms-thr 0.3 (IoU of boxes)
Detection = tuple[list[float], float, Any, Any]  # (bbox [x, y, w, h], score, category_id, image_id)


def box_problem(box: Sequence[float], width: int, height: int) -> str | None:
    """Why ``box`` ``(x, y, w, h)`` cannot be used on a ``width`` x ``height`` image, or None if it can.

    A box must have finite numbers, positive width and height, and overlap the image (``[0, width] x
    [0, height]``); one partly outside is fine (the crop is padded with black).
    """
    b = np.asarray(box, dtype=np.float64).reshape(-1)
    if b.shape != (4,):
        return f"has {b.size} numbers, expected [x, y, w, h]"
    x, y, w, h = b
    if not np.isfinite(b).all():
        return f"{b.tolist()} has non-finite numbers"
    if w <= 0 or h <= 0:
        return f"{b.tolist()} has zero size (width {w:g}, height {h:g})"
    if x + w <= 0 or y + h <= 0 or x >= width or y >= height:
        return f"{b.tolist()} lies outside the {width}x{height} image"
    return None


def whole_image_box(width: int, height: int) -> np.ndarray:
    """The box ``(x, y, w, h)`` covering every pixel: ``(-0.5, -0.5, width, height)`` (pixel centres at integers)."""
    return np.array([-0.5, -0.5, float(width), float(height)])


def box_iou(box: Sequence[float], boxes: np.ndarray) -> np.ndarray:
    """Intersection over union ``(N,)`` of one ``(x, y, w, h)`` box with ``boxes`` ``(N, 4)`` (continuous areas)."""
    x, y, w, h = (float(v) for v in box)
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    iw = np.clip(np.minimum(x + w, b[:, 0] + b[:, 2]) - np.maximum(x, b[:, 0]), 0.0, None)
    ih = np.clip(np.minimum(y + h, b[:, 1] + b[:, 3]) - np.maximum(y, b[:, 1]), 0.0, None)
    inter = iw * ih
    union = w * h + b[:, 2] * b[:, 3] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def suppress_overlaps(boxes: Any, scores: Any, iou_threshold: float = NMS_THRESHOLD) -> np.ndarray:
    """Greedy non-maximum suppression: indices of the boxes kept, best score first.

    The best-scoring box is kept and every box overlapping it by IoU above ``iou_threshold`` dropped, then
    the same with the best of the rest (mmpose's ``nms``, which the top-down demo runs at 0.3, except that
    areas here are continuous, ``w * h``, not ``(w + 1) * (h + 1)``). ``iou_threshold >= 1`` keeps all.

    Args:
        boxes: ``(N, 4)`` ``(x, y, w, h)``.
        scores: ``(N,)``; ties keep the input order.
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(s) != len(b):
        raise InputError(f"suppress_overlaps: {len(b)} boxes but {len(s)} scores")
    order = np.argsort(-s, kind="stable")
    keep = []
    while order.size:
        best, order = order[0], order[1:]
        keep.append(int(best))
        order = order[box_iou(b[best], b[order]) <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def read_boxes(path: str | os.PathLike[str]) -> dict[str, list[Detection]]:
    """COCO detection results (:func:`hourglass.data.coco.read_detections`) grouped by image.

    Returns ``{str(image_id): [(bbox, score, category_id, image_id), ...]}`` (category 1 when absent). An
    image file matches an ``image_id`` equal to its file name, its stem, or its stem as a number (COCO:
    ``000000397133.jpg`` is 397133); a video frame matches its 0-based index.
    """
    grouped: dict[str, list[Detection]] = {}
    for det in read_detections(path):
        category = det["category_id"] if det["category_id"] is not None else 1
        grouped.setdefault(str(det["image_id"]), []).append((det["bbox"], det["score"], category, det["image_id"]))
    return grouped


@dataclass
class BoxChoice:
    """The people of each image or frame: its detections above the score threshold, overlaps suppressed.

    The detections come from ``grouped``, :func:`read_boxes` of ``boxes_file`` (named in messages), or from
    ``detector`` run on each picture (``rgb (H, W, 3) uint8 -> (boxes (N, 4) (x, y, w, h), scores (N,))``, every
    person box before thresholds, such as :meth:`hourglass.people.detect.PersonDetector.detect`); with neither,
    each image or frame is one person, the whole picture. The counts add up over every call: ``read``
    detections found for the images and frames seen, of which ``low_score`` scored at or under
    ``box_threshold`` and ``overlapping`` were suppressed; ``unmatched`` names the images and frames left without
    anybody: no detection in the file for them, or none of the detector's above the threshold (see
    :meth:`take_unmatched`).
    """

    grouped: Mapping[str, list[Detection]] | None
    boxes_file: str | os.PathLike[str] | None = None
    box_threshold: float = BOX_THRESHOLD
    nms_threshold: float = NMS_THRESHOLD
    read: int = 0
    low_score: int = 0
    overlapping: int = 0
    unmatched: list[str] = field(default_factory=list)
    detector: Any = None

    @property
    def per_person(self) -> bool:
        """Whether people come from boxes (a file or the detector), not the whole picture."""
        return self.grouped is not None or self.detector is not None

    def __call__(
        self, keys: Sequence[str], width: int, height: int, where: str, image_id: Any, rgb: Any = None
    ) -> tuple[list[Detection], list[str]]:
        """Detections to run on a ``width`` x ``height`` picture (best score first), and one problem per unusable box.

        Args:
            keys: the ``image_id`` values (as strings) that name this picture in the detections file.
            where: the picture in messages (``a.png``, ``clip.mp4 frame 3``).
            image_id: the ``image_id`` of the whole-picture person, and of the detector's people.
            rgb: the picture ``(height, width, 3)`` uint8, which the detector needs.
        """
        if self.detector is not None:
            boxes, scores = self.detector(rgb)
            return self.detected(boxes, scores, width, height, where, image_id)
        if self.grouped is None:
            return [(whole_image_box(width, height).tolist(), 1.0, 1, image_id)], []
        detections = next((self.grouped[key] for key in keys if key in self.grouped), [])
        if not detections:
            self.unmatched.append(where)
        return self.keep(detections, width, height, where)

    def detected(
        self, boxes: Any, scores: Any, width: int, height: int, where: str, image_id: Any
    ) -> tuple[list[Detection], list[str]]:
        """What :meth:`__call__` gives, for a detector's ``boxes`` ``(N, 4)`` ``(x, y, w, h)`` and ``scores`` ``(N,)``
        on a ``width`` x ``height`` picture (category 1, ``image_id`` as given); a picture where none is kept is
        noted in ``unmatched``."""
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        s = np.asarray(scores, dtype=np.float64).reshape(-1)
        if len(s) != len(b):
            raise InputError(f"{where}: the detector gave {len(b)} boxes but {len(s)} scores")
        kept, problems = self.keep(
            [(box.tolist(), float(score), 1, image_id) for box, score in zip(b, s, strict=True)], width, height, where
        )
        if not kept:
            self.unmatched.append(where)
        return kept, problems

    def keep(
        self, detections: Sequence[Detection], width: int, height: int, where: str
    ) -> tuple[list[Detection], list[str]]:
        """``detections`` scoring above the threshold, usable on a ``width`` x ``height`` picture, overlaps
        suppressed (best score first), and one problem per unusable box; the counts grow."""
        self.read += len(detections)
        kept, problems = [], []
        for j, det in enumerate(detections):
            if not det[1] > self.box_threshold:
                self.low_score += 1
                continue
            problem = box_problem(det[0], width, height)
            if problem is None:
                kept.append(det)
            else:
                problems.append(f"{where}: box {j} (image_id {det[3]!r}) {problem}; skipped")
        order = suppress_overlaps([d[0] for d in kept], [d[1] for d in kept], self.nms_threshold)
        self.overlapping += len(kept) - len(order)
        return [kept[i] for i in order], problems

    def missing(self, one_image: bool = False) -> str:
        """What the pictures of :meth:`take_unmatched` lack, for notes: ``without boxes in dets.json`` (frames), or
        with ``one_image`` ``no boxes for this image in dets.json``; for the detector, ``without anybody detected``
        or ``nobody detected`` (with the threshold)."""
        if self.detector is not None:
            return ("nobody" if one_image else "without anybody") + (
                f" detected (no person box scoring above {self.box_threshold:g})"
            )
        return ("no boxes for this image" if one_image else "without boxes") + f" in {self.boxes_file}"

    def boxes(self, detections: Sequence[Detection]) -> list[list[float]] | None:
        """The boxes to crop, or None (neither detections nor a detector: the whole image, fitted without padding)."""
        return [d[0] for d in detections] if self.per_person else None

    def take_unmatched(self) -> list[str]:
        """The pictures without any detection since the last call (then forgotten)."""
        unmatched, self.unmatched = self.unmatched, []
        return unmatched
