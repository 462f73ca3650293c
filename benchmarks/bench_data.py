"""Data pipeline speed on one core: heatmap encoding, one full training sample, synthetic rendering.

    .venv/bin/python benchmarks/bench_data.py [--repeat 5] [--json]

Each figure is the median over ``--repeat`` rounds of the mean time per call within a round; torch and
OpenCV are limited to one thread, so the numbers are per core. Image decoding is excluded from the
training-sample figure (the image is decoded once, up front); warp, augmentation, colour jitter and
encoding are included.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable

import cv2
import numpy as np
import torch

from hourglass.data import MPII_16, Augmentation, HeatmapCodec, KeypointDataset, Record
from hourglass.synthetic import SyntheticFigures, render_figure, sample_figure


def per_call(fn: Callable[[int], object], calls: int, repeat: int) -> float:
    """Median over ``repeat`` rounds of the mean seconds per call (``fn(i)`` for ``i`` in range(calls))."""
    fn(0)
    rounds = []
    for _ in range(repeat):
        t = time.perf_counter()
        for i in range(calls):
            fn(i)
        rounds.append((time.perf_counter() - t) / calls)
    return float(np.median(rounds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    rng = np.random.default_rng(0)
    results: dict[str, float] = {}

    codec64 = HeatmapCodec((256, 256), (64, 64), sigma=2.0)
    kps = rng.uniform(0, 255, (64, 16, 2))
    vis = np.ones(16)
    results["encode 16 joints, 64x64 heatmaps (us)"] = 1e6 * per_call(
        lambda i: codec64.encode(kps[i % 64], vis), 2000, args.repeat
    )
    hm = np.stack([codec64.encode(k, vis)[0] for k in kps[:16]])
    results["decode 16x16 joints, 64x64, quarter shift (us per image)"] = (
        1e6 * per_call(lambda i: codec64.decode(hm), 200, args.repeat) / 16
    )
    dark = HeatmapCodec((256, 256), (64, 64), sigma=2.0, dark=True)
    results["decode 16x16 joints, 64x64, DARK (us per image)"] = (
        1e6 * per_call(lambda i: dark.decode(hm), 50, args.repeat) / 16
    )

    # one MPII-sized training sample: 1280x720 image already decoded, 256x256 crop, full augmentation
    image = rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    records = [
        Record("img.jpg", np.array([640.0, 360.0]), np.array([2.5, 2.5]), rng.uniform(440, 840, (16, 2)), np.ones(16))
        for _ in range(64)
    ]
    train = KeypointDataset(records, MPII_16, codec64, augmentation=Augmentation(), seed=0)
    results["training sample 256x256: warp + augmentation + encode (ms)"] = 1e3 * per_call(
        lambda i: train.make_sample(i % 64, image), 200, args.repeat
    )
    plain = KeypointDataset(records, MPII_16, codec64)
    results["evaluation sample 256x256: warp + encode (ms)"] = 1e3 * per_call(
        lambda i: plain.make_sample(i % 64, image), 200, args.repeat
    )

    figs = [sample_figure(i, 0) for i in range(64)]
    results["synthetic figure geometry, 128x128 (ms)"] = 1e3 * per_call(lambda i: sample_figure(i, 0), 200, args.repeat)
    results["synthetic figure rendering, 128x128 (ms)"] = 1e3 * per_call(
        lambda i: render_figure(figs[i % 64], i % 64, 0), 200, args.repeat
    )
    synth = SyntheticFigures(64, seed=0, augmentation=Augmentation())
    results["SyntheticFigures training sample 128x128 -> 32x32, render included (ms)"] = 1e3 * per_call(
        lambda i: synth[i % 64], 200, args.repeat
    )

    if args.json:
        print(json.dumps({"machine": platform.processor() or platform.machine(), "results": results}))
        return
    width = max(map(len, results))
    for name, value in results.items():
        print(f"{name:<{width}}  {value:8.2f}")


if __name__ == "__main__":
    main()
