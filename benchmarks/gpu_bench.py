"""GPU benchmark: training-step throughput and inference latency/throughput of hg2 and hg8 on one device.

Run by ``benchmarks/gpu.sh`` (the issue's "at most 5 minutes" check); usable alone:

    PYTHONPATH=src python benchmarks/gpu_bench.py --out results/ --budget-s 270

Measured, in this order, each row printed as one JSON line as soon as it exists:

- ``peak``: an 8192^3 bf16 matrix product and a 3x3 convolution (256 -> 256 channels, 64x64, batch 64,
  channels_last) in bf16 and in fp32 (cuDNN's default TF32), the reference for ``share_of_peak``;
- ``train``: one optimiser step (RMSprop 2.5e-4, the paper's; :func:`hourglass.losses.heatmap_loss` over
  all stacks) at 256x256, in fp32 (TF32 convolutions, PyTorch's default), bf16 autocast, bf16 autocast +
  channels_last, and the last under ``torch.compile``; images/s, ms/step and peak GPU memory;
- ``infer``: the BatchNorm-folded network of ``hourglass export`` (last stack only) in eval mode, fp32,
  bf16 + channels_last, and that under ``torch.compile`` (default mode: max-autotune's tuning would not fit
  the time budget), at batch 1 (median latency) and at ``--infer-batch`` (throughput).

Every variant without ``torch.compile`` runs first, for all models, then the compiled ones: compiling
takes the longest, and what the budget cuts should be those. cuDNN's autotuner is on
(``torch.backends.cudnn.benchmark``), as for any fixed-size training.

Times come from CUDA events around ``--iters`` calls after ``--warmup`` calls (median of the per-call times
for latency; total time for throughput). GFLOP/s count 2 FLOPs per multiply-add of the convolutions
(:func:`hourglass.models.summary.count_macs`); a training step counts 3x the forward pass.

A measurement that would start after ``--budget-s`` seconds is skipped and reported as such, so the
script ends in time whatever the compile times are. ``--device cpu`` runs the same code on the CPU at a
tiny size (the test suite does that, so the script cannot rot on machines without a GPU).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from hourglass import create_model
from hourglass.inference.export import prepare_for_inference
from hourglass.losses import heatmap_loss
from hourglass.models.summary import count_macs


class Clock:
    """Times calls on one device: CUDA events on a GPU, ``perf_counter`` on the CPU."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def per_call_ms(self, fn: Callable[[], Any], iters: int, warmup: int) -> list[float]:
        for _ in range(warmup):
            fn()
        self.sync()
        times = []
        for _ in range(iters):
            if self.cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                fn()
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end))
            else:
                t = time.perf_counter()
                fn()
                times.append(1e3 * (time.perf_counter() - t))
        return times


def device_info(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {"torch": torch.__version__, "device": str(device)}
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        info |= {
            "name": p.name,
            "capability": f"{p.major}.{p.minor}",
            "memory_gib": round(p.total_memory / 2**30, 1),
            "multiprocessors": p.multi_processor_count,
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
        }
    else:
        import platform

        info |= {"name": platform.processor() or platform.machine(), "threads": torch.get_num_threads()}
    return info


def peak_rows(device: torch.device, clock: Clock, small: bool) -> list[dict[str, Any]]:
    n, (c, s, b) = (512, (32, 16, 2)) if small else (8192, (256, 64, 64))
    rows = []
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    ms = statistics.median(clock.per_call_ms(lambda: a @ a, iters=10, warmup=3))
    rows.append({"kind": "peak", "op": f"matmul {n}^3", "precision": "bf16", "tflops": 2 * n**3 / ms / 1e9})
    conv = torch.nn.Conv2d(c, c, 3, padding=1, bias=False).to(device)
    x = torch.randn(b, c, s, s, device=device)
    flops = 2 * b * c * c * 9 * s * s
    for precision in ("fp32", "bf16"):
        if precision == "bf16":
            net, inp = conv.to(memory_format=torch.channels_last).bfloat16(), x.to(memory_format=torch.channels_last)
            inp = inp.bfloat16()
        else:
            net, inp = conv, x
        with torch.no_grad():
            ms = statistics.median(clock.per_call_ms(lambda net=net, inp=inp: net(inp), iters=10, warmup=3))
        op = f"conv3x3 {c}ch {s}x{s} batch {b}"
        rows.append({"kind": "peak", "op": op, "precision": precision, "tflops": flops / ms / 1e9})
    return rows


def train_row(
    name: str, variant: str, batch: int, size: int, device: torch.device, clock: Clock, iters: int, warmup: int
) -> dict[str, Any]:
    bf16, channels_last, compiled = "bf16" in variant, "channels_last" in variant, "compile" in variant
    torch.manual_seed(0)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    net = create_model(name).to(device, memory_format=memory_format).train()
    macs = count_macs(net, (3, size, size), batch=batch)
    opt = torch.optim.RMSprop(net.parameters(), lr=2.5e-4)
    x = torch.rand(batch, 3, size, size, device=device).to(memory_format=memory_format)
    target = torch.rand(batch, net.num_joints, size // 4, size // 4, device=device)
    weights = torch.ones(batch, net.num_joints, device=device)
    forward = torch.compile(net) if compiled else net

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = forward(x)
        loss = heatmap_loss(out, target, weights)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    t0 = time.perf_counter()
    step()  # first call: compiles, picks cuDNN algorithms
    clock.sync()
    first_s = time.perf_counter() - t0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = clock.per_call_ms(step, iters, warmup)
    ms = statistics.median(times)
    row = {
        "kind": "train", "model": name, "variant": variant, "batch": batch, "input": size,
        "ms_per_step": ms, "images_per_s": batch / ms * 1e3, "tflops": 3 * 2 * macs / ms / 1e9,
        "first_step_s": first_s,
    }  # fmt: skip
    if device.type == "cuda":
        row["peak_mem_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    return row


def infer_rows(
    name: str, variant: str, batches: list[int], size: int, device: torch.device, clock: Clock, iters: int, warmup: int
) -> list[dict[str, Any]]:
    bf16, compiled = "bf16" in variant, "compile" in variant
    torch.manual_seed(0)
    net = prepare_for_inference(create_model(name).eval()).to(device)
    macs = count_macs(net, (3, size, size))
    memory_format = torch.contiguous_format
    if bf16:
        memory_format = torch.channels_last
        net = net.to(memory_format=memory_format).bfloat16()
    if compiled:
        net = torch.compile(net, dynamic=False)
    rows = []
    for batch in batches:
        x = torch.rand(batch, 3, size, size, device=device).to(memory_format=memory_format)
        x = x.bfloat16() if bf16 else x
        t0 = time.perf_counter()
        with torch.no_grad():
            net(x)
            clock.sync()
            first_s = time.perf_counter() - t0
            times = clock.per_call_ms(lambda x=x: net(x), iters, warmup)
        ms = statistics.median(times)
        rows.append({
            "kind": "infer", "model": name, "variant": variant, "batch": batch, "input": size,
            "latency_ms": ms, "latency_min_ms": min(times), "images_per_s": batch / ms * 1e3,
            "tflops": 2 * macs * batch / ms / 1e9, "first_call_s": first_s,
        })  # fmt: skip
    return rows


TRAIN_VARIANTS = ("fp32", "bf16", "bf16+channels_last", "bf16+channels_last+compile")
INFER_VARIANTS = ("fp32", "bf16+channels_last", "bf16+channels_last+compile")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu (tiny smoke run)")
    ap.add_argument("--models", nargs="+", default=["hg2", "hg8"])
    ap.add_argument("--size", type=int, default=256, help="input height and width")
    ap.add_argument("--train-batch", type=int, default=32)
    ap.add_argument("--infer-batch", type=int, default=64)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--budget-s", type=float, default=270.0, help="start no measurement after this many seconds")
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile variants")
    ap.add_argument("--out", type=Path, default=None, help="folder for gpu.jsonl (one row per line)")
    args = ap.parse_args(argv)

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_bench: no CUDA device here (torch.cuda.is_available() is False); use --device cpu", file=sys.stderr)
        return 2
    started = time.perf_counter()
    small = device.type == "cpu"
    clock = Clock(device)
    out_file = None
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        out_file = (args.out / "gpu.jsonl").open("w")

    def emit(row: dict[str, Any]) -> None:
        row = {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}
        line = json.dumps(row)
        print(line, flush=True)
        if out_file is not None:
            out_file.write(line + "\n")
            out_file.flush()

    emit({"kind": "device", **device_info(device)})
    for row in peak_rows(device, clock, small):
        emit(row)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    jobs: list[tuple[str, Callable[[], list[dict[str, Any]]]]] = []
    for compiled in (False, True):
        for name in args.models:
            for v in TRAIN_VARIANTS:
                if ("compile" in v) != compiled or (compiled and args.no_compile):
                    continue
                jobs.append((f"train {name} {v}", lambda n=name, v=v: [
                    train_row(n, v, args.train_batch, args.size, device, clock, args.iters, args.warmup)]))  # fmt: skip
            for v in INFER_VARIANTS:
                if ("compile" in v) != compiled or (compiled and args.no_compile):
                    continue
                jobs.append((f"infer {name} {v}", lambda n=name, v=v: infer_rows(
                    n, v, [1, args.infer_batch], args.size, device, clock, args.iters, args.warmup)))  # fmt: skip
    failed = 0
    for label, job in jobs:
        elapsed = time.perf_counter() - started
        if elapsed > args.budget_s:
            emit({"kind": "skipped", "what": label, "reason": f"time budget ({elapsed:.0f} s > {args.budget_s:.0f} s)"})
            continue
        try:
            for row in job():
                emit(row)
        except Exception as err:  # report and go on: one failing variant must not hide the others
            failed += 1
            emit({"kind": "error", "what": label, "error": f"{type(err).__name__}: {err}"[:500]})
        finally:
            if device.type == "cuda":
                torch.cuda.empty_cache()
    emit({"kind": "done", "seconds": time.perf_counter() - started, "errors": failed})
    if out_file is not None:
        out_file.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
