"""MPII loaders: the real valid.h5 (Torch format), HRNet JSON, their agreement, and bad files."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

from hourglass.data import DataError, HeatmapCodec, MPIIDataset, load_mpii_h5, load_mpii_json


@pytest.fixture(scope="module")
def valid_h5(mpii_eval_dir: Path) -> Path:
    """``valid.h5`` of ../shared/data/mpii-eval (the root conftest skips locally, fails under CI, if absent)."""
    return mpii_eval_dir / "valid.h5"


def test_valid_h5_loads_without_images_and_matches_the_official_ground_truth(valid_h5: Path) -> None:
    ds = MPIIDataset(valid_h5)  # no image root: annotations only
    ann = ds.annotations()
    assert len(ds) == 2958 and ann["keypoints"].shape == (2958, 16, 2)
    gt = scipy.io.loadmat(valid_h5.parent / "mpii_val_gt.mat")
    labelled = gt["jnt_missing"].T == 0
    np.testing.assert_array_equal(ann["visible"] > 0, labelled)
    # 0-based here, 1-based in the .mat; the .h5 holds integer-rounded positions of the same people
    diff = np.abs(ann["keypoints"] + 1 - gt["pos_gt_src"].transpose(2, 0, 1)).max(-1)[labelled]
    assert np.mean(diff <= 1.0) > 0.999
    boxes = gt["headboxes_src"].transpose(2, 0, 1)
    np.testing.assert_allclose(ann["head_size"], 0.6 * np.linalg.norm(boxes[:, 1] - boxes[:, 0], axis=1), atol=1e-3)
    assert 0.2 < ann["occluded"][labelled].mean() < 0.3  # MPII's "not visible" flag, kept as occlusion
    assert ann["image_file"][0] == "005808361.jpg" and ann["image_id"][0] == 6
    with pytest.raises(DataError, match=r"record 0: image 005808361.jpg is missing"):
        ds[0]


def test_h5_center_and_scale_are_not_adjusted_twice(valid_h5: Path) -> None:
    records = load_mpii_h5(valid_h5)
    with h5py.File(valid_h5) as f:
        center, scale = f["center"][:5], f["scale"][:5]
    for r, c, s in zip(records, center, scale, strict=False):
        np.testing.assert_allclose(r.center, c - 1)
        np.testing.assert_allclose(r.scale, [s, s])


def hrnet_entries_from_h5(path: Path, n: int) -> list[dict]:
    """The first ``n`` people of a Torch .h5 written as HRNet JSON (undoing the adjustment the .h5 holds)."""
    with h5py.File(path) as f:
        c, s, part, names = f["center"][:n], f["scale"][:n], f["part"][:n], f["imgname"][:n]
    out = []
    for i in range(n):
        raw_s = s[i] / 1.25
        lab = ~(part[i] == 0).all(-1)
        out.append(
            {
                "image": names[i].decode(),
                "center": [float(c[i, 0]), float(c[i, 1] - 15 * raw_s)],
                "scale": float(raw_s),
                "joints": np.where(lab[:, None], part[i], -1).tolist(),
                "joints_vis": lab.astype(int).tolist(),
            }
        )
    return out


def test_hrnet_json_applies_the_adjustment_and_agrees_with_h5(valid_h5: Path, tmp_path: Path) -> None:
    path = tmp_path / "valid.json"
    path.write_text(json.dumps(hrnet_entries_from_h5(valid_h5, 20)))
    from_json, from_h5 = load_mpii_json(path), load_mpii_h5(valid_h5)[:20]
    for a, b in zip(from_json, from_h5, strict=True):
        np.testing.assert_allclose(a.center, b.center, atol=1e-9)
        np.testing.assert_allclose(a.scale, b.scale, atol=1e-12)
        np.testing.assert_array_equal(a.visible > 0, b.visible > 0)
        np.testing.assert_allclose(a.keypoints[a.visible > 0], b.keypoints[b.visible > 0])


def test_json_center_minus_one_is_not_adjusted(tmp_path: Path) -> None:
    """HRNet skips the person-box adjustment for ``center == -1`` (no position annotated); so do we."""
    entry = {"image": "x.jpg", "center": [-1, -1], "scale": 2.0, "joints": [[5, 5]] * 16, "joints_vis": [1] * 16}
    path = tmp_path / "a.json"
    path.write_text(json.dumps([entry]))
    rec = load_mpii_json(path)[0]
    np.testing.assert_allclose(rec.center, [-2, -2])
    np.testing.assert_allclose(rec.scale, [2.0, 2.0])


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"image": "x.jpg", "center": [1, 1], "scale": 1.0, "joints": [[1, 1]] * 16},
         "record 0: missing field 'joints_vis'"),
        ({"image": "x.jpg", "center": [1, 1], "scale": 1.0, "joints": [[1, 1]] * 15, "joints_vis": [1] * 15},
         r"record 0: joints have shape \(15, 2\), expected \(16, 2\)"),
        ({"image": "x.jpg", "center": [1, 1], "scale": 0.0, "joints": [[1, 1]] * 16, "joints_vis": [1] * 16},
         "record 0: box of zero size"),
        ({"image": "x.jpg", "center": [1, 1], "scale": 1.0, "joints": [[float("nan"), 1]] * 16, "joints_vis": [1] * 16},
         "record 0: labelled keypoints contain NaN"),
    ],
)  # fmt: skip
def test_bad_json_records_are_named(tmp_path: Path, entry: dict, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([entry]))
    with pytest.raises(DataError, match=f"bad.json: {message}"):
        MPIIDataset(path)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such annotation file"):
        MPIIDataset(tmp_path / "none.json")
    (tmp_path / "x.json").write_text("{oops")
    with pytest.raises(DataError, match=r"x\.json: not valid JSON"):
        MPIIDataset(tmp_path / "x.json")
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f["center"] = np.zeros((2, 2))
    with pytest.raises(DataError, match=r"x\.h5: missing dataset 'scale'"):
        MPIIDataset(tmp_path / "x.h5", codec=HeatmapCodec((64, 64)))
    with pytest.raises(DataError, match=r"expected a \.json"):
        MPIIDataset(tmp_path / "x.mat")
