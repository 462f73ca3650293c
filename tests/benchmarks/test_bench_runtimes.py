"""benchmarks/bench_runtimes.py's table: one fixed peak per precision for the whole run, int8 against int8."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_script():
    spec = importlib.util.spec_from_file_location("bench_runtimes", ROOT / "benchmarks" / "bench_runtimes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def row(precision: str, latency_ms: float, peak: float) -> dict:
    """The fields of a ``hourglass bench --json`` line the table reads (hg2: 8.33 GMACs a call)."""
    return {
        "precision": precision,
        "backend": "openvino",
        "requested_backend": "openvino",
        "latency_ms": latency_ms,
        "latency_min_ms": latency_ms,
        "gmacs": 8.33,
        "peak_gflops": peak,
        "peak_engine": "openvino",
        "peak_rss_mib": 600.0,
        "input_size": [256, 256],
        "cpu": "a CPU",
        "threads": 2,
        "accuracy": {},
    }


def test_shares_divide_by_the_runs_median_peak_of_each_precision() -> None:
    script = load_script()
    rows = {
        script.EAGER_REF: [row("fp32", 83.3, 100.0), row("fp32", 83.3, 300.0)],  # 200 GFLOP/s
        script.OV_REF: [row("bf16", 16.66, 1000.0)],  # 1,000 GFLOP/s
        "openvino int8 (NNCF)": [row("int8", 8.33, 4000.0)],  # 2,000 GFLOP/s
        "openvino fp32": [row("fp32", 41.65, 250.0)],  # 400 GFLOP/s
    }
    args = argparse.Namespace(model="hg2", batch=1, omp_passive=False, rounds=2, iters=20)
    text = script.markdown(rows, args, "python benchmarks/bench_runtimes.py")
    lines = {line.split("|")[1].strip(): line.split("|") for line in text.splitlines() if line.startswith("| ")}
    share = {label: cells[7].strip() for label, cells in lines.items() if label in rows}
    # fp32 peaks measured in the run: 100, 300, 250 -> median 250
    assert share == {
        script.EAGER_REF: "80%",
        script.OV_REF: "100%",
        "openvino int8 (NNCF)": "50%",
        "openvino fp32": "160%",
    }
    assert "fp32 250 GFLOP/s (100-300, 3); bf16 1000 GFLOP/s (1000-1000, 1); int8 4000 GFLOP/s (4000-4000, 1)" in text
