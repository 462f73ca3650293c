"""benchmarks/predict_video.py, openvino_streams.py and video_detector.py run through, small, and report what they say.

Their figures are timings (docs/BENCHMARKS.md); here only that the scripts run on a small model and a small video,
count the CPU of the pipeline's own threads by name, and compare OpenVINO's two ways of running a batch.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_script(name: str, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / name), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=ROOT / "benchmarks",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_predict_video_reports_the_ratio_and_the_cpu_of_each_stage() -> None:
    out = run_script(
        "predict_video.py",
        *("--frames", "16", "--height", "72", "--width", "128", "--batch", "4", "--repeats", "1"),
        *("--configs", "demo:64:eager:fp32"),
    )
    row = re.search(r"demo:64:eager:fp32\s+[\d.]+\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)x\s+([\d.]+) / ([\d.]+)", out)
    assert row, out
    network, e2e, ratio = (float(row.group(i)) for i in (1, 2, 3))
    assert network > 0 and e2e > 0 and abs(ratio - e2e / network) < 0.01 + 0.01 * ratio
    stages = dict(re.findall(r"([\w, -]+?) ([\d.]+)(?:,|$)", out.split("CPU ms/frame by thread: ")[1].splitlines()[0]))
    stages = {name.strip(): float(ms) for name, ms in stages.items()}
    # the pose stage runs on the main thread; decoding and the overlay on the pipeline's named threads
    assert {"MainThread", "hourglass-read", "hourglass-draw", "hourglass-write"} <= set(stages), out
    assert sum(stages.values()) <= float(row.group(5)) * 1.05 + 0.5  # no more than the process's CPU


def test_openvino_streams_compares_both_ways_per_batch() -> None:
    out = run_script(
        "openvino_streams.py",
        "--model",
        "demo",
        "--size",
        "64",
        "--batches",
        "1",
        "3",
        "--rounds",
        "1",
        "--seconds",
        "0.2",
    )
    assert re.search(r"throughput model: \d+ streams, \d+ requests", out), out
    rows = re.findall(r"^\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)x", out, flags=re.M)
    assert [int(r[0]) for r in rows] == [1, 3], out
    for _, latency, streams, ratio in rows:
        assert float(latency) > 0 and float(streams) > 0
        assert abs(float(ratio) - float(streams) / float(latency)) < 0.01 + 0.01 * float(ratio)


def test_video_detector_runs_the_detector_every_n_frames() -> None:
    out = run_script(
        "video_detector.py", "--detector", "rtmdet-nano", "--frames", "12", "--every", "1", "4", "--repeats", "1"
    )
    row = r"--detect-every (\d+)\s+detector threads\s+default:\s+([\d.]+) frames/s, (\d+) detector calls"
    rows = re.findall(row, out)
    assert [(int(every), int(calls)) for every, _, calls in rows] == [(1, 12), (4, 3)], out
    assert all(float(fps) > 0 for _, fps, _ in rows)
