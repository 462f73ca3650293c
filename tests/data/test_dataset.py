"""KeypointDataset: the sample dict, flips, augmentation seeding, collate, bad input and bad images."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from hourglass.data import (
    MPII_16,
    Augmentation,
    DataError,
    HeatmapCodec,
    KeypointDataset,
    Record,
    collate,
    flip_keypoints,
    get_affine_matrix,
    transform_points,
    worker_init_fn,
)
from hourglass.synthetic import SyntheticFigures

CODEC = HeatmapCodec((64, 64), (16, 16), sigma=1.0)


def make_record(image_file: str = "a.png", **kw) -> Record:
    rng = np.random.default_rng(0)
    base = dict(
        image_file=image_file,
        center=np.array([40.0, 30.0]),
        scale=np.array([0.3, 0.3]),
        keypoints=rng.uniform(20, 50, (16, 2)),
        visible=np.ones(16),
        head_size=7.0,
    )
    base.update(kw)
    return Record(**base)


@pytest.fixture()
def image_dir(tmp_path: Path) -> Path:
    img = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), img)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    return tmp_path


def test_sample_layout(image_dir: Path) -> None:
    ds = KeypointDataset([make_record()], MPII_16, CODEC, image_dir)
    s = ds[0]
    assert s["image"].shape == (3, 64, 64) and s["image"].dtype == torch.float32
    assert 0 <= s["image"].min() and s["image"].max() <= 1
    assert s["heatmaps"].shape == (16, 16, 16) and s["weights"].shape == (16,)
    meta = s["meta"]
    assert set(meta) >= {"index", "image_file", "image_id", "center", "scale", "rotation", "flipped", "keypoints",
                         "visible", "occluded", "head_size", "bbox", "score"}  # fmt: skip
    assert meta["keypoints"].shape == (16, 2) and meta["head_size"] == 7.0 and meta["flipped"] is False
    # the crop's heatmaps decode to the image keypoints through the inverse crop matrix
    kp, _ = CODEC.decode(s["heatmaps"].numpy())
    inv = get_affine_matrix(meta["center"], meta["scale"], meta["rotation"], (64, 64), inverse=True)
    assert np.abs(transform_points(kp, inv) - meta["keypoints"]).max() < 0.25 * 4 * 200 * 0.3 / 64 + 1e-6


def test_keypoints_outside_the_crop_get_weight_zero(image_dir: Path) -> None:
    kp = np.full((16, 2), 40.0)
    kp[3] = [500.0, 30.0]  # far right of the crop
    kp[4] = [40.0, -200.0]
    s = KeypointDataset([make_record(keypoints=kp)], MPII_16, CODEC, image_dir)[0]
    assert s["weights"][3] == 0 and s["weights"][4] == 0 and s["weights"].sum() == 14


def test_flip_mirrors_image_and_swaps_joints() -> None:
    plain = SyntheticFigures(4, seed=3, codec=CODEC)
    flips = SyntheticFigures(4, seed=3, codec=CODEC,
                             augmentation=Augmentation(rotation=0, scale=(1, 1), flip_prob=1, colour=0))  # fmt: skip
    a, b = plain[2], flips[2]
    assert b["meta"]["flipped"] is True
    torch.testing.assert_close(b["image"], a["image"].flip(-1), atol=1 / 255, rtol=0)
    # targets of the mirrored crop decode to the mirrored keypoints (each within the quarter-pixel bound)
    kp_a, _ = CODEC.decode(a["heatmaps"].numpy())
    kp_b, _ = CODEC.decode(b["heatmaps"].numpy())
    w = a["weights"].numpy() > 0
    assert np.abs(flip_keypoints(kp_a, MPII_16.flip_index, 64) - kp_b)[w].max() <= 2 * 0.25 * 4 + 1e-4
    np.testing.assert_array_equal(b["weights"].numpy(), a["weights"].numpy()[list(MPII_16.flip_index)])


def test_augmentation_is_seeded_per_sample_and_epoch() -> None:
    aug = Augmentation()
    ds = SyntheticFigures(3, seed=0, codec=CODEC, augmentation=aug, aug_seed=5)
    first = ds[1]
    torch.testing.assert_close(ds[1]["image"], first["image"])
    ds.set_epoch(1)
    assert not torch.equal(ds[1]["image"], first["image"])
    other = SyntheticFigures(3, seed=0, codec=CODEC, augmentation=aug, aug_seed=6)
    assert other.augment_params(1) != SyntheticFigures(3, 0, CODEC, augmentation=aug, aug_seed=5).augment_params(1)


def test_collate_and_workers_give_the_same_batch() -> None:
    ds = SyntheticFigures(4, seed=1, codec=CODEC, augmentation=Augmentation())
    serial = collate([ds[i] for i in range(4)])
    assert serial["image"].shape == (4, 3, 64, 64) and isinstance(serial["meta"]["image_file"], list)
    assert serial["meta"]["keypoints"].shape == (4, 16, 2) and serial["meta"]["flipped"].dtype == bool
    loader = DataLoader(ds, batch_size=4, num_workers=2, collate_fn=collate, worker_init_fn=worker_init_fn, timeout=120)
    parallel = next(iter(loader))
    torch.testing.assert_close(parallel["image"], serial["image"])
    np.testing.assert_array_equal(parallel["meta"]["center"], serial["meta"]["center"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"keypoints": np.zeros((15, 2))}, r"record 0: keypoints have shape \(15, 2\), expected \(16, 2\)"),
        ({"visible": np.ones(17)}, "record 0: visibility has 17 entries, expected 16"),
        ({"keypoints": np.full((16, 2), np.nan)}, "record 0: labelled keypoints contain NaN"),
        ({"scale": np.array([0.0, 0.0])}, "record 0: box of zero size"),
        ({"center": np.array([np.nan, 1.0])}, "record 0: center"),
    ],
)
def test_bad_records_are_named(change: dict, message: str) -> None:
    with pytest.raises(DataError, match=message):
        KeypointDataset([make_record(**change)], MPII_16, CODEC, source="ann.json")


def test_unlabelled_nan_is_fine() -> None:
    kp = np.full((16, 2), 30.0)
    kp[0] = np.nan
    vis = np.ones(16)
    vis[0] = 0
    ds = KeypointDataset([make_record(keypoints=kp, visible=vis)], MPII_16, CODEC)
    assert ds.records[0].keypoints[0].tolist() == [0.0, 0.0]


def test_missing_or_corrupt_image_is_named_or_skipped(image_dir: Path) -> None:
    records = [make_record("a.png"), make_record("missing.png"), make_record("broken.png")]
    strict = KeypointDataset(records, MPII_16, CODEC, image_dir, source="ann.json")
    with pytest.raises(DataError, match=r"ann.json: record 1: image .*missing.png is missing"):
        strict[1]
    with pytest.raises(DataError, match=r"record 2: image .*broken.png is unreadable"):
        strict[2]
    lenient = KeypointDataset(records, MPII_16, CODEC, image_dir, skip_bad=True)
    with pytest.warns(UserWarning) as caught:
        s = lenient[1]
    messages = [str(w.message) for w in caught]
    assert "missing.png is missing" in messages[0] and "broken.png is unreadable" in messages[1]
    assert s["meta"]["index"] == 0  # wrapped round to the next readable record
    assert lenient.bad_count == 2 and lenient.bad_indices == {1, 2}
    assert len(lenient.annotations()["keypoints"]) == 3  # the annotations themselves are kept
