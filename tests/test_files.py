"""Files and folders the library writes get the permissions any new file gets: 0o666 / 0o777 less the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from hourglass.checkpoint.io import save_checkpoint, save_training_state
from hourglass.files import atomic_write, make_temp_dir
from hourglass.models import create_model
from hourglass.synthetic import write_synthetic


@pytest.fixture(params=[0o022, 0o077, 0o002], ids=["umask022", "umask077", "umask002"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """Run the test under this process umask (restored after)."""
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_write_honours_the_umask(tmp_path: Path, umask: int) -> None:
    path = atomic_write(tmp_path / "a.json", lambda tmp: Path(tmp).write_text("{}"))
    plain = tmp_path / "plain.json"
    plain.write_text("{}")
    assert mode(path) == mode(plain) == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "plain.json"]


def test_checkpoints_and_training_state_honour_the_umask(tmp_path: Path, umask: int) -> None:
    """safetensors creates its own 0o600 file; the checkpoint still gets the umask's mode."""
    net = create_model("hg1", num_channels=16, depth=2)
    ckpt = save_checkpoint(tmp_path / "m.safetensors", net, {"model": {"name": "hg1", "kwargs": {}}})
    state = save_training_state(tmp_path / "m.state.pt", {"step": 1, "rng": torch.get_rng_state()})
    assert mode(ckpt) == mode(state) == 0o666 & ~umask


def test_synthetic_folder_honours_the_umask(tmp_path: Path, umask: int) -> None:
    out = write_synthetic(tmp_path / "synth", 1, format="mpii", image_size=(32, 32))
    assert mode(out) == mode(out / "images") == 0o777 & ~umask
    assert mode(out / "annotations.json") == 0o666 & ~umask


def test_temp_names_are_unique_and_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    folders = {make_temp_dir(tmp_path, ".x.") for _ in range(20)}
    assert len(folders) == 20 and all(f.is_dir() and f.name.startswith(".x.") for f in folders)
    for f in folders:
        f.rmdir()

    def fail(tmp: str) -> None:
        Path(tmp).write_text("partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(tmp_path / "b.json", fail)
    assert list(tmp_path.iterdir()) == []


def _write_under_limit(folder: str) -> str:
    """In a child: write 1 MB under a 64 kB file-size limit (SIGXFSZ ignored, so write() gets EFBIG)."""
    import resource
    import signal

    from hourglass.errors import OutOfSpaceError

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (65536, resource.RLIM_INFINITY))
    try:
        atomic_write(Path(folder) / "a.bin", lambda tmp: Path(tmp).write_bytes(b"x" * 1_000_000))
    except OutOfSpaceError as err:
        return str(err)
    return "no error"


def test_out_of_space_names_the_file_and_keeps_the_previous_one(tmp_path: Path) -> None:
    import multiprocessing

    (tmp_path / "a.bin").write_bytes(b"old")
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        message = pool.apply(_write_under_limit, (str(tmp_path),))
    assert message.startswith(f"{tmp_path / 'a.bin'}: no space left"), message
    assert "MB free" in message and "file-size limit 65.5 kB" in message
    assert (tmp_path / "a.bin").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


def test_cache_dir_follows_hourglass_home_then_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from hourglass.files import cache_dir

    monkeypatch.setenv("HOURGLASS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "home"
    monkeypatch.delenv("HOURGLASS_HOME")
    assert cache_dir() == tmp_path / "xdg" / "hourglass"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert cache_dir() == tmp_path / "user" / ".cache" / "hourglass"
