"""The train/eval commands as a user runs them: expected errors are one line, exit 1, no traceback;
SIGINT saves a checkpoint before exiting."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import torch

from sessions import own_session, wait_for_lines
from small_disk import file_size_limited, out_of_space_line

REPO_ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hourglass", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout
    )


def _expected_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    message = " ".join(proc.stderr.split())  # rich wraps long lines
    assert message.startswith("error:"), message
    for fragment in fragments:
        assert fragment in message, message


def test_bad_inputs_are_one_line_errors(tmp_path: Path, make_config) -> None:
    _, path = make_config()
    missing = _run("train", "--config", str(path), "--set", f"data.train.images={tmp_path / 'nowhere'}")
    _expected_error(missing, "data.train.images: folder", "nowhere does not exist")

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "annotations.json").write_text("[]")
    proc = _run("train", "--config", str(path), "--set", f"data.train.annotations={empty / 'annotations.json'}")
    _expected_error(proc, "empty")

    _expected_error(_run("train", "--config", str(path), "--set", "optim.lrr=1"), "unknown key 'optim.lrr'")

    pickled = tmp_path / "model.pth"
    torch.save({"state_dict": {}}, pickled)
    _expected_error(_run("eval", "--config", str(path), "--checkpoint", str(pickled)), "pickled PyTorch checkpoint")
    assert not (tmp_path / "eval.json").exists()


def test_sigint_saves_then_resume_finishes(tmp_path: Path, make_config) -> None:
    _, path = make_config(["train.epochs=50"])
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "hourglass", "train", "--config", str(path), "--set", "train.epochs=50"]
    with own_session(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) as proc:
        # 2 of 200 steps logged: the signal comes with 198 steps to go, far from the end of training
        assert wait_for_lines(out / "metrics.jsonl", 2, timeout=150) >= 2, "training logged no steps in 150 s"
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "saving at step" in stderr
    from hourglass.checkpoint.io import read_metadata

    step = read_metadata(out / "last.safetensors")["step"]
    assert 2 <= step < 200  # saved on the signal, not at the end of the 50 epochs
    done = _run("train", "--config", str(path), "--set", "train.epochs=3", "--resume", str(out / "last.safetensors"))
    assert done.returncode == 0, done.stderr
    assert read_metadata(out / "last.safetensors")["step"] == 12  # 3 epochs of 4 steps
    steps = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 13))  # one log continued: no step missing or repeated


def test_sigkill_mid_epoch_then_resume_repeats_an_uninterrupted_run(tmp_path: Path, make_config) -> None:
    """A real ``hourglass train`` killed with SIGKILL (no chance to save) between two mid-epoch checkpoints
    (``train.save_every_steps=3``, 16 steps per epoch) resumes from the last one and logs exactly the
    losses of an uninterrupted run."""
    sets = ["train.batch_size=2", "train.save_every_steps=3", "train.log_every=1"]
    _, path = make_config()
    args = ["train", "--config", str(path)] + [a for s in sets for a in ("--set", s)]
    full = _run(*args, "--set", f"train.out_dir={tmp_path / 'full'}")
    assert full.returncode == 0, full.stderr
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "hourglass", *args, "--set", "train.epochs=50"]
    with own_session(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env) as proc:
        # 7 of 800 steps logged (the killed run has 50 epochs): the kill comes with hundreds of steps to go
        assert wait_for_lines(out / "metrics.jsonl", 7, timeout=150, poll=0.01) >= 7, "no 7 steps logged in 150 s"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    from hourglass.checkpoint.io import read_metadata

    saved = read_metadata(out / "last.safetensors")["step"]
    assert saved in (6, 9, 12, 15), f"killed at step {saved}: expected a mid-epoch checkpoint of epoch 0"
    done = _run(*args, "--resume", str(out / "last.safetensors"))
    assert done.returncode == 0, done.stderr

    def losses(run: Path) -> list[tuple[int, float]]:
        return [(r["step"], r["loss"]) for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())]

    assert losses(out) == losses(tmp_path / "full") and len(losses(out)) == 32


def test_out_of_space_at_a_checkpoint_is_one_line_with_the_resume_command(tmp_path: Path, make_config) -> None:
    """Epoch 1 saves freely; epoch 2 runs under a file-size limit lower than a checkpoint: one line names the
    file, the free space, the intact checkpoint of step 4 and the ``--resume`` command, which then finishes."""
    _, path = make_config()
    out = tmp_path / "run"
    first = _run("train", "--config", str(path), "--set", "train.epochs=1")
    assert first.returncode == 0, first.stderr
    last = out / "last.safetensors"
    before = last.read_bytes()
    assert len(before) > 40_000
    cmd = [sys.executable, "-m", "hourglass", "train", "--config", str(path), "--set", "train.epochs=2"]
    full = subprocess.run(
        file_size_limited([*cmd, "--resume", str(last)], 20_000),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert full.returncode == 1 and "Traceback" not in full.stderr, full.stderr
    message = " ".join(full.stderr.split("error: ", 1)[1].split())  # after the log lines; rich wraps long lines
    for fragment in ("last.state.pt: no space left", "file-size limit 20.0 kB", f"{last} (step 4) is intact"):
        assert fragment in message, message
    assert last.read_bytes() == before
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]
    resume = message.split("continue with: ")[1].split()
    assert resume[:3] == ["hourglass", "train", "--config"] and resume[-2:] == ["--resume", str(last)]
    done = _run(*resume[1:], "--set", "train.epochs=2")
    assert done.returncode == 0, done.stderr
    from hourglass.checkpoint.io import read_metadata

    assert read_metadata(last)["step"] == 8


def test_a_folder_holding_a_run_is_kept_unless_resume_or_overwrite(tmp_path: Path, make_config) -> None:
    """A second ``train`` into an ``out_dir`` holding a run is refused in one line and changes nothing; the
    resume state passed as the checkpoint is pointed to its weights; ``--overwrite`` starts afresh."""
    _, path = make_config()
    out = tmp_path / "run"
    first = _run("train", "--config", str(path), "--set", "train.epochs=1")
    assert first.returncode == 0, first.stderr
    last, log = out / "last.safetensors", out / "metrics.jsonl"
    weights, lines = last.read_bytes(), log.read_text()
    assert len(lines.splitlines()) == 4  # one epoch of 4 steps, each logged

    again = _run("train", "--config", str(path))
    assert again.stderr.strip() == (
        f"error: train.out_dir {out} already holds a run (last.safetensors); continue it with --resume {last}, "
        "replace it with --overwrite, or set train.out_dir to another folder (--set train.out_dir=runs/NEW)"
    )
    assert again.returncode == 1 and last.read_bytes() == weights and log.read_text() == lines

    state = out / "last.state.pt"
    wrong = _run("train", "--config", str(path), "--resume", str(state))
    _expected_error(wrong, f"{state}: the resume state that goes with last.safetensors", f"pass {last}")
    assert len(wrong.stderr.strip().splitlines()) == 1 and last.read_bytes() == weights

    fresh = _run("train", "--config", str(path), "--set", "train.epochs=1", "--overwrite")
    assert fresh.returncode == 0, fresh.stderr
    assert [json.loads(x)["step"] for x in log.read_text().splitlines()] == [1, 2, 3, 4]  # a new log, not appended


def test_a_full_disk_after_the_state_keeps_a_pair_of_one_step_to_resume_from(small_disk, make_config) -> None:
    """On a small file system (a tmpfs, or a file-size limit where mounting is refused) epoch 1 saves freely;
    at epoch 2's save the new resume state fits and the new weights do not. Neither file of the step-4 pair
    is replaced (a state of step 8 beside weights of step 4 could not be resumed), the one line names the
    weights file, the free space and that pair, and its ``--resume`` command, run as printed, finishes."""
    out = small_disk.folder / "run"
    # SGD without momentum keeps no per-weight state: the resume state is a fraction of the weights' size
    _, path = make_config(optim={"name": "sgd", "momentum": 0.0}, train={"out_dir": str(out), "epochs": 1})
    status, output = small_disk.hourglass("train", "--config", str(path))
    assert status == 0, output
    last, state = out / "last.safetensors", out / "last.state.pt"
    pair = last.read_bytes(), state.read_bytes()
    assert 3 * len(pair[1]) < len(pair[0]), [len(b) for b in pair]
    room = len(pair[1]) + len(pair[0]) // 2  # a new state and a few log lines fit, new weights do not
    small_disk.limit(room)
    status, output = small_disk.hourglass(
        "train", "--config", str(path), "--set", "train.epochs=2", "--resume", str(last)
    )
    message = out_of_space_line(status, output, last)
    assert f"{last} (step 4) is intact with its resume state" in message, message
    assert (last.read_bytes(), state.read_bytes()) == pair
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left
    small_disk.unlimit()
    resume = message.split("continue with: ")[1].split()
    assert resume[:3] == ["hourglass", "train", "--config"] and resume[-2:] == ["--resume", str(last)]
    status, output = small_disk.hourglass(*resume[1:])
    assert status == 0, output
    from hourglass.checkpoint.io import load_training_state, read_metadata

    assert read_metadata(last)["step"] == 8 == load_training_state(state)["step"]  # epochs=2 is in its config.yaml
