"""princeton-vl/pytorch_stacked_hourglass import, checked against a faithful re-statement of their PoseNet.

The classes below re-state ``models/layers.py`` and ``models/posenet.py`` of that repository (module
names, construction order, forward arithmetic, the channels-last input), so that their ``state_dict()``
has exactly their key names and shapes. Random weights and BatchNorm statistics; every tensor is used.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hourglass.checkpoint.convert import convert_princeton_vl, map_princeton_state, princeton_key
from hourglass.checkpoint.io import load_model, read_metadata
from hourglass.errors import CheckpointError
from hourglass.models import create_model


class Conv(nn.Module):
    def __init__(self, inp_dim, out_dim, kernel_size=3, stride=1, bn=False, relu=True):
        super().__init__()
        self.inp_dim = inp_dim
        self.conv = nn.Conv2d(inp_dim, out_dim, kernel_size, stride, padding=(kernel_size - 1) // 2, bias=True)
        self.relu = nn.ReLU() if relu else None
        self.bn = nn.BatchNorm2d(out_dim) if bn else None

    def forward(self, x):
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        if self.relu is not None:
            x = self.relu(x)
        return x


class Residual(nn.Module):
    def __init__(self, inp_dim, out_dim):
        super().__init__()
        self.relu = nn.ReLU()
        self.bn1 = nn.BatchNorm2d(inp_dim)
        self.conv1 = Conv(inp_dim, int(out_dim / 2), 1, relu=False)
        self.bn2 = nn.BatchNorm2d(int(out_dim / 2))
        self.conv2 = Conv(int(out_dim / 2), int(out_dim / 2), 3, relu=False)
        self.bn3 = nn.BatchNorm2d(int(out_dim / 2))
        self.conv3 = Conv(int(out_dim / 2), out_dim, 1, relu=False)
        self.skip_layer = Conv(inp_dim, out_dim, 1, relu=False)
        self.need_skip = inp_dim != out_dim

    def forward(self, x):
        residual = self.skip_layer(x) if self.need_skip else x
        out = self.conv1(self.relu(self.bn1(x)))
        out = self.conv2(self.relu(self.bn2(out)))
        out = self.conv3(self.relu(self.bn3(out)))
        return out + residual


class Hourglass(nn.Module):
    def __init__(self, n, f, bn=None, increase=0):
        super().__init__()
        nf = f + increase
        self.up1 = Residual(f, f)
        self.pool1 = nn.MaxPool2d(2, 2)
        self.low1 = Residual(f, nf)
        self.n = n
        self.low2 = Hourglass(n - 1, nf, bn=bn) if n > 1 else Residual(nf, nf)
        self.low3 = Residual(nf, f)
        self.up2 = nn.Upsample(scale_factor=2, mode="nearest")

    def forward(self, x):
        up1 = self.up1(x)
        low3 = self.low3(self.low2(self.low1(self.pool1(x))))
        return up1 + F.interpolate(low3, size=up1.shape[2:], mode="nearest")


class Merge(nn.Module):
    def __init__(self, x_dim, y_dim):
        super().__init__()
        self.conv = Conv(x_dim, y_dim, 1, relu=False, bn=False)

    def forward(self, x):
        return self.conv(x)


class PoseNet(nn.Module):
    def __init__(self, nstack, inp_dim, oup_dim, bn=False, increase=0, depth=4):
        super().__init__()
        self.nstack = nstack
        self.pre = nn.Sequential(
            Conv(3, 64, 7, 2, bn=True, relu=True),
            Residual(64, 128),
            nn.MaxPool2d(2, 2),
            Residual(128, 128),
            Residual(128, inp_dim),
        )
        self.hgs = nn.ModuleList([nn.Sequential(Hourglass(depth, inp_dim, bn, increase)) for _ in range(nstack)])
        self.features = nn.ModuleList(
            [
                nn.Sequential(Residual(inp_dim, inp_dim), Conv(inp_dim, inp_dim, 1, bn=True, relu=True))
                for _ in range(nstack)
            ]
        )
        self.outs = nn.ModuleList([Conv(inp_dim, oup_dim, 1, relu=False, bn=False) for _ in range(nstack)])
        self.merge_features = nn.ModuleList([Merge(inp_dim, inp_dim) for _ in range(nstack - 1)])
        self.merge_preds = nn.ModuleList([Merge(oup_dim, inp_dim) for _ in range(nstack - 1)])

    def forward(self, imgs):
        x = imgs.permute(0, 3, 1, 2)
        x = self.pre(x)
        combined = []
        for i in range(self.nstack):
            hg = self.hgs[i](x)
            feature = self.features[i](hg)
            preds = self.outs[i](feature)
            combined.append(preds)
            if i < self.nstack - 1:
                x = x + self.merge_preds[i](preds) + self.merge_features[i](feature)
        return torch.stack(combined, 1)


def _randomised(net: nn.Module, seed: int = 0) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            elif name.endswith(("bn.weight", "bn1.weight", "bn2.weight", "bn3.weight")):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=gen) * 0.1)
    return net.eval()


@pytest.fixture(scope="module")
def theirs() -> PoseNet:
    # 2 stacks, full depth 4, narrow (64 channels) and 5 joints to stay fast; 64x64 input.
    return _randomised(PoseNet(2, 64, 5))


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
    small = _randomised(PoseNet(1, 32, 3, depth=2), seed=3)
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
