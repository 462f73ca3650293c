"""Real ``hourglass serve`` processes on 127.0.0.1 for the service's tests, and an HTTP client.

Each server is the command a user runs (``python -m hourglass serve ...``) in its own session; the tests
talk to it over real sockets with the standard library's ``http.client`` and the ``websockets`` client.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sessions import own_session


def query(**fields: Any) -> str:
    """``?name=value&...`` with each value JSON-encoded unless it is a string, percent-encoded."""
    from urllib.parse import urlencode

    return "?" + urlencode({k: v if isinstance(v, str) else json.dumps(v) for k, v in fields.items()})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Server:
    """A running ``hourglass serve``: its process, port and log."""

    proc: subprocess.Popen
    port: int
    log: Path

    def call(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> Answer:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            res = conn.getresponse()
            return Answer(res.status, {k.lower(): v for k, v in res.getheaders()}, res.read())
        finally:
            conn.close()

    def post_image(self, data: bytes, query: str = "", headers: dict[str, str] | None = None) -> Answer:
        return self.call("POST", "/v1/predict" + query, data, {"Content-Type": "image/jpeg", **(headers or {})})


@contextmanager
def serve(checkpoint: Path, tmp_path: Path, *options: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    """``hourglass serve --checkpoint CK --port P OPTIONS`` until ``/healthz`` answers; killed on leaving."""
    port = free_port()
    log = tmp_path / f"serve-{port}.log"
    cmd = [sys.executable, "-m", "hourglass", "serve", "--checkpoint", str(checkpoint), "--port", str(port)]
    with (
        log.open("wb") as out,
        own_session([*cmd, *options], stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}) as proc,
    ):
        server = Server(proc, port, log)
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"hourglass serve exited with {proc.returncode}:\n{log.read_text()}")
            try:
                if server.call("GET", "/healthz").status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"hourglass serve did not answer within 120 s:\n{log.read_text()}")
            time.sleep(0.2)
        yield server


API_KEY = "s3cret-key"
CORS_ORIGIN = "http://app.example"
BOXES = [[60.0, 20.0, 260.0, 420.0], [300.0, 40.0, 250.0, 400.0]]
"""Two person boxes inside every sample photo and inside a 640x480 camera frame."""


AUTH = {"Authorization": f"Bearer {API_KEY}"}
