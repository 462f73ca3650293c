"""Newell's Torch7 models: an nngraph ``gModule`` as pose-hg-train's ``src/models/hg.lua`` builds it, written
with the test serialiser (``t7_writer``), read back by ``torchfile`` and converted.

``t7_writer.hg_lua`` restates ``createModel()`` of ``hg.lua`` node by node (``layers/Residual.lua`` for the
residual module; cudnn convolutions and ReLUs as trained, ``nn`` BatchNorm); the reference output is the
graph itself, evaluated by ``t7_writer.forward`` with Torch7's ``nn`` semantics. Random weights and
BatchNorm statistics.
"""

from __future__ import annotations

import pytest
import torch

from hourglass.checkpoint.convert import convert_checkpoint, convert_torch7, detect_family
from hourglass.checkpoint.load import load_model
from hourglass.errors import CheckpointError
from t7_writer import TorchObject, forward, hg_lua, write


@pytest.mark.parametrize(("stacks", "modules", "depth"), [(2, 1, 4), (1, 2, 2)])
def test_hg_lua_model_converts_exactly(stacks: int, modules: int, depth: int, tmp_path) -> None:
    theirs = hg_lua(stacks, modules, n_feats=32, n_parts=16, depth=depth, seed=stacks)
    write(tmp_path / "model_1.t7", theirs)
    assert detect_family(tmp_path / "model_1.t7") == "torch7"
    out, meta = convert_checkpoint("auto", tmp_path / "model_1.t7", tmp_path / "model.safetensors")
    assert meta.model == f"hg{stacks}"
    assert meta.input_size == (256, 256) and meta.skeleton is not None and meta.skeleton.name == "mpii_16"
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
