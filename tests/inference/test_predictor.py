"""Predictor and ``hourglass predict``: real checkpoints and image files, geometry back to image pixels, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from hourglass.checkpoint.io import save_checkpoint
from hourglass.cli import app
from hourglass.data import DataError, HeatmapCodec, Skeleton
from hourglass.inference.predictor import (
    BOX_THRESHOLD,
    NMS_THRESHOLD,
    Predictor,
    box_iou,
    box_problem,
    predict_files,
    read_boxes,
    suppress_overlaps,
)
from hourglass.inference.runtimes import create_runtime
from hourglass.models import create_model

REPO_ROOT = Path(__file__).resolve().parents[2]
INPUT = (128, 64)  # (H, W) of the `checkpoint` fixture (tests/conftest.py): non-square


def _photo(h: int = 90, w: int = 70, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)


def test_checkpoint_predictor_shapes_and_bounds(checkpoint: Path, tmp_path: Path) -> None:
    predictor = Predictor.from_checkpoint(checkpoint)
    assert predictor.codec.input_size == INPUT and predictor.skeleton.name == "mpii_16"
    rgb = _photo()
    cv2.imwrite(str(tmp_path / "p.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    kp_file, _ = predictor(tmp_path / "p.png")
    kp, sc = predictor(rgb)
    assert kp.shape == (1, 16, 2) and sc.shape == (1, 16)
    np.testing.assert_allclose(kp_file, kp)  # the file is read as RGB, like the array
    # the whole-image crop maps the input onto the image: keypoints fall inside it (70/64 > 90/128: x spans it)
    assert (kp[..., 0] >= -1).all() and (kp[..., 0] <= 70).all()
    kp2, _ = predictor(rgb, boxes=[[5, 5, 30, 40], [20, 30, 40, 50]])
    assert kp2.shape == (2, 16, 2)


class BlobReader(nn.Module):
    """A network whose heatmap of joint k is channel k of the crop sampled every 4th pixel.

    Heatmap pixel ``i`` is then crop pixel ``4 i``, the codec's convention, so an image with a Gaussian blob
    per channel gives exactly the heatmaps the codec would encode for the blobs' positions.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, ::4, ::4]


def _blob_image(points: np.ndarray, sigma: float, size: tuple[int, int] = (150, 200)) -> np.ndarray:
    ys, xs = np.mgrid[0 : size[0], 0 : size[1]]
    image = np.zeros((*size, 3))
    for k, (x, y) in enumerate(points):
        image[..., k] = np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2))
    return np.round(image * 255).astype(np.uint8)


@pytest.mark.parametrize("flip", [False, True])
def test_keypoints_map_back_to_image_pixels(flip: bool) -> None:
    """Blobs at known image positions come back at those positions through crop, decode and inverse affine."""
    skeleton = Skeleton.from_coco_category({"name": "three", "keypoints": ["a", "b", "c"]})  # no left/right
    codec = HeatmapCodec((64, 64), (16, 16), sigma=2.0, dark=True)
    box = np.array([60.0, 30.0, 80.0, 80.0])  # crop of 100 px (padding 1.25) onto 64: zoom 0.64
    zoom = 64 / (80 * 1.25)
    truth = np.array([[85.3, 52.1], [117.8, 70.4], [96.2, 91.7]])
    image = _blob_image(truth, sigma=2.0 * 4 / zoom)  # 2 heatmap px = 8 crop px = 12.5 image px
    runtime = create_runtime(BlobReader(), backend="eager", input_size=(64, 64))
    predictor = Predictor(runtime, codec, skeleton, flip=flip)
    kp, scores = predictor(image, boxes=[box])
    # DARK decodes an exact Gaussian to within a few hundredths of a heatmap pixel; the flip test's
    # one-pixel shift (exact offset: 0.75 px) moves the average by 1/8 heatmap pixel
    tol = (0.3 if flip else 0.1) * 4 / zoom
    np.testing.assert_allclose(kp[0], truth, atol=tol)
    assert (scores > 0.9).all()


def test_box_problems_are_named() -> None:
    assert box_problem([10, 10, 20, 20], 100, 80) is None
    assert box_problem([-30, -10, 40, 40], 100, 80) is None  # partly outside: fine
    assert "zero size" in box_problem([10, 10, 0, 20], 100, 80)
    assert "outside the 100x80 image" in box_problem([100, 10, 5, 5], 100, 80)
    assert "outside" in box_problem([-10, -10, 10, 10], 100, 80)
    assert "non-finite" in box_problem([np.nan, 0, 5, 5], 100, 80)


def test_predictor_refuses_bad_boxes_and_images(checkpoint: Path, tmp_path: Path) -> None:
    predictor = Predictor.from_checkpoint(checkpoint)
    with pytest.raises(ValueError, match=r"image 0: box 1 .* has zero size"):
        predictor(_photo(), boxes=[[0, 0, 10, 10], [5, 5, 10, 0]])
    (tmp_path / "c.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    with pytest.raises(ValueError, match=r"image .*c\.jpg is unreadable"):
        predictor(tmp_path / "c.jpg")
    with pytest.raises(ValueError, match=r"unsupported file type '.gif'"):
        predictor(tmp_path / "x.gif")
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8 RGB"):
        predictor(np.zeros((10, 10, 3), np.float32))


def _write(path: Path, rgb: np.ndarray) -> None:
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def test_predict_files_boxes_heatmaps_and_failures(checkpoint: Path, tmp_path: Path) -> None:
    images = tmp_path / "in"
    images.mkdir()
    _write(images / "000000000042.png", _photo(seed=1))
    _write(images / "b.jpg", _photo(seed=2))
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (images / "notes.txt").write_text("not an image, ignored in a folder")
    dets = [
        {"image_id": 42, "category_id": 1, "bbox": [5, 5, 40, 60], "score": 0.8},
        {"image_id": 42, "category_id": 1, "bbox": [40, 40, 25, 45], "score": 0.5},
        {"image_id": 42, "category_id": 1, "bbox": [10, 10, 0, 50], "score": 0.5},
        {"image_id": "b", "category_id": 1, "bbox": [300, 300, 10, 10], "score": 0.9},
    ]
    (tmp_path / "dets.json").write_text(json.dumps(dets))
    out = tmp_path / "out"
    report = predict_files(
        [images], checkpoint, out, tmp_path / "dets.json", batch_size=1, heatmaps=True, progress=False
    )
    assert report.images == 2 and report.people == 2
    named = ["000000000042.png", "b.jpg", "broken.png"]
    assert len(report.failures) == len(named)
    assert all(str(images / name) in failure for failure, name in zip(report.failures, named, strict=True))
    assert "zero size" in report.failures[0] and "outside" in report.failures[1]
    results = json.loads((out / "keypoints.json").read_text())
    assert [r["image_id"] for r in results] == [42, 42]
    assert all(len(r["keypoints"]) == 16 * 3 for r in results)
    assert results[0]["score"] == pytest.approx(0.8 * np.mean(results[0]["keypoints"][2::3]), abs=1e-4)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["000000000042.person0.heatmaps.png", "000000000042.person1.heatmaps.png", "000000000042.png",
                     "b.png", "keypoints.json"]  # fmt: skip
    assert cv2.imread(str(out / "000000000042.png")).shape == (90, 70, 3)


def test_read_boxes_errors(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('{"image_id": 1}')
    with pytest.raises(ValueError, match=r"a.json: expected a JSON list"):
        read_boxes(tmp_path / "a.json")
    (tmp_path / "b.json").write_text('[{"image_id": 1, "bbox": [1, 2, 3]}]')
    with pytest.raises(ValueError, match=r"b.json: detection 0: bbox \[1, 2, 3\] is not \[x, y, w, h\]"):
        read_boxes(tmp_path / "b.json")
    with pytest.raises(ValueError, match=r"c\.json: no such detections file"):
        read_boxes(tmp_path / "c.json")


def test_cli_bad_checkpoint_keeps_previous_outputs(tmp_path: Path) -> None:
    _write(tmp_path / "a.png", _photo())
    out = tmp_path / "out"
    out.mkdir()
    (out / "keypoints.json").write_text("previous")
    result = CliRunner().invoke(
        app, ["predict", str(tmp_path / "a.png"), "--checkpoint", str(tmp_path / "no.safetensors"), "--out", str(out)]
    )
    assert result.exit_code == 1 and "no.safetensors: no such checkpoint file" in result.output
    assert "Traceback" not in result.output
    assert (out / "keypoints.json").read_text() == "previous"


def test_cli_subprocess_reports_corrupt_file_and_exits_nonzero(checkpoint: Path, tmp_path: Path) -> None:
    _write(tmp_path / "good.png", _photo())
    (tmp_path / "bad.jpg").write_bytes(b"definitely not a jpeg")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "hourglass", "predict", str(tmp_path / "good.png"), str(tmp_path / "bad.jpg")]
    cmd += ["--checkpoint", str(checkpoint), "--out", str(out), "--batch-size", "4"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert "bad.jpg is unreadable" in proc.stderr and "Traceback" not in proc.stderr
    results = json.loads((out / "keypoints.json").read_text())
    assert len(results) == 1 and results[0]["image_id"] == "good"
    assert sorted(p.name for p in out.iterdir()) == ["good.png", "keypoints.json"]


def test_import_hourglass_stays_light() -> None:
    code = (
        "import sys, hourglass; "
        "assert 'hourglass.inference.predictor' not in sys.modules and 'cv2' not in sys.modules; "
        "assert hourglass.Predictor.__name__ == 'Predictor'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT, timeout=120)


def test_predictor_agrees_with_evaluation_on_dataset_boxes(tmp_path: Path) -> None:
    """Same network, same boxes: Predictor on image files gives the keypoints that evaluation computes."""
    from hourglass.data.coco import COCOKeypoints
    from hourglass.data.synthetic import write_synthetic
    from hourglass.evaluation.evaluate import predict_keypoints

    root = write_synthetic(tmp_path / "figs", 3, "coco", image_size=(96, 128))
    codec = HeatmapCodec((64, 64), (16, 16), sigma=2.0)
    dataset = COCOKeypoints(root / "annotations.json", root, codec)
    torch.manual_seed(1)
    model = create_model("hg1", num_joints=16, num_channels=32).eval()
    expected, expected_scores = predict_keypoints(
        model, dataset, codec, dataset.skeleton.flip_index, torch.device("cpu")
    )

    def runtime(images: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(images))[:, -1].numpy()

    predictor = Predictor(runtime, codec, dataset.skeleton, flip=True, batch_size=2)
    files = [root / r.image_file for r in dataset.records]
    poses = predictor.predict(files, [r.bbox[None] for r in dataset.records])
    np.testing.assert_allclose(np.concatenate([p.keypoints for p in poses]), expected, atol=1e-3)
    np.testing.assert_allclose(np.concatenate([p.scores for p in poses]), expected_scores, atol=1e-4)


def test_network_of_another_joint_count_is_named() -> None:
    from hourglass.data import MPII_16

    predictor = Predictor(
        create_runtime(BlobReader(), backend="eager", input_size=(64, 64)), HeatmapCodec((64, 64)), MPII_16
    )
    with pytest.raises(ValueError, match=r"heatmaps of shape \(2, 3, 16, 16\), expected \(2, 16, 16, 16\)"):
        predictor(_photo())


def test_suppress_overlaps_is_greedy_by_score() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 10, 10], [20, 20, 5, 5], [0, 0, 10, 10], [6, 0, 10, 10]], float)
    scores = np.array([0.5, 0.9, 0.4, 0.5, 0.6])
    # 1 (0.9) removes 0 and 3 (IoU 9/11); 4 (0.6) overlaps 1 by 5/15 = 0.33 > 0.3; 2 overlaps nothing
    assert suppress_overlaps(boxes, scores, 0.3).tolist() == [1, 2]
    assert suppress_overlaps(boxes, scores, 0.4).tolist() == [1, 4, 2]
    assert sorted(suppress_overlaps(boxes, scores, 1.0).tolist()) == [0, 1, 2, 3, 4]  # 1 keeps everything
    assert suppress_overlaps(np.zeros((0, 4)), np.zeros(0)).tolist() == []
    np.testing.assert_allclose(box_iou([0, 0, 10, 10], boxes[[1, 2, 4]]), [90 / 110, 0.0, 40 / 160])


def test_cli_threshold_defaults_are_the_library_ones() -> None:
    import inspect

    from hourglass.cli import predict as predict_cmd

    defaults = {name: p.default for name, p in inspect.signature(predict_cmd).parameters.items()}
    assert (defaults["box_threshold"], defaults["nms_threshold"]) == (BOX_THRESHOLD, NMS_THRESHOLD)


@pytest.fixture(scope="module")
def coco_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained 17-joint hg1 (COCO skeleton, 32x32 input): enough to run prediction on real photos."""
    torch.manual_seed(0)
    kwargs = {"num_joints": 17, "num_channels": 16, "depth": 2}
    meta = {
        "model": {"name": "hg1", "kwargs": kwargs},
        "data": {"input_size": [32, 32], "heatmap_size": [8, 8], "sigma": 2.0, "skeleton": "coco_17"},
    }
    return save_checkpoint(tmp_path_factory.mktemp("coco") / "hg1.safetensors", create_model("hg1", **kwargs), meta)


def test_predict_real_coco_photos_with_detector_boxes(
    real_samples_dir: Path, coco_checkpoint: Path, tmp_path: Path
) -> None:
    """The 4 COCO photos with a detector's 118 boxes: low scores dropped, duplicates suppressed, people kept."""
    coco = real_samples_dir / "coco"
    dets = json.loads((coco / "test_coco_det_AP_H_56.json").read_text())
    truth = json.loads((coco / "test_coco.json").read_text())
    out = tmp_path / "out"
    args = ["predict", str(coco), "--checkpoint", str(coco_checkpoint), "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--boxes", str(coco / "test_coco_det_AP_H_56.json")])
    assert result.exit_code == 0, result.output
    results = json.loads((out / "keypoints.json").read_text())
    above = [d for d in dets if d["score"] > BOX_THRESHOLD]
    # docs/PREDICT.md's counts: of 118 boxes, 85 score <= 0.3, 14 of the other 33 overlap a better one, 19 are kept
    assert (len(dets), len(dets) - len(above), len(above) - len(results), len(results)) == (118, 85, 14, 19)
    printed = " ".join(result.output.split())  # rich may wrap the line
    assert "boxes: 118 for these inputs, 85 scoring <= 0.3 and 14 overlapping a better one (IoU > 0.3)" in printed
    assert "19 people in 4 images" in printed
    for image in truth["images"]:
        mine = [r for r in results if r["image_id"] == image["id"]]
        boxes = np.array([r["bbox"] for r in mine])
        for i, box in enumerate(boxes):  # no two kept boxes of one photo overlap by more than the NMS threshold
            assert (box_iou(box, np.delete(boxes, i, axis=0)) <= NMS_THRESHOLD).all()
        for ann in (a for a in truth["annotations"] if a["image_id"] == image["id"]):
            assert box_iou(ann["bbox"], boxes).max() > 0.4, f"annotation {ann['id']} lost its person"
        overlay = cv2.imread(str(out / Path(image["file_name"]).with_suffix(".png")))
        assert overlay.shape == (image["height"], image["width"], 3)
    assert all(len(r["keypoints"]) == 17 * 3 for r in results)


def test_predict_files_with_another_backend_and_int8(checkpoint: Path, tmp_path: Path) -> None:
    """``hourglass predict --backend onnxruntime`` gives eager's keypoints; ``--backend openvino --precision
    int8`` is calibrated on the input images and runs; int8 with videos only is refused, naming why."""
    images = tmp_path / "in"
    images.mkdir()
    for seed in range(3):
        _write(images / f"p{seed}.png", _photo(seed=seed))

    def keypoints(name: str, *args: str) -> np.ndarray:
        cmd = ["predict", str(images), "--checkpoint", str(checkpoint), "--out", str(tmp_path / name), *args]
        result = CliRunner().invoke(app, cmd)
        assert result.exit_code == 0, result.output
        found = json.loads((tmp_path / name / "keypoints.json").read_text())
        return np.array([r["keypoints"] for r in found]).reshape(len(found), 16, 3)

    eager = keypoints("eager")
    onnx = keypoints("onnx", "--backend", "onnxruntime")
    np.testing.assert_allclose(onnx, eager, atol=1e-3)
    int8 = keypoints("int8", "--backend", "openvino", "--precision", "int8")
    assert int8.shape == eager.shape == (3, 16, 3)
    assert np.corrcoef(int8[..., 2].ravel(), eager[..., 2].ravel())[0, 1] > 0.9  # joint scores follow fp32's
    (tmp_path / "clip.mp4").write_bytes(b"not decoded: the refusal comes first")
    with pytest.raises(DataError, match="int8 is calibrated on the input images"):
        predict_files([tmp_path / "clip.mp4"], checkpoint, tmp_path / "v", backend="openvino", precision="int8")
