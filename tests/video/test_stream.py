"""``hourglass predict`` on the synthetic videos: identities in the JSON (boxes file, a real detector callable, the
whole frame), ``--detect-every``, ``--smooth``, ``--no-overlay``, the overlay's colours, and the pipeline's stages."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from hourglass.checkpoint.io import save_checkpoint
from hourglass.cli import app
from hourglass.data import MPII_16
from hourglass.errors import ConfigError
from hourglass.inference.predictor import Poses
from hourglass.models import create_model
from hourglass.people.smooth import OneEuro
from hourglass.people.track import identity_switches
from hourglass.predict import predict_files
from hourglass.synthetic.video import SyntheticVideo, moving_blobs, write_synthetic_video
from hourglass.video.stream import draw_people, pose_box
from hourglass.visualize import track_colour

SIZE = (136, 240)  # (H, W) of the test videos: about half the default (even: mp4v), the scenarios scale with it


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_video(tmp_path_factory.mktemp("synth") / "videos", size=SIZE)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained hg1 with 8 channels at a 64x64 input (16 MPII joints): cheap enough for whole videos."""
    torch.manual_seed(0)
    kwargs = {"num_joints": 16, "num_channels": 8}
    meta = {
        "model": {"name": "hg1", "kwargs": kwargs},
        "data": {"input_size": [64, 64], "heatmap_size": [16, 16], "sigma": 1.0, "skeleton": "mpii_16"},
    }
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "hg1-8.safetensors", create_model("hg1", **kwargs), meta)


class CountingDetector:
    """A real detector of the synthetic scenes (:func:`moving_blobs` against the known background), counting calls."""

    def __init__(self, scenario: str) -> None:
        self.background = SyntheticVideo(scenario, size=SIZE).background
        self.calls = 0

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.calls += 1
        return moving_blobs(rgb, self.background, min_area=round(0.02 * SIZE[0] * SIZE[1]))


def _tracks(path: Path, frames: int) -> list[dict[int, np.ndarray]]:
    """``{track_id: bbox}`` of each frame of a ``.keypoints.json``."""
    out: list[dict[int, np.ndarray]] = [{} for _ in range(frames)]
    for r in json.loads(path.read_text()):
        out[r["frame"]][r["track_id"]] = np.asarray(r["bbox"])
    return out


def _truth(videos: Path, scenario: str) -> list[dict[int, np.ndarray]]:
    truth = json.loads((videos / f"{scenario}.truth.json").read_text())
    return [{p["track_id"]: np.asarray(p["bbox"]) for p in f["people"]} for f in truth["frames"]]


@pytest.mark.parametrize("scenario", ["leave-arrive", "occlusion", "side-by-side"])
def test_identities_from_a_boxes_file(checkpoint: Path, videos: Path, tmp_path: Path, scenario: str) -> None:
    truth = _truth(videos, scenario)
    report = predict_files(
        [videos / f"{scenario}.mp4"], checkpoint, tmp_path, boxes=videos / f"{scenario}.boxes.json", progress=False,
        overlay=False, smooth=scenario == "leave-arrive",  # smoothing through frames with nobody in them
    )  # fmt: skip
    assert report.failures == [] and report.frames == len(truth)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{scenario}.keypoints.json"]  # --no-overlay: no video
    switches, ids = identity_switches(truth, _tracks(tmp_path / f"{scenario}.keypoints.json", len(truth)))
    assert switches == 0 and all(len(v) == 1 for v in ids.values()), ids
    assert len({v[0] for v in ids.values()}) == len(ids)  # a newcomer's id is new; the occluded walker kept theirs


@pytest.mark.parametrize("scenario", ["leave-arrive", "side-by-side"])
def test_identities_with_a_detector_on_every_frame(
    checkpoint: Path, videos: Path, tmp_path: Path, scenario: str
) -> None:
    truth = _truth(videos, scenario)
    detector = CountingDetector(scenario)
    report = predict_files([videos / f"{scenario}.mp4"], checkpoint, tmp_path, detector=detector, progress=False)
    assert report.failures == [] and detector.calls == report.frames == len(truth)
    switches, ids = identity_switches(truth, _tracks(tmp_path / f"{scenario}.keypoints.json", len(truth)))
    assert switches == 0 and sorted(ids) == [1, 2] and all(len(v) == 1 for v in ids.values()), ids
    assert (tmp_path / f"{scenario}.mp4").is_file()


def test_detect_every_n_frames_takes_boxes_from_the_poses_between(
    checkpoint: Path, videos: Path, tmp_path: Path
) -> None:
    every, frames = 4, 30
    detector = CountingDetector("side-by-side")
    report = predict_files(
        [videos / "side-by-side.mp4"], checkpoint, tmp_path, detector=detector, detect_every=every, max_frames=frames,
        progress=False, overlay=False,
    )  # fmt: skip
    assert report.failures == [] and report.frames == frames
    assert detector.calls == -(-frames // every)  # frames 0, 4, 8 ... only
    results = json.loads((tmp_path / "side-by-side.keypoints.json").read_text())
    by_frame: dict[int, dict[int, dict]] = {}
    for r in results:
        by_frame.setdefault(r["frame"], {})[r["track_id"]] = r
    between = 0
    for t in range(frames):
        if t % every == 0:
            assert len(by_frame[t]) == 2  # the detector's two people
            continue
        for track_id, r in by_frame.get(t, {}).items():  # the box of each track: around its pose of the frame before
            before = np.reshape(by_frame[t - 1][track_id]["keypoints"], (16, 3))
            expected = pose_box(before[:, :2], before[:, 2])
            np.testing.assert_allclose(r["bbox"], expected, atol=0.01)
            between += 1
    # an untrained network's poses are noise, so boxes taken from them may drift apart from the people and be
    # suppressed as overlapping: here only the plumbing is checked, at least the frames right after a detection
    assert between >= 2 * detector.calls - 2


def test_smooth_filters_each_track_at_the_source_frame_rate(checkpoint: Path, videos: Path, tmp_path: Path) -> None:
    """--smooth gives what the One Euro filter makes of the raw keypoints of each track, frame by frame at the video's
    rate (the filter's own effect on jitter and lag is measured in test_smooth.py on known trajectories)."""

    def run(smooth: bool) -> list[dict]:
        out = tmp_path / ("smooth" if smooth else "raw")
        predict_files(
            [videos / "side-by-side.mp4"], checkpoint, out, boxes=videos / "side-by-side.boxes.json", smooth=smooth,
            max_frames=20, progress=False, overlay=False,
        )  # fmt: skip
        return json.loads((out / "side-by-side.keypoints.json").read_text())

    raw, smoothed = run(False), run(True)
    assert [(r["frame"], r["track_id"]) for r in raw] == [(r["frame"], r["track_id"]) for r in smoothed]
    assert {r["track_id"] for r in raw} == {1, 2} and len(raw) == 40
    filter_ = OneEuro(SyntheticVideo("side-by-side", size=SIZE).fps)
    moved = 0
    for r, s in zip(raw, smoothed, strict=True):
        keypoints = np.reshape(r["keypoints"], (16, 3))
        expected = filter_(r["track_id"], r["frame"], keypoints[:, :2])
        np.testing.assert_allclose(np.reshape(s["keypoints"], (16, 3))[:, :2], expected, atol=2e-3)
        np.testing.assert_allclose(np.reshape(s["keypoints"], (16, 3))[:, 2], keypoints[:, 2])  # scores kept
        moved += not np.allclose(expected, keypoints[:, :2], atol=0.01)
    assert moved >= 30  # all but each track's first frames changed


def test_detect_every_needs_people_to_follow(checkpoint: Path, videos: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--detect-every needs people to follow"):
        predict_files([videos / "occlusion.mp4"], checkpoint, tmp_path, detect_every=3, progress=False)
    with pytest.raises(ConfigError, match="--boxes and --detector both give the people"):
        predict_files(
            [videos / "occlusion.mp4"], checkpoint, tmp_path, boxes=videos / "occlusion.boxes.json",
            detector=CountingDetector("occlusion"), progress=False,
        )  # fmt: skip


def test_whole_frame_person_keeps_one_id(checkpoint: Path, videos: Path, tmp_path: Path) -> None:
    report = predict_files([videos / "occlusion.mp4"], checkpoint, tmp_path, max_frames=12, progress=False)
    results = json.loads((tmp_path / "occlusion.keypoints.json").read_text())
    assert report.frames == 12 and [r["track_id"] for r in results] == [1] * 12


def test_overlay_colours_each_person_by_id() -> None:
    rgb = np.zeros((120, 200, 3), np.uint8)
    keypoints = np.stack([np.tile([[40.0, 60.0]], (16, 1)), np.tile([[150.0, 60.0]], (16, 1))])
    poses = Poses(keypoints, np.ones((2, 16)), np.array([[10.0, 10, 60, 100], [120, 10, 60, 100]]))
    out = draw_people(rgb, poses, np.array([3, 8]), MPII_16)
    for (x, y, _, h), track_id in zip(poses.boxes, (3, 8), strict=True):
        edge = out[int(y + h / 2), int(x) - 1 : int(x) + 2].reshape(-1, 3)  # the box's left side, mid-height
        assert (np.abs(edge.astype(int) - track_colour(track_id)).sum(1) < 60).any()  # anti-aliased edge
    assert track_colour(3) != track_colour(8)


def test_cli_predict_with_tracking_options(checkpoint: Path, videos: Path, tmp_path: Path) -> None:
    args = ["predict", str(videos / "side-by-side.mp4"), "--checkpoint", str(checkpoint), "--out", str(tmp_path)]
    args += ["--boxes", str(videos / "side-by-side.boxes.json"), "--detect-every", "3", "--smooth", "--max-frames", "9"]
    result = CliRunner().invoke(app, [*args, "--track-patience", "10"])
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "side-by-side.keypoints.json").read_text())
    assert [sum(r["frame"] == t for r in results) for t in (0, 3, 6)] == [2, 2, 2]  # the boxes file's frames
    assert {r["track_id"] for r in results if r["frame"] == 0} == {1, 2}
    capture = cv2.VideoCapture(str(tmp_path / "side-by-side.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 9
    capture.release()
    bad = CliRunner().invoke(app, [*args[:6], "--detect-every", "2"])
    assert bad.exit_code == 1 and "--detect-every needs people to follow" in bad.output


def test_frames_with_nobody_are_not_held_back(checkpoint: Path, videos: Path, tmp_path: Path) -> None:
    """Frames without boxes add no crops, yet a batch holds at most ``batch_size`` frames: a long stretch with
    nobody in view is not kept in memory until someone appears (found by benchmarks/predict_memory.py)."""
    from hourglass.inference.predictor import Predictor
    from hourglass.people.boxes import BoxChoice, read_boxes
    from hourglass.predict import _Bar
    from hourglass.video.sources import video_source
    from hourglass.video.stream import StreamOptions, StreamRun

    predictor = Predictor.from_checkpoint(checkpoint, batch_size=4)
    sizes: list[int] = []
    predict = predictor.predict
    predictor.predict = lambda images, boxes=None, **kw: sizes.append(len(images)) or predict(images, boxes, **kw)  # type: ignore[method-assign]
    boxes = videos / "leave-arrive.boxes.json"  # frames with nobody between the two walkers
    choose = BoxChoice(read_boxes(boxes), boxes)
    run = StreamRun(video_source(videos / "leave-arrive.mp4"), predictor, choose, StreamOptions(), _Bar(False), False)
    run.run(tmp_path / "clip.keypoints.json", None)
    truth = json.loads((videos / "leave-arrive.truth.json").read_text())
    assert sum(sizes) == run.frames == len(truth["frames"]) and max(sizes) <= 4


def test_an_overlay_opencv_cannot_encode_fails_by_name_and_leaves_nothing(
    checkpoint: Path, videos: Path, tmp_path: Path
) -> None:
    """Frames of 1x1 pixels read and go through the network, but mp4v cannot encode them: the drawing and encoding
    stages stop on the error without holding up the pose stage, the run names the file and writes nothing of it
    (no JSON, no video, no temporary file), and the next input is still processed."""
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    for t in range(20):  # more than the queues between the stages hold
        cv2.imwrite(str(tiny / f"{t:03d}.png"), np.full((1, 1, 3), 9 * t, np.uint8))
    out = tmp_path / "out"
    report = predict_files([tiny, videos / "occlusion.mp4"], checkpoint, out, frames=True, progress=False)
    assert any(str(tiny) in f and "cannot write an mp4v video of 1x1" in f for f in report.failures), report.failures
    assert sorted(p.name for p in out.iterdir()) == ["occlusion.keypoints.json", "occlusion.mp4"]
