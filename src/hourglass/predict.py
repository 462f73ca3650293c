"""``hourglass predict``: keypoints of the people in image files, videos, folders of frames and a camera, written
as COCO results JSON and overlay pictures (:func:`predict_files`).

Read top to bottom: :func:`predict_files` collects the inputs and refuses an ``--out`` that holds them, loads the
:class:`~hourglass.inference.predictor.Predictor`, then runs the images (:func:`_predict_images`: :class:`_Batches`
runs the network once ``batch_size`` crops are waiting and hands each picture's
:class:`~hourglass.inference.predictor.Poses` to :class:`_ImageOutputs`) and each frame source
(:func:`_predict_stream`: :class:`~hourglass.video.stream.StreamRun`, overlapping stages with identities).
Problems are collected in a :class:`PredictReport`: a file that cannot be used is named there and skipped, and a
file is written only when something usable went into it.

Output names: an image ``a.png`` gives ``a.png`` (its overlay); a video ``clip.mp4`` or a frames folder
``clip/`` gives ``clip.mp4`` and ``clip.keypoints.json``. Inputs that share a name (``x.png`` from two
folders, ``x.png`` and ``x.jpg``) get ``x``, ``x-2``, ``x-3`` ... in input order, and without ``--boxes``
that name is also their ``image_id``, so each picture keeps its own.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hourglass.data import Skeleton
from hourglass.data.coco import image_keys
from hourglass.data.images import IMAGE_SUFFIXES, read_image
from hourglass.errors import ConfigError, DataError
from hourglass.files import atomic_write
from hourglass.inference.predictor import Poses, Predictor, calibration_images
from hourglass.inference.runtimes import runtime_line
from hourglass.people.boxes import BOX_THRESHOLD, NMS_THRESHOLD, BoxChoice, Detection, read_boxes
from hourglass.people.detect import PersonDetector, open_detector
from hourglass.video.sources import (
    VIDEO_SUFFIXES,
    FrameSource,
    camera_source,
    folder_source,
    video_source,
)
from hourglass.video.stream import Detector, StreamOptions, StreamRun, check_options, coco_results

RESULTS_SUFFIX = "keypoints.json"  # keypoints.json (images), <name>.keypoints.json (a video, frames, a camera)


@dataclass
class PredictReport:
    """What :func:`predict_files` did: counts, files written, and one message per problem.

    ``boxes_read`` counts the detections of the processed images and frames; ``boxes_low_score`` those at or
    under the score threshold and ``boxes_overlapping`` those suppressed as overlapping a better one.
    """

    images: int = 0
    people: int = 0
    written: list[Path] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    videos: int = 0
    frames: int = 0
    broken_frames: int = 0
    boxes_read: int = 0
    boxes_low_score: int = 0
    boxes_overlapping: int = 0

    @property
    def results_files(self) -> list[Path]:
        """The COCO results files written (``keypoints.json``, ``<name>.keypoints.json``), in order."""
        return [path for path in self.written if path.name.endswith(RESULTS_SUFFIX)]


def collect_inputs(inputs: Sequence[str | os.PathLike[str]], frames: bool = False) -> tuple[list[Path], list[str]]:
    """Image and video files from files and folders, and problems.

    A folder gives its PNG/JPEG and video files (sorted, not recursive), or with ``frames`` stays one item:
    a folder of frames. A file given by name must be a PNG, JPEG or video by its suffix; another file
    (``notes.txt``) is a problem, as a missing path is, and neither is used.
    """
    suffixes = IMAGE_SUFFIXES + VIDEO_SUFFIXES
    files: list[Path] = []
    problems: list[str] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir() and frames:
            files.append(path)
        elif path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
            if not found:
                problems.append(f"{path}: folder has no PNG, JPEG or video files")
            files.extend(found)
        elif not path.exists():
            problems.append(f"{path}: no such file or folder")
        elif path.suffix.lower() not in suffixes:
            problems.append(f"{path}: unsupported file type {path.suffix or '(none)'!r}; expected PNG, JPEG or a video")
        else:
            files.append(path)
    return files, problems


def refuse_out_holding_inputs(out_dir: Path, files: Sequence[Path]) -> None:
    """Refuse an output folder that holds inputs of the run (overlays named after them would replace them).

    Raises:
        ConfigError: naming the folder and the first inputs in it (an image or video file directly inside
            it, or a folder of frames that is the folder itself).
    """
    if not out_dir.is_dir():
        return
    here = out_dir.resolve()
    held = [str(f) for f in files if (f.resolve() if f.is_dir() else f.resolve().parent) == here]
    if held:
        raise ConfigError(
            f"--out {out_dir} holds inputs of this run ({_listing(held)}); overlays would replace them: "
            "give another output folder"
        )


def predict_files(
    inputs: Sequence[str | os.PathLike[str]],
    checkpoint: str | os.PathLike[str],
    out: str | os.PathLike[str] = "predictions",
    boxes: str | os.PathLike[str] | None = None,
    batch_size: int = 8,
    heatmaps: bool = False,
    backend: str = "eager",
    precision: str = "fp32",
    progress: bool = True,
    device: str = "cpu",
    box_threshold: float = BOX_THRESHOLD,
    nms_threshold: float = NMS_THRESHOLD,
    frames: bool = False,
    camera: Any | None = None,
    max_frames: int | None = None,
    fps: float | None = None,
    detector: Any | None = None,
    detect_every: int = 1,
    track_patience: int | None = None,
    smooth: bool = False,
    overlay: bool = True,
    announce: Callable[[str], None] | None = None,
) -> PredictReport:
    """``hourglass predict``: keypoints of every person in every image, video frame and camera frame.

    Images: ``out/keypoints.json`` (COCO results: ``image_id``, ``category_id``, ``keypoints``
    ``[x, y, score] * K``, ``score`` = box score x mean joint score, plus ``bbox`` and ``file_name``),
    ``out/<name>.png`` (the image with its skeletons) and, with ``heatmaps``,
    ``out/<name>.person<i>.heatmaps.png``. Videos (by suffix, :data:`hourglass.video.sources.VIDEO_SUFFIXES`),
    folders of frames (``frames``: each folder given is one video) and ``camera`` (an index for
    ``cv2.VideoCapture``, or an object with its ``read()``): ``out/<name>.mp4`` (overlay video) and
    ``out/<name>.keypoints.json`` (the same results plus ``frame``, the 0-based frame index; a video's
    ``image_id`` is that index). ``<name>`` is the input's stem (see the module docstring for repeated
    names). Every file is written atomically, and only when something usable went into it: inputs that
    all fail leave nothing written.

    ``backend`` and ``precision`` choose the pose network's runtime
    (:func:`~hourglass.inference.runtimes.create_runtime`); here eager fp32 by default, the reference; ``auto``
    (the command's default) takes the fastest installed one
    whose accuracy cost is negligible (:func:`~hourglass.inference.runtimes.auto_choices`: OpenVINO bf16 where the
    CPU has it, else OpenVINO or ONNX Runtime fp32, else eager fp32). ``announce``, if given, is called once with
    a line saying which runtime runs, before the first input.

    ``detector`` finds the people of each image and frame when there is no ``boxes`` file: a published
    detector's name, an ``.onnx`` path or a :class:`~hourglass.people.detect.PersonDetector`
    (:func:`~hourglass.people.detect.open_detector`), run with OpenVINO when the pose network runs there (bf16
    when it runs bf16 or int8, else fp32) and with ONNX Runtime otherwise; a picture where it finds nobody
    above the threshold gets no person (its overlay is the picture as it is) and a note naming it. With boxes (a
    file or a detector) each result also carries ``bbox_score``, the box's own score (mmpose's name).

    Boxes scoring at or under ``box_threshold`` are dropped, then in each image or frame those overlapping a
    better one by IoU above ``nms_threshold`` (:func:`~hourglass.people.boxes.suppress_overlaps`).
    Unreadable images and broken frames, and unusable boxes, are reported in :attr:`PredictReport.failures`
    and skipped; the rest are processed. ``max_frames`` caps each video and the camera; ``fps`` overrides the
    overlay frame rate.

    ``detector`` (any callable ``(H, W, 3) uint8 RGB -> (boxes (N, 4) (x, y, w, h), scores (N,))``) finds the people
    instead of a boxes file, through the same thresholds. In streams every person gets a ``track_id``
    (:mod:`hourglass.people.track`; ``track_patience`` frames unseen, default one second of the source), and
    :mod:`hourglass.video.stream` runs reading, people, poses and writing in overlapping stages: see
    :class:`~hourglass.video.stream.StreamOptions` for ``detect_every``, ``smooth`` and ``overlay`` (False:
    the keypoints JSON only, no overlay video).

    Raises:
        HourglassError: for problems that stop everything before anything is written (checkpoint, boxes
            file, no usable input at all, an ``out`` that is a file or that holds inputs).
    """

    files, problems = collect_inputs(inputs, frames)
    report = PredictReport(failures=list(problems))
    if not files and camera is None:
        raise DataError("no input images: " + ("; ".join(problems) if problems else "none given"))
    streams = [f for f in files if f.is_dir() or f.suffix.lower() in VIDEO_SUFFIXES]
    images = [f for f in files if f not in streams]
    out_dir = Path(out)
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"{out_dir}: --out exists and is not a folder")
    refuse_out_holding_inputs(out_dir, files)
    if boxes is not None and detector is not None:
        raise ConfigError("--boxes and --detector both give the people: choose one")
    if isinstance(camera, int) and not files:  # the camera alone: one that cannot be opened stops here
        camera = camera_source(camera, fps, max_frames)
    grouped = read_boxes(boxes) if boxes is not None else None
    check_options(StreamOptions(detector, detect_every, track_patience, smooth, overlay=overlay), grouped is not None)
    calibration = None
    if precision == "int8":
        if not images:
            raise DataError("int8 is calibrated on the input images; give some PNG/JPEG files with the videos")
        calibration = functools.partial(calibration_images, images)  # at the checkpoint's input size
    predictor = Predictor.from_checkpoint(
        checkpoint, backend=backend, precision=precision, batch_size=batch_size, calibration=calibration, device=device
    )
    runtime = predictor.runtime
    if announce is not None:
        announce(runtime_line(runtime, backend, precision))
    find_people = _person_finder(detector, runtime.backend, runtime.precision, box_threshold, nms_threshold)
    choose = BoxChoice(grouped, boxes, box_threshold=box_threshold, nms_threshold=nms_threshold, detector=find_people)
    options = StreamOptions(find_people, detect_every, track_patience, smooth, overlay=overlay)
    if heatmaps and (streams or camera is not None):
        report.notes.append("--heatmaps: montages are written for images only, not for video frames")
    with _Bar(progress) as bar:
        if images:
            _predict_images(images, predictor, out_dir, choose, heatmaps, bar, report)
        names = _Names()
        for source in [*streams, *([camera] if camera is not None else [])]:
            _predict_stream(source, names, predictor, out_dir, choose, options, bar, report, fps, max_frames)
    report.boxes_read, report.boxes_low_score = choose.read, choose.low_score
    report.boxes_overlapping = choose.overlapping
    return report


def _person_finder(
    detector: Any, backend: str, precision: str, box_threshold: float, nms_threshold: float
) -> Detector | None:
    """The function that finds each picture's people before thresholds: ``rgb -> (boxes (N, 4), scores (N,))``.

    A published detector's name, an ``.onnx`` path or a :class:`~hourglass.people.detect.PersonDetector` runs
    through :func:`~hourglass.people.detect.open_detector` (OpenVINO when the pose network does, bf16 for bf16
    and int8, else ONNX Runtime fp32) and gives its :meth:`~hourglass.people.detect.PersonDetector.detect`;
    any other callable is used as it is. :class:`~hourglass.people.boxes.BoxChoice` then applies the
    thresholds once.
    """
    if detector is None:
        return None
    if callable(detector) and not isinstance(detector, PersonDetector):
        return detector
    runtime = "openvino" if backend == "openvino" else "onnxruntime"
    half = runtime == "openvino" and precision in ("bf16", "int8")
    return open_detector(detector, box_threshold, nms_threshold, runtime, "bf16" if half else "fp32").detect


class _Names:
    """Output names, one per input: the name itself, then ``name-2``, ``name-3`` ... for names already taken."""

    def __init__(self) -> None:
        self.taken: set[str] = set()

    def take(self, name: str) -> str:
        candidate, n = name, 1
        while candidate in self.taken:
            n += 1
            candidate = f"{name}-{n}"
        self.taken.add(candidate)
        return candidate


def _image_id(name: str) -> int | str:
    """The ``image_id`` of an image without boxes: its output name, as a number when it is one (COCO's ids)."""
    return int(name) if name.isdigit() else name


class _Bar:
    """A rich progress bar on stderr (nothing when disabled or when stderr is not a terminal)."""

    def __init__(self, enabled: bool) -> None:
        self.progress: Any = None
        if enabled:
            from rich.console import Console
            from rich.progress import Progress

            self.progress = Progress(console=Console(stderr=True), transient=True)

    def __enter__(self) -> _Bar:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def task(self, description: str, total: int | None) -> Any:
        return self.progress.add_task(description, total=total) if self.progress is not None else None

    def advance(self, task: Any) -> None:
        if self.progress is not None:
            self.progress.advance(task)


@dataclass
class _Pending:
    """One readable image or frame waiting for its batch: pixels, people to run, where it came from."""

    rgb: np.ndarray
    boxes: list[list[float]] | None  # None: the whole image
    detections: list[Detection]
    file_name: str
    name: str = ""  # output name of an image


class _Batches:
    """Collects images or frames until ``batch_size`` crops are waiting, runs them, hands each result to ``done``."""

    def __init__(self, predictor: Predictor, keep_heatmaps: bool, done: Callable[[_Pending, Poses], None]) -> None:
        self.predictor, self.keep_heatmaps, self.done = predictor, keep_heatmaps, done
        self.pending: list[_Pending] = []

    def add(self, item: _Pending) -> None:
        self.pending.append(item)
        if sum(1 if p.boxes is None else len(p.boxes) for p in self.pending) >= self.predictor.batch_size:
            self.flush()

    def flush(self) -> None:
        rgbs, boxes = [p.rgb for p in self.pending], [p.boxes for p in self.pending]
        poses = self.predictor.predict(rgbs, boxes, keep_heatmaps=self.keep_heatmaps)
        items, self.pending = self.pending, []
        for item, pose in zip(items, poses, strict=True):
            self.done(item, pose)


# --- images --------------------------------------------------------------------------------------------


def _predict_images(
    files: Sequence[Path],
    predictor: Predictor,
    out_dir: Path,
    choose: BoxChoice,
    heatmaps: bool,
    bar: _Bar,
    report: PredictReport,
) -> None:
    """Overlays (and montages) of image files, written as each batch finishes, then ``out_dir/keypoints.json``
    (when at least one image could be read)."""
    outputs = _ImageOutputs(predictor.skeleton, out_dir, choose.per_person, heatmaps, report)
    batches = _Batches(predictor, heatmaps, outputs.done)
    names = _Names()
    task = bar.task("images", len(files))
    for path in files:
        try:
            rgb = read_image(path)
        except DataError as err:
            report.failures.append(str(err))
        else:
            name = names.take(path.stem)
            if name != path.stem and choose.grouped is not None:
                shared = f"its boxes are those of {path.stem!r} in {choose.boxes_file}, as for the first one"
                report.notes.append(f"{path}: written as {name}.png (the name {path.stem!r} is taken); {shared}")
            height, width = rgb.shape[:2]
            detections, problems = choose(image_keys(path), width, height, str(path), _image_id(name), rgb)
            boxes = choose.boxes(detections)
            report.failures.extend(problems)
            batches.add(_Pending(rgb, boxes, detections, str(path), name=name))
        bar.advance(task)
    batches.flush()
    for where in choose.take_unmatched():
        report.notes.append(f"{where}: {choose.missing(one_image=True)}")
    if report.images:
        report.written.append(_write_json(out_dir / RESULTS_SUFFIX, outputs.results))


class _ImageOutputs:
    """Writes each image's overlay (and heatmap montages) as its batch finishes; collects the COCO results."""

    def __init__(self, skeleton: Skeleton, out_dir: Path, show_boxes: bool, heatmaps: bool, report: PredictReport):
        self.skeleton = skeleton
        self.out_dir = out_dir
        self.show_boxes = show_boxes
        self.heatmaps = heatmaps
        self.report = report
        self.results: list[dict[str, Any]] = []

    def done(self, item: _Pending, poses: Poses) -> None:
        from hourglass.visualize import heatmap_montage, write_image

        self.results.extend(_results(item, poses))
        if self.heatmaps and poses.heatmaps is not None and poses.crops is not None:
            for p in range(len(item.detections)):
                montage = heatmap_montage(poses.heatmaps[p], poses.crops[p], self.skeleton.joint_names)
                self.report.written.append(write_image(self.out_dir / f"{item.name}.person{p}.heatmaps.png", montage))
        overlay = _overlay(item, poses, self.skeleton, self.show_boxes)
        self.report.written.append(write_image(self.out_dir / f"{item.name}.png", overlay))
        self.report.images += 1
        self.report.people += len(item.detections)


# --- videos, frames folders, cameras ---------------------------------------------------------------------


def _predict_stream(
    source: Any,
    names: _Names,
    predictor: Predictor,
    out_dir: Path,
    choose: BoxChoice,
    options: StreamOptions,
    bar: _Bar,
    report: PredictReport,
    fps: float | None = None,
    max_frames: int | None = None,
) -> None:
    """``out_dir/<name>.keypoints.json`` and the overlay video ``out_dir/<name>.mp4`` of a video file, a folder of
    frames (a :class:`~pathlib.Path`) or a camera (an index or a capture object) through
    :class:`~hourglass.video.stream.StreamRun`; problems go to ``report``.

    Both files are written atomically once the stream has ended, and neither when no frame could be read; a
    camera stopped with Ctrl+C keeps the frames it has.
    """
    try:
        stream = _open_source(source, fps, max_frames)
    except DataError as err:
        report.failures.append(str(err))
        return
    name = names.take(stream.name)
    live = not isinstance(source, Path)
    run = StreamRun(stream, predictor, choose, options, bar, live)
    video = out_dir / f"{name}.mp4" if options.overlay else None
    try:
        report.written.extend(run.run(out_dir / f"{name}.{RESULTS_SUFFIX}", video))
    except DataError as err:
        report.failures.append(str(err))
    else:
        report.failures.extend(run.problems)
        report.videos += 1
    finally:
        report.frames, report.people = report.frames + run.frames, report.people + run.people
        report.notes.extend(run.notes)
    unmatched = choose.take_unmatched()
    if unmatched:
        shown = _listing([where.rsplit(" ", 1)[-1] for where in unmatched])
        report.notes.append(f"{stream.label}: {len(unmatched)} frames {choose.missing()}: {shown}")
    if run.broken:
        report.broken_frames += len(run.broken)
        report.failures.append(f"{stream.label}: {len(run.broken)} broken frames skipped: {_listing(run.broken)}")


def _open_source(source: Any, fps: float | None, max_frames: int | None) -> FrameSource:
    """A frames folder or a video file (a :class:`~pathlib.Path`), else a camera (an index or a capture, or
    one already opened: a :class:`FrameSource`)."""
    if isinstance(source, FrameSource):
        return source
    if not isinstance(source, Path):
        return camera_source(source, fps, max_frames)
    if source.is_dir():
        return folder_source(source, fps, max_frames)
    return video_source(source, fps, max_frames)


# --- shared by both ----------------------------------------------------------------------------------------


def _write_json(path: Path, results: list[dict[str, Any]]) -> Path:
    text = json.dumps(results)
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def _listing(items: Sequence[str], limit: int = 5) -> str:
    """``a, b, c and 4 more``: the first ``limit`` items and how many others."""
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _overlay(item: _Pending, poses: Poses, skeleton: Skeleton, show_boxes: bool) -> np.ndarray:
    """The image with each person's skeleton (and box, when boxes were given)."""
    from hourglass.visualize import draw_boxes, draw_skeleton

    overlay = draw_boxes(item.rgb, poses.boxes) if show_boxes else item.rgb
    for p in range(len(item.detections)):
        overlay = draw_skeleton(overlay, poses.keypoints[p], skeleton, scores=poses.scores[p])
    return overlay


def _results(item: _Pending, poses: Poses) -> list[dict[str, Any]]:
    """COCO result entries of one image (``bbox_score`` when its people came from boxes, not the whole image)."""
    return coco_results(item.detections, poses, item.file_name, box_scores=item.boxes is not None)
