"""Several ``serve`` processes behind one port (``--workers 2``): both answer, each with the model, and SIGTERM
to the parent stops them all and exits 0."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from servers import BOXES, query, serve


def test_two_workers_behind_one_port(tiny_checkpoint: Path, photo: Path, tmp_path: Path) -> None:
    data = photo.read_bytes()
    with serve(tiny_checkpoint, tmp_path, "--workers", "2", "--log-level", "warning") as server:
        pids: set[int] = set()
        answers = []
        deadline = time.monotonic() + 90  # the second worker may still be loading the model
        with ThreadPoolExecutor(8) as pool:
            while len(pids) < 2 and time.monotonic() < deadline:
                calls = [pool.submit(server.call, "GET", "/healthz") for _ in range(8)]
                calls += [pool.submit(server.post_image, data, query(boxes=BOXES)) for _ in range(4)]
                for call in calls:
                    answer = call.result()
                    assert answer.status == 200, answer.body
                    body = answer.json()
                    if "pid" in body:
                        pids.add(body["pid"])
                    else:
                        answers.append(body)
        assert len(pids) == 2, f"one worker answered everything: {pids}"
        first = answers[0]["people"]
        assert all(a["people"] == first for a in answers)  # the same model in both processes
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(60) == 0, server.log.read_text()
