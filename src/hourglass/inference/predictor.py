"""Inference on image files: crops from person boxes (or the whole image), flip test, keypoints in image pixels.

:class:`Predictor` is the Python API. Box geometry and the choice of people are in :mod:`hourglass.people.boxes`,
the ``hourglass predict`` driver (:func:`predict_files`) in :mod:`hourglass.predict`; their public
names stay importable from here.

The pipeline per person: box ``(x, y, w, h)`` -> centre and scale (HRNet's ``_xywh2cs``: the box is widened
to the input aspect ratio and padded by 1.25) -> affine crop of the input size (``hourglass.data``) ->
network -> last stack's heatmaps, averaged with those of the mirrored crop brought back (``flip_back``,
HRNet's one-pixel shift) -> :class:`~hourglass.data.HeatmapCodec` decode (argmax + quarter-pixel shift)
-> inverse affine back to image pixels. Without boxes the detector's people are used when the predictor has
one (:mod:`hourglass.people.detect`; none when it finds nobody), else the whole image is one person,
fitted to the input without padding. Keypoints are ``(x, y)`` with pixel centres at integers (0-based);
scores are heatmap maxima.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hourglass.data import (
    HeatmapCodec,
    Skeleton,
    box_to_center_scale,
    flip_test,
    get_affine_matrix,
    warp_image,
)
from hourglass.data.images import read_image, to_network_input
from hourglass.errors import CheckpointError, ConfigError, DataError, InputError
from hourglass.inference.runtimes import HeatmapFn
from hourglass.people.boxes import (
    BOX_THRESHOLD,
    NMS_THRESHOLD,
    box_iou,
    box_problem,
    read_boxes,
    suppress_overlaps,
    whole_image_box,
)

__all__ = [
    "BOX_PADDING",
    "BOX_THRESHOLD",
    "NMS_THRESHOLD",
    "Poses",
    "Predictor",
    "box_iou",
    "box_problem",
    "calibration_images",
    "crop_person",
    "read_boxes",
    "suppress_overlaps",
    "whole_image_box",
]

_DRIVER = ("PredictReport", "collect_inputs", "predict_files")  # hourglass.predict, which imports this module

BOX_PADDING = 1.25  # HRNet / mmpose top-down default


@dataclass
class Poses:
    """The people of one image.

    Attributes:
        keypoints: ``(P, K, 2)`` ``(x, y)`` in image pixels.
        scores: ``(P, K)`` heatmap maxima (about 1 for a confident joint of a trained model).
        boxes: ``(P, 4)`` the ``(x, y, w, h)`` boxes the crops were cut from.
        heatmaps: ``(P, K, h, w)`` the flip-averaged heatmaps (when asked for).
        crops: ``(P, H, W, 3)`` uint8 RGB network inputs (when asked for).
        box_scores: ``(P,)`` the detector's scores of ``boxes`` (when the detector found them).
    """

    keypoints: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray
    heatmaps: np.ndarray | None = None
    crops: np.ndarray | None = None
    box_scores: np.ndarray | None = None


class Predictor:
    """Keypoints of the people in an image, from a network and the codec it was trained with.

    Args:
        runtime: callable ``images (B, 3, H, W) float32 RGB in [0, 1] -> heatmaps (B, K, h, w)`` of the last
            stack (a :class:`hourglass.inference.runtimes.Runtime`, or any function of that form).
        codec: the training codec (input size, heatmap size, sigma).
        skeleton: joint metadata; ``flip_index`` drives the flip test.
        flip: average with the mirrored crop's heatmaps (Newell et al.'s test-time flip).
        batch_size: crops per network call (doubled internally by the flip test).
        detector: finds the people of an image given without boxes: a function ``rgb (H, W, 3) uint8 ->
            (boxes (P, 4) (x, y, w, h), scores (P,))`` such as a :class:`~hourglass.people.detect.PersonDetector`,
            or a published detector's name or an ``.onnx`` path for
            :func:`~hourglass.people.detect.open_detector`. None: such an image is one person, the whole image.

    Example (an untrained 16-channel model saved as a checkpoint, then read back):
        >>> import tempfile
        >>> from pathlib import Path
        >>> from hourglass.checkpoint.io import save_checkpoint
        >>> from hourglass.models import create_model
        >>> meta = {"model": {"name": "hg1", "kwargs": {"num_channels": 16}}, "data": {"input_size": [64, 64]}}
        >>> path = Path(tempfile.mkdtemp()) / "hg1.safetensors"
        >>> path = save_checkpoint(path, create_model("hg1", num_channels=16), meta)
        >>> predictor = Predictor.from_checkpoint(path, skeleton="mpii_16")
        >>> image_rgb = np.zeros((240, 320, 3), np.uint8)
        >>> keypoints, scores = predictor(image_rgb, boxes=[[10, 20, 80, 160]])
        >>> keypoints.shape, scores.shape  # one person, 16 joints
        ((1, 16, 2), (1, 16))
        >>> import shutil; shutil.rmtree(path.parent)
    """

    def __init__(
        self,
        runtime: HeatmapFn,
        codec: HeatmapCodec,
        skeleton: Skeleton,
        flip: bool = True,
        batch_size: int = 8,
        detector: Any | None = None,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.runtime = runtime
        self.codec = codec
        self.skeleton = skeleton
        self.flip = flip
        self.batch_size = int(batch_size)
        if detector is not None and not callable(detector):
            from hourglass.people.detect import open_detector

            detector = open_detector(detector)
        self.detector = detector

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike[str],
        backend: str = "eager",
        precision: str = "fp32",
        flip: bool = True,
        batch_size: int = 8,
        skeleton: Skeleton | str | Mapping[str, Any] | None = None,
        calibration: Any | None = None,
        device: str = "cpu",
        detector: Any | None = None,
    ) -> Predictor:
        """A predictor for a ``.safetensors`` checkpoint: codec and skeleton from its metadata.

        ``backend``/``precision`` choose the runtime (:func:`hourglass.inference.runtimes.create_runtime`:
        eager, compile, onnxruntime, openvino, best; fp32, bf16, int8). int8 needs ``calibration`` images
        ``(N, 3, H, W)`` (see :func:`calibration_images`), or a function of the input size ``(H, W)`` that
        returns them (the checkpoint is then read once). ``skeleton`` overrides or supplies the
        skeleton when the checkpoint has none. ``device`` (``cpu``, ``cuda``, ``cuda:N``) places the eager and
        compile back-ends. ``detector``: see :class:`Predictor` (``"default"`` runs the recommended published one).
        """
        from hourglass.checkpoint.load import load_model
        from hourglass.inference.runtimes import create_runtime

        model, meta = load_model(path)
        codec, skel = meta.require_codec(path), meta.require_skeleton(path, skeleton)
        if callable(calibration):
            calibration = calibration(codec.input_size)
        runtime = create_runtime(
            (model, meta), backend=backend, precision=precision, calibration=calibration, device=device
        )
        return cls(runtime, codec, skel, flip=flip, batch_size=batch_size, detector=detector)

    def __call__(self, image: Any, boxes: Any | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints ``(P, K, 2)`` in image pixels and scores ``(P, K)``.

        Args:
            image: a PNG/JPEG path or an ``(H, W, 3)`` uint8 RGB array (not OpenCV's BGR).
            boxes: ``(P, 4)`` ``(x, y, w, h)`` person boxes in image pixels; None = the detector's people (none
                when it finds nobody), or the whole image as one person when the predictor has no detector.

        Raises:
            DataError, InputError: an unreadable image or array, or a box of zero size or outside the image
                (naming its index).
        """
        poses = self.predict([image], [boxes])[0]
        return poses.keypoints, poses.scores

    def predict(
        self, images: Sequence[Any], boxes: Sequence[Any | None] | None = None, keep_heatmaps: bool = False
    ) -> list[Poses]:
        """:class:`Poses` for each image, the crops of all images batched together.

        ``images``: paths or ``(H, W, 3)`` uint8 RGB arrays; ``boxes``: one ``(P, 4)`` array (or None for the
        whole image, or the detector's people) per image. ``keep_heatmaps`` also returns heatmaps and crops (for
        montages).
        """
        boxes = list(boxes) if boxes is not None else [None] * len(images)
        if len(boxes) != len(images):
            raise InputError(f"{len(images)} images but {len(boxes)} box lists")
        crops, matrices, used, owners, box_scores = [], [], [], [], {}
        for i, (image, image_boxes) in enumerate(zip(images, boxes, strict=True)):
            rgb = read_image(image) if isinstance(image, (str, os.PathLike)) else _check_rgb(image)
            height, width = rgb.shape[:2]
            if image_boxes is None and self.detector is not None:
                person_boxes, box_scores[i] = self.detector(rgb)
                person_boxes = np.asarray(person_boxes, dtype=np.float64).reshape(-1, 4)
                padding = BOX_PADDING
            elif image_boxes is None:
                person_boxes = whole_image_box(width, height)[None]
                padding = 1.0
            else:
                person_boxes = np.asarray(image_boxes, dtype=np.float64).reshape(-1, 4)
                padding = BOX_PADDING
                for j, box in enumerate(person_boxes):
                    problem = box_problem(box, width, height)
                    if problem is not None:
                        raise DataError(f"{_name(image, i)}: box {j} {problem}")
            for box in person_boxes:
                crop, matrix = self.crop(rgb, box, padding)
                crops.append(crop)
                matrices.append(matrix)
                used.append(box)
                owners.append(i)
        keypoints, scores, heatmaps = self.predict_crops(np.stack(crops) if crops else None, matrices)
        out = []
        owners_arr = np.asarray(owners, dtype=np.int64)
        k = self.skeleton.num_joints
        for i in range(len(images)):
            rows = np.flatnonzero(owners_arr == i)
            out.append(
                Poses(
                    keypoints=keypoints[rows] if rows.size else np.zeros((0, k, 2)),
                    scores=scores[rows] if rows.size else np.zeros((0, k)),
                    boxes=np.asarray([used[r] for r in rows]).reshape(-1, 4),
                    heatmaps=heatmaps[rows] if keep_heatmaps and heatmaps is not None else None,
                    crops=np.stack([crops[r] for r in rows]) if keep_heatmaps and rows.size else None,
                    box_scores=np.asarray(box_scores[i], dtype=np.float64) if i in box_scores else None,
                )
            )
        return out

    def crop(
        self, image: np.ndarray, box: Sequence[float], padding: float = BOX_PADDING
    ) -> tuple[np.ndarray, np.ndarray]:
        """:func:`crop_person` at this predictor's input size."""
        return crop_person(image, box, self.codec.input_size, padding)

    def predict_crops(
        self, crops: np.ndarray | None, matrices: Sequence[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Keypoints ``(N, K, 2)`` in image pixels, scores ``(N, K)`` and heatmaps ``(N, K, h, w)`` of crops
        ``(N, H, W, 3)`` uint8 RGB whose crop -> image matrices are ``matrices`` ``(N, 2, 3)``."""
        k = self.skeleton.num_joints
        if crops is None or len(crops) == 0:
            return np.zeros((0, k, 2)), np.zeros((0, k)), None
        heatmaps = []
        for start in range(0, len(crops), self.batch_size):
            heatmaps.append(self.heatmaps(to_network_input(crops[start : start + self.batch_size])))
        hm = np.concatenate(heatmaps)
        keypoints, scores, _ = self.codec.decode_to_image(hm, np.stack(matrices))
        return keypoints, scores, hm

    def heatmaps(self, images: np.ndarray) -> np.ndarray:
        """Last-stack heatmaps ``(B, K, h, w)`` of network inputs ``(B, 3, H, W)``, flip-averaged if enabled."""
        k, (h, w) = self.skeleton.num_joints, self.codec.heatmap_size

        def forward(batch: np.ndarray) -> np.ndarray:
            out = np.asarray(self.runtime(np.ascontiguousarray(batch)), dtype=np.float32)
            if out.shape != (len(batch), k, h, w):
                raise CheckpointError(
                    f"the network returned heatmaps of shape {out.shape}, expected ({len(batch)}, {k}, {h}, {w}) "
                    "from the checkpoint's skeleton and heatmap_size"
                )
            return out

        return flip_test(forward, images, self.skeleton.flip_index) if self.flip else forward(images)


def crop_person(
    image: np.ndarray, box: Sequence[float], input_size: Sequence[int], padding: float = BOX_PADDING
) -> tuple[np.ndarray, np.ndarray]:
    """The network input ``(H, W, 3)`` uint8 cut around ``box`` ``(x, y, w, h)`` and its (2, 3) crop -> image matrix.

    The box is widened or heightened to the input's aspect ratio and enlarged by ``padding``
    (:func:`hourglass.data.box_to_center_scale`); parts outside the image are black.
    """
    H, W = int(input_size[0]), int(input_size[1])
    center, scale = box_to_center_scale(box, aspect_ratio=W / H, padding=padding)
    forward = get_affine_matrix(center, scale, 0.0, (H, W))
    return warp_image(image, forward, (H, W)), get_affine_matrix(center, scale, 0.0, (H, W), inverse=True)


def calibration_images(
    files: Iterable[str | os.PathLike[str]], input_size: Sequence[int], limit: int = 32
) -> np.ndarray:
    """Whole-image network inputs ``(N, 3, H, W)`` float32 of up to ``limit`` readable files (int8 calibration)."""
    out = []
    for path in files:
        try:
            rgb = read_image(path)
        except DataError:
            continue
        crop, _ = crop_person(rgb, whole_image_box(rgb.shape[1], rgb.shape[0]), input_size, 1.0)
        out.append(to_network_input(crop))
        if len(out) >= limit:
            break
    if not out:
        raise DataError("int8 calibration: none of the inputs is a readable image")
    return np.stack(out)


def _check_rgb(image: Any) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise InputError(f"image must be an (H, W, 3) uint8 RGB array or a file path, got {arr.dtype} {arr.shape}")
    return arr


def _name(image: Any, index: int) -> str:
    return str(image) if isinstance(image, (str, os.PathLike)) else f"image {index}"
