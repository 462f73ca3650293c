"""OpenVINO on the CPU: a batch as one latency request against batch-1 requests spread over streams, alternating.

Usage: python benchmarks/openvino_streams.py [--model hg2] [--size 256] [--precision bf16]
                                             [--batches 1 2 4 8 16] [--rounds 5] [--seconds 2]

:class:`hourglass.inference.runtimes.OpenVinoRuntime` runs a batch of two images or more as batch-1 requests on a
model compiled under ``PERFORMANCE_HINT=THROUGHPUT`` (its streams, one thread each on 2 cores), and one image on
a model compiled under ``LATENCY`` (every thread on each layer). This compares the two ways on the same runtime
(an untrained checkpoint: speed does not depend on the weights), for each batch size: ``--rounds`` rounds, each
timing the latency request then the streams for about ``--seconds`` each, so that both see the same load. Reports
the median images/s of each, their ratio, and the CPU time per image (all threads).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from predict_video import checkpoint, cpu_name, cpu_seconds


def rate(run: Callable[[np.ndarray], object], images: np.ndarray, seconds: float) -> tuple[float, float]:
    """Images/s of ``run`` on ``images`` over at least ``seconds`` (whole calls), and CPU ms per image."""
    calls, start, cpu = 0, time.perf_counter(), cpu_seconds()
    while calls == 0 or time.perf_counter() - start < seconds:
        run(images)
        calls += 1
    done = calls * len(images)
    return done / (time.perf_counter() - start), 1000 * (cpu_seconds() - cpu) / done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="hg2")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--precision", default="bf16", choices=["fp32", "bf16"])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["HOURGLASS_HOME"] = str(Path(tmp) / "home")
        from hourglass.device import usable_cores
        from hourglass.inference.runtimes import create_runtime

        runtime = create_runtime(str(checkpoint(Path(tmp), args.model, args.size)), "openvino", args.precision)
        runtime.throughput_queue()
        model = f"{args.model} {args.size}x{args.size} {args.precision}"
        print(f"CPU: {cpu_name()}, {usable_cores()} usable cores; {model}")
        print(f"throughput model: {runtime.streams} streams, {len(runtime.queue)} requests")
        head = f"{'batch':>5s} {'latency img/s':>14s} {'streams img/s':>14s} {'ratio':>6s}"
        print(f"{head}   CPU ms/img latency / streams")
        rng = np.random.default_rng(0)
        for batch in args.batches:
            images = rng.random((batch, 3, args.size, args.size), dtype=np.float32)
            runtime.run_latency(images), runtime.run_streams(images)  # compiled and warm
            latency, streams = [], []
            for _ in range(args.rounds):
                latency.append(rate(runtime.run_latency, images, args.seconds))
                streams.append(rate(runtime.run_streams, images, args.seconds))
            lat, thr = np.median([r for r, _ in latency]), np.median([r for r, _ in streams])
            cpu = f"{np.median([c for _, c in latency]):.1f} / {np.median([c for _, c in streams]):.1f}"
            print(f"{batch:5d} {lat:14.1f} {thr:14.1f} {thr / lat:5.2f}x   {cpu}", flush=True)


if __name__ == "__main__":
    main()
