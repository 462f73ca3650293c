"""bearpaw/pytorch-pose import, checked against a re-statement of its ``HourglassNet``.

The classes below re-state ``pose/models/hourglass.py`` of bearpaw/pytorch-pose (module names, construction
order, the pre-activation ``Bottleneck`` with ``expansion = 2``, the recursive forward, the stem whose
``layer2`` widens 128 -> 256): their ``state_dict()`` has exactly the keys and shapes of the published
files (anibali/pytorch-stacked-hourglass's ``bearpaw_hg*.pth``, bearpaw's ``checkpoint.pth.tar``).
``num_feats`` is fixed at 128 in their code; here it is a parameter so one test can run narrow.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hourglass.deploy.convert import (
    bearpaw_key,
    convert_bearpaw,
    convert_checkpoint,
    detect_family,
    map_state,
)
from hourglass.engine.checkpoints import CheckpointError, load_model, read_metadata
from hourglass.engine.inspect import count_parameters
from hourglass.models import create_model
from hourglass.models.registry import MPII_RGB_MEAN


class Bottleneck(nn.Module):
    expansion = 2

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=True)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=True)
        self.bn3 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 2, kernel_size=1, bias=True)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        out = self.conv1(self.relu(self.bn1(x)))
        out = self.conv2(self.relu(self.bn2(out)))
        out = self.conv3(self.relu(self.bn3(out)))
        residual = x if self.downsample is None else self.downsample(x)
        return out + residual


class Hourglass(nn.Module):
    def __init__(self, block, num_blocks, planes, depth):
        super().__init__()
        self.depth = depth
        self.upsample = nn.Upsample(scale_factor=2)  # their nn.UpsamplingNearest2d
        levels = []
        for i in range(depth):
            units = [self._residual(block, num_blocks, planes) for _ in range(4 if i == 0 else 3)]
            levels.append(nn.ModuleList(units))
        self.hg = nn.ModuleList(levels)

    @staticmethod
    def _residual(block, num_blocks, planes):
        return nn.Sequential(*[block(planes * block.expansion, planes) for _ in range(num_blocks)])

    def _forward(self, n, x):
        up1 = self.hg[n - 1][0](x)
        low1 = self.hg[n - 1][1](F.max_pool2d(x, 2, stride=2))
        low2 = self._forward(n - 1, low1) if n > 1 else self.hg[n - 1][3](low1)
        low3 = self.hg[n - 1][2](low2)
        return up1 + self.upsample(low3)

    def forward(self, x):
        return self._forward(self.depth, x)


class HourglassNet(nn.Module):
    def __init__(self, block, num_stacks=2, num_blocks=4, num_classes=16, num_feats=128):
        super().__init__()
        self.inplanes = 64
        self.num_feats = num_feats
        self.num_stacks = num_stacks
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=True)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_residual(block, self.inplanes, 1)
        self.layer2 = self._make_residual(block, self.inplanes, 1)
        self.layer3 = self._make_residual(block, self.num_feats, 1)
        self.maxpool = nn.MaxPool2d(2, stride=2)
        ch = self.num_feats * block.expansion
        hg, res, fc, score, fc_, score_ = [], [], [], [], [], []
        for i in range(num_stacks):
            hg.append(Hourglass(block, num_blocks, self.num_feats, 4))
            res.append(self._make_residual(block, self.num_feats, num_blocks))
            fc.append(nn.Sequential(nn.Conv2d(ch, ch, kernel_size=1, bias=True), nn.BatchNorm2d(ch), self.relu))
            score.append(nn.Conv2d(ch, num_classes, kernel_size=1, bias=True))
            if i < num_stacks - 1:
                fc_.append(nn.Conv2d(ch, ch, kernel_size=1, bias=True))
                score_.append(nn.Conv2d(num_classes, ch, kernel_size=1, bias=True))
        self.hg = nn.ModuleList(hg)
        self.res = nn.ModuleList(res)
        self.fc = nn.ModuleList(fc)
        self.score = nn.ModuleList(score)
        self.fc_ = nn.ModuleList(fc_)
        self.score_ = nn.ModuleList(score_)

    def _make_residual(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, kernel_size=1, stride=stride, bias=True)
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        out = []
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer1(x)
        x = self.maxpool(x)
        x = self.layer3(self.layer2(x))
        for i in range(self.num_stacks):
            y = self.fc[i](self.res[i](self.hg[i](x)))
            score = self.score[i](y)
            out.append(score)
            if i < self.num_stacks - 1:
                x = x + self.fc_[i](y) + self.score_[i](score)
        return out


# Their hg1, hg2, hg4, hg8: (num_stacks, num_blocks).
BEARPAW = {"hg1": (1, 8), "hg2": (2, 4), "hg4": (4, 2), "hg8": (8, 1)}


def _theirs(arch: str, randomise, seed: int = 0, **kwargs) -> HourglassNet:
    torch.manual_seed(seed)
    stacks, blocks = BEARPAW[arch]
    return randomise(HourglassNet(Bottleneck, num_stacks=stacks, num_blocks=blocks, **kwargs), seed)


def _normalised(images: torch.Tensor) -> torch.Tensor:
    """Their ``color_normalize``: subtract the MPII mean per channel (no division)."""
    return images - torch.tensor(MPII_RGB_MEAN).view(1, 3, 1, 1)


@pytest.mark.parametrize("arch", sorted(BEARPAW))
def test_every_tensor_maps_with_its_shape(arch: str) -> None:
    """At full width, each preset holds exactly their tensors: same count, every key found, same shapes."""
    stacks, blocks = BEARPAW[arch]
    with torch.device("meta"):
        theirs = HourglassNet(Bottleneck, num_stacks=stacks, num_blocks=blocks)
        ours = create_model(f"bearpaw-{arch}")
    assert count_parameters(ours) == count_parameters(theirs)
    state = theirs.state_dict()
    mapped = map_state(state, ours, lambda k: bearpaw_key(k, 4, blocks), arch, "bearpaw")
    assert set(mapped) == set(ours.state_dict())
    assert len(mapped) == len(state)


def test_full_width_hg2_heatmaps_match(randomise, tmp_path) -> None:
    """anibali's ``bearpaw_hg2-*.pth`` layout (a bare state dict): converted heatmaps equal theirs."""
    theirs = _theirs("hg2", randomise)
    torch.save(theirs.state_dict(), tmp_path / "bearpaw_hg2-a1b2c3d4.pth")
    assert detect_family(tmp_path / "bearpaw_hg2-a1b2c3d4.pth") == "bearpaw"
    out, meta = convert_checkpoint("auto", tmp_path / "bearpaw_hg2-a1b2c3d4.pth", tmp_path / "hg2.safetensors")
    assert meta["model"]["name"] == "bearpaw-hg2"
    assert meta["model"]["kwargs"]["input_mean"] == list(MPII_RGB_MEAN)
    model, _ = load_model(out)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = torch.stack(theirs(_normalised(x)), dim=1)
        got = model(x)  # raw [0, 1] RGB: the converted model subtracts the mean itself
    assert got.shape == want.shape == (2, 2, 16, 16, 16)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * want.abs().max().item())


@pytest.mark.parametrize("arch", ["hg1", "hg8"])
def test_their_checkpoint_file_converts(arch: str, randomise, tmp_path) -> None:
    """bearpaw's own ``checkpoint.pth.tar``: DataParallel ``module.`` keys beside epoch, arch, optimizer."""
    theirs = _theirs(arch, randomise, seed=2, num_classes=16, num_feats=16)
    state = {f"module.{k}": v for k, v in theirs.state_dict().items()}
    optimizer = {"state": {}, "param_groups": [{"lr": 2.5e-4, "params": list(range(3))}]}
    blob = {"epoch": 91, "arch": "hg", "state_dict": state, "best_acc": 0.88, "optimizer": optimizer}
    torch.save(blob, tmp_path / "checkpoint.pth.tar")
    out, meta = convert_bearpaw(tmp_path / "checkpoint.pth.tar", tmp_path / "out.safetensors")
    stacks, blocks = BEARPAW[arch]
    assert meta["model"]["name"] == f"bearpaw-{arch}"
    assert meta["model"]["kwargs"]["num_blocks"] == blocks
    assert read_metadata(out)["epoch"] == 91
    model, _ = load_model(out)
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        want = torch.stack(theirs(_normalised(x)), dim=1)
        got = model(x)
    assert got.shape == (1, stacks, 16, 16, 16)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * want.abs().max().item())


def test_mismatches_are_one_line_and_write_nothing(randomise, tmp_path) -> None:
    out = tmp_path / "x.safetensors"
    theirs = _theirs("hg2", randomise, num_classes=16, num_feats=16)
    good = theirs.state_dict()

    # A stack count without a preset.
    three = {k: v for k, v in good.items()}
    for k, v in good.items():
        if k.startswith(("hg.1.", "res.1.", "fc.1.", "score.1.")):
            three[k.replace(".1.", ".2.", 1)] = v
    torch.save(three, tmp_path / "three.pth")
    with pytest.raises(CheckpointError, match=r"three\.pth: 3 stacks; bearpaw presets exist for \[1, 2, 4, 8\]"):
        convert_bearpaw(tmp_path / "three.pth", out)

    # A stack missing its tensors.
    torch.save({k: v for k, v in good.items() if not k.startswith("fc_.0.")}, tmp_path / "holed.pth")
    with pytest.raises(CheckpointError, match=r"holed\.pth: bearpaw weights do not fit: missing fc_\.0\.weight"):
        convert_bearpaw(tmp_path / "holed.pth", out)

    # A file of another family, and a truncated one.
    torch.save({"pre.0.conv.weight": torch.zeros(64, 3, 7, 7)}, tmp_path / "princeton.pt")
    with pytest.raises(CheckpointError, match=r"princeton\.pt: not a bearpaw .*looks like a princeton-vl file"):
        convert_bearpaw(tmp_path / "princeton.pt", out)
    data = (tmp_path / "three.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    for source in ("bearpaw", "auto"):
        with pytest.raises(CheckpointError, match=r"cut\.pth: cannot read") as err:
            convert_checkpoint(source, tmp_path / "cut.pth", out)
        assert "\n" not in str(err.value)
    assert list(tmp_path.glob("x.safetensors*")) == [] and not list(tmp_path.glob(".x.safetensors*"))


def test_pickle_that_needs_code_is_refused(tmp_path) -> None:
    torch.save({"state_dict": {"conv1.weight": torch.zeros(1)}, "args": Bottleneck}, tmp_path / "code.pth.tar")
    with pytest.raises(CheckpointError, match=r"code\.pth\.tar: cannot read as a weights-only"):
        convert_bearpaw(tmp_path / "code.pth.tar", tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


def test_exported_file_carries_the_normalisation(randomise, tmp_path) -> None:
    """An ONNX export (BatchNorm folded) takes [0, 1] RGB: the mean subtraction is part of the graph."""
    from hourglass.deploy.export import export_checkpoint, run_exported

    torch.manual_seed(4)  # one stack of single blocks: export time grows with the number of layers
    theirs = randomise(HourglassNet(Bottleneck, num_stacks=1, num_blocks=1, num_feats=16), 4)
    torch.save(theirs.state_dict(), tmp_path / "bearpaw_hg1.pth")
    path, _ = convert_bearpaw(tmp_path / "bearpaw_hg1.pth", tmp_path / "hg1.safetensors")
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        want = theirs(_normalised(x))[-1].numpy()
    result = export_checkpoint(path, "onnx", tmp_path / "hg1.onnx", input_size=(64, 64))
    got = run_exported("onnx", result.path, x.numpy())
    scale = float(abs(want).max())
    assert abs(got - want).max() < 1e-4 * scale
