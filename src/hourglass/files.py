"""Writing files and folders so that a failure leaves nothing half-written and success leaves ordinary files.

Everything is first written under a temporary name beside its destination, then renamed over it
(``os.replace``, atomic within one file system). The temporary file or folder is created with the mode any
new file (``0o666``) or folder (``0o777``) gets, less the process umask, so the renamed result has the
permissions ``open(path, "w")`` or ``mkdir`` would have given it. (``tempfile.mkstemp`` and ``mkdtemp``
create ``0o600`` / ``0o700``, private to the owner whatever the umask, which is right for scratch files and
wrong for a checkpoint or a data set that others on the machine should read.) A writer that replaces the
temporary file with one of its own (``safetensors.torch.save_file`` creates ``0o600`` files) has the mode
set back.
"""

from __future__ import annotations

import errno
import os
import resource
import secrets
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

from hourglass.errors import OutOfSpaceError

_TRIES = 100


def _create_unique(parent: Path, prefix: str, suffix: str, create: Callable[[Path], None]) -> Path:
    """Call ``create`` on ``parent/prefix<random>suffix`` until a name is free; that path."""
    for _ in range(_TRIES):
        candidate = parent / f"{prefix}{secrets.token_hex(6)}{suffix}"
        try:
            create(candidate)
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"{parent}: no free temporary name {prefix}*{suffix} in {_TRIES} tries")


def _create_file(path: Path) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # the kernel applies the umask


def make_temp_dir(parent: str | os.PathLike[str], prefix: str) -> Path:
    """A new empty folder ``parent/prefix<random>``, mode ``0o777`` less the umask (``mkdtemp`` gives ``0o700``).

    For a folder that is filled and then renamed into place; the caller removes it if that fails.
    """
    return _create_unique(Path(parent), prefix, "", lambda path: os.mkdir(path, 0o777))


def replace_folder(tmp: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Rename the filled folder ``tmp`` (from :func:`make_temp_dir`) to ``out``; an existing ``out`` is moved
    aside first and removed only once ``tmp`` has taken its place."""
    tmp, out = Path(tmp), Path(out)
    if out.exists():
        old = make_temp_dir(out.parent, f".{out.name}.old.")
        os.replace(out, old / out.name)
        os.replace(tmp, out)
        shutil.rmtree(old)
    else:
        os.replace(tmp, out)
    return out


def atomic_write(path: str | os.PathLike[str], write: Callable[[str], None], suffix: str = ".tmp") -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it over ``path``.

    Nothing is left at ``path`` (and any previous file stays intact) if ``write`` raises. The file gets
    the permissions of any new file (``0o666`` less the umask), like ``open(path, "w")``. ``suffix`` ends the
    temporary name (writers that pick a format by extension, like OpenCV's video writer, need the real one).

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> atomic_write(folder / "a.txt", lambda tmp: Path(tmp).write_text("hello")).read_text()
        'hello'
        >>> sorted(p.name for p in folder.iterdir())  # no temporary file left behind
        ['a.txt']
        >>> import shutil; shutil.rmtree(folder)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_unique(path.parent, f".{path.name}.", suffix, _create_file)
    mode = stat.S_IMODE(tmp.stat().st_mode)  # 0o666 less the umask
    try:
        write(str(tmp))
        if stat.S_IMODE(tmp.stat().st_mode) != mode:  # a writer that made its own file (safetensors: 0o600)
            os.chmod(tmp, mode)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        # an OutOfSpaceError from ``write`` (a nested atomic_write, which replaces a second file only once this
        # one is written) already names its own file
        full = None if isinstance(err, OutOfSpaceError) else out_of_space_error(err, path, tmp)
        tmp.unlink(missing_ok=True)
        if full is not None:
            raise full from err
        raise
    return path


def out_of_space_error(err: BaseException, path: Path, written: Path) -> OutOfSpaceError | None:
    """The :class:`OutOfSpaceError` for ``path`` if ``err``, raised while writing ``written`` (a temporary file
    for ``path``), came from a lack of space; ``None`` if it did not."""
    note = _out_of_space(err, written)
    if note is None:
        return None
    free = shutil.disk_usage(path.parent).free
    return OutOfSpaceError(
        f"{path}: no space left to write it ({_size(free)} free on its file system{note}); "
        "the previous file, if any, is intact"
    )


def _out_of_space(err: BaseException, tmp: Path) -> str | None:
    """Whether ``err``, raised while writing ``tmp``, came from a lack of space: ``None`` if not, else a note
    on the file-size limit (``""`` when there is none).

    Seen in the exception chain (``OSError`` ``ENOSPC`` / ``EFBIG``, or their text in the message of a writer
    that keeps only that: safetensors' ``SafetensorError: ... No space left on device (os error 28)``), or,
    for writers that lose both (torch's ``inline_container`` ``RuntimeError``), in the file system: no block
    free beside ``tmp``, or ``tmp`` at the process's file-size limit (``RLIMIT_FSIZE``).
    """
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    limit_note = f", file-size limit {_size(limit)}" if limit != resource.RLIM_INFINITY else ""
    codes = (errno.ENOSPC, errno.EFBIG)
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in codes:
            return limit_note
        if any(os.strerror(code) in str(seen) for code in codes):
            return limit_note
        seen = seen.__cause__ or seen.__context__
    if not isinstance(err, Exception):
        return None
    size = tmp.stat().st_size if tmp.exists() else 0
    if limit != resource.RLIM_INFINITY and size >= limit:
        return limit_note
    usage = os.statvfs(tmp.parent)
    return "" if usage.f_bavail == 0 else None


def _size(num_bytes: int) -> str:
    """``num_bytes`` in MB, or kB below 0.1 MB."""
    return f"{num_bytes / 1e6:.1f} MB" if num_bytes >= 100_000 else f"{num_bytes / 1e3:.1f} kB"


def cache_dir() -> Path:
    """The folder of hourglass's caches: ``$HOURGLASS_HOME``, else ``$XDG_CACHE_HOME/hourglass``, else
    ``~/.cache/hourglass`` (not created here). Published weights go under ``downloads/`` and ``checkpoints/``
    (:mod:`hourglass.checkpoint.hub`), OpenVINO's compiled models under ``openvino/``, exports under ``onnx/``."""
    home = os.environ.get("HOURGLASS_HOME")
    if home:
        return Path(home).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "hourglass"
