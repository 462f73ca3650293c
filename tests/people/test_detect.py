"""Person detection (``hourglass predict --detector``, ``Predictor(detector=...)``) through real ONNX files.

Two detectors, exported from torch in the layout of openmmlab's published ``end2end.onnx`` (``tests/detector_nets.py``):
``BrightBox``, whose answer is known (the bright rectangle of a picture, plus a duplicate, another class, a low
score and mmdeploy's zero row), checks the decoding down to the pixel; RTMDet-nano, the real architecture with
random weights and mmdeploy's NMS tail (``N`` known only when it runs), checks the plumbing with a real graph.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import onnxruntime
import pytest
import torch
from typer.testing import CliRunner

from detector_nets import ARCHS, Detector, build, export_bright_box, export_end2end, export_onnx
from hourglass.cli import app
from hourglass.errors import CheckpointError, ConfigError, MissingExtraError
from hourglass.inference.predictor import Predictor
from hourglass.people.detect import (
    DEFAULT_DETECTOR,
    DETECTORS,
    FAMILIES,
    RUNTIMES,
    PersonDetector,
    decode_detections,
    family_of,
    letterbox,
    open_detector,
)
from hourglass.predict import predict_files

BOX = (40, 20, 40, 40)  # (x, y, w, h) of the bright rectangle in a 128 x 96 picture: pixels [40, 80) x [20, 60)


def _picture(bright: bool = True, w: int = 128, h: int = 96) -> np.ndarray:
    rgb = np.full((h, w, 3), 40, np.uint8)
    rgb[:, :, 1] = 90  # not grey: channel order matters to the letterbox test
    if bright:
        x, y, bw, bh = BOX
        rgb[y : y + bh, x : x + bw] = 255
    return rgb


@pytest.fixture(scope="module")
def bright_box(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """BrightBox at a 64 x 64 input; ``yolox`` in its name gives it the YOLOX input (0-255, no mean)."""
    return export_bright_box(tmp_path_factory.mktemp("det") / "yolox_bright_box.onnx", size=64)


@pytest.fixture(scope="module")
def rtmdet_nano(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """RTMDet-nano (0.99M parameters, random weights) at its 320 x 320 input, with mmdeploy's NMS tail.

    The box layers' biases put each edge 2 to 5 strides from its cell and the class weights are 20 times their
    initial size, so that boxes overlap as real detections do and scores spread (plain random weights give
    boxes under a pixel wide and scores within 0.02 of 0.5).
    """
    net = build("rtmdet-nano")
    with torch.no_grad():
        for reg, cls in zip(net.reg, net.cls, strict=True):
            reg.bias.uniform_(2.0, 5.0)
            cls.weight.mul_(20.0)
    path = tmp_path_factory.mktemp("det") / "rtmdet_nano_random.onnx"
    return export_end2end(net, ARCHS["rtmdet-nano"]["size"], path)


def test_restated_detectors_have_the_published_parameter_counts() -> None:
    """YOLOX-tiny/m/x 5.06M/25.3M/99.1M (Megvii's table, 80 classes: one class is about 0.05M fewer),
    RTMDet-nano 0.99M and RTMDet-m 24.66M (mmpose's RTMPose README, person detectors)."""
    published = {"yolox-tiny": 5.06, "yolox-m": 25.3, "yolox-x": 99.1, "rtmdet-nano": 0.99, "rtmdet-m": 24.66}
    with torch.device("meta"):
        counts = {n: sum(p.numel() for p in Detector(**ARCHS[n]["kwargs"]).parameters()) / 1e6 for n in published}
    for name, millions in published.items():
        assert counts[name] == pytest.approx(millions, rel=0.01), name


def test_letterbox_is_mmdetections_test_pipeline() -> None:
    rgb = _picture(bright=False, w=100, h=60)
    rgb[0, 0] = (255, 0, 10)  # one red pixel: BGR order puts 255 in channel 2
    image, scale = letterbox(rgb, (64, 64), FAMILIES["yolox"])
    assert image.shape == (1, 3, 64, 64) and image.dtype == np.float32
    new_h = int(60 * 0.64 + 0.5)  # 38: mmcv rounds each side to nearest
    assert scale == (64 / 100, new_h / 60)
    assert (image[0, :, new_h:, :] == 114).all()  # the padding below the picture
    np.testing.assert_array_equal(image[0, :, 30, 30], [40, 90, 40])  # B, G, R of the flat part
    assert image[0, 2, 0, 0] > image[0, 0, 0, 0]  # red is channel 2
    normalised, _ = letterbox(rgb, (64, 64), FAMILIES["rtmdet"])
    mean, std = np.array(FAMILIES["rtmdet"].mean), np.array(FAMILIES["rtmdet"].std)
    np.testing.assert_allclose(normalised[0, :, 30, 30], (np.array([40, 90, 40]) - mean) / std, rtol=1e-6)
    np.testing.assert_allclose(normalised[0, :, 63, 63], (114 - mean) / std, rtol=1e-6)


def test_decoding_keeps_people_of_positive_size_scaled_back() -> None:
    dets = np.array([[[10, 20, 30, 60, 0.5], [0, 0, 8, 8, 0.9], [5, 5, 5, 9, 0.7], [0, 0, 0, 0, 0.0]]], np.float32)
    labels = np.array([[0, 2, 0, 0]])
    boxes, scores = decode_detections(dets, labels, (0.5, 0.25), 200, 400)
    np.testing.assert_allclose(boxes, [[20, 80, 40, 160]])  # x / sx, y / sy: other class, zero width, zero row gone
    np.testing.assert_allclose(scores, [0.5])


@pytest.mark.parametrize(("runtime", "precision"), RUNTIMES)
def test_bright_box_lands_on_its_picture_pixels(bright_box: Path, runtime: str, precision: str) -> None:
    detector = PersonDetector(bright_box, runtime=runtime, precision=precision)
    assert detector.family.name == "yolox" and detector.input_size == (64, 64)
    boxes, scores = detector.detect(_picture())
    np.testing.assert_allclose(boxes, [BOX, (44, 20, 40, 40), (0, 0, 20, 20)])  # rows 0, 1, 3 (input / 0.5)
    tolerance = 1e-2 if precision == "bf16" else 1e-6  # bf16 keeps 8 bits: 0.9 is 0.8984
    np.testing.assert_allclose(scores, [0.9, 0.8, 0.2], rtol=tolerance)
    people, people_scores = detector(_picture())  # over 0.3, and the duplicate suppressed (IoU 0.82)
    np.testing.assert_allclose(people, [BOX])
    np.testing.assert_allclose(people_scores, [0.9], rtol=tolerance)
    nobody, nobody_scores = detector(_picture(bright=False))
    assert nobody.shape == (0, 4) and nobody_scores.shape == (0,)


def test_predictor_runs_the_detector_for_images_without_boxes(checkpoint: Path, bright_box: Path) -> None:
    plain = Predictor.from_checkpoint(checkpoint)
    found = Predictor.from_checkpoint(checkpoint, detector=bright_box)
    keypoints, scores = found(_picture())
    expected, expected_scores = plain(_picture(), boxes=[BOX])
    np.testing.assert_allclose(keypoints, expected)
    np.testing.assert_allclose(scores, expected_scores)
    poses = found.predict([_picture(), _picture(bright=False), _picture()], [None, None, [[0, 0, 50, 50]]])
    assert [len(p.keypoints) for p in poses] == [1, 0, 1]  # the second has nobody: no person, not the whole image
    np.testing.assert_allclose(poses[0].box_scores, [0.9], rtol=1e-6)
    assert poses[1].box_scores.shape == (0,) and poses[2].box_scores is None  # given boxes have no detector score
    np.testing.assert_allclose(poses[2].boxes, [[0, 0, 50, 50]])
    assert plain.detector is None and len(plain(_picture(bright=False))[0]) == 1  # without one: the whole image


def test_predict_cli_with_detector_weights(checkpoint: Path, bright_box: Path, tmp_path: Path) -> None:
    for name, bright in (("group", True), ("empty", False)):
        assert cv2.imwrite(str(tmp_path / f"{name}.png"), cv2.cvtColor(_picture(bright), cv2.COLOR_RGB2BGR))
    out = tmp_path / "out"
    args = ["predict", str(tmp_path / "group.png"), str(tmp_path / "empty.png"), "--checkpoint", str(checkpoint)]
    result = CliRunner().invoke(app, [*args, "--out", str(out), "--detector-weights", str(bright_box)])
    assert result.exit_code == 0, result.output
    results = json.loads((out / "keypoints.json").read_text())
    assert [(r["image_id"], r["bbox"], r["bbox_score"]) for r in results] == [("group", list(BOX), 0.9)]
    assert results[0]["score"] == pytest.approx(0.9 * np.mean(results[0]["keypoints"][2::3]), abs=1e-4)
    assert sorted(p.name for p in out.iterdir()) == ["empty.png", "group.png", "keypoints.json"]
    note = f"note: {tmp_path / 'empty.png'}: nobody detected (no person box scoring above 0.3)"
    assert note in " ".join(result.stderr.split())
    # group.png: rows 0.9, 0.8 (suppressed), 0.2; empty.png: the 0-score rows 0 and 1, and 0.2
    printed = " ".join(result.stdout.split())
    assert "boxes: 6 detected, 4 scoring <= 0.3 and 1 overlapping a better one (IoU > 0.3) dropped" in printed
    assert "1 people in 2 images" in printed
    # the same people as the boxes file a detector would have written
    (tmp_path / "dets.json").write_text(json.dumps([{"image_id": "group", "bbox": list(BOX), "score": 0.9}]))
    given = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "given"), "--boxes", str(tmp_path / "dets.json")])
    assert given.exit_code == 0, given.output
    assert json.loads((tmp_path / "given" / "keypoints.json").read_text()) == results


def test_predict_files_runs_the_detector_on_video_frames(checkpoint: Path, bright_box: Path, tmp_path: Path) -> None:
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (128, 96))
    for i in range(3):
        writer.write(cv2.cvtColor(_picture(bright=i != 1), cv2.COLOR_RGB2BGR))
    writer.release()
    report = predict_files([video], checkpoint, tmp_path / "out", detector=bright_box, progress=False)
    assert (report.frames, report.people, report.failures) == (3, 2, [])
    results = json.loads((tmp_path / "out" / "clip.keypoints.json").read_text())
    assert [r["frame"] for r in results] == [0, 2]
    for r in results:  # JPEG frames: the rectangle's edges may move by a pixel or two
        np.testing.assert_allclose(r["bbox"], BOX, atol=4)
    assert report.notes == [f"{video}: 1 frames without anybody detected (no person box scoring above 0.3): 1"]


def test_the_detector_runs_on_openvino_with_the_pose_network(
    checkpoint: Path, bright_box: Path, tmp_path: Path
) -> None:
    image = _write(tmp_path / "group.png", _picture())
    out = tmp_path / "out"
    report = predict_files(
        [image], checkpoint, out, backend="openvino", precision="bf16", detector=bright_box, progress=False
    )
    assert report.people == 1 and report.failures == []
    results = json.loads((out / "keypoints.json").read_text())
    assert [r["bbox"] for r in results] == [list(BOX)] and results[0]["bbox_score"] == pytest.approx(0.9, rel=1e-2)


def test_real_architecture_with_mmdeploys_tail(checkpoint: Path, rtmdet_nano: Path, tmp_path: Path) -> None:
    detector = PersonDetector(rtmdet_nano)
    assert detector.family.name == "rtmdet" and detector.input_size == (320, 320)
    rgb = (np.random.default_rng(0).random((240, 400, 3)) * 255).astype(np.uint8)
    image, scale = letterbox(rgb, (320, 320), FAMILIES["rtmdet"])
    session = onnxruntime.InferenceSession(str(rtmdet_nano), providers=["CPUExecutionProvider"])
    dets, labels = session.run(["dets", "labels"], {"input": image})
    assert dets.shape[0] == 1 and dets.shape[2] == 5 and labels.shape == dets.shape[:2] and labels.dtype == np.int64
    assert 1 <= dets.shape[1] <= 100 and (np.diff(dets[0, :, 4]) <= 0).all()  # mmdeploy: best first, top 100
    boxes, scores = detector.detect(rgb)
    x1, y1, x2, y2, s = dets[0].T.astype(np.float64)  # one class: every row is a person
    x, y, w, h = x1 / scale[0], y1 / scale[1], (x2 - x1) / scale[0], (y2 - y1) / scale[1]
    usable = (w > 0) & (h > 0) & (x + w > 0) & (y + h > 0) & (x < 400) & (y < 240)  # the padding is outside
    assert len(boxes) == usable.sum() > 0  # random weights: many boxes
    np.testing.assert_allclose(boxes, np.stack([x, y, w, h], 1)[usable], rtol=1e-6)  # in mmdeploy's order
    np.testing.assert_allclose(scores, s[usable])
    people, people_scores = detector(rgb)
    assert (people_scores > 0.3).all() and 0 < len(people) < len(boxes)  # thresholds and NMS left some
    apart, apart_scores = PersonDetector(rtmdet_nano, nms_threshold=0.0)(rgb)  # no overlap at all: fewer crops
    result = CliRunner().invoke(
        app,
        [
            "predict",
            str(_write(tmp_path / "x.png", rgb)),
            "--checkpoint",
            str(checkpoint),
            "--out",
            str(tmp_path / "o"),
            "--detector-weights",
            str(rtmdet_nano),
            "--nms-threshold",
            "0",
            "--backend",
            "eager",
            "--precision",
            "fp32",
        ],
    )  # fmt: skip (eager: the detector on ONNX Runtime fp32, as PersonDetector's default)
    assert result.exit_code == 0, result.output
    written = json.loads((tmp_path / "o" / "keypoints.json").read_text())
    assert [r["bbox"] for r in written] == [[round(float(v), 3) for v in box] for box in apart]
    assert [r["bbox_score"] for r in written] == [round(float(v), 4) for v in apart_scores]


def _write(path: Path, rgb: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def test_bad_detector_files_are_one_line_naming_them(bright_box: Path, checkpoint: Path, tmp_path: Path) -> None:
    corrupt = tmp_path / "yolox_corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07 this is not a protobuf of a model" * 10)
    with pytest.raises(CheckpointError, match=r"yolox_corrupt\.onnx: not an ONNX model ONNX Runtime can load"):
        PersonDetector(corrupt)
    with pytest.raises(CheckpointError, match=r"yolox_corrupt\.onnx: not an ONNX model OpenVINO can read"):
        PersonDetector(corrupt, runtime="openvino")
    heatmaps = tmp_path / "yolox_heatmaps.onnx"  # a valid ONNX file of another layout (an image to maps)
    export_onnx(torch.nn.Conv2d(3, 16, 3), 32, heatmaps, ["maps"])
    with pytest.raises(CheckpointError, match=r"yolox_heatmaps\.onnx: expected mmdeploy's detection outputs"):
        PersonDetector(heatmaps)
    with pytest.raises(CheckpointError, match="no such detector file"):
        PersonDetector(tmp_path / "yolox_missing.onnx")
    plain = tmp_path / "detector.onnx"
    plain.write_bytes(bright_box.read_bytes())
    with pytest.raises(ConfigError, match="cannot tell whether this detector is a YOLOX or an RTMDet"):
        PersonDetector(plain)
    assert PersonDetector(plain, family="yolox").family.name == "yolox"
    image = tmp_path / "a.png"
    _write(image, _picture())
    for options, message in (
        (["--detector-weights", str(corrupt)], f"{corrupt}: not an ONNX model"),
        (["--detector-weights", str(bright_box), "--detector", "default"], "--detector and --detector-weights"),
        (["--detector-weights", str(bright_box), "--boxes", str(tmp_path / "d.json")], "--boxes and --detector"),
        (["--detector", "no-such-detector"], "unknown detector 'no-such-detector'; expected default, "),
    ):
        out = tmp_path / "out"
        result = CliRunner().invoke(
            app, ["predict", str(image), "--checkpoint", str(checkpoint), "--out", str(out), *options]
        )
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.exit_code == 1 and len(lines) == 1 and message in lines[0], result.output
        assert "Traceback" not in result.output and not out.exists()


def test_a_missing_runtime_names_its_extra(monkeypatch, bright_box: Path) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'hourglass-pose\[detect\]'"):
        PersonDetector(bright_box)
    monkeypatch.setitem(sys.modules, "openvino", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'hourglass-pose\[openvino\]'"):
        PersonDetector(bright_box, runtime="openvino")


def test_names_and_families() -> None:
    assert DEFAULT_DETECTOR in DETECTORS and set(DETECTORS.values()) <= set(FAMILIES)
    assert all(family_of(name) is FAMILIES[family] for name, family in DETECTORS.items())
    assert family_of("models/20230928/yolox_onnx/yolox_m_8xb8-300e_humanart-c2c7a14a/end2end.onnx").name == "yolox"
    assert family_of("rtmdet_nano_8xb32-100e_coco-obj365-person-05d8511e/end2end.onnx").name == "rtmdet"
    assert family_of("end2end.onnx") is None and family_of("yolox-vs-rtmdet.onnx") is None
    with pytest.raises(ConfigError, match="unknown detector"):
        open_detector("yolov8")
    with pytest.raises(ConfigError, match="unknown detector family 'ssd'"):
        PersonDetector("x.onnx", family="ssd")
    with pytest.raises(ConfigError, match="detector runtime onnxruntime bf16 is not one of"):
        PersonDetector("yolox.onnx", precision="bf16")


def test_a_named_detector_comes_from_the_weights_cache_and_offline_says_where(
    monkeypatch, checkpoint: Path, bright_box: Path, tmp_path: Path
) -> None:
    """``--detector default`` through :func:`hourglass.checkpoint.hub.fetch`: with ``HOURGLASS_OFFLINE=1`` an
    empty cache is one line saying where to put the file; the published zip put there (here holding the
    BrightBox graph as its ``end2end.onnx``) is then used with no request. Nothing downloads."""
    hub = pytest.importorskip("hourglass.checkpoint.hub", reason="the published-weights cache (issue 18)")
    import zipfile

    monkeypatch.setenv("HOURGLASS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HOURGLASS_OFFLINE", "1")
    image = _write(tmp_path / "group.png", _picture())
    args = ["predict", str(image), "--checkpoint", str(checkpoint), "--detector", "default"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "out")])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    zipped = hub.download_path(hub.parse_source(DEFAULT_DETECTOR))
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert "HOURGLASS_OFFLINE=1" in lines[0] and str(zipped) in " ".join(result.stderr.split())
    assert not (tmp_path / "out").exists()
    zipped.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zipped, "w") as archive:  # the published layout: a folder named after the checkpoint
        archive.write(bright_box, "yolox_m_8xb8-300e_humanart-c2c7a14a/end2end.onnx")
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "out" / "keypoints.json").read_text())
    assert [(r["bbox"], r["bbox_score"]) for r in results] == [(list(BOX), 0.9)]
