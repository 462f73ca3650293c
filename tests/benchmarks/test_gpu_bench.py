"""benchmarks/gpu_bench.py, the script of benchmarks/gpu.sh, runs end to end (on the CPU at a tiny size here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, out: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, str(ROOT / "benchmarks" / "gpu_bench.py"), *args, "--out", str(out)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


def test_cpu_smoke_run_writes_every_row(tmp_path) -> None:
    args = ["--device", "cpu", "--models", "hg1", "--size", "64", "--train-batch", "2", "--infer-batch", "2"]
    proc = run(*args, "--iters", "2", "--warmup", "0", "--no-compile", out=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in (tmp_path / "gpu.jsonl").read_text().splitlines()]
    assert rows[0]["kind"] == "device" and rows[-1] == {**rows[-1], "kind": "done", "errors": 0}
    assert sum(r["kind"] == "peak" for r in rows) == 3
    train = [r for r in rows if r["kind"] == "train"]
    assert [r["variant"] for r in train] == ["fp32", "bf16", "bf16+channels_last"]
    assert all(r["images_per_s"] > 0 and r["tflops"] > 0 and r["batch"] == 2 for r in train)
    infer = [r for r in rows if r["kind"] == "infer"]
    assert [(r["variant"], r["batch"]) for r in infer] == [
        ("fp32", 1), ("fp32", 2), ("bf16+channels_last", 1), ("bf16+channels_last", 2)
    ]  # fmt: skip
    assert all(r["latency_ms"] > 0 for r in infer)


def test_budget_skips_and_missing_cuda_is_named(tmp_path) -> None:
    proc = run("--device", "cpu", "--models", "hg1", "--size", "64", "--budget-s", "0", "--no-compile", out=tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "gpu.jsonl").read_text().splitlines()]
    assert proc.returncode == 0
    assert {r["kind"] for r in rows} == {"device", "peak", "skipped", "done"}
    assert sum(r["kind"] == "skipped" for r in rows) == 5
    if not torch.cuda.is_available():
        proc = run(out=tmp_path / "cuda")
        assert proc.returncode == 2 and "no CUDA device here" in proc.stderr
