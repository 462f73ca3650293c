"""MPII evaluation files: the published table reproduced on real validation data, file formats, bad input.

The data lives in ``../shared/data/mpii-eval/`` beside the repository (see its README); these tests skip
locally when it is absent and fail under CI.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

from hourglass.data.mpii_files import read_mpii_ground_truth, read_mpii_predictions
from hourglass.evaluation.evaluate import evaluate_mpii_files

COLUMNS = ("Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Total")
# The README's published PCKh@0.5 table (official MATLAB protocol).
PUBLISHED = {
    "preds_bearpaw_hg_s8_b1.mat": (97.44, 95.19, 90.08, 85.32, 87.48, 84.26, 80.73, 89.09),
    "mpii_val_gt.mat": (96.66, 92.71, 83.36, 76.74, 81.93, 73.36, 65.45, 82.34),  # its pos_pred_src
}


@pytest.fixture(scope="module")
def data(mpii_eval_dir: Path) -> Path:
    """The MPII evaluation files (the root conftest skips locally, fails under CI, when absent)."""
    return mpii_eval_dir


@pytest.mark.parametrize("preds", sorted(PUBLISHED))
def test_official_protocol_reproduces_published_table(data: Path, preds: str) -> None:
    scores = evaluate_mpii_files(data / preds, data / "mpii_val_gt.mat")
    for name, want in zip(COLUMNS, PUBLISHED[preds], strict=True):
        assert scores[name] == pytest.approx(want, abs=0.01), name


def test_other_conventions_and_pckh_at_0_1(data: Path) -> None:
    preds, gt = data / "preds_bearpaw_hg_s8_b1.mat", data / "mpii_val_gt.mat"
    assert evaluate_mpii_files(preds, gt)["Mean@0.1"] == pytest.approx(24.49, abs=0.01)
    assert evaluate_mpii_files(preds, gt, threshold=0.1)["Total"] == pytest.approx(24.49, abs=0.01)
    bearpaw = evaluate_mpii_files(preds, gt, "bearpaw")
    assert bearpaw["Total"] == pytest.approx(88.64, abs=0.01)
    assert bearpaw["Head"] == pytest.approx(96.79, abs=0.01)
    hrnet = evaluate_mpii_files(preds, gt, "hrnet")
    assert hrnet["Total"] == pytest.approx(89.09, abs=0.01)
    assert hrnet["Head"] == pytest.approx(96.79, abs=0.01)


def test_cli_json_in_a_subprocess(data: Path) -> None:
    cmd = [sys.executable, "-m", "hourglass", "eval-mpii", "--json", "--protocol", "official"]
    cmd += ["--preds", str(data / "preds_bearpaw_hg_s8_b1.mat"), "--gt", str(data / "mpii_val_gt.mat")]
    out = subprocess.run(
        cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2], timeout=120, check=True
    )
    scores = json.loads(out.stdout)
    assert set(scores) == {*COLUMNS, "Mean@0.1"}
    assert [round(scores[c], 2) for c in COLUMNS] == list(PUBLISHED["preds_bearpaw_hg_s8_b1.mat"])
    assert scores["Mean@0.1"] == pytest.approx(24.49, abs=0.01)


# Small synthetic files for the formats and the bad input.


def _write_gt(path: Path, n: int = 3) -> np.ndarray:
    rng = np.random.default_rng(1)
    pos = rng.uniform(50, 150, size=(16, 2, n))
    boxes = np.stack([np.full((2, n), 40.0), np.full((2, n), 40.0 + 50.0 / np.sqrt(2))])  # diagonal 50
    scipy.io.savemat(path, {"pos_gt_src": pos, "jnt_missing": np.zeros((16, n), np.uint8), "headboxes_src": boxes})
    return pos.transpose(2, 0, 1)


def test_formats_h5_and_mat_v73(tmp_path: Path) -> None:
    gt = _write_gt(tmp_path / "gt.mat")
    preds = gt + np.array([10.0, 0.0])  # 10 px = 1/3 head size (0.6 * 50)
    with h5py.File(tmp_path / "p.h5", "w") as f:
        f["preds"] = preds
    # MATLAB v7.3: HDF5 with a 512-byte header, arrays stored with their axes reversed
    with h5py.File(tmp_path / "p73.mat", "w", userblock_size=512) as f:
        f["preds"] = preds.T
    with open(tmp_path / "p73.mat", "r+b") as f:
        f.write(b"MATLAB 7.3 MAT-file, written by a test")
    for name in ("p.h5", "p73.mat"):
        np.testing.assert_allclose(read_mpii_predictions(tmp_path / name), preds)
        assert evaluate_mpii_files(tmp_path / name, tmp_path / "gt.mat")["Total"] == 100.0
        assert evaluate_mpii_files(tmp_path / name, tmp_path / "gt.mat", threshold=0.3)["Total"] == 0.0
    np.testing.assert_allclose(read_mpii_ground_truth(tmp_path / "gt.mat").head_size, 30.0)


def test_bad_input_names_file_and_shape(tmp_path: Path) -> None:
    gt_path = tmp_path / "gt.mat"
    gt = _write_gt(gt_path)
    with pytest.raises(FileNotFoundError, match=r"nope.mat: no such predictions file"):
        evaluate_mpii_files(tmp_path / "nope.mat", gt_path)
    scipy.io.savemat(tmp_path / "short.mat", {"preds": gt[:2]})
    with pytest.raises(ValueError, match=r"short.mat: 2 people predicted \(shape \(2, 16, 2\)\) but .*gt.mat has 3"):
        evaluate_mpii_files(tmp_path / "short.mat", gt_path)
    scipy.io.savemat(tmp_path / "k14.mat", {"preds": gt[:, :14]})
    with pytest.raises(
        ValueError, match=r"k14.mat: 'preds' has shape \(3, 14, 2\), expected \(N, 16, 2\) or \(2, 16, N\)"
    ):
        evaluate_mpii_files(tmp_path / "k14.mat", gt_path)
    scipy.io.savemat(tmp_path / "other.mat", {"joints": gt})
    with pytest.raises(ValueError, match=r"other.mat: predictions file has no 'preds'"):
        evaluate_mpii_files(tmp_path / "other.mat", gt_path)
    (tmp_path / "junk.mat").write_bytes(b"not a mat file at all")
    with pytest.raises(ValueError, match=r"junk.mat: not a readable predictions file"):
        evaluate_mpii_files(tmp_path / "junk.mat", gt_path)
    (tmp_path / "p.txt").write_text("1 2")
    with pytest.raises(ValueError, match=r"p.txt: predictions must be a .mat or .h5 file"):
        evaluate_mpii_files(tmp_path / "p.txt", gt_path)
    bad_gt = tmp_path / "badgt.mat"
    scipy.io.savemat(bad_gt, {"pos_gt_src": np.zeros((16, 2, 3)), "jnt_missing": np.zeros((16, 4)),
                              "headboxes_src": np.zeros((2, 2, 3))})  # fmt: skip
    with pytest.raises(ValueError, match=r"badgt.mat: 'jnt_missing' has shape \(16, 4\), expected \(16, 3\)"):
        evaluate_mpii_files(tmp_path / "short.mat", bad_gt)


def test_cli_bad_input_is_one_line_and_exit_1(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from hourglass.cli import app

    _write_gt(tmp_path / "gt.mat")
    result = CliRunner().invoke(
        app, ["eval-mpii", "--preds", str(tmp_path / "x.mat"), "--gt", str(tmp_path / "gt.mat")]
    )
    assert result.exit_code == 1
    assert "x.mat: no such predictions file" in result.output
    assert "Traceback" not in result.output


def test_synthetic_gt_valid_from_the_data_writer(tmp_path: Path) -> None:
    """``hourglass synth --format mpii`` writes a gt_valid.mat (long joint names) that scores as expected."""
    from hourglass.synthetic import write_synthetic

    root = write_synthetic(tmp_path / "figs", 3, format="mpii", image_size=(64, 64))
    gt = read_mpii_ground_truth(root / "gt_valid.mat")
    scipy.io.savemat(tmp_path / "p.mat", {"preds": gt.keypoints})
    assert evaluate_mpii_files(tmp_path / "p.mat", root / "gt_valid.mat")["Total"] == 100.0


def test_joint_order_is_checked(tmp_path: Path) -> None:
    _write_gt(tmp_path / "gt.mat")
    data = scipy.io.loadmat(tmp_path / "gt.mat")
    names = np.empty((1, 16), dtype=object)
    names[0, :] = ["head", "rank"] + [f"j{i}" for i in range(14)]
    scipy.io.savemat(
        tmp_path / "gt2.mat", {**{k: v for k, v in data.items() if not k.startswith("__")}, "dataset_joints": names}
    )
    with pytest.raises(ValueError, match=r"gt2\.mat: dataset_joints is head, rank, j0"):
        read_mpii_ground_truth(tmp_path / "gt2.mat")


def test_valid_h5_as_ground_truth_matches_the_official_file(data: Path) -> None:
    """pose-hg-train's valid.h5 (``part`` rounded to whole pixels, ``normalize``) scores as the official file.

    The allowed difference is what that rounding can change: a joint's verdict can only flip where its distance
    to the official position lies within ``|part - pos_gt_src|`` (plus the threshold times the ``normalize``
    difference) of the threshold. Every column is a weighted mean of per-joint PCKh, so it can move by at most
    the largest such share among its joints.
    """
    official, torch_gt = read_mpii_ground_truth(data / "mpii_val_gt.mat"), read_mpii_ground_truth(data / "valid.h5")
    np.testing.assert_array_equal(torch_gt.visible, official.visible)
    preds = read_mpii_predictions(data / "preds_bearpaw_hg_s8_b1.mat")
    dist = np.linalg.norm(preds - official.keypoints, axis=-1)
    moved = np.linalg.norm(torch_gt.keypoints - official.keypoints, axis=-1)
    moved += 0.5 * np.abs(torch_gt.head_size - official.head_size)[:, None]
    near = official.visible & (np.abs(dist - 0.5 * official.head_size[:, None]) <= moved)
    share = 100 * near.sum(0) / np.maximum(official.visible.sum(0), 1)  # (16,) per joint
    groups = {"Head": (8, 9), "Shoulder": (12, 13), "Elbow": (11, 14), "Wrist": (10, 15), "Hip": (2, 3),
              "Knee": (1, 4), "Ankle": (0, 5)}  # fmt: skip
    groups["Total"] = tuple(j for g in groups.values() for j in g)
    for protocol in ("official", "bearpaw", "hrnet"):
        want = evaluate_mpii_files(data / "preds_bearpaw_hg_s8_b1.mat", data / "mpii_val_gt.mat", protocol)
        got = evaluate_mpii_files(data / "preds_bearpaw_hg_s8_b1.mat", data / "valid.h5", protocol)
        for column, joints in groups.items():
            assert abs(got[column] - want[column]) <= share[list(joints)].max() + 1e-9, (protocol, column)
        assert got["Total"] == pytest.approx(want["Total"], abs=0.01), protocol


def test_prediction_layouts_of_eval_mpii_pose(tmp_path: Path) -> None:
    """``preds`` as ``[n x 16 x 2]`` or ``[2 x 16 x n]``, in .mat and .h5, including the n = 2 tie."""
    for n in (3, 2):
        gt = _write_gt(tmp_path / f"gt{n}.mat", n)
        coords_first = gt.transpose(2, 1, 0)  # (2, 16, n)
        scipy.io.savemat(tmp_path / f"a{n}.mat", {"preds": gt})
        scipy.io.savemat(tmp_path / f"b{n}.mat", {"preds": coords_first})
        with h5py.File(tmp_path / f"c{n}.h5", "w") as f:
            f["preds"] = gt  # as Torch's hdf5 writes (n, 16, 2); MATLAB sees [2 x 16 x n]
        files = [f"b{n}.mat", f"c{n}.h5"]
        if n != 2:  # with n = 2 evalMPII.m takes a first axis of size 2 (MATLAB's order) for the coordinates
            with h5py.File(tmp_path / f"d{n}.h5", "w") as f:
                f["preds"] = coords_first
            files += [f"a{n}.mat", f"d{n}.h5"]
        for name in files:
            np.testing.assert_allclose(read_mpii_predictions(tmp_path / name), gt, err_msg=name)
            assert evaluate_mpii_files(tmp_path / name, tmp_path / f"gt{n}.mat")["Total"] == 100.0


def test_valid_h5_bad_input(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "nonorm.h5", "w") as f:
        f["part"] = np.ones((3, 16, 2))
    with pytest.raises(ValueError, match=r"nonorm.h5: has 'part' but no 'normalize'"):
        read_mpii_ground_truth(tmp_path / "nonorm.h5")
    with h5py.File(tmp_path / "zero.h5", "w") as f:
        f["part"] = np.ones((3, 16, 2))
        f["normalize"] = np.array([10.0, 0.0, 10.0])
    with pytest.raises(ValueError, match=r"zero.h5: 'normalize' \(head size\) of person 1 is 0.0"):
        read_mpii_ground_truth(tmp_path / "zero.h5")
