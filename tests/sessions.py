"""Commands run as a real user runs them, in their own session, so that nothing they start outlives a test."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def own_session(cmd: list[str], **popen: Any) -> Iterator[subprocess.Popen]:
    """``Popen(cmd)`` from the repository root in a new session; on leaving, whatever of its process group
    still runs (torchrun's or ``train.procs``' workers included) is killed with SIGKILL, so a failed or timed
    out test leaves no process waiting."""
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, start_new_session=True, **popen)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_for_lines(path: Path, count: int, timeout: float, poll: float = 0.2) -> int:
    """Wait until the text file ``path`` has ``count`` lines or ``timeout`` seconds pass; its line count."""
    deadline, lines = time.monotonic() + timeout, 0
    while time.monotonic() < deadline:
        lines = len(path.read_text().splitlines()) if path.is_file() else 0
        if lines >= count:
            break
        time.sleep(poll)
    return lines
