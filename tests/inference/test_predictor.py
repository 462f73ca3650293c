"""Predictor: real checkpoints and image files, geometry back to image pixels, bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from hourglass.data import HeatmapCodec, Skeleton
from hourglass.inference.predictor import Predictor
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
    from hourglass.evaluation.evaluate import predict_keypoints
    from hourglass.synthetic.figures import write_synthetic

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


def test_box_names_stay_importable_from_here_and_the_driver_is_not() -> None:
    """Box choice moved to ``people/boxes.py`` and stays importable from here; the predict driver moved up to
    ``hourglass.predict``, which imports this module, so this module no longer hands out its names (that
    re-export was an import circle)."""
    from hourglass.inference import predictor
    from hourglass.people import boxes

    for name in ("BOX_THRESHOLD", "NMS_THRESHOLD", "box_iou", "box_problem", "read_boxes", "suppress_overlaps"):
        assert getattr(predictor, name) is getattr(boxes, name)
    for name in ("PredictReport", "collect_inputs", "predict_files"):
        assert not hasattr(predictor, name)
