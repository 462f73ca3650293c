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
504 past the time limit. An answer given before the body was read (a 413, 401, 404) closes the connection
only once the rest of the body is read and dropped, within a bound (:class:`LingeringClose`). Expected errors
of the library (:class:`~hourglass.errors.HourglassError`) in a request are 400s; the server goes on serving.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np

from hourglass.errors import ConfigError
from hourglass.extras import require_extras

from .metrics import CONTENT_TYPE
from .service import PoseService, RequestError, ServeSettings, parse_boxes, parse_flip, request_timeout, stream_options

if TYPE_CHECKING:  # Starlette comes with the [serve] extra: imported where used, after require_extras
    from starlette.applications import Starlette
    from starlette.datastructures import Headers
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.types import ASGIApp, Message, Receive, Scope, Send
    from starlette.websockets import WebSocket

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


# --- reading a request -------------------------------------------------------------------------------------


async def read_body(request: Request, cap: int) -> bytes:
    """The whole body, or 413 as soon as it is known to be over ``cap`` bytes: at once from ``Content-Length``,
    or when the count of a chunked body passes it (the rest is :class:`LingeringClose`'s to read and discard)."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > cap:
        raise RequestError(413, f"the body is {length} bytes, over the cap of {cap} (--max-body-mb)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise RequestError(413, f"the body is {size} bytes so far, over the cap of {cap} (--max-body-mb)")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_upload(request: Request, cap: int) -> tuple[bytes, dict[str, str]]:
    """The picture's bytes and the request's fields (query parameters, then multipart fields over them)."""
    from starlette.datastructures import UploadFile
    from starlette.formparsers import MultiPartException, MultiPartParser

    body = await read_body(request, cap)
    fields = dict(request.query_params)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind.startswith("image/"):
        data = body
    elif kind == "multipart/form-data":

        async def once() -> AsyncIterator[bytes]:
            yield body

        try:
            form = await MultiPartParser(request.headers, once(), max_files=1, max_fields=8).parse()
        except MultiPartException as err:
            raise RequestError(400, f"multipart body: {err}") from None
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            await form.close()
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


def json_response(payload: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> JSONResponse:
    from starlette.responses import JSONResponse

    return JSONResponse(payload, status_code=status, headers=dict(headers or {}))


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return json_response({"error": message}, status, headers)


# --- endpoints ---------------------------------------------------------------------------------------------


def _service(conn: Request | WebSocket) -> PoseService:
    return conn.app.state.service


async def predict_endpoint(request: Request) -> Response:
    service = _service(request)
    try:
        data, fields = await read_upload(request, service.settings.max_body_bytes)
        timeout = request_timeout(service.settings, request.headers.get("x-timeout-ms"))
        boxes = parse_boxes(fields.get("boxes"), service.settings.max_queue)
        result = await service.predict(data, boxes, parse_flip(fields.get("flip")), timeout)
    except RequestError as err:
        return error_response(err.status, str(err), err.headers)
    return json_response(result)


async def health_endpoint(request: Request) -> Response:
    return json_response({"status": "ok", "pid": os.getpid(), "queue_depth": _service(request).batcher.depth})


async def model_endpoint(request: Request) -> Response:
    return json_response(_service(request).model_json())


async def metrics_endpoint(request: Request) -> Response:
    from starlette.responses import Response

    service = _service(request)
    return Response(service.metrics.render(service.batcher.depth), media_type=CONTENT_TYPE)


async def stream_endpoint(ws: WebSocket) -> None:
    """Frames in, poses with ``track_id`` out; one tracker for the connection; a bad frame gets an error
    message and the stream goes on."""
    from starlette.websockets import WebSocketDisconnect

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
                    options = stream_options(message["text"])
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
                frame += 1 if message.get("text") is None else 0
                continue
            people, k = result["people"], service.predictor.skeleton.num_joints
            points = np.asarray([p["keypoints"] for p in people], dtype=np.float64).reshape(len(people), k, 3)
            ids = tracker.update(
                np.asarray([p["bbox"] for p in people]).reshape(-1, 4), points[..., :2], points[..., 2]
            )
            for person, track_id in zip(people, ids, strict=True):
                person["track_id"] = int(track_id)
            result["frame"] = frame
            frame += 1
            service.metrics.observe_request("/v1/stream", 200, time.perf_counter() - started)
            await ws.send_json(result)
    except WebSocketDisconnect:
        return


# --- the application ---------------------------------------------------------------------------------------


LINGER_BYTES = 128 * 2**20
"""The most of an unread request body that :class:`LingeringClose` reads and discards after answering."""
LINGER_SECONDS = 30.0
"""The longest it lingers in all (nginx's ``lingering_time``)."""
LINGER_IDLE_SECONDS = 5.0
"""The longest it waits for the next piece of the body (nginx's ``lingering_timeout``)."""


class LingeringClose:
    """ASGI middleware: an answer given before the request's body was read whole (a 413 from ``Content-Length``,
    a 401, a 404) goes out at once with ``Connection: close``; the connection then stays open while the rest of
    the body is read and thrown away, up to :data:`LINGER_BYTES`, :data:`LINGER_SECONDS` in all and
    :data:`LINGER_IDLE_SECONDS` between pieces (nginx's lingering close), and closes after that.

    A client that sends its whole body before it reads (``urllib``, ``http.client``, ``requests``) would otherwise
    get a reset connection instead of the answer: a socket closed with unread data sends RST, and the client's
    kernel throws away the answer waiting in its buffer. The answer is held open by its last (empty) body message:
    uvicorn reads no more of a request once its response is complete.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from starlette.datastructures import Headers

        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        unread = [headers.get("content-length", "0") != "0" or "transfer-encoding" in headers]
        lingering = [False]

        async def receive_noting() -> Message:
            message = await receive()
            unread[0] = unread[0] and message["type"] == "http.request" and message.get("more_body", False)
            return message

        async def send_holding(message: Message) -> None:
            if message["type"] == "http.response.start" and unread[0]:
                lingering[0] = True
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            elif message["type"] == "http.response.body" and lingering[0] and not message.get("more_body", False):
                message = {**message, "more_body": True}  # all of the answer, but held open: its end comes below
            await send(message)

        await self.app(scope, receive_noting, send_holding)
        if lingering[0]:
            await self._discard(receive_noting, unread)
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    @staticmethod
    async def _discard(receive: Receive, unread: list[bool]) -> None:
        """Read and drop the body's pieces until its end, the client's leaving, or a bound."""
        loop = asyncio.get_running_loop()
        read, deadline = 0, loop.time() + LINGER_SECONDS
        while unread[0] and read <= LINGER_BYTES and loop.time() < deadline:
            try:
                message = await asyncio.wait_for(receive(), min(LINGER_IDLE_SECONDS, deadline - loop.time()))
            except asyncio.TimeoutError:
                return
            read += len(message.get("body", b""))


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
        from starlette.datastructures import Headers
        from starlette.websockets import WebSocket

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
    """The Starlette application of ``service`` (its batcher starts with the app and drains when it stops).

    Raises:
        MissingExtraError: the ``[serve]`` extra is not installed.
    """
    require_extras("serve")
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware
    from starlette.middleware.cors import CORSMiddleware
    from starlette.responses import Response
    from starlette.routing import Route, WebSocketRoute

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
            await asyncio.to_thread(service.batcher.close)

    middleware = [Middleware(LingeringClose)]
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
    service = PoseService.from_settings(settings)
    logging.getLogger("uvicorn.error").info("worker %d: %s", os.getpid(), service.runtime_line())
    return create_app(service)


def serve(
    settings: ServeSettings,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
    announce: Callable[[str], None] | None = None,
) -> None:
    """Serve until SIGTERM or Ctrl+C: requests in flight are answered first, then the process returns.

    With one worker the model is loaded here, before the port is bound (a bad checkpoint is one line), and
    ``announce`` (if given) gets the line saying which runtime runs it; with more, uvicorn's supervisor starts
    ``settings.workers`` processes sharing the port, each loading the model (:func:`app_from_env`, which logs
    that line) after this process checked that the checkpoint reads.
    """
    import signal

    require_extras("serve")
    import uvicorn

    if settings.workers > 1:
        from uvicorn.supervisors import Multiprocess

        from .service import checkpoint_meta, predictor_options

        checkpoint_meta(settings)
        predictor_options(settings)
        os.environ[SETTINGS_ENV] = settings.to_json()
        app = "hourglass.serve.app:app_from_env"
        config = uvicorn.Config(app, host, port, factory=True, workers=settings.workers, log_level=log_level)
        Multiprocess(config, sockets=[config.bind_socket()]).run()  # its own SIGTERM handling: drain, return
        return
    service = PoseService.from_settings(settings)
    if announce is not None:
        announce(service.runtime_line())
    server = uvicorn.Server(uvicorn.Config(create_app(service), host, port, log_level=log_level))
    # uvicorn re-raises the signal that stopped it once it has drained; handlers that do nothing make
    # SIGTERM and Ctrl+C end in a plain return (exit status 0) after the drain instead of a death by signal.
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not server.started:
        raise ConfigError(f"the server did not start on {host}:{port} (is the port taken? see the lines above)")
