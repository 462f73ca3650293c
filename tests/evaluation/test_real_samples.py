"""Real photographs with real annotation files (``../shared/data/real-samples``, see its README).

COCO: a tiny network trains a few steps on the 12 labelled people and ``hourglass eval`` scores it with OKS AP.
MPII: HRNet's JSON carries no head boxes; with ``data.val.head_boxes`` naming the official ``gt_valid.mat``
the evaluation is PCKh, and without it the error names that setting.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from test_evaluate import Oracle  # tests/evaluation is on sys.path (pytest's default import mode, no __init__.py)
from typer.testing import CliRunner

from hourglass.checkpoint.io import build_model, save_checkpoint
from hourglass.checkpoint.meta import CheckpointMeta
from hourglass.cli import app
from hourglass.config import load_config
from hourglass.data import COCO_17, CROWDPOSE_14, MPII_16, DataError
from hourglass.data.build import build_dataset
from hourglass.data.mpii_files import read_mpii_ground_truth
from hourglass.evaluation.evaluate import evaluate_model


def _config(tmp_path: Path, root: Path, fmt: str, ann: str, **val: str) -> dict:
    """A 1-stack, 16-channel, depth-2 hourglass on one of the real sample folders (train = val)."""
    split = {"annotations": str(root / fmt / ann), "images": str(root / fmt)}
    size = {"input_size": [64, 48], "heatmap_size": [16, 12]} if fmt == "coco" else {}
    return {
        "model": {"name": "hg1", "kwargs": {"num_channels": 16, "depth": 2}},
        "data": {"format": fmt, "train": split, "val": {**split, **val}, "sigma": 1.0, "num_workers": 0,
                 "input_size": [64, 64], "heatmap_size": [16, 16], **size},
        "optim": {"name": "adam", "lr": 1e-3, "schedule": "constant"},
        "train": {"epochs": 1, "batch_size": 6, "amp": "none", "channels_last": False, "out_dir": str(tmp_path / "run"),
                  "log_every": 1, "val_every": 0, "progress": False, "tensorboard": False},
        "eval": {"batch_size": 8},
    }  # fmt: skip


def write_config(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg))
    return path


def _untrained(tmp_path: Path, cfg, skeleton=MPII_16) -> Path:
    meta = CheckpointMeta.from_config(cfg, skeleton)
    return save_checkpoint(tmp_path / "untrained.safetensors", build_model(meta), meta)


def test_coco_train_a_few_steps_then_eval_with_oks_ap(tmp_path: Path, real_samples_dir: Path) -> None:
    cfg = _config(tmp_path, real_samples_dir, "coco", "test_coco.json")
    cfg["train"]["max_steps"] = 2
    path = write_config(tmp_path / "coco.yaml", cfg)
    result = CliRunner().invoke(app, ["train", "--config", str(path)])
    assert result.exit_code == 0, result.output
    ckpt = tmp_path / "run" / "last.safetensors"
    assert ckpt.is_file()
    result = CliRunner().invoke(app, ["eval", "--config", str(path), "--checkpoint", str(ckpt), "--no-flip"])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert record["kind"] == "coco" and record["records"] == 12  # 14 people, 2 without keypoints
    assert 0.0 <= record["summary"]["AP"] <= 1.0


def test_coco_perfect_heatmaps_score_ap_1(tmp_path: Path, real_samples_dir: Path) -> None:
    raw = _config(tmp_path, real_samples_dir, "coco", "test_coco.json")
    raw["data"].update(input_size=[256, 192], heatmap_size=[64, 48], sigma=2.0)  # the usual COCO resolution
    cfg = load_config(write_config(tmp_path / "c.yaml", raw))
    dataset = build_dataset(cfg, "val")
    assert dataset.skeleton == COCO_17
    result = evaluate_model(Oracle(dataset), dataset, cfg, torch.device("cpu"), flip=False)
    assert result.kind == "coco"
    assert result.summary["AP"] == pytest.approx(1.0, abs=0.02)


def test_coco_file_without_area_is_scored_with_one_warning_line(tmp_path: Path, real_samples_dir: Path) -> None:
    """``hourglass eval`` on a copy of the real COCO file with every ``area`` removed: scored (mmpose's 0.53 x
    box area), and the CLI says so in one line naming the file and how many annotations lacked it."""
    doc = json.loads((real_samples_dir / "coco" / "test_coco.json").read_text())
    for ann in doc["annotations"]:
        del ann["area"]
    (tmp_path / "no_area.json").write_text(json.dumps(doc))
    raw = _config(tmp_path, real_samples_dir, "coco", "test_coco.json")
    raw["data"]["val"]["annotations"] = str(tmp_path / "no_area.json")
    path = write_config(tmp_path / "c.yaml", raw)
    ckpt = _untrained(tmp_path, load_config(path), COCO_17)
    result = CliRunner().invoke(app, ["eval", "--config", str(path), "--checkpoint", str(ckpt), "--no-flip"])
    assert result.exit_code == 0, result.output
    warned = [line for line in result.output.splitlines() if "'area'" in line]
    assert warned == [f"warning: {tmp_path / 'no_area.json'}: 14 of 14 annotations have no 'area'; their OKS scale "
                      "is 0.53 x their box area (mmpose's rule)"]  # fmt: skip
    record = json.loads((tmp_path / "eval.json").read_text())
    assert record["kind"] == "coco" and 0.0 <= record["summary"]["AP"] <= 1.0


def test_mpii_eval_takes_head_boxes_from_gt_valid(tmp_path: Path, real_samples_dir: Path) -> None:
    gt_file = real_samples_dir / "mpii" / "gt_valid_first5.mat"
    raw = _config(tmp_path, real_samples_dir, "mpii", "test_mpii.json", head_boxes=str(gt_file))
    cfg = load_config(write_config(tmp_path / "m.yaml", raw))
    dataset = build_dataset(cfg, "val")
    np.testing.assert_allclose(dataset.annotations()["head_size"], read_mpii_ground_truth(gt_file).head_size)
    result = evaluate_model(Oracle(dataset), dataset, cfg, torch.device("cpu"), flip=True)
    assert result.kind == "pckh"
    assert result.summary["pckh@0.5"] == 100.0

    # the CLI end to end with an untrained tiny model
    ckpt = _untrained(tmp_path, cfg)
    result = CliRunner().invoke(app, ["eval", "--config", str(tmp_path / "m.yaml"), "--checkpoint", str(ckpt)])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "eval.json").read_text())["kind"] == "pckh"


def test_mpii_without_head_boxes_names_the_setting(tmp_path: Path, real_samples_dir: Path) -> None:
    cfg = load_config(write_config(tmp_path / "m.yaml", _config(tmp_path, real_samples_dir, "mpii", "test_mpii.json")))
    with pytest.raises(DataError, match=r"no head box for 5 of 5 people.*set data\.val\.head_boxes"):
        build_dataset(cfg, "val")
    ckpt = _untrained(tmp_path, cfg)
    result = CliRunner().invoke(app, ["eval", "--config", str(tmp_path / "m.yaml"), "--checkpoint", str(ckpt)])
    assert result.exit_code == 1
    assert "data.val.head_boxes" in result.output and "Traceback" not in result.output


def test_mpii_head_boxes_of_other_people_are_refused(tmp_path: Path, real_samples_dir: Path) -> None:
    import scipy.io

    gt = scipy.io.loadmat(real_samples_dir / "mpii" / "gt_valid_first5.mat")
    order = [1, 0, 2, 3, 4]
    swapped = {k: gt[k][..., order] for k in ("pos_gt_src", "jnt_missing", "headboxes_src")}
    scipy.io.savemat(tmp_path / "swapped.mat", swapped)
    scipy.io.savemat(tmp_path / "four.mat", {k: v[..., :4] for k, v in swapped.items()})
    for name, match in (("swapped.mat", r"person 0 of .*swapped.mat is not record 0"), ("four.mat", r"holds 4 people")):
        raw = _config(tmp_path, real_samples_dir, "mpii", "test_mpii.json", head_boxes=str(tmp_path / name))
        cfg = load_config(write_config(tmp_path / "m.yaml", raw))
        with pytest.raises(DataError, match=r"data\.val\.head_boxes: .*" + match):
            build_dataset(cfg, "val")


def test_crowdpose_format_file_is_recognised_and_scored_with_oks_ap(tmp_path: Path, real_samples_dir: Path) -> None:
    """The real COCO file rewritten as CrowdPose writes its files (14 joints, ``head``/``neck``): recognised as
    CROWDPOSE_14 and scored with OKS AP through its sigmas, not PCK."""
    doc = json.loads((real_samples_dir / "coco" / "test_coco.json").read_text())
    names = [*COCO_17.joint_names[5:], "head", "neck"]
    doc["categories"] = [{"id": 1, "name": "person", "keypoints": names, "skeleton": [[13, 14], [1, 14], [2, 14]]}]
    for ann in doc["annotations"]:
        ann["keypoints"] = [*ann["keypoints"][15:], 0, 0, 0, 0, 0, 0]
        ann["num_keypoints"] = sum(v > 0 for v in ann["keypoints"][2::3])
    (tmp_path / "crowdpose.json").write_text(json.dumps(doc))
    raw = _config(tmp_path, real_samples_dir, "coco", "test_coco.json")
    raw["data"]["val"]["annotations"] = str(tmp_path / "crowdpose.json")
    raw["data"].update(input_size=[256, 192], heatmap_size=[64, 48], sigma=2.0)
    cfg = load_config(write_config(tmp_path / "c.yaml", raw))
    dataset = build_dataset(cfg, "val")
    assert dataset.skeleton is CROWDPOSE_14
    result = evaluate_model(Oracle(dataset), dataset, cfg, torch.device("cpu"), flip=False)
    assert result.kind == "coco"
    assert result.summary["AP"] == pytest.approx(1.0, abs=0.02)
