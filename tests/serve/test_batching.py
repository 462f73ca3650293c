"""Dynamic batching with a real Predictor: crops of concurrent callers share network calls and come back equal
to running each alone; a full queue refuses whole; a caller that gave up is skipped; closing drains."""

from __future__ import annotations

import threading
import time
from concurrent.futures import CancelledError
from pathlib import Path

import numpy as np
import pytest
import torch

from hourglass.data.images import read_image
from hourglass.inference.predictor import Predictor
from hourglass.serve.batching import Batcher, QueueFull, Turns, takes_turns


@pytest.fixture(scope="module")
def predictor(tiny_checkpoint: Path) -> Predictor:
    return Predictor.from_checkpoint(tiny_checkpoint)


@pytest.fixture(scope="module")
def crops(predictor: Predictor, photo: Path) -> tuple[np.ndarray, list[np.ndarray]]:
    rgb = read_image(photo)
    cut = [predictor.crop(rgb, (x, 40, 200, 400)) for x in (0, 150, 300, 450, 600, 750)]
    return np.stack([c for c, _ in cut]), [m for _, m in cut]


def test_concurrent_callers_share_a_batch_and_get_their_own_answers(predictor: Predictor, crops) -> None:
    images, matrices = crops
    batches: list[int] = []
    batcher = Batcher(predictor, max_batch=4, max_wait_ms=2000, on_batch=lambda n, _: batches.append(n))
    batcher.start()
    results: dict[int, object] = {}

    def caller(i: int) -> None:
        flip = i % 2 == 0
        results[i] = (flip, batcher.submit(images[i : i + 1], matrices[i : i + 1], flip=flip)[0].result(30))

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(4)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    batcher.close()
    assert time.perf_counter() - started < 1.9  # the batch filled: no wait for the 2 s limit
    assert batches == [4]  # four callers, one pick-up
    for i, (flip, r) in results.items():
        alone = Predictor(predictor.runtime, predictor.codec, predictor.skeleton, flip=flip)
        keypoints, scores, _ = alone.predict_crops(images[i : i + 1], matrices[i : i + 1])
        assert np.allclose(r.keypoints, keypoints[0], atol=1e-4) and np.allclose(r.scores, scores[0], atol=1e-5)
        assert r.batch == 2  # two flipped and two plain crops: two network calls of 2


def test_queue_cap_cancel_and_drain(predictor: Predictor, crops) -> None:
    images, matrices = crops
    batches: list[int] = []
    batcher = Batcher(predictor, max_batch=4, max_wait_ms=300, max_queue=3, on_batch=lambda n, _: batches.append(n))
    batcher.start()
    first = batcher.submit(images[:1], matrices[:1], flip=False)
    with pytest.raises(QueueFull, match="holds 1 crops of at most 3; this request has 3"):
        batcher.submit(images[:3], matrices[:3], flip=False)
    assert batcher.depth == 1
    gave_up = batcher.submit(images[1:2], matrices[1:2], flip=False)
    assert gave_up[0].cancel()  # its caller gave up while the batch waited to fill
    last = batcher.submit(images[2:3], matrices[2:3], flip=False)
    batcher.close()  # drains what is queued, then refuses
    assert first[0].result(0).keypoints.shape == (16, 2) and last[0].result(0).scores.shape == (16,)
    with pytest.raises(CancelledError):
        gave_up[0].result(0)
    assert batches == [2]  # the cancelled crop never reached the network
    assert batcher.depth == 0
    with pytest.raises(QueueFull, match="shutting down"):
        batcher.submit(images[:1], matrices[:1], flip=False)


def test_with_turns_no_picture_is_decoded_while_a_batch_runs(predictor: Predictor, crops, photo: Path) -> None:
    """The service's decoding (a stage unit of :class:`Turns`) and the batcher's
    network calls never overlap when the turns are active (PyTorch on the CPU), and every answer still comes."""
    images, matrices = crops
    turns, spans, lock = Turns(True), {"network": [], "decode": []}, threading.Lock()

    def timed_runtime(x):
        start = time.perf_counter()
        out = predictor.runtime(x)
        with lock:
            spans["network"].append((start, time.perf_counter()))
        return out

    timed = Predictor(timed_runtime, predictor.codec, predictor.skeleton)
    batcher = Batcher(timed, max_batch=2, max_wait_ms=5, turns=turns)
    batcher.start()
    done = threading.Event()

    def decoder() -> None:
        while not done.is_set():
            with turns.stage():
                start = time.perf_counter()
                read_image(photo)
                end = time.perf_counter()
            with lock:
                spans["decode"].append((start, end))

    workers = [threading.Thread(target=decoder) for _ in range(2)]
    for w in workers:
        w.start()
    futures = [f for i in range(6) for f in batcher.submit(images[i : i + 1], matrices[i : i + 1], flip=True)]
    results = [f.result(60) for f in futures]
    done.set()
    for w in workers:
        w.join(30)
    batcher.close()
    assert len(results) == 6 and len(spans["network"]) >= 3 and len(spans["decode"]) > 0
    overlaps = [(d, n) for d in spans["decode"] for n in spans["network"] if d[0] < n[1] and n[0] < d[1]]
    assert overlaps == []


def test_turns_keep_the_network_and_the_other_work_apart() -> None:
    """Stage units run together; the network waits for those under way and holds new ones back until it is done;
    inactive turns hold nothing; only PyTorch on the CPU takes turns."""
    import threading

    from hourglass.inference.runtimes import create_runtime

    turns, log, lock = Turns(True), [], threading.Lock()
    first_in, release_first = threading.Event(), threading.Event()

    def stage(name: str, hold: threading.Event | None = None) -> None:
        with turns.stage():
            with lock:
                log.append(f"{name} in")
            if hold is not None:
                first_in.set()
                assert hold.wait(10)
            with lock:
                log.append(f"{name} out")

    def network() -> None:
        with turns.network():
            with lock:
                log.append("network in")
            time.sleep(0.05)
            with lock:
                log.append("network out")

    a = threading.Thread(target=stage, args=("a", release_first))
    a.start()
    assert first_in.wait(10)
    b = threading.Thread(target=stage, args=("b",))
    b.start()
    b.join(10)  # two stage units at once: b gets in while a is still in
    net = threading.Thread(target=network)
    net.start()
    time.sleep(0.05)
    c = threading.Thread(target=stage, args=("c",))
    c.start()
    time.sleep(0.05)
    assert "network in" not in log and "c in" not in log  # the network waits for a; c waits behind the network
    release_first.set()
    for t in (a, net, c):
        t.join(10)
    assert log.index("a out") < log.index("network in") < log.index("network out") < log.index("c in")
    with Turns(False).network(), Turns(False).stage():  # inactive: nothing waits
        pass
    model = torch.nn.Conv2d(3, 16, 1)
    assert takes_turns(create_runtime(model, backend="eager", input_size=(8, 8)))
    assert not takes_turns(lambda x: x)
