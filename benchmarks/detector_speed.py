"""CPU speed of the published person detectors, rebuilt with random weights (speed does not depend on them).

Usage: python benchmarks/detector_speed.py [--models rtmdet-nano yolox-tiny yolox-m rtmdet-m yolox-x]
                                           [--rounds 5] [--calls 4] [--width 1280 --height 720] [--json OUT]

Each model is ``tests/detector_nets.py``'s re-statement of the mmdetection architecture (parameter counts equal to
the published ones; the class layers as mmdetection initialises them, so that no box survives NMS, as on a
picture without people: the network's own cost), exported with mmdeploy's NMS tail at its published input size,
and run by :class:`hourglass.inference.detect.PersonDetector` on a ``--width x --height`` picture: letterbox,
ONNX Runtime (its default threads), decoding, thresholds and suppression, the whole of one ``--detector`` call.
Rounds go over every model in turn (``--calls`` timed calls each, after one untimed call), so that a load that
comes and goes on a shared machine falls on all of them; the median of the rounds is reported, and each model's
time as a multiple of the fastest one's.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the re-stated networks

from detector_nets import ARCHS, build, export_end2end
from hourglass.inference.detect import PersonDetector

FILE_NAMES = {"yolox": "yolox_{}.onnx", "rtmdet": "rtmdet_{}.onnx"}


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["rtmdet-nano", "yolox-tiny", "yolox-m", "rtmdet-m", "yolox-x"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=4)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    rgb = (np.random.default_rng(0).random((args.height, args.width, 3)) * 255).astype(np.uint8)
    detectors: dict[str, PersonDetector] = {}
    times: dict[str, list[float]] = {name: [] for name in args.models}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            family = "rtmdet" if name.startswith("rtmdet") else "yolox"
            path = Path(tmp) / FILE_NAMES[family].format(name.replace("-", "_"))
            export_end2end(build(name, quiet=True), ARCHS[name]["size"], path)
            detectors[name] = PersonDetector(path)
            detectors[name](rgb)  # untimed: first-call allocations
        for _ in range(args.rounds):
            for name, detector in detectors.items():
                start = time.perf_counter()
                for _ in range(args.calls):
                    detector(rgb)
                times[name].append((time.perf_counter() - start) / args.calls * 1000)
    medians = {name: statistics.median(ms) for name, ms in times.items()}
    fastest = min(medians.values())
    rows = []
    print(f"CPU: {cpu_name()}; picture {args.width}x{args.height}; ms per call, median of {args.rounds} rounds")
    for name in args.models:
        size = ARCHS[name]["size"]
        row = {"model": name, "input": size, "ms": round(medians[name], 1), "x_fastest": medians[name] / fastest}
        row["rounds_ms"] = [round(t, 1) for t in times[name]]
        rows.append(row)
        print(f"{name:12s} {size}x{size}  {medians[name]:8.1f} ms  {medians[name] / fastest:6.1f}x  {row['rounds_ms']}")
    if args.json is not None:
        args.json.write_text(json.dumps({"cpu": cpu_name(), "picture": [args.width, args.height], "rows": rows}))


if __name__ == "__main__":
    main()
