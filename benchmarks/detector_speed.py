"""CPU speed of the published person detectors, rebuilt with random weights (speed does not depend on them).

Usage: python benchmarks/detector_speed.py [--models rtmdet-nano yolox-tiny yolox-m rtmdet-m yolox-x]
                                           [--files DETECTOR.onnx ...] [--picture PHOTO.jpg]
                                           [--runtimes onnxruntime:fp32 openvino:fp32 openvino:bf16]
                                           [--pose hg2 --pose-runtimes eager:fp32 openvino:bf16]
                                           [--rounds 5] [--calls 4] [--width 1280 --height 720] [--json OUT]

Each model is ``tests/detector_nets.py``'s re-statement of the mmdetection architecture (parameter counts equal to
the published ones; the class layers as mmdetection initialises them, so that no box survives NMS, as on a
picture without people: the network's own cost), exported with mmdeploy's NMS tail at its published input size,
and run by :class:`hourglass.people.detect.PersonDetector` on a ``--width x --height`` picture with each of
``--runtimes`` (default threads): letterbox, the graph, decoding, thresholds and suppression, the whole of one
``--detector`` call. Rounds go over every model and runtime in turn (``--calls`` timed calls each, after one
untimed call), so that a load that comes and goes on a shared machine falls on all of them; the median of the
rounds is reported, and each time as a multiple of the fastest one.

``--files`` also times ONNX detector files as they are (real weights: either layout :mod:`hourglass.people.detect`
reads, so Megvii's undecoded YOLOX output with its decoding and suppression in numpy too); ``--models`` with no
name times only them. ``--picture`` times a photo resized to ``--width x --height`` (people for the real weights
to find) instead of noise.

``--pose MODEL`` also times the pose network in the same rounds, as ``hourglass predict`` runs it on one person:
an untrained preset (``hg2``) at 256 x 256 through ``hourglass.inference.runtimes.create_runtime``, on a batch of
2 (the crop and its mirror, the flip test), with each of ``--pose-runtimes``.
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the re-stated networks

from detector_nets import ARCHS, build, export_end2end
from hourglass.people.detect import PersonDetector

FILE_NAMES = {"yolox": "yolox_{}.onnx", "rtmdet": "rtmdet_{}.onnx"}


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=["rtmdet-nano", "yolox-tiny", "yolox-m", "rtmdet-m", "yolox-x"])
    parser.add_argument("--files", nargs="*", type=Path, default=[], help="also time these ONNX detector files")
    parser.add_argument("--picture", type=Path, default=None, help="a photo resized to --width x --height")
    parser.add_argument("--runtimes", nargs="+", default=["onnxruntime:fp32"])
    parser.add_argument("--pose", default=None, help="also time this pose preset on one person (flip test)")
    parser.add_argument("--pose-runtimes", nargs="+", default=["eager:fp32", "openvino:bf16"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=4)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.picture is not None:
        import cv2

        bgr = cv2.resize(cv2.imread(str(args.picture)), (args.width, args.height), interpolation=cv2.INTER_LINEAR)
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
    else:
        rgb = (np.random.default_rng(0).random((args.height, args.width, 3)) * 255).astype(np.uint8)
    calls: dict[tuple[str, str], Callable[[], object]] = {}
    sizes = {name: ARCHS[name]["size"] for name in args.models}
    for path in args.files:
        for spec in args.runtimes:
            runtime, precision = spec.split(":")
            detector = PersonDetector(path, runtime=runtime, precision=precision)
            calls[path.name, spec] = functools.partial(detector, rgb)
            sizes[path.name] = detector.input_size[0]
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            family = "rtmdet" if name.startswith("rtmdet") else "yolox"
            path = Path(tmp) / FILE_NAMES[family].format(name.replace("-", "_"))
            export_end2end(build(name, quiet=True), ARCHS[name]["size"], path)
            for spec in args.runtimes:
                runtime, precision = spec.split(":")
                detector = PersonDetector(path, runtime=runtime, precision=precision)
                calls[name, spec] = functools.partial(detector, rgb)
        if args.pose is not None:
            from hourglass.inference.runtimes import create_runtime
            from hourglass.models import create_model

            person = np.random.default_rng(0).random((2, 3, 256, 256), dtype=np.float32)
            for spec in args.pose_runtimes:
                backend, precision = spec.split(":")
                runtime = create_runtime(create_model(args.pose), backend=backend, precision=precision)
                calls[args.pose, spec] = functools.partial(runtime, person)
        for call in calls.values():
            call()  # untimed: first-call allocations
        times: dict[tuple[str, str], list[float]] = {key: [] for key in calls}
        for _ in range(args.rounds):
            for key, call in calls.items():
                start = time.perf_counter()
                for _ in range(args.calls):
                    call()
                times[key].append((time.perf_counter() - start) / args.calls * 1000)
    medians = {key: statistics.median(ms) for key, ms in times.items()}
    fastest = min(medians.values())
    rows = []
    shown = args.picture.name if args.picture is not None else "noise"
    print(
        f"CPU: {cpu_name()}; picture {shown} at {args.width}x{args.height}; ms per call, median of {args.rounds} rounds"
    )
    for (name, spec), ms in medians.items():
        size = sizes.get(name, 256)
        row = {"model": name, "runtime": spec, "input": size, "ms": round(ms, 1), "x_fastest": round(ms / fastest, 2)}
        row["rounds_ms"] = [round(t, 1) for t in times[name, spec]]
        rows.append(row)
        print(f"{name:12s} {size}x{size} {spec:16s} {ms:8.1f} ms {ms / fastest:6.1f}x  {row['rounds_ms']}")
    if args.json is not None:
        args.json.write_text(json.dumps({"cpu": cpu_name(), "picture": [args.width, args.height], "rows": rows}))


if __name__ == "__main__":
    main()
