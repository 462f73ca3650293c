"""Evaluation: the image-pixel mapping and flip test with a perfect network, JSON output, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from hourglass.checkpoint.io import build_model, save_checkpoint
from hourglass.checkpoint.meta import CheckpointMeta
from hourglass.cli import result_table
from hourglass.data import flip_keypoints, get_affine_matrix, transform_points
from hourglass.data.build import build_dataset
from hourglass.errors import CheckpointError
from hourglass.evaluation.evaluate import evaluate, evaluate_model
from small_disk import out_of_space_line


class Oracle(nn.Module):
    """A "network" that returns the target heatmaps of whichever crop it is shown, plain or mirrored.

    It recognises a crop by its pixels, so it does not depend on the batching or call order of the
    evaluation; for a mirrored crop it returns the heatmaps of the mirrored keypoints (joints swapped),
    which is what a perfect network would predict there.
    """

    def __init__(self, dataset) -> None:
        super().__init__()
        codec, flip_index = dataset.codec, dataset.skeleton.flip_index
        w = codec.input_size[1]
        self.entries = []
        for i in range(len(dataset)):
            s = dataset[i]
            m = s["meta"]
            matrix = get_affine_matrix(m["center"], m["scale"], m["rotation"], codec.input_size)
            kp = transform_points(m["keypoints"], matrix)
            vis = m["visible"]
            mirrored, _ = codec.encode(flip_keypoints(kp, flip_index, w), vis[list(flip_index)])
            self.entries.append((s["image"], s["heatmaps"], s["image"].flip(-1), torch.from_numpy(mirrored)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out = []
        for x in images:
            for image, heatmaps, mirror, mirrored in self.entries:
                if torch.equal(x, image):
                    out.append(heatmaps)
                    break
                if torch.equal(x, mirror):
                    out.append(mirrored)
                    break
            else:
                raise AssertionError("the oracle was shown a crop it does not know")
        return torch.stack(out)[:, None]  # (B, 1, K, h, w): one stack


@pytest.mark.parametrize("flip", [False, True])
def test_perfect_heatmaps_score_100_in_image_pixels(make_config, flip: bool) -> None:
    cfg, _ = make_config(["train.amp=none"])
    dataset = build_dataset(cfg, "val")
    result = evaluate_model(Oracle(dataset), dataset, cfg, torch.device("cpu"), flip=flip)
    assert result.kind == "pckh"
    assert result.summary["pckh@0.5"] == 100.0
    gt = dataset.annotations()
    vis = gt["visible"] > 0
    # per-axis error in heatmap pixels (one heatmap px = 4 * 200 * scale / W image px for this record):
    # decoding is within 0.25 px; the flip test's one-pixel shift adds up to 0.25 px in x
    heatmap_px = 4 * 200 * gt["scale"][:, 0] / cfg.data.input_size[1]
    err = np.abs(result.keypoints - gt["keypoints"]) / heatmap_px[:, None, None]
    assert err[vis][:, 1].max() <= 0.26
    assert err[vis][:, 0].max() <= (0.51 if flip else 0.26)
    assert "Total" in result.table["PCKh@0.5"] and result_table(result, width=120).row_count == 2
    assert result_table(result, width=80).row_count == 8  # 86 characters wide: a row per joint group


def test_a_training_split_is_evaluated_on_plain_crops(make_config) -> None:
    cfg, _ = make_config(["train.amp=none", "data.augment.rotation=30", "data.augment.flip=true"])
    cfg.data.val = cfg.data.train
    oracle = Oracle(build_dataset(cfg, "val"))  # knows the plain crops of the training files only
    train_split = build_dataset(cfg, "train")
    assert train_split.augmentation is not None
    result = evaluate_model(oracle, train_split, cfg, torch.device("cpu"), flip=True)
    assert result.summary["pckh@0.5"] == 100.0 and train_split.augmentation is not None


def test_eval_writes_json_and_refuses_other_checkpoints(tmp_path: Path, make_config) -> None:
    cfg, _ = make_config(["train.amp=none", "eval.max_samples=4"])
    dataset = build_dataset(cfg, "val")
    spec = {"name": "hg1", "kwargs": {"num_channels": 16, "depth": 2, "num_joints": 16}}
    torch.manual_seed(0)
    data = CheckpointMeta.from_config(cfg, dataset.skeleton).to_json()["data"]
    meta = {"model": spec, "data": data, "step": 0, "epoch": 0, "metrics": {}}
    ckpt = save_checkpoint(tmp_path / "m.safetensors", build_model({"model": spec}), meta)
    result = evaluate(cfg, ckpt, flip=False)
    saved = json.loads((tmp_path / "eval.json").read_text())
    assert saved["records"] == 4 and saved["flip"] is False
    assert saved["summary"]["pckh@0.5"] == pytest.approx(result.summary["pckh@0.5"])
    assert 0.0 <= result.summary["pckh@0.5"] <= 100.0

    other = {**spec, "kwargs": {**spec["kwargs"], "num_joints": 17}}
    bad = save_checkpoint(tmp_path / "k17.safetensors", build_model({"model": other}), {**meta, "model": other})
    with pytest.raises(CheckpointError, match="num_joints=17 but 16 was expected"):
        evaluate(cfg, bad)
    wide = {**meta, "data": {**meta["data"], "input_size": [128, 128]}}
    bad = save_checkpoint(tmp_path / "in128.safetensors", build_model({"model": spec}), wide)
    with pytest.raises(CheckpointError, match=r"input_size=\[128, 128\] but the config has \[64, 64\]"):
        evaluate(cfg, bad)


def test_coco_format_is_scored_with_oks_ap(tmp_path: Path, make_config) -> None:
    """A COCO-format split of a custom skeleton with OKS sigmas (and no head boxes) is scored by COCOeval."""
    from hourglass.synthetic import write_synthetic

    root = write_synthetic(tmp_path / "coco", 6, format="coco", seed=4, image_size=(64, 64))
    doc = json.loads((root / "annotations.json").read_text())
    category = doc["categories"][0]
    category["keypoints"] = [f"part_{name}" for name in category["keypoints"]]  # a custom skeleton, not MPII_16
    category["sigmas"] = [0.07] * 16
    for ann in doc["annotations"]:
        del ann["head_box"]
    (root / "annotations.json").write_text(json.dumps(doc))
    split = f"{{annotations: {root / 'annotations.json'}, images: {root}}}"
    cfg, _ = make_config(["data.format=coco", f"data.val={split}", "train.amp=none"])
    dataset = build_dataset(cfg, "val")
    perfect = evaluate_model(Oracle(dataset), dataset, cfg, torch.device("cpu"), flip=False)
    assert perfect.kind == "coco"
    assert perfect.summary["AP"] == pytest.approx(1.0)
    torch.manual_seed(0)
    spec = {"name": "hg1", "kwargs": {"num_channels": 16, "depth": 2, "num_joints": 16}}
    untrained = evaluate_model(build_model({"model": spec}), dataset, cfg, torch.device("cpu"), flip=False)
    assert untrained.summary["AP"] < 0.2


def test_eval_json_that_does_not_fit_ends_in_one_line_naming_it(tmp_path: Path, make_config, small_disk) -> None:
    """``hourglass eval --json`` on a full small file system (a tmpfs, or a file-size limit where mounting is
    refused): one line names the file and the free space; the previous file stays as it was."""
    cfg, path = make_config(eval={"max_samples": 4})
    spec = {"name": "hg1", "kwargs": {"num_channels": 16, "depth": 2, "num_joints": 16}}
    data = CheckpointMeta.from_config(cfg, build_dataset(cfg, "val").skeleton).to_json()["data"]
    ckpt = save_checkpoint(tmp_path / "m.safetensors", build_model({"model": spec}), {"model": spec, "data": data})
    scores = small_disk.folder / "eval.json"
    scores.write_text("previous")
    small_disk.limit(200)  # no page free on the tmpfs; under the limit, files of 200 bytes at most
    status, output = small_disk.hourglass(
        "eval", "--config", str(path), "--checkpoint", str(ckpt), "--json", str(scores)
    )
    out_of_space_line(status, output, scores)
    assert scores.read_text() == "previous"
    assert sorted(p.name for p in small_disk.folder.iterdir()) == ["eval.json"]
