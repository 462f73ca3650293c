"""Typed checkpoint metadata: one JSON form, read back to the same object; old files and bad entries."""

from __future__ import annotations

import pytest

from hourglass.checkpoint.meta import NORMALISATION, CheckpointMeta
from hourglass.data import COCO_17, MPII_16, HeatmapCodec
from hourglass.errors import CheckpointError
from hourglass.models import create_model


def test_json_round_trip_keeps_every_field() -> None:
    meta = CheckpointMeta(
        "hg2",
        {"num_joints": 17, "num_channels": 32},
        codec=HeatmapCodec((256, 192), (64, 48), sigma=1.5, dark=True),
        skeleton=COCO_17,
        data_format="coco",
        step=12,
        epoch=3,
        metrics={"AP": 0.5},
        config={"train": {"seed": 1}},
        source={"from": "somewhere"},
    )
    back = CheckpointMeta.from_json(meta.to_json(), "x.safetensors")
    assert back.to_json() == meta.to_json()
    assert back.codec.dark and back.codec.input_size == (256, 192) and back.skeleton == COCO_17
    assert back.input_size == (256, 192) and back.num_joints == 17


def test_metadata_written_before_the_typed_form_reads_with_defaults() -> None:
    old = {
        "model": {"name": "hg1", "kwargs": {"num_joints": 16}},
        "data": {
            "format": "mpii",
            "input_size": [128, 128],
            "heatmap_size": [32, 32],
            "sigma": 2.0,
            "skeleton": "mpii_16",
        },
        "step": 5,
        "epoch": 1,
        "metrics": {},
    }
    meta = CheckpointMeta.from_json(old, "old.safetensors")
    assert meta.codec.dark is False and meta.normalisation == NORMALISATION and meta.skeleton == MPII_16
    assert meta.step == 5 and meta.data_format == "mpii"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"data": {}}, "needs a 'model' entry"),
        ({"model": {"name": "hg1", "kwargs": [1]}}, "model.kwargs must be an object"),
        ({"model": {"name": "hg1"}, "data": {"input_size": [0, 8]}}, r"x\.safetensors: data: HeatmapCodec"),
        ({"model": {"name": "hg1"}, "data": {"skeleton": "horse"}}, "unknown skeleton 'horse'"),
        ({"model": {"name": "hg1"}, "data": {"normalisation": "bgr/imagenet"}}, "normalisation='bgr/imagenet'"),
    ],
)
def test_bad_entries_name_the_file_and_key(raw: dict, message: str) -> None:
    with pytest.raises(CheckpointError, match=message):
        CheckpointMeta.from_json(raw, "x.safetensors")


def test_codec_and_skeleton_are_required_where_inference_needs_them() -> None:
    bare = CheckpointMeta("hg1", {"num_joints": 17})
    assert bare.input_size == (256, 256)
    with pytest.raises(CheckpointError, match=r"no data\.input_size"):
        bare.require_codec("b.safetensors")
    with pytest.raises(CheckpointError, match=r"no data\.skeleton"):
        bare.require_skeleton("b.safetensors")
    with pytest.raises(CheckpointError, match="predicts 17 joints but skeleton 'mpii_16' has 16"):
        bare.require_skeleton("b.safetensors", "mpii")
    assert bare.require_skeleton("b.safetensors", "coco") == COCO_17


def test_save_checkpoint_accepts_the_json_form_and_checks_it(tmp_path) -> None:
    from hourglass.checkpoint.io import read_meta, save_checkpoint

    net = create_model("hg1", num_channels=16, depth=2, num_joints=4)
    path = save_checkpoint(tmp_path / "m.safetensors", net, {"model": {"name": "hg1", "kwargs": {"num_joints": 4}}})
    assert read_meta(path).model_kwargs == {"num_joints": 4}
    with pytest.raises(CheckpointError, match="needs a 'model' entry"):
        save_checkpoint(tmp_path / "n.safetensors", net, {"model": {}})
    assert not (tmp_path / "n.safetensors").exists()
