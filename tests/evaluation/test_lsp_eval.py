"""LSP splits are scored with PCK@0.2 of the torso: a perfect network on small files (LSP's own and COCO-format),
and ``hourglass eval`` of the real LSPet model on held-out LSPet photos and on a whole other file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
import yaml
from test_evaluate import Oracle  # tests/evaluation is on sys.path (pytest's default import mode, no __init__.py)
from typer.testing import CliRunner

from hourglass.cli import app
from hourglass.config import load_config
from hourglass.data import LSP_14
from hourglass.data.build import build_dataset
from hourglass.evaluation.evaluate import evaluate_model
from hourglass.metrics import LSP_COLUMNS
from lsp_files import people, write_lsp


def _recipe(ann: Path, val: Path | None = None, holdout: int = 0) -> dict:
    """The real LSPet model's settings (hg1, 128 channels, 128x128 input, 32x32 heatmaps) on an LSP file."""
    val = val or ann
    return {
        "model": {"name": "hg1", "kwargs": {"num_channels": 128}},
        "data": {"format": "lsp", "holdout": holdout, "input_size": [128, 128], "heatmap_size": [32, 32],
                 "sigma": 1.5, "num_workers": 0,
                 "train": {"annotations": str(ann), "images": str(ann.parent / "images")},
                 "val": {"annotations": str(val), "images": str(val.parent / "images")}},
        "train": {"amp": "none", "best_metric": "pck@0.2"},
        "eval": {"batch_size": 50},
    }  # fmt: skip


def _write(path: Path, recipe: dict) -> Path:
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_perfect_heatmaps_score_100_and_people_without_a_torso_are_counted(tmp_path: Path) -> None:
    flags = np.ones((6, 14))
    flags[2, 9] = 0  # no left shoulder: no torso
    flags[4, [0, 5]] = 0  # unlabelled ankles: not scored
    ann = write_lsp(tmp_path / "lspet", people(6), flags)
    cfg = load_config(_write(tmp_path / "r.yaml", _recipe(ann)))
    dataset = build_dataset(cfg, "val")
    result = evaluate_model(Oracle(dataset), dataset, cfg, torch.device("cpu"), flip=True)
    assert result.kind == "lsp" and result.unscored == 1
    assert result.summary == {"pck@0.2": 100.0}
    assert tuple(result.table["PCK@0.2 (torso)"]) == LSP_COLUMNS


def test_a_coco_format_file_with_the_lsp_joints_is_scored_the_lsp_way(tmp_path: Path) -> None:
    """The shared LSPet model was trained from such a file: its category's joint names are recognised as LSP_14."""
    pytest.importorskip("pycocotools")
    xy = people(4, seed=3)
    ann = write_lsp(tmp_path / "lspet", xy, np.ones((4, 14)))
    images = [{"id": i, "file_name": f"im{i + 1:05d}.jpg", "width": 90, "height": 120} for i in range(4)]
    annotations = [
        {"id": i + 1, "image_id": i, "category_id": 1, "iscrowd": 0, "area": 4000.0, "num_keypoints": 14,
         "bbox": [float(p[:, 0].min()), float(p[:, 1].min()), float(np.ptp(p[:, 0])), float(np.ptp(p[:, 1]))],
         "keypoints": np.concatenate([p, np.full((14, 1), 2.0)], axis=1).ravel().tolist()}
        for i, p in enumerate(xy - 1)
    ]  # fmt: skip
    doc = {"images": images, "annotations": annotations, "categories": [LSP_14.to_coco_category()]}
    (tmp_path / "lspet" / "coco.json").write_text(json.dumps(doc))
    recipe = _recipe(ann)
    recipe["data"].update(format="coco", val={"annotations": str(tmp_path / "lspet" / "coco.json"),
                                              "images": str(tmp_path / "lspet" / "images")})  # fmt: skip
    cfg = load_config(_write(tmp_path / "c.yaml", recipe))
    dataset = build_dataset(cfg, "val")
    assert dataset.skeleton is LSP_14
    result = evaluate_model(Oracle(dataset), dataset, cfg, torch.device("cpu"), flip=False)
    assert result.kind == "lsp" and result.summary["pck@0.2"] == 100.0


def test_hourglass_eval_of_the_real_lspet_model_on_held_out_photos(
    tmp_path: Path, lspet_dir: Path, lspet_model: Path
) -> None:
    """The first 200 of the 1,000 held-out records (8000-8199, im08001-im08200), with flip test. The model saw these
    photos in training (it was trained on all 9,000: its README); it scores 55.0 here on the AMD EPYC, near its README's
    56.7% on training photos. The band [45, 65] catches a broken metric: the same predictions score 76.6 normalised by
    the box (the looser measure) and 31.2 with left and right swapped."""
    ann = lspet_dir / "joints.mat"
    recipe = _write(tmp_path / "lspet.yaml", _recipe(ann, holdout=1000))
    out = tmp_path / "eval.json"
    args = ["eval", "--config", str(recipe), "--checkpoint", str(lspet_model), "--set", "eval.max_samples=200"]
    result = CliRunner().invoke(app, [*args, "--json", str(out)])
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text())
    flags = scipy.io.loadmat(ann)["joints"][:, 2, 8000:8200]
    assert record["kind"] == "lsp" and record["records"] == 200 and record["flip"] is True
    assert record["unscored"] == int((~((flags[9] == 1) & (flags[2] == 1))).sum())  # no left shoulder or right hip
    assert 45.0 <= record["summary"]["pck@0.2"] <= 65.0
    table = record["table"]["PCK@0.2 (torso)"]
    assert table["Mean"] == record["summary"]["pck@0.2"] and min(table.values()) > 25.0
    printed = " ".join(result.output.split())  # the title may wrap
    assert "PCK@0.2 (torso)" in printed and f"lsp ({record['unscored']} people without a torso, not scored)" in printed


def test_hourglass_eval_scores_the_whole_of_another_file(tmp_path: Path, lspet_dir: Path, lspet_model: Path) -> None:
    """``--set data.val.annotations=OTHER.mat --set data.val.images=OTHER/`` scores all of OTHER, whatever the
    recipe holds out: here 12 real LSPet photos whose 14 joints are all labelled, written in the original LSP's
    layout (x, y, 0 = visible)."""
    raw = scipy.io.loadmat(lspet_dir / "joints.mat")["joints"]
    chosen = [i for i in range(8000, 8100) if raw[:, 2, i].all()][:12]
    photos = [lspet_dir / "images" / f"im{i + 1:05d}.jpg" for i in chosen]
    other = write_lsp(tmp_path / "lsp", raw[:, :2, chosen].transpose(2, 0, 1), np.zeros((12, 14)), "lsp", photos=photos)
    recipe = _write(tmp_path / "lspet.yaml", _recipe(lspet_dir / "joints.mat", holdout=1000))
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(
        app,
        ["eval", "--config", str(recipe), "--checkpoint", str(lspet_model), "--json", str(out),
         "--set", f"data.val.annotations={other}", "--set", f"data.val.images={other.parent / 'images'}"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text())
    assert record["records"] == 12 and record["unscored"] == 0 and record["annotations"] == str(other)
    assert 30.0 <= record["summary"]["pck@0.2"] <= 90.0
