"""Frame sources for ``hourglass predict``: video files, folders of frames and cameras, read through OpenCV.

Each source is a :class:`FrameSource`: a name for its outputs, a frame rate, a frame count when known, and
an iterator of :class:`Frame` in order, broken frames included (their ``rgb`` is None and ``problem`` says
why) so that frame indices stay those of the source.

Video files and cameras go through ``cv2.VideoCapture`` (FFmpeg in ``opencv-python-headless``); only the
video stream is decoded, audio is ignored. Anything with the ``read() -> (ok, frame_bgr)`` method of
``cv2.VideoCapture`` (and optionally its ``get(prop)`` and ``release()``) can stand in for a camera: this is
how tests feed frames without a webcam, and how a caller can plug in another stream.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from hourglass.data.coco import image_keys
from hourglass.data.images import IMAGE_SUFFIXES, read_image
from hourglass.errors import DataError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts")
DEFAULT_FPS = 30.0  # overlay frame rate when the source does not tell (folders, most cameras)
MAX_FAILED_READS = 25  # consecutive failed reads taken as the end of a stream whose length is unknown


class Capture(Protocol):
    """The part of ``cv2.VideoCapture`` a camera source needs: ``read()`` gives ``(ok, (H, W, 3) uint8 BGR)``."""

    def read(self) -> tuple[bool, Any]: ...


@dataclass
class Frame:
    """One position of a source.

    Attributes:
        index: 0-based position in the source (broken frames count).
        rgb: ``(H, W, 3)`` uint8 RGB, or None for a broken frame.
        file_name: where it came from (the video file, the frame's image file, ``camera N``).
        keys: the detection ``image_id`` values (as strings) that belong to this frame.
        problem: why the frame is broken (None if it is not).
    """

    index: int
    rgb: np.ndarray | None
    file_name: str
    keys: list[str]
    problem: str | None = None


@dataclass
class FrameSource:
    """A video, a folder of frames or a camera: ``frames`` yields :class:`Frame` in order.

    Attributes:
        name: output stem (``clip`` for ``clip.mp4``, the folder name, ``camera0``).
        label: the source in messages (the file or folder path, ``camera 0``).
        fps: frame rate of the overlay video.
        total: number of frames when known (video files and folders), for the progress bar.
        frames: the frames; consuming it reads the source, which is released at its end.
    """

    name: str
    label: str
    fps: float
    total: int | None
    frames: Iterator[Frame]


def natural_key(path: Path) -> list[Any]:
    """Sort key putting ``frame2.png`` before ``frame10.png`` (digit runs compared as numbers)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def frame_files(folder: Path) -> list[Path]:
    """The PNG/JPEG files of ``folder`` in natural order (not recursive)."""
    return sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES), key=natural_key)


def folder_source(folder: str | Path, fps: float | None = None, max_frames: int | None = None) -> FrameSource:
    """The images of ``folder`` as the frames of one video (natural order); unreadable files are broken frames.

    ``max_frames`` keeps the first ones only.

    Raises:
        DataError: when the folder has no PNG or JPEG file.
    """
    folder = Path(folder)
    files = frame_files(folder)[:max_frames]
    if not files:
        raise DataError(f"{folder}: folder has no PNG or JPEG frames")

    def frames() -> Iterator[Frame]:
        for index, path in enumerate(files):
            keys = image_keys(path)
            try:
                yield Frame(index, read_image(path), str(path), keys)
            except DataError as err:
                yield Frame(index, None, str(path), keys, str(err))

    return FrameSource(folder.name, str(folder), fps or DEFAULT_FPS, len(files), frames())


def video_source(path: str | Path, fps: float | None = None, max_frames: int | None = None) -> FrameSource:
    """The frames of a video file (mp4, avi, mov ... whatever OpenCV's FFmpeg decodes), at most ``max_frames``;
    audio is ignored.

    A frame that fails to decode is a broken frame when a readable frame follows it; failed reads at the
    end are the end of the video.

    Raises:
        DataError: naming the file when it is missing or OpenCV cannot open it.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such video file")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise DataError(f"{path}: not a video OpenCV can open (corrupt, or a codec its FFmpeg lacks)")
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    rate = fps or capture.get(cv2.CAP_PROP_FPS) or DEFAULT_FPS
    known = count if count > 0 else None
    frames = read_capture(capture, str(path), _frame_keys, known, max_frames)
    total = min(known, max_frames) if known is not None and max_frames is not None else known or max_frames
    return FrameSource(path.stem, str(path), float(rate), total, frames)


def _open_camera(index: int) -> Any:
    """``cv2.VideoCapture(index)`` with OpenCV's own warnings held back (it prints one per back-end it tries
    when no such camera exists; :func:`camera_source` says it in one line)."""
    from cv2.utils import logging as cv_log

    level = cv_log.getLogLevel()
    cv_log.setLogLevel(cv_log.LOG_LEVEL_ERROR)
    try:
        return cv2.VideoCapture(index)
    finally:
        cv_log.setLogLevel(level)


def camera_source(camera: int | Capture, fps: float | None = None, max_frames: int | None = None) -> FrameSource:
    """Frames of camera ``N`` (``cv2.VideoCapture(N)``), or of any object with ``cv2.VideoCapture.read``.

    The stream ends when the camera stops giving frames, after ``max_frames`` frames, or when the caller
    stops iterating (``hourglass predict --camera`` stops on Ctrl+C and keeps what it has).

    Raises:
        DataError: when camera ``N`` cannot be opened.
    """
    if isinstance(camera, int):
        capture: Any = _open_camera(camera)
        if not capture.isOpened():
            capture.release()
            raise DataError(
                f"camera {camera}: cannot be opened (no such device, or in use); check the index (Linux lists "
                "cameras as /dev/video*) or that no other program holds it, or give image and video files instead"
            )
        name, file_name = f"camera{camera}", f"camera {camera}"
    else:
        capture, name, file_name = camera, "camera", "camera"
    get = getattr(capture, "get", None)
    rate = fps or (get(cv2.CAP_PROP_FPS) if get is not None else 0.0) or DEFAULT_FPS
    frames = read_capture(capture, file_name, _frame_keys, None, max_frames)
    return FrameSource(name, file_name, float(rate), max_frames, frames)


def read_capture(
    capture: Capture,
    file_name: str,
    keys: Callable[[int], list[str]],
    count: int | None,
    max_frames: int | None = None,
) -> Iterator[Frame]:
    """:class:`Frame` of a ``cv2.VideoCapture``-like object until its end; it is released afterwards.

    A failed read followed by a good one is a broken frame; failed reads with nothing good after them (all
    ``count`` frames seen, or :data:`MAX_FAILED_READS` in a row) end the stream. A frame that is not
    ``(H, W, 3)`` uint8, or whose size differs from the first frame's, is broken.
    """
    index, failed, size = 0, 0, None
    try:
        while max_frames is None or index < max_frames:
            ok, bgr = capture.read()
            if not ok:
                failed += 1
                if (count is not None and index + failed > count) or failed > MAX_FAILED_READS:
                    return
                continue
            for _ in range(failed):
                yield Frame(index, None, file_name, keys(index), "could not be decoded")
                index += 1
            failed = 0
            problem = frame_problem(bgr, size)
            if problem is None:
                size = bgr.shape
                yield Frame(index, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), file_name, keys(index))
            else:
                yield Frame(index, None, file_name, keys(index), problem)
            index += 1
    finally:
        release = getattr(capture, "release", None)
        if release is not None:
            release()


def _frame_keys(index: int) -> list[str]:
    """Detections of a video frame carry its 0-based index as ``image_id``."""
    return [str(index)]


def frame_problem(frame: Any, size: Sequence[int] | None) -> str | None:
    """Why a decoded frame cannot be used: not ``(H, W, 3)`` uint8, or not of ``size`` (the first frame's)."""
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        what = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
        return f"is {what}, expected (H, W, 3) uint8"
    if frame.size == 0:
        return "is empty"
    if size is not None and tuple(frame.shape) != tuple(size):
        return f"is {frame.shape[1]}x{frame.shape[0]}, but the stream started at {size[1]}x{size[0]}"
    return None
