"""Score tables: a column per joint while that fits the terminal, a row per joint when not."""

from __future__ import annotations

import io
import json
from pathlib import Path

import torch
from rich.console import Console
from typer.testing import CliRunner

from hourglass.checkpoint.io import build_model, save_checkpoint
from hourglass.cli import app, natural_width, pckh_table, score_table
from hourglass.data import MPII_16


def _render(table, width: int) -> str:
    console = Console(file=io.StringIO(), width=width)
    console.print(table)
    return console.file.getvalue()


def test_many_joints_turn_the_table_on_its_side() -> None:
    rows = {"PCK@0.2": {name: 10.0 * i for i, name in enumerate(MPII_16.joint_names)} | {"Total": 55.5}}
    wide = score_table(rows, "pck", width=400)
    assert (wide.row_count, len(wide.columns)) == (1, 18)
    assert natural_width(wide) <= 400
    tall = score_table(rows, "pck", width=80)
    assert (tall.row_count, len(tall.columns)) == (17, 2)
    text = _render(tall, 80)
    assert "…" not in text  # nothing cut: the squeezed wide table showed `1…` in every cell
    for i, name in enumerate(MPII_16.joint_names):
        assert any(name in line and f"{10.0 * i:.2f}" in line for line in text.splitlines()), name
    assert "…" in _render(wide, 80)  # the wide table at 80 columns is what the issue saw


def test_a_table_that_fits_keeps_its_columns() -> None:
    scores = {"Head": 96.0, "Shoulder": 95.0, "Elbow": 89.0, "Wrist": 84.0, "Hip": 88.0, "Knee": 84.0,
              "Ankle": 80.0, "Total": 88.5, "Mean@0.1": 35.2}  # fmt: skip
    table = pckh_table(scores, "PCKh@0.5", width=80)
    assert table.row_count == 1 and natural_width(table) <= 80
    assert pckh_table(scores, "PCKh@0.5", width=40).row_count == 9
    two_sets = score_table({"a": {"x": 1.0, "y": 2.0}, "b": {"y": 3.0}}, width=10)
    assert [c.header for c in two_sets.columns] == ["", "a", "b"] and two_sets.row_count == 2
    assert list(two_sets.columns[2].cells) == ["", "3.00"]  # x has no score in set b: blank


def test_cli_eval_prints_a_custom_skeleton_row_per_joint(tmp_path: Path, make_config) -> None:
    from hourglass.checkpoint.meta import CheckpointMeta
    from hourglass.data.build import build_dataset
    from hourglass.synthetic import write_synthetic

    root = write_synthetic(tmp_path / "coco", 4, format="coco", seed=4, image_size=(64, 64))
    doc = json.loads((root / "annotations.json").read_text())
    doc["categories"][0]["keypoints"] = [f"custom_{n}" for n in doc["categories"][0]["keypoints"]]
    for ann in doc["annotations"]:
        del ann["head_box"]  # no head sizes and no sigmas: scored with PCK@0.2 per joint
    (root / "annotations.json").write_text(json.dumps(doc))
    split = f"{{annotations: {root / 'annotations.json'}, images: {root}}}"
    cfg, cfg_path = make_config(["data.format=coco", f"data.val={split}", "train.amp=none"])
    dataset = build_dataset(cfg, "val")
    torch.manual_seed(0)
    meta = CheckpointMeta.from_config(cfg, dataset.skeleton)
    ckpt = save_checkpoint(tmp_path / "m.safetensors", build_model(meta), meta)
    args = ["eval", "--config", str(cfg_path), "--checkpoint", str(ckpt), "--no-flip"]
    result = CliRunner().invoke(app, [*args, "--set", "data.format=coco", "--set", f"data.val={split}"])
    assert result.exit_code == 0, result.output
    assert "…" not in result.output and max(len(line) for line in result.output.splitlines()) <= 80
    lines = result.output.splitlines()
    for name in doc["categories"][0]["keypoints"]:
        assert sum(name in line for line in lines) == 1, name
