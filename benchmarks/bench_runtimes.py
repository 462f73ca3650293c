"""The runtime table of docs/BENCHMARKS.md in one command: every back-end and precision, side by side.

Each configuration runs in its own process (``python -m hourglass bench ... --json``), so that peak memory
is per configuration and one back-end's threads or caches cannot slow the next. Configurations run one
after another, ``--rounds`` times in turn (interleaved, so that a burst of load on a shared machine hits
all of them alike); the table shows the median over rounds of each run's median latency.

Ratios are what to compare: ``vs eager`` against eager PyTorch fp32 on the network as trained (BatchNorm
kept), ``vs OV bf16`` against OpenVINO bf16 on a plain ONNX export (BatchNorm kept), the issue's reference.

``% of peak`` divides by one fixed peak per precision for the whole run: every process measures the
peak convolution at its precision (``hourglass bench``: the median of 5 rounds of the faster engine), and
the table uses the median of the run's measurements at that precision, printed under the table with the
lowest and highest of them (int8 rows against the int8 peak).

Usage::

    python benchmarks/bench_runtimes.py                      # hg2, 256x256, batch 1, random weights
    python benchmarks/bench_runtimes.py runs/demo/best.safetensors --accuracy 64 --rounds 3 --out table.md

``--accuracy N`` adds, for each non-fp32 row, PCKh@0.5 against fp32 eager on N synthetic validation
figures and the fraction of keypoints within one heatmap pixel of fp32 (meaningful for a trained
checkpoint only). ``--profile`` appends where OpenVINO bf16 spends its time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

# (label, backend, precision, extra flags); the first is the eager reference, the one marked plain the OV one.
CONFIGS: list[tuple[str, str, str, list[str]]] = [
    ("eager fp32, BN kept", "eager", "fp32", ["--no-fold"]),
    ("eager fp32", "eager", "fp32", []),
    ("eager bf16", "eager", "bf16", []),
    ("torch.compile fp32", "compile", "fp32", []),
    ("torch.compile bf16", "compile", "bf16", []),
    ("onnxruntime fp32", "onnxruntime", "fp32", []),
    ("openvino fp32", "openvino", "fp32", []),
    ("openvino bf16, plain ONNX export", "openvino", "bf16", ["--no-fold"]),
    ("openvino bf16", "openvino", "bf16", []),
    ("openvino int8 (NNCF)", "openvino", "int8", []),
    ("best fp32", "best", "fp32", []),
    ("best bf16", "best", "bf16", []),
]
EAGER_REF, OV_REF = CONFIGS[0][0], CONFIGS[7][0]


def run_one(model: str, backend: str, precision: str, flags: list[str], args: argparse.Namespace) -> dict:
    cmd = [sys.executable, "-m", "hourglass", "bench", model, "--backend", backend, "--precision", precision]
    cmd += ["--batch", str(args.batch), "--iters", str(args.iters)]
    if args.input_size:
        cmd += ["--input-size", *map(str, args.input_size)]
    cmd += ["--json", *flags]
    if args.accuracy and precision != "fp32":
        cmd += ["--accuracy", str(args.accuracy)]
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE") if args.omp_passive else None
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_peaks(rows: dict[str, list[dict]]) -> dict[str, list[float]]:
    """Precision -> every peak (GFLOP/s) the run's processes measured at it."""
    peaks: dict[str, list[float]] = defaultdict(list)
    for runs in rows.values():
        for r in runs:
            if r["peak_gflops"]:
                peaks[r["precision"]].append(r["peak_gflops"])
    return peaks


def markdown(rows: dict[str, list[dict]], args: argparse.Namespace, command: str) -> str:
    med = {label: float(np.median([r["latency_ms"] for r in runs])) for label, runs in rows.items()}
    peaks = run_peaks(rows)
    peak = {precision: float(np.median(values)) for precision, values in peaks.items()}
    low = {label: min(r["latency_min_ms"] for r in runs) for label, runs in rows.items()}
    first = next(iter(rows.values()))[0]
    lines = [
        f"Model `{args.model}`, {first['input_size'][0]}x{first['input_size'][1]}, batch {args.batch}; {first['cpu']}, "
        f"{first['threads']} threads{', OMP_WAIT_POLICY=PASSIVE' if args.omp_passive else ''}; "
        f"{args.rounds} round(s) of {args.iters} timed calls; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        f"Command: `{command}`",
        "",
        "| runtime | picked | median ms | min ms | img/s | GFLOP/s | % of peak | peak RSS MiB "
        "| vs eager | vs OV bf16 | PCKh diff | within 1 px |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, runs in rows.items():
        r = runs[-1]
        lat = med[label]
        acc = r.get("accuracy") or {}
        pckh = f"{acc['pckh_diff']:+.2f}" if acc else ""
        within = f"{100 * acc['within_1px']:.1f}%" if acc else ""
        gflops = 2 * r["gmacs"] / (lat / 1e3)
        share = f"{100 * gflops / peak[r['precision']]:.0f}%" if r["precision"] in peak else ""
        picked = r["backend"] if r["requested_backend"] == "best" else ""
        lines.append(
            f"| {label} | {picked} | {lat:.1f} | {low[label]:.1f} | {args.batch * 1e3 / lat:.1f} | {gflops:.0f} "
            f"| {share} | {max(x['peak_rss_mib'] for x in runs):.0f} | {low[EAGER_REF] / low[label]:.2f}x "
            f"| {low[OV_REF] / low[label]:.2f}x | {pckh} | {within} |"
        )
    lines += [
        "",
        "Throughput, GFLOP/s and % of peak use the median; the ratios (speed-up, higher is faster) use the",
        "minimum, the figure least disturbed by other load on a shared machine (on a quiet one they agree).",
        "PCKh diff: points of the official PCKh@0.5 (14 joints) against fp32 eager; within 1 px: keypoints",
        "within one heatmap pixel of fp32 eager's, on synthetic validation figures.",
        "Peaks (3x3 convolution; median of this run's measurements, lowest-highest, count): "
        + "; ".join(
            f"{precision} {peak[precision]:.0f} GFLOP/s ({min(v):.0f}-{max(v):.0f}, {len(v)})"
            for precision, v in peaks.items()
        )
        + ".",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default="hg2", help="preset name or .safetensors checkpoint")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"), help="default: the checkpoint's")
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--accuracy", type=int, default=0, help="synthetic validation figures per non-fp32 row")
    parser.add_argument("--only", nargs="*", help="run only the rows whose label contains one of these words")
    parser.add_argument("--profile", action="store_true", help="append OpenVINO bf16's time per layer type")
    parser.add_argument(
        "--omp-passive",
        action="store_true",
        help="run PyTorch with OMP_WAIT_POLICY=PASSIVE: on a CPU shared with other work, spinning OpenMP threads "
        "make eager/compile up to 20x slower; leave off on a quiet machine",
    )
    parser.add_argument("--out", type=Path, help="also write the markdown here")
    parser.add_argument("--jsonl", type=Path, help="also write every raw row here, one JSON object a line")
    args = parser.parse_args()
    configs = [c for c in CONFIGS if not args.only or any(w in c[0] for w in args.only)]
    configs = [c for c in CONFIGS if c[0] in (EAGER_REF, OV_REF)] + [
        c for c in configs if c[0] not in (EAGER_REF, OV_REF)
    ]
    configs.sort(key=CONFIGS.index)
    rows: dict[str, list[dict]] = defaultdict(list)
    for rnd in range(args.rounds):
        for label, backend, precision, flags in configs:
            start = time.perf_counter()
            row = run_one(args.model, backend, precision, flags, args)
            rows[label].append(row)
            print(
                f"[round {rnd + 1}] {label}: {row['latency_ms']:.1f} ms ({time.perf_counter() - start:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    command = "python benchmarks/bench_runtimes.py " + " ".join(sys.argv[1:])
    text = markdown(rows, args, command.strip())
    if args.profile:
        from hourglass.inference.bench import openvino_profile

        prof = openvino_profile(args.model, "bf16", tuple(args.input_size) if args.input_size else None)
        text += "\n\nOpenVINO bf16, where a batch-1 call spends its time (PERF_COUNT, top 8):\n\n"
        text += "| layer type | kernel | layers | ms | share |\n|---|---|---:|---:|---:|\n"
        text += "\n".join(
            f"| {p['node_type']} | {p['exec_type']} | {p['nodes']} | {p['ms']:.2f} | {100 * p['share']:.1f}% |"
            for p in prof[:8]
        )
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    if args.jsonl:
        args.jsonl.write_text("".join(json.dumps(r) + "\n" for runs in rows.values() for r in runs))


if __name__ == "__main__":
    main()
