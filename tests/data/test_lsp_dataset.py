"""LSP ``joints.mat`` files: both releases' layouts written with scipy beside real JPEGs, MATLAB's 1-based pixels,
unlabelled joints, the held-out split of ``data.holdout``, bad files; and the real LSPet file of ../shared/data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from hourglass.config import load_config
from hourglass.data import LSP_14, DataError, HeatmapCodec, LSPDataset, read_lsp_joints
from hourglass.data.build import build_dataset
from hourglass.errors import ConfigError
from hourglass.metrics import lsp_torso_size
from lsp_files import people, write_lsp

CODEC = HeatmapCodec((128, 128), (32, 32), 1.5)


def test_lspet_layout_is_read_into_0_based_pixels_and_its_box(tmp_path: Path) -> None:
    xy = people(3)
    xy[1, :, 0] = np.linspace(11, 51, 14)  # labelled x 11..51, y 21..101 (1-based): the box is 40 x 80 from (10, 20)
    xy[1, :, 1] = np.linspace(21, 101, 14)
    xy[1, 4] = (-500, 900)  # unlabelled: its coordinates mean nothing and must not move the box
    flags = np.ones((3, 14))
    flags[1, 4] = 0
    ann = write_lsp(tmp_path / "lspet", xy, flags)
    joints = read_lsp_joints(ann)
    assert joints.layout == "lspet" and len(joints) == 3
    np.testing.assert_allclose(joints.keypoints[0], xy[0] - 1)  # MATLAB's pixel 1 is our pixel 0
    ds = LSPDataset(ann, tmp_path / "lspet" / "images", CODEC)
    rec = ds.records[1]
    assert rec.image_file == "im00002.jpg" and rec.image_id == 1 and ds.skeleton is LSP_14
    assert rec.visible.tolist() == [1, 1, 1, 1, 0, *[1] * 9] and not rec.occluded.any()
    np.testing.assert_array_equal(rec.keypoints[4], [0, 0])
    # box 40 x 80 at (10, 20): centre (30, 60); square input: 80 x 80, x 1.5 = 120 px = scale 0.6
    np.testing.assert_allclose(rec.center, [30, 60])
    np.testing.assert_allclose(rec.scale, [0.6, 0.6])
    sample = ds[1]
    assert tuple(sample["image"].shape) == (3, 128, 128)
    assert sample["weights"][4] == 0 and sample["weights"].sum() == 13


def test_original_lsp_layout_reads_its_flag_as_occlusion(tmp_path: Path) -> None:
    """The original LSP's ``(3, 14, N)``: every joint labelled, the third row 1 = occluded (0 = visible)."""
    xy = people(2, seed=1)
    flags = np.zeros((2, 14))
    flags[0, [3, 7]] = 1
    ann = write_lsp(tmp_path / "lsp", xy, flags, layout="lsp")
    ds = LSPDataset(ann, tmp_path / "lsp" / "images", CODEC)
    assert ds.layout == "lsp" and [r.image_file for r in ds.records] == ["im0001.jpg", "im0002.jpg"]
    assert all(r.visible.all() for r in ds.records)
    assert np.flatnonzero(ds.records[0].occluded).tolist() == [3, 7] and not ds.records[1].occluded.any()
    np.testing.assert_allclose(ds.records[1].keypoints, xy[1] - 1)
    assert ds[0]["weights"].sum() == 14  # occluded joints are trained on


def test_one_record_file_as_matlab_writes_it(tmp_path: Path) -> None:
    """MATLAB drops a trailing axis of size 1: a one-person file is ``(14, 3)``."""
    xy = people(1, seed=2)
    (tmp_path / "one").mkdir()
    scipy.io.savemat(tmp_path / "one" / "joints.mat", {"joints": np.concatenate([xy[0], np.ones((14, 1))], axis=1)})
    joints = read_lsp_joints(tmp_path / "one" / "joints.mat")
    assert len(joints) == 1 and joints.layout == "lspet"
    np.testing.assert_allclose(joints.keypoints[0], xy[0] - 1)


def _config(ann: Path, val: Path | str, holdout: int, **more: str):
    split = f"{{annotations: {ann}, images: {ann.parent / 'images'}}}"
    val_split = f"{{annotations: {val}, images: {Path(val).parent / 'images'}}}"
    extra = [f"{k}={v}" for k, v in more.items()]
    return load_config(None, ["data.format=lsp", f"data.train={split}", f"data.val={val_split}",
                              f"data.holdout={holdout}", "data.input_size=[128,128]", "data.heatmap_size=[32,32]",
                              *extra])  # fmt: skip


def test_holdout_splits_one_file_and_another_file_is_scored_whole(tmp_path: Path, monkeypatch) -> None:
    ann = write_lsp(tmp_path / "lspet", people(10), np.ones((10, 14)))
    cfg = _config(ann, ann, 3)
    train, val = build_dataset(cfg, "train"), build_dataset(cfg, "val")
    train_ids, val_ids = [r.image_id for r in train.records], [r.image_id for r in val.records]
    assert train_ids == list(range(7)) and val_ids == [7, 8, 9]  # the last 3 records are held out
    assert set(train_ids).isdisjoint(val_ids) and sorted(train_ids + val_ids) == list(range(10))
    assert val.records[0].image_file == "im00008.jpg" and val.source.endswith("joints.mat[7:10]")
    assert train.augmentation is not None and val.augmentation is None

    monkeypatch.chdir(tmp_path)  # the same file spelled another way is the same file
    assert [r.image_id for r in build_dataset(_config(ann, Path("lspet/joints.mat"), 3), "val").records] == [7, 8, 9]
    other = write_lsp(tmp_path / "other", people(4, seed=5), np.ones((4, 14)), layout="lsp")
    assert [r.image_id for r in build_dataset(_config(ann, other, 3), "val").records] == [0, 1, 2, 3]
    assert len(build_dataset(_config(ann, ann, 0), "val")) == 10  # nothing held out: the whole file


def test_holdout_is_checked(tmp_path: Path) -> None:
    ann = write_lsp(tmp_path / "lspet", people(4), np.ones((4, 14)))
    with pytest.raises(DataError, match=r"joints.mat: holds 4 records, so holdout=4 .* must be in 0..3"):
        build_dataset(_config(ann, ann, 4), "train")
    with pytest.raises(ConfigError, match=r"data\.holdout must be >= 0"):
        _config(ann, ann, -1)
    with pytest.raises(ConfigError, match=r"data\.holdout must be 0 unless data\.format is lsp"):
        load_config(None, ["data.format=mpii", "data.holdout=10"])


@pytest.mark.parametrize(
    ("joints", "match"),
    [
        (np.zeros((14, 2, 5)), r"joints.mat: 'joints' has shape \(14, 2, 5\), expected \(14, 3, N\)"),
        (np.zeros((16, 3, 5)), r"has shape \(16, 3, 5\), expected \(14, 3, N\) .* or \(3, 14, N\)"),
    ],
)
def test_wrong_shapes_are_named(tmp_path: Path, joints: np.ndarray, match: str) -> None:
    scipy.io.savemat(tmp_path / "joints.mat", {"joints": joints})
    with pytest.raises(DataError, match=match):
        LSPDataset(tmp_path / "joints.mat")


def test_flags_other_than_0_and_1_name_record_and_joint(tmp_path: Path) -> None:
    flags = np.ones((3, 14))
    flags[2, 12], flags[1, 0] = 2, -1
    ann = write_lsp(tmp_path / "lspet", people(3), flags)
    with pytest.raises(DataError, match=r"joints.mat: record 1: joint 0 \(right_ankle\) has flag -1, expected 0 or 1 "
                       r"\(2 flag\(s\) of 42 are neither\)"):  # fmt: skip
        read_lsp_joints(ann)


def test_missing_file_variable_and_images_are_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nothing.mat: no such LSP annotation file"):
        read_lsp_joints(tmp_path / "nothing.mat")
    scipy.io.savemat(tmp_path / "other.mat", {"pos": np.zeros((14, 3, 2))})
    with pytest.raises(DataError, match=r"other.mat: no 'joints' array"):
        read_lsp_joints(tmp_path / "other.mat")
    ann = write_lsp(tmp_path / "lspet", people(5), np.ones((5, 14)))
    (tmp_path / "lspet" / "images" / "im00004.jpg").unlink()
    with pytest.raises(DataError, match=r"joints.mat: record 3: image .*im00004.jpg is missing \(1 of 5 images"):
        LSPDataset(ann, tmp_path / "lspet" / "images")
    assert len(LSPDataset(ann, tmp_path / "lspet" / "images", holdout=2)) == 3  # records 0-2: their images are there


def test_a_person_without_a_box_is_an_error_or_skipped(tmp_path: Path) -> None:
    flags = np.ones((3, 14))
    flags[1] = 0
    ann = write_lsp(tmp_path / "lspet", people(3), flags)
    with pytest.raises(DataError, match=r"joints.mat: record 1 \(im00002.jpg\): no labelled joint"):
        LSPDataset(ann)
    with pytest.warns(UserWarning, match=r"skipping: .*record 1 \(im00002.jpg\): no labelled joint"):
        ds = LSPDataset(ann, skip_bad=True)
    assert [r.image_id for r in ds.records] == [0, 2]


# --- the real LSPet annotations (../shared/data/lspet) ---------------------------------------------------------


@pytest.fixture(scope="module")
def lspet(lspet_dir: Path) -> Path:
    return lspet_dir / "joints.mat"


def test_the_real_lspet_file(lspet: Path) -> None:
    """9,000 people (the release's first 9,000 columns), about 12% of joints unlabelled, values as the file has them
    less one."""
    raw = scipy.io.loadmat(lspet)["joints"]
    joints = read_lsp_joints(lspet)
    assert raw.shape == (14, 3, 9000) and joints.layout == "lspet" and len(joints) == 9000
    assert 0.11 < 1 - joints.visible.mean() < 0.13
    np.testing.assert_array_equal(joints.visible, raw[:, 2, :].T == 1)
    np.testing.assert_allclose(joints.keypoints[0, 1], raw[1, :2, 0] - 1)  # right knee of im00001.jpg
    assert not joints.visible[0, 0]  # its right ankle is unlabelled (the file holds x 0, y -26.1 there)
    no_torso = ~(raw[9, 2] == 1) | ~(raw[2, 2] == 1)
    assert 0.25 < no_torso.mean() < 0.31 and np.isnan(lsp_torso_size(joints.keypoints, joints.visible)).sum() == (
        no_torso.sum()
    )


def test_the_real_lspet_images_and_its_joints_outside_them(lspet: Path) -> None:
    """Every record has its image; a few labelled joints lie outside their picture (the README's list): among them
    the head top of im00024.jpg (record 23) and the right knee of im08075.jpg (record 8074), 145 px right of it."""
    images = lspet.parent / "images"
    ds = LSPDataset(lspet, images, CODEC)
    assert len(ds) == 9000 and ds.records[-1].image_file == "im09000.jpg"
    outside = []
    for i, rec in enumerate(ds.records):
        w, h = Image.open(images / rec.image_file).size
        x, y = rec.keypoints[rec.visible > 0].T
        if ((x < -0.5) | (y < -0.5) | (x > w - 0.5) | (y > h - 0.5)).any():
            outside.append(i)
    assert {23, 711, 6366, 7392, 8074} <= set(outside) and len(outside) < 30
    assert ds.records[23].keypoints[13, 1] < -0.5 and ds.records[8074].keypoints[1, 0] > 240 + 100
