"""``hourglass bench --train``: time the training step ``hourglass train`` runs, on random data.

The step is :class:`~hourglass.training.step.TrainStep` built from a :class:`~hourglass.config.Config`
exactly as the training loop builds it (model, optimiser, ``train.amp``, ``train.channels_last``,
``train.step``, ``train.grad_clip``); only data loading and the learning-rate schedule are left out.

FLOP convention: a training step counts 3 passes' worth of the forward's convolution multiply-adds
(forward, gradient of the input, gradient of the weights) at 2 FLOPs each, ``3 * 2 * MACs``; BatchNorm,
ReLU, pooling, additions and the optimiser are not counted, as in the inference bench. The share of the
peak compares with the 3x3 convolution peak PyTorch (the engine the step runs on) reaches at the step's
precision (:func:`hourglass.peak.conv_peak`: measured once per process, the median of five rounds with the
slowest and fastest round as its spread). The input size is the recipe's ``data.input_size`` unless one is
given (:meth:`~hourglass.checkpoint.meta.CheckpointMeta.input_size_or`, the rule every bench follows).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from hourglass.checkpoint.io import build_model
from hourglass.checkpoint.meta import CheckpointMeta
from hourglass.config import Config
from hourglass.data.skeletons import Skeleton
from hourglass.device import cpu_name, resolve_device
from hourglass.errors import ConfigError
from hourglass.models.summary import count_macs
from hourglass.peak import Peak, conv_peak
from hourglass.training.distributed import DistInfo, init_distributed, shutdown_distributed
from hourglass.training.local import resolve_procs, run_local
from hourglass.training.optim import build_optimizer
from hourglass.training.step import TrainStep, make_train_step

FLOP_CONVENTION = "3 x forward conv multiply-adds x 2 FLOPs (forward, input grad, weight grad)"


@dataclass
class TrainBenchResult:
    """One timed training configuration; ``to_json`` gives the ``hourglass bench --train --json`` line."""

    model: str
    kwargs: dict[str, Any]
    step: str
    amp: str
    channels_last: bool
    optimizer: str
    batch: int
    input_size: tuple[int, int]
    ms_per_step: float
    ms_min: float
    ms_p10: float
    ms_p90: float
    cpu_ms_per_step: float
    samples_per_s: float
    train_gflop_per_step: float
    gflops: float
    peak_gflops: float
    peak_share: float
    peak_engine: str
    peak_gflops_min: float
    peak_gflops_max: float
    peak_rounds: int
    threads: int
    cpu: str
    procs: int = 1
    flop_convention: str = FLOP_CONVENTION

    def to_json(self) -> dict[str, Any]:
        row = asdict(self)
        row["input_size"] = list(self.input_size)
        return row

    @property
    def precision(self) -> str:
        """``bf16`` under bf16 autocast, else ``fp32``: the precision of the peak the step is compared with."""
        return "bf16" if self.amp == "bf16" else "fp32"

    @property
    def peak(self) -> Peak:
        """The peak this row was compared with."""
        return Peak.of_row(self)


def random_batch(batch: int, input_size: tuple[int, int], num_joints: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """``{"image": (B, 3, H, W) in [0, 1], "heatmaps": (B, K, H/4, W/4), "weights": (B, K) ones}``."""
    g = torch.Generator().manual_seed(seed)
    h, w = input_size
    return {
        "image": torch.rand(batch, 3, h, w, generator=g),
        "heatmaps": torch.rand(batch, num_joints, h // 4, w // 4, generator=g),
        "weights": torch.ones(batch, num_joints),
    }


def bench_meta(cfg: Config, num_joints: int = 16) -> CheckpointMeta:
    """What a run of ``cfg`` would write about itself, on a skeleton of ``model.kwargs.num_joints`` (default
    ``num_joints``) unnamed joints: the model to build and the input size."""
    joints = tuple(f"joint{k}" for k in range(cfg.model.kwargs.get("num_joints", num_joints)))
    return CheckpointMeta.from_config(cfg, Skeleton("bench", joints, tuple(range(len(joints))), (), ()))


def build_train_step(
    cfg: Config, device: torch.device, num_joints: int = 16, info: DistInfo | None = None
) -> TrainStep:
    """The model (seeded with ``train.seed``), optimiser and step of ``cfg``, as the training loop makes them
    (:func:`~hourglass.training.step.make_train_step`; DDP-wrapped when ``info`` is distributed)."""
    torch.manual_seed(cfg.train.seed)
    model = build_model(bench_meta(cfg, num_joints))
    memory_format = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
    model = model.to(device, memory_format=memory_format)
    optimizer = build_optimizer(model.parameters(), cfg.optim)
    info = info if info is not None else DistInfo(0, 1, 0, device)
    return make_train_step(model, optimizer, cfg.train, info)


def benchmark_training(
    cfg: Config,
    batch: int | None = None,
    input_size: Sequence[int] | None = None,
    iters: int = 10,
    warmup: int = 3,
    measure_peak: bool = True,
) -> TrainBenchResult:
    """Median wall time of ``iters`` training steps of ``cfg`` (after ``warmup``), on one random batch.

    With ``train.procs`` above 1 the step runs as training would run it: that many processes (spawned here,
    :func:`~hourglass.training.local.run_local`), each with its share of the batch, DDP averaging the
    gradients; the wall time is rank 0's, the CPU time the sum over the processes.

    Args:
        cfg: model, optimiser and ``train`` settings (``model.kwargs.num_joints`` defaults to 16).
        batch: images per step, over all processes (default ``train.batch_size``).
        input_size: ``(H, W)`` or ``(3, H, W)`` (default ``data.input_size``: :meth:`CheckpointMeta.input_size_or`).
        measure_peak: compare with PyTorch's convolution peak (:func:`hourglass.peak.conv_peak`:
            ``peak_gflops``, its spread, ``peak_share``; 0 when off); it is measured once per process, on all
            its threads, after the workers have ended.
    """
    batch = cfg.train.batch_size if batch is None else batch
    h, w = bench_meta(cfg).input_size_or(input_size)
    if batch < 1:
        raise ConfigError(f"bench --train: batch must be positive, got {batch}")
    device = resolve_device(cfg.train.device)
    procs = resolve_procs(cfg.train.procs, batch, device)
    args = (cfg, batch, (h, w), iters, warmup)
    timed = run_local(_time_steps, args, procs) if procs > 1 else _time_steps(*args)
    times = np.asarray(timed["walls"])
    seconds = float(np.median(times))
    flop = 3 * 2 * timed["macs_per_sample"] * batch
    precision = "bf16" if cfg.train.amp == "bf16" else "fp32"
    measured = measure_peak and device.type == "cpu"
    peak = conv_peak(precision) if measured else Peak(precision, "", 0.0, 0.0, 0.0, 0)
    gflops = flop / seconds / 1e9
    return TrainBenchResult(
        model=cfg.model.name,
        kwargs=dict(cfg.model.kwargs),
        step=timed["mode"],
        amp=cfg.train.amp,
        channels_last=cfg.train.channels_last,
        optimizer=cfg.optim.name,
        batch=batch,
        input_size=(h, w),
        ms_per_step=1e3 * seconds,
        ms_min=1e3 * float(times.min()),
        ms_p10=1e3 * float(np.percentile(times, 10)),
        ms_p90=1e3 * float(np.percentile(times, 90)),
        cpu_ms_per_step=1e3 * float(np.median(timed["cpus"])),
        samples_per_s=batch / seconds,
        train_gflop_per_step=flop / 1e9,
        gflops=gflops,
        peak_gflops=peak.gflops,
        peak_share=peak.share(gflops) if peak.gflops else 0.0,
        peak_engine=peak.engine,
        peak_gflops_min=peak.gflops_min,
        peak_gflops_max=peak.gflops_max,
        peak_rounds=peak.rounds,
        threads=timed["threads"],
        cpu=cpu_name() if device.type == "cpu" else torch.cuda.get_device_name(device),
        procs=procs,
    )


def _time_steps(
    cfg: Config,
    batch: int,
    input_size: tuple[int, int],
    iters: int,
    warmup: int,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Build the step in this process (a rank of a group when torchrun's variables are set) and time it.
    ``log`` (what :func:`~hourglass.training.local.run_local` passes) is not used: the bench prints nothing.

    Returns rank 0's per-step wall times, the per-step CPU time summed over ranks, the step mode, the
    threads per process and the forward's multiply-adds per sample.
    """
    info = init_distributed(cfg.train.device)
    try:
        num_joints = int(cfg.model.kwargs.get("num_joints", 16))
        step = build_train_step(cfg, info.device, num_joints, info)
        data = random_batch(batch // info.world_size, input_size, num_joints, seed=info.rank)
        for _ in range(warmup):
            step(data)
        walls, cpus = [], []
        for _ in range(iters):
            sync(info.device)
            t0, c0 = time.perf_counter(), time.process_time()
            step(data)
            sync(info.device)
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        if info.distributed:
            total = torch.tensor(cpus, dtype=torch.float64)
            torch.distributed.all_reduce(total)
            cpus = total.tolist()
        macs = count_macs(step.model, (3, *input_size), batch=1)
        return {
            "walls": walls,
            "cpus": cpus,
            "mode": step.mode,
            "threads": torch.get_num_threads(),
            "macs_per_sample": macs,
        }
    finally:
        shutdown_distributed()


def sync(device: torch.device) -> None:
    """Wait for queued CUDA work (a no-op on CPU), so a wall-clock interval covers the step."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def format_train_result(r: TrainBenchResult) -> str:
    """Human-readable lines for one ``bench --train`` row."""
    kwargs = " ".join(f"{k}={v}" for k, v in r.kwargs.items())
    lines = [
        f"{r.model}{' ' + kwargs if kwargs else ''}: training step ({r.step}, amp {r.amp}, "
        f"{'channels_last' if r.channels_last else 'contiguous'}, {r.optimizer}), batch {r.batch}, "
        f"{r.input_size[0]}x{r.input_size[1]}" + (f", {r.procs} processes (DDP)" if r.procs > 1 else ""),
        f"  step      {r.ms_per_step:.1f} ms median (min {r.ms_min:.1f}, p10 {r.ms_p10:.1f}, p90 {r.ms_p90:.1f}); "
        f"CPU time {r.cpu_ms_per_step:.1f} ms",
        f"  samples   {r.samples_per_s:.2f} samples/s",
        f"  compute   {r.gflops:.1f} GFLOP/s ({r.train_gflop_per_step:.1f} GFLOP per step: {r.flop_convention})",
    ]
    if r.peak_gflops:
        lines.append(f"  peak      {r.peak.describe()}; share {100 * r.peak_share:.1f}%")
    per = f"{r.procs} processes x {r.threads} threads" if r.procs > 1 else f"{r.threads} threads"
    lines.append(f"  machine   {r.cpu}, {per}")
    return "\n".join(lines)
