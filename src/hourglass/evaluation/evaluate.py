"""Evaluation: predict every record of a split, map keypoints back to image pixels, score them.

Scores by dataset kind, all computed by :mod:`hourglass.metrics`:

- records with a head size (MPII, and the synthetic figures written in MPII format): PCKh@0.5 and @0.1
  by the official MPII protocol (:func:`~hourglass.metrics.mpii_pckh_report`), per column;
- COCO-format splits whose skeleton has OKS sigmas: COCO keypoint AP/AR through pycocotools, with the
  ground-truth person boxes as detections (the usual "GT boxes" setting);
- the 14 LSP joints (an LSP ``joints.mat``, or a COCO-format file with LSP's joint names): PCK@0.2 of the torso
  (:func:`~hourglass.metrics.lsp_pck`), LSP's per-part table;
- otherwise PCK@0.2 of the box size (:func:`~hourglass.metrics.keypoint_pck_accuracy`).

Departure from the reference code: HRNet and bearpaw evaluate flip-averaged heatmaps decoded with the
quarter-pixel shift, as here, but HRNet rescores COCO instances by the mean of the joint scores above 0.2;
here an instance's score is the box score times the mean of all its joint scores.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Subset

from hourglass.checkpoint.hub import parse_source
from hourglass.checkpoint.load import load_model
from hourglass.checkpoint.meta import CheckpointMeta
from hourglass.config import Config
from hourglass.data import LSP_14, DataError, HeatmapCodec, flip_test
from hourglass.data.coco import coco_result
from hourglass.data.dataset import KeypointDataset, predict_dataset
from hourglass.data.mpii_files import read_mpii_ground_truth, read_mpii_predictions
from hourglass.device import autocast_context, resolve_device
from hourglass.errors import ConfigError
from hourglass.files import atomic_write
from hourglass.metrics.mpii import Protocol, check_protocol, mpii_pckh_report
from hourglass.models.stacked import last_stack


@dataclass
class EvalResult:
    """Scores of one split.

    Attributes:
        kind: ``"pckh"``, ``"coco"``, ``"lsp"`` or ``"pck"``.
        summary: flat scores, e.g. ``{"pckh@0.5": 91.2, "pckh@0.1": 40.1}`` (percent) or ``{"AP": 0.71, ...}``.
        table: per-column scores (``{"PCKh@0.5": {"Head": ..., ..., "Total": ...}, ...}``).
        keypoints: ``(N, K, 2)`` predictions in image pixels (NaN for records skipped as unreadable).
        scores: ``(N, K)`` heatmap maxima.
        skipped: records whose image could not be read (with ``skip_bad``).
        unscored: people with labelled joints that the metric cannot score (LSP: no labelled left shoulder or
            right hip, so no torso).
    """

    kind: str
    summary: dict[str, float]
    table: dict[str, dict[str, float]] = field(default_factory=dict)
    keypoints: np.ndarray | None = None
    scores: np.ndarray | None = None
    skipped: int = 0
    unscored: int = 0
    json_path: Path | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "summary": self.summary,
            "table": self.table,
            "skipped": self.skipped,
            "unscored": self.unscored,
        }


@torch.no_grad()
def predict_keypoints(
    model: nn.Module,
    dataset: KeypointDataset | Subset,
    codec: HeatmapCodec,
    flip_index: list[int] | tuple[int, ...],
    device: torch.device,
    flip: bool = True,
    batch_size: int = 32,
    num_workers: int = 0,
    channels_last: bool = False,
    amp: str = "none",
) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints ``(N, K, 2)`` in image pixels and scores ``(N, K)`` for every record of ``dataset``.

    The last stack's heatmaps ``(B, K, h, w)`` go through :func:`~hourglass.data.dataset.predict_dataset`
    (decoded by ``codec``, argmax + quarter-pixel shift, to crop pixels and mapped back with the inverse of
    the crop's affine matrix). With ``flip``, the heatmaps of the mirrored crop are flipped back (joints
    swapped, one-pixel shift) and averaged with the plain ones before decoding (Newell et al.; HRNet's
    ``flip_test``). Rows of records that were skipped as unreadable stay NaN.
    """
    model.eval()
    memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def forward(x: torch.Tensor) -> torch.Tensor:
        return last_stack(model(x)).float()

    def heatmaps_of(images: torch.Tensor) -> torch.Tensor:
        images = images.to(device, memory_format=memory_format)
        with autocast_context(device, amp):
            return flip_test(forward, images, flip_index) if flip else forward(images)

    found = predict_dataset(heatmaps_of, dataset, codec, len(flip_index), batch_size, num_workers)
    return found.keypoints, found.scores


def evaluate_model(
    model: nn.Module, dataset: KeypointDataset, cfg: Config, device: torch.device, flip: bool = True
) -> EvalResult:
    """Predict ``dataset`` with ``model`` and score it (see the module docstring).

    A training split's augmentation (random rotation, scale, flip) is switched off for the evaluation:
    predictions are made on the plain crops, as for a validation split.
    """
    if dataset.augmentation is not None:
        dataset = copy.copy(dataset)
        dataset.augmentation = None
    base = dataset
    if cfg.eval.max_samples is not None and cfg.eval.max_samples < len(dataset):
        dataset = Subset(dataset, range(cfg.eval.max_samples))
    was_training = model.training
    keypoints, scores = predict_keypoints(
        model,
        dataset,
        base.codec,
        base.skeleton.flip_index,
        device,
        flip=flip,
        batch_size=cfg.eval.batch_size,
        num_workers=cfg.data.num_workers,
        channels_last=cfg.train.channels_last,
        amp=cfg.train.amp,
    )
    model.train(was_training)
    gt = base.annotations()
    n = len(dataset)
    gt = {k: v[:n] for k, v in gt.items()}
    skipped = int(np.isnan(keypoints).any(axis=(1, 2)).sum())
    result = score(keypoints, scores, gt, base, cfg)
    result.skipped = skipped
    return result


def score(
    keypoints: np.ndarray, scores: np.ndarray, gt: dict[str, Any], dataset: KeypointDataset, cfg: Config
) -> EvalResult:
    """Score predictions ``(N, K, 2)`` against ``dataset.annotations()``-style ground truth ``gt``."""
    from hourglass.metrics import (
        bbox_size,
        coco_keypoint_eval,
        keypoint_pck_accuracy,
        lsp_pck,
        lsp_torso_size,
        mpii_pckh_report,
    )

    skeleton = dataset.skeleton
    head = np.asarray(gt["head_size"], dtype=np.float64)
    visible = np.asarray(gt["visible"]) > 0
    if skeleton.num_joints == 16 and len(head) and (head[visible.any(axis=1)] > 0).all():
        report = mpii_pckh_report(keypoints, gt["keypoints"], visible, head, thr=0.5, protocol="official")
        low = report.pop("Mean@0.1")
        return EvalResult(
            "pckh",
            {"pckh@0.5": report["Total"], "pckh@0.1": low},
            {"PCKh@0.5": report, "PCKh@0.1": {"Total": low}},
            keypoints,
            scores,
        )
    if hasattr(dataset, "coco") and skeleton.sigmas is not None:
        results = coco_results(keypoints, scores, gt, dataset.category["id"])
        stats = coco_keypoint_eval(dataset.coco.dataset, results, skeleton.sigmas, source=dataset.source)
        return EvalResult("coco", stats, {"COCO OKS": stats}, keypoints, scores)
    if skeleton.joint_names == LSP_14.joint_names:
        table = lsp_pck(keypoints, gt["keypoints"], visible, thr=0.2)
        unscored = int((visible.any(axis=1) & ~(lsp_torso_size(gt["keypoints"], visible) > 0)).sum())
        summary = {"pck@0.2": table["Mean"]}
        return EvalResult("lsp", summary, {"PCK@0.2 (torso)": table}, keypoints, scores, unscored=unscored)
    boxes = bbox_size(gt["bbox"])
    if (boxes[visible.any(axis=1)] <= 0).any():
        raise DataError(
            f"{dataset.source}: people without head sizes and without person boxes cannot be scored (PCKh needs "
            "a head size, PCK a box); for MPII set data.val.head_boxes to a gt_valid.mat or valid.h5 listing "
            "the same people in the same order"
        )
    pck = keypoint_pck_accuracy(keypoints, gt["keypoints"], visible, 0.2, boxes)
    per_joint = {name: float(100 * v) for name, v in zip(skeleton.joint_names, pck.per_joint, strict=True)}
    summary = {"pck@0.2": 100 * pck.average}
    return EvalResult("pck", summary, {"PCK@0.2 (box)": {**per_joint, "Total": summary["pck@0.2"]}}, keypoints, scores)


def coco_results(
    keypoints: np.ndarray, scores: np.ndarray, gt: dict[str, Any], category_id: int = 1
) -> list[dict[str, Any]]:
    """COCO result entries (``image_id``, ``category_id``, ``keypoints`` ``[x, y, s] * K``, ``score``).

    Coordinates are written as the COCO loader reads them (as written in the file, no offset).
    """
    return [
        coco_result(gt["image_id"][i], category_id, kp, sc, box_score=gt["score"][i])
        for i, (kp, sc) in enumerate(zip(keypoints, scores, strict=True))
        if np.isfinite(kp).all()
    ]


def evaluate(
    cfg: Config,
    checkpoint: str | Path,
    flip: bool = True,
    out_json: str | Path | None = None,
) -> EvalResult:
    """``hourglass eval``: load ``checkpoint`` (refused if its joint count or input size differ from the
    config's dataset), score the ``data.val`` split, write the scores as JSON (``out_json``, default
    ``<checkpoint folder>/eval.json``; for published weights named or given by URL, ``eval-<name>.json`` in the
    current folder), atomically."""
    from hourglass.data.build import build_dataset, make_codec

    device = resolve_device(cfg.train.device)
    dataset = build_dataset(cfg, "val")
    model, meta = load_model(checkpoint, map_location=device, expect={"num_joints": dataset.skeleton.num_joints})
    wanted = CheckpointMeta(cfg.model.name, codec=make_codec(cfg))
    meta.check_same_data(checkpoint, wanted, ("input_size", "heatmap_size"), against="the config")
    if cfg.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    result = evaluate_model(model, dataset, cfg, device, flip=flip)
    if out_json is None:
        local = not isinstance(checkpoint, str) or Path(checkpoint).exists()
        out_json = (
            Path(checkpoint).with_name("eval.json") if local else Path(f"eval-{parse_source(checkpoint).key}.json")
        )
    out_json = Path(out_json)
    record = {
        "checkpoint": str(checkpoint),
        "annotations": cfg.data.val.annotations,
        "flip": flip,
        "records": len(dataset) if cfg.eval.max_samples is None else min(len(dataset), cfg.eval.max_samples),
        **result.to_json(),
    }
    atomic_write(out_json, lambda tmp: Path(tmp).write_text(json.dumps(record, indent=2)))
    result.json_path = out_json
    return result


def evaluate_mpii_files(
    preds_path: str | os.PathLike[str],
    gt_path: str | os.PathLike[str],
    protocol: Protocol = "official",
    threshold: float = 0.5,
) -> dict[str, float]:
    """PCKh of a predictions file: ``{"Head", ..., "Ankle", "Total", "Mean@0.1"}`` in percent."""
    check_protocol(protocol)
    if not 0 < threshold <= 10:
        raise ConfigError(f"threshold must be a fraction of the head size in (0, 10], got {threshold}")
    gt = read_mpii_ground_truth(gt_path)
    preds = read_mpii_predictions(preds_path)
    if preds.shape[0] != gt.keypoints.shape[0]:
        raise DataError(
            f"{preds_path}: {preds.shape[0]} people predicted (shape {preds.shape}) but {gt.path} has "
            f"{gt.keypoints.shape[0]}; predictions must follow the ground truth's order"
        )
    return mpii_pckh_report(preds, gt.keypoints, gt.visible, gt.head_size, threshold, protocol)
