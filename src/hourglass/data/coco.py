"""COCO-format keypoint datasets through pycocotools (COCO persons, or any keypoint category).

Ground-truth people: crowd annotations and people without labelled keypoints are excluded; box corners
are clipped to the image (mmpose 1.x ``parse_data_info``) and turned into center/scale
at the model's aspect ratio with 1.25 padding. Keypoints are taken as written (``x, y, v``; ``v > 0``
labelled, ``v == 1`` labelled but not visible, i.e. occluded), like HRNet and mmpose. With a
detection-results file (COCO results format: ``image_id``, ``category_id``, ``bbox``, ``score``) the
records are the detected boxes instead, for evaluation; their keypoints are unlabelled.
An optional ``head_box`` (x1, y1, x2, y2) per annotation (written by ``hourglass synth``) gives the
MPII-style head size.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hourglass.errors import DataError
from hourglass.extras import require_extra
from hourglass.metrics.mpii import mpii_head_size

from .codec import HeatmapCodec
from .dataset import KeypointDataset, Record
from .skeletons import Skeleton, recognise_skeleton
from .transforms import Augmentation, box_to_center_scale

if TYPE_CHECKING:  # pycocotools is imported where COCO files are read, so MPII-only use runs without it
    from pycocotools.coco import COCO


def load_coco(path: str | os.PathLike[str]) -> COCO:
    """A pycocotools ``COCO`` index of ``path``, with its progress prints silenced and errors named."""
    COCO = require_extra("pycocotools.coco", "coco").COCO

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such annotation file")
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return COCO(str(path))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not valid JSON ({err})") from None
    except (KeyError, TypeError, AssertionError) as err:
        raise DataError(f"{path}: not a COCO annotation file ({type(err).__name__}: {err})") from None


def keypoint_category(coco: COCO, source: str, category_id: int | None = None) -> dict[str, Any]:
    """The category with keypoints (the given id, or the only/first one that has ``keypoints``)."""
    cats = [c for c in coco.dataset.get("categories", []) if c.get("keypoints")]
    if category_id is not None:
        cats = [c for c in cats if c.get("id") == category_id]
    if not cats:
        which = f"id {category_id}" if category_id is not None else "any"
        raise DataError(f"{source}: no category ({which}) with a 'keypoints' list of joint names")
    return cats[0]


def skeleton_of(category: dict[str, Any], source: str = "COCO category") -> Skeleton:
    """The built-in set whose joints the category lists (COCO, MPII, CrowdPose, AI Challenger, Halpe), else a
    custom skeleton from the category (:func:`~hourglass.data.skeletons.recognise_skeleton`)."""
    return recognise_skeleton(category, source)


def check_ids(coco: COCO, source: str) -> None:
    """Refuse duplicate image or annotation ids (pycocotools would silently keep one and count the other twice)."""
    for field in ("images", "annotations"):
        seen: set[Any] = set()
        for i, entry in enumerate(coco.dataset.get(field, [])):
            key = entry.get("id")
            if key in seen:
                raise DataError(f"{source}: {field}[{i}]: duplicate 'id' {key!r}; every {field[:-1]} needs its own id")
            seen.add(key)


def load_coco_people(
    coco: COCO, category: dict[str, Any], aspect_ratio: float, source: str, skip_bad: bool = False
) -> list[Record]:
    """Ground-truth records: non-crowd people with at least one labelled keypoint and a box with area.

    People without labelled keypoints are left out (as HRNet and mmpose do). Labelled keypoints outside the
    image are unlabelled with one warning naming the file, the annotation ids and ``keypoints``. A person whose
    box has no area or whose fields are malformed is a :class:`DataError` naming the file, the annotation id
    and the field; with ``skip_bad`` that person is left out with a warning instead.
    """
    check_ids(coco, source)
    k = len(category["keypoints"])
    records, outside = [], []
    orphans = [a.get("id") for a in coco.dataset.get("annotations", []) if a.get("image_id") not in coco.imgs]
    if orphans:
        warnings.warn(
            f"{source}: annotations {orphans[:5]}{' ...' if len(orphans) > 5 else ''} name an 'image_id' that is "
            "not in 'images'; left out",
            stacklevel=2,
        )
    for image_id in sorted(coco.imgs):
        img = coco.imgs[image_id]
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=image_id, catIds=[category["id"]], iscrowd=None)):
            where = f"{source}: annotation id {ann.get('id')} (image {image_id})"
            if ann.get("iscrowd", 0):
                continue
            try:
                kps = _keypoints(ann, k, where)
                if not (kps[:, 2] > 0).any():
                    continue
                off = _outside(kps, img)
                if off.any():
                    outside.append(ann.get("id"))
                    kps[off] = 0
                    if not (kps[:, 2] > 0).any():
                        continue
                records.append(_record(ann, img, kps, aspect_ratio, where))
            except DataError as err:
                if not skip_bad:
                    raise
                warnings.warn(f"skipping: {err}", stacklevel=2)
    if outside:
        warnings.warn(
            f"{source}: annotations {outside[:5]}{' ...' if len(outside) > 5 else ''}: labelled 'keypoints' outside "
            "the image (beyond its width/height); those keypoints are treated as unlabelled",
            stacklevel=2,
        )
    return records


def _keypoints(ann: dict[str, Any], k: int, where: str) -> np.ndarray:
    """``(K, 3)`` ``x, y, v`` of an annotation; DataError naming the field when absent or malformed."""
    if "keypoints" not in ann or "bbox" not in ann:
        raise DataError(f"{where}: missing field 'keypoints' or 'bbox'")
    try:
        kps = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise DataError(f"{where}: 'keypoints' must be a flat list of numbers (x, y, v) * {k}") from None
    if kps.size != 3 * k:
        raise DataError(f"{where}: {kps.size} keypoint values, expected {3 * k} ({k} joints x (x, y, v))")
    return kps.reshape(k, 3)


def _outside(kps: np.ndarray, img: dict[str, Any]) -> np.ndarray:
    """``(K,)`` labelled keypoints lying outside the recorded image (a pixel of slack for rounding)."""
    width, height = img.get("width"), img.get("height")
    if not (width and height):
        return np.zeros(len(kps), bool)
    x, y = kps[:, 0], kps[:, 1]
    return (kps[:, 2] > 0) & ((x < -1) | (y < -1) | (x > width) | (y > height))


def _record(ann: dict[str, Any], img: dict[str, Any], kps: np.ndarray, aspect: float, where: str) -> Record:
    try:
        x, y, w, h = (float(v) for v in ann["bbox"])
    except (TypeError, ValueError):
        raise DataError(f"{where}: bbox must be 4 numbers (x, y, w, h), got {ann['bbox']!r}") from None
    width, height = img.get("width"), img.get("height")
    if width and height:  # corners clipped to the image, as mmpose 1.x does
        x1, y1 = min(max(x, 0.0), width - 1.0), min(max(y, 0.0), height - 1.0)
        x2, y2 = min(max(x + w, 0.0), width - 1.0), min(max(y + h, 0.0), height - 1.0)
        x, y, w, h = x1, y1, x2 - x1, y2 - y1
    if not (np.isfinite([x, y, w, h]).all() and w > 0 and h > 0):
        raise DataError(f"{where}: box of zero size {ann['bbox']!r} (expected width and height > 0 inside the image)")
    center, scale = box_to_center_scale((x, y, w, h), aspect)
    head_size = 0.0
    if "head_box" in ann:
        head_size = mpii_head_size(np.asarray(ann["head_box"], dtype=np.float64).reshape(4))
    return Record(
        image_file=str(img["file_name"]),
        center=center,
        scale=scale,
        keypoints=kps[:, :2],
        visible=kps[:, 2] > 0,
        occluded=kps[:, 2] == 1,
        head_size=head_size,
        bbox=np.array([x, y, w, h]),
        score=float(ann.get("score", 1.0)),
        image_id=ann["image_id"],
        image_size=(int(height), int(width)) if width and height else None,
    )


def read_detections(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The entries of a COCO detection-results JSON, checked: the one reader of person boxes.

    Each entry has ``image_id``, ``bbox`` ``[x, y, w, h]`` (floats), ``score`` (default 1.0) and
    ``category_id`` (None when absent). Used for evaluation on detected boxes (:func:`load_detections`)
    and by ``hourglass predict --boxes``.

    Raises:
        DataError: a missing or unreadable file, not a list, or an entry without ``image_id`` and a
            four-number ``bbox``, naming the file and the entry.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: no such detections file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: not a JSON file of COCO detection results ({err})") from None
    if not isinstance(doc, list):
        raise DataError(f"{path}: expected a JSON list of COCO detection results, got {type(doc).__name__}")
    out = []
    for i, det in enumerate(doc):
        if not isinstance(det, dict) or "image_id" not in det or "bbox" not in det:
            raise DataError(f"{path}: detection {i} needs 'image_id' and 'bbox' [x, y, w, h]")
        bbox = det["bbox"]
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise DataError(f"{path}: detection {i}: bbox {bbox!r} is not [x, y, w, h]")
        try:
            entry = {
                "image_id": det["image_id"],
                "bbox": [float(v) for v in bbox],
                "score": float(det.get("score", 1.0)),
                "category_id": det.get("category_id"),
            }
        except (TypeError, ValueError):
            raise DataError(f"{path}: detection {i}: bbox and score must be numbers, got {det!r}") from None
        out.append(entry)
    return out


def load_detections(
    path: str | os.PathLike[str], coco: COCO, category: dict[str, Any], aspect_ratio: float, min_score: float = 0.0
) -> list[Record]:
    """Records from a COCO detection-results JSON (boxes to evaluate on; keypoints unlabelled)."""
    k = len(category["keypoints"])
    records = []
    for i, det in enumerate(read_detections(path)):
        where = f"{path}: detection {i}"
        if det["category_id"] not in (None, category["id"]) or det["score"] < min_score:
            continue
        if det["image_id"] not in coco.imgs:
            raise DataError(f"{where}: image_id {det['image_id']!r} is not in the annotation file")
        kps = np.zeros((k, 3))
        records.append(_record(det, coco.imgs[det["image_id"]], kps, aspect_ratio, where))
    return records


def image_keys(path: Path) -> list[str]:
    """The detection ``image_id`` values (as strings) that name image file ``path``."""
    keys = [path.name, path.stem]
    if path.stem.isdigit():
        keys.append(str(int(path.stem)))
    return keys


def coco_result(
    image_id: Any,
    category_id: Any,
    keypoints: np.ndarray,
    scores: np.ndarray,
    box_score: float = 1.0,
    decimals: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One COCO keypoint result: the one writer of evaluation's and ``hourglass predict``'s results.

    Args:
        keypoints: ``(K, 2)`` ``(x, y)`` in image pixels, written as given (no offset).
        scores: ``(K,)`` joint scores (heatmap maxima).
        box_score: the person box's score; the instance ``score`` is ``box_score`` x the mean joint score.
        decimals: round coordinates and joint scores to this many decimals (the instance score to two
            more), for files meant to be read; None keeps full precision.
        extra: further entries (``bbox``, ``file_name``).

    Returns:
        ``{"image_id", "category_id", "keypoints": [x, y, s] * K, "score", **extra}``.
    """
    flat = np.concatenate([np.asarray(keypoints, np.float64), np.asarray(scores, np.float64)[:, None]], axis=1)
    values = [float(v) for v in flat.reshape(-1)]
    score = float(box_score) * float(np.mean(scores))
    if decimals is not None:
        values = [round(v, decimals) for v in values]
        score = round(score, decimals + 2)
    return {"image_id": image_id, "category_id": category_id, "keypoints": values, "score": score, **extra}


class COCOKeypoints(KeypointDataset):
    """A COCO-format keypoint dataset (COCO person keypoints, or any category with ``keypoints``).

    Args:
        ann_file: COCO annotation JSON (``person_keypoints_*.json`` or any keypoint dataset).
        image_root: folder that the images' ``file_name`` is relative to; only needed to read samples.
        codec: heatmap codec; default 256x192 (H x W) input, 64x48 heatmaps, sigma 2.
        detections: optional detection-results JSON; its boxes replace the ground-truth people.
        min_score: detections scoring below this are dropped.
        category_id: which keypoint category (default: the first one with ``keypoints``).
        skeleton: override the skeleton read from the category.
        augmentation, seed, skip_bad: as in :class:`KeypointDataset`.
    """

    def __init__(
        self,
        ann_file: str | os.PathLike[str],
        image_root: str | os.PathLike[str] | None = None,
        codec: HeatmapCodec | None = None,
        detections: str | os.PathLike[str] | None = None,
        min_score: float = 0.0,
        category_id: int | None = None,
        skeleton: Skeleton | None = None,
        augmentation: Augmentation | None = None,
        seed: int = 0,
        skip_bad: bool = False,
    ) -> None:
        codec = codec or HeatmapCodec((256, 192), (64, 48), 2.0)
        source = str(ann_file)
        self.coco = load_coco(ann_file)
        self.category = keypoint_category(self.coco, source, category_id)
        skeleton = skeleton or skeleton_of(self.category, source)
        if skeleton.num_joints != len(self.category["keypoints"]):
            raise DataError(
                f"{source}: category has {len(self.category['keypoints'])} keypoints, "
                f"skeleton {skeleton.name!r} has {skeleton.num_joints}"
            )
        aspect = codec.input_size[1] / codec.input_size[0]
        if detections is not None:
            records = load_detections(detections, self.coco, self.category, aspect, min_score)
        else:
            records = load_coco_people(self.coco, self.category, aspect, source, skip_bad)
        super().__init__(records, skeleton, codec, image_root, augmentation, seed, skip_bad, source)
