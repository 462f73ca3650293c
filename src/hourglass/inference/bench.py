"""Benchmark one runtime: latency, throughput, achieved GFLOP/s against this machine's measured peak, memory.

One call measures one (model, backend, precision, batch, input size). The machine's peak at the same
precision (:mod:`hourglass.peak`: one large 3x3 convolution, 256 -> 256 channels, 64x64, run by eager
PyTorch for fp32 and bf16 and by OpenVINO through its runtime for all three, int8 included; the median of
five rounds of the faster engine, with the slowest and fastest round as its spread) is measured once per
process and kept, so every row of a run compares with the same reference.
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
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from hourglass.checkpoint.meta import CheckpointMeta
from hourglass.device import cpu_name
from hourglass.errors import ConfigError
from hourglass.extras import extra_installed, require_extras
from hourglass.models.summary import count_macs
from hourglass.peak import Engine, Peak, conv_peak, torch_engine

from .export import input_channels
from .runtimes import BACKEND_EXTRAS, OpenVinoRuntime, Runtime, create_runtime, resolve_model, time_runtime


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
    peak_gflops_min: float
    peak_gflops_max: float
    peak_rounds: int
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

    @property
    def peak(self) -> Peak:
        """The peak this row was compared with."""
        return Peak.of_row(self)


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB (Linux reports KiB, macOS bytes)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if platform.system() == "Darwin" else rss / 1024


def peak_engines(precision: str) -> dict[str, Engine]:
    """The engines that run the peak convolution at ``precision`` here: PyTorch (fp32, bf16) and OpenVINO.

    OpenVINO is built as :func:`~hourglass.inference.runtimes.create_runtime` builds it (the same precision
    hint, the same NNCF int8 quantisation), so int8 is compared with an int8 convolution.

    Raises:
        MissingExtraError, ConfigError: int8 without OpenVINO.
    """
    engines: dict[str, Engine] = {} if precision == "int8" else {"torch": torch_engine}
    if all(extra_installed(extra) for extra in BACKEND_EXTRAS["openvino"]):
        engines["openvino"] = openvino_engine
    if not engines:
        require_extras(*BACKEND_EXTRAS["openvino"])
        raise ConfigError(f"no engine here runs a {precision} convolution (int8 needs openvino)")
    return engines


def openvino_engine(conv: nn.Conv2d, x: torch.Tensor, precision: str) -> Callable[[], object]:
    """:data:`~hourglass.peak.Engine` for OpenVINO: the compiled request of :func:`peak_runtime` for ``x``'s
    shape; the call is the request's ``infer`` (the output stays in OpenVINO's buffer)."""
    request = peak_runtime(conv, x, precision).infer_request(tuple(x.shape))
    data = x.numpy()
    return lambda: request.infer({0: data})


def peak_runtime(conv: nn.Conv2d, x: torch.Tensor, precision: str) -> OpenVinoRuntime:
    """The OpenVINO runtime of the peak convolution, made by :func:`create_runtime` as a network's is (int8:
    NNCF, calibrated on two random inputs of ``x``'s size)."""
    calibration = None
    if precision == "int8":
        rng = np.random.default_rng(0)
        calibration = [rng.random((1, *x.shape[1:]), dtype=np.float32) for _ in range(2)]
    runtime = create_runtime(conv, "openvino", precision, calibration, (x.shape[2], x.shape[3]), fold=False)
    assert isinstance(runtime, OpenVinoRuntime)
    return runtime


def bench_peak(precision: str) -> Peak:
    """This machine's ``precision`` peak over :func:`peak_engines`, measured once per process
    (:func:`hourglass.peak.conv_peak`): every row of a run is compared with the same reference."""
    return conv_peak(precision, peak_engines(precision))


def conv_peak_gflops(precision: str) -> tuple[float, str]:
    """``(GFLOP/s, engine)`` of :func:`bench_peak`: the median round of the fastest engine."""
    peak = bench_peak(precision)
    return peak.gflops, peak.engine


def synthetic_validation(meta: CheckpointMeta, input_size: tuple[int, int], num: int, seed: int = 1000) -> Any:
    """A :class:`~hourglass.synthetic.figures.SyntheticFigures` set with the checkpoint's codec at ``input_size``
    (its heatmap size kept when the input size is the checkpoint's, else a quarter of ``input_size``)."""
    from hourglass.data import HeatmapCodec
    from hourglass.synthetic.figures import SyntheticFigures

    codec = meta.codec
    if codec is None or codec.input_size != tuple(input_size):
        codec = HeatmapCodec(input_size, sigma=codec.sigma if codec is not None else 2.0)
    return SyntheticFigures(num, seed=seed, codec=codec)


def benchmark(
    model_spec: nn.Module | str | os.PathLike[str],
    backend: str = "eager",
    precision: str = "fp32",
    batch: int = 1,
    input_size: Sequence[int] | None = None,
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
        batch: images per call; input_size: ``(H, W)`` or ``(C, H, W)`` (default: the checkpoint's, else 256x256;
            :meth:`~hourglass.checkpoint.meta.CheckpointMeta.input_size_or`).
        fold: fold BatchNorm (``False`` benchmarks the plain export, the reference in the targets).
        calibration_num: int8 only: synthetic figures used to calibrate (seed 0).
        accuracy_num: if > 0, compare with the fp32 eager runtime on that many synthetic validation figures
            (seed 1000, disjoint from calibration) and fill ``accuracy`` (:class:`AccuracyCost` fields).
        measure_peak: compare with the machine's peak at ``precision`` (:func:`bench_peak`: ``peak_gflops``,
            its spread ``peak_gflops_min``/``peak_gflops_max`` over ``peak_rounds``, ``peak_share``), measured
            once per process; ``False`` leaves them 0.
    """
    require_extras(*BACKEND_EXTRAS.get(backend, ()))  # before the minutes of measuring and calibrating
    model, meta = resolve_model(model_spec)
    name = str(model_spec) if not isinstance(model_spec, nn.Module) else type(model_spec).__name__
    input_size = meta.input_size_or(input_size, input_channels(model))
    if batch < 1:
        raise ConfigError(f"batch must be >= 1, got {batch}")
    calibration = None
    if precision == "int8":
        calibration = synthetic_validation(meta, input_size, calibration_num, seed=0)
    peak = bench_peak(precision) if measure_peak else Peak(precision, "", 0.0, 0.0, 0.0, 0)
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
        peak_gflops=peak.gflops,
        peak_share=peak.share(gflops) if peak.gflops else 0.0,
        peak_engine=peak.engine,
        peak_gflops_min=peak.gflops_min,
        peak_gflops_max=peak.gflops_max,
        peak_rounds=peak.rounds,
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
    input_size: Sequence[int] | None = None,
    iters: int = 10,
    calibration_num: int = 32,
) -> list[dict[str, Any]]:
    """Where OpenVINO spends a batch-1 call: time per (layer type, kernel) summed over layers, slowest first.

    Uses the CPU plugin's per-node performance counters (``PERF_COUNT``), averaged over ``iters`` calls.
    Each row: ``node_type``, ``exec_type`` (the kernel, e.g. ``brgconv_avx512_core_bf16``), ``ms``, ``share``,
    ``nodes``.
    """
    model, meta = resolve_model(model_spec)
    input_size = meta.input_size_or(input_size, input_channels(model))
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
        for info in runtime.infer_request(images.shape).get_profiling_info():
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
