"""CLI paths no other test reaches: ``list-models``, ``eval --json``, the ``eval-mpii`` table, export and bench flags.

Each runs the real command (typer's runner, in process) on small files the test writes, and checks that
the flag changed what was computed or written, not only that the command exited 0.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from hourglass.checkpoint.io import save_checkpoint
from hourglass.cli import app
from hourglass.models import create_model, list_models
from hourglass.synthetic import write_synthetic

SPEC = {"name": "hg2", "kwargs": {"num_channels": 16, "depth": 2, "num_joints": 16}}
DATA = {"input_size": [64, 64], "heatmap_size": [16, 16], "sigma": 1.0}


def run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained 2-stack, 16-channel, 16-joint model at 64x64: the commands, not the weights, are under test."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("cli") / "hg2.safetensors"
    return save_checkpoint(path, create_model(SPEC["name"], **SPEC["kwargs"]), {"model": SPEC, "data": DATA})


def test_list_models_prints_every_preset() -> None:
    assert run("list-models").split() == list_models()


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A recipe whose val split is 4 synthetic MPII-format figures."""
    root = tmp_path_factory.mktemp("eval")
    val = write_synthetic(root / "val", 4, format="mpii", seed=3, image_size=(64, 64))
    split = {"annotations": str(val / "annotations.json"), "images": str(val)}
    cfg = {
        "model": {"name": SPEC["name"], "kwargs": {k: v for k, v in SPEC["kwargs"].items() if k != "num_joints"}},
        "data": {"format": "mpii", "train": split, "val": split, "num_workers": 0, **DATA},
        "train": {"amp": "none", "channels_last": False},
        "eval": {"batch_size": 4},
    }
    path = root / "recipe.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_eval_json_writes_where_asked_and_prints_the_same_scores(config, checkpoint, tmp_path: Path) -> None:
    flip_json, plain_json = tmp_path / "flip" / "scores.json", tmp_path / "plain.json"
    out = run("eval", "--config", str(config), "--checkpoint", str(checkpoint), "--json", str(flip_json))
    assert f"scores written to {flip_json}" in " ".join(out.split())
    assert not (checkpoint.parent / "eval.json").exists()  # --json replaced the default place
    saved = json.loads(flip_json.read_text())
    assert saved["flip"] is True and saved["records"] == 4 and saved["checkpoint"] == str(checkpoint)
    for row in saved["table"].values():  # the printed table shows the saved numbers
        for value in row.values():
            assert f"{value:.2f}" in out
    run("eval", "--config", str(config), "--checkpoint", str(checkpoint), "--no-flip", "--json", str(plain_json))
    plain = json.loads(plain_json.read_text())
    assert plain["flip"] is False and plain["table"].keys() == saved["table"].keys()


def test_eval_mpii_table_shows_the_json_scores(mpii_eval_dir: Path) -> None:
    files = [
        "--preds",
        str(mpii_eval_dir / "preds_bearpaw_hg_s8_b1.mat"),
        "--gt",
        str(mpii_eval_dir / "mpii_val_gt.mat"),
    ]
    scores = json.loads(run("eval-mpii", *files, "--json"))
    table = run("eval-mpii", *files, "--protocol", "bearpaw", "--threshold", "0.5")
    bearpaw = json.loads(run("eval-mpii", *files, "--protocol", "bearpaw", "--json"))
    assert "PCKh@0.5 (bearpaw)" in table
    for name in ("Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Total"):
        assert name in table and f"{bearpaw[name]:.2f}" in table
    assert bearpaw["Total"] != scores["Total"]  # --protocol reached the computation (88.64 vs 89.09)


def test_export_flags_change_the_export(checkpoint, tmp_path: Path) -> None:
    base = ["export", "--checkpoint", str(checkpoint), "--format", "torchscript"]
    out = run(*base, "--out", str(tmp_path / "a.pt"), "--input-size", "48", "48", "--all-stacks", "--no-fold")
    assert "output (3, 2, 16, 12, 12)" in out  # 3 samples, both stacks, 48 / 4 = 12
    kept = torch.jit.load(str(tmp_path / "a.pt"))
    assert kept(torch.rand(1, 3, 48, 48)).shape == (1, 2, 16, 12, 12)
    batchnorms = sum("BatchNorm" in m.original_name for m in kept.modules())

    out = run(*base, "--out", str(tmp_path / "b.pt"))
    assert "output (3, 16, 16, 16)" in out  # the checkpoint's 64x64, the last stack only
    folded = torch.jit.load(str(tmp_path / "b.pt"))
    # folding removes the BatchNorms that follow a convolution (each block's input one stays; see fold.py)
    assert 0 < sum("BatchNorm" in m.original_name for m in folded.modules()) < batchnorms / 2


def test_bench_flags_reach_the_measurement(checkpoint) -> None:
    """One run with every flag (the peak measurement alone takes seconds); ``--json`` is tested beside the bench."""
    args = ["bench", str(checkpoint), "--backend", "openvino", "--precision", "bf16", "--batch", "2"]
    text = run(*args, "--input-size", "32", "32", "--iters", "2", "--accuracy", "2", "--no-fold")
    assert f"{checkpoint}: openvino bf16, batch 2, 32x32, BatchNorm kept" in " ".join(text.split())
    assert re.search(r"latency\s+[\d.]+ ms median", text) and "throughput" in text
    peak = r"peak\s+[\d.]+ GFLOP/s \(3x3 conv, bf16, (torch|openvino); median of 5 rounds, [\d.]+-[\d.]+\); share"
    assert re.search(peak, text)
    official = r"accuracy\s+PCKh@0.5 \(official, 14 joints\) [\d.]+ vs fp32 eager [\d.]+ .*\(2 validation figures\)"
    assert re.search(official, " ".join(text.split()))


SIZED = {
    "summary": lambda ckpt, out: ["summary", "hg1", "--depth", "1"],
    "probe": lambda ckpt, out: ["probe", "hg1", "--layer", "stem"],
    "export": lambda ckpt, out: ["export", "--checkpoint", str(ckpt), "--format", "torchscript", "--out", str(out)],
    "bench": lambda ckpt, out: ["bench", str(ckpt), "--iters", "1"],
    "bench --train": lambda ckpt, out: ["bench", "hg1", "--train", "--set", "num_channels=16", "--iters", "1"],
}


@pytest.mark.parametrize("numbers", [["256"], ["1", "3", "64", "64"], []], ids=["one", "four", "none"])
@pytest.mark.parametrize("command", list(SIZED))
def test_input_size_of_a_wrong_count_is_one_line(command: str, numbers: list[str], checkpoint, tmp_path) -> None:
    out = tmp_path / "model.pt"
    result = CliRunner().invoke(app, [*SIZED[command](checkpoint, out), "--input-size", *numbers])
    assert result.exit_code == 1, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"error: input size '{' '.join(numbers)}': expected H W (or C H W, C = 3 for this model)")
    assert line.endswith(f"got {len(numbers)} number{'' if len(numbers) == 1 else 's'}") and not out.exists()


@pytest.mark.parametrize("command", list(SIZED))
def test_input_size_forms_are_in_each_help_and_a_wrong_channel_count_is_one_line(command, checkpoint, tmp_path) -> None:
    boxed = run(command.split()[0], "--help")
    help_text = " ".join(re.sub("[│╭╮╰╯─]", " ", boxed).split())  # rich's panel, unwrapped
    assert "--input-size [C] H W" in help_text and "or C H W with C the model's channels" in help_text
    result = CliRunner().invoke(app, [*SIZED[command](checkpoint, tmp_path / "m.pt"), "--input-size", "1", "64", "64"])
    assert result.exit_code == 1
    assert (
        result.output.strip() == "error: input size '1 64 64': C = 1 but the model takes 3 channels; give H W or 3 H W"
    )
    result = CliRunner().invoke(app, [*SIZED[command](checkpoint, tmp_path / "m.pt"), "--input-size", "64x64"])
    assert result.exit_code == 1
    assert result.output.strip() == "error: --input-size 64x64: expected whole numbers, H W or C H W"


def test_input_size_takes_h_w_or_c_h_w_alike(checkpoint, tmp_path: Path) -> None:
    """``summary`` and ``probe`` (C H W so far) read H W too; ``export`` (H W) reads C H W too, as ``bench`` and
    ``bench --train`` do (the same reading, tested in tests/inference/test_bench_cli.py and tests/training)."""
    hw, chw = (
        run("summary", "hg1", "--depth", "1", "--input-size", *size) for size in (["64", "128"], ["3", "64", "128"])
    )
    assert hw == chw and "Input size: 3 x 64 x 128" in hw
    assert run("probe", "hg1", "--layer", "stem", "--input-size", "64", "64") == "stem\t(1, 256, 16, 16)\n"
    base = ["export", "--checkpoint", str(checkpoint), "--format", "torchscript", "--out", str(tmp_path / "a.pt")]
    assert "output (3, 16, 12, 12)" in run(*base, "--input-size", "3", "48", "48")


def test_version_is_the_installed_distributions() -> None:
    from importlib.metadata import version

    import hourglass

    assert run("--version").strip() == f"hourglass-pose {version('hourglass-pose')}"
    assert hourglass.__version__ == version("hourglass-pose")


@pytest.mark.parametrize("numbers", [["64"], ["3", "64", "64"], []], ids=["one", "three", "none"])
def test_synth_image_size_of_a_wrong_count_is_one_line(numbers: list[str], tmp_path: Path) -> None:
    out = tmp_path / "figures"
    result = CliRunner().invoke(app, ["synth", "--out", str(out), "--num", "1", "--image-size", *numbers])
    assert result.exit_code == 1, result.output
    n = len(numbers)
    want = f"error: synth: --image-size '{' '.join(numbers)}': expected H W, got {n} number{'s' * (n != 1)}"
    assert result.output.strip() == want
    assert not out.exists()
    assert run("synth", "--out", str(out), "--num", "1", "--image-size", "48", "64").startswith("wrote 1 images")
