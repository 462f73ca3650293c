"""Several ``serve`` processes behind one port (``--workers 2``): both answer, each with the model, and SIGTERM
to the parent stops them all and exits 0."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from servers import BOXES, query, serve


def test_two_workers_behind_one_port(tiny_checkpoint: Path, photo: Path, tmp_path: Path) -> None:
    data = photo.read_bytes()
    with serve(tiny_checkpoint, tmp_path, "--workers", "2", "--log-level", "warning") as server:
        pids: set[int] = set()
        deadline = time.monotonic() + 90  # the second worker may still be loading the model
        with ThreadPoolExecutor(8) as pool:
            while len(pids) < 2 and time.monotonic() < deadline:
                calls = [pool.submit(server.call, "GET", "/healthz") for _ in range(8)]
                calls += [pool.submit(server.post_image, data, query(boxes=BOXES)) for _ in range(2)]
                for call in calls:
                    answer = call.result()
                    assert answer.status == 200, answer.body
                    pids.update([answer.json()["pid"]] if "pid" in answer.json() else [])
        assert len(pids) == 2, f"one worker answered everything: {pids}"
        # one at a time, each on a new connection (either worker may take it): the same model in both
        # processes gives the same keypoints for the same batch of one crop
        answers = [server.post_image(data, query(boxes=BOXES[:1])).json()["people"] for _ in range(6)]
        points = np.array([[p["keypoints"] for p in people] for people in answers])
        assert np.allclose(points, points[0], atol=0.011), points[:, 0, :3]
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(60) == 0, server.log.read_text()
