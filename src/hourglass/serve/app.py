"""The pose service: a Starlette application (HTTP API, WebSocket stream, web page) over one Predictor.

Endpoints (``docs/DEPLOY.md`` gives examples):

- ``POST /v1/predict``: an image (raw PNG/JPEG bytes with an ``image/*`` type, or a multipart ``file``),
  optional ``boxes`` (JSON ``[[x, y, w, h], ...]``; none: the whole picture is one person) and ``flip``
  (query parameters, or multipart fields) -> ``{"people": [{"bbox", "score", "keypoints": [[x, y, score],
  ...]}], "skeleton", "image", "batch", "timing_ms"}``. A client may shorten its own time limit with the
  header ``X-Timeout-Ms`` (never lengthen it).
- ``GET /healthz`` (never needs the key), ``GET /v1/model``, ``GET /metrics`` (Prometheus text).
- ``WS /v1/stream``: binary messages are frames (PNG/JPEG), a text message ``{"boxes": ..., "flip": ...}``
  sets the options of the frames after it; each frame is answered with the predict JSON plus ``frame`` and
  a ``track_id`` per person (one tracker per connection).
- ``GET /``, ``/app.js``, ``/style.css``: the web page (package data, read once; no request names a file).

Errors are JSON ``{"error": "..."}``: 400 bad input, 401 no or wrong key, 413 a body or picture over its
cap (the picture's size is read from its header, before decoding), 503 a full queue (``Retry-After``),
504 past the time limit. Expected errors of the library (:class:`~hourglass.errors.HourglassError`) in a
request are 400s; the server goes on serving.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import inspect
import json
import math
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from hourglass.errors import ConfigError, HourglassError
from hourglass.inference.boxes import box_problem, whole_image_box
from hourglass.inference.predictor import BOX_PADDING

from .batching import Batcher, QueueFull
from .metrics import CONTENT_TYPE, Metrics
from .tracking import IouTracker, Tracker

SETTINGS_ENV = "HOURGLASS_SERVE_SETTINGS"
"""Environment variable that carries the settings (JSON) to worker processes (``--workers N``)."""
PUBLIC = frozenset({"/healthz", "/", "/app.js", "/style.css"})
"""Paths served without the API key: the health check and the page's own files (no data, no model)."""
PAGE_FILES = {
    "/": ("index.html", "text/html"),
    "/app.js": ("app.js", "text/javascript"),
    "/style.css": ("style.css", "text/css"),
}
ENDPOINTS = frozenset({*PAGE_FILES, "/healthz", "/v1/model", "/v1/predict", "/v1/stream", "/metrics"})
STREAM_PROTOCOL = "hourglass.v1"
"""WebSocket subprotocol; a browser, which cannot set ``Authorization`` on a WebSocket, offers the key as a
second subprotocol ``bearer.<base64url of the key>``."""


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
        tracker_factory: makes one :class:`~hourglass.serve.tracking.Tracker` per stream connection.
    """

    def __init__(
        self,
        predictor: Any,
        settings: ServeSettings,
        meta: Any | None = None,
        tracker_factory: Callable[[], Tracker] = IouTracker,
    ) -> None:
        self.predictor = predictor
        self.settings = settings
        self.meta = meta
        self.tracker_factory = tracker_factory
        self.metrics = Metrics()
        self.batcher = Batcher(
            predictor,
            settings.max_batch,
            settings.max_wait_ms,
            settings.max_queue,
            on_batch=lambda size, _: self.metrics.observe_batch(size),
        )
        self._last_batch_s = 0.0

    @classmethod
    def from_settings(cls, settings: ServeSettings) -> PoseService:
        """Load the checkpoint (one read) into a Predictor and read its metadata for ``/v1/model``."""
        from hourglass.checkpoint.io import read_meta
        from hourglass.inference.predictor import Predictor

        options: dict[str, Any] = {}
        if settings.detector is not None:
            if "detector" not in inspect.signature(Predictor.from_checkpoint).parameters:
                raise ConfigError(
                    f"--detector {settings.detector}: this version of hourglass has no person detector; "
                    "send boxes with each picture instead"
                )
            options["detector"] = settings.detector
        predictor = Predictor.from_checkpoint(
            settings.checkpoint,
            backend=settings.backend,
            precision=settings.precision,
            flip=settings.flip,
            batch_size=settings.max_batch,
            device=settings.device,
            **options,
        )
        return cls(predictor, settings, read_meta(settings.checkpoint))

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
                "backend": s.backend,
                "precision": s.precision,
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

    def people_boxes(self, rgb: np.ndarray, boxes: np.ndarray | None) -> tuple[np.ndarray, float]:
        """The boxes ``(P, 4)`` to crop and their padding: the request's, else the whole picture.

        The one place a person detector comes in (``--detector``): with one, the Predictor's detector
        gives the boxes of a picture sent without any.
        """
        height, width = rgb.shape[:2]
        if boxes is None:
            return whole_image_box(width, height)[None], 1.0
        for j, box in enumerate(boxes):
            problem = box_problem(box, width, height)
            if problem is not None:
                raise RequestError(400, f"boxes[{j}] {problem}")
        return boxes, BOX_PADDING

    async def predict(self, data: bytes, boxes: np.ndarray | None, flip: bool | None, timeout_s: float) -> dict:
        """The predict JSON of one picture; :class:`RequestError` for a bad picture (400, 413), a full queue
        (503) or the time limit (504)."""
        try:
            return await asyncio.wait_for(self._predict(data, boxes, flip), timeout_s)
        except (asyncio.TimeoutError, TimeoutError):
            raise RequestError(504, f"no answer within the time limit of {timeout_s * 1000:.0f} ms") from None

    async def _predict(self, data: bytes, boxes: np.ndarray | None, flip: bool | None) -> dict:
        from hourglass.data.images import decode_image, image_header_size

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
            rgb = await run_in_threadpool(decode_image, data, "the picture")
        except HourglassError as err:
            raise RequestError(400, str(err)) from None
        t1 = time.perf_counter()
        person_boxes, padding = self.people_boxes(rgb, boxes)
        cut = await run_in_threadpool(lambda: [self.predictor.crop(rgb, box, padding) for box in person_boxes])
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
        for box, r in zip(person_boxes, results, strict=True):
            keypoints = np.concatenate([r.keypoints, r.scores[:, None]], axis=1)
            people.append(
                {
                    "bbox": [round(float(v), 2) for v in box],
                    "score": round(float(np.mean(r.scores)), 4),
                    "keypoints": [
                        [round(float(x), 2), round(float(y), 2), round(float(s), 4)] for x, y, s in keypoints
                    ],
                }
            )
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


# --- request parsing ---------------------------------------------------------------------------------------


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


async def read_capped(receive: AsyncIterator[bytes], cap: int) -> bytes:
    """The whole body, or 413 as soon as it passes ``cap`` bytes."""
    chunks, size = [], 0
    async for chunk in receive:
        size += len(chunk)
        if size > cap:
            raise RequestError(413, f"the body is over the cap of {cap} bytes (--max-body-mb)")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_upload(request: Request, cap: int) -> tuple[bytes, dict[str, str]]:
    """The picture's bytes and the request's fields (query parameters, then multipart fields over them)."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > cap:
        raise RequestError(413, f"the body is {int(length)} bytes, over the cap of {cap} (--max-body-mb)")
    fields = dict(request.query_params)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind.startswith("image/"):
        data = await read_capped(request.stream(), cap)
    elif kind == "multipart/form-data":
        body = await read_capped(request.stream(), cap)

        async def once() -> AsyncIterator[bytes]:
            yield body

        try:
            form = await MultiPartParser(request.headers, once(), max_files=1, max_fields=8).parse()
        except MultiPartException as err:
            raise RequestError(400, f"multipart body: {err}") from None
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise RequestError(400, "multipart body: expected a 'file' part holding the picture")
        data = await upload.read()
        await form.close()
        fields.update({k: v for k, v in form.items() if isinstance(v, str)})
    else:
        raise RequestError(
            400,
            f"Content-Type {kind or '(none)'!r}: expected an image/* body (raw PNG or JPEG bytes) "
            "or multipart/form-data with a 'file' part",
        )
    if not data:
        raise RequestError(400, "the picture is empty (0 bytes)")
    return data, fields


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


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=dict(headers or {}))


# --- endpoints ---------------------------------------------------------------------------------------------


def _service(conn: Request | WebSocket) -> PoseService:
    return conn.app.state.service


async def predict_endpoint(request: Request) -> Response:
    service = _service(request)
    try:
        timeout = request_timeout(service.settings, request.headers.get("x-timeout-ms"))
        data, fields = await read_upload(request, service.settings.max_body_bytes)
        boxes = parse_boxes(fields.get("boxes"), service.settings.max_queue)
        result = await service.predict(data, boxes, parse_flip(fields.get("flip")), timeout)
    except RequestError as err:
        return error_response(err.status, str(err), err.headers)
    return JSONResponse(result)


async def health_endpoint(request: Request) -> Response:
    return JSONResponse({"status": "ok", "pid": os.getpid(), "queue_depth": _service(request).batcher.depth})


async def model_endpoint(request: Request) -> Response:
    return JSONResponse(_service(request).model_json())


async def metrics_endpoint(request: Request) -> Response:
    service = _service(request)
    return Response(service.metrics.render(service.batcher.depth), media_type=CONTENT_TYPE)


async def stream_endpoint(ws: WebSocket) -> None:
    """Frames in, poses with ``track_id`` out; one tracker for the connection; a bad frame gets an error
    message and the stream goes on."""
    service = _service(ws)
    offered = [p.strip() for p in ws.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
    await ws.accept(subprotocol=STREAM_PROTOCOL if STREAM_PROTOCOL in offered else None)
    tracker = service.tracker_factory()
    boxes, flip, frame = None, None, 0
    timeout = service.settings.timeout_ms / 1000.0
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            started = time.perf_counter()
            try:
                if message.get("text") is not None:
                    options = _stream_options(message["text"])
                    boxes = parse_boxes(options["boxes"], service.settings.max_queue) if "boxes" in options else boxes
                    flip = parse_flip(options["flip"]) if "flip" in options else flip
                    await ws.send_json({"options": {"boxes": None if boxes is None else boxes.tolist(), "flip": flip}})
                    continue
                data = message.get("bytes") or b""
                if len(data) > service.settings.max_body_bytes:
                    raise RequestError(413, f"the frame is over the cap of {service.settings.max_body_bytes} bytes")
                if not data:
                    raise RequestError(400, "the frame is empty (0 bytes)")
                result = await service.predict(data, boxes, flip, timeout)
            except RequestError as err:
                service.metrics.observe_request("/v1/stream", err.status, time.perf_counter() - started)
                await ws.send_json({"error": str(err), "status": err.status, "frame": frame})
                frame += 1
                continue
            people = result["people"]
            ids = tracker.update(
                np.asarray([p["bbox"] for p in people]).reshape(-1, 4),
                np.asarray([[k[:2] for k in p["keypoints"]] for p in people]).reshape(len(people), -1, 2),
                np.asarray([[k[2] for k in p["keypoints"]] for p in people]).reshape(len(people), -1),
            )
            for person, track_id in zip(people, ids, strict=True):
                person["track_id"] = int(track_id)
            result["frame"] = frame
            frame += 1
            service.metrics.observe_request("/v1/stream", 200, time.perf_counter() - started)
            await ws.send_json(result)
    except WebSocketDisconnect:
        return


def _stream_options(text: str) -> dict[str, str]:
    """A stream's text message ``{"boxes": [...] | null, "flip": true | false | null}`` as request fields."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError:
        raise RequestError(400, f"stream options: not JSON, got {text[:60]!r}") from None
    if not isinstance(raw, dict) or not set(raw) <= {"boxes", "flip"}:
        raise RequestError(400, f'stream options: expected {{"boxes": ..., "flip": ...}}, got {text[:60]!r}')
    return {key: "" if value is None else json.dumps(value) for key, value in raw.items()}


# --- the application ---------------------------------------------------------------------------------------


class Guard:
    """ASGI middleware: the API key (constant-time comparison) and the request counters.

    With a key, every path but :data:`PUBLIC` needs ``Authorization: Bearer <key>`` (a WebSocket may offer
    it as the subprotocol ``bearer.<base64url of the key>`` instead): 401 otherwise, and a WebSocket is
    closed before it opens (policy violation).
    """

    def __init__(self, app: ASGIApp, service: PoseService) -> None:
        self.app = app
        self.service = service
        key = service.settings.api_key
        self._key = key.encode() if key is not None else None

    def authorised(self, headers: Headers) -> bool:
        if self._key is None:
            return True
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self._key):
            return True
        for protocol in headers.get("sec-websocket-protocol", "").split(","):
            name, _, encoded = protocol.strip().partition(".")
            if name == "bearer" and encoded:
                try:
                    given_key = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
                except ValueError:
                    continue
                if hmac.compare_digest(given_key, self._key):
                    return True
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        allowed = path in PUBLIC or self.authorised(Headers(scope=scope))
        if scope["type"] == "websocket":
            if not allowed:
                await WebSocket(scope, receive, send).close(code=1008, reason="needs the API key")
                return
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), [500]

        async def send_counting(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            if allowed:
                await self.app(scope, receive, send_counting)
            else:
                response = error_response(
                    401, "this endpoint needs Authorization: Bearer <key>", {"WWW-Authenticate": "Bearer"}
                )
                await response(scope, receive, send_counting)
        finally:
            endpoint = path if path in ENDPOINTS else "other"
            self.service.metrics.observe_request(endpoint, status[0], time.perf_counter() - started)


def _page_files() -> dict[str, tuple[bytes, str]]:
    static = resources.files("hourglass.serve") / "static"
    return {path: ((static / name).read_bytes(), kind) for path, (name, kind) in PAGE_FILES.items()}


def create_app(service: PoseService) -> Starlette:
    """The Starlette application of ``service`` (its batcher starts with the app and drains when it stops)."""
    pages = _page_files()

    async def page(request: Request) -> Response:
        body, kind = pages[request.url.path]
        return Response(body, media_type=kind, headers={"Cache-Control": "no-cache"})

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return error_response(exc.status_code, str(exc.detail), exc.headers)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        service.batcher.start()
        try:
            yield
        finally:
            await run_in_threadpool(service.batcher.close)

    middleware = []
    if service.settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(service.settings.cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type", "X-Timeout-Ms"],
            )
        )
    middleware.append(Middleware(Guard, service=service))
    routes: list[Any] = [Route(path, page) for path in PAGE_FILES]
    routes += [
        Route("/healthz", health_endpoint),
        Route("/v1/model", model_endpoint),
        Route("/v1/predict", predict_endpoint, methods=["POST"]),
        Route("/metrics", metrics_endpoint),
        WebSocketRoute("/v1/stream", stream_endpoint),
    ]
    app = Starlette(
        routes=routes, middleware=middleware, exception_handlers={HTTPException: http_error}, lifespan=lifespan
    )
    app.state.service = service
    return app


def app_from_env() -> Starlette:
    """The application of one worker process (``uvicorn --workers``): settings from :data:`SETTINGS_ENV`."""
    import torch

    from hourglass.device import usable_cores

    settings = ServeSettings.from_json(os.environ[SETTINGS_ENV])
    torch.set_num_threads(max(1, usable_cores() // settings.workers))
    return create_app(PoseService.from_settings(settings))


def serve(settings: ServeSettings, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    """Serve until SIGTERM or Ctrl+C: requests in flight are answered first, then the process returns.

    With one worker the model is loaded here, before the port is bound (a bad checkpoint is one line);
    with more, uvicorn's supervisor starts ``settings.workers`` processes sharing the port, each loading
    the model (:func:`app_from_env`) after this process checked that the checkpoint reads.
    """
    import signal

    import uvicorn

    if settings.workers > 1:
        from uvicorn.supervisors import Multiprocess

        from hourglass.checkpoint.io import read_meta

        read_meta(settings.checkpoint)
        os.environ[SETTINGS_ENV] = settings.to_json()
        app = "hourglass.serve.app:app_from_env"
        config = uvicorn.Config(app, host, port, factory=True, workers=settings.workers, log_level=log_level)
        Multiprocess(config, sockets=[config.bind_socket()]).run()  # its own SIGTERM handling: drain, return
        return
    server = uvicorn.Server(
        uvicorn.Config(create_app(PoseService.from_settings(settings)), host, port, log_level=log_level)
    )
    # uvicorn re-raises the signal that stopped it once it has drained; a handler that does nothing makes
    # SIGTERM end in a plain return (exit status 0) after the drain instead of a death by signal.
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        server.run()
    finally:
        signal.signal(signal.SIGTERM, previous)
    if not server.started:
        raise ConfigError(f"the server did not start on {host}:{port} (is the port taken? see the lines above)")
