"""Dynamic batching: the person crops of concurrent requests go through the network together.

One thread runs the network. Requests hand it crops (:meth:`Batcher.submit`, one future per crop); it
takes up to ``max_batch`` crops at a time, waiting at most ``max_wait_ms`` after the oldest waiting crop
arrived for more to join (TorchServe's ``maxBatchDelay``, Triton's ``max_queue_delay_microseconds``). A
crop that waited longer than that while the previous batch ran goes at once. Crops of requests with and
without the flip test ride in the same pick-up and run as two network calls.

With PyTorch on the CPU the network takes turns with the requests' decoding and cropping
(:class:`Turns`, given by the service): a batch runs alone on the cores, and the
pictures that arrived meanwhile are decoded and cut between batches.

At most ``max_queue`` crops wait or run at once; a request whose crops would go over that is refused
whole (:class:`QueueFull`), so a client can retry later instead of waiting behind a backlog.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from hourglass.errors import ConfigError
from hourglass.inference.predictor import Predictor


class QueueFull(Exception):
    """The queue holds ``max_queue`` crops already (or the batcher is closing): the request is refused whole."""


@dataclass
class CropResult:
    """One crop's keypoints and what its trip through the batcher cost.

    Attributes:
        keypoints: ``(K, 2)`` ``(x, y)`` in image pixels.
        scores: ``(K,)`` heatmap maxima.
        batch: crops in the network call this crop rode in.
        queued_ms: from :meth:`Batcher.submit` to the start of that call.
        network_ms: the call (network, flip test and decoding of the whole batch).
    """

    keypoints: np.ndarray
    scores: np.ndarray
    batch: int
    queued_ms: float
    network_ms: float


@dataclass
class _Job:
    crop: np.ndarray
    matrix: np.ndarray
    flip: bool
    future: Future[CropResult]
    queued: float


class Batcher:
    """Runs the crops of many requests through one :class:`Predictor`, ``max_batch`` at a time.

    Args:
        predictor: its runtime, codec and skeleton are used; crops run with and without the flip test.
        max_batch: most crops in one network call (the flip test doubles the images the network sees).
        max_wait_ms: longest wait for a batch to fill after its oldest crop arrived.
        max_queue: most crops waiting or running; :meth:`submit` refuses more.
        on_batch: called after each network call with ``(crops, seconds)`` (metrics).
        turns: the network's turn is taken around each call (None: no turns).

    Example:
        >>> import numpy as np
        >>> from hourglass.data import HeatmapCodec, get_skeleton
        >>> def net(images):  # a stand-in runtime: (B, 3, 64, 64) -> (B, 16, 16, 16)
        ...     return np.zeros((len(images), 16, 16, 16), np.float32)
        >>> batcher = Batcher(Predictor(net, HeatmapCodec((64, 64)), get_skeleton("mpii_16")), max_batch=4)
        >>> batcher.start()
        >>> crops, matrices = np.zeros((2, 64, 64, 3), np.uint8), np.tile(np.eye(2, 3), (2, 1, 1))
        >>> [f.result().keypoints.shape for f in batcher.submit(crops, matrices, flip=True)]
        [(16, 2), (16, 2)]
        >>> batcher.close()
    """

    def __init__(
        self,
        predictor: Predictor,
        max_batch: int = 8,
        max_wait_ms: float = 5.0,
        max_queue: int = 64,
        on_batch: Callable[[int, float], None] | None = None,
        turns: Turns | None = None,
    ) -> None:
        if max_batch < 1 or max_queue < 1 or max_wait_ms < 0:
            raise ConfigError(
                f"batching needs max_batch >= 1, max_queue >= 1 and max_wait_ms >= 0, "
                f"got {max_batch}, {max_queue} and {max_wait_ms}"
            )
        runtime, codec, skeleton = predictor.runtime, predictor.codec, predictor.skeleton
        self._predictors = {
            flip: Predictor(runtime, codec, skeleton, flip=flip, batch_size=max_batch) for flip in (True, False)
        }
        self.max_batch, self.max_wait_s, self.max_queue = int(max_batch), max_wait_ms / 1000.0, int(max_queue)
        self._on_batch = on_batch
        self._turns = turns if turns is not None else Turns(False)
        self._jobs: deque[_Job] = deque()
        self._pending = 0  # crops submitted and not finished (waiting or running)
        self._closed = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="hourglass-batcher", daemon=True)

    @property
    def depth(self) -> int:
        """Crops waiting or running now."""
        return self._pending

    def start(self) -> None:
        """Start the network thread."""
        self._thread.start()

    def close(self) -> None:
        """Refuse new crops, finish those already submitted, stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join()

    def submit(self, crops: np.ndarray, matrices: Sequence[np.ndarray], flip: bool) -> list[Future[CropResult]]:
        """One future per crop of ``crops`` ``(N, H, W, 3)`` uint8 RGB with crop -> image ``matrices`` ``(N, 2, 3)``.

        Raises:
            QueueFull: the queue cannot take all ``N`` crops now (none is queued), or the batcher is closing.
        """
        now = time.perf_counter()
        with self._cond:
            if self._closed:
                raise QueueFull("the server is shutting down")
            if self._pending + len(crops) > self.max_queue:
                raise QueueFull(
                    f"the queue holds {self._pending} crops of at most {self.max_queue}; this request has {len(crops)}"
                )
            futures: list[Future[CropResult]] = []
            for crop, matrix in zip(crops, matrices, strict=True):
                future: Future[CropResult] = Future()
                self._jobs.append(_Job(crop, np.asarray(matrix), bool(flip), future, now))
                futures.append(future)
            self._pending += len(futures)
            self._cond.notify_all()
        return futures

    def _take(self) -> list[_Job]:
        """The next batch: waits for a first crop, then up to ``max_wait`` after it arrived for the batch to fill."""
        with self._cond:
            while not self._jobs and not self._closed:
                self._cond.wait()
            if self._jobs:
                deadline = self._jobs[0].queued + self.max_wait_s
                while len(self._jobs) < self.max_batch and not self._closed:
                    left = deadline - time.perf_counter()
                    if left <= 0:
                        break
                    self._cond.wait(left)
            batch = []
            while self._jobs and len(batch) < self.max_batch:
                job = self._jobs.popleft()
                if job.future.set_running_or_notify_cancel():
                    batch.append(job)
                else:  # its request gave up (time limit) while it waited
                    self._pending -= 1
            return batch

    def _run(self) -> None:
        while True:
            batch = self._take()
            if batch:
                self._run_batch(batch)
            else:
                with self._cond:
                    if self._closed and not self._jobs:
                        return

    def _run_batch(self, batch: list[_Job]) -> None:
        started = time.perf_counter()
        try:
            for flip in (True, False):
                jobs = [job for job in batch if job.flip == flip]
                if not jobs:
                    continue
                with self._turns.network():
                    t0 = time.perf_counter()
                    keypoints, scores, _ = self._predictors[flip].predict_crops(
                        np.stack([job.crop for job in jobs]), [job.matrix for job in jobs]
                    )
                network_ms = (time.perf_counter() - t0) * 1000.0
                for i, job in enumerate(jobs):
                    queued_ms = (t0 - job.queued) * 1000.0
                    job.future.set_result(CropResult(keypoints[i], scores[i], len(jobs), queued_ms, network_ms))
        except Exception as err:  # a broken runtime: every request of the batch gets the error, the server goes on
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(err)
        finally:
            with self._cond:
                self._pending -= len(batch)
            if self._on_batch is not None:
                self._on_batch(len(batch), time.perf_counter() - started)


class Turns:
    """The network and the work around it taking turns at the CPU when ``active`` (a readers-writer lock).

    A request holds :meth:`stage` for one unit of work (decoding its picture, finding its people, cutting its
    crops); several may hold it at once. :meth:`network` waits for the units under way to end, keeps new ones
    from starting, and lets them go when the batch is through. Inactive: both are no-ops (the work overlaps the
    network).
    """

    def __init__(self, active: bool) -> None:
        self.active = active
        self._changed = threading.Condition()
        self._working = 0  # stage units under way
        self._network = False

    @contextmanager
    def stage(self) -> Iterator[None]:
        if not self.active:
            yield
            return
        with self._changed:
            self._changed.wait_for(lambda: not self._network)
            self._working += 1
        try:
            yield
        finally:
            with self._changed:
                self._working -= 1
                self._changed.notify_all()

    @contextmanager
    def network(self) -> Iterator[None]:
        if not self.active:
            yield
            return
        with self._changed:
            self._network = True  # no new unit starts from here
            self._changed.wait_for(lambda: self._working == 0)
        try:
            yield
        finally:
            with self._changed:
                self._network = False
                self._changed.notify_all()


def takes_turns(runtime: Any) -> bool:
    """Whether other work should wait while ``runtime`` runs (:class:`Turns`): PyTorch (eager, compile) on the CPU.

    Measured on a 2-core Intel Xeon (``benchmarks/serve_load.py``, hg2 eager bf16, 16 clients, ``--max-batch 8``,
    runs alternating): 10.9-11.6 requests/s taking turns against 8.9-9.4 with decoding beside the network. PyTorch's
    CPU threads split each layer evenly and wait for each other, so a thread put off its core holds up the layer;
    OpenVINO and ONNX Runtime share work out dynamically, and a network on a GPU leaves the CPU free, so those
    overlap. (``hourglass predict``'s video stages gained nothing from turns there: 0.92-0.96x either way.)
    """
    device = getattr(runtime, "device", None)
    return getattr(runtime, "backend", "") in ("eager", "compile") and getattr(device, "type", "") == "cpu"
