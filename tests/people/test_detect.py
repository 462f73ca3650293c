"""Person detection (``hourglass predict --detector``, ``Predictor(detector=...)``) through real ONNX files.

Two detectors, exported from torch in the layout of openmmlab's published ``end2end.onnx`` (``tests/detector_nets.py``):
``BrightBox``, whose answer is known (the bright rectangle of a picture, plus a duplicate, another class, a low
score and mmdeploy's zero row), checks the decoding down to the pixel; RTMDet-nano, the real architecture with
random weights and mmdeploy's NMS tail (``N`` known only when it runs), checks the plumbing with a real graph.
Megvii's own YOLOX layout (one undecoded output) is checked on a hand-built output with known boxes, as a
tensor and as a graph (``FixedOutput``, P6 too), and on real photos with the two real YOLOX-nano files of
``shared/models`` against a decoding written here from YOLOX's and mmdeploy's own code.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import onnxruntime
import pytest
import torch
from typer.testing import CliRunner

from detector_nets import ARCHS, Detector, build, export_bright_box, export_end2end, export_fixed, export_onnx
from hourglass.cli import app
from hourglass.errors import CheckpointError, ConfigError, InputError, MissingExtraError
from hourglass.inference.predictor import Predictor
from hourglass.people.detect import (
    DEFAULT_DETECTOR,
    DETECTORS,
    FAMILIES,
    RUNTIMES,
    PersonDetector,
    decode_detections,
    decode_yolox,
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


# --- Megvii's YOLOX layout ------------------------------------------------------------------------------------


def _megvii_output(size: int, strides: tuple[int, ...], anchors: dict[tuple[int, int, int], list[float]]) -> np.ndarray:
    """A ``(1, A, 85)`` output of Megvii's export at input ``size x size``: every row 0 (objectness 0), except the
    rows of ``anchors``: ``(stride, cell x, cell y) -> [dx, dy, log w, log h, objectness, class 0, class 1, ...]``."""
    offsets = np.cumsum([0] + [(size // s) ** 2 for s in strides])
    table = np.zeros((1, offsets[-1], 85), np.float32)
    for (stride, gx, gy), values in anchors.items():
        table[0, offsets[strides.index(stride)] + gy * (size // stride) + gx, : len(values)] = values
    return table


LN2, LN4 = math.log(2.0), math.log(4.0)
ANCHORS = {  # at a 64 x 64 input, for a 128 x 80 picture: scale 0.5, so picture pixels are twice input pixels
    (8, 3, 2): [0.5, 0.5, LN2, LN4, 0.9, 0.8],  # centre (28, 20), size 16 x 32: box (20, 4, 16, 32), score 0.72
    (8, 4, 2): [0.0, 0.5, LN2, LN4, 0.9, 0.6],  # (24, 4, 16, 32), 0.54: IoU 0.6 with the first, suppressed at 0.45
    (16, 1, 1): [0.5, 0.5, 0.0, LN2, 0.95, 0.05] + [0.0] * 16 + [0.9],  # a horse (class 17): person score 0.0475
    (32, 1, 0): [0.0, 0.25, 0.0, LN2, 0.5, 0.5],  # centre (32, 8), 32 x 64: (16, -24, 32, 64), 0.25
    (16, 3, 3): [0.5, 0.5, 0.0, 0.0, 0.3, 0.3],  # 0.09: under YOLOX's 0.1
    (8, 1, 6): [0.5, 0.5, 0.0, 0.0, 1.0, 0.7],  # (8, 48, 8, 8): in the padding (the picture ends at y = 40)
}
EXPECTED = ([[40, 8, 32, 64], [32, -48, 64, 128]], [0.72, 0.25])  # picture pixels, best first


def _decoded_in_graph(table: np.ndarray, size: int, strides: tuple[int, ...]) -> np.ndarray:
    """``table`` as ``export_onnx.py --decode_in_inference`` writes it: centres and sizes in input pixels."""
    out = table.astype(np.float64)
    offset = 0
    for stride in strides:
        n = size // stride
        ys, xs = np.mgrid[:n, :n]
        rows = slice(offset, offset + n * n)
        out[0, rows, 0] = (out[0, rows, 0] + xs.reshape(-1)) * stride
        out[0, rows, 1] = (out[0, rows, 1] + ys.reshape(-1)) * stride
        out[0, rows, 2:4] = np.exp(out[0, rows, 2:4]) * stride
        offset += n * n
    return out.astype(np.float32)


def test_megvii_decoding_of_known_boxes() -> None:
    """Grid offsets, ``exp`` sizes and strides, objectness x person score, YOLOX's 0.1 and NMS 0.45, class 0 only,
    the padding dropped, the letterbox factor undone; the same from a graph that decoded in inference."""
    table = _megvii_output(64, (8, 16, 32), ANCHORS)
    assert table.shape == (1, 64 + 16 + 4, 85)
    for output in (table, _decoded_in_graph(table, 64, (8, 16, 32))):
        boxes, scores = decode_yolox(output, (64, 64), (0.5, 0.5), 128, 80)
        np.testing.assert_allclose(boxes, EXPECTED[0], rtol=1e-6, atol=1e-5)
        np.testing.assert_allclose(scores, EXPECTED[1], rtol=1e-6)
    with pytest.raises(InputError, match=r"A = 84 \(strides 8, 16, 32\) or 85 \(P6: 8, 16, 32, 64\) at 64 x 64"):
        decode_yolox(table[:, :80], (64, 64), (0.5, 0.5), 128, 80)
    logits = table.copy()
    logits[0, 0, 5] = 3.0  # a class score before its sigmoid
    with pytest.raises(InputError, match=r"must lie in \[0, 1\]"):
        decode_yolox(logits, (64, 64), (0.5, 0.5), 128, 80)


@pytest.mark.parametrize(("runtime", "precision"), RUNTIMES[:2])
def test_a_megvii_graph_is_recognised_by_its_output(tmp_path: Path, runtime: str, precision: str) -> None:
    """Megvii's names and shapes, a path that names no family (the layout says YOLOX), on both runtimes."""
    path = export_fixed(torch.from_numpy(_megvii_output(64, (8, 16, 32), ANCHORS)), 64, tmp_path / "detector.onnx")
    detector = PersonDetector(path, runtime=runtime, precision=precision)
    assert (detector.layout, detector.family.name, detector.input_size) == ("megvii", "yolox", (64, 64))
    boxes, scores = detector.detect(_picture(w=128, h=80))
    np.testing.assert_allclose(boxes, EXPECTED[0], rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(scores, EXPECTED[1], rtol=1e-6)
    people, _ = detector(_picture(w=128, h=80))  # 0.25 is under the box threshold
    np.testing.assert_allclose(people, EXPECTED[0][:1], rtol=1e-6)


def test_a_p6_graph_is_decoded_with_stride_64(tmp_path: Path) -> None:
    """128 x 128: 340 anchor points with stride 64 (336 without); a box only stride 64 can place."""
    strides = (8, 16, 32, 64)
    anchors = {(64, 1, 1): [0.5, 0.5, 0.0, LN2, 0.8, 0.9], (8, 2, 2): [0.5, 0.5, 0.0, 0.0, 0.9, 0.9]}
    table = _megvii_output(128, strides, anchors)
    assert table.shape == (1, 340, 85)
    detector = PersonDetector(export_fixed(torch.from_numpy(table), 128, tmp_path / "yolox_p6.onnx"))
    boxes, scores = detector.detect(_picture(w=128, h=128))
    np.testing.assert_allclose(boxes, [[16, 16, 8, 8], [64, 32, 64, 128]], rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(scores, [0.81, 0.72], rtol=1e-6)


def test_graphs_that_cannot_be_decoded_are_refused_in_one_line(checkpoint: Path, tmp_path: Path) -> None:
    wrong_count = export_fixed(torch.zeros(1, 300, 85), 128, tmp_path / "yolox_300.onnx")
    yolov8 = export_fixed(torch.zeros(1, 84, 8400), 640, tmp_path / "yolov8n.onnx")  # (1, 4 + 80, anchors)
    for path, got, counts in ((wrong_count, "(1, 300, 85)", "336"), (yolov8, "(1, 84, 8400)", "8400")):
        with pytest.raises(CheckpointError) as err:
            PersonDetector(path)
        message = str(err.value)
        assert (
            message.startswith(f"{path}: expected mmdeploy's detection outputs dets (1, N, 5)") and "\n" not in message
        )
        assert f"or YOLOX's one output (1, A, 5 + classes) with A = {counts} (strides 8, 16, 32)" in message
        assert message.endswith(f"got output {got}")
    logits = _megvii_output(64, (8, 16, 32), {(8, 0, 0): [0.0, 0.0, 0.0, 0.0, 4.0, 4.0]})  # no sigmoid
    path = export_fixed(torch.from_numpy(logits), 64, tmp_path / "yolox_logits.onnx")
    with pytest.raises(CheckpointError, match=r"yolox_logits\.onnx: YOLOX's objectness and class scores must lie"):
        PersonDetector(path).detect(_picture())
    image = _write(tmp_path / "a.png", _picture())
    result = CliRunner().invoke(
        app, ["predict", str(image), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "o"),
              "--detector-weights", str(yolov8)],
    )  # fmt: skip
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 1 and len(lines) == 1 and "yolov8n.onnx: expected mmdeploy's" in lines[0], result.output


# --- the real detectors on real photos ------------------------------------------------------------------------

REAL = {  # file of shared/models -> its name in the weights table, people of the COCO photos found at IoU >= 0.5
    "yolox_nano_8xb8-300e_humanart-40f6f0d0.onnx": ("yolox-nano-person", 13),
    "yolox_nano.onnx": ("yolox-nano-coco", 11),
}


def _iou(a: list[float], b: list[float]) -> float:
    iw = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return iw * ih / (a[2] * a[3] + b[2] * b[3] - iw * ih)


def _greedy(candidates: list[tuple[list[float], float]], iou: float) -> list[tuple[list[float], float]]:
    kept: list[tuple[list[float], float]] = []
    for box, score in sorted(candidates, key=lambda c: -c[1]):
        if all(_iou(box, other) <= iou for other, _ in kept):
            kept.append((box, score))
    return kept


def _megvii_by_hand(session: onnxruntime.InferenceSession, bgr: np.ndarray) -> list[tuple[list[float], float]]:
    """Megvii's ``preproc`` (one ratio, sides truncated), ``demo_postprocess`` as loops, the person column, its demo's
    0.1 and NMS 0.45, then mmpose's demo's 0.3 and 0.3: people ``([x, y, w, h], score)``."""
    h, w = bgr.shape[:2]
    r = min(416 / h, 416 / w)
    canvas = np.full((416, 416, 3), 114, np.uint8)
    canvas[: int(h * r), : int(w * r)] = cv2.resize(bgr, (int(w * r), int(h * r)), interpolation=cv2.INTER_LINEAR)
    out = session.run(None, {"images": canvas.transpose(2, 0, 1)[None].astype(np.float32)})[0][0]
    candidates, row = [], 0
    for stride in (8, 16, 32):
        for gy in range(416 // stride):
            for gx in range(416 // stride):
                dx, dy, lw, lh, objectness, person = (float(v) for v in out[row, :6])
                row += 1
                cx, cy, bw, bh = (gx + dx) * stride, (gy + dy) * stride, math.exp(lw) * stride, math.exp(lh) * stride
                candidates.append(([(cx - bw / 2) / r, (cy - bh / 2) / r, bw / r, bh / r], objectness * person))
    assert row == len(out) == 3549
    kept = _greedy([c for c in candidates if c[1] > 0.1], 0.45)
    return _greedy([c for c in kept if c[1] > 0.3], 0.3)


def _mmdeploy_by_hand(session: onnxruntime.InferenceSession, bgr: np.ndarray) -> list[tuple[list[float], float]]:
    """mmcv's resize (sides rounded), the graph's person rows scaled back per axis, mmpose's demo's 0.3 and 0.3."""
    h, w = bgr.shape[:2]
    r = min(416 / h, 416 / w)
    nw, nh = int(w * r + 0.5), int(h * r + 0.5)
    canvas = np.full((416, 416, 3), 114, np.uint8)
    canvas[:nh, :nw] = cv2.resize(bgr, (nw, nh), interpolation=cv2.INTER_LINEAR)
    dets, labels = session.run(["dets", "labels"], {"input": canvas.transpose(2, 0, 1)[None].astype(np.float32)})
    sx, sy = nw / w, nh / h
    candidates = [
        ([x1 / sx, y1 / sy, (x2 - x1) / sx, (y2 - y1) / sy], s)
        for (x1, y1, x2, y2, s), label in zip(dets[0].tolist(), labels[0].tolist(), strict=True)
        if label == 0 and s > 0.3 and x2 > x1 and y2 > y1
    ]
    return _greedy(candidates, 0.3)


def _found(truth: list[list[float]], boxes: list[list[float]]) -> int:
    return sum(any(_iou(t, b) >= 0.5 for b in boxes) for t in truth)


@pytest.mark.parametrize("file", list(REAL))
def test_real_detectors_find_the_people_of_the_coco_photos(
    file: str, shared_models: Path, real_samples_dir: Path, checkpoint: Path, tmp_path: Path, monkeypatch
) -> None:
    """Each real YOLOX-nano finds the annotated people of ``real-samples/coco`` (14, two of them tiny): by hand
    (this file's decoding), through ``Predictor(detector=path)``, ``hourglass predict --detector-weights`` and,
    offline, ``--detector NAME`` with the file put where ``hourglass weights path NAME`` says."""
    name, expected = REAL[file]
    path = shared_models / file
    coco = real_samples_dir / "coco"
    annotations = json.loads((coco / "test_coco.json").read_text())
    photos = {image["id"]: coco / image["file_name"] for image in annotations["images"]}
    truth = {i: [a["bbox"] for a in annotations["annotations"] if a["image_id"] == i] for i in photos}
    assert sum(map(len, truth.values())) == 14
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    by_hand_decoding = _megvii_by_hand if file == "yolox_nano.onnx" else _mmdeploy_by_hand
    by_hand = {i: by_hand_decoding(session, cv2.imread(str(photo))) for i, photo in photos.items()}
    assert sum(_found(truth[i], [b for b, _ in by_hand[i]]) for i in photos) >= expected

    def same_people(boxes: dict[int, list[list[float]]], scores: dict[int, list[float]]) -> None:
        for i in photos:  # the same people (Megvii divides by its ratio, we by each side's own factor: < 0.3%)
            assert len(boxes[i]) == len(by_hand[i]), (photos[i].name, boxes[i], by_hand[i])
            for box, score, (hand_box, hand_score) in zip(boxes[i], scores[i], by_hand[i], strict=True):
                np.testing.assert_allclose(box, hand_box, rtol=3e-3, atol=0.5, err_msg=photos[i].name)
                assert score == pytest.approx(hand_score, abs=1e-4), photos[i].name  # the JSON keeps 4 decimals

    predictor = Predictor.from_checkpoint(checkpoint, detector=path)
    poses = predictor.predict([cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in photos.values()])
    same_people(
        {i: pose.boxes.tolist() for i, pose in zip(photos, poses, strict=True)},
        {i: pose.box_scores.tolist() for i, pose in zip(photos, poses, strict=True)},
    )

    def predicted(options: list[str], out: Path) -> dict[int, list[dict]]:
        args = ["predict", *map(str, photos.values()), "--checkpoint", str(checkpoint), "--out", str(out)]
        args += ["--backend", "eager", "--precision", "fp32"]  # the detector on ONNX Runtime fp32, as the decoding
        result = CliRunner().invoke(app, [*args, *options])
        assert result.exit_code == 0, result.output
        results = json.loads((out / "keypoints.json").read_text())
        return {i: [r for r in results if r["image_id"] == i] for i in photos}

    given = predicted(["--detector-weights", str(path)], tmp_path / "given")
    same_people(
        {i: [r["bbox"] for r in rs] for i, rs in given.items()},
        {i: [r["bbox_score"] for r in rs] for i, rs in given.items()},
    )
    monkeypatch.setenv("HOURGLASS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HOURGLASS_OFFLINE", "1")
    shown = CliRunner().invoke(app, ["weights", "path", name])
    where = Path(shown.stdout.strip())
    assert shown.exit_code == 0 and where.parent == tmp_path / "home" / "downloads" / name, shown.output
    where.parent.mkdir(parents=True)
    if where.suffix == ".zip":  # openmmlab's zip: the shared file is its end2end.onnx
        assert where.name == "yolox_nano_8xb8-300e_humanart-40f6f0d0.zip"
        with zipfile.ZipFile(where, "w") as archive:
            archive.write(path, "end2end.onnx")
    else:  # Megvii's release file itself
        assert where.name == "yolox_nano.onnx"
        shutil.copyfile(path, where)
    assert predicted(["--detector", name], tmp_path / "named") == given


@pytest.mark.parametrize(("runtime", "precision"), RUNTIMES[1:])
@pytest.mark.parametrize("file", list(REAL))
def test_real_detectors_on_openvino(
    file: str, runtime: str, precision: str, shared_models: Path, real_samples_dir: Path
) -> None:
    """OpenVINO fp32 and bf16 find as many people (bf16 finds one more of the 14 with Megvii's file here)."""
    coco = real_samples_dir / "coco"
    annotations = json.loads((coco / "test_coco.json").read_text())
    detector = PersonDetector(shared_models / file, runtime=runtime, precision=precision)
    found = 0
    for image in annotations["images"]:
        boxes, _ = detector(cv2.cvtColor(cv2.imread(str(coco / image["file_name"])), cv2.COLOR_BGR2RGB))
        truth = [a["bbox"] for a in annotations["annotations"] if a["image_id"] == image["id"]]
        found += _found(truth, boxes.tolist())
    assert found >= REAL[file][1]


def test_every_named_detector_is_a_detector_row_of_the_weights_table() -> None:
    """``--detector NAME`` takes any detector row; Megvii's rows are the ``.onnx`` files of its 0.1.1rc0 release at
    their published input sizes (416 for nano and tiny, 640 for the rest)."""
    from hourglass.checkpoint import hub

    table = hub.weights_table()
    assert set(DETECTORS) == set(hub.list_weights("detector"))
    for name, row in ((n, table[n]) for n in DETECTORS):
        assert row.kind == "detector" and family_of(row.url) is FAMILIES[DETECTORS[name]], name
        size = 320 if name.startswith("rtmdet") else 416 if name.split("-")[1] in ("nano", "tiny") else 640
        assert row.row["input_size"] == [size, size], name
        if name.endswith("-coco"):
            assert row.url.startswith("https://github.com/Megvii-BaseDetection/YOLOX/releases/download/0.1.1rc0/")
            assert row.file == f"yolox_{name.split('-')[1].replace('darknet53', 'darknet')}.onnx" and row.member is None
    assert table["yolox-nano-person"].file == "yolox_nano_8xb8-300e_humanart-40f6f0d0.zip"
