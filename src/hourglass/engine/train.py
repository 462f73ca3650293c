"""The training loop: one process or many (torchrun + DDP), resumable to the exact loss sequence.

Files in ``train.out_dir``: ``last.safetensors`` (+ ``last.state.pt`` for ``--resume``), ``best.safetensors``
when validation runs, ``metrics.jsonl``, ``tensorboard/``, ``curves.png`` and ``config.yaml``.

Exactness of ``--resume``: the weights, the optimiser, scheduler and gradient-scaler state and the
iteration count are saved; data order is a function of ``(seed, epoch)`` (:class:`ShardedSampler`) and
augmentation of ``(seed, epoch, index)`` (``KeypointDataset.set_epoch``), so a resumed run
sees the same batches as an uninterrupted one and, on the same machine and settings, the same losses.
"""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from hourglass.data.dataset import collate
from hourglass.engine.checkpoints import (
    CheckpointError,
    atomic_write,
    build_model,
    check_compatible,
    load_checkpoint,
    load_state,
    load_training_state,
    save_checkpoint,
    save_training_state,
    training_state_path,
)
from hourglass.engine.config import Config, ConfigError
from hourglass.engine.datasets import build_dataset, data_meta
from hourglass.engine.distributed import (
    DistInfo,
    ShardedSampler,
    all_reduce_max,
    all_reduce_mean,
    init_distributed,
    shutdown_distributed,
)
from hourglass.engine.optim import build_optimizer, build_scheduler
from hourglass.engine.runlog import NullLog, RunLog, plot_curves
from hourglass.engine.step import TrainStep, resolve_step_mode


class TrainingDiverged(ValueError):
    """The loss became NaN or infinite; the last good checkpoint is left as it was."""


@dataclass
class TrainResult:
    """How a run ended and what it wrote.

    ``status`` is ``"finished"`` (all epochs), ``"max_steps"``, ``"time_limit"`` or ``"interrupted"``
    (SIGINT/SIGTERM; a checkpoint was saved). ``losses`` are this invocation's per-step training losses
    (mean over ranks), in order. ``skipped`` counts unreadable training images skipped with
    ``data.skip_bad`` in this process (with ``data.num_workers > 0`` the workers warn with their own counts).
    """

    status: str
    step: int
    epoch: int
    out_dir: Path
    last_checkpoint: Path | None
    best_checkpoint: Path | None
    losses: list[float] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    train_seconds: float = 0.0
    skipped: int = 0


def model_spec(cfg: Config, num_joints: int) -> dict[str, Any]:
    """The JSON model description stored in checkpoints: ``{"name", "kwargs"}`` with ``num_joints`` set."""
    kwargs = dict(cfg.model.kwargs)
    if "norm_layer" in kwargs:
        raise ConfigError("model.kwargs.norm_layer: set model.norm (batch or group) instead")
    if kwargs.get("num_joints", num_joints) != num_joints:
        raise ConfigError(
            f"model.kwargs.num_joints={kwargs['num_joints']} but the dataset's skeleton has {num_joints} joints"
        )
    kwargs["num_joints"] = num_joints
    if cfg.model.norm != "batch":
        kwargs["norm_layer"] = cfg.model.norm
    return {"name": cfg.model.name, "kwargs": kwargs}


def rng_state() -> dict[str, Any]:
    """The torch (and CUDA) generator states. Data order and augmentation do not draw from global generators
    (they are functions of seed, epoch and index), so numpy's and Python's are not needed."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextmanager
def stop_requests() -> Iterator[dict[str, int | None]]:
    """Catch SIGINT and SIGTERM while training: the first one sets ``flag["signal"]`` so the loop can save
    and stop at the end of the current step; a second SIGINT interrupts at once. Only installed in the
    main thread (Python delivers signals there)."""
    flag: dict[str, int | None] = {"signal": None}
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum: int, _frame: Any) -> None:
        if flag["signal"] is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        flag["signal"] = signum

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def train(
    cfg: Config,
    resume: str | Path | None = None,
    on_step: Callable[[int, float], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train ``cfg`` (see ``configs/``); under torchrun, every rank calls this and rank 0 writes the files.

    Args:
        cfg: the run configuration.
        resume: a ``.safetensors`` checkpoint with its ``.state.pt`` beside it; training continues from
            its step. The model and data settings must match (a mismatch names the setting).
        on_step: called after every optimiser step with ``(step, loss)`` (tests, the demo).
        log: where rank 0 prints messages (default: stderr through rich).

    Raises:
        TrainingDiverged: NaN or infinite loss (the last saved checkpoint is left intact).
        ConfigError, CheckpointError, DataError: bad settings, checkpoint or data (all ``ValueError``).
    """
    info = init_distributed(cfg.train.device)
    ok = False
    try:
        result = _Trainer(cfg, info, log).run(resume, on_step, log)
        ok = True
        return result
    finally:
        if ok:
            shutdown_distributed()
        elif torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


class _Trainer:
    def __init__(self, cfg: Config, info: DistInfo, log: Callable[[str], None] | None) -> None:
        self.cfg = cfg
        self.info = info
        self.out_dir = Path(cfg.train.out_dir)
        self.say: Callable[[str], None] = log if log is not None and info.is_main else (lambda s: None)
        self.runlog: NullLog = NullLog()
        self.resumed_seconds = 0.0  # training seconds before the checkpoint a resumed run starts from
        self.saved_at = time.monotonic()

    def run(
        self,
        resume: str | Path | None,
        on_step: Callable[[int, float], None] | None,
        log: Callable[[str], None] | None,
    ) -> TrainResult:
        cfg, info = self.cfg, self.info
        torch.manual_seed(cfg.train.seed)
        train_set = build_dataset(cfg, "train")
        val_set = build_dataset(cfg, "val") if cfg.train.val_every and cfg.data.val.annotations else None
        skeleton = train_set.skeleton
        spec = model_spec(cfg, skeleton.num_joints)
        model = build_model({"model": spec})
        self._check_input_size(model)
        if cfg.model.grad_checkpointing:
            if not hasattr(model, "set_grad_checkpointing"):
                raise ConfigError(f"model.grad_checkpointing: model {cfg.model.name!r} does not support it")
            model.set_grad_checkpointing(True)
        if cfg.train.sync_batchnorm and info.distributed:
            if info.device.type != "cuda":
                raise ConfigError(
                    "train.sync_batchnorm: torch's SyncBatchNorm runs on GPUs only; on CPU set model.norm=group "
                    "(per-sample statistics, the same for any split of the batch) or turn it off"
                )
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        memory_format = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
        model = model.to(info.device, memory_format=memory_format)

        global_batch = cfg.train.batch_size
        sampler = ShardedSampler(len(train_set), global_batch, info.rank, info.world_size, seed=cfg.train.seed)
        steps_per_epoch = sampler.batches_per_epoch
        if steps_per_epoch == 0:
            raise ConfigError(
                f"train.batch_size={global_batch} is larger than the training set ({len(train_set)} samples "
                f"in {cfg.data.train.annotations}); lower the batch size or add data"
            )
        total_steps = steps_per_epoch * cfg.train.epochs
        if cfg.train.max_steps is not None:
            total_steps = min(total_steps, cfg.train.max_steps)
        optimizer = build_optimizer(model.parameters(), cfg.optim)
        budget = {"spent": 0.0}  # share of train.time_limit_s used, the same on every rank
        scheduler = build_scheduler(optimizer, cfg.optim, steps_per_epoch, total_steps, lambda: budget["spent"])
        scaler = torch.amp.GradScaler("cuda", enabled=cfg.train.amp == "fp16" and info.device.type == "cuda")
        meta_data = data_meta(cfg, skeleton)

        step, best = 0, None
        if resume is not None:
            step, best = self._resume(
                Path(resume), spec, meta_data, model, optimizer, scheduler, scaler, steps_per_epoch
            )
        train_step = self._make_step(model, optimizer, scaler)

        if info.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            atomic_write(self.out_dir / "config.yaml", lambda tmp: Path(tmp).write_text(yaml.safe_dump(cfg.to_dict())))
            self.runlog = RunLog(
                self.out_dir,
                cfg.train.log_every,
                progress=cfg.train.progress,
                tensorboard=cfg.train.tensorboard,
                resume_step=step if resume is not None else None,
            )
            if log is None:
                self.say = self.runlog.message
        self.say(
            f"training {spec['name']} ({sum(p.numel() for p in model.parameters()):,} parameters) on "
            f"{len(train_set)} samples, {steps_per_epoch} steps/epoch, global batch {global_batch} over "
            f"{info.world_size} process(es) on {info.device}, amp={cfg.train.amp}"
            + (f", resuming at step {step}" if step else "")
        )

        local_batch = global_batch // info.world_size
        losses: list[float] = []
        status = "finished"
        last = best_path = None
        metrics: dict[str, float] = {}
        train_time = self.resumed_seconds
        limit = cfg.train.time_limit_s
        self.runlog.start(total_steps, step, None if limit is None else limit - train_time)
        try:
            with stop_requests() as stop:
                epoch = step // steps_per_epoch
                while epoch < cfg.train.epochs and status == "finished":
                    sampler.set_epoch(epoch, start_batch=step % steps_per_epoch)
                    train_set.set_epoch(epoch)
                    loader = DataLoader(
                        train_set,
                        batch_size=local_batch,
                        sampler=sampler,
                        num_workers=cfg.data.num_workers,
                        collate_fn=collate,
                        drop_last=True,
                        pin_memory=info.device.type == "cuda",
                        persistent_workers=False,
                    )
                    t_last = time.perf_counter()
                    for batch in loader:
                        loss_value = float(all_reduce_mean(train_step(batch)))
                        if not math.isfinite(loss_value):
                            raise TrainingDiverged(
                                f"loss is {loss_value} at step {step + 1} (epoch {epoch}); training stopped. The last "
                                f"good checkpoint in {self.out_dir} was not overwritten. Lower optim.lr, enable "
                                "train.grad_clip or check the data"
                            )
                        lr = optimizer.param_groups[0]["lr"]
                        scheduler.step()
                        step += 1
                        now = time.perf_counter()
                        train_time += now - t_last
                        rate = global_batch / max(now - t_last, 1e-9)
                        t_last = now
                        losses.append(loss_value)
                        self.runlog.step(step, epoch, loss_value, lr, rate)
                        if on_step is not None:
                            on_step(step, loss_value)
                        spent = train_time / cfg.train.time_limit_s if cfg.train.time_limit_s else 0.0
                        stop_now, budget["spent"] = all_reduce_max(
                            [float(stop["signal"] is not None), spent], info.device
                        )
                        if stop_now or budget["spent"] >= 1.0:
                            status = "interrupted" if stop_now else "time_limit"
                            break
                        if cfg.train.max_steps is not None and step >= cfg.train.max_steps:
                            status = "max_steps"
                            break
                        if self._save_due(step, steps_per_epoch):
                            meta = self._meta(spec, meta_data, step, steps_per_epoch, metrics)
                            last = self._save(
                                "last", model, meta, optimizer, scheduler, scaler, steps_per_epoch, best, train_time
                            )
                    epoch = step // steps_per_epoch
                    if status == "interrupted":
                        self.say(f"stop requested (SIGINT/SIGTERM): saving at step {step}")
                    at_epoch_end = step % steps_per_epoch == 0
                    run_val = (
                        val_set is not None
                        and status != "interrupted"
                        and (status != "finished" or (at_epoch_end and epoch % cfg.train.val_every == 0))
                    )
                    if run_val:
                        metrics = self._validate(model, val_set, step, epoch)
                    meta = self._meta(spec, meta_data, step, steps_per_epoch, metrics)
                    key = cfg.train.best_metric
                    if run_val and key in metrics and (best is None or metrics[key] > best):
                        best = metrics[key]
                        best_path = self._save("best", model, meta, None, None, None, steps_per_epoch, best)
                    last = self._save(
                        "last", model, meta, optimizer, scheduler, scaler, steps_per_epoch, best, train_time
                    )
                    if status != "finished":
                        break
        finally:
            self.runlog.close()
        if info.is_main:
            jsonl = self.out_dir / "metrics.jsonl"
            if jsonl.is_file():
                plot_curves(jsonl, self.out_dir / "curves.png")
        if train_set.bad_count:
            self.say(f"skipped {train_set.bad_count} unreadable training image(s) (data.skip_bad)")
        self.say(f"{status} at step {step} (epoch {epoch}); outputs in {self.out_dir}")
        if best_path is None and (self.out_dir / "best.safetensors").is_file():
            best_path = self.out_dir / "best.safetensors"
        return TrainResult(
            status, step, epoch, self.out_dir, last, best_path, losses, metrics, train_time, train_set.bad_count
        )

    def _make_step(self, model: nn.Module, optimizer: torch.optim.Optimizer, scaler: Any) -> TrainStep:
        """The step of ``train.step`` over ``model``, wrapped in DDP when distributed."""
        cfg, info = self.cfg.train, self.info
        if info.distributed and cfg.step == "bf16_weights":
            raise ConfigError("train.step='bf16_weights' runs in one process; use train.step=autocast with torchrun")
        mode = resolve_step_mode(cfg.step, cfg.amp, info.device, info.distributed)

        def wrap(net: nn.Module) -> nn.Module:
            if not info.distributed:
                return net
            return DistributedDataParallel(net, device_ids=[info.device] if info.device.type == "cuda" else None)

        return TrainStep(model, optimizer, info.device, cfg.amp, cfg.channels_last, mode, cfg.grad_clip, scaler, wrap)

    def _save_due(self, step: int, steps_per_epoch: int) -> bool:
        """A mid-epoch save of ``last`` is due (``train.save_every_steps`` / ``save_every_minutes``); at an
        epoch end the loop saves anyway."""
        every, minutes = self.cfg.train.save_every_steps, self.cfg.train.save_every_minutes
        if step % steps_per_epoch == 0:
            return False
        by_steps = every is not None and step % every == 0
        return by_steps or (minutes is not None and time.monotonic() - self.saved_at >= 60 * minutes)

    def _meta(
        self, spec: dict[str, Any], data: dict[str, Any], step: int, steps_per_epoch: int, metrics: dict[str, float]
    ) -> dict[str, Any]:
        """Checkpoint metadata at ``step``: model, data, step, epoch, last validation metrics, config."""
        return {
            "model": spec,
            "data": data,
            "step": step,
            "epoch": step // steps_per_epoch,
            "metrics": metrics,
            "config": self.cfg.to_dict(),
        }

    def _check_input_size(self, model: nn.Module) -> None:
        multiple = getattr(model, "input_multiple", 1)
        h, w = self.cfg.data.input_size
        if h % multiple or w % multiple:
            raise ConfigError(
                f"data.input_size={[h, w]} must be divisible by {multiple} for {self.cfg.model.name} (4 * 2**depth)"
            )
        hh, hw = self.cfg.data.heatmap_size
        if (hh * 4, hw * 4) != (h, w):
            raise ConfigError(
                f"data.heatmap_size={[hh, hw]} must be input_size / 4 = {[h // 4, w // 4]} for a stacked hourglass"
            )

    def _validate(self, model: nn.Module, val_set: Any, step: int, epoch: int) -> dict[str, float]:
        from hourglass.engine.evaluate import evaluate_model

        metrics: dict[str, float] = {}
        if self.info.is_main:
            was_training = model.training
            result = evaluate_model(model, val_set, self.cfg, self.info.device, flip=self.cfg.eval.flip)
            model.train(was_training)
            metrics = result.summary
            self.runlog.scalars(step, epoch, metrics)
            self.say("validation at step {}: {}".format(step, ", ".join(f"{k} {v:.2f}" for k, v in metrics.items())))
        if self.info.distributed:
            box = [metrics]
            torch.distributed.broadcast_object_list(box, src=0)
            metrics = box[0]
        return metrics

    def _save(
        self,
        name: str,
        model: nn.Module,
        meta: dict[str, Any],
        optimizer: torch.optim.Optimizer | None,
        scheduler: Any,
        scaler: Any,
        steps_per_epoch: int,
        best: float | None,
        train_seconds: float = 0.0,
    ) -> Path | None:
        if optimizer is not None:
            self.saved_at = time.monotonic()
        if not self.info.is_main:
            return None
        path = self.out_dir / f"{name}.safetensors"
        if optimizer is not None:
            # State first: a crash between the two writes leaves a state whose step does not match the
            # weights, which --resume detects, rather than new weights with a stale optimiser.
            save_training_state(
                training_state_path(path),
                {
                    "step": meta["step"],
                    "steps_per_epoch": steps_per_epoch,
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict(),
                    "rng": rng_state(),
                    "best": best,
                    "train_seconds": train_seconds,
                },
            )
        return save_checkpoint(path, model, meta)

    def _resume(
        self,
        path: Path,
        spec: dict[str, Any],
        meta_data: dict[str, Any],
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        scaler: Any,
        steps_per_epoch: int,
    ) -> tuple[int, float | None]:
        state_dict, meta = load_checkpoint(path)
        check_compatible(path, meta, {"name": spec["name"], **spec["kwargs"]})
        for key in ("input_size", "heatmap_size", "skeleton"):
            if key in meta.get("data", {}) and meta["data"][key] != meta_data[key]:
                raise CheckpointError(
                    f"{path}: checkpoint has data.{key}={meta['data'][key]!r} but this run has {meta_data[key]!r}"
                )
        load_state(path, model, state_dict)
        state = load_training_state(training_state_path(path))
        if state.get("step") != meta.get("step"):
            raise CheckpointError(
                f"{training_state_path(path)}: resume state is for step {state.get('step')} but the weights are "
                f"from step {meta.get('step')} (an interrupted save?); resume from another checkpoint"
            )
        if state.get("steps_per_epoch") != steps_per_epoch:
            raise CheckpointError(
                f"{path}: saved with {state.get('steps_per_epoch')} steps per epoch but this run has "
                f"{steps_per_epoch} (dataset size or train.batch_size changed); resuming would not continue "
                "the same data order"
            )
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        self.resumed_seconds = float(state.get("train_seconds", 0.0))
        return int(state["step"]), state.get("best")
