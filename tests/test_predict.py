"""``hourglass predict`` on image files: outputs and their names, reported problems, what is refused, the last line.

Real checkpoints and image files through the real command (typer's runner in process, or a subprocess).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from hourglass.checkpoint.io import save_checkpoint
from hourglass.cli import app
from hourglass.models import create_model
from hourglass.people.boxes import BOX_THRESHOLD, NMS_THRESHOLD, box_iou
from hourglass.predict import predict_files
from small_disk import out_of_space_line

REPO_ROOT = Path(__file__).resolve().parents[2]


def _photo(h: int = 90, w: int = 70, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)


def _predict(checkpoint: Path, out: str | Path, *inputs: str | Path, options: tuple[str, ...] = ()) -> object:
    args = ["predict", *map(str, inputs), "--checkpoint", str(checkpoint), "--out", str(out), *options]
    return CliRunner().invoke(app, args)


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
    printed = " ".join(result.output.split())
    line = "boxes: 118 for these inputs, 85 scoring <= 0.3 and 14 overlapping a better one (IoU > 0.3) dropped"
    assert line in result.output.splitlines(), result.output  # one line, also at CliRunner's 80 columns
    assert "19 people in 4 images" in printed
    best_iou, matched = [], set()  # the best IoU of each annotated person with a kept box; those boxes
    for image in truth["images"]:
        mine = [r for r in results if r["image_id"] == image["id"]]
        boxes = np.array([r["bbox"] for r in mine])
        for i, box in enumerate(boxes):  # no two kept boxes of one photo overlap by more than the NMS threshold
            assert (box_iou(box, np.delete(boxes, i, axis=0)) <= NMS_THRESHOLD).all()
        for ann in (a for a in truth["annotations"] if a["image_id"] == image["id"]):
            ious = box_iou(ann["bbox"], boxes)
            best_iou.append(ious.max())
            matched.add((image["id"], int(ious.argmax())))
            assert best_iou[-1] > 0.4, f"annotation {ann['id']} lost its person"
        overlay = cv2.imread(str(out / Path(image["file_name"]).with_suffix(".png")))
        assert overlay.shape == (image["height"], image["width"], 3)
    assert all(len(r["keypoints"]) == 17 * 3 for r in results)
    # docs/PREDICT.md: a kept box of its own around each of the 14 annotated people (IoU 0.47 to 0.97), 5 others
    assert len(best_iou) == len(matched) == 14 and len(results) - len(matched) == 5
    assert (round(min(best_iou), 2), round(max(best_iou), 2)) == (0.47, 0.97)


def test_inputs_that_all_fail_write_nothing_and_say_so(checkpoint: Path, tmp_path: Path) -> None:
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "out"
    result = _predict(checkpoint, out, tmp_path / "bad.png", tmp_path / "bad.jpg")
    assert result.exit_code == 1, result.output
    assert "bad.png is unreadable" in result.output and "bad.jpg is unreadable" in result.output
    assert result.output.splitlines()[-1] == "0 people in 0 images: nothing written"
    assert not out.exists() or list(out.iterdir()) == []  # no empty keypoints.json


@pytest.mark.parametrize("name", ["notes.txt", "missing.png"])
def test_an_unsupported_input_is_refused_like_a_missing_one(checkpoint: Path, tmp_path: Path, name: str) -> None:
    (tmp_path / "notes.txt").write_text("not an image")
    _write(tmp_path / "good.png", _photo())
    out = tmp_path / "out"
    alone = _predict(checkpoint, out, tmp_path / name)
    assert alone.exit_code == 1 and "Traceback" not in alone.output
    assert f"error: no input images: {tmp_path / name}: " in alone.output
    assert not out.exists()  # stopped before anything, as a missing file does
    beside = _predict(checkpoint, out, tmp_path / "good.png", tmp_path / name)
    assert beside.exit_code == 1 and f"error: {tmp_path / name}: " in beside.output
    assert sorted(p.name for p in out.iterdir()) == ["good.png", "keypoints.json"]
    assert [r["file_name"] for r in json.loads((out / "keypoints.json").read_text())] == [str(tmp_path / "good.png")]


def _checksums(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_an_out_folder_holding_the_inputs_is_refused(checkpoint: Path, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    _write(photos / "a.png", _photo(seed=1))
    _write(photos / "b.jpg", _photo(seed=2))
    before = _checksums(photos)
    for inputs, options in (([photos], ()), ([photos / "b.jpg"], ()), ([photos], ("--frames",))):
        result = _predict(checkpoint, photos, *inputs, options=options)
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert f"error: --out {photos} holds inputs of this run" in result.output
        assert "overlays would replace them" in result.output
        assert _checksums(photos) == before  # nothing replaced, nothing added
    result = _predict(checkpoint, photos / "poses", photos)  # a folder inside it is fine
    assert result.exit_code == 0, result.output
    assert _checksums(photos / "poses").keys() == {"a.png", "b.png", "keypoints.json"}
    assert _checksums(photos) == before


def test_inputs_sharing_a_name_get_their_own_names_and_image_ids(checkpoint: Path, tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        _write(tmp_path / folder / "x.png", _photo(seed=len(folder)))
    _write(tmp_path / "a" / "000000000042.png", _photo(seed=3))
    _write(tmp_path / "b" / "000000000042.jpg", _photo(seed=4))
    inputs = [tmp_path / "a" / "x.png", tmp_path / "b" / "x.png", tmp_path / "a" / "000000000042.png"]
    inputs.append(tmp_path / "b" / "000000000042.jpg")
    out = tmp_path / "out"
    report = predict_files(inputs, checkpoint, out, progress=False)
    assert report.failures == [] and report.notes == []
    results = json.loads((out / "keypoints.json").read_text())
    assert [(r["image_id"], r["file_name"]) for r in results] == [
        ("x", str(inputs[0])), ("x-2", str(inputs[1])), (42, str(inputs[2])), ("000000000042-2", str(inputs[3]))
    ]  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == ["000000000042-2.png", "000000000042.png", "keypoints.json",
                                                     "x-2.png", "x.png"]  # fmt: skip
    # with boxes, both x.png match the detections of image_id "x": they keep that id, and a note says so
    (tmp_path / "dets.json").write_text(json.dumps([{"image_id": "x", "bbox": [5, 5, 40, 60], "score": 0.9}]))
    report = predict_files(inputs[:2], checkpoint, tmp_path / "boxed", tmp_path / "dets.json", progress=False)
    results = json.loads((tmp_path / "boxed" / "keypoints.json").read_text())
    assert [r["image_id"] for r in results] == ["x", "x"] and report.people == 2
    assert report.notes == [f"{inputs[1]}: written as x-2.png (the name 'x' is taken); its boxes are those of 'x' "
                            f"in {tmp_path / 'dets.json'}, as for the first one"]  # fmt: skip


def test_the_last_line_names_the_files_written_without_a_double_slash(checkpoint: Path, tmp_path: Path) -> None:
    _write(tmp_path / "good.png", _photo())
    out = tmp_path / "poses"
    result = _predict(checkpoint, f"{out}/", tmp_path / "good.png")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == f"1 people in 1 images -> {out}/keypoints.json and 1 more files in {out}"
    assert "//" not in result.output


def test_predictions_that_do_not_fit_end_in_one_line_naming_the_file(
    checkpoint: Path, tmp_path: Path, small_disk
) -> None:
    """``hourglass predict`` on a small file system (a tmpfs, or a file-size limit where mounting is refused):
    an overlay that does not fit, then a ``keypoints.json`` that does not (12 people in a small picture whose
    overlay does fit), each end the run with one line naming the file and the free space, and leave no
    temporary file behind."""
    _write(tmp_path / "noise.png", _photo(90, 70))  # its overlay is 19 kB: noise does not compress
    _write(tmp_path / "small.png", _photo(24, 24))  # its overlay is 1.7 kB, its keypoints.json 6 kB
    (tmp_path / "dets.json").write_text(json.dumps([{"image_id": "small", "bbox": [2, 2, 20, 20], "score": 0.9}] * 12))
    out = small_disk.folder / "out"
    args = ("--checkpoint", str(checkpoint), "--out", str(out))
    small_disk.limit(8_000)
    out_of_space_line(*small_disk.hourglass("predict", str(tmp_path / "noise.png"), *args), out / "noise.png")
    assert list(out.iterdir()) == []
    small_disk.limit(4_500)  # one page of the tmpfs
    boxes = ("--boxes", str(tmp_path / "dets.json"), "--nms-threshold", "1")  # 1: every box is kept
    out_of_space_line(
        *small_disk.hourglass("predict", str(tmp_path / "small.png"), *args, *boxes), out / "keypoints.json"
    )
    assert sorted(p.name for p in out.iterdir()) == ["small.png"]


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory: pytest.TempPathFactory, randomise) -> Path:
    """hg1 with 16 channels at 64x64 (16 MPII joints), BatchNorm randomised (folding is then no no-op):
    small enough to export and quantise in seconds."""
    torch.manual_seed(0)
    kwargs = {"num_joints": 16, "num_channels": 16}
    meta = {
        "model": {"name": "hg1", "kwargs": kwargs},
        "data": {"input_size": [64, 64], "heatmap_size": [16, 16], "sigma": 1.0, "skeleton": "mpii_16"},
    }
    model = randomise(create_model("hg1", **kwargs))
    return save_checkpoint(tmp_path_factory.mktemp("small") / "hg1.safetensors", model, meta)


def test_predict_with_onnxruntime_and_with_int8_calibrated_on_the_inputs(
    small_checkpoint: Path, tmp_path: Path, one_torch_thread
) -> None:
    """``--backend onnxruntime`` gives eager's keypoints; ``--backend openvino --precision int8``, calibrated on
    the input images, gives joint scores that follow eager's; int8 with no readable image among the inputs, or
    with videos only, is refused in one line before anything is written."""
    images = tmp_path / "in"
    images.mkdir()
    for seed in range(3):
        _write(images / f"p{seed}.png", _photo(seed=seed))

    def keypoints(name: str, *options: str) -> np.ndarray:
        result = _predict(small_checkpoint, tmp_path / name, images, options=options)
        assert result.exit_code == 0, result.output
        found = json.loads((tmp_path / name / "keypoints.json").read_text())
        return np.array([r["keypoints"] for r in found]).reshape(len(found), 16, 3)

    eager = keypoints("eager", "--backend", "eager", "--precision", "fp32")
    np.testing.assert_allclose(keypoints("onnx", "--backend", "onnxruntime"), eager, atol=1e-3)
    int8 = keypoints("int8", "--backend", "openvino", "--precision", "int8")
    assert int8.shape == eager.shape == (3, 16, 3)
    assert np.corrcoef(int8[..., 2].ravel(), eager[..., 2].ravel())[0, 1] > 0.9  # joint scores follow fp32's
    moved = np.abs(int8[..., :2] - eager[..., :2]).max(-1)  # image px; one heatmap px is 4 x 90/64 = 5.6 of them
    assert np.mean(moved <= 5.6) >= 0.75  # most joints where fp32 puts them (all of them on an Intel Xeon)
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (tmp_path / "clip.mp4").write_bytes(b"not decoded: the refusal comes first")
    for inputs, why in (("bad.png", "int8 calibration: none of the inputs is a readable image"),
                        ("clip.mp4", "int8 is calibrated on the input images")):  # fmt: skip
        result = _predict(
            small_checkpoint,
            tmp_path / "refused",
            tmp_path / inputs,
            options=("--backend", "openvino", "--precision", "int8"),
        )
        assert result.exit_code == 1 and f"error: {why}" in result.output, result.output
        assert not (tmp_path / "refused").exists()


def test_predict_runs_the_fastest_negligible_runtime_and_says_so_first(checkpoint: Path, tmp_path: Path) -> None:
    """By default ``hourglass predict`` takes ``auto``'s first choice and names it in its first line of output;
    ``--backend eager --precision fp32`` (the reference) is named as plainly."""
    from hourglass.inference.runtimes import auto_choices

    _write(tmp_path / "p.png", _photo())
    backend, precision = auto_choices()[0]
    result = _predict(checkpoint, tmp_path / "auto", tmp_path / "p.png")
    assert result.exit_code == 0, result.output
    first = result.stdout.splitlines()[0]
    assert first.startswith(f"pose network: {backend} {precision} (auto: the fastest installed back-end"), first
    result = _predict(
        checkpoint, tmp_path / "ref", tmp_path / "p.png", options=("--backend", "eager", "--precision", "fp32")
    )
    assert result.exit_code == 0 and result.stdout.splitlines()[0] == "pose network: eager fp32", result.output
