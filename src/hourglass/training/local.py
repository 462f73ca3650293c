"""Data parallel over the cores of one machine: ``train.procs`` processes, as torchrun would start them.

Some steps use a CPU's cores better as processes than as PyTorch's intra-op threads: on a 2-core AMD
EPYC, hg2 at 256x256 (batch 16) trains 1.13-1.21x faster as two single-thread processes, each on half the
global batch with DDP (gloo) averaging the gradients, than as one process with two threads, whose threads
spend more CPU time on the same step; the demo model (hg1, 128 channels, 128x128) does not (0.97x).
``hourglass bench MODEL --train --set train.procs=N`` measures it (``docs/BENCHMARKS.md``).

:func:`run_local` starts ``procs`` workers with the environment torchrun would give them (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``) and ``threads`` intra-op threads each,
runs ``fn`` in every one, relays rank 0's messages to the caller's ``log`` and returns rank 0's result.
A failure in any worker stops the others and is raised in the caller (an :class:`HourglassError` as itself,
so the CLI still prints one line). SIGINT reaches every worker from the terminal (same process group) and
SIGTERM sent to the caller is forwarded to them: training saves and stops as in one process.
"""

from __future__ import annotations

import os
import pickle
import signal
import socket
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.multiprocessing as mp

from hourglass.device import usable_cores
from hourglass.errors import ConfigError, HourglassError

WORKER_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


class WorkerFailed(HourglassError):
    """A worker process of a local data-parallel run died or raised something other than an HourglassError."""


def resolve_procs(procs: int | str, batch_size: int, device: torch.device, min_per_proc: int = 4) -> int:
    """How many processes ``train.procs`` means here.

    ``auto``: one per usable core on a CPU (``usable_cores``), but no more than leaves ``min_per_proc``
    samples of the global batch to each and a number that divides the batch; 1 on a GPU (start one process
    per GPU with torchrun) and 1 when already running under torchrun. An integer is taken as given.

    Raises:
        ConfigError: an integer below 1, or one that does not divide ``batch_size``.
    """
    if os.environ.get("WORLD_SIZE") is not None:
        return 1
    if procs == "auto":
        if device.type != "cpu":
            return 1
        n = max(1, min(usable_cores(), batch_size // min_per_proc))
        while batch_size % n:
            n -= 1
        return n
    if not isinstance(procs, int) or procs < 1:
        raise ConfigError(f"train.procs must be a positive integer or 'auto', got {procs!r}")
    if batch_size % procs:
        raise ConfigError(f"train.batch_size={batch_size} must be divisible by train.procs={procs}")
    return procs


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(
    rank: int, procs: int, port: int, threads: int, fn: Callable[..., Any], args: tuple, q: Any, relay_log: bool
) -> None:
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(procs),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        OMP_NUM_THREADS=str(threads),
    )
    torch.set_num_threads(threads)
    log = (lambda s: q.put(("log", rank, s))) if relay_log and rank == 0 else None
    try:
        result = fn(*args, log=log)
        q.put(("result", rank, result if rank == 0 else None))
    except BaseException as exc:
        try:
            pickle.dumps(exc)
            payload: Any = exc
        except Exception:
            payload = None
        q.put(("error", rank, (payload, traceback.format_exc())))
        raise SystemExit(1) from None


@contextmanager
def _forward_signals(workers: list[Any]) -> Iterator[None]:
    """SIGTERM or SIGINT to the caller becomes SIGTERM to every worker (a terminal's Ctrl-C reaches them
    directly too): each stops at the end of its step, rank 0 saves, and the caller keeps waiting for them."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(signum: int, _frame: Any) -> None:
        for w in workers:
            if w.is_alive():
                os.kill(w.pid, signal.SIGTERM)

    old = {signal.SIGTERM: signal.signal(signal.SIGTERM, on_term), signal.SIGINT: signal.signal(signal.SIGINT, on_term)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def run_local(
    fn: Callable[..., Any],
    args: tuple,
    procs: int,
    threads: int | None = None,
    log: Callable[[str], None] | None = None,
) -> Any:
    """Run ``fn(*args, log=...)`` in ``procs`` fresh processes (spawned) joined as one torch.distributed group.

    Args:
        fn: a module-level function (it is pickled); in every worker it sees torchrun's environment
            variables, so :func:`hourglass.training.distributed.init_distributed` joins the group.
        args: its positional arguments (picklable).
        procs: number of processes (>= 2 to be useful).
        threads: intra-op threads per process (default: usable cores // procs, at least 1).
        log: messages of rank 0 are passed here (``fn`` receives a ``log`` that relays them); ``None``
            gives ``fn`` ``log=None``.

    Returns:
        What ``fn`` returned on rank 0.

    Raises:
        HourglassError: the first worker's own error, when it raised one.
        WorkerFailed: a worker raised anything else (its traceback is in the message) or died.
    """
    threads = threads if threads is not None else max(1, usable_cores() // procs)
    ctx = mp.get_context("spawn")
    q = ctx.SimpleQueue()
    port = free_port()
    workers = [
        ctx.Process(target=_worker, args=(r, procs, port, threads, fn, args, q, log is not None), daemon=False)
        for r in range(procs)
    ]
    result: Any = None
    have_result = False
    errors: list[tuple[int, Any, str]] = []
    stopped: set[int] = set()  # ranks terminated here after another one failed

    def drain() -> None:
        nonlocal result, have_result
        while not q.empty():
            kind, rank, payload = q.get()
            if kind == "log" and log is not None:
                log(payload)
            elif kind == "result" and rank == 0:
                result, have_result = payload, True
            elif kind == "error":
                errors.append((rank, *payload))

    with _forward_signals(workers):
        for w in workers:
            w.start()
        try:
            while True:
                drain()
                if errors or any(w.exitcode not in (None, 0) for w in workers):
                    time.sleep(0.5)  # let the other ranks report theirs
                    break
                if all(w.exitcode == 0 for w in workers):
                    break
                time.sleep(0.05)
        finally:
            failed = errors or any(w.exitcode not in (None, 0) for w in workers)
            for rank, w in enumerate(workers):
                if w.is_alive() and failed:
                    w.terminate()
                    stopped.add(rank)
            for w in workers:
                w.join()
            drain()
    reported = {rank for rank, _, _ in errors}
    silent = [(r, w.exitcode) for r, w in enumerate(workers) if w.exitcode and r not in reported | stopped]
    own = [e for e in errors if isinstance(e[1], (HourglassError, KeyboardInterrupt))]
    if own:
        raise min(own, key=lambda e: e[0])[1]
    if silent:
        rank, code = silent[0]
        how = f"was killed by signal {-code}" if code < 0 else f"ended with exit code {code}"
        raise WorkerFailed(
            f"worker process {rank} of {procs} {how} without reporting an error (out of memory?); the others "
            "were stopped"
        )
    if errors:
        rank, _, tb = min(errors, key=lambda e: e[0])
        raise WorkerFailed(f"worker process {rank} of {procs} failed:\n{tb}")
    if not have_result:
        codes = ", ".join(f"rank {r}: exit code {w.exitcode}" for r, w in enumerate(workers))
        raise WorkerFailed(f"a worker process of {procs} ended without a result ({codes})")
    return result
