"""From a config's ``data`` section to the codec, augmentation and datasets of the data package."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hourglass.config import Config
from hourglass.data import (
    Augmentation,
    COCOKeypoints,
    DataError,
    HeatmapCodec,
    KeypointDataset,
    LSPDataset,
    MPIIDataset,
)
from hourglass.errors import ConfigError


def make_codec(cfg: Config) -> HeatmapCodec:
    """The heatmap codec of ``cfg.data`` (input size, heatmap size, sigma), shared by training and evaluation."""
    return HeatmapCodec(cfg.data.input_size, cfg.data.heatmap_size, sigma=cfg.data.sigma)


def make_augmentation(cfg: Config) -> Augmentation:
    """Training augmentation of ``cfg.data.augment`` (rotation, scale range, flip, colour jitter)."""
    a = cfg.data.augment
    return Augmentation(rotation=a.rotation, scale=a.scale, flip_prob=0.5 if a.flip else 0.0, colour=a.color_jitter)


def build_dataset(cfg: Config, split: str) -> KeypointDataset:
    """The ``train`` (augmented, seeded by ``train.seed``) or ``val`` (plain crops) split of ``cfg.data``.

    Raises:
        ConfigError: the split is not configured.
        DataError: missing annotation file or image folder, or no records (an empty dataset); the
            message names the config key and the path.
    """
    sp = getattr(cfg.data, split)
    if not sp.annotations:
        raise ConfigError(f"data.{split}.annotations is not set; point it at the {split} annotation file")
    ann = Path(sp.annotations)
    images = Path(sp.images) if sp.images else ann.parent
    if not ann.is_file():
        what = "folder" if not ann.parent.is_dir() else "file"
        missing = ann.parent if what == "folder" else ann
        raise DataError(
            f"data.{split}.annotations: {what} {missing} does not exist (looking for {ann}{_relative_to_cwd(ann)})"
            f"; {_how_to_make(cfg, split, ann, images)}"
        )
    if not images.is_dir():
        raise DataError(
            f"data.{split}.images: folder {images} does not exist{_relative_to_cwd(images)}; "
            f"{_how_to_make(cfg, split, ann, images)}"
        )
    codec = make_codec(cfg)
    augmentation = make_augmentation(cfg) if split == "train" else None
    dataset = _load(cfg, split, ann, images, codec, augmentation)
    if len(dataset) == 0:
        raise DataError(f"data.{split}: {ann} holds no usable records (an empty dataset)")
    if cfg.data.format == "mpii":
        if sp.head_boxes:
            set_head_sizes(dataset, Path(sp.head_boxes), f"data.{split}.head_boxes")
        elif split == "val":
            check_head_sizes(dataset, split)
    return dataset


SYNTH_SPLITS = {"train": (4000, 1), "val": (500, 2)}
"""Figures and seed of each split as ``hourglass demo`` writes them (different seeds: disjoint figures)."""


def _relative_to_cwd(path: Path) -> str:
    """``", relative to /the/cwd"`` for a relative ``path`` (a recipe's paths are read from the working folder)."""
    return "" if path.is_absolute() else f", relative to {Path.cwd()}"


def _how_to_make(cfg: Config, split: str, ann: Path, images: Path) -> str:
    """What makes a missing split: the exact ``hourglass synth`` command where the paths have its layout
    (``annotations.json`` inside the image folder), else where MPII and COCO are described."""
    if ann.name == "annotations.json" and ann.parent == images:
        num, seed = SYNTH_SPLITS.get(split, SYNTH_SPLITS["train"])
        return (
            f"synthetic figures in this layout are made by `hourglass synth --out {images} --num {num} "
            f"--format {cfg.data.format} --seed {seed}` (run from the folder the paths are relative to)"
        )
    return "docs/QUICKSTART.md says where each recipe's data comes from; or point the key at your copy with --set"


def set_head_sizes(dataset: KeypointDataset, path: Path, setting: str) -> None:
    """Head sizes of ``dataset``'s people from a ``gt_valid.mat`` (or ``valid.h5``) listing them in the same order.

    Raises:
        DataError: the file is missing or unreadable, holds another number of people, or a person's labelled
            joints lie more than 2 px from the file's (a different order or split); the message names the
            setting, both files and the person.
    """
    from hourglass.data.mpii_files import read_mpii_ground_truth

    try:
        gt = read_mpii_ground_truth(path)
    except (OSError, ValueError) as err:
        raise DataError(f"{setting}: {err}") from None
    n = len(dataset)
    if gt.keypoints.shape[0] != n:
        raise DataError(
            f"{setting}: {path} holds {gt.keypoints.shape[0]} people but {dataset.source} has {n}; "
            "it must list the same people in the same order"
        )
    for i, rec in enumerate(dataset.records):
        both = (rec.visible > 0) & gt.visible[i]
        gap = np.linalg.norm(rec.keypoints[both] + 1 - gt.keypoints[i][both], axis=-1)  # file is 1-based
        if gap.size and gap.max() > 2.0:
            raise DataError(
                f"{setting}: person {i} of {path} is not record {i} of {dataset.source} (labelled joints "
                f"{gap.max():.1f} px apart, expected the same people in the same order)"
            )
        rec.head_size = float(gt.head_size[i])


def check_head_sizes(dataset: KeypointDataset, split: str) -> None:
    """Refuse an MPII split whose labelled people lack head sizes (PCKh needs them), naming the setting."""
    heads = np.array([r.head_size for r in dataset.records])
    labelled = np.array([r.visible.any() for r in dataset.records])
    missing = int((labelled & (heads <= 0)).sum())
    if missing:
        raise DataError(
            f"data.{split}.annotations: {dataset.source} has no head box for {missing} of {int(labelled.sum())} "
            f"people, and PCKh needs head sizes (HRNet's MPII JSON carries none; HRNet reads them from "
            f"gt_valid.mat): set data.{split}.head_boxes to a gt_valid.mat or valid.h5 listing the same people "
            "in the same order"
        )


def _load(
    cfg: Config, split: str, ann: Path, images: Path, codec: HeatmapCodec, augmentation: Augmentation | None
) -> KeypointDataset:
    common = {"image_root": images, "codec": codec, "augmentation": augmentation, "seed": cfg.train.seed}
    if cfg.data.format == "mpii":
        return MPIIDataset(ann, skip_bad=cfg.data.skip_bad, **common)
    if cfg.data.format == "lsp":
        return _lsp(cfg, split, ann, common)
    detections = getattr(cfg.data, split).detections
    if detections and not Path(detections).is_file():
        raise DataError(f"data.{split}.detections: file {detections} does not exist")
    return COCOKeypoints(ann, detections=detections or None, skip_bad=cfg.data.skip_bad, **common)


def _lsp(cfg: Config, split: str, ann: Path, common: dict[str, Any]) -> LSPDataset:
    """An LSP split: ``train`` without the last ``data.holdout`` records; ``val`` of the same file, exactly those
    records (all of it when nothing is held out); ``val`` of another file, all of it."""
    train_ann = cfg.data.train.annotations
    same_file = bool(train_ann) and Path(train_ann).resolve() == ann.resolve()
    holdout = cfg.data.holdout if split == "train" or same_file else 0
    held_out = split == "val" and holdout > 0
    return LSPDataset(ann, holdout=holdout, held_out=held_out, skip_bad=cfg.data.skip_bad, **common)
