"""From a config's ``data`` section to the codec, augmentation and datasets of the data package."""

from __future__ import annotations

from pathlib import Path

from hourglass.config import Config
from hourglass.data import (
    Augmentation,
    COCOKeypoints,
    DataError,
    HeatmapCodec,
    KeypointDataset,
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
        raise DataError(f"data.{split}.annotations: {what} {missing} does not exist (looking for {ann})")
    if not images.is_dir():
        raise DataError(f"data.{split}.images: folder {images} does not exist")
    codec = make_codec(cfg)
    augmentation = make_augmentation(cfg) if split == "train" else None
    dataset = _load(cfg, split, ann, images, codec, augmentation)
    if len(dataset) == 0:
        raise DataError(f"data.{split}: {ann} holds no usable records (an empty dataset)")
    return dataset


def _load(
    cfg: Config, split: str, ann: Path, images: Path, codec: HeatmapCodec, augmentation: Augmentation | None
) -> KeypointDataset:
    common = {"image_root": images, "codec": codec, "augmentation": augmentation, "seed": cfg.train.seed}
    if cfg.data.format == "mpii":
        return MPIIDataset(ann, skip_bad=cfg.data.skip_bad, **common)
    detections = getattr(cfg.data, split).detections
    if detections and not Path(detections).is_file():
        raise DataError(f"data.{split}.detections: file {detections} does not exist")
    return COCOKeypoints(ann, detections=detections or None, skip_bad=cfg.data.skip_bad, **common)
