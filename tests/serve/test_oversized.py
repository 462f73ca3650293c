"""Bodies the server refuses before reading them (over ``--max-body-mb``, or without the key): every standard client
reads the JSON answer, because the server reads and discards the rest of the body within its bound
(``LingeringClose``) before it closes; past the bound it closes anyway, and goes on serving."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from hourglass.serve.app import LINGER_BYTES, LINGER_IDLE_SECONDS, LINGER_SECONDS
from servers import AUTH, Answer, Server

BIG = 40 * 2**20
"""Over keyed_server's cap of 0.25 MiB, and by more than the 16 MiB the server once read before refusing."""


def chunks(total: int) -> Iterator[bytes]:
    """A body of ``total`` zero bytes with no length: urllib and http.client send it chunked."""
    for _ in range(total // 2**20):
        yield bytes(2**20)


def urllib_post(server: Server, body: bytes | Iterator[bytes], headers: dict[str, str]) -> Answer:
    request = urllib.request.Request(f"http://127.0.0.1:{server.port}/v1/predict", data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as res:
            return Answer(res.status, {k.lower(): v for k, v in res.getheaders()}, res.read())
    except urllib.error.HTTPError as err:
        return Answer(err.code, {k.lower(): v for k, v in err.headers.items()}, err.read())


def read_answer(sock: socket.socket) -> Answer:
    """The first answer on a raw socket as it comes (a ``100 Continue`` would show as status 100)."""
    reader = sock.makefile("rb")
    status = int(reader.readline().split()[1])
    headers = {}
    while line := reader.readline().strip():
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(status, headers, reader.read(int(headers.get("content-length", 0))))


def open_request(server: Server, framing: str, headers: dict[str, str] | None = None) -> socket.socket:
    """A socket on which a POST /v1/predict with the key has sent its headers and no body yet."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    lines = [
        "POST /v1/predict HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: image/jpeg",
        framing,
        *(f"{k}: {v}" for k, v in {**AUTH, **(headers or {})}.items()),
    ]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


@pytest.mark.parametrize("client", ["urllib", "http.client", "http.client Connection: close"])
def test_clients_that_send_the_whole_body_first_read_the_answer(keyed_server: Server, client: str):
    """urllib (which always says ``Connection: close``) and http.client send all of a body before they read: they
    get the 413 or 401 JSON, not a reset connection, for a body declared by its length or sent chunked."""

    def post(body: bytes | Iterator[bytes], headers: dict[str, str]) -> Answer:
        headers = {"Content-Type": "image/jpeg", **headers}
        if client == "urllib":
            return urllib_post(keyed_server, body, headers)
        if client.endswith("close"):
            headers["Connection"] = "close"
        return keyed_server.call("POST", "/v1/predict", body, headers)

    for body, headers, status, words in (
        (bytes(BIG), AUTH, 413, f"the body is {BIG} bytes, over the cap of 262144 (--max-body-mb)"),
        (chunks(BIG), AUTH, 413, "bytes so far, over the cap of 262144 (--max-body-mb)"),
        (bytes(BIG), {}, 401, "this endpoint needs Authorization: Bearer <key>"),
        (chunks(BIG), {}, 401, "this endpoint needs Authorization: Bearer <key>"),
    ):
        answer = post(body, headers)
        assert answer.status == status and words in answer.json()["error"], (answer.status, answer.body[:300])
        assert answer.headers["connection"] == "close"  # the rest of the body was not read: no keep-alive
    assert keyed_server.call("GET", "/healthz").status == 200


def test_clients_that_read_early_get_the_answer_at_once(keyed_server: Server):
    """The 413 is sent before any of the body is read: a client waiting for ``100 Continue`` gets the 413 instead
    (the server does not invite a body it refuses), and so does one that stops sending to read; the latter is let
    go (a clean close) once it has sent nothing for LINGER_IDLE_SECONDS."""
    with open_request(keyed_server, f"Content-Length: {2**20}", {"Expect": "100-continue"}) as sock:
        answer = read_answer(sock)
    assert answer.status == 413 and "over the cap of 262144" in answer.json()["error"]

    with open_request(keyed_server, f"Content-Length: {8 * 2**20}") as sock:
        sock.sendall(bytes(2**16))
        answer = read_answer(sock)
        assert answer.status == 413 and "over the cap of 262144" in answer.json()["error"]
        answered = time.monotonic()
        sock.settimeout(LINGER_SECONDS + 30)
        assert sock.recv(1) == b""  # closed by the server, after the linger
    assert LINGER_IDLE_SECONDS / 2 < time.monotonic() - answered < LINGER_IDLE_SECONDS + 15
    assert keyed_server.call("GET", "/healthz").status == 200


@pytest.mark.parametrize("framing", [f"Content-Length: {10 * 2**30}", "Transfer-Encoding: chunked"])
def test_a_body_far_past_the_linger_bound_is_cut_off(keyed_server: Server, framing: str):
    """A client that would send 10 GiB is cut off once the server has discarded LINGER_BYTES of it (not read to
    the end, nor held in memory), well within LINGER_SECONDS; the server answers the next request."""
    block = bytes(2**20)
    if framing.startswith("Transfer-Encoding"):
        block = b"100000\r\n" + block + b"\r\n"  # one chunk of 1 MiB
    sent, started = 0, time.monotonic()
    with open_request(keyed_server, framing) as sock, pytest.raises((ConnectionResetError, BrokenPipeError)):
        while sent < 2 * 2**30:
            sock.sendall(block)
            sent += len(block)
    assert LINGER_BYTES <= sent < LINGER_BYTES + 2**28  # the bound, and the sockets' buffers
    assert time.monotonic() - started < LINGER_SECONDS
    assert keyed_server.call("GET", "/healthz").status == 200
