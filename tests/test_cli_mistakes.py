"""A new user's mistakes, through the real command (``python -m hourglass`` in a subprocess): each ends in
exactly one line on stderr, ``error: ...``, that names what was wrong and what to do, exit status 1, no
traceback, and nothing written.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hourglass.checkpoint.io import save_checkpoint
from hourglass.models import create_model

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA = {"input_size": [64, 64], "heatmap_size": [16, 16], "sigma": 1.0, "skeleton": "mpii_16"}


def one_line_error(*args: str, cwd: Path = REPO_ROOT) -> str:
    """stderr of ``hourglass ARGS`` run in ``cwd``, checked to be one ``error:`` line (exit status 1)."""
    proc = subprocess.run(
        [sys.executable, "-m", "hourglass", *args], cwd=cwd, capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained hg1 (16 channels, depth 2) at 64x64, as training saves it."""
    torch.manual_seed(0)
    kwargs = {"num_channels": 16, "depth": 2}
    path = tmp_path_factory.mktemp("mistakes") / "runs" / "mine" / "last.safetensors"
    path.parent.mkdir(parents=True)
    return save_checkpoint(
        path, create_model("hg1", **kwargs), {"model": {"name": "hg1", "kwargs": kwargs}, "data": DATA}
    )


def test_a_misspelt_model_keyword_gets_the_close_one(make_config) -> None:
    _, path = make_config()
    line = one_line_error("train", "--config", str(path), "--set", "model.kwargs.num_chanels=64")
    assert line == "error: unknown model keyword 'num_chanels' for hg1; did you mean 'num_channels'?"
    line = one_line_error("bench", "hg1", "--train", "--set", "num_chanels=128", "--iters", "1", "--batch", "2")
    assert line == "error: unknown model keyword 'num_chanels' for hg1; did you mean 'num_channels'?"
    line = one_line_error("train", "--config", str(path), "--set", "model.kwargs.zzz=1")
    assert line.startswith("error: unknown model keyword 'zzz' for hg1; known: num_stacks, num_joints, num_channels")


def test_summary_with_an_input_size_the_model_cannot_take() -> None:
    line = one_line_error("summary", "hg2", "--input-size", "3", "200", "200")
    assert "(1, 3, 200, 200)" in line and "divisible by 64" in line, line


def test_convert_on_a_file_already_in_our_format(checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "again.safetensors"
    for source in ("auto", "bearpaw", "torch7"):
        line = one_line_error("convert", str(checkpoint), "--out", str(out), "--from", source)
        assert f"{checkpoint}: already a .safetensors checkpoint, nothing to convert" in line, line
        assert f"--checkpoint {checkpoint}" in line
    assert not out.exists()


def test_checkpoint_given_a_folder_names_the_files_in_it(checkpoint: Path, tmp_path: Path) -> None:
    folder = checkpoint.parent
    image = tmp_path / "in" / "a.png"
    image.parent.mkdir()
    import cv2
    import numpy as np

    cv2.imwrite(str(image), np.zeros((64, 64, 3), np.uint8))
    out = tmp_path / "out"
    line = one_line_error("predict", str(image), "--checkpoint", str(folder), "--out", str(out))
    assert line == f"error: {folder}: a folder, not a checkpoint file: pass one of the files in it, e.g. {checkpoint}"
    assert not out.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    line = one_line_error("export", "--checkpoint", str(empty), "--format", "torchscript", "--out", str(out / "m.pt"))
    assert line == f"error: {empty}: a folder, not a checkpoint file and holds no .safetensors file"


def test_a_camera_that_cannot_be_opened(checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "cam"
    line = one_line_error("predict", "--camera", "97", "--checkpoint", str(checkpoint), "--out", str(out))
    assert line.startswith("error: camera 97: cannot be opened (no such device, or in use); check the index"), line
    assert not out.exists()


def test_train_away_from_the_project_root_says_how_to_make_the_data(tmp_path: Path) -> None:
    line = one_line_error("train", "--config", "synthetic-hg1", cwd=tmp_path)
    assert line == (
        "error: data.train.annotations: folder runs/demo/data/train does not exist (looking for "
        f"runs/demo/data/train/annotations.json, relative to {tmp_path}); synthetic figures in this layout are "
        "made by `hourglass synth --out runs/demo/data/train --num 4000 --format mpii --seed 1` (run from the "
        "folder the paths are relative to)"
    )
    assert not (tmp_path / "runs").exists()
    line = one_line_error("train", "--config", "mpii-hg2", cwd=tmp_path)
    assert "data/mpii/annot/train.json" in line and "docs/QUICKSTART.md" in line, line
