"""The service without its web framework: settings, the pipeline of one picture, request fields.

:class:`PoseService` holds one Predictor, its :class:`~hourglass.serve.batching.Batcher` and its counters;
:meth:`PoseService.predict` turns a picture's bytes into the predict JSON or a :class:`RequestError` with
the HTTP status it deserves. :mod:`hourglass.serve.app` puts it behind Starlette.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hourglass.data.images import decode_image, image_header_size
from hourglass.errors import ConfigError, HourglassError
from hourglass.inference.predictor import BOX_PADDING
from hourglass.people.boxes import box_problem, whole_image_box

from .batching import Batcher, QueueFull, Turns, takes_turns
from .metrics import Metrics
from .tracking import Tracker, new_tracker


@dataclass(frozen=True)
class ServeSettings:
    """What ``hourglass serve`` was told; every worker process builds its service from these.

    Attributes:
        checkpoint: the ``.safetensors`` checkpoint.
        detector: a person detector's name, passed to the Predictor (none: boxes or the whole picture).
        backend, precision, device: the runtime (:func:`hourglass.inference.runtimes.create_runtime`).
        flip: the flip test's default (a request may turn it off or on).
        max_batch, max_wait_ms, max_queue: dynamic batching (:class:`~hourglass.serve.batching.Batcher`).
        timeout_ms: a request's time limit, from its arrival to its answer (504 past it).
        max_body_bytes: the largest request body (413 over it).
        max_pixels: the largest picture, width x height from its header (413 over it, before decoding).
        api_key: when set, every endpoint but ``/healthz`` and the page's files needs ``Bearer <key>``.
        cors_origins: origins allowed to call from a browser (none: CORS closed).
        workers: processes behind the port (torch threads are shared out among them).
    """

    checkpoint: str
    detector: str | None = None
    backend: str = "eager"
    precision: str = "fp32"
    device: str = "cpu"
    flip: bool = True
    max_batch: int = 8
    max_wait_ms: float = 5.0
    max_queue: int = 64
    timeout_ms: float = 30000.0
    max_body_bytes: int = 20 * 2**20
    max_pixels: int = 50_000_000
    api_key: str | None = field(default=None, repr=False)
    cors_origins: tuple[str, ...] = ()
    workers: int = 1

    def __post_init__(self) -> None:
        checks = {
            "--max-batch": self.max_batch >= 1,
            "--max-wait-ms": self.max_wait_ms >= 0,
            "--max-queue": self.max_queue >= self.max_batch,
            "--timeout-ms": self.timeout_ms > 0,
            "--max-body-mb": self.max_body_bytes > 0,
            "--max-pixels": self.max_pixels > 0,
            "--workers": self.workers >= 1,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ConfigError(
                f"{', '.join(bad)}: out of range (max-batch, workers >= 1; max-queue >= max-batch; "
                f"max-wait-ms >= 0; time limit and caps > 0), got {self!r}"
            )
        if self.api_key is not None and not self.api_key.strip():
            raise ConfigError("--api-key (HOURGLASS_API_KEY) is empty; give a key or leave it unset")

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeSettings:
        raw = json.loads(text)
        raw["cors_origins"] = tuple(raw.get("cors_origins") or ())
        return cls(**raw)


def checkpoint_meta(settings: ServeSettings) -> Any:
    """The checkpoint's :class:`~hourglass.checkpoint.meta.CheckpointMeta` (its header only), for ``/v1/model``
    and for checking a checkpoint before worker processes start. A table name or URL is fetched and converted
    once here (:func:`hourglass.checkpoint.hub.resolve_checkpoint`), so workers find it in the cache."""
    from hourglass.checkpoint.hub import resolve_checkpoint
    from hourglass.checkpoint.io import read_meta

    return read_meta(resolve_checkpoint(settings.checkpoint))


def predictor_options(settings: ServeSettings) -> dict[str, Any]:
    """Keyword arguments for ``Predictor.from_checkpoint`` beyond the runtime's: the person detector, if any
    (a published detector's name or an ``.onnx`` file, :func:`hourglass.people.detect.open_detector`)."""
    return {} if settings.detector is None else {"detector": settings.detector}


class RequestError(Exception):
    """A request answered with an error status and ``{"error": message}``."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = dict(headers or {})


class PoseService:
    """One predictor, its batcher and its counters; :meth:`predict` is the pipeline of one picture.

    Args:
        predictor: a :class:`~hourglass.inference.predictor.Predictor` (its runtime, codec and skeleton).
        settings: the caps, batching and time limit.
        meta: the checkpoint's metadata (for ``/v1/model``), if known.
        tracker_factory: makes one :class:`~hourglass.serve.tracking.Tracker` per stream connection (default:
            :func:`~hourglass.serve.tracking.new_tracker` for the predictor's skeleton).
    """

    def __init__(
        self,
        predictor: Any,
        settings: ServeSettings,
        meta: Any | None = None,
        tracker_factory: Callable[[], Tracker] | None = None,
    ) -> None:
        self.predictor = predictor
        self.settings = settings
        self.meta = meta
        self.tracker_factory = tracker_factory or (lambda: new_tracker(predictor.skeleton))
        self.metrics = Metrics()
        self.runtime = getattr(predictor, "runtime", None)  # a Runtime, or None for a stand-in predictor
        self.turns = Turns(takes_turns(self.runtime))
        self.batcher = Batcher(
            predictor,
            settings.max_batch,
            settings.max_wait_ms,
            settings.max_queue,
            on_batch=lambda size, _: self.metrics.observe_batch(size),
            turns=self.turns,
        )
        self._last_batch_s = 0.0

    @classmethod
    def from_settings(cls, settings: ServeSettings) -> PoseService:
        """Load the checkpoint (one read) into a Predictor and read its metadata for ``/v1/model``."""
        from hourglass.inference.predictor import Predictor

        options = predictor_options(settings)
        predictor = Predictor.from_checkpoint(
            settings.checkpoint,
            backend=settings.backend,
            precision=settings.precision,
            flip=settings.flip,
            batch_size=settings.max_batch,
            device=settings.device,
            **options,
        )
        return cls(predictor, settings, checkpoint_meta(settings))

    def runtime_line(self) -> str:
        """``pose network: openvino bf16 (auto: ...)``: which runtime serves, and how it was chosen."""
        from hourglass.inference.runtimes import runtime_line

        return runtime_line(self.runtime, self.settings.backend, self.settings.precision)

    def skeleton_json(self) -> dict[str, Any]:
        skel = self.predictor.skeleton
        return {
            "name": skel.name,
            "joints": list(skel.joint_names),
            "edges": [list(e) for e in skel.edges],
            "colours": [list(c) for c in skel.colours],
            "flip_index": list(skel.flip_index),
        }

    def model_json(self) -> dict[str, Any]:
        """``/v1/model``: skeleton, sizes, provenance (the checkpoint's file name, never its path), serving."""
        s, codec = self.settings, self.predictor.codec
        out: dict[str, Any] = {
            "skeleton": self.skeleton_json(),
            "input_size": list(codec.input_size),
            "heatmap_size": list(codec.heatmap_size),
            "serving": {
                "backend": getattr(self.runtime, "backend", "") or s.backend,
                "precision": getattr(self.runtime, "precision", "") or s.precision,
                "requested": {"backend": s.backend, "precision": s.precision},
                "flip": s.flip,
                "max_batch": s.max_batch,
                "max_wait_ms": s.max_wait_ms,
                "max_queue": s.max_queue,
                "timeout_ms": s.timeout_ms,
                "max_body_bytes": s.max_body_bytes,
                "max_pixels": s.max_pixels,
                "detector": s.detector,
            },
        }
        if self.meta is not None:
            meta = self.meta
            out["model"] = {"name": meta.model, "kwargs": meta.model_kwargs}
            out["provenance"] = {
                "checkpoint": Path(s.checkpoint).name,
                "step": meta.step,
                "epoch": meta.epoch,
                "metrics": meta.metrics,
                "data_format": meta.data_format,
                "source": meta.source,
            }
        return out

    def people_boxes(self, rgb: np.ndarray, boxes: np.ndarray | None) -> tuple[np.ndarray, float, np.ndarray | None]:
        """The boxes ``(P, 4)`` to crop, their padding and the detector's box scores ``(P,)`` (None without one).

        A picture sent without boxes gets the predictor's person detector's people (``--detector``; none when it
        finds nobody), or without a detector the whole picture as one person, as ``hourglass predict`` does.
        """
        height, width = rgb.shape[:2]
        if boxes is None and self.predictor.detector is not None:
            found, scores = self.predictor.detector(rgb)
            return np.asarray(found, dtype=np.float64).reshape(-1, 4), BOX_PADDING, np.asarray(scores).reshape(-1)
        if boxes is None:
            return whole_image_box(width, height)[None], 1.0, None
        for j, box in enumerate(boxes):
            problem = box_problem(box, width, height)
            if problem is not None:
                raise RequestError(400, f"boxes[{j}] {problem}")
        return boxes, BOX_PADDING, None

    async def _between_batches(self, work: Callable[..., Any], *args: Any) -> Any:
        """``work(*args)`` in a worker thread, in the stages' turn (:attr:`turns`): not while a batch runs."""

        def run() -> Any:
            with self.turns.stage():
                return work(*args)

        return await asyncio.to_thread(run)

    async def predict(self, data: bytes, boxes: np.ndarray | None, flip: bool | None, timeout_s: float) -> dict:
        """The predict JSON of one picture; :class:`RequestError` for a bad picture (400, 413), a full queue
        (503) or the time limit (504)."""
        try:
            return await asyncio.wait_for(self._predict(data, boxes, flip), timeout_s)
        except (asyncio.TimeoutError, TimeoutError):
            raise RequestError(504, f"no answer within the time limit of {timeout_s * 1000:.0f} ms") from None

    async def _predict(self, data: bytes, boxes: np.ndarray | None, flip: bool | None) -> dict:
        t0 = time.perf_counter()
        try:
            height, width = image_header_size(data, "the picture")
        except HourglassError as err:
            raise RequestError(400, str(err)) from None
        if height * width > self.settings.max_pixels:
            raise RequestError(
                413,
                f"the picture is {width}x{height} = {height * width} pixels, over the cap of "
                f"{self.settings.max_pixels} (--max-pixels); it was not decoded",
            )
        try:
            rgb = await self._between_batches(decode_image, data, "the picture")
        except HourglassError as err:
            raise RequestError(400, str(err)) from None
        t1 = time.perf_counter()
        height, width = rgb.shape[:2]  # upright: the EXIF turn applied
        person_boxes, padding, box_scores = await self._between_batches(self.people_boxes, rgb, boxes)
        cut = await self._between_batches(lambda: [self.predictor.crop(rgb, box, padding) for box in person_boxes])
        t2 = time.perf_counter()
        results = []
        if cut:
            try:
                futures = self.batcher.submit(
                    np.stack([c for c, _ in cut]), [m for _, m in cut], self.settings.flip if flip is None else flip
                )
            except QueueFull as err:
                retry = max(1, math.ceil(self._last_batch_s * self.batcher.depth / self.settings.max_batch))
                raise RequestError(503, f"busy: {err}; retry later", {"Retry-After": str(retry)}) from None
            results = await asyncio.gather(*(asyncio.wrap_future(f) for f in futures))
            self._last_batch_s = max(r.network_ms for r in results) / 1000.0
        t3 = time.perf_counter()
        people = []
        for i, (box, r) in enumerate(zip(person_boxes, results, strict=True)):
            keypoints = np.concatenate([r.keypoints, r.scores[:, None]], axis=1)
            person = {
                "bbox": [round(float(v), 2) for v in box],
                "score": round(float(np.mean(r.scores)), 4),
                "keypoints": [[round(float(x), 2), round(float(y), 2), round(float(s), 4)] for x, y, s in keypoints],
            }
            if box_scores is not None:
                person["bbox_score"] = round(float(box_scores[i]), 4)
            people.append(person)
        network = max((r.network_ms for r in results), default=0.0)
        return {
            "people": people,
            "skeleton": self.skeleton_json(),
            "image": {"width": width, "height": height},
            "batch": max((r.batch for r in results), default=0),
            "timing_ms": {
                "decode": round((t1 - t0) * 1000, 2),
                "crop": round((t2 - t1) * 1000, 2),
                "queue": round(max((r.queued_ms for r in results), default=0.0), 2),
                "network": round(network, 2),
                "total": round((t3 - t0) * 1000, 2),
            },
        }


# --- request fields -------------------------------------------------------------------------------------


def parse_boxes(text: str | None, limit: int) -> np.ndarray | None:
    """``boxes`` of a request: JSON ``[[x, y, w, h], ...]`` (at most ``limit``) -> ``(P, 4)``; None if absent."""
    if text is None or text == "":
        return None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError:
        raise RequestError(400, f"boxes: not JSON (expected [[x, y, w, h], ...]), got {text[:60]!r}") from None
    if not isinstance(raw, list) or not all(
        isinstance(b, list) and len(b) == 4 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in b)
        for b in raw
    ):
        raise RequestError(400, f"boxes: expected a list of [x, y, w, h] lists of 4 numbers, got {text[:60]!r}")
    if len(raw) > limit:
        raise RequestError(400, f"boxes: {len(raw)} boxes, at most {limit} (the queue's size, --max-queue)")
    return np.asarray(raw, dtype=np.float64).reshape(-1, 4)


def parse_flip(text: str | None) -> bool | None:
    """``flip`` of a request: true/false/1/0 (any case); None if absent (the server's default)."""
    if text is None or text == "":
        return None
    value = text.strip().lower()
    if value not in ("true", "false", "1", "0"):
        raise RequestError(400, f"flip: expected true or false, got {text[:20]!r}")
    return value in ("true", "1")


def request_timeout(settings: ServeSettings, header: str | None) -> float:
    """Seconds: the server's limit, or less when the client's ``X-Timeout-Ms`` asks for less."""
    limit = settings.timeout_ms
    if header is not None:
        try:
            asked = float(header)
        except ValueError:
            raise RequestError(400, f"X-Timeout-Ms: expected milliseconds, got {header[:20]!r}") from None
        if not asked > 0:
            raise RequestError(400, f"X-Timeout-Ms: expected a positive number of milliseconds, got {header[:20]!r}")
        limit = min(limit, asked)
    return limit / 1000.0


def stream_options(text: str) -> dict[str, str]:
    """A stream's text message ``{"boxes": [...] | null, "flip": true | false | null}`` as request fields."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError:
        raise RequestError(400, f"stream options: not JSON, got {text[:60]!r}") from None
    if not isinstance(raw, dict) or not set(raw) <= {"boxes", "flip"}:
        raise RequestError(400, f'stream options: expected {{"boxes": ..., "flip": ...}}, got {text[:60]!r}')
    return {key: "" if value is None else json.dumps(value) for key, value in raw.items()}
