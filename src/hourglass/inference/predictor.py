"""Inference on image files: crops from person boxes (or the whole image), flip test, keypoints in image pixels.

:class:`Predictor` is the Python API; :func:`predict_files` is what ``hourglass predict`` runs (COCO results
JSON, overlay PNGs, optional heatmap montages; bad files and boxes reported and skipped).

The pipeline per person: box ``(x, y, w, h)`` -> centre and scale (HRNet's ``_xywh2cs``: the box is widened
to the input aspect ratio and padded by 1.25) -> affine crop of the input size (``hourglass.data``) ->
network -> last stack's heatmaps, averaged with those of the mirrored crop brought back (``flip_back``,
HRNet's one-pixel shift) -> :class:`~hourglass.data.HeatmapCodec` decode (argmax + quarter-pixel shift)
-> inverse affine back to image pixels. Without boxes the whole image is one person, fitted to the input
without padding. Keypoints are ``(x, y)`` with pixel centres at integers (0-based); scores are heatmap maxima.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from hourglass.data import (
    HeatmapCodec,
    Skeleton,
    box_to_center_scale,
    flip_test,
    get_affine_matrix,
    warp_image,
)
from hourglass.data.coco import coco_result, image_keys, read_detections
from hourglass.data.images import IMAGE_SUFFIXES, read_image, to_network_input
from hourglass.errors import CheckpointError, ConfigError, DataError, InputError
from hourglass.inference.runtimes import HeatmapFn

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
    """

    keypoints: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray
    heatmaps: np.ndarray | None = None
    crops: np.ndarray | None = None


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


class Predictor:
    """Keypoints of the people in an image, from a network and the codec it was trained with.

    Args:
        runtime: callable ``images (B, 3, H, W) float32 RGB in [0, 1] -> heatmaps (B, K, h, w)`` of the last
            stack (a :class:`hourglass.inference.runtimes.Runtime`, or any function of that form).
        codec: the training codec (input size, heatmap size, sigma).
        skeleton: joint metadata; ``flip_index`` drives the flip test.
        flip: average with the mirrored crop's heatmaps (Newell et al.'s test-time flip).
        batch_size: crops per network call (doubled internally by the flip test).

    Example (an untrained 16-channel model saved as a checkpoint, then read back):
        >>> import tempfile
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
        self, runtime: HeatmapFn, codec: HeatmapCodec, skeleton: Skeleton, flip: bool = True, batch_size: int = 8
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.runtime = runtime
        self.codec = codec
        self.skeleton = skeleton
        self.flip = flip
        self.batch_size = int(batch_size)

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
    ) -> Predictor:
        """A predictor for a ``.safetensors`` checkpoint: codec and skeleton from its metadata.

        ``backend``/``precision`` choose the runtime (:func:`hourglass.inference.runtimes.create_runtime`:
        eager, compile, onnxruntime, openvino, best; fp32, bf16, int8). int8 needs ``calibration`` images
        ``(N, 3, H, W)`` (see :func:`calibration_images`), or a function of the input size ``(H, W)`` that
        returns them (the checkpoint is then read once). ``skeleton`` overrides or supplies the
        skeleton when the checkpoint has none. ``device`` (``cpu``, ``cuda``, ``cuda:N``) places the eager and
        compile back-ends.
        """
        from hourglass.checkpoint.io import load_model
        from hourglass.inference.runtimes import create_runtime

        model, meta = load_model(path)
        codec, skel = meta.require_codec(path), meta.require_skeleton(path, skeleton)
        if callable(calibration):
            calibration = calibration(codec.input_size)
        runtime = create_runtime(
            (model, meta), backend=backend, precision=precision, calibration=calibration, device=device
        )
        return cls(runtime, codec, skel, flip=flip, batch_size=batch_size)

    def __call__(self, image: Any, boxes: Any | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints ``(P, K, 2)`` in image pixels and scores ``(P, K)``.

        Args:
            image: a PNG/JPEG path or an ``(H, W, 3)`` uint8 RGB array (not OpenCV's BGR).
            boxes: ``(P, 4)`` ``(x, y, w, h)`` person boxes in image pixels; None = the whole image is one person.

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
        whole image) per image. ``keep_heatmaps`` also returns heatmaps and crops (for montages).
        """
        boxes = list(boxes) if boxes is not None else [None] * len(images)
        if len(boxes) != len(images):
            raise InputError(f"{len(images)} images but {len(boxes)} box lists")
        crops, matrices, used, owners = [], [], [], []
        for i, (image, image_boxes) in enumerate(zip(images, boxes, strict=True)):
            rgb = read_image(image) if isinstance(image, (str, os.PathLike)) else _check_rgb(image)
            height, width = rgb.shape[:2]
            if image_boxes is None:
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


# --- choosing boxes ------------------------------------------------------------------------------------

BOX_THRESHOLD = 0.3  # mmpose demo/topdown_demo_with_mmdet.py: --bbox-thr 0.3 (keeps score > thr)
NMS_THRESHOLD = 0.3  # mmpose demo/topdown_demo_with_mmdet.py: --nms-thr 0.3 (IoU of boxes)
Detection = tuple[list[float], float, Any, Any]  # (bbox [x, y, w, h], score, category_id, image_id)


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


# --- hourglass predict ----------------------------------------------------------------------------------


@dataclass
class PredictReport:
    """What :func:`predict_files` did: counts, files written, and one message per problem.

    ``boxes_read`` counts the detections of the processed images and frames; ``boxes_low_score`` those at or
    under the score threshold and ``boxes_overlapping`` those suppressed as overlapping a better one.
    """

    images: int = 0
    people: int = 0
    written: list[Path] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    videos: int = 0
    frames: int = 0
    broken_frames: int = 0
    boxes_read: int = 0
    boxes_low_score: int = 0
    boxes_overlapping: int = 0


def collect_inputs(inputs: Sequence[str | os.PathLike[str]], frames: bool = False) -> tuple[list[Path], list[str]]:
    """Image and video files from files and folders, and problems.

    A folder gives its PNG/JPEG and video files (sorted, not recursive), or with ``frames`` stays one item:
    a folder of frames. A file given by name is kept whatever its type (it is reported when read); a missing
    path is a problem.
    """
    from hourglass.inference.video import VIDEO_SUFFIXES

    files: list[Path] = []
    problems: list[str] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir() and frames:
            files.append(path)
        elif path.is_dir():
            suffixes = IMAGE_SUFFIXES + VIDEO_SUFFIXES
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
            if not found:
                problems.append(f"{path}: folder has no PNG, JPEG or video files")
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            problems.append(f"{path}: no such file or folder")
    return files, problems


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


def _image_id(path: Path) -> int | str:
    return int(path.stem) if path.stem.isdigit() else path.stem


def _unique_names(names: Sequence[str]) -> list[str]:
    """One output name per input: the name, with ``-2``, ``-3`` ... where names repeat."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        n = seen.get(name, 0) + 1
        seen[name] = n
        out.append(name if n == 1 else f"{name}-{n}")
    return out


def predict_files(
    inputs: Sequence[str | os.PathLike[str]],
    checkpoint: str | os.PathLike[str],
    out: str | os.PathLike[str] = "predictions",
    boxes: str | os.PathLike[str] | None = None,
    batch_size: int = 8,
    heatmaps: bool = False,
    backend: str = "eager",
    precision: str = "fp32",
    progress: bool = True,
    device: str = "cpu",
    box_threshold: float = BOX_THRESHOLD,
    nms_threshold: float = NMS_THRESHOLD,
    frames: bool = False,
    camera: Any | None = None,
    max_frames: int | None = None,
    fps: float | None = None,
) -> PredictReport:
    """``hourglass predict``: keypoints of every person in every image, video frame and camera frame.

    Images: ``out/keypoints.json`` (COCO results: ``image_id``, ``category_id``, ``keypoints``
    ``[x, y, score] * K``, ``score`` = box score x mean joint score, plus ``bbox`` and ``file_name``),
    ``out/<stem>.png`` (the image with its skeletons) and, with ``heatmaps``,
    ``out/<stem>.person<i>.heatmaps.png``. Videos (by suffix, :data:`hourglass.inference.video.VIDEO_SUFFIXES`),
    folders of frames (``frames``: each folder given is one video) and ``camera`` (an index for
    ``cv2.VideoCapture``, or an object with its ``read()``): ``out/<name>.mp4`` (overlay video) and
    ``out/<name>.keypoints.json`` (the same results plus ``frame``, the 0-based frame index; a video's
    ``image_id`` is that index). Every file is written atomically.

    Boxes scoring at or under ``box_threshold`` are dropped, then in each image or frame those overlapping a
    better one by IoU above ``nms_threshold`` (:func:`suppress_overlaps`). Unreadable images and broken
    frames, and unusable boxes, are reported in :attr:`PredictReport.failures` and skipped; the rest are
    processed. ``max_frames`` caps each video and the camera; ``fps`` overrides the overlay frame rate.

    Raises:
        HourglassError: for problems that stop everything (checkpoint, boxes file, no input at all).
    """
    from hourglass.files import atomic_write
    from hourglass.inference.video import VIDEO_SUFFIXES

    files, problems = collect_inputs(inputs, frames)
    report = PredictReport(failures=list(problems))
    if not files and camera is None:
        raise DataError("no input images: " + ("; ".join(problems) if problems else "none given"))
    streams = [f for f in files if f.is_dir() or f.suffix.lower() in VIDEO_SUFFIXES]
    images = [f for f in files if f not in streams]
    grouped = read_boxes(boxes) if boxes is not None else None
    out_dir = Path(out)
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"{out_dir}: --out exists and is not a folder")
    calibration = None
    if precision == "int8":
        if not images:
            raise DataError("int8 is calibrated on the input images; give some PNG/JPEG files with the videos")
        calibration = functools.partial(calibration_images, images)  # at the checkpoint's input size
    predictor = Predictor.from_checkpoint(
        checkpoint, backend=backend, precision=precision, batch_size=batch_size, calibration=calibration, device=device
    )
    choose = _BoxChoice(grouped, boxes, box_threshold, nms_threshold, report)
    if heatmaps and (streams or camera is not None):
        report.notes.append("--heatmaps: montages are written for images only, not for video frames")
    with _Bar(progress) as bar:
        if images or not (streams or camera is not None):
            results = _predict_images(images, predictor, out_dir, choose, heatmaps, bar, report)
            report.notes.extend(f"{where}: no boxes for this image in {boxes}" for where in choose.unmatched)
            choose.unmatched.clear()
            text = json.dumps(results)
            report.written.append(atomic_write(out_dir / "keypoints.json", lambda tmp: Path(tmp).write_text(text)))
        names = _unique_names([s.name if s.is_dir() else s.stem for s in streams])
        for path, name in zip(streams, names, strict=True):
            _predict_stream(path, name, predictor, out_dir, choose, bar, report, fps=fps, max_frames=max_frames)
        if camera is not None:
            _predict_stream(camera, None, predictor, out_dir, choose, bar, report, fps=fps, max_frames=max_frames)
    return report


class _Bar:
    """A rich progress bar on stderr (nothing when disabled or when stderr is not a terminal)."""

    def __init__(self, enabled: bool) -> None:
        self.progress: Any = None
        if enabled:
            from rich.console import Console
            from rich.progress import Progress

            self.progress = Progress(console=Console(stderr=True), transient=True)

    def __enter__(self) -> _Bar:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def task(self, description: str, total: int | None) -> Any:
        return self.progress.add_task(description, total=total) if self.progress is not None else None

    def advance(self, task: Any) -> None:
        if self.progress is not None:
            self.progress.advance(task)


@dataclass
class _BoxChoice:
    """The people of one image or frame: its detections above the score threshold, overlaps suppressed."""

    grouped: Mapping[str, list[Detection]] | None
    boxes_file: Any
    box_threshold: float
    nms_threshold: float
    report: PredictReport
    unmatched: list[str] = field(default_factory=list)  # images or frames without any box in the file

    def __call__(self, keys: Sequence[str], width: int, height: int, where: str, image_id: Any) -> list[Detection]:
        """Detections to run (score order); without a boxes file, the whole image as one person of score 1."""
        if self.grouped is None:
            return [(whole_image_box(width, height).tolist(), 1.0, 1, image_id)]
        detections = next((self.grouped[key] for key in keys if key in self.grouped), [])
        if not detections:
            self.unmatched.append(where)
        self.report.boxes_read += len(detections)
        kept = []
        for j, det in enumerate(detections):
            if not det[1] > self.box_threshold:
                self.report.boxes_low_score += 1
                continue
            problem = box_problem(det[0], width, height)
            if problem is None:
                kept.append(det)
            else:
                self.report.failures.append(f"{where}: box {j} (image_id {det[3]!r}) {problem}; skipped")
        order = suppress_overlaps([d[0] for d in kept], [d[1] for d in kept], self.nms_threshold)
        self.report.boxes_overlapping += len(kept) - len(order)
        return [kept[i] for i in order]

    def boxes(self, detections: Sequence[Detection]) -> list[list[float]] | None:
        """The boxes to crop, or None (no boxes file: the whole image, fitted without padding)."""
        return None if self.grouped is None else [d[0] for d in detections]


@dataclass
class _Pending:
    """One readable image or frame waiting for its batch: pixels, people to run, where it came from."""

    rgb: np.ndarray
    boxes: list[list[float]] | None  # None: the whole image
    detections: list[Detection]
    file_name: str
    stem: str = ""  # output name of an image
    frame: int | None = None  # index of a video frame


class _Batches:
    """Collects images or frames until ``batch_size`` crops are waiting, runs them, hands each result to ``done``."""

    def __init__(self, predictor: Predictor, keep_heatmaps: bool, done: Callable[[_Pending, Poses], None]) -> None:
        self.predictor, self.keep_heatmaps, self.done = predictor, keep_heatmaps, done
        self.pending: list[_Pending] = []

    def add(self, item: _Pending) -> None:
        self.pending.append(item)
        if sum(1 if p.boxes is None else len(p.boxes) for p in self.pending) >= self.predictor.batch_size:
            self.flush()

    def flush(self) -> None:
        rgbs, boxes = [p.rgb for p in self.pending], [p.boxes for p in self.pending]
        poses = self.predictor.predict(rgbs, boxes, keep_heatmaps=self.keep_heatmaps)
        items, self.pending = self.pending, []
        for item, pose in zip(items, poses, strict=True):
            self.done(item, pose)


def _predict_images(
    files: Sequence[Path],
    predictor: Predictor,
    out_dir: Path,
    choose: _BoxChoice,
    heatmaps: bool,
    bar: _Bar,
    report: PredictReport,
) -> list[dict[str, Any]]:
    """Overlays (and montages) of image files, written as each batch finishes; their COCO result entries."""
    from hourglass.inference.visualize import heatmap_montage, write_image

    results: list[dict[str, Any]] = []
    skeleton = predictor.skeleton

    def done(item: _Pending, poses: Poses) -> None:
        results.extend(_results(item, poses))
        if heatmaps and poses.heatmaps is not None and poses.crops is not None:
            for p in range(len(item.detections)):
                montage = heatmap_montage(poses.heatmaps[p], poses.crops[p], skeleton.joint_names)
                report.written.append(write_image(out_dir / f"{item.stem}.person{p}.heatmaps.png", montage))
        overlay = _overlay(item, poses, skeleton, choose.grouped is not None)
        report.written.append(write_image(out_dir / f"{item.stem}.png", overlay))
        report.images += 1
        report.people += len(item.detections)

    batches = _Batches(predictor, heatmaps, done)
    task = bar.task("images", len(files))
    for path, stem in zip(files, _unique_names([f.stem for f in files]), strict=True):
        try:
            rgb = read_image(path)
        except DataError as err:
            report.failures.append(str(err))
        else:
            height, width = rgb.shape[:2]
            detections = choose(image_keys(path), width, height, str(path), _image_id(path))
            batches.add(_Pending(rgb, choose.boxes(detections), detections, str(path), stem=stem))
        bar.advance(task)
    batches.flush()
    return results


def _predict_stream(
    source: Any,
    name: str | None,
    predictor: Predictor,
    out_dir: Path,
    choose: _BoxChoice,
    bar: _Bar,
    report: PredictReport,
    fps: float | None = None,
    max_frames: int | None = None,
) -> None:
    """Overlay video ``out_dir/<name>.mp4`` and ``out_dir/<name>.keypoints.json`` of a video file, a folder of
    frames (a :class:`~pathlib.Path`) or a camera (an index or a capture object); problems go to ``report``.

    Both files are written atomically once the stream has ended; a camera stopped with Ctrl+C keeps the
    frames it has.
    """
    from hourglass.files import atomic_write
    from hourglass.inference.video import camera_source, folder_source, video_source

    try:
        if not isinstance(source, Path):
            stream = camera_source(source, fps, max_frames)
        elif source.is_dir():
            stream = folder_source(source, fps, max_frames)
        else:
            stream = video_source(source, fps, max_frames)
    except DataError as err:
        report.failures.append(str(err))
        return
    live = not isinstance(source, Path)
    name = name or stream.name
    results: list[dict[str, Any]] = []
    broken: list[str] = []

    def write(tmp: str) -> None:
        writer: Any = None

        def done(item: _Pending, poses: Poses) -> None:
            nonlocal writer
            overlay = _overlay(item, poses, predictor.skeleton, choose.grouped is not None)
            if writer is None:
                height, width = overlay.shape[:2]
                writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), stream.fps, (width, height))
                if not writer.isOpened():
                    raise DataError(f"{out_dir / name}.mp4: OpenCV cannot write an mp4v video of {width}x{height}")
            writer.write(cv2.cvtColor(overlay, cv2.COLOR_RGB2BGR))
            results.extend(_results(item, poses))
            report.frames += 1
            report.people += len(item.detections)

        batches = _Batches(predictor, False, done)
        task = bar.task(name, stream.total)
        seen = 0
        try:
            for frame in stream.frames:
                seen += 1
                if frame.rgb is None:
                    broken.append(f"frame {frame.index} ({frame.problem})")
                else:
                    height, width = frame.rgb.shape[:2]
                    where = f"{frame.file_name} frame {frame.index}"
                    detections = choose(frame.keys, width, height, where, frame.index)
                    boxes = choose.boxes(detections)
                    batches.add(_Pending(frame.rgb, boxes, detections, frame.file_name, frame=frame.index))
                bar.advance(task)
        except KeyboardInterrupt:
            if not live:
                raise
            report.notes.append(f"{stream.label}: stopped by Ctrl+C after {seen} frames")
        try:
            batches.flush()
        finally:
            if writer is not None:
                writer.release()
        if writer is None:
            raise DataError(f"{stream.label}: no readable frame")

    try:
        report.written.append(atomic_write(out_dir / f"{name}.mp4", write, suffix=".tmp.mp4"))
    except DataError as err:
        report.failures.append(str(err))
    else:
        text = json.dumps(results)
        path = atomic_write(out_dir / f"{name}.keypoints.json", lambda tmp: Path(tmp).write_text(text))
        report.written.append(path)
        report.videos += 1
    if choose.unmatched:
        shown = _listing([w.rsplit(" ", 1)[-1] for w in choose.unmatched])
        unmatched = f"{len(choose.unmatched)} frames without boxes in {choose.boxes_file}"
        report.notes.append(f"{stream.label}: {unmatched}: {shown}")
        choose.unmatched.clear()
    if broken:
        report.broken_frames += len(broken)
        report.failures.append(f"{stream.label}: {len(broken)} broken frames skipped: {_listing(broken)}")


def _listing(items: Sequence[str], limit: int = 5) -> str:
    """``a, b, c and 4 more``: the first ``limit`` items and how many others."""
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _overlay(item: _Pending, poses: Poses, skeleton: Skeleton, show_boxes: bool) -> np.ndarray:
    """The image with each person's skeleton (and box, when boxes were given)."""
    from hourglass.inference.visualize import draw_boxes, draw_skeleton

    overlay = draw_boxes(item.rgb, poses.boxes) if show_boxes else item.rgb
    for p in range(len(item.detections)):
        overlay = draw_skeleton(overlay, poses.keypoints[p], skeleton, scores=poses.scores[p])
    return overlay


def _results(item: _Pending, poses: Poses) -> list[dict[str, Any]]:
    """COCO result entries of one image or frame (``frame`` added for video frames)."""
    results = []
    for p, (bbox, box_score, category_id, image_id) in enumerate(item.detections):
        extra: dict[str, Any] = {"bbox": [round(float(v), 3) for v in bbox], "file_name": item.file_name}
        if item.frame is not None:
            extra["frame"] = item.frame
        results.append(coco_result(image_id, category_id, poses.keypoints[p], poses.scores[p], box_score, 3, **extra))
    return results
