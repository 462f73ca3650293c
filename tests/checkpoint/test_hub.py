"""Published weights by name or URL (``checkpoint/hub.py``), against a real HTTP server on 127.0.0.1.

The server is the standard library's ``http.server`` in a thread, started by each test that needs it; it
serves files in each family's exact layout, written by the restated networks (``bearpaw_net``,
``princeton_net``, ``t7_writer``), and can cut a transfer halfway, ignore ``Range``, or never answer. Nothing
here reaches beyond the machine: the table's real URLs are only ever named in offline errors.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pty
import re
import subprocess
import sys
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import hourglass
from bearpaw_net import Bottleneck, HourglassNet
from hourglass.checkpoint import hub
from hourglass.checkpoint.hub import TransferSettings, cache_dir, converted_path, download_path, fetch
from hourglass.checkpoint.hub import resolve_checkpoint as resolve
from hourglass.checkpoint.io import read_metadata
from hourglass.cli import app
from hourglass.errors import CheckpointError, FetchError
from hourglass.models import list_models
from princeton_net import PoseNet
from t7_writer import hg_lua, write

FAST = TransferSettings(timeout=5.0, retries=2, backoff=0.01, progress=False)


class Server:
    """``http.server`` on 127.0.0.1 (a free port) serving ``files``; records ``(path, Range header)`` per GET.

    ``cut_once``: paths whose next response stops halfway (after a full ``Content-Length``);
    ``no_range``: paths that ignore ``Range`` (always 200 and the whole file); ``/hang`` never answers.
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut_once: set[str] = set()
        self.no_range: set[str] = set()
        self.requests: list[tuple[str, str | None]] = []
        self.release = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests.append((self.path, self.headers.get("Range")))
                if self.path == "/hang":
                    owner.release.wait(20)
                    return
                body = owner.files.get(self.path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                start, asked = 0, re.match(r"bytes=(\d+)-$", self.headers.get("Range") or "")
                if asked and self.path not in owner.no_range:
                    start = int(asked.group(1))
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                data = body[start:]
                if self.path in owner.cut_once:
                    owner.cut_once.discard(self.path)
                    data = data[: len(data) // 2]
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.running = True

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def stop(self) -> None:
        if self.running:
            self.release.set()
            self.httpd.shutdown()
            self.httpd.server_close()
            self.running = False


@pytest.fixture
def server():
    s = Server()
    yield s
    s.stop()


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh cache for every test, online unless a test says otherwise."""
    monkeypatch.setenv("HOURGLASS_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("HOURGLASS_OFFLINE", raising=False)
    return tmp_path / "cache"


def _saved(obj: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def bearpaw() -> tuple[HourglassNet, bytes]:
    """anibali's layout: a bare ``state_dict`` of bearpaw's ``HourglassNet`` (1 stack, 1 block; narrow)."""
    torch.manual_seed(0)
    net = HourglassNet(Bottleneck, num_stacks=1, num_blocks=1, num_classes=16, num_feats=16)
    return net, _saved(net.state_dict())


@pytest.fixture(scope="module")
def princeton() -> bytes:
    """princeton-vl's ``checkpoint.pt``: ``state_dict`` with ``model.module.`` keys, optimizer, epoch (narrow)."""
    torch.manual_seed(1)
    net = PoseNet(nstack=2, inp_dim=16, oup_dim=16, depth=2)
    state = {f"model.module.{k}": v for k, v in net.state_dict().items()}
    return _saved({"state_dict": state, "optimizer": {"state": {}, "param_groups": []}, "epoch": 3})


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buffer.getvalue()


def _hub_name(stem: str, data: bytes, ext: str = ".pth") -> str:
    return f"{stem}-{hashlib.sha256(data).hexdigest()[:8]}{ext}"


def test_the_table_is_complete_and_each_row_says_where_it_comes_from() -> None:
    table = hub.weights_table()
    assert {"bearpaw-hg1", "bearpaw-hg2", "bearpaw-hg8", "princeton-vl-hg2", "princeton-vl-hg8", "newell-hg8"} <= set(
        table
    )
    assert {"yolox-m-person", "yolox-x-person", "rtmdet-nano-person"} <= set(hub.list_weights("detector"))
    for row in table.values():
        fields = row.row
        assert fields["sources"] and fields["licence"] and fields["status"] and row.hash_note, row.name
        assert row.url or row.page, row.name
        if row.kind == "pose":
            assert row.preset in list_models() and row.family in ("bearpaw", "princeton-vl", "torch7"), row.name
        elif row.url.endswith(".zip"):  # openmmlab's onnx_sdk zips
            assert row.family == "onnx" and row.member == "end2end.onnx", row.name
            assert row.hash is None  # the zips' name suffix is the .pth's hash, not the zip's
            assert hub.parse_source(row.name).archive
        else:  # Megvii's YOLOX release: the .onnx itself
            assert row.family == "onnx" and row.member is None and row.url.endswith(".onnx"), row.name
            assert not hub.parse_source(row.name).archive
    assert table["bearpaw-hg2"].hash == ("sha256_prefix", "15e342d9")
    assert table["newell-hg8"].hash == ("md5", "0ddc66c047f442b43e8c0616aa09ee8b")


def test_a_name_not_in_the_table_is_answered_with_the_names_meant() -> None:
    with pytest.raises(
        CheckpointError, match=r"hg8-mpii: no such .* \(did you mean bearpaw-hg8, princeton-vl-hg8, newell-hg8\?\)"
    ):
        hub.parse_source("hg8-mpii")
    with pytest.raises(
        CheckpointError, match=r"\(did you mean yolox-x-coco, yolox-s-coco, yolox-m-coco, yolox-l-coco\?\)"
    ):
        hub.parse_source("yolox")
    for path in ("runs/demo/best.safetensors", "best.safetensors", "qqqq"):  # a missing file, nothing like a name
        with pytest.raises(CheckpointError) as err:
            hub.parse_source(path)
        assert str(err.value).endswith("file:// URL"), err.value


def test_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert cache_dir() == tmp_path / "cache"
    monkeypatch.delenv("HOURGLASS_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "hourglass"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    assert cache_dir() == tmp_path / "me" / ".cache" / "hourglass"


def test_a_url_is_fetched_checked_converted_once_and_reused_with_the_server_stopped(server, bearpaw) -> None:
    net, data = bearpaw
    path = f"/releases/download/v0.0.0/{_hub_name('bearpaw_hg1', data)}"
    server.files[path] = data
    url = server.url(path)
    model, meta = hourglass.load_model(url)
    assert meta.model == "bearpaw-hg1" and meta.source["from"] == "bearpaw/pytorch-pose"
    torch.testing.assert_close(model.stem.conv.weight, net.conv1.weight)
    assert converted_path(url).is_file() and download_path(url).read_bytes() == data
    assert server.requests == [(path, None)]
    server.stop()
    model, _ = hourglass.load_model(url)  # no request: the converted file is reused
    predictor = hourglass.Predictor.from_checkpoint(url)
    assert predictor.codec.input_size == (256, 256)
    assert resolve(url) == converted_path(url)
    assert [p.name for p in download_path(url).parent.iterdir() if not p.name.endswith(".lock")] == [
        download_path(url).name
    ]


def test_a_wrong_hash_prefix_or_fragment_is_refused_and_nothing_is_left(server, bearpaw) -> None:
    _, data = bearpaw
    server.files["/bearpaw_hg1-deadbeef.pth"] = data
    with pytest.raises(FetchError, match=r"sha256 [0-9a-f]{64}, expected starting with deadbeef .*torch.hub") as err:
        fetch(server.url("/bearpaw_hg1-deadbeef.pth"), settings=FAST)
    assert "\n" not in str(err.value) and "the download was removed" in str(err.value)
    assert not [
        p for p in download_path(server.url("/bearpaw_hg1-deadbeef.pth")).parent.iterdir() if "lock" not in p.name
    ]
    server.files["/w.pth"] = data
    good = hashlib.sha256(data).hexdigest()
    assert fetch(server.url(f"/w.pth#sha256={good}"), settings=FAST).read_bytes() == data
    with pytest.raises(FetchError, match=f"expected {'0' * 64} .*#sha256= fragment"):
        fetch(server.url(f"/w.pth#sha256={'0' * 64}"), settings=FAST)
    with pytest.raises(CheckpointError, match="fragment must be #sha256="):
        fetch(server.url("/w.pth#md5=abc"), settings=FAST)


def test_a_transfer_cut_halfway_resumes_with_a_range_request(server, princeton) -> None:
    server.files["/original_2hg/checkpoint.pt"] = princeton
    server.cut_once.add("/original_2hg/checkpoint.pt")
    url = server.url("/original_2hg/checkpoint.pt")
    out = resolve(url, settings=FAST)
    assert read_metadata(out)["model"]["name"] == "hg2" and read_metadata(out)["epoch"] == 3
    assert server.requests == [
        ("/original_2hg/checkpoint.pt", None),
        ("/original_2hg/checkpoint.pt", f"bytes={len(princeton) // 2}-"),
    ]
    assert download_path(url).read_bytes() == princeton


def test_a_server_that_ignores_range_gets_a_fresh_start(server, princeton) -> None:
    server.files["/p.pt"] = princeton
    server.cut_once.add("/p.pt")
    server.no_range.add("/p.pt")
    assert fetch(server.url("/p.pt"), settings=FAST).read_bytes() == princeton
    assert [r for _, r in server.requests] == [None, f"bytes={len(princeton) // 2}-"]


def test_http_errors_and_silence_end_in_one_line_naming_the_url_and_the_cause(server) -> None:
    with pytest.raises(FetchError) as err:
        fetch(server.url("/missing.pth"), settings=FAST)
    assert str(err.value) == (
        f"{server.url('/missing.pth')}: HTTP 404 Not Found; put a copy fetched by other means at "
        f"{download_path(server.url('/missing.pth'))}"
    )
    assert len(server.requests) == 1  # a 404 is not retried
    quick = TransferSettings(timeout=0.3, retries=1, backoff=0.01, progress=False)
    with pytest.raises(FetchError) as err:
        fetch(server.url("/hang"), settings=quick)
    message = str(err.value)
    assert message.startswith(server.url("/hang") + ": no answer") and "(after 2 tries)" in message
    assert f"put a copy fetched by other means at {download_path(server.url('/hang'))}" in message
    assert "\n" not in message


def test_tls_and_dns_failures_end_at_once_in_one_line(server, tmp_path, monkeypatch) -> None:
    """A real TLS server on 127.0.0.1 with a self-signed certificate (made here by ``openssl``) fails the
    handshake: one line naming the URL and TLS, no retry, nothing left. A host that does not resolve: the
    resolver is made to fail (``socket.getaddrinfo``), since a real lookup would leave the machine."""
    import socket
    import ssl
    import subprocess

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.httpd.socket = context.wrap_socket(server.httpd.socket, server_side=True)
    url = server.url("/model.pth").replace("http://", "https://")
    with pytest.raises(FetchError) as err:
        fetch(url, settings=FAST)
    message = str(err.value)
    assert message.startswith(f"{url}: TLS failure") and "CERTIFICATE_VERIFY_FAILED" in message, message
    assert "\n" not in message and server.requests == []  # refused in the handshake, never asked again
    folder = download_path(url).parent
    left = sorted(p.name for p in folder.glob("*") if p.suffix != ".lock") if folder.exists() else []
    assert left == [], left  # nothing fetched, nothing partial (the lock file of the fetch may stay)

    def no_such_host(*args: object, **kwargs: object) -> None:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    with pytest.raises(FetchError) as err:
        fetch("https://weights.example.invalid/hg2.pth", settings=FAST)
    assert str(err.value).startswith(
        "https://weights.example.invalid/hg2.pth: cannot resolve the host weights.example.invalid (DNS:"
    )


def test_a_download_larger_than_its_cap_is_stopped(server, princeton) -> None:
    server.files["/big.pt"] = princeton
    small = TransferSettings(max_bytes=1000, retries=0, progress=False)
    with pytest.raises(FetchError, match=f"{len(princeton):,} bytes, more than the 1,000 expected"):
        fetch(server.url("/big.pt"), settings=small)
    assert not download_path(server.url("/big.pt")).exists()


def test_a_cached_file_that_fails_its_check_is_fetched_again_once(server, bearpaw) -> None:
    _, data = bearpaw
    path = "/" + _hub_name("bearpaw_hg1", data)
    server.files[path] = data
    cached = fetch(server.url(path), settings=FAST)
    cached.write_bytes(b"damaged" + data[7:])
    assert fetch(server.url(path), settings=FAST).read_bytes() == data
    assert len(server.requests) == 2
    cached.write_bytes(b"damaged")
    server.files[path] = b"still damaged"
    with pytest.raises(FetchError, match="expected starting with"):
        fetch(server.url(path), settings=FAST)
    assert len(server.requests) == 3 and not cached.exists()


def test_offline_names_the_url_and_the_path_then_takes_a_file_put_there(server, princeton, monkeypatch) -> None:
    server.files["/c.pt"] = princeton
    url = server.url("/c.pt")
    monkeypatch.setenv("HOURGLASS_OFFLINE", "1")
    with pytest.raises(FetchError) as err:
        hourglass.load_model(url)
    assert str(err.value) == (
        f"{url}: not in the cache, and HOURGLASS_OFFLINE=1 forbids fetching it; put a copy fetched by other means "
        f"at {download_path(url)}"
    )
    download_path(url).parent.mkdir(parents=True, exist_ok=True)
    download_path(url).write_bytes(princeton)
    _, meta = hourglass.load_model(url)
    assert meta.model == "hg2" and server.requests == []


def test_a_table_name_works_offline_from_a_file_carried_into_the_cache(princeton, monkeypatch) -> None:
    monkeypatch.setenv("HOURGLASS_OFFLINE", "1")
    target = download_path("princeton-vl-hg2")
    assert target == cache_dir() / "downloads" / "princeton-vl-hg2" / "princeton-vl-hg2-checkpoint.pt"
    with pytest.raises(
        FetchError, match=re.escape("original_2hg/checkpoint.pt: not in the cache, and HOURGLASS_OFFLINE=1")
    ):
        hourglass.create_model("princeton-vl-hg2", pretrained=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(princeton)
    model = hourglass.create_model("princeton-vl-hg2", pretrained=True)
    assert model.num_stacks == 2 and not model.training
    with pytest.raises(CheckpointError, match="num_joints=16 but 17 was expected"):
        hourglass.create_model("princeton-vl-hg2", pretrained=True, num_joints=17)
    assert hourglass.create_model("hg2", num_channels=16).num_channels == 16  # no pretrained: the preset
    row = next(r for r in hub.describe() if r["name"] == "princeton-vl-hg2")
    assert row["cached_file"] == str(target) and row["cached_checkpoint"] == str(converted_path("princeton-vl-hg2"))


def test_a_detector_row_gives_its_onnx_and_is_refused_as_a_pose_checkpoint(monkeypatch) -> None:
    monkeypatch.setenv("HOURGLASS_OFFLINE", "1")
    onnx = b"\x08\x07not a real onnx graph, only bytes to extract"
    target = download_path("rtmdet-nano-person")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(_zip({"20230831/rtmdet_onnx/rtmdet_nano/end2end.onnx": onnx, "20230831/x/deploy.json": b"{}"}))
    got = fetch("rtmdet-nano-person")
    assert got.name == "end2end.onnx" and got.read_bytes() == onnx and got.is_relative_to(cache_dir())
    with pytest.raises(CheckpointError, match="rtmdet-nano-person: a person detector"):
        hourglass.load_model("rtmdet-nano-person")


def test_a_zip_member_that_climbs_out_is_refused_and_nothing_is_written_outside(server, tmp_path) -> None:
    for name in ("../../evil.pth", "/abs/evil.pth", "..\\..\\evil.pth"):
        server.files["/bad.zip"] = _zip({"ok/model.pth": b"x", name: b"evil"})
        with pytest.raises(FetchError, match=r"names a place outside the archive's folder .* nothing was extracted"):
            fetch(server.url("/bad.zip"), settings=FAST)
        assert not download_path(server.url("/bad.zip")).exists()  # refused and removed
    assert not [p for p in tmp_path.rglob("*evil*")]
    assert not (download_path(server.url("/bad.zip")).parent / "extracted").exists()


def test_newells_torch7_zip_is_extracted_detected_and_converted(server, tmp_path) -> None:
    pytest.importorskip("torchfile")
    write(tmp_path / "umich-stacked-hourglass.t7", hg_lua(1, 1, n_feats=16, n_parts=16, depth=2))
    t7 = (tmp_path / "umich-stacked-hourglass.t7").read_bytes()
    server.files["/pose/umich-stacked-hourglass.zip"] = _zip(
        {"umich-stacked-hourglass/umich-stacked-hourglass.t7": t7, "umich-stacked-hourglass/README": b"hi"}
    )
    out = resolve(server.url("/pose/umich-stacked-hourglass.zip"), settings=FAST)
    meta = read_metadata(out)
    assert meta["model"]["name"] == "hg1" and meta["source"]["file"] == "umich-stacked-hourglass.t7"


def test_cli_weights_list_path_get_and_convert(server, bearpaw, home, tmp_path) -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["weights", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [r["name"] for r in rows] == list(hub.weights_table())
    assert all(r["cached_file"] is None and r["kind"] in ("pose", "detector") for r in rows)
    table = runner.invoke(app, ["weights", "list"], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "bearpaw-hg2" in table.stdout and "87.33" in table.stdout
    narrow = runner.invoke(app, ["weights", "list"], env={"COLUMNS": "80"})  # the names to type are never cut
    cells = {cell.strip() for line in narrow.stdout.splitlines() for cell in line.split("│")}
    assert narrow.exit_code == 0 and max(map(len, narrow.stdout.splitlines())) <= 80, narrow.stdout
    assert {r["name"] for r in rows} | {r["kind"] for r in rows} <= cells, narrow.stdout
    shown = runner.invoke(app, ["weights", "path", "bearpaw-hg2"])
    assert shown.stdout.strip() == str(home / "downloads" / "bearpaw-hg2" / "bearpaw_hg2-15e342d9.pth")
    _, data = bearpaw
    server.files["/" + _hub_name("bearpaw_hg1", data)] = data
    url = server.url("/" + _hub_name("bearpaw_hg1", data))
    got = runner.invoke(app, ["weights", "get", url])
    assert got.exit_code == 0, got.output
    assert got.stdout.strip() == str(converted_path(url)) and f"fetching {url}" in got.stderr
    converted = runner.invoke(app, ["convert", url, "--out", str(tmp_path / "b.safetensors")])
    assert converted.exit_code == 0, converted.output
    assert read_metadata(tmp_path / "b.safetensors")["model"]["name"] == "bearpaw-hg1"
    assert len(server.requests) == 1  # convert read the cached file


def test_cli_checkpoint_names_fail_in_one_line_offline(monkeypatch, tmp_path) -> None:
    result = CliRunner().invoke(
        app,
        ["export", "--checkpoint", "bearpaw-hg2", "--format", "torchscript", "--out", str(tmp_path / "x.pt")],
        env={"HOURGLASS_OFFLINE": "1"},
    )
    assert result.exit_code == 1
    url = hub.weights_table()["bearpaw-hg2"].url
    assert f"error: {url}: not in the cache, and HOURGLASS_OFFLINE=1" in " ".join(result.output.split())
    assert "Traceback" not in result.output
    monkeypatch.setenv("HOURGLASS_OFFLINE", "1")
    drive = CliRunner().invoke(app, ["convert", "bearpaw-hg2-drive", "--out", str(tmp_path / "d.safetensors")])
    target = download_path("bearpaw-hg2-drive")
    assert drive.exit_code == 1 and "published without a direct file URL" in drive.output
    assert f"put it at {target}" in " ".join(drive.output.split())


def test_a_terminal_gets_a_progress_bar_and_a_pipe_plain_lines(server, bearpaw, home) -> None:
    """The real command in a process, its stderr once on a pseudo-terminal and once on a pipe."""
    _, data = bearpaw
    server.files["/a.pth"] = data
    env = {**os.environ, "HOURGLASS_HOME": str(home), "TERM": "xterm-256color", "COLUMNS": "100"}
    command = [sys.executable, "-m", "hourglass", "weights", "get", "--raw", server.url("/a.pth")]
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=follower, env=env, timeout=120)
        os.close(follower)
        shown = b""
        with contextlib.suppress(OSError):  # EIO once the process's end of the terminal is closed
            while chunk := os.read(leader, 65536):
                shown += chunk
    finally:
        os.close(leader)
    assert done.returncode == 0 and done.stdout.decode().strip() == str(download_path(server.url("/a.pth")))
    assert b"\x1b[" in shown and "━".encode() in shown and b"fetching" not in shown
    download_path(server.url("/a.pth")).unlink()
    piped = subprocess.run(command, capture_output=True, env=env, timeout=120)
    assert piped.returncode == 0 and b"\x1b[" not in piped.stderr
    assert piped.stderr.decode().startswith(f"fetching {server.url('/a.pth')} ({len(data):,} bytes)")
