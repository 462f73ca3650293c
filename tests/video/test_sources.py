"""``hourglass predict`` on videos, folders of frames and cameras: real files written by OpenCV, a fake camera."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from hourglass.cli import app
from hourglass.predict import predict_files
from hourglass.video.sources import MAX_FAILED_READS, natural_key, read_capture

SIZE = (80, 60)  # (W, H) of the test videos


def _frame(i: int) -> np.ndarray:
    """A BGR frame that differs from frame to frame: a bright square moving over a gradient."""
    img = np.tile(np.linspace(0, 120, SIZE[0], dtype=np.uint8), (SIZE[1], 1))[:, :, None].repeat(3, axis=2)
    cv2.rectangle(img, (5 + 6 * i, 10), (25 + 6 * i, 50), (40, 200, 240), -1)
    return img


def _write_video(path: Path, n: int, fourcc: str) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10.0, SIZE)
    assert writer.isOpened(), f"OpenCV cannot write {fourcc} here"
    for i in range(n):
        writer.write(_frame(i))
    writer.release()
    return path


def _read_video(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


@pytest.mark.parametrize(("suffix", "fourcc"), [(".avi", "MJPG"), (".mp4", "mp4v")])
def test_video_gives_overlay_video_and_per_frame_keypoints(
    checkpoint: Path, tmp_path: Path, suffix: str, fourcc: str
) -> None:
    video = _write_video(tmp_path / f"clip{suffix}", 6, fourcc)
    out = tmp_path / "out"
    report = predict_files([video], checkpoint, out, batch_size=4, progress=False)
    assert report.failures == [] and (report.videos, report.frames, report.people, report.images) == (1, 6, 6, 0)
    assert sorted(p.name for p in out.iterdir()) == ["clip.keypoints.json", "clip.mp4"]  # no stray temporary files
    frames = _read_video(out / "clip.mp4")
    assert len(frames) == 6 and frames[0].shape == (SIZE[1], SIZE[0], 3)
    results = json.loads((out / "clip.keypoints.json").read_text())
    assert [r["frame"] for r in results] == list(range(6)) == [r["image_id"] for r in results]
    assert {r["file_name"] for r in results} == {str(video)} and all(len(r["keypoints"]) == 16 * 3 for r in results)
    # each frame's keypoints are the Predictor's on that frame as decoded (the whole frame is the person)
    from hourglass.inference.predictor import Predictor

    decoded = [cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in _read_video(video)]
    expected = Predictor.from_checkpoint(checkpoint).predict([decoded[3]])[0].keypoints[0]
    np.testing.assert_allclose(np.reshape(results[3]["keypoints"], (16, 3))[:, :2], expected, atol=2e-3)


def test_boxes_of_video_frames_are_thresholded_and_suppressed(checkpoint: Path, tmp_path: Path) -> None:
    video = _write_video(tmp_path / "walk.avi", 4, "MJPG")
    dets = [
        {"image_id": 0, "bbox": [5, 10, 20, 40], "score": 0.9},
        {"image_id": 0, "bbox": [6, 10, 20, 40], "score": 0.8},  # a duplicate of the first: suppressed
        {"image_id": 0, "bbox": [50, 5, 20, 30], "score": 0.7},
        {"image_id": 1, "bbox": [5, 10, 20, 40], "score": 0.2},  # under the threshold
        {"image_id": 2, "bbox": [17, 10, 20, 40], "score": 0.6},
    ]
    (tmp_path / "dets.json").write_text(json.dumps(dets))
    out = tmp_path / "out"
    report = predict_files([video], checkpoint, out, tmp_path / "dets.json", progress=False)
    assert (report.frames, report.people, report.boxes_read) == (4, 3, 5)
    assert (report.boxes_low_score, report.boxes_overlapping) == (1, 1)
    results = json.loads((out / "walk.keypoints.json").read_text())
    expected = [(0, [5, 10, 20, 40]), (0, [50, 5, 20, 30]), (2, [17, 10, 20, 40])]
    assert [(r["frame"], r["bbox"]) for r in results] == expected
    assert report.notes == [f"{video}: 1 frames without boxes in {tmp_path / 'dets.json'}: 3"]
    assert len(_read_video(out / "walk.mp4")) == 4  # frames without people are in the overlay too


def _riff(fourcc: bytes, data: bytes) -> bytes:
    return fourcc + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")


def _avi_with_audio(path: Path, frames: list[np.ndarray], fps: int = 10, rate: int = 8000) -> Path:
    """An AVI (RIFF, as Microsoft's AVI format specifies it) with an MJPG video stream and an interleaved
    16-bit PCM audio stream of a 440 Hz tone: the layout of a camera's recording with sound."""
    h, w = frames[0].shape[:2]
    per_frame = rate // fps
    t = np.arange(per_frame * len(frames)) / rate
    pcm = (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2")
    header = "<4s4sIHHIIIIIIIIhhhh"  # AVISTREAMHEADER
    avih = struct.pack("<14I", 1_000_000 // fps, 0, 0, 0, len(frames), 0, 2, 0, w, h, 0, 0, 0, 0)
    vids = struct.pack(header, b"vids", b"MJPG", 0, 0, 0, 0, 1, fps, 0, len(frames), 0, 0xFFFFFFFF, 0, 0, 0, w, h)
    bitmap = struct.pack("<IiiHH4sIiiII", 40, w, h, 1, 24, b"MJPG", w * h * 3, 0, 0, 0, 0)
    auds = struct.pack(header, b"auds", bytes(4), 0, 0, 0, 0, 2, 2 * rate, 0, len(pcm), 0, 0xFFFFFFFF, 2, 0, 0, 0, 0)
    wave = struct.pack("<HHIIHHH", 1, 1, rate, 2 * rate, 2, 16, 0)  # PCM, mono, 16 bit
    video = _riff(b"LIST", b"strl" + _riff(b"strh", vids) + _riff(b"strf", bitmap))
    audio = _riff(b"LIST", b"strl" + _riff(b"strh", auds) + _riff(b"strf", wave))
    hdrl = _riff(b"LIST", b"hdrl" + _riff(b"avih", avih) + video + audio)
    movi = b"".join(
        _riff(b"00dc", cv2.imencode(".jpg", f)[1].tobytes())
        + _riff(b"01wb", pcm[i * per_frame : (i + 1) * per_frame].tobytes())
        for i, f in enumerate(frames)
    )
    path.write_bytes(_riff(b"RIFF", b"AVI " + hdrl + _riff(b"LIST", b"movi" + movi)))
    return path


def test_audio_track_is_ignored(checkpoint: Path, tmp_path: Path) -> None:
    video = _avi_with_audio(tmp_path / "talk.avi", [_frame(i) for i in range(5)])
    report = predict_files([video], checkpoint, tmp_path / "out", progress=False)
    assert report.failures == [] and (report.frames, report.broken_frames) == (5, 0)
    assert len(_read_video(tmp_path / "out" / "talk.mp4")) == 5


def _corrupt_jpeg(path: Path, which: int) -> None:
    """Overwrite the ``which``-th JPEG image inside an MJPG AVI (not the last) with junk of the same length.

    The AVI chunk around it stays intact (its 8-byte header is before the next image), so the file still
    opens and the other frames decode.
    """
    data = bytearray(path.read_bytes())
    starts = [i for i in range(len(data) - 2) if data[i : i + 3] == b"\xff\xd8\xff"]
    start, end = starts[which], starts[which + 1] - 8
    data[start:end] = b"\x55" * (end - start)
    path.write_bytes(bytes(data))


def test_broken_video_frame_is_skipped_and_counted(checkpoint: Path, tmp_path: Path) -> None:
    video = _write_video(tmp_path / "clip.avi", 8, "MJPG")
    _corrupt_jpeg(video, 3)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["predict", str(video), "--checkpoint", str(checkpoint), "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert f"{video}: 1 broken frames skipped: frame 3 (could not be decoded)" in result.output
    last = f"7 people in 0 images and 7 frames of 1 videos (1 broken frames skipped) -> {out / 'clip.keypoints.json'}"
    assert result.output.splitlines()[-1] == f"{last} and 1 more files in {out}"
    results = json.loads((out / "clip.keypoints.json").read_text())
    assert [r["frame"] for r in results] == [0, 1, 2, 4, 5, 6, 7]  # later frames keep their own index
    assert len(_read_video(out / "clip.mp4")) == 7


def test_folder_of_frames_in_natural_order(checkpoint: Path, tmp_path: Path) -> None:
    folder = tmp_path / "shots"
    folder.mkdir()
    for i, name in enumerate(["f1.png", "f2.jpg", "f10.png"]):
        assert cv2.imwrite(str(folder / name), _frame(i))
    (folder / "f5.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (folder / "notes.txt").write_text("ignored")
    out = tmp_path / "out"
    report = predict_files([folder], checkpoint, out, frames=True, fps=5, progress=False)
    assert report.broken_frames == 1 and "f5.png is unreadable" in report.failures[0]
    results = json.loads((out / "shots.keypoints.json").read_text())
    assert [(r["frame"], Path(r["file_name"]).name) for r in results] == [(0, "f1.png"), (1, "f2.jpg"), (3, "f10.png")]
    capture = cv2.VideoCapture(str(out / "shots.mp4"))
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(5) and capture.get(cv2.CAP_PROP_FRAME_COUNT) == 3
    capture.release()
    names = sorted((Path(n) for n in ["b1.png", "a10.png", "A9.png"]), key=natural_key)
    assert [p.name for p in names] == ["A9.png", "a10.png", "b1.png"]


class FakeCamera:
    """Stands in for ``cv2.VideoCapture(N)``: ``read()`` gives frames, one of them not an image, then fails."""

    def __init__(self, n: int, bad: int | None = None, interrupt: int | None = None) -> None:
        self.n, self.bad, self.interrupt, self.reads, self.released = n, bad, interrupt, 0, False

    def read(self) -> tuple[bool, np.ndarray | None]:
        i, self.reads = self.reads, self.reads + 1
        if i == self.interrupt:
            raise KeyboardInterrupt  # what Ctrl+C does while the camera waits for a frame
        if i >= self.n:
            return False, None
        if i == self.bad:
            return True, np.zeros((SIZE[1], SIZE[0]), np.float32)  # a driver handing over the wrong buffer
        return True, _frame(i)

    def get(self, prop: int) -> float:
        return 0.0  # most webcams report no frame rate

    def release(self) -> None:
        self.released = True


def test_camera_source_with_a_fake_camera(checkpoint: Path, tmp_path: Path) -> None:
    camera = FakeCamera(5, bad=1)
    out = tmp_path / "out"
    report = predict_files([], checkpoint, out, camera=camera, progress=False)
    assert camera.released and camera.reads == 5 + 1 + MAX_FAILED_READS  # then the stream is taken as ended
    assert (report.frames, report.broken_frames) == (4, 1)
    assert "camera: 1 broken frames skipped: frame 1 (is float32 (60, 80), expected (H, W, 3) uint8)" in report.failures
    results = json.loads((out / "camera.keypoints.json").read_text())
    assert [r["frame"] for r in results] == [0, 2, 3, 4]
    capture = cv2.VideoCapture(str(out / "camera.mp4"))
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(30)  # the default when the camera does not say
    capture.release()
    limited = FakeCamera(100)
    report = predict_files([], checkpoint, tmp_path / "out2", camera=limited, max_frames=3, progress=False)
    assert report.frames == 3 and limited.reads == 3 and limited.released


def test_ctrl_c_stops_a_camera_and_keeps_its_frames(checkpoint: Path, tmp_path: Path) -> None:
    camera = FakeCamera(100, interrupt=4)
    report = predict_files([], checkpoint, tmp_path / "out", camera=camera, batch_size=3, progress=False)
    assert camera.released and report.frames == 4 and report.failures == []
    assert report.notes == ["camera: stopped by Ctrl+C after 4 frames"]
    assert [r["frame"] for r in json.loads((tmp_path / "out" / "camera.keypoints.json").read_text())] == [0, 1, 2, 3]
    assert len(_read_video(tmp_path / "out" / "camera.mp4")) == 4


def test_read_capture_ends_at_the_frame_count() -> None:
    camera = FakeCamera(3)
    frames = list(read_capture(camera, "x", lambda i: [str(i)], count=3))
    assert [f.index for f in frames] == [0, 1, 2] and camera.reads == 4 and camera.released


def test_missing_camera_and_bad_video_are_named(checkpoint: Path, tmp_path: Path) -> None:
    (tmp_path / "fake.mp4").write_bytes(b"not a video at all")
    out = tmp_path / "out"
    args = ["predict", str(tmp_path / "fake.mp4"), "--checkpoint", str(checkpoint), "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--camera", "97"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "fake.mp4: not a video OpenCV can open" in result.output
    assert "camera 97: cannot be opened" in result.output
    assert result.output.splitlines()[-1] == "0 people in 0 images: nothing written"
    assert not out.exists() or list(out.iterdir()) == []
