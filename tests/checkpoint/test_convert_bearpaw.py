"""bearpaw/pytorch-pose import, checked against a re-statement of its ``HourglassNet`` (``bearpaw_net``,
beside this folder: exactly the keys and shapes of the published files)."""

from __future__ import annotations

import pytest
import torch

from bearpaw_net import BEARPAW, Bottleneck, HourglassNet
from hourglass.checkpoint.convert import (
    bearpaw_key,
    convert_bearpaw,
    convert_checkpoint,
    detect_family,
    map_state,
)
from hourglass.checkpoint.io import read_metadata
from hourglass.checkpoint.load import load_model
from hourglass.errors import CheckpointError
from hourglass.models import create_model
from hourglass.models.registry import MPII_RGB_MEAN
from hourglass.models.summary import count_parameters


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
    assert meta.model == "bearpaw-hg2"
    assert meta.model_kwargs["input_mean"] == list(MPII_RGB_MEAN)
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
    assert meta.model == f"bearpaw-{arch}"
    assert meta.model_kwargs["num_blocks"] == blocks
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
    from hourglass.inference.export import export_checkpoint, run_exported

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
