"""COCO-format loading through pycocotools: synth output, exclusions, detections, custom keypoint sets."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from hourglass.data import COCO_17, MPII_16, COCOKeypoints, DataError, HeatmapCodec

CODEC = HeatmapCodec((128, 128), (32, 32))


def edited(src: Path, dst: Path, edit) -> Path:
    doc = json.loads((src / "annotations.json").read_text())
    edit(doc)
    path = dst / "annotations.json"
    path.write_text(json.dumps(doc))
    return path


def test_synth_coco_reads_back(synth_coco: Path) -> None:
    ds = COCOKeypoints(synth_coco / "annotations.json", synth_coco, codec=CODEC)
    doc = json.loads((synth_coco / "annotations.json").read_text())
    assert ds.skeleton is MPII_16 and len(ds) == len(doc["annotations"])
    ann, rec = doc["annotations"][3], ds.records[3]
    kps = np.array(ann["keypoints"]).reshape(16, 3)
    np.testing.assert_array_equal(rec.visible, kps[:, 2] > 0)
    np.testing.assert_array_equal(rec.occluded, kps[:, 2] == 1)
    np.testing.assert_allclose(rec.keypoints[rec.visible > 0], kps[kps[:, 2] > 0, :2])
    hb = ann["head_box"]
    assert rec.head_size == pytest.approx(0.6 * np.hypot(hb[2] - hb[0], hb[3] - hb[1]))
    x, y, w, h = ann["bbox"]
    np.testing.assert_allclose(rec.center, [x + w / 2, y + h / 2])
    np.testing.assert_allclose(rec.scale, np.full(2, max(w, h) / 200 * 1.25))
    s = ds[3]
    assert s["image"].shape == (3, 128, 128) and s["weights"].sum() > 0


def test_crowd_and_keypointless_people_are_excluded(synth_coco: Path, tmp_path: Path) -> None:
    def edit(doc: dict) -> None:
        doc["annotations"][0]["iscrowd"] = 1
        doc["annotations"][1]["keypoints"] = [0] * 48
        doc["annotations"][1]["num_keypoints"] = 0

    ds = COCOKeypoints(edited(synth_coco, tmp_path, edit), synth_coco, codec=CODEC)
    assert [r.image_id for r in ds.records][:2] == [2, 3]


def test_detections_replace_ground_truth_boxes(synth_coco: Path, tmp_path: Path) -> None:
    dets = [
        {"image_id": 0, "category_id": 1, "bbox": [10, 10, 50, 80], "score": 0.9},
        {"image_id": 1, "category_id": 1, "bbox": [5, 5, 40, 40], "score": 0.1},
    ]
    path = tmp_path / "dets.json"
    path.write_text(json.dumps(dets))
    ds = COCOKeypoints(synth_coco / "annotations.json", synth_coco, codec=CODEC, detections=path, min_score=0.5)
    assert len(ds) == 1 and ds.records[0].score == 0.9 and ds.records[0].visible.sum() == 0
    assert ds[0]["weights"].sum() == 0
    path.write_text(json.dumps([{"image_id": 99, "bbox": [0, 0, 5, 5], "score": 1.0}]))
    with pytest.raises(DataError, match=r"dets\.json: detection 0: image_id 99 is not in the annotation file"):
        COCOKeypoints(synth_coco / "annotations.json", synth_coco, codec=CODEC, detections=path)


def test_custom_keypoint_category(tmp_path: Path) -> None:
    """Any COCO-format keypoint dataset works: a three-joint 'arm' category with its own names."""
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((40, 60, 3), np.uint8))
    doc = {
        "images": [{"id": 5, "file_name": "a.png", "width": 60, "height": 40}],
        "categories": [{"id": 3, "name": "arm", "keypoints": ["left_hand", "elbow", "right_hand"],
                        "skeleton": [[1, 2], [2, 3]]}],
        "annotations": [{"id": 1, "image_id": 5, "category_id": 3, "iscrowd": 0, "bbox": [10, 5, 30, 20],
                         "area": 600, "num_keypoints": 2, "keypoints": [12, 8, 2, 20, 10, 1, 0, 0, 0]}],
    }  # fmt: skip
    (tmp_path / "arm.json").write_text(json.dumps(doc))
    ds = COCOKeypoints(tmp_path / "arm.json", tmp_path, codec=HeatmapCodec((32, 32), (8, 8), 1.0))
    assert ds.skeleton.flip_index == (2, 1, 0) and ds.skeleton.num_joints == 3
    s = ds[0]
    assert s["heatmaps"].shape == (3, 8, 8) and s["weights"].tolist() == [1, 1, 0]
    assert s["meta"]["occluded"].tolist() == [0, 1, 0]


def test_coco_person_category_gets_coco_17(tmp_path: Path) -> None:
    doc = {"images": [], "annotations": [], "categories": [COCO_17.to_coco_category()]}
    (tmp_path / "p.json").write_text(json.dumps(doc))
    assert COCOKeypoints(tmp_path / "p.json").skeleton is COCO_17


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"keypoints": [1, 2, 2] * 15}, r"annotation id 1 \(image 0\): 45 keypoint values, expected 48"),
        ({"bbox": [5, 5, 0, 10]}, r"annotation id 1 \(image 0\): box of zero size"),
        ({"keypoints": [float("nan"), 2, 2] * 16}, "labelled keypoints contain NaN"),
    ],
)
def test_bad_annotations_are_named(synth_coco: Path, tmp_path: Path, change: dict, message: str) -> None:
    path = edited(synth_coco, tmp_path, lambda doc: doc["annotations"][0].update(change))
    with pytest.raises(DataError, match=message):
        COCOKeypoints(path, synth_coco, codec=CODEC)


def test_not_a_keypoint_file(tmp_path: Path) -> None:
    (tmp_path / "d.json").write_text(json.dumps({"images": [], "annotations": [], "categories": [{"id": 1}]}))
    with pytest.raises(DataError, match=r"d\.json: no category \(any\) with a 'keypoints' list"):
        COCOKeypoints(tmp_path / "d.json")


def test_mpii_only_use_runs_without_pycocotools(tmp_path: Path) -> None:
    """pycocotools is imported where COCO files are read: writing and loading MPII-format data, training and
    evaluating work where it is missing (e.g. a GPU machine's preinstalled environment)."""
    import subprocess
    import sys

    d = tmp_path / "d"
    code = (
        "import sys; sys.modules['pycocotools'] = sys.modules['pycocotools.coco'] = None\n"
        "import hourglass.cli, hourglass.training.loop, hourglass.evaluation.evaluate\n"
        "from hourglass.data import HeatmapCodec, MPIIDataset\n"
        "from hourglass.synthetic import write_synthetic\n"
        f"write_synthetic({str(d)!r}, 2, format='mpii')\n"
        f"ds = MPIIDataset({str(d / 'annotations.json')!r}, {str(d)!r}, HeatmapCodec((64, 64)))\n"
        "assert len(ds) == 2 and ds[0]['image'].shape == (3, 64, 64)\n"
        "from hourglass.data.coco import load_coco\n"
        "try:\n    load_coco('x.json')\nexcept ImportError:\n    print('coco needs pycocotools')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "coco needs pycocotools" in proc.stdout
