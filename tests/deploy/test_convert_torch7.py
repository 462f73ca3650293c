"""Newell's Torch7 models: an nngraph ``gModule`` as pose-hg-train's ``src/models/hg.lua`` builds it, written
with the test serialiser (``t7_writer``), read back by ``torchfile`` and converted.

``hg_lua`` restates ``createModel()`` of ``hg.lua`` node by node (``layers/Residual.lua`` for the
residual module; cudnn convolutions and ReLUs as trained, ``nn`` BatchNorm); the reference output is the
graph itself, evaluated by ``t7_writer.forward`` with Torch7's ``nn`` semantics. Random weights and
BatchNorm statistics.
"""

from __future__ import annotations

import pytest
import torch

from hourglass.deploy.convert import convert_checkpoint, convert_torch7, detect_family
from hourglass.engine.checkpoints import CheckpointError, load_model
from t7_writer import Graph, Params, TorchObject, forward, maxpool, relu, residual, write


def hg_lua(n_stack: int, n_modules: int, n_feats: int, n_parts: int, depth: int = 4, seed: int = 0) -> TorchObject:
    """``createModel()`` of pose-hg-train ``hg.lua`` with ``opt.nStack``, ``opt.nModules``, ``opt.nFeats``."""
    p, g = Params(seed), Graph()

    def hourglass(n, f, inp):
        up1 = inp
        for _ in range(n_modules):
            up1 = g.node(residual(p, f, f), up1)
        low1 = g.node(maxpool(), inp)
        for _ in range(n_modules):
            low1 = g.node(residual(p, f, f), low1)
        if n > 1:
            low2 = hourglass(n - 1, f, low1)
        else:
            low2 = low1
            for _ in range(n_modules):
                low2 = g.node(residual(p, f, f), low2)
        low3 = low2
        for _ in range(n_modules):
            low3 = g.node(residual(p, f, f), low3)
        up2 = g.node(TorchObject("nn.SpatialUpSamplingNearest", scale_factor=2, train=False), low3)
        return g.node(TorchObject("nn.CAddTable", inplace=False, train=False), up1, up2)

    def lin(n_in, n_out, inp):
        conv = g.node(p.conv(n_in, n_out), inp)
        return g.node(relu(), g.node(p.bn(n_out), conv))

    inp = g.node(TorchObject("nn.Identity", train=False))
    cnv1_ = g.node(p.conv(3, 64, 7, 2, 3), inp)
    cnv1 = g.node(relu(), g.node(p.bn(64), cnv1_))
    r1 = g.node(residual(p, 64, 128), cnv1)
    pool = g.node(maxpool(), r1)
    r4 = g.node(residual(p, 128, 128), pool)
    r5 = g.node(residual(p, 128, n_feats), r4)
    out, inter = [], r5
    for i in range(n_stack):
        hg = hourglass(depth, n_feats, inter)
        ll = hg
        for _ in range(n_modules):
            ll = g.node(residual(p, n_feats, n_feats), ll)
        ll = lin(n_feats, n_feats, ll)
        tmp_out = g.node(p.conv(n_feats, n_parts), ll)
        out.append(tmp_out)
        if i < n_stack - 1:
            ll_ = g.node(p.conv(n_feats, n_feats), ll)
            tmp_out_ = g.node(p.conv(n_parts, n_feats), tmp_out)
            inter = g.node(TorchObject("nn.CAddTable", inplace=False, train=False), inter, ll_, tmp_out_)
    return g.module([inp], out)


@pytest.mark.parametrize(("stacks", "modules", "depth"), [(2, 1, 4), (1, 2, 2)])
def test_hg_lua_model_converts_exactly(stacks: int, modules: int, depth: int, tmp_path) -> None:
    theirs = hg_lua(stacks, modules, n_feats=32, n_parts=16, depth=depth, seed=stacks)
    write(tmp_path / "model_1.t7", theirs)
    assert detect_family(tmp_path / "model_1.t7") == "torch7"
    out, meta = convert_checkpoint("auto", tmp_path / "model_1.t7", tmp_path / "model.safetensors")
    assert meta["model"]["name"] == f"hg{stacks}"
    assert meta["data"]["input_size"] == [256, 256] and meta["data"]["skeleton"] == "mpii_16"
    model, _ = load_model(out)
    assert (model.num_stacks, model.depth, model.num_channels) == (stacks, depth, 32)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = torch.stack(forward(theirs, x), dim=1)
        got = model(x)
    assert got.shape == want.shape == (2, stacks, 16, 16, 16)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * want.abs().max().item())


def test_mismatches_are_one_line_and_write_nothing(tmp_path) -> None:
    out = tmp_path / "x.safetensors"
    write(tmp_path / "seq.t7", TorchObject("nn.Sequential", modules=[], train=False))
    with pytest.raises(CheckpointError, match=r"seq\.t7: a Torch7 Sequential, expected an nngraph gModule"):
        convert_torch7(tmp_path / "seq.t7", out)
    write(tmp_path / "three.t7", hg_lua(3, 1, n_feats=16, n_parts=4, depth=1))
    with pytest.raises(CheckpointError, match=r"three\.t7: 3 stacks; presets exist for \[1, 2, 4, 8\]"):
        convert_torch7(tmp_path / "three.t7", out)
    data = (tmp_path / "three.t7").read_bytes()
    (tmp_path / "cut.t7").write_bytes(data[: len(data) // 3])
    for source in ("torch7", "auto"):
        with pytest.raises(CheckpointError, match=r"cut\.t7: not a readable Torch7 file") as err:
            convert_checkpoint(source, tmp_path / "cut.t7", out)
        assert "\n" not in str(err.value)
    torch.save({"pre.0.conv.weight": torch.zeros(1)}, tmp_path / "princeton.pt")
    with pytest.raises(CheckpointError, match=r"princeton\.pt: a PyTorch file, not Torch7"):
        convert_torch7(tmp_path / "princeton.pt", out)
    assert not list(tmp_path.glob("*.safetensors")) and not list(tmp_path.glob(".x.safetensors*"))
