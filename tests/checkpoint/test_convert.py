"""princeton-vl/pytorch_stacked_hourglass import, checked against a faithful re-statement of their PoseNet.

``princeton_net`` (beside this folder) re-states ``models/layers.py`` and ``models/posenet.py`` of that
repository (module names, construction order, forward arithmetic, the channels-last input), so that their
``state_dict()`` has exactly their key names and shapes. Random weights and BatchNorm statistics; every tensor is used.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hourglass.checkpoint.convert import convert_princeton_vl, map_princeton_state, princeton_key
from hourglass.checkpoint.io import read_metadata
from hourglass.checkpoint.load import load_model
from hourglass.errors import CheckpointError
from hourglass.models import create_model
from princeton_net import PoseNet, Residual, randomised


@pytest.fixture(scope="module")
def theirs() -> PoseNet:
    # 2 stacks, full depth 4, narrow (64 channels) and 5 joints to stay fast; 64x64 input.
    return randomised(PoseNet(2, 64, 5))


def _ours_from(state: dict[str, torch.Tensor], depth: int = 4) -> nn.Module:
    model = create_model("hg2", num_joints=5, num_channels=64, depth=depth).eval()
    model.load_state_dict(map_princeton_state(state, model))
    return model


def test_every_tensor_is_used_and_outputs_match(theirs: PoseNet) -> None:
    state = theirs.state_dict()
    model = _ours_from(state)
    used = {princeton_key(k, 4) for k in model.state_dict()}
    unused = set(state) - used
    # The only tensors left out: the skip_layer of every Residual that never uses it (equal widths).
    idle = [name for name, m in theirs.named_modules() if isinstance(m, Residual) and not m.need_skip]
    assert len(idle) == 1 + 2 * 14  # pre.3, and per stack 13 hourglass blocks + 1 feature block
    assert unused == {f"{name}.skip_layer.conv.{p}" for name in idle for p in ("weight", "bias")}
    x = torch.rand(2, 64, 64, 3, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = theirs(x)
        got = model(x.permute(0, 3, 1, 2).contiguous())
    assert got.shape == want.shape == (2, 2, 5, 16, 16)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_depth_is_inferred_and_mapped(tmp_path) -> None:
    small = randomised(PoseNet(1, 32, 3, depth=2), seed=3)
    torch.save(small.state_dict(), tmp_path / "bare.pt")
    path, meta = convert_princeton_vl(tmp_path / "bare.pt", tmp_path / "small.safetensors")
    assert meta.model == "hg1" and meta.skeleton is None
    assert meta.model_kwargs == {"num_joints": 3, "num_channels": 32, "depth": 2, "in_channels": 3}
    model, _ = load_model(path)
    x = torch.rand(1, 32, 32, 3)
    with torch.no_grad():
        torch.testing.assert_close(model(x.permute(0, 3, 1, 2).contiguous()), small(x), rtol=1e-4, atol=1e-4)


def test_their_checkpoint_file_converts(theirs: PoseNet, tmp_path) -> None:
    prefixed = {f"model.module.{k}": v for k, v in theirs.state_dict().items()}
    optimizer = {"state": {}, "param_groups": [{"lr": 2.5e-4, "params": [0, 1]}]}
    torch.save({"state_dict": prefixed, "optimizer": optimizer, "epoch": 7}, tmp_path / "checkpoint.pt")
    out, meta = convert_princeton_vl(tmp_path / "checkpoint.pt", tmp_path / "out" / "hg2.safetensors")
    assert read_metadata(out)["epoch"] == 7
    assert meta.input_size == (256, 256) and meta.skeleton is None  # 5 joints: not MPII
    assert read_metadata(out)["source"]["from"] == "princeton-vl/pytorch_stacked_hourglass"
    model, _ = load_model(out)
    x = torch.rand(1, 64, 64, 3)
    with torch.no_grad():
        torch.testing.assert_close(model(x.permute(0, 3, 1, 2).contiguous()), theirs(x), rtol=1e-4, atol=1e-4)


def test_missing_and_unexpected_tensors_are_named(theirs: PoseNet, tmp_path) -> None:
    state = dict(theirs.state_dict())
    del state["hgs.1.0.low2.low2.low3.conv2.conv.weight"]
    with pytest.raises(CheckpointError, match=r"missing hgs\.1\.0\.low2\.low2\.low3\.conv2\.conv\.weight"):
        _ours_from(state)
    state = dict(theirs.state_dict())
    state["outs.0.extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r"unexpected outs\.0\.extra\.weight"):
        _ours_from(state)
    state = dict(theirs.state_dict())
    state["pre.4.conv1.conv.weight"] = torch.zeros(7, 128, 1, 1)
    with pytest.raises(CheckpointError, match=r"shape mismatch pre\.4\.conv1\.conv\.weight"):
        _ours_from(state)


def test_bad_files(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        convert_princeton_vl(tmp_path / "absent.pt", tmp_path / "x.safetensors")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"junk\.pt"):
        convert_princeton_vl(tmp_path / "junk.pt", tmp_path / "x.safetensors")
    torch.save({"state_dict": {"fc.weight": torch.zeros(2)}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a princeton-vl PoseNet"):
        convert_princeton_vl(tmp_path / "other.pt", tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()
