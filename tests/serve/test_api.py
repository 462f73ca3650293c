"""``hourglass serve`` over real HTTP on 127.0.0.1: answers equal the Predictor's, bad input and load get their
status and a JSON error naming the problem, the key and CORS guard it, SIGTERM drains."""

from __future__ import annotations

import base64
import io
import json
import re
import signal
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from hourglass.data.images import read_image
from hourglass.inference.predictor import Predictor
from image_bytes import png_bomb
from servers import API_KEY, AUTH, BOXES, CORS_ORIGIN, Answer, Server, query, serve


def multipart(fields: dict[str, str], file: bytes | None, file_type: str = "image/jpeg") -> tuple[bytes, str]:
    """A multipart/form-data body (as a browser's FormData sends it) and its Content-Type."""
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for name, value in fields.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    if file is not None:
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="p.jpg"\r\n'.encode())
        out.write(f"Content-Type: {file_type}\r\n\r\n".encode() + file + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def expected(checkpoint: Path, photo: Path, boxes: list | None, flip: bool) -> tuple[np.ndarray, np.ndarray]:
    return Predictor.from_checkpoint(checkpoint, flip=flip)(read_image(photo), boxes=boxes)


def check_people(answer: Answer, keypoints: np.ndarray, scores: np.ndarray) -> None:
    assert answer.status == 200, answer.body
    people = answer.json()["people"]
    assert len(people) == len(keypoints)
    got = np.array([p["keypoints"] for p in people])  # (P, K, 3): x, y, score, rounded to 0.01 px and 1e-4
    assert np.allclose(got[..., :2], keypoints, atol=0.006) and np.allclose(got[..., 2], scores, atol=6e-5)
    assert np.allclose([p["score"] for p in people], scores.mean(axis=1), atol=6e-5)


def metric(text: str, name: str, **labels: str) -> float:
    """One sample of the Prometheus text (0 if absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(name) + (r"\{" + re.escape(want) + r"\}" if want else "") + r" (\S+)$"
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_predict_raw_and_multipart_equal_the_predictor(keyed_server: Server, tiny_checkpoint: Path, photo: Path):
    data = photo.read_bytes()
    raw = keyed_server.post_image(data, query(boxes=BOXES), AUTH)
    check_people(raw, *expected(tiny_checkpoint, photo, BOXES, flip=True))
    body = raw.json()
    assert [p["bbox"] for p in body["people"]] == BOXES
    assert body["skeleton"]["name"] == "mpii_16" and len(body["skeleton"]["joints"]) == 16
    assert body["image"] == {"width": 1280, "height": 720}
    assert set(body["timing_ms"]) == {"decode", "crop", "queue", "network", "total"}
    assert 1 <= body["batch"] <= 4

    form, kind = multipart({"flip": "false"}, data)
    whole = keyed_server.call("POST", "/v1/predict", form, {"Content-Type": kind, **AUTH})
    check_people(whole, *expected(tiny_checkpoint, photo, None, flip=False))
    assert whole.json()["people"][0]["bbox"] == [-0.5, -0.5, 1280.0, 720.0]  # no boxes: the whole picture


def test_model_health_and_metrics(keyed_server: Server):
    health = keyed_server.call("GET", "/healthz")  # no key needed
    assert health.status == 200 and health.json()["status"] == "ok"
    model = keyed_server.call("GET", "/v1/model", headers=AUTH).json()
    assert model["input_size"] == [64, 64] and model["heatmap_size"] == [16, 16]
    assert model["model"] == {"name": "hg1", "kwargs": {"num_channels": 16}}
    assert model["provenance"]["checkpoint"] == "tiny.safetensors"  # its name, never the server's path
    assert model["serving"]["max_batch"] == 4 and model["skeleton"]["edges"]
    text = keyed_server.call("GET", "/metrics", headers=AUTH)
    assert text.status == 200 and text.headers["content-type"].startswith("text/plain; version=0.0.4")
    for family in ("hourglass_requests_total", "hourglass_request_seconds", "hourglass_batch_size"):
        assert f"# TYPE {family} " in text.body.decode()
    assert metric(text.body.decode(), "hourglass_requests_total", endpoint="/healthz", status="200") >= 1


def test_every_endpoint_but_health_needs_the_key(keyed_server: Server, photo: Path):
    for method, path in (("GET", "/v1/model"), ("GET", "/metrics"), ("POST", "/v1/predict"), ("GET", "/nowhere")):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": API_KEY}):
            answer = keyed_server.call(method, path, photo.read_bytes() if method == "POST" else None, headers)
            assert answer.status == 401, (path, headers)
            assert answer.headers["www-authenticate"] == "Bearer" and "Bearer <key>" in answer.json()["error"]
    assert keyed_server.call("GET", "/", headers={}).status == 200  # the page itself holds no data


def test_cors_only_for_the_given_origin(keyed_server: Server):
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    ok = keyed_server.call("OPTIONS", "/v1/predict", headers={"Origin": CORS_ORIGIN, **preflight})
    assert ok.status == 200 and ok.headers["access-control-allow-origin"] == CORS_ORIGIN
    other = keyed_server.call("OPTIONS", "/v1/predict", headers={"Origin": "http://evil.example", **preflight})
    assert "access-control-allow-origin" not in other.headers
    plain = keyed_server.call("GET", "/v1/model", headers={"Origin": CORS_ORIGIN, **AUTH})
    assert plain.status == 200 and plain.headers["access-control-allow-origin"] == CORS_ORIGIN


def test_200_bad_requests_then_a_good_one(keyed_server: Server, tiny_checkpoint: Path, photo: Path):
    """Each kind of bad input or overload gets its status and a JSON error naming the problem; the server
    counts them in /metrics and then answers a good request correctly."""
    data = photo.read_bytes()
    form_without_file, form_kind = multipart({"boxes": "[]"}, None)
    gif_form, gif_kind = multipart({}, b"GIF89a" + bytes(64), "image/gif")
    kinds: list[tuple[int, str, dict]] = [
        (400, "is not a PNG or JPEG image", {"body": b"hello, not a picture", "type": "image/png"}),
        (400, "is not a PNG or JPEG image", {"body": gif_form, "type": gif_kind}),
        (400, "unreadable", {"body": data[: data.index(b"\xff\xda")]}),  # headers, no image data
        (400, "a JPEG without a frame header", {"body": data[:150]}),
        (400, "boxes: not JSON", {"body": data, "query": query(boxes="/etc/passwd")}),
        (400, "boxes: expected a list of", {"body": data, "query": query(boxes=[[1, 2, 3]])}),
        (400, "boxes[0]", {"body": data, "query": query(boxes=[[5000, 5000, 10, 10]])}),
        (400, "boxes: 17 boxes, at most 16", {"body": data, "query": query(boxes=[[0, 0, 9, 9]] * 17)}),
        (400, "flip: expected true or false", {"body": data, "query": query(flip="maybe")}),
        (400, "Content-Type 'text/plain'", {"body": data, "type": "text/plain"}),
        (400, "Content-Type 'application/json'", {"body": b'{"path": "/etc/passwd"}', "type": "application/json"}),
        (400, "the picture is empty", {"body": b""}),
        (400, "expected a 'file' part", {"body": form_without_file, "type": form_kind}),
        (400, "X-Timeout-Ms", {"body": data, "headers": {"X-Timeout-Ms": "soon"}}),
        (413, "over the cap of 262144", {"body": data + bytes(200_000)}),
        (413, "20000x20000 = 400000000 pixels, over the cap of 2000000", {"body": png_bomb(20000, 20000)}),
        (504, "time limit of 1 ms", {"body": data, "headers": {"X-Timeout-Ms": "1"}}),
        (404, "Not Found", {"path": "/../pyproject.toml", "method": "GET"}),
        (404, "Not Found", {"path": "/static/../app.py", "method": "GET"}),
        (405, "Method Not Allowed", {"path": "/v1/predict?file=/etc/passwd", "method": "GET"}),
    ]
    before = keyed_server.call("GET", "/metrics", headers=AUTH).body.decode()
    statuses: dict[int, int] = {}
    for i in range(200):
        status, words, req = kinds[i % len(kinds)]
        answer = keyed_server.call(
            req.get("method", "POST"),
            req.get("path", "/v1/predict" + req.get("query", "")),
            req.get("body"),
            {"Content-Type": req.get("type", "image/jpeg"), **AUTH, **req.get("headers", {})},
        )
        assert answer.status == status, (i, words, answer.body[:300])
        assert words in answer.json()["error"], (i, answer.json())
        if status == 504:
            assert "no answer within" in answer.json()["error"]
        statuses[status] = statuses.get(status, 0) + 1
    check_people(
        keyed_server.post_image(data, query(boxes=BOXES[:1]), AUTH),
        *expected(tiny_checkpoint, photo, BOXES[:1], flip=True),
    )
    after = keyed_server.call("GET", "/metrics", headers=AUTH).body.decode()
    for status, count in statuses.items():
        endpoint = "/v1/predict" if status != 404 else "other"
        if status in (400, 413, 504):
            grown = metric(after, "hourglass_requests_total", endpoint=endpoint, status=str(status)) - metric(
                before, "hourglass_requests_total", endpoint=endpoint, status=str(status)
            )
            assert grown == count, status


def test_stream_tracks_people_and_survives_a_bad_frame(keyed_server: Server, photo: Path):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    url = f"ws://127.0.0.1:{keyed_server.port}/v1/stream"
    data = photo.read_bytes()
    with connect(url, additional_headers=AUTH, subprotocols=["hourglass.v1"]) as ws:
        assert ws.subprotocol == "hourglass.v1"
        ws.send(json.dumps({"boxes": BOXES}))
        assert json.loads(ws.recv())["options"]["boxes"] == BOXES
        answers = []
        for frame in (data, b"not a frame", data, data):
            ws.send(frame)
            answers.append(json.loads(ws.recv()))
    assert answers[1]["status"] == 400 and "not a PNG or JPEG" in answers[1]["error"]
    good = [answers[i] for i in (0, 2, 3)]
    assert [a["frame"] for a in good] == [0, 2, 3]
    assert [[p["track_id"] for p in a["people"]] for a in good] == [[1, 2]] * 3  # the same two people throughout
    token = base64.urlsafe_b64encode(API_KEY.encode()).decode().rstrip("=")
    with connect(url, subprotocols=["hourglass.v1", f"bearer.{token}"]) as ws:  # a browser's way to give the key
        ws.send(data)
        assert [p["track_id"] for p in json.loads(ws.recv())["people"]] == [1]  # a new connection, a new tracker
    with pytest.raises(InvalidStatus, match="403"):
        connect(url, subprotocols=["hourglass.v1"])


def test_full_queue_503_cors_closed_and_sigterm_drains(tiny_checkpoint: Path, photo: Path, tmp_path: Path):
    """--max-queue 2: a request of one crop waits (the batch of 2 waits up to 1.5 s to fill), one of two more
    crops is refused with 503 + Retry-After; SIGTERM then lets the first finish and exits 0."""
    options = ("--max-batch", "2", "--max-queue", "2", "--max-wait-ms", "1500", "--log-level", "warning")
    data = photo.read_bytes()
    with serve(tiny_checkpoint, tmp_path, *options) as server:
        preflight = {"Origin": CORS_ORIGIN, "Access-Control-Request-Method": "POST"}
        assert "access-control-allow-origin" not in server.call("OPTIONS", "/v1/predict", headers=preflight).headers
        assert "access-control-allow-origin" not in server.call("GET", "/v1/model", headers=preflight).headers
        first: list[Answer] = []
        waiting = threading.Thread(target=lambda: first.append(server.post_image(data, query(boxes=BOXES[:1]))))
        waiting.start()
        deadline = time.monotonic() + 10
        while server.call("GET", "/healthz").json()["queue_depth"] < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        busy = server.post_image(data, query(boxes=BOXES))
        assert busy.status == 503 and int(busy.headers["retry-after"]) >= 1
        assert "the queue holds 1 crops of at most 2" in busy.json()["error"]
        server.proc.send_signal(signal.SIGTERM)
        waiting.join(30)
        assert first and first[0].status == 200 and len(first[0].json()["people"]) == 1
        assert server.proc.wait(30) == 0, server.log.read_text()


def test_a_picture_without_boxes_gets_the_detectors_people(tiny_checkpoint: Path, tmp_path: Path) -> None:
    """``--detector`` with a real ONNX graph whose answer is known (tests/detector_nets.py's BrightBox): a picture
    sent without boxes is cropped at the detected box (the Predictor's keypoints for that box), with its score;
    a picture where it finds nobody gets no people, not the whole picture."""
    import cv2

    from detector_nets import export_bright_box

    detector = export_bright_box(tmp_path / "yolox_bright_box.onnx", size=64)
    rgb = np.full((96, 128, 3), 40, np.uint8)
    rgb[20:60, 40:80] = 255  # the bright box (x, y, w, h) = (40, 20, 40, 40)
    data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()
    empty = cv2.imencode(".png", np.full((96, 128, 3), 40, np.uint8))[1].tobytes()
    options = ("--detector", str(detector), "--log-level", "warning", "--backend", "eager", "--precision", "fp32")
    with serve(tiny_checkpoint, tmp_path, *options) as server:
        found = server.post_image(data, headers={"Content-Type": "image/png"})
        nobody = server.post_image(empty, headers={"Content-Type": "image/png"})
    assert found.status == 200, found.body
    (person,) = found.json()["people"]
    np.testing.assert_allclose(person["bbox"], [40, 20, 40, 40], atol=0.01)
    assert person["bbox_score"] == pytest.approx(0.9)
    keypoints, _ = Predictor.from_checkpoint(tiny_checkpoint)(rgb, boxes=[[40, 20, 40, 40]])
    np.testing.assert_allclose(np.asarray(person["keypoints"])[:, :2], keypoints[0], atol=0.01)
    assert nobody.status == 200 and nobody.json()["people"] == []


def test_openvino_batches_keep_each_requests_people(tiny_checkpoint: Path, photo: Path, tmp_path: Path) -> None:
    """``--backend openvino``: concurrent requests with different boxes ride in shared batches, which OpenVINO runs
    as one request per image over its streams; each answer is still its own picture's people, as the eager
    Predictor finds them (fp32: the same numbers to the JSON's rounding, give or take the folded BatchNorm)."""
    options = ("--backend", "openvino", "--precision", "fp32", "--max-batch", "8", "--max-wait-ms", "200")
    data = photo.read_bytes()
    asks = [[b] for b in BOXES] + [BOXES, [[100.0, 100.0, 400.0, 500.0]], None, [[500.0, 50.0, 300.0, 600.0]]]
    with serve(tiny_checkpoint, tmp_path, *options, "--log-level", "warning") as server:
        assert server.call("GET", "/v1/model").json()["serving"]["backend"] == "openvino"
        answers: dict[int, Answer] = {}

        def ask(i: int, boxes: list | None) -> None:
            answers[i] = server.post_image(data, query(boxes=boxes) if boxes else "")  # none: the whole picture

        threads = [threading.Thread(target=ask, args=(i, b)) for i, b in enumerate(asks)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert all(a.status == 200 for a in answers.values()), [a.body[:300] for a in answers.values()]
    assert max(a.json()["batch"] for a in answers.values()) > 1  # some requests shared a network call
    for i, boxes in enumerate(asks):
        keypoints, scores = expected(tiny_checkpoint, photo, boxes, flip=True)
        people = answers[i].json()["people"]
        got = np.array([p["keypoints"] for p in people])
        assert answers[i].status == 200 and got.shape[0] == len(keypoints)
        assert np.abs(got[..., :2] - keypoints).max() < 0.05 and np.abs(got[..., 2] - scores).max() < 1e-3


def test_the_default_runtime_is_autos_first_choice_and_model_says_which(tiny_checkpoint: Path, tmp_path: Path) -> None:
    """``hourglass serve`` without --backend runs ``auto``'s first choice, says so in its first line, and
    ``/v1/model`` (which the page shows) names the runtime that runs, and what was asked."""
    from hourglass.inference.runtimes import auto_choices

    backend, precision = auto_choices()[0]
    with serve(tiny_checkpoint, tmp_path, "--log-level", "warning") as server:
        serving = server.call("GET", "/v1/model").json()["serving"]
        first = server.log.read_text().splitlines()[0]
    assert (serving["backend"], serving["precision"]) == (backend, precision)
    assert serving["requested"] == {"backend": "auto", "precision": "auto"}
    assert first.startswith(f"pose network: {backend} {precision} (auto: "), first
