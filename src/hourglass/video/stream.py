"""One video, frames folder or camera through ``hourglass predict``: people, poses, identities, smoothing, outputs.

Five stages overlap, each in its own thread, joined by bounded queues (:data:`QUEUE_FRAMES` items each), so a
stage waits only when the next is :data:`QUEUE_FRAMES` frames behind and memory stays flat however long the video:

1. **read** (:meth:`StreamRun._read`): decode frames (OpenCV releases the GIL while decoding);
2. **people** (:meth:`StreamRun._people`): each frame's person boxes: the ``--boxes`` file's, a detector's (on
   every ``detect_every``-th frame, 0, N, 2N ...), or the whole frame;
3. **pose** (the calling thread, :meth:`StreamRun._pose`): crops batched over frames (``batch_size`` crops per
   network call), the network, tracking (:class:`~hourglass.people.track.Tracker`), smoothing
   (:class:`~hourglass.people.smooth.OneEuro`), and the results streamed to the JSON file as they come;
4. **draw** (:meth:`_VideoWriter.draw`): each person's skeleton in their track's colour, their box and ``id N``,
   drawn on the frame itself (skipped with ``overlay=False``, as is the next stage);
5. **write** (:meth:`_VideoWriter.consume`): the drawn frames encoded into the overlay video. Drawing and encoding
   each cost about as much CPU as decoding a 1280x720 frame, so with a fast network (a GPU, a small model) one
   thread doing both would set the pace.

Between detections (``detect_every`` > 1) a frame's boxes are those of the tracks seen in the frame before, each
the box around its pose (joints scoring :data:`POSE_BOX_SCORE` or more) enlarged :data:`POSE_BOX_GROWTH` times
about its centre (rtmlib's ``PoseTracker``), and the person found in it stays that track's: such a frame needs the
frame before it done, so the network then runs one frame at a time.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from hourglass.data.coco import coco_result
from hourglass.errors import ConfigError, DataError
from hourglass.files import atomic_write
from hourglass.inference.predictor import Poses, Predictor
from hourglass.people.boxes import BoxChoice, Detection, box_problem
from hourglass.people.smooth import OneEuro
from hourglass.people.track import Tracker, oks_sigmas
from hourglass.video.sources import Frame, FrameSource

QUEUE_FRAMES = 8  # frames each queue between two stages holds at most
POSE_BOX_SCORE = 0.3  # joints at or above this score make the box of a pose
POSE_BOX_GROWTH = 1.25  # the box around a pose's joints, enlarged this much (rtmlib's PoseTracker)
Detector = Callable[[np.ndarray], tuple[Any, Any]]  # (H, W, 3) uint8 RGB -> boxes (N, 4) xywh, scores (N,)
_END = object()


@dataclass
class StreamOptions:
    """What ``hourglass predict`` does with a stream beyond poses.

    Attributes:
        detector: a person detector, ``(H, W, 3) uint8 RGB -> (boxes (N, 4) (x, y, w, h), scores (N,))``; None: the
            ``--boxes`` file, or the whole frame.
        detect_every: run the detector (or look up the boxes file) on every N-th frame only, boxes from the tracks'
            poses in between.
        track_patience: frames a person may go unseen and keep their id; None: one second of the source.
        smooth: One Euro filter the keypoints of each track (:mod:`hourglass.people.smooth`).
        smooth_params: ``min_cutoff``, ``beta``, ``d_cutoff`` overrides for the filter.
        overlay: write the overlay video (else keypoints only).
    """

    detector: Detector | None = None
    detect_every: int = 1
    track_patience: int | None = None
    smooth: bool = False
    smooth_params: dict[str, float] = field(default_factory=dict)
    overlay: bool = True


def check_options(options: StreamOptions, boxes_file: bool) -> None:
    """Refuse options that cannot work (``boxes_file``: a ``--boxes`` file is given).

    Raises:
        ConfigError: ``detect_every`` under 1, or above 1 with neither a detector nor a boxes file (the whole frame
            needs no detection to skip); a negative ``track_patience``.
    """
    if options.detect_every < 1:
        raise ConfigError(f"--detect-every must be >= 1, got {options.detect_every}")
    if options.detect_every > 1 and options.detector is None and not boxes_file:
        raise ConfigError("--detect-every needs people to follow: give --detector or --boxes")
    if options.track_patience is not None and options.track_patience < 0:
        raise ConfigError(f"--track-patience must be >= 0 frames, got {options.track_patience}")


def pose_box(keypoints: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """The box ``(x, y, w, h)`` around a pose's joints scoring :data:`POSE_BOX_SCORE` or more (all joints when fewer
    than two do), enlarged :data:`POSE_BOX_GROWTH` times about its centre."""
    good = scores >= POSE_BOX_SCORE
    points = keypoints[good] if good.sum() >= 2 else keypoints
    lo, hi = points.min(axis=0), points.max(axis=0)
    centre, size = (lo + hi) / 2, np.maximum(hi - lo, 1.0) * POSE_BOX_GROWTH
    return np.concatenate([centre - size / 2, size])


@dataclass
class _Item:
    """A readable frame and its people: detections, or None when they come from the tracks (``detect_every``)."""

    frame: Frame
    detections: list[Detection] | None
    whole: bool = False  # the whole frame is the person (no boxes file, no detector)
    known: list[int | None] | None = None  # per detection, the track its box came from (``detect_every``)


class StreamRun:
    """One frame source through the five stages (module docstring); :meth:`run` writes its two files."""

    def __init__(
        self,
        stream: FrameSource,
        predictor: Predictor,
        choose: BoxChoice,
        options: StreamOptions,
        bar: Any,
        live: bool,
    ) -> None:
        check_options(options, choose.grouped is not None)
        self.stream, self.predictor, self.choose, self.options = stream, predictor, choose, options
        self.bar, self.live = bar, live
        patience = options.track_patience if options.track_patience is not None else max(1, round(stream.fps))
        self.tracker = Tracker(oks_sigmas(predictor.skeleton), patience=patience)
        self.smoother = OneEuro(stream.fps, **options.smooth_params) if options.smooth else None
        self.broken: list[str] = []
        self.problems: list[str] = []  # one line per problem (a frame whose people could not be read ...)
        self.notes: list[str] = []  # one line per remark (stopped by Ctrl+C ...)
        self.written = 0  # results written to the JSON file
        self.frames = 0  # frames through the network
        self.people = 0  # people of those frames (one per box, or per frame without boxes)
        self.detector_calls = 0
        self.stop = threading.Event()

    # --- the whole run -----------------------------------------------------------------------------------

    def run(self, json_path: Path, video_path: Path | None) -> list[Path]:
        """Write ``json_path`` (and the overlay ``video_path`` unless None), both atomically, once the stream ends.

        Raises:
            DataError: when no frame could be read, or OpenCV cannot write the video.
        """
        written: list[Path] = []

        def with_json(tmp_json: str) -> None:
            if video_path is None:
                self._run(tmp_json, None, None)
            else:

                def with_video(tmp_video: str) -> None:
                    self._run(tmp_json, tmp_video, video_path)

                written.append(atomic_write(video_path, with_video, suffix=".tmp.mp4"))

        written.append(atomic_write(json_path, with_json))
        return written

    def _run(self, tmp_json: str, tmp_video: str | None, video_path: Path | None) -> None:
        frames: queue.Queue[Any] = queue.Queue(QUEUE_FRAMES)
        people: queue.Queue[Any] = queue.Queue(QUEUE_FRAMES)
        drawing: queue.Queue[Any] = queue.Queue(QUEUE_FRAMES)
        encoding: queue.Queue[Any] = queue.Queue(QUEUE_FRAMES)
        shown = f"{self.stream.label}: overlay {video_path}"
        writer = _VideoWriter(tmp_video, self.stream.fps, self.predictor, shown)
        threads = [
            threading.Thread(target=self._stage, args=(self._read, None, frames), name="hourglass-read", daemon=True),
            threading.Thread(
                target=self._stage, args=(self._people, frames, people), name="hourglass-people", daemon=True
            ),
        ]
        if tmp_video is not None:
            threads += [
                threading.Thread(target=writer.draw, args=(drawing, encoding), name="hourglass-draw", daemon=True),
                threading.Thread(target=writer.consume, args=(encoding,), name="hourglass-write", daemon=True),
            ]
        for thread in threads:
            thread.start()
        try:
            with open(tmp_json, "w") as out:
                out.write("[")
                self._pose(people, out, drawing if tmp_video is not None else None)
                out.write("]")
            if tmp_video is not None:
                drawing.put(_END)
        except BaseException:
            self.stop.set()
            _drain(frames, people)
            if tmp_video is not None:
                _put_end(drawing)
            raise
        finally:
            for thread in threads[2:]:
                thread.join()
            writer.release()
        if writer.error is not None:
            raise writer.error
        if self.frames == 0:
            raise DataError(f"{self.stream.label}: no readable frame")

    def _stage(
        self, work: Callable[[Any, Any], None], inbox: queue.Queue[Any] | None, outbox: queue.Queue[Any]
    ) -> None:
        """Run the read or people stage in its thread; an error travels down the queues to the pose stage, which
        raises it."""
        try:
            work(inbox, outbox)
        except BaseException as err:  # handed on, raised in the calling thread
            _put(outbox, err, self.stop)

    # --- stage 1: read -----------------------------------------------------------------------------------

    def _read(self, _: Any, outbox: queue.Queue[Any]) -> None:
        for frame in self.stream.frames:
            if not _put(outbox, frame, self.stop):
                return
        _put(outbox, _END, self.stop)

    # --- stage 2: people ---------------------------------------------------------------------------------

    def _people(self, inbox: queue.Queue[Any], outbox: queue.Queue[Any]) -> None:
        every, detector = self.options.detect_every, self.options.detector
        for frame in _items(inbox):
            if frame.rgb is None:
                _put(outbox, frame, self.stop)
                continue
            height, width = frame.rgb.shape[:2]
            where = f"{frame.file_name} frame {frame.index}"
            if frame.index % every != 0:
                item = _Item(frame, None)
            elif detector is not None:
                boxes, scores = detector(frame.rgb)
                self.detector_calls += 1
                detections, problems = self.choose.detected(boxes, scores, width, height, where, frame.index)
                self.problems.extend(problems)
                item = _Item(frame, detections)
            else:
                detections, problems = self.choose(frame.keys, width, height, where, frame.index)
                self.problems.extend(problems)
                item = _Item(frame, detections, whole=self.choose.grouped is None)
            if not _put(outbox, item, self.stop):
                return
        _put(outbox, _END, self.stop)

    # --- stage 3: pose, tracks, smoothing, JSON ----------------------------------------------------------

    def _pose(self, inbox: queue.Queue[Any], out: Any, drawing: queue.Queue[Any] | None) -> None:
        task = self.bar.task(self.stream.name, self.stream.total)
        pending: list[tuple[_Item, list[list[float]] | None]] = []
        crops = 0
        last = -1  # index of the last frame done
        seen = 0
        try:
            for item in _items(inbox):
                seen += 1
                self.bar.advance(task)
                if isinstance(item, Frame):
                    self.broken.append(f"frame {item.index} ({item.problem})")
                    continue
                if item.detections is None:  # boxes from the tracks of the frame before
                    last = self._flush(pending, out, drawing, last)
                    pending, crops = [], 0
                    item.detections, item.known = self._from_tracks(item.frame, last)
                boxes = None if item.whole else [d[0] for d in item.detections]
                pending.append((item, boxes))
                crops += 1 if boxes is None else len(boxes)
                full = (
                    crops >= self.predictor.batch_size or len(pending) >= self.predictor.batch_size
                )  # frames of nobody
                if full or self.options.detect_every > 1:
                    last = self._flush(pending, out, drawing, last)
                    pending, crops = [], 0
        except KeyboardInterrupt:
            if not self.live:
                raise
            self.stop.set()
            self.notes.append(f"{self.stream.label}: stopped by Ctrl+C after {seen} frames")
        self._flush(pending, out, drawing, last)

    def _from_tracks(self, frame: Frame, last: int) -> tuple[list[Detection], list[int | None]]:
        """Detections of ``frame`` from the poses of the tracks seen in frame ``last`` (duplicates suppressed), and
        the track each came from."""
        assert frame.rgb is not None
        height, width = frame.rgb.shape[:2]
        found, source = [], {}
        for track in self.tracker.live(last):
            box = pose_box(track.keypoints, track.scores)
            if box_problem(box, width, height) is None:
                found.append((box.tolist(), track.box_score, 1, frame.index))
                source[id(found[-1])] = track.track_id
        where = f"{frame.file_name} frame {frame.index}"
        read, low, overlapping = self.choose.read, self.choose.low_score, self.choose.overlapping
        kept, _ = self.choose.keep(found, width, height, where)
        self.choose.read, self.choose.low_score, self.choose.overlapping = read, low, overlapping  # not read boxes
        return kept, [source.get(id(d)) for d in kept]

    def _flush(self, pending: list[tuple[_Item, Any]], out: Any, drawing: queue.Queue[Any] | None, last: int) -> int:
        """Run the pending frames, in order: network, tracks, smoothing, JSON, drawing queue. Returns the last index."""
        if not pending:
            return last
        poses = self.predictor.predict([i.frame.rgb for i, _ in pending], [b for _, b in pending])
        for (item, _), pose in zip(pending, poses, strict=True):
            frame = item.frame
            detections = item.detections or []
            box_scores = [d[1] for d in detections]
            ids = self.tracker.update(frame.index, pose.boxes, pose.keypoints, pose.scores, box_scores, item.known)
            if self.smoother is not None and len(ids):
                pose.keypoints = np.stack(
                    [self.smoother(int(t), frame.index, k) for t, k in zip(ids, pose.keypoints, strict=True)]
                ).reshape(pose.keypoints.shape)
                self.smoother.forget({t.track_id for t in self.tracker.tracks})
            for entry in coco_results(detections, pose, frame.file_name, frame.index, ids, box_scores=not item.whole):
                out.write(("," if self.written else "") + json.dumps(entry))
                self.written += 1
            self.frames += 1
            self.people += len(detections)
            if drawing is not None:
                drawing.put((frame.rgb, pose, ids))  # the writer takes everything, also after an error of its own
            last = frame.index
        return last


def coco_results(
    detections: list[Detection],
    poses: Poses,
    file_name: str,
    frame: int | None = None,
    track_ids: np.ndarray | None = None,
    box_scores: bool = True,
) -> list[dict[str, Any]]:
    """COCO result entries of one image or frame's people (:func:`hourglass.data.coco.coco_result`, 3 decimals),
    with ``bbox`` and ``file_name``, with ``box_scores`` each box's own ``bbox_score`` (mmpose's name; False for
    the whole-picture person), and for a video frame ``frame`` and each person's ``track_id``."""
    results = []
    for p, (bbox, box_score, category_id, image_id) in enumerate(detections):
        extra: dict[str, Any] = {"bbox": [round(float(v), 3) for v in bbox], "file_name": file_name}
        if box_scores:
            extra["bbox_score"] = round(float(box_score), 4)
        if frame is not None:
            extra["frame"] = frame
        if track_ids is not None:
            extra["track_id"] = int(track_ids[p])
        results.append(coco_result(image_id, category_id, poses.keypoints[p], poses.scores[p], box_score, 3, **extra))
    return results


class _VideoWriter:
    """Stages 4 and 5: draws each frame's people (skeleton and box in their track's colour, ``id N``), then encodes
    the frame. Each stage takes everything its inbox receives until the end marker, also after an error (the first
    one is kept in :attr:`error`, and the work stops), so the stage before never waits on a full queue."""

    def __init__(self, path: str | None, fps: float, predictor: Predictor, shown: str) -> None:
        self.path, self.fps, self.skeleton = path, fps, predictor.skeleton
        self.shown = shown  # what errors name: the source and the overlay's own path (``path`` is a temporary one)
        self.writer: Any = None
        self.error: BaseException | None = None

    def draw(self, inbox: queue.Queue[Any], outbox: queue.Queue[Any]) -> None:
        """Stage 4: ``(rgb, poses, ids)`` items in, drawn BGR frames out (then the end marker)."""
        try:
            for rgb, poses, ids in _items(inbox):
                if self.error is None:
                    try:
                        outbox.put(cv2.cvtColor(draw_people(rgb, poses, ids, self.skeleton), cv2.COLOR_RGB2BGR))
                    except BaseException as err:
                        self.error = err
        finally:
            outbox.put(_END)

    def consume(self, inbox: queue.Queue[Any]) -> None:
        """Stage 5: BGR frames in, encoded into the video at :attr:`path`."""
        for bgr in _items(inbox):
            if self.error is None:
                try:
                    self.write(bgr)
                except BaseException as err:
                    self.error = err

    def write(self, bgr: np.ndarray) -> None:
        if self.writer is None:
            height, width = bgr.shape[:2]
            self.writer = cv2.VideoWriter(self.path, cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (width, height))
            if not self.writer.isOpened():
                raise DataError(f"{self.shown}: OpenCV cannot write an mp4v video of {width}x{height}")
        self.writer.write(bgr)

    def release(self) -> None:
        if self.writer is not None:
            self.writer.release()


def draw_people(rgb: np.ndarray, poses: Poses, ids: np.ndarray, skeleton: Any) -> np.ndarray:
    """``rgb`` ``(H, W, 3)`` uint8, drawn on in place and returned: each person's skeleton in their track's colour,
    their box and ``id N`` label. (The pipeline's frames are its own, so a 1280x720 frame is not copied.)"""
    from hourglass.visualize import draw_track, paint_skeleton, track_colour

    for p, track_id in enumerate(ids):
        colour = track_colour(int(track_id))
        paint_skeleton(rgb, poses.keypoints[p], skeleton, scores=poses.scores[p], colour=colour)
        draw_track(rgb, poses.boxes[p], int(track_id))
    return rgb


def _items(inbox: queue.Queue[Any]) -> Iterator[Any]:
    """Items of ``inbox`` until its end marker; an exception put there by the stage before is raised."""
    while True:
        item = inbox.get()
        if item is _END:
            return
        if isinstance(item, BaseException):
            raise item
        yield item


def _put(outbox: queue.Queue[Any], item: Any, stop: threading.Event) -> bool:
    """Put ``item`` unless the run is stopping (checked every 0.1 s while the queue is full); False if stopped."""
    while not stop.is_set():
        try:
            outbox.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _put_end(outbox: queue.Queue[Any]) -> None:
    """The end marker into ``outbox``, making room by dropping what waits there."""
    while True:
        try:
            outbox.put_nowait(_END)
            return
        except queue.Full:
            _drain(outbox)


def _drain(*queues: queue.Queue[Any]) -> None:
    for q in queues:
        while True:
            try:
                q.get_nowait()
            except queue.Empty:
                break
