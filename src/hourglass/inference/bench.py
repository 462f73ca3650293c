"""Benchmark one runtime: latency, throughput, achieved GFLOP/s against this machine's measured peak, memory.

One call measures one (model, backend, precision, batch, input size). The machine's peak is measured in
the same process right before, with one large 3x3 convolution (256 -> 256 channels, 64x64) at the same
precision, run by eager PyTorch (fp32 in the default layout; bf16 with channels_last + autocast) and by
OpenVINO (f32/bf16 precision hint; int8 after NNCF quantisation), static shapes; the faster counts.
GFLOP/s count 2 FLOPs per multiply-add of the network's
convolutions (:func:`hourglass.models.summary.count_macs`, x2), so BatchNorm, ReLU, pooling and additions
are not counted, as usual.

``peak_rss_mib`` is the process's peak resident memory (``getrusage``), building included; run one
configuration per process (as ``benchmarks/bench_runtimes.py`` does) for a per-configuration figure.
"""

from __future__ import annotations

import os
import platform
import resource
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hourglass.checkpoint.meta import CheckpointMeta
from hourglass.device import autocast_context, cpu_name
from hourglass.errors import ConfigError
from hourglass.extras import extra_installed, require_extra, require_extras
from hourglass.models.summary import count_macs

from .export import input_channels, write_onnx
from .runtimes import BACKEND_EXTRAS, Runtime, create_runtime, resolve_model, time_runtime

PEAK_CONV = {"channels": 256, "size": 64, "batch": {"fp32": 2, "bf16": 8, "int8": 8}}


@dataclass
class BenchResult:
    """One benchmark row; ``to_json`` gives the ``hourglass bench --json`` line."""

    model: str
    backend: str
    precision: str
    batch: int
    input_size: tuple[int, int]
    latency_ms: float
    latency_min_ms: float
    latency_p10_ms: float
    latency_p90_ms: float
    throughput: float
    gmacs: float
    gflops: float
    peak_gflops: float
    peak_share: float
    peak_engine: str
    peak_rss_mib: float
    build_s: float
    fold: bool
    requested_backend: str
    threads: int
    cpu: str
    accuracy: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        row = asdict(self)
        row["input_size"] = list(self.input_size)
        return row


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB (Linux reports KiB, macOS bytes)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if platform.system() == "Darwin" else rss / 1024


def conv_peak_gflops(precision: str, iters: int = 10) -> tuple[float, str]:
    """``(GFLOP/s, engine)`` of the fastest 3x3, 256 -> 256 convolution on ``(N, 256, 64, 64)`` at ``precision``.

    Timed (median of ``iters``) with eager PyTorch (fp32, bf16) and OpenVINO (all three, static shape);
    the faster engine is this machine's peak for that precision.
    """
    c, s, n = PEAK_CONV["channels"], PEAK_CONV["size"], PEAK_CONV["batch"][precision]
    conv = nn.Conv2d(c, c, 3, padding=1).eval()
    x = torch.rand(n, c, s, s)
    flops = 2 * n * c * c * 9 * s * s
    runs: dict[str, Any] = {}
    if precision != "int8":
        runs["torch"] = _torch_conv(conv, x, precision)
    if extra_installed("openvino"):
        runs["openvino"] = _openvino_conv(conv, x, precision)
    if not runs:  # int8 without OpenVINO
        require_extra("openvino", "openvino")
        raise ConfigError(f"no engine here runs a {precision} convolution (int8 needs openvino)")
    speeds = {
        name: flops / float(np.median(time_runtime(run, x.numpy(), iters, warmup=3))) / 1e9
        for name, run in runs.items()
    }
    best = max(speeds, key=speeds.__getitem__)
    return speeds[best], best


def _torch_conv(conv: nn.Module, x: torch.Tensor, precision: str) -> Callable[[Any], None]:
    if precision == "bf16":
        conv = conv.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)

    def run(_: Any) -> None:
        with torch.inference_mode(), autocast_context(torch.device("cpu"), "bf16" if precision == "bf16" else "none"):
            conv(x)

    return run


def _openvino_conv(conv: nn.Module, x: torch.Tensor, precision: str) -> Callable[[Any], None]:
    from .runtimes import quantize_int8

    ov = require_extra("openvino", "openvino")

    core = ov.Core()
    with tempfile.TemporaryDirectory(prefix="hourglass-peak-") as tmp:
        path = Path(tmp) / "conv.onnx"
        write_onnx(conv, x[:2], path)
        model = core.read_model(str(path))
    model.reshape({0: list(x.shape)})
    config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
    if precision == "int8":
        rng = np.random.default_rng(0)
        model = quantize_int8(model, [rng.random(tuple(x.shape), dtype=np.float32) for _ in range(2)])
    else:
        config["INFERENCE_PRECISION_HINT"] = "bf16" if precision == "bf16" else "f32"
    request = core.compile_model(model, "CPU", config).create_infer_request()
    data = x.numpy()
    return lambda _: request.infer({0: data})


def synthetic_validation(meta: CheckpointMeta, input_size: tuple[int, int], num: int, seed: int = 1000) -> Any:
    """A :class:`~hourglass.data.synthetic.SyntheticFigures` set with the checkpoint's codec at ``input_size``
    (its heatmap size kept when the input size is the checkpoint's, else a quarter of ``input_size``)."""
    from hourglass.data import HeatmapCodec
    from hourglass.data.synthetic import SyntheticFigures

    codec = meta.codec
    if codec is None or codec.input_size != tuple(input_size):
        codec = HeatmapCodec(input_size, sigma=codec.sigma if codec is not None else 2.0)
    return SyntheticFigures(num, seed=seed, codec=codec)


def benchmark(
    model_spec: nn.Module | str | os.PathLike[str],
    backend: str = "eager",
    precision: str = "fp32",
    batch: int = 1,
    input_size: tuple[int, int] | None = None,
    iters: int = 20,
    warmup: int = 3,
    fold: bool = True,
    calibration_num: int = 32,
    accuracy_num: int = 0,
    measure_peak: bool = True,
) -> BenchResult:
    """Build the runtime, time ``iters`` calls on a random batch, and (optionally) its accuracy cost.

    Args:
        model_spec: a preset name (random weights), a ``.safetensors`` checkpoint, or a module.
        backend, precision: as :func:`~hourglass.inference.runtimes.create_runtime` (``best`` allowed).
        batch: images per call; input_size: ``(H, W)`` (default: the checkpoint's, else 256x256).
        fold: fold BatchNorm (``False`` benchmarks the plain export, the reference in the targets).
        calibration_num: int8 only: synthetic figures used to calibrate (seed 0).
        accuracy_num: if > 0, compare with the fp32 eager runtime on that many synthetic validation figures
            (seed 1000, disjoint from calibration) and fill ``accuracy`` (:class:`AccuracyCost` fields).
        measure_peak: time the peak convolution (``peak_gflops``, ``peak_share``); ``False`` leaves them 0.
    """
    require_extras(*BACKEND_EXTRAS.get(backend, ()))  # before the minutes of measuring and calibrating
    model, meta = resolve_model(model_spec)
    name = str(model_spec) if not isinstance(model_spec, nn.Module) else type(model_spec).__name__
    input_size = meta.input_size_or(input_size)
    if batch < 1:
        raise ConfigError(f"batch must be >= 1, got {batch}")
    calibration = None
    if precision == "int8":
        calibration = synthetic_validation(meta, input_size, calibration_num, seed=0)
    peak, peak_engine = conv_peak_gflops(precision) if measure_peak else (0.0, "")
    start = time.perf_counter()
    runtime: Runtime = create_runtime((model, meta), backend, precision, calibration, input_size, fold=fold)
    images = np.random.default_rng(0).random((batch, input_channels(model), *input_size), dtype=np.float32)
    runtime(images)  # torch.compile compiles here, counted in build_s
    build_s = time.perf_counter() - start
    times = np.asarray(time_runtime(runtime, images, iters=iters, warmup=warmup))
    latency = float(np.median(times))
    gmacs = count_macs(model, (input_channels(model), *input_size), batch=batch) / 1e9
    gflops = 2 * gmacs / latency
    accuracy: dict[str, Any] = {}
    if accuracy_num > 0:
        from .accuracy import accuracy_cost

        reference = create_runtime((model, meta), "eager", "fp32", input_size=input_size)
        dataset = synthetic_validation(meta, input_size, accuracy_num)
        accuracy = accuracy_cost(runtime, reference, dataset).to_json()
    return BenchResult(
        model=name,
        backend=runtime.backend,
        precision=runtime.precision,
        batch=batch,
        input_size=input_size,
        latency_ms=1e3 * latency,
        latency_min_ms=1e3 * float(times.min()),
        latency_p10_ms=1e3 * float(np.percentile(times, 10)),
        latency_p90_ms=1e3 * float(np.percentile(times, 90)),
        throughput=batch / latency,
        gmacs=gmacs,
        gflops=gflops,
        peak_gflops=peak,
        peak_share=gflops / peak if peak else 0.0,
        peak_engine=peak_engine,
        peak_rss_mib=peak_rss_mib(),
        build_s=build_s,
        fold=fold,
        requested_backend=backend,
        threads=torch.get_num_threads(),
        cpu=cpu_name(),
        accuracy=accuracy,
    )


def openvino_profile(
    model_spec: nn.Module | str | os.PathLike[str],
    precision: str = "bf16",
    input_size: tuple[int, int] | None = None,
    iters: int = 10,
    calibration_num: int = 32,
) -> list[dict[str, Any]]:
    """Where OpenVINO spends a batch-1 call: time per (layer type, kernel) summed over layers, slowest first.

    Uses the CPU plugin's per-node performance counters (``PERF_COUNT``), averaged over ``iters`` calls.
    Each row: ``node_type``, ``exec_type`` (the kernel, e.g. ``brgconv_avx512_core_bf16``), ``ms``, ``share``,
    ``nodes``.
    """
    from .runtimes import OpenVinoRuntime

    model, meta = resolve_model(model_spec)
    input_size = meta.input_size_or(input_size)
    calibration = synthetic_validation(meta, input_size, calibration_num, seed=0) if precision == "int8" else None
    runtime = create_runtime((model, meta), "openvino", precision, calibration, input_size)
    assert isinstance(runtime, OpenVinoRuntime)
    runtime.config["PERF_COUNT"] = True
    runtime.requests.clear()
    images = np.random.default_rng(0).random((1, input_channels(model), *input_size), dtype=np.float32)
    totals: dict[tuple[str, str], list[float]] = {}
    runtime(images)
    for _ in range(iters):
        runtime(images)
        for info in runtime.requests[images.shape].get_profiling_info():
            key = (info.node_type, info.exec_type)
            entry = totals.setdefault(key, [0.0, 0.0])
            entry[0] += info.real_time.total_seconds() * 1e3 / iters
            entry[1] += 1 / iters
    whole = sum(ms for ms, _ in totals.values()) or 1.0
    rows = [
        {"node_type": n, "exec_type": e, "ms": ms, "share": ms / whole, "nodes": round(count)}
        for (n, e), (ms, count) in totals.items()
    ]
    return sorted(rows, key=lambda r: -r["ms"])
