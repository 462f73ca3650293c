"""A folder with little room, for the out-of-space tests: a tmpfs the test mounts where it may, else a file-size
limit.

Mounting needs root (or CAP_SYS_ADMIN), which this machine and CI give; elsewhere (``mount`` refused, or
``HOURGLASS_TEST_NO_MOUNT=1``) the folder is an ordinary one and commands run under ``RLIMIT_FSIZE`` in the
child process instead, with SIGXFSZ ignored so that a write past the limit fails with ``EFBIG``. The two
measure room differently: on the tmpfs, ``limit(n)`` leaves ``n`` bytes free for all the files written
after it (whole 4 kB pages); under the file-size limit, each file may grow to ``n`` bytes. The tests pick
sizes for which both give the same outcome.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from sessions import REPO_ROOT

TMPFS_SIZE = 2_000_000  # bytes: room for a tiny training run's checkpoints, enough for every test here


class SmallDisk:
    """``folder``, and :meth:`hourglass` for commands that write into it under :meth:`limit`."""

    def __init__(self, base: Path) -> None:
        self.mount = base / "small"
        self.mount.mkdir()
        self.tmpfs = os.environ.get("HOURGLASS_TEST_NO_MOUNT") != "1" and _mount_tmpfs(self.mount)
        self.folder = self.mount / "files"  # beside it on the tmpfs, the file that takes the room away
        self.folder.mkdir()
        self._filler = self.mount / "filler"
        self.file_size: int | None = None

    def limit(self, room: int) -> None:
        """From now on: ``room`` bytes free on the tmpfs (rounded down to pages), or files of at most ``room``
        bytes for the commands :meth:`hourglass` runs."""
        self.unlimit()
        if not self.tmpfs:
            self.file_size = room
            return
        usage = os.statvfs(self.folder)
        page = usage.f_frsize
        fill = usage.f_bavail * page - room // page * page
        assert fill >= 0, f"the {TMPFS_SIZE}-byte tmpfs has {usage.f_bavail * page} bytes free, less than {room}"
        with open(self._filler, "wb") as f:
            f.write(b"\0" * fill)
        assert self.free() == room // page * page, (self.free(), room)

    def unlimit(self) -> None:
        """All the room back."""
        self.file_size = None
        self._filler.unlink(missing_ok=True)

    def free(self) -> int:
        """Bytes free in :attr:`folder`'s file system."""
        return shutil.disk_usage(self.folder).free

    def hourglass(self, *args: str, timeout: int = 180) -> tuple[int, str]:
        """``hourglass ARGS`` writing into the small folder: ``(exit status, stdout and stderr)``.

        On the tmpfs it runs in this process (typer's runner: the real command, without a new interpreter's
        start-up); under the file-size limit it runs in a child process, the only place the limit may be set.
        Either way with one torch thread: the models here are tiny, and on a shared machine a second thread
        only spins (4 steps of a tiny training run took 13 s with two threads and 2.9 s with one, load 4).
        """
        if self.tmpfs:
            import torch
            from typer.testing import CliRunner

            from hourglass.cli import app

            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                result = CliRunner().invoke(app, list(args))
            finally:
                torch.set_num_threads(threads)
            if result.exception is not None and not isinstance(result.exception, SystemExit):
                raise result.exception  # a bug, with its traceback
            return result.exit_code, result.output
        cmd = [sys.executable, "-m", "hourglass", *args]
        proc = subprocess.run(
            cmd if self.file_size is None else file_size_limited(cmd, self.file_size),
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        return proc.returncode, proc.stdout + proc.stderr

    def close(self) -> None:
        if self.tmpfs:
            subprocess.run(["umount", "--lazy", str(self.mount)], check=True)


def _mount_tmpfs(folder: Path) -> bool:
    """Mount a :data:`TMPFS_SIZE` tmpfs on ``folder``; ``False`` where that is not permitted."""
    try:
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0755", "tmpfs", str(folder)],
            capture_output=True,
            timeout=30,
        )
    except FileNotFoundError:  # no mount command
        return False
    return proc.returncode == 0


_LIMIT = (
    "import os, resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
    "resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), resource.RLIM_INFINITY)); "
    "os.execv(sys.argv[2], sys.argv[2:])"
)


def file_size_limited(cmd: list[str], limit: int) -> list[str]:
    """``cmd`` run with its files stopping at ``limit`` bytes (``RLIMIT_FSIZE``, SIGXFSZ ignored so that a write
    past it fails with EFBIG): a small interpreter sets both, then becomes ``cmd`` (``execv`` keeps them).

    This instead of ``subprocess``'s ``preexec_fn``, which forks the test process, threads and all, and runs
    Python in the child before ``exec``: after enough tests had loaded thread pools (OpenMP, ONNX Runtime,
    OpenVINO), the whole pytest process died of a segmentation fault in one such fork (2026-12-03).
    """
    return [sys.executable, "-c", _LIMIT, str(int(limit)), *cmd]


def out_of_space_line(status: int, output: str, path: Path) -> str:
    """The error line of a command that ran out of room writing ``path`` (without ``error: ``), after checking
    that it is the command's one error line, with exit status 1 and no traceback, and names ``path`` and the
    free space."""
    assert status == 1 and "Traceback" not in output, output
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, output
    message = errors[0].removeprefix("error: ")
    assert message.startswith(f"{path}: no space left to write it ("), message
    assert re.search(r"\(\d+\.\d (kB|MB) free on its file system", message), message
    return message
