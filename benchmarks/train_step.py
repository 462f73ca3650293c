"""Training-step variants side by side, interleaved in one process, and where each spends its time.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/train_step.py --model hg1 --set num_channels=128 \
        --batch 16 --input-size 128 128 --variant train.step=autocast --variant train.step=bf16_weights

Each ``--variant`` is a comma-separated list of config overrides on top of ``--set`` (the first variant is
the reference). The steps are built by :func:`hourglass.training.train_bench.build_train_step`, i.e. exactly
as ``hourglass train`` builds them, and run round-robin (``--repeats`` rounds, one step each), so load on
a shared machine hits every variant alike; the medians of wall time and of process CPU time are printed
with their ratio to the reference. ``--profile`` adds a torch.profiler table per variant (self CPU time
by operator over ``--profile-steps`` steps).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from hourglass.config import load_config
from hourglass.device import cpu_name
from hourglass.training.train_bench import build_train_step, random_batch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="hg1")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="model keyword or dotted config key")
    ap.add_argument("--variant", action="append", required=True, help="comma-separated overrides of one variant")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--input-size", type=int, nargs=2, default=(128, 128))
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--profile-steps", type=int, default=3)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    base = [f"model.name={args.model}"] + [s if "." in s.partition("=")[0] else f"model.kwargs.{s}" for s in args.sets]
    data = random_batch(args.batch, tuple(args.input_size), 16)
    steps = {}
    for variant in args.variant:
        cfg = load_config(None, base + [v for v in variant.split(",") if v])
        steps[variant] = build_train_step(cfg, torch.device("cpu"))
        for _ in range(args.warmup):
            steps[variant](data)
    wall: dict[str, list[float]] = {v: [] for v in steps}
    cpu: dict[str, list[float]] = {v: [] for v in steps}
    load_before = _load()
    for _ in range(args.repeats):
        for name, step in steps.items():
            t0, c0 = time.perf_counter(), time.process_time()
            step(data)
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    ref = args.variant[0]
    print(
        f"# {cpu_name()}, {torch.get_num_threads()} threads, {args.model} {' '.join(args.sets)}, batch {args.batch}, "
        f"{args.input_size[0]}x{args.input_size[1]}, {args.repeats} interleaved rounds; load average "
        f"{load_before} before, {_load()} after"
    )
    for name in steps:
        w, c = statistics.median(wall[name]), statistics.median(cpu[name])
        row = {
            "variant": name,
            "wall_ms": round(1e3 * w, 1),
            "wall_min_ms": round(1e3 * min(wall[name]), 1),
            "cpu_ms": round(1e3 * c, 1),
            "samples_per_s": round(args.batch / w, 2),
            "speedup_wall": round(statistics.median(wall[ref]) / w, 3),
            "speedup_cpu": round(statistics.median(cpu[ref]) / c, 3),
        }
        print(json.dumps(row), flush=True)
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        for name, step in steps.items():
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                for _ in range(args.profile_steps):
                    step(data)
            print(f"\n## profile: {name} ({args.profile_steps} steps)")
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=14, max_name_column_width=40))


def _load() -> list[float]:
    import os

    return [round(x, 2) for x in os.getloadavg()]


if __name__ == "__main__":
    main()
