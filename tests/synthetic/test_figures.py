"""Synthetic figures: determinism, the files `hourglass synth` writes, read back by the real loaders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from typer.testing import CliRunner

from hourglass.cli import app
from hourglass.data import (
    MPII_16,
    COCOKeypoints,
    DataError,
    HeatmapCodec,
    MPIIDataset,
    get_affine_matrix,
    transform_points,
)
from hourglass.synthetic import SyntheticFigures, render_figure, sample_figure, write_synthetic
from hourglass.synthetic import figures as synthetic_module

CODEC = HeatmapCodec((128, 128), (32, 32))


def test_figures_are_deterministic_per_index_and_seed() -> None:
    a, b = sample_figure(4, seed=1), sample_figure(4, seed=1)
    np.testing.assert_array_equal(a.joints, b.joints)
    np.testing.assert_array_equal(render_figure(a, 4, 1), render_figure(b, 4, 1))
    other = sample_figure(4, seed=2)
    assert np.abs(other.joints - a.joints).max() > 5
    assert not np.array_equal(render_figure(other, 4, 2), render_figure(a, 4, 1))
    img = render_figure(a, 4, 1)
    assert img.shape == (128, 128, 3) and img.dtype == np.uint8


def test_figures_vary_and_keep_their_labels() -> None:
    figs = [sample_figure(i, seed=0) for i in range(200)]
    vis = np.stack([f.visible for f in figs])
    occ = np.stack([f.occluded for f in figs])
    assert vis.mean() > 0.98 and ((occ == 0) | (vis == 1)).all()
    assert 0.03 < occ[vis > 0].mean() < 0.2  # some joints hidden by occluders, still labelled
    front = np.array([f.front for f in figs])
    assert 0.35 < front.mean() < 0.65
    # facing the viewer, the person's right shoulder is on the image left (and the other way round from behind)
    dx = np.array([f.joints[13, 0] - f.joints[12, 0] for f in figs])
    assert np.mean(dx[front] > 0) > 0.85 and np.mean(dx[~front] < 0) > 0.85
    sizes = np.array([f.bbox[3] for f in figs])
    assert sizes.max() / sizes.min() > 1.5
    for f in figs[:20]:
        x, y, w, h = f.bbox
        inside = f.joints[f.visible > 0]
        assert (inside[:, 0] >= x - 1e-6).all() and (inside[:, 0] <= x + w + 1e-6).all()
        assert (inside[:, 1] >= y - 1e-6).all() and (inside[:, 1] <= y + h + 1e-6).all()
        assert f.head_size > 0


def test_a_mean_pose_guess_scores_low() -> None:
    """Knowing the person box is not enough: predicting the average crop pose gets few joints right."""
    train, test = SyntheticFigures(300, seed=0, codec=CODEC), SyntheticFigures(200, seed=1, codec=CODEC)

    def crop_keypoints(ds: SyntheticFigures) -> np.ndarray:
        return np.stack([transform_points(r.keypoints, get_affine_matrix(r.center, r.scale, 0, (128, 128)))
                         for r in ds.records])  # fmt: skip

    mean = crop_keypoints(train).mean(0)
    pred = np.stack(
        [
            transform_points(mean, get_affine_matrix(r.center, r.scale, 0, (128, 128), inverse=True))
            for r in test.records
        ]
    )
    ann = test.annotations()
    dist = np.linalg.norm(pred - ann["keypoints"], axis=-1) / ann["head_size"][:, None]
    assert np.mean(dist[ann["visible"] > 0] <= 0.5) < 0.3


def assert_same_samples(a: torch.utils.data.Dataset, b: torch.utils.data.Dataset, skip: tuple[str, ...]) -> None:
    assert len(a) == len(b)
    for i in range(len(a)):
        x, y = a[i], b[i]
        torch.testing.assert_close(x["image"], y["image"], atol=0, rtol=0)
        torch.testing.assert_close(x["heatmaps"], y["heatmaps"], atol=1e-5, rtol=0)
        torch.testing.assert_close(x["weights"], y["weights"])
        for key, value in x["meta"].items():
            if key not in skip:
                np.testing.assert_allclose(value, y["meta"][key], atol=1e-9, err_msg=f"sample {i} meta {key}")


def test_in_memory_figures_match_the_coco_files(synth_coco: Path) -> None:
    files = COCOKeypoints(synth_coco / "annotations.json", synth_coco, codec=CODEC)
    assert_same_samples(SyntheticFigures(len(files), seed=7, codec=CODEC), files, skip=("image_file", "image_id"))


def test_in_memory_figures_match_the_mpii_files(synth_mpii: Path) -> None:
    files = MPIIDataset(synth_mpii / "annotations.json", synth_mpii, codec=CODEC)
    # HRNet's MPII JSON has no person box; everything else agrees
    assert_same_samples(
        SyntheticFigures(len(files), seed=7, codec=CODEC), files, skip=("image_file", "image_id", "bbox")
    )


def test_gt_valid_mat_is_readable_by_the_mpii_evaluation(synth_mpii: Path) -> None:
    from hourglass.data.mpii_files import read_mpii_ground_truth

    gt = read_mpii_ground_truth(synth_mpii / "gt_valid.mat")
    ann = MPIIDataset(synth_mpii / "annotations.json").annotations()
    np.testing.assert_array_equal(gt.visible, ann["visible"] > 0)
    np.testing.assert_allclose(gt.keypoints[gt.visible] - 1, ann["keypoints"][gt.visible], atol=1e-9)
    np.testing.assert_allclose(gt.head_size, ann["head_size"])
    raw = scipy.io.loadmat(synth_mpii / "gt_valid.mat")
    n = len(ann["head_size"])
    assert raw["pos_gt_src"].shape == (16, 2, n) and raw["headboxes_src"].shape == (2, 2, n)


def test_synth_refuses_to_overwrite_and_validates(tmp_path: Path) -> None:
    runner = CliRunner()
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    result = runner.invoke(app, ["synth", "--out", str(tmp_path / "taken"), "--num", "2"])
    assert result.exit_code == 1 and "already exists" in result.output
    assert (tmp_path / "taken" / "keep.txt").read_text() == "mine"
    result = runner.invoke(app, ["synth", "--out", str(tmp_path / "x"), "--num", "2", "--format", "voc"])
    assert result.exit_code == 1 and "format must be 'coco' or 'mpii'" in result.output
    result = runner.invoke(app, ["synth", "--out", str(tmp_path / "x"), "--num", "2", "--image-size", "0", "64"])
    assert result.exit_code == 1 and "at least 32 x 32" in result.output
    assert not (tmp_path / "x").exists()


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_synthetic(tmp_path / "data", 2, "coco")
    before = sorted(p.name for p in (tmp_path / "data" / "images").iterdir())
    calls = {"n": 0}
    real = synthetic_module.cv2.imwrite

    def flaky(path: str, img: np.ndarray, params: list) -> bool:
        calls["n"] += 1
        return calls["n"] < 3 and real(path, img, params)

    monkeypatch.setattr(synthetic_module.cv2, "imwrite", flaky)
    with pytest.raises(DataError, match="could not write the image"):
        write_synthetic(tmp_path / "data", 5, "mpii", overwrite=True)
    assert sorted(p.name for p in (tmp_path / "data" / "images").iterdir()) == before  # old data intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no temporary folders left


def test_jpeg_output_reads_back(tmp_path: Path) -> None:
    write_synthetic(tmp_path / "j", 2, "coco", seed=3, image_size=(96, 80), image_format="jpg")
    ds = COCOKeypoints(tmp_path / "j" / "annotations.json", tmp_path / "j", codec=CODEC)
    mem = SyntheticFigures(2, seed=3, codec=CODEC, image_size=(96, 80))
    assert ds.records[1].image_file == "images/000001.jpg"
    assert (ds[1]["image"] - mem[1]["image"]).abs().mean() < 0.03  # JPEG is lossy, but the same picture
    assert MPII_16.num_joints == ds[1]["heatmaps"].shape[0]
