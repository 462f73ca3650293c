"""Synthetic videos with identities: the files ``hourglass synth --video`` writes, read back through OpenCV, and
what each scenario shows (a person leaving and a newcomer, an occlusion, two people side by side)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from hourglass.cli import app
from hourglass.errors import DataError
from hourglass.people.boxes import box_iou
from hourglass.synthetic.video import (
    OCCLUDED_FRAMES,
    VIDEO_SCENARIOS,
    SyntheticVideo,
    moving_blobs,
    write_synthetic_video,
)


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_video(tmp_path_factory.mktemp("synth") / "videos")


def _present(truth: dict, track_id: int) -> list[int]:
    return [f["frame"] for f in truth["frames"] if any(p["track_id"] == track_id for p in f["people"])]


def test_files_of_every_scenario_read_back(videos: Path) -> None:
    assert sorted(p.name for p in videos.iterdir()) == sorted(
        f"{s}{suffix}" for s in VIDEO_SCENARIOS for suffix in (".mp4", ".truth.json", ".boxes.json")
    )
    for scenario in VIDEO_SCENARIOS:
        truth = json.loads((videos / f"{scenario}.truth.json").read_text())
        capture = cv2.VideoCapture(str(videos / f"{scenario}.mp4"))
        frames = 0
        while capture.read()[0]:
            frames += 1
        capture.release()
        assert frames == len(truth["frames"]) == SyntheticVideo(scenario).num_frames > 25
        assert (truth["width"], truth["height"], truth["fps"], truth["skeleton"]) == (480, 270, 25.0, "mpii_16")
        boxes = json.loads((videos / f"{scenario}.boxes.json").read_text())
        people = [(f["frame"], p["bbox"]) for f in truth["frames"] for p in f["people"]]
        assert [(b["image_id"], b["bbox"]) for b in boxes] == people
        assert all(len(p["keypoints"]) == 48 for f in truth["frames"] for p in f["people"])


def test_leave_arrive_has_a_newcomer_after_the_first_person_left(videos: Path) -> None:
    truth = json.loads((videos / "leave-arrive.truth.json").read_text())
    first, second = _present(truth, 1), _present(truth, 2)
    assert first[0] == 0 and second[-1] == len(truth["frames"]) - 1
    assert second[0] > first[-1] + 1  # nobody in view in between


def test_occlusion_hides_the_walker_for_a_few_frames(videos: Path) -> None:
    truth = json.loads((videos / "occlusion.truth.json").read_text())
    seen = _present(truth, 1)
    gaps = np.diff(seen) - 1
    assert (gaps > 0).sum() == 1 and OCCLUDED_FRAMES <= gaps.max() < 25  # one gap, shorter than a second at 25 fps
    assert seen[0] == 0 and seen[-1] == len(truth["frames"]) - 1


def test_side_by_side_people_are_both_in_every_frame_without_overlap(videos: Path) -> None:
    truth = json.loads((videos / "side-by-side.truth.json").read_text())
    for frame in truth["frames"]:
        a, b = sorted(frame["people"], key=lambda p: p["track_id"])
        assert (a["track_id"], b["track_id"]) == (1, 2)
        assert box_iou(a["bbox"], np.array([b["bbox"]]))[0] == 0.0
        assert b["bbox"][0] - (a["bbox"][0] + a["bbox"][2]) < 0.1 * truth["width"]  # close together


def test_moving_blobs_find_the_people_seen_in_full() -> None:
    video = SyntheticVideo("side-by-side")
    for t in range(0, video.num_frames, 5):
        boxes, scores = moving_blobs(video.frame(t), video.background)
        truth = video.truth(t)
        assert len(boxes) == len(truth) == 2 and (scores == 1).all()
        for person in truth:
            assert box_iou(person.bbox, boxes).max() > 0.6


def test_same_arguments_same_video_and_bad_ones_named() -> None:
    a, b = SyntheticVideo("occlusion", seed=3), SyntheticVideo("occlusion", seed=3)
    np.testing.assert_array_equal(a.frame(7), b.frame(7))
    assert not np.array_equal(a.frame(7), SyntheticVideo("occlusion", seed=4).frame(7))
    with pytest.raises(DataError, match="scenario must be one of leave-arrive, occlusion, side-by-side"):
        SyntheticVideo("crowd")


def test_cli_synth_video_writes_the_three_videos(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["synth", "--video", "--out", str(tmp_path / "v"), "--num", "5"])
    assert result.exit_code == 0, result.output
    assert "leave-arrive.mp4, occlusion.mp4, side-by-side.mp4" in result.output
    truth = json.loads((tmp_path / "v" / "occlusion.truth.json").read_text())
    assert len(truth["frames"]) == 5
    again = CliRunner().invoke(app, ["synth", "--video", "--out", str(tmp_path / "v"), "--num", "5"])
    assert again.exit_code == 1 and "already exists" in again.output
    missing = CliRunner().invoke(app, ["synth", "--out", str(tmp_path / "imgs")])
    assert missing.exit_code == 1 and "--num is required" in missing.output
