"""The training loop: one process or many (``train.procs`` or torchrun, DDP), resumable to the exact loss sequence.

Files in ``train.out_dir``: ``last.safetensors`` (+ ``last.state.pt`` for ``--resume``), ``best.safetensors``
when validation runs, ``metrics.jsonl``, ``tensorboard/``, ``curves.png`` and ``config.yaml``.

Exactness of ``--resume``: the weights, the optimiser, scheduler and gradient-scaler state and the
iteration count are saved; data order is a function of ``(seed, epoch)`` (:class:`ShardedSampler`) and
augmentation of ``(seed, epoch, index)`` (``KeypointDataset.set_epoch``), so a resumed run
sees the same batches as an uninterrupted one and, on the same machine and settings, the same losses.
"""

from __future__ import annotations

import dataclasses
import functools
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
from torch.utils.data import DataLoader

from hourglass.checkpoint.io import (
    build_model,
    check_compatible,
    load_checkpoint,
    load_state,
    load_training_state,
    resumable_step,
    save_checkpoint,
    save_checkpoint_with_state,
    training_state_path,
)
from hourglass.checkpoint.meta import CheckpointMeta
from hourglass.config import Config
from hourglass.data.build import build_dataset
from hourglass.data.dataset import collate, worker_init_fn
from hourglass.device import resolve_device
from hourglass.errors import CheckpointError, ConfigError, OutOfSpaceError, TrainingDiverged
from hourglass.files import atomic_write
from hourglass.training.distributed import (
    DistInfo,
    ShardedSampler,
    all_reduce_max,
    all_reduce_mean,
    init_distributed,
    shutdown_distributed,
)
from hourglass.training.local import resolve_procs, run_local
from hourglass.training.optim import build_optimizer, build_scheduler
from hourglass.training.runlog import NullLog, RunLog, plot_curves
from hourglass.training.step import TrainStep, make_train_step


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
    overwrite: bool = False,
) -> TrainResult:
    """Train ``cfg`` (a recipe); under torchrun, every rank calls this and rank 0 writes the files.

    Args:
        cfg: the run configuration.
        resume: a ``.safetensors`` checkpoint with its ``.state.pt`` beside it; training continues from
            its step. The model and data settings must match (a mismatch names the setting).
        on_step: called after every optimiser step with ``(step, loss)`` (tests, the demo).
        log: where rank 0 prints messages (default: stderr through rich).
        overwrite: start afresh in a ``train.out_dir`` that already holds a run (:func:`claim_out_dir`);
            without it (and without ``resume``) such a folder is refused, so no run is replaced unasked.

    With ``train.procs`` above 1 (and not under torchrun), this process starts that many workers that each
    call ``train`` as ranks of one process group (:func:`~hourglass.training.local.run_local`) and returns
    rank 0's result; ``log`` still receives rank 0's messages.

    Raises:
        TrainingDiverged: NaN or infinite loss (the last saved checkpoint is left intact).
        ConfigError, CheckpointError, DataError: bad settings, checkpoint or data (all ``HourglassError``);
            a ``train.out_dir`` holding a run, without ``resume`` or ``overwrite``.
    """
    if resume is None:
        claim_out_dir(Path(cfg.train.out_dir), overwrite)
    procs = resolve_procs(cfg.train.procs, cfg.train.batch_size, resolve_device(cfg.train.device))
    if procs > 1:
        if on_step is not None:
            raise ConfigError("train: an on_step callback runs in one process; set train.procs=1 to use one")
        # the folder is claimed above: the workers must not refuse what this process has accepted
        return run_local(functools.partial(train, overwrite=True), (cfg, resume), procs, log=log)
    info = init_distributed(cfg.train.device)
    ok = False
    try:
        result = _Trainer(cfg, info, log).run(resume, on_step)
        ok = True
        return result
    finally:
        if ok:
            shutdown_distributed()
        elif torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


RUN_FILES = ("last.safetensors", "best.safetensors")
"""Checkpoints whose presence in ``train.out_dir`` means that it holds a run (:func:`claim_out_dir`); a run
that stopped before its first save left only a log, which a new run replaces."""


def claim_out_dir(out_dir: Path, overwrite: bool) -> None:
    """Refuse to start a new run in ``out_dir`` when it holds one (any of :data:`RUN_FILES`), unless ``overwrite``.

    Every rank calls this before joining the process group (which waits for all of them), so no rank has
    written anything yet. With ``overwrite``, the old run's ``best.safetensors`` is removed (a new run
    without validation would otherwise seem to have it); the other files are replaced as the run writes them.

    Raises:
        ConfigError: naming the folder, the files found and the three ways on (``--resume``,
            ``--overwrite``, another ``train.out_dir``).
    """
    found = [name for name in RUN_FILES if (out_dir / name).is_file()]
    if not found:
        return
    if not overwrite:
        last = out_dir / "last.safetensors"
        resume = f"continue it with --resume {last}, " if last.is_file() else ""
        raise ConfigError(
            f"train.out_dir {out_dir} already holds a run ({', '.join(found)}); {resume}replace it with "
            "--overwrite, or set train.out_dir to another folder (--set train.out_dir=runs/NEW)"
        )
    (out_dir / "best.safetensors").unlink(missing_ok=True)


class _Trainer:
    """One run, in the order it happens: :meth:`build`, :meth:`resume`, :meth:`open_outputs`, then
    :meth:`train_epoch` and :meth:`end_epoch` per epoch, and :meth:`finish`."""

    def __init__(self, cfg: Config, info: DistInfo, log: Callable[[str], None] | None) -> None:
        self.cfg = cfg
        self.info = info
        self.out_dir = Path(cfg.train.out_dir)
        self.log = log
        self.say: Callable[[str], None] = log if log is not None and info.is_main else (lambda s: None)
        self.runlog: NullLog = NullLog()
        self.memory_format = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
        self.step = 0
        self.epoch = 0
        self.best: float | None = None
        self.losses: list[float] = []
        self.metrics: dict[str, float] = {}
        self.train_time = 0.0  # seconds of training, those before a resumed checkpoint included
        self.saved_at = time.monotonic()  # when `last` was last saved with its resume state
        self.budget_spent = 0.0  # share of train.time_limit_s used, the same on every rank
        self.last_path: Path | None = None
        self.best_path: Path | None = None

    def run(self, resume: str | Path | None, on_step: Callable[[int, float], None] | None) -> TrainResult:
        self.build()
        if resume is not None:
            self.resume(Path(resume))
        self.open_outputs(resumed=resume is not None)
        status = "finished"
        limit = self.cfg.train.time_limit_s
        self.runlog.start(self.total_steps, self.step, None if limit is None else limit - self.train_time)
        try:
            with stop_requests() as stop:
                self.epoch = self.step // self.steps_per_epoch
                while self.epoch < self.cfg.train.epochs and status == "finished":
                    status = self.train_epoch(stop, on_step)
                    self.epoch = self.step // self.steps_per_epoch
                    self.end_epoch(status)
        finally:
            self.runlog.close()
        return self.finish(status)

    # --- before the first step --------------------------------------------------------------------------

    def build(self) -> None:
        """Datasets, model (on the device, DDP-wrapped when distributed), optimiser, schedule, precision."""
        cfg, info = self.cfg, self.info
        torch.manual_seed(cfg.train.seed)
        self.train_set = build_dataset(cfg, "train")
        self.val_set = build_dataset(cfg, "val") if cfg.train.val_every and cfg.data.val.annotations else None
        self.meta = CheckpointMeta.from_config(cfg, self.train_set.skeleton)
        self.model = self._build_model()
        self.sampler = ShardedSampler(
            len(self.train_set), cfg.train.batch_size, info.rank, info.world_size, seed=cfg.train.seed
        )
        self.steps_per_epoch = self.sampler.batches_per_epoch
        if self.steps_per_epoch == 0:
            raise ConfigError(
                f"train.batch_size={cfg.train.batch_size} is larger than the training set ({len(self.train_set)} "
                f"samples in {cfg.data.train.annotations}); lower the batch size or add data"
            )
        self.total_steps = self.steps_per_epoch * cfg.train.epochs
        if cfg.train.max_steps is not None:
            self.total_steps = min(self.total_steps, cfg.train.max_steps)
        self.optimizer = build_optimizer(self.model.parameters(), cfg.optim)
        self.scheduler = build_scheduler(
            self.optimizer, cfg.optim, self.steps_per_epoch, self.total_steps, lambda: self.budget_spent
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=cfg.train.amp == "fp16" and info.device.type == "cuda")

    def _build_model(self) -> nn.Module:
        cfg, info = self.cfg, self.info
        model = build_model(self.meta)
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
        return model.to(info.device, memory_format=self.memory_format)

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

    def resume(self, path: Path) -> None:
        """Weights, optimiser, scheduler, scaler, generators and step of checkpoint ``path`` (same model and data)."""
        state_dict, meta = load_checkpoint(path)
        check_compatible(path, meta, {"name": self.meta.model, **self.meta.model_kwargs})
        meta.check_same_data(path, self.meta, ("input_size", "heatmap_size", "skeleton"))
        load_state(path, self.model, state_dict)
        state = load_training_state(training_state_path(path))
        if state.get("step") != meta.step:
            raise CheckpointError(
                f"{training_state_path(path)}: resume state is for step {state.get('step')} but the weights are "
                f"from step {meta.step} (an interrupted save?); resume from another checkpoint"
            )
        if state.get("steps_per_epoch") != self.steps_per_epoch:
            raise CheckpointError(
                f"{path}: saved with {state.get('steps_per_epoch')} steps per epoch but this run has "
                f"{self.steps_per_epoch} (dataset size or train.batch_size changed); resuming would not continue "
                "the same data order"
            )
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        self.step, self.best = int(state["step"]), state.get("best")
        self.train_time = float(state.get("train_seconds", 0.0))

    def open_outputs(self, resumed: bool) -> None:
        """Rank 0: ``config.yaml`` and the run log in ``train.out_dir``; every rank: the step (DDP-wrapped)."""
        cfg, info = self.cfg, self.info
        self.step_fn = self._make_step()
        if info.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            atomic_write(self.out_dir / "config.yaml", lambda tmp: Path(tmp).write_text(yaml.safe_dump(cfg.to_dict())))
            self.runlog = RunLog(
                self.out_dir,
                cfg.train.log_every,
                progress=cfg.train.progress,
                tensorboard=cfg.train.tensorboard,
                resume_step=self.step if resumed else None,
            )
            if self.log is None:
                self.say = self.runlog.message
        self.say(
            f"training {self.meta.model} ({sum(p.numel() for p in self.model.parameters()):,} parameters) on "
            f"{len(self.train_set)} samples, {self.steps_per_epoch} steps/epoch, global batch "
            f"{cfg.train.batch_size} over {info.world_size} process(es) on {info.device}, amp={cfg.train.amp}"
            + f", step {self.step_fn.mode}"
            + (f", resuming at step {self.step}" if self.step else "")
        )

    def _make_step(self) -> TrainStep:
        """The step of ``train.step`` over the model, wrapped in DDP when distributed."""
        return make_train_step(self.model, self.optimizer, self.cfg.train, self.info, self.scaler)

    # --- the steps ------------------------------------------------------------------------------------

    def train_epoch(self, stop: dict[str, int | None], on_step: Callable[[int, float], None] | None) -> str:
        """Steps of the current epoch from where the run stands; returns ``finished`` (the epoch ended) or why
        it stopped early (``interrupted``, ``time_limit``, ``max_steps``)."""
        cfg = self.cfg
        self.sampler.set_epoch(self.epoch, start_batch=self.step % self.steps_per_epoch)
        self.train_set.set_epoch(self.epoch)
        t_last = time.perf_counter()
        for batch in self._loader():
            loss = self.train_step(batch)
            now = time.perf_counter()
            self.train_time += now - t_last
            rate = cfg.train.batch_size / max(now - t_last, 1e-9)
            t_last = now
            self.losses.append(loss)
            self.runlog.step(self.step, self.epoch, loss, self.lr_used, rate)
            if on_step is not None:
                on_step(self.step, loss)
            spent = self.train_time / cfg.train.time_limit_s if cfg.train.time_limit_s else 0.0
            stop_now, self.budget_spent = all_reduce_max([float(stop["signal"] is not None), spent], self.info.device)
            if stop_now or self.budget_spent >= 1.0:
                return "interrupted" if stop_now else "time_limit"
            if cfg.train.max_steps is not None and self.step >= cfg.train.max_steps:
                return "max_steps"
            if self._save_due():
                meta = dataclasses.replace(self.meta, step=self.step, epoch=self.epoch, metrics=self.metrics)
                self.last_path = self._save("last", meta, with_state=True)
        return "finished"

    def _save_due(self) -> bool:
        """A mid-epoch save of ``last`` is due (``train.save_every_steps`` / ``save_every_minutes``); at an
        epoch's end :meth:`end_epoch` saves anyway."""
        every, minutes = self.cfg.train.save_every_steps, self.cfg.train.save_every_minutes
        if self.step % self.steps_per_epoch == 0:
            return False
        by_steps = every is not None and self.step % every == 0
        return by_steps or (minutes is not None and time.monotonic() - self.saved_at >= 60 * minutes)

    def _loader(self) -> DataLoader:
        return DataLoader(
            self.train_set,
            batch_size=self.cfg.train.batch_size // self.info.world_size,
            sampler=self.sampler,
            num_workers=self.cfg.data.num_workers,
            collate_fn=collate,
            worker_init_fn=worker_init_fn,
            drop_last=True,
            pin_memory=self.info.device.type == "cuda",
            persistent_workers=False,
        )

    def train_step(self, batch: dict[str, Any]) -> float:
        """One optimiser step on ``batch`` (:class:`TrainStep`); returns the loss (mean over ranks). Advances
        ``step`` and the schedule.

        Raises:
            TrainingDiverged: a NaN or infinite loss (nothing is saved after it, so the last good checkpoint
                stays as it was).
        """
        loss_value = float(all_reduce_mean(self.step_fn(batch)))
        if not math.isfinite(loss_value):
            raise TrainingDiverged(
                f"loss is {loss_value} at step {self.step + 1} (epoch {self.epoch}); training stopped. The last "
                f"good checkpoint in {self.out_dir} was not overwritten. Lower optim.lr, enable "
                "train.grad_clip or check the data"
            )
        self.lr_used = self.optimizer.param_groups[0]["lr"]
        self.scheduler.step()
        self.step += 1
        return loss_value

    # --- after each epoch, and at the end ---------------------------------------------------------------

    def end_epoch(self, status: str) -> None:
        """Validate when due, then save ``best`` (if the score improved) and ``last`` (with resume state)."""
        if status == "interrupted":
            self.say(f"stop requested (SIGINT/SIGTERM): saving at step {self.step}")
        at_epoch_end = self.step % self.steps_per_epoch == 0
        run_val = (
            self.val_set is not None
            and status != "interrupted"
            and (status != "finished" or (at_epoch_end and self.epoch % self.cfg.train.val_every == 0))
        )
        if run_val:
            self.metrics = self._validate()
        meta = dataclasses.replace(self.meta, step=self.step, epoch=self.epoch, metrics=self.metrics)
        key = self.cfg.train.best_metric
        if run_val and key in self.metrics and (self.best is None or self.metrics[key] > self.best):
            self.best = self.metrics[key]
            self.best_path = self._save("best", meta, with_state=False)
        self.last_path = self._save("last", meta, with_state=True)

    def _validate(self) -> dict[str, float]:
        from hourglass.evaluation.evaluate import evaluate_model

        metrics: dict[str, float] = {}
        if self.info.is_main:
            was_training = self.model.training
            result = evaluate_model(self.model, self.val_set, self.cfg, self.info.device, flip=self.cfg.eval.flip)
            self.model.train(was_training)
            metrics = result.summary
            self.runlog.scalars(self.step, self.epoch, metrics)
            self.say(
                "validation at step {}: {}".format(self.step, ", ".join(f"{k} {v:.2f}" for k, v in metrics.items()))
            )
        if self.info.distributed:
            box = [metrics]
            torch.distributed.broadcast_object_list(box, src=0)
            metrics = box[0]
        return metrics

    def _save(self, name: str, meta: CheckpointMeta, with_state: bool) -> Path | None:
        """Rank 0 writes ``<name>.safetensors`` and, ``with_state``, the resume state beside it."""
        if with_state:
            self.saved_at = time.monotonic()
        if not self.info.is_main:
            return None
        path = self.out_dir / f"{name}.safetensors"
        try:
            return self._write(path, meta, with_state)
        except OutOfSpaceError as err:
            raise OutOfSpaceError(f"{err}; {self._resume_hint()}") from err

    def _resume_hint(self) -> str:
        """Which checkpoint is intact after a failed save (weights and resume state of one step), and the
        command that continues from it."""
        last = self.out_dir / "last.safetensors"
        step = resumable_step(last)
        if step is None:
            return "no earlier checkpoint with its resume state to continue from"
        return (
            f"{last} (step {step}) is intact with its resume state; free some space, then continue with: "
            f"hourglass train --config {self.out_dir / 'config.yaml'} --resume {last}"
        )

    def _write(self, path: Path, meta: CheckpointMeta, with_state: bool) -> Path:
        """``path`` and, ``with_state``, the resume state beside it (replaced together)."""
        if not with_state:
            return save_checkpoint(path, self.model, meta)
        state = {
            "step": meta.step,
            "steps_per_epoch": self.steps_per_epoch,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rng_state(),
            "best": self.best,
            "train_seconds": self.train_time,
        }
        return save_checkpoint_with_state(path, self.model, meta, state)

    def finish(self, status: str) -> TrainResult:
        """Curves, closing messages and the :class:`TrainResult`."""
        if self.info.is_main:
            jsonl = self.out_dir / "metrics.jsonl"
            if jsonl.is_file():
                plot_curves(jsonl, self.out_dir / "curves.png")
        skipped = self.train_set.bad_count
        if skipped:
            self.say(f"skipped {skipped} unreadable training image(s) (data.skip_bad)")
        self.say(f"{status} at step {self.step} (epoch {self.epoch}); outputs in {self.out_dir}")
        if self.best_path is None and (self.out_dir / "best.safetensors").is_file():
            self.best_path = self.out_dir / "best.safetensors"
        return TrainResult(
            status,
            self.step,
            self.epoch,
            self.out_dir,
            self.last_path,
            self.best_path,
            self.losses,
            self.metrics,
            self.train_time,
            skipped,
        )
