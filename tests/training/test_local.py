"""``train.procs``: data parallel over this machine's cores, processes started by hourglass itself."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import local_workers
from hourglass.errors import ConfigError, DataError
from hourglass.training import local
from hourglass.training.local import WorkerFailed, resolve_procs, run_local
from hourglass.training.loop import train
from sessions import own_session, wait_for_lines

CPU = torch.device("cpu")


def test_resolve_procs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(local, "usable_cores", lambda: 2)
    assert resolve_procs("auto", 16, CPU) == 2
    assert resolve_procs("auto", 16, torch.device("cuda", 0)) == 1  # one per GPU is torchrun's job
    assert resolve_procs("auto", 7, CPU) == 1  # 2 does not divide 7: the largest number that does
    assert resolve_procs("auto", 4, CPU) == 1  # at least 4 samples per process
    monkeypatch.setattr(local, "usable_cores", lambda: 16)
    assert resolve_procs("auto", 16, CPU) == 4
    assert resolve_procs("auto", 24, CPU) == 6
    assert resolve_procs(3, 12, CPU) == 3
    with pytest.raises(ConfigError, match=r"train.batch_size=16 must be divisible by train.procs=3"):
        resolve_procs(3, 16, CPU)
    with pytest.raises(ConfigError, match=r"train\.procs must be a positive integer"):
        resolve_procs(0, 16, CPU)
    monkeypatch.setenv("WORLD_SIZE", "2")  # already a torchrun worker: never start more
    assert resolve_procs("auto", 16, CPU) == 1
    assert resolve_procs(2, 16, CPU) == 1


def test_config_reads_procs(make_config) -> None:
    assert make_config(["train.procs=auto"])[0].train.procs == "auto"
    assert make_config(["train.procs=2"])[0].train.procs == 2
    with pytest.raises(ConfigError, match=r"train.procs must be an integer or one of 'auto', got str 'all'"):
        make_config(["train.procs=all"])
    with pytest.raises(ConfigError, match=r"train.procs must be a positive integer or 'auto', got -1"):
        make_config(["train.procs=-1"])


def test_run_local_joins_a_group_and_relays_rank_0() -> None:
    said: list[str] = []
    result = run_local(local_workers.rank_sum, ([1.5, 2.0],), procs=2, threads=1, log=said.append)
    assert result == {"rank": 0, "world": 2, "sum": 3.5, "threads": 1}
    assert said == ["hello from rank 0 of 2"]


def test_a_worker_error_reaches_the_caller_as_itself() -> None:
    t0 = time.monotonic()
    with pytest.raises(DataError, match=r"bad\.json: record 3 has 15 keypoints, expected 16"):
        run_local(local_workers.rank1_raises, ("bad.json",), procs=2, threads=1)
    assert time.monotonic() - t0 < 60  # rank 0, waiting at its barrier, was stopped rather than waited for


def test_a_worker_that_dies_stops_the_run() -> None:
    with pytest.raises(WorkerFailed, match=r"exit code 3"):
        run_local(local_workers.rank1_dies, (), procs=2, threads=1)


@pytest.mark.slow
def test_two_local_processes_match_one(tmp_path: Path, make_config) -> None:
    """``train.procs=2`` trains like one process at the same global batch (the torchrun test's setting and
    tolerances, ``tests/training/test_distributed.py``), and only rank 0 writes."""
    from test_distributed import FIRST_LOSS_REL, LOSS_REL, STEPS, WEIGHT_ABS

    sets = ["model.norm=group", f"train.max_steps={STEPS}", "optim.name=sgd", "optim.lr=0.05", "optim.momentum=0.9"]
    cfg, _ = make_config([*sets, "train.out_dir=" + str(tmp_path / "one")])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = train(cfg)
    finally:
        torch.set_num_threads(threads)

    cfg2, _ = make_config([*sets, "train.procs=2", "train.out_dir=" + str(tmp_path / "two")])
    said: list[str] = []
    two = train(cfg2, log=said.append)
    assert two.status == "max_steps" and two.step == STEPS
    assert any("over 2 process(es)" in s for s in said)
    assert two.losses[0] == pytest.approx(single.losses[0], rel=FIRST_LOSS_REL)
    assert two.losses == pytest.approx(single.losses, rel=LOSS_REL)
    records = [json.loads(line) for line in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    assert len([r for r in records if "loss" in r]) == STEPS  # one writer
    a, b = load_file(single.last_checkpoint), load_file(two.last_checkpoint)
    assert max(float((a[k].float() - b[k].float()).abs().max()) for k in a) < WEIGHT_ABS


def test_a_setting_the_workers_refuse_is_one_config_error(make_config) -> None:
    cfg, _ = make_config(["train.procs=2", "train.step=bf16_weights", "train.max_steps=1"])
    with pytest.raises(ConfigError, match="bf16_weights' runs in one process"):
        train(cfg)


def test_on_step_needs_one_process(make_config) -> None:
    cfg, _ = make_config(["train.procs=2", "train.max_steps=1"])
    with pytest.raises(ConfigError, match="on_step"):
        train(cfg, on_step=lambda step, loss: None)


@pytest.mark.slow
def test_sigterm_saves_and_resumes_with_local_processes(tmp_path: Path, make_config) -> None:
    """SIGTERM to ``hourglass train`` (as a cluster or ``kill`` sends it) reaches its workers: they stop at
    the same step, rank 0 saves, the command exits 130, and ``--resume`` continues from that step."""
    out = tmp_path / "run"
    sets = ["train.procs=2", "train.epochs=1000", "train.max_steps=400", f"train.out_dir={out}"]
    _, path = make_config()
    cmd = [sys.executable, "-m", "hourglass", "train", "--config", str(path), *(a for s in sets for a in ("--set", s))]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    with own_session(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        # one line per step (train.log_every=1, no validation in the tiny config)
        assert wait_for_lines(out / "metrics.jsonl", 3, timeout=120) >= 3, "3 steps were not logged within 120 s"
        proc.send_signal(signal.SIGTERM)  # to the parent only
        output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, output[-3000:]
    from hourglass.checkpoint.io import load_checkpoint

    _, meta = load_checkpoint(out / "last.safetensors")
    assert 3 <= meta.step < 400
    cfg, _ = make_config([*sets, f"train.max_steps={meta.step + 2}"])
    resumed = train(cfg, resume=out / "last.safetensors")
    assert resumed.step == meta.step + 2 and len(resumed.losses) == 2
