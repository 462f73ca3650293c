"""Checkpoints: round trip, atomic writes, refusals of other architectures and of pickles, resume state."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from hourglass.checkpoint.io import (
    build_model,
    load_training_state,
    read_metadata,
    save_checkpoint,
    save_training_state,
    training_state_path,
)
from hourglass.checkpoint.load import load_model
from hourglass.errors import CheckpointError
from hourglass.models import create_model

TINY = {"num_channels": 16, "depth": 2, "num_joints": 4}


def _meta(**kwargs: object) -> dict:
    return {"model": {"name": "hg1", "kwargs": {**TINY, **kwargs}}, "data": {}, "step": 3, "epoch": 0, "metrics": {}}


def test_round_trip_with_a_named_norm_layer(tmp_path: Path) -> None:
    meta = _meta(norm_layer="group")
    net = build_model(meta)
    assert isinstance(net.stem.bn, torch.nn.GroupNorm)
    path = save_checkpoint(tmp_path / "m.safetensors", net, meta)
    loaded, got = load_model(path, expect={"name": "hg1", "num_joints": 4})
    assert got.step == 3 and got.model_kwargs["norm_layer"] == "group"
    x = torch.rand(1, 3, 64, 64)
    assert torch.equal(loaded(x), net.eval()(x))


def test_failed_write_keeps_the_previous_file(tmp_path: Path) -> None:
    net = create_model("hg1", **TINY)
    path = save_checkpoint(tmp_path / "m.safetensors", net, _meta())
    before = path.read_bytes()
    with pytest.raises(CheckpointError):
        save_checkpoint(path, net, {"no": "model"})
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, _FailingModule(), _meta())
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temporary file left behind


class _FailingModule(torch.nn.Module):
    def state_dict(self, *args: object, **kwargs: object) -> dict:  # type: ignore[override]
        raise OSError("disk full")


def test_other_architecture_or_joint_count_is_refused(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "m.safetensors", create_model("hg1", **TINY), _meta())
    with pytest.raises(CheckpointError, match=r"num_joints=4 but 16 was expected"):
        load_model(path, expect={"num_joints": 16})
    with pytest.raises(CheckpointError, match=r"name='hg1' but 'hg2' was expected"):
        load_model(path, expect={"name": "hg2"})


def test_pickled_checkpoint_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(CheckpointError, match="pickled PyTorch checkpoint"):
        load_model(path)
    legacy = tmp_path / "legacy.pt"
    legacy.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(CheckpointError, match="pickled"):
        read_metadata(legacy)


class _RunsCode:
    def __reduce__(self) -> tuple:
        return (os.system, ("echo pwned > /dev/null",))


def test_resume_state_round_trip_and_refuses_code(tmp_path: Path) -> None:
    ckpt = tmp_path / "last.safetensors"
    state_file = training_state_path(ckpt)
    assert state_file.name == "last.state.pt"
    opt = torch.optim.RMSprop(torch.nn.Linear(3, 2).parameters(), lr=2.5e-4)
    state = {"step": 5, "optimizer": opt.state_dict(), "rng": {"torch": torch.get_rng_state()}, "best": None}
    save_training_state(state_file, state)
    got = load_training_state(state_file)
    assert got["step"] == 5 and torch.equal(got["rng"]["torch"], state["rng"]["torch"])

    torch.save({"step": 1, "payload": _RunsCode()}, state_file)
    with pytest.raises(CheckpointError, match="weights_only=True"):
        load_training_state(state_file)
    with pytest.raises(CheckpointError, match="no resume state"):
        load_training_state(tmp_path / "other.state.pt")


def test_a_safetensors_header_length_ending_in_0x80_is_not_taken_for_a_pickle(tmp_path) -> None:
    """The first byte of a safetensors file is the low byte of its header length; 0x80 happens (1 in 256)."""
    path = tmp_path / "x.safetensors"
    path.write_bytes((0x80).to_bytes(8, "little") + b"{" + b" " * 0x7F)  # a header, though not valid JSON
    with pytest.raises(CheckpointError, match=r"not a readable \.safetensors") as err:
        read_metadata(path)
    assert "pickled" not in str(err.value)
    path.write_bytes(b"\x80\x02" + b"\x00" * 16)  # a real pickle still is refused
    with pytest.raises(CheckpointError, match="pickled"):
        read_metadata(path)


def test_metadata_that_lies_about_the_tensors_is_refused_before_allocating(tmp_path: Path) -> None:
    """The demo's file with ``num_channels`` set to 200,000 in its metadata: a 360 GB network if built for real.

    The network is built on the meta device and compared with the header's shapes: one line naming the file
    and a tensor with both shapes, at once, with no memory taken (peak RSS grows by well under a gigabyte).
    """
    import json
    import resource

    path = save_checkpoint(tmp_path / "m.safetensors", create_model("hg1", **TINY), _meta())
    raw = path.read_bytes()
    length = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + length])
    meta = json.loads(header["__metadata__"]["hourglass"])
    meta["model"]["kwargs"]["num_channels"] = 200_000
    header["__metadata__"]["hourglass"] = json.dumps(meta)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + raw[8 + length :])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(CheckpointError) as err:
        load_model(path)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{path}: the metadata's model (hg1 ")
    assert '"num_channels": 200000' in message and "shape mismatch (checkpoint vs model)" in message
    assert "(8,) vs (100000,)" in message  # the file's shape, then the lying metadata's
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 2**20  # KiB: under 1 GiB


def test_load_model_opens_the_file_once(tmp_path: Path, monkeypatch) -> None:
    """One open of the checkpoint gives the header (metadata, shapes) and the tensors (counted on ``open``)."""
    import builtins

    path = save_checkpoint(tmp_path / "m.safetensors", create_model("hg1", **TINY), _meta())
    opened: list[str] = []
    real_open = builtins.open

    def counting_open(file, *args, **kwargs):
        if str(file) == str(path):
            opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    _, meta = load_model(path)
    assert len(opened) == 1 and meta.model == "hg1"
