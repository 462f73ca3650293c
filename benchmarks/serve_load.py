"""``hourglass serve`` under load on 127.0.0.1: 16 concurrent clients against one at a time, and ``hourglass bench``.

Usage: python benchmarks/serve_load.py [--model hg2] [--size 256] [--backend eager] [--precision bf16]
                                       [--max-batch 8] [--max-wait-ms 10] [--clients 16] [--requests 96]
                                       [--single 12] [--photo PATH] [--json]

The default photo is ``real-samples/coco/000000000785.jpg`` of the shared data beside the repository (or
under ``$HOURGLASS_SHARED_DATA``).

Saves an untrained checkpoint of ``--model`` (speed does not depend on the weights), then in one run:

1. ``hourglass bench CK --batch 2*max_batch --json``: the runtime alone at the batch the server's network
   sees (the flip test doubles each crop), so its crops/s is bench's images/s / 2; run before and after
   the server, the mean counts;
2. ``hourglass serve`` (a real process) with ``--max-batch`` and ``--max-wait-ms``; each request is one
   photo (JPEG bytes, the whole picture as one person, flip test on);
3. one client, ``--single`` requests one after another; then ``--clients`` clients (threads, one
   keep-alive connection each) sending ``--requests`` in all as fast as answers come.

Prints requests/s, p50 and p99 latency of each, the mean batch (from ``/metrics``), and the concurrent
throughput as a share of bench's; ``--json`` adds one JSON line.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

from hourglass.checkpoint.io import save_checkpoint
from hourglass.device import cpu_name
from hourglass.models import create_model

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HOURGLASS_SHARED_DATA") or REPO.parent / "shared" / "data")
PHOTO = SHARED / "real-samples" / "coco" / "000000000785.jpg"


def post(conn: http.client.HTTPConnection, data: bytes) -> float:
    """Seconds for one POST /v1/predict on ``conn`` (answer checked)."""
    start = time.perf_counter()
    conn.request("POST", "/v1/predict", body=data, headers={"Content-Type": "image/jpeg"})
    res = conn.getresponse()
    body = res.read()
    if res.status != 200:
        raise RuntimeError(f"status {res.status}: {body[:200]!r}")
    return time.perf_counter() - start


def run_clients(port: int, data: bytes, clients: int, requests: int) -> tuple[list[float], float]:
    """Latencies of ``requests`` spread over ``clients`` threads, and the wall time of the whole."""
    latencies: list[float] = []
    lock = threading.Lock()
    left = [requests]

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        while True:
            with lock:
                if left[0] == 0:
                    break
                left[0] -= 1
            seconds = post(conn, data)
            with lock:
                latencies.append(seconds)
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, time.perf_counter() - start


def mean_batch(port: int) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    total = float(re.search(r"^hourglass_batch_size_sum (\S+)$", text, re.M).group(1))
    count = float(re.search(r"^hourglass_batch_size_count (\S+)$", text, re.M).group(1))
    return total / max(count, 1.0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="hg2")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--backend", default="eager")
    parser.add_argument("--precision", default="bf16")
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--max-wait-ms", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=96)
    parser.add_argument("--single", type=int, default=12)
    parser.add_argument("--photo", type=Path, default=PHOTO)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    data = args.photo.read_bytes()
    hourglass = [sys.executable, "-m", "hourglass"]
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        meta = {
            "model": {"name": args.model, "kwargs": {}},
            "data": {"input_size": [args.size] * 2, "skeleton": "mpii_16"},
        }
        ck = str(save_checkpoint(Path(tmp) / "m.safetensors", create_model(args.model).eval(), meta))
        runtime = ["--backend", args.backend, "--precision", args.precision]
        bench_cmd = [*hourglass, "bench", ck, *runtime, "--batch", str(2 * args.max_batch), "--iters", "5", "--json"]

        def bench() -> float:
            """``hourglass bench``'s crops/s: its images/s over 2 (the flip test: two network images per crop)."""
            done = subprocess.run(bench_cmd, check=True, capture_output=True, text=True)
            return json.loads(done.stdout)["throughput"] / 2

        bench_before = bench()
        port = free_port()
        serve_cmd = [*hourglass, "serve", "--checkpoint", ck, "--port", str(port), *runtime]
        serve_cmd += ["--max-batch", str(args.max_batch), "--max-wait-ms", str(args.max_wait_ms)]
        serve_cmd += ["--max-queue", str(max(64, 2 * args.clients)), "--log-level", "warning"]
        server = subprocess.Popen(serve_cmd, start_new_session=True)
        try:
            deadline = time.monotonic() + 300
            while True:
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
                    post(conn, data)  # also the warm-up
                    break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit("hourglass serve did not start") from None
                    time.sleep(0.5)
            run_clients(port, data, args.max_batch, 2 * args.max_batch)  # warm-up of the full batch
            single, single_wall = run_clients(port, data, 1, args.single)
            many, many_wall = run_clients(port, data, args.clients, args.requests)
            batch = mean_batch(port)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(120)
        bench_after = bench()  # before and after the server: a shared machine's load drifts
    bench_crops = (bench_before + bench_after) / 2
    rows = {"one at a time": (single, single_wall), f"{args.clients} clients": (many, many_wall)}
    print(
        f"{args.model} {args.size}x{args.size}, {args.backend} {args.precision}, flip test on, photo {args.photo.name}"
    )
    print(f"CPU: {cpu_name()}, {os.cpu_count()} logical cores; torch {torch.__version__}")
    print(
        f"hourglass bench --batch {2 * args.max_batch}: {bench_crops:.2f} crops/s = {2 * bench_crops:.2f} images/s "
        f"(before the server {bench_before:.2f}, after {bench_after:.2f} crops/s)"
    )
    print(f"{'':16} {'requests':>8} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8}")
    out = {"bench_crops_per_s": [bench_before, bench_after], "mean_batch": batch}
    out["args"] = {k: str(v) for k, v in vars(args).items()}
    for name, (lat, wall) in rows.items():
        ms = np.asarray(lat) * 1000
        rate = len(lat) / wall
        print(f"{name:16} {len(lat):8d} {rate:7.2f} {np.percentile(ms, 50):8.0f} {np.percentile(ms, 99):8.0f}")
        out[name] = {
            "requests": len(lat),
            "per_s": rate,
            "p50_ms": np.percentile(ms, 50),
            "p99_ms": np.percentile(ms, 99),
        }
    share = len(many) / many_wall / bench_crops
    print(f"mean crops per network call under load: {batch:.2f} (--max-batch {args.max_batch})")
    print(f"concurrent throughput / bench at that batch: {share:.2f}x (target >= 0.8x)")
    if args.json:
        print(json.dumps({**out, "share_of_bench": share}, default=float))


if __name__ == "__main__":
    main()
