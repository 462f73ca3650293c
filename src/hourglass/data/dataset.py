"""The top-down keypoint dataset: annotation records in, (image, heatmaps, weights, meta) samples out.

Every loader (MPII JSON or .h5, COCO, synthetic figures) produces a list of :class:`Record` and hands it
to :class:`KeypointDataset`, so all of them yield the same sample dict::

    {"image": (3, H, W) float32 RGB in [0, 1],  "heatmaps": (K, h, w) float32,  "weights": (K,) float32,
     "meta": {"index", "image_file", "image_id", "center" (2,), "scale" (2,), "rotation", "flipped",
              "keypoints" (K, 2) image pixels, "visible" (K,), "occluded" (K,), "head_size", "bbox" (4,),
              "score"}}

``image``, ``heatmaps`` and ``weights`` are torch tensors; meta values are numpy arrays, numbers or strings.
``center``/``scale``/``rotation`` in meta are the ones used for the crop (after augmentation), so
``get_affine_matrix(center, scale, rotation, input_size, inverse=True)`` maps crop pixels back to the image
(for a flipped sample, flip the prediction back first).

Randomness: the augmentation of sample ``i`` is drawn from ``np.random.default_rng((seed, epoch, i))``,
so it depends neither on the worker that loads it nor on the order; call :meth:`KeypointDataset.set_epoch`
each epoch for fresh draws.
"""

from __future__ import annotations

import os
import random
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from hourglass.errors import DataError, InputError

from .codec import HeatmapCodec
from .images import read_image, to_network_input
from .skeletons import Skeleton
from .transforms import (
    Augmentation,
    AugmentParams,
    colour_jitter,
    crop_to_image_matrices,
    get_affine_matrix,
    mirror_matrix,
    transform_points,
    warp_image,
)

_NO_AUGMENT = AugmentParams()


@dataclass
class Record:
    """One person: where to crop and the ground truth, in original-image pixels (0-based, pixel centres at integers).

    Attributes:
        image_file: path relative to the dataset's image root (or absolute).
        center: (2,) crop centre (x, y).
        scale: (2,) crop box size in units of 200 px (HRNet convention).
        keypoints: (K, 2) joint positions; unlabelled joints hold 0.
        visible: (K,) uint8, 1 where the joint is labelled.
        occluded: (K,) uint8, 1 where labelled but marked occluded (0 where the format does not say).
        head_size: MPII head normalisation (0.6 x head-box diagonal), 0 when unknown.
        bbox: (4,) person box (x, y, w, h), zeros when unknown.
        score: detection score (1 for ground-truth boxes).
        image_id: the image's id in the annotation file (COCO id, or MPII's image index).
        image_size: ``(H, W)`` the annotation file records for the image (COCO), or ``None``; the reader
            checks it and picks the EXIF orientation that fits (:func:`hourglass.data.images.read_image`).
    """

    image_file: str
    center: np.ndarray
    scale: np.ndarray
    keypoints: np.ndarray
    visible: np.ndarray
    occluded: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint8))
    head_size: float = 0.0
    bbox: np.ndarray = field(default_factory=lambda: np.zeros(4))
    score: float = 1.0
    image_id: int | str = -1
    image_size: tuple[int, int] | None = None


def check_record(rec: Record, num_joints: int, where: str) -> Record:
    """Validate and normalise a record's arrays; ``where`` names the file and record in errors.

    Raises :class:`DataError` for a wrong joint count, non-finite labelled coordinates, a non-finite
    center or a box of zero size.
    """
    kp = np.asarray(rec.keypoints, dtype=np.float64)
    vis = np.asarray(rec.visible).reshape(-1)
    if kp.shape != (num_joints, 2):
        raise DataError(f"{where}: keypoints have shape {kp.shape}, expected ({num_joints}, 2)")
    if vis.shape != (num_joints,):
        raise DataError(f"{where}: visibility has {vis.shape[0]} entries, expected {num_joints}")
    vis = (vis > 0).astype(np.uint8)
    if not np.isfinite(kp[vis > 0]).all():
        raise DataError(f"{where}: labelled keypoints contain NaN or infinite coordinates")
    kp = np.where(vis[:, None] > 0, kp, 0.0)
    occ = np.asarray(rec.occluded).reshape(-1)
    occ = np.zeros(num_joints, np.uint8) if occ.size == 0 else ((occ > 0) & (vis > 0)).astype(np.uint8)
    if occ.shape != (num_joints,):
        raise DataError(f"{where}: occlusion flags have {occ.shape[0]} entries, expected {num_joints}")
    center = np.asarray(rec.center, dtype=np.float64).reshape(-1)
    scale = np.broadcast_to(np.asarray(rec.scale, dtype=np.float64).reshape(-1), (2,)).copy()
    if center.shape != (2,) or not np.isfinite(center).all():
        raise DataError(f"{where}: center {center.tolist()} is not a finite (x, y)")
    if not (np.isfinite(scale).all() and (scale > 0).all()):
        raise DataError(f"{where}: box of zero size (scale {scale.tolist()}, expected > 0)")
    head = float(rec.head_size)
    if not np.isfinite(head) or head < 0:
        raise DataError(f"{where}: head size {head} is not a finite number >= 0")
    bbox = np.asarray(rec.bbox, dtype=np.float64).reshape(4)
    size = None if rec.image_size is None else (int(rec.image_size[0]), int(rec.image_size[1]))
    return Record(str(rec.image_file), center, scale, kp, vis, occ, head, bbox, float(rec.score), rec.image_id, size)


class KeypointDataset(Dataset):
    """Top-down samples from annotation records: crop, augment, encode.

    Args:
        records: the people, one :class:`Record` each (checked with :func:`check_record`).
        skeleton: joint metadata; its ``flip_index`` swaps joints on flips.
        codec: the :class:`HeatmapCodec` that sets input size, heatmap size and sigma.
        image_root: folder that ``Record.image_file`` is relative to.
        augmentation: training augmentation, or ``None`` for evaluation (plain crop).
        seed: base seed of the augmentation draws.
        skip_bad: if true, a record that fails :func:`check_record` is dropped with a warning, and a
            missing, unreadable or wrongly sized image is skipped with a warning (the next readable
            sample is returned instead and :attr:`bad_count` grows; per worker process when loaded by
            several workers); if false both raise :class:`DataError` naming the file and the record.
        source: name of the annotation file, used in error messages.
    """

    def __init__(
        self,
        records: Sequence[Record],
        skeleton: Skeleton,
        codec: HeatmapCodec,
        image_root: str | os.PathLike[str] | None = None,
        augmentation: Augmentation | None = None,
        seed: int = 0,
        skip_bad: bool = False,
        source: str = "<records>",
    ) -> None:
        self.skeleton = skeleton
        self.codec = codec
        self.source = source
        self.records = []
        for i, r in enumerate(records):
            try:
                self.records.append(check_record(r, skeleton.num_joints, f"{source}: record {i}"))
            except DataError as err:
                if not skip_bad:
                    raise
                warnings.warn(f"skipping: {err}", stacklevel=2)
        self.image_root = Path(image_root) if image_root is not None else None
        self.augmentation = augmentation
        self.seed = int(seed)
        self.epoch = 0
        self.skip_bad = skip_bad
        self.bad_count = 0
        self.bad_indices: set[int] = set()

    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draws of ``epoch``."""
        self.epoch = int(epoch)

    def image_path(self, index: int) -> Path:
        f = Path(self.records[index].image_file)
        return f if self.image_root is None or f.is_absolute() else self.image_root / f

    def read_image(self, index: int) -> np.ndarray:
        """The (h, w, 3) uint8 RGB image of record ``index`` (:func:`hourglass.data.images.read_image`)."""
        rec = self.records[index]
        return read_image(self.image_path(index), rec.image_size, f"{self.source}: record {index}")

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"{self.source}: index {index} out of range for {len(self)} records")
        index %= len(self)
        for attempt in range(len(self)):
            i = (index + attempt) % len(self)
            try:
                image = self.read_image(i)
            except DataError as err:
                if not self.skip_bad:
                    raise
                if i not in self.bad_indices:
                    self.bad_indices.add(i)
                    self.bad_count += 1
                    warnings.warn(f"skipping: {err} (skipped so far: {self.bad_count})", stacklevel=2)
                continue
            return self.make_sample(i, image)
        raise DataError(f"{self.source}: no readable image among {len(self)} records")

    def augment_params(self, index: int) -> AugmentParams:
        """The augmentation drawn for sample ``index`` in the current epoch (identity without augmentation)."""
        if self.augmentation is None:
            return _NO_AUGMENT
        return self.augmentation.sample(np.random.default_rng((self.seed, self.epoch, index)))

    def make_sample(self, index: int, image: np.ndarray) -> dict[str, Any]:
        """Crop, augment and encode record ``index`` given its RGB image (h, w, 3) uint8."""
        rec = self.records[index]
        p = self.augment_params(index)
        H, W = self.codec.input_size
        scale = rec.scale * p.scale
        matrix = get_affine_matrix(rec.center, scale, p.rotation, (H, W))
        if p.flip:
            matrix = mirror_matrix(matrix, W)
        keypoints = transform_points(rec.keypoints, matrix)
        visible = rec.visible
        if p.flip:
            flip = list(self.skeleton.flip_index)
            keypoints, visible = keypoints[flip], visible[flip]
        crop = warp_image(image, matrix, (H, W))
        if p != _NO_AUGMENT:
            crop = colour_jitter(crop, p)
        chw = to_network_input(crop)
        heatmaps, weights = self.codec.encode(keypoints, visible)
        return {
            "image": torch.from_numpy(chw),
            "heatmaps": torch.from_numpy(heatmaps),
            "weights": torch.from_numpy(weights),
            "meta": {
                "index": index,
                "image_file": str(rec.image_file),
                "image_id": rec.image_id,
                "center": rec.center.copy(),
                "scale": scale,
                "rotation": p.rotation,
                "flipped": p.flip,
                "keypoints": rec.keypoints.copy(),
                "visible": rec.visible.copy(),
                "occluded": rec.occluded.copy(),
                "head_size": rec.head_size,
                "bbox": rec.bbox.copy(),
                "score": rec.score,
            },
        }

    def annotations(self) -> dict[str, Any]:
        """All records as stacked arrays, without reading images (for evaluation).

        Returns:
            ``keypoints`` (N, K, 2), ``visible`` (N, K), ``occluded`` (N, K), ``head_size`` (N,),
            ``center`` (N, 2), ``scale`` (N, 2), ``bbox`` (N, 4), ``score`` (N,), and lists ``image_file``,
            ``image_id``.
        """
        r = self.records
        k = self.skeleton.num_joints
        return {
            "keypoints": np.stack([x.keypoints for x in r]) if r else np.zeros((0, k, 2)),
            "visible": np.stack([x.visible for x in r]) if r else np.zeros((0, k), np.uint8),
            "occluded": np.stack([x.occluded for x in r]) if r else np.zeros((0, k), np.uint8),
            "head_size": np.array([x.head_size for x in r], dtype=np.float64),
            "center": np.stack([x.center for x in r]) if r else np.zeros((0, 2)),
            "scale": np.stack([x.scale for x in r]) if r else np.zeros((0, 2)),
            "bbox": np.stack([x.bbox for x in r]) if r else np.zeros((0, 4)),
            "score": np.array([x.score for x in r], dtype=np.float64),
            "image_file": [x.image_file for x in r],
            "image_id": [x.image_id for x in r],
        }


def collate(samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Batch samples: tensors and arrays are stacked (tensors to tensors, arrays to arrays), numbers
    become arrays, strings and other objects stay lists; nested dicts (``meta``) are collated key by key.
    """
    if not samples:
        raise DataError("collate: empty batch")
    first = samples[0]
    out: dict[str, Any] = {}
    for key, value in first.items():
        column = [s[key] for s in samples]
        if isinstance(value, Mapping):
            out[key] = collate(column)
        elif isinstance(value, torch.Tensor):
            out[key] = torch.stack(column)
        elif isinstance(value, np.ndarray):
            out[key] = np.stack(column)
        elif isinstance(value, (bool, int, float, np.number, np.bool_)) and all(
            isinstance(v, (bool, int, float, np.number, np.bool_)) for v in column
        ):
            out[key] = np.asarray(column)
        else:
            out[key] = list(column)
    return out


@dataclass(frozen=True)
class DatasetPredictions:
    """Keypoints predicted for every record of a dataset, in its order (rows of skipped records stay NaN).

    Attributes:
        keypoints: ``(N, K, 2)`` image pixels.
        scores: ``(N, K)`` heatmap maxima (0 for skipped records).
        crop_keypoints: ``(N, K, 2)`` the crop pixels they came from.
    """

    keypoints: np.ndarray
    scores: np.ndarray
    crop_keypoints: np.ndarray


HeatmapsOf = Callable[[torch.Tensor], "torch.Tensor | np.ndarray"]
"""``images (B, C, H, W)`` float32 CPU tensor -> heatmaps ``(B, K, h, w)`` (tensor or array) of the last stack."""


def predict_dataset(
    heatmaps_of: HeatmapsOf,
    dataset: KeypointDataset | Subset,
    codec: HeatmapCodec,
    num_joints: int,
    batch_size: int = 32,
    num_workers: int = 0,
) -> DatasetPredictions:
    """The one loop "dataset -> heatmaps -> crop matrices -> image coordinates" (evaluation and the runtimes'
    accuracy check): batches of ``dataset`` in order, their heatmaps by ``heatmaps_of``, decoded by ``codec``
    (argmax + quarter-pixel shift) to crop pixels and mapped back by the inverse of each crop's affine matrix.

    Args:
        heatmaps_of: :data:`HeatmapsOf` (a model's forward, with flip test or not; a runtime).
        dataset: a :class:`KeypointDataset` or a :class:`~torch.utils.data.Subset` of one.
        codec: the dataset's codec (crops of ``codec.input_size``).
        num_joints: ``K``; heatmaps with another count are refused.

    Raises:
        InputError: heatmaps of another shape than ``(B, num_joints, h, w)`` for a batch of ``B`` crops.
    """
    n = len(dataset)
    keypoints = np.full((n, num_joints, 2), np.nan)
    crop_keypoints = np.full((n, num_joints, 2), np.nan)
    scores = np.zeros((n, num_joints))
    rows_of = _rows(dataset)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=collate)
    for batch in loader:
        images = batch["image"]
        heatmaps = heatmaps_of(images)
        if tuple(heatmaps.shape[:2]) != (len(images), num_joints) or len(heatmaps.shape) != 4:
            raise InputError(
                f"{getattr(dataset, 'source', 'dataset')}: heatmaps of shape {tuple(heatmaps.shape)} for "
                f"{len(images)} crops; expected ({len(images)}, {num_joints}, h, w), one map per joint"
            )
        meta = batch["meta"]
        rows = [rows_of[int(i)] for i in meta["index"]]
        matrices = crop_to_image_matrices(meta, codec.input_size)
        keypoints[rows], scores[rows], crop_keypoints[rows] = codec.decode_to_image(heatmaps, matrices)
    return DatasetPredictions(keypoints, scores, crop_keypoints)


def _rows(dataset: Dataset) -> dict[int, int]:
    """Map a sample's ``meta["index"]`` (record index) to its row in the output."""
    if isinstance(dataset, Subset):
        return {int(i): row for row, i in enumerate(dataset.indices)}
    return {i: i for i in range(len(dataset))}


def worker_init_fn(worker_id: int) -> None:
    """``DataLoader(worker_init_fn=...)``: distinct seeds for ``random`` and ``numpy`` in each worker, from
    the per-worker torch seed the loader draws (forked workers otherwise share the parent's numpy state).

    The datasets here do not need it for their augmentation (that is seeded per sample); it protects any
    other code that uses the global generators. It deliberately leaves OpenCV alone: calling
    ``cv2.setNumThreads`` in a forked worker deadlocked here (OpenCV 4, Linux) once the parent had used
    OpenCV's thread pool.
    """
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - seeding the legacy global generator is the point
    del worker_id
