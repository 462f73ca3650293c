"""What a training run reports: a rich progress bar, a JSONL metrics log, TensorBoard scalars, a curves PNG.

Only rank 0 creates a :class:`RunLog`; the other ranks get :class:`NullLog`, which does nothing.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hourglass.extras import MissingExtraError, require_extra
from hourglass.files import atomic_write


class NullLog:
    """The logger of non-zero ranks and of quiet runs: every method is a no-op."""

    def start(self, total_steps: int | None, done: int = 0, time_limit_s: float | None = None) -> None:
        pass

    def step(self, step: int, epoch: int, loss: float, lr: float, samples_per_s: float) -> None:
        pass

    def scalars(self, step: int, epoch: int, values: dict[str, float]) -> None:
        pass

    def message(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


class RunLog(NullLog):
    """Writes ``out_dir/metrics.jsonl`` (one JSON object per logged step or evaluation), TensorBoard event
    files under ``out_dir/tensorboard`` and shows progress.

    A fresh run (``resume_step=None``) replaces the logs a previous run left in ``out_dir``, as it replaces
    its checkpoints, so the curves show one run. A resumed run keeps the records up to ``resume_step``
    (the checkpoint it continues from), drops those logged after it, which the resumed run logs again,
    and continues the same file; TensorBoard events after that step are purged likewise.

    Args:
        out_dir: run folder.
        log_every: write a training record every this many steps (the bar updates every step).
        progress: show progress: a bar when ``console`` is a terminal, else (a log file, CI, a cluster job)
            a plain line every ``log_every`` steps (:func:`progress_line`). Off for tests.
        tensorboard: write TensorBoard scalars when the ``tensorboard`` extra is installed; without it,
            one line on ``console`` says so and the run goes on.
        console: where the bar and messages go.
        resume_step: the step a resumed run starts from; ``None`` for a fresh run.
    """

    def __init__(
        self,
        out_dir: str | Path,
        log_every: int = 10,
        progress: bool = True,
        tensorboard: bool = True,
        console: Console | None = None,
        resume_step: int | None = None,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.jsonl_path = self.out_dir / "metrics.jsonl"
        self.log_every = log_every
        self.console = console or Console(stderr=True)
        kept = []
        if resume_step is not None and self.jsonl_path.exists():
            kept = [r for r in read_jsonl(self.jsonl_path) if r.get("step", 0) <= resume_step]
        text = "".join(json.dumps(r) + "\n" for r in kept)
        atomic_write(self.jsonl_path, lambda tmp: Path(tmp).write_text(text))
        self._jsonl = open(self.jsonl_path, "a")
        self._tb = None
        if tensorboard:
            try:
                require_extra("tensorboard", "tensorboard")
            except MissingExtraError as err:
                self.console.print(f"no TensorBoard log: {err}", markup=False, highlight=False, soft_wrap=True)
                tensorboard = False
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            tb_dir = self.out_dir / "tensorboard"
            if resume_step is None and tb_dir.is_dir():
                for old in tb_dir.glob("events.out.tfevents.*"):
                    old.unlink()
            purge = None if resume_step is None else resume_step + 1
            self._tb = SummaryWriter(str(tb_dir), purge_step=purge)
        self._progress: Progress | None = None
        self._task: Any = None
        self._show = progress
        self._plain = progress and not self.console.is_terminal
        self._total: int | None = None
        self._time_limit: float | None = None
        self._t0 = time.perf_counter()
        self._done0 = 0

    def start(self, total_steps: int | None, done: int = 0, time_limit_s: float | None = None) -> None:
        self._total, self._time_limit = total_steps, time_limit_s
        self._t0, self._done0 = time.perf_counter(), done
        if not self._show or self._plain:
            return
        self._progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self._task = self._progress.add_task("train", total=total_steps, completed=done, info="")
        self._progress.start()

    def step(self, step: int, epoch: int, loss: float, lr: float, samples_per_s: float) -> None:
        if self._progress is not None:
            info = f"epoch {epoch} loss {loss:.3e} lr {lr:.2e} {samples_per_s:.1f} samples/s"
            self._progress.update(self._task, completed=step, info=info)
        if step % self.log_every == 0:
            if self._plain:
                elapsed = time.perf_counter() - self._t0
                line = progress_line(
                    step, self._total, epoch, loss, lr, samples_per_s, elapsed, step - self._done0, self._time_limit
                )
                self.console.print(line, highlight=False, markup=False, soft_wrap=True)
            self._write({"step": step, "epoch": epoch, "loss": loss, "lr": lr, "samples_per_s": samples_per_s})
            if self._tb is not None:
                self._tb.add_scalar("train/loss", loss, step)
                self._tb.add_scalar("train/lr", lr, step)
                self._tb.add_scalar("train/samples_per_s", samples_per_s, step)

    def scalars(self, step: int, epoch: int, values: dict[str, float]) -> None:
        self._write({"step": step, "epoch": epoch, **{f"val/{k}": v for k, v in values.items()}})
        if self._tb is not None:
            for k, v in values.items():
                self._tb.add_scalar(f"val/{k}", v, step)

    def message(self, text: str) -> None:
        self.console.print(text, highlight=False, soft_wrap=True)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        self._jsonl.close()

    def _write(self, record: dict[str, Any]) -> None:
        self._jsonl.write(json.dumps({"time": round(time.time(), 3), **record}) + "\n")
        self._jsonl.flush()


def progress_line(
    step: int,
    total: int | None,
    epoch: int,
    loss: float,
    lr: float,
    samples_per_s: float,
    elapsed: float,
    steps_done: int,
    time_limit_s: float | None = None,
) -> str:
    """One plain progress line, e.g. ``step 120/3000 epoch 0 loss 1.234e-03 lr 2.00e-03 15.2 samples/s
    elapsed 0:01:20 left 0:31:10``.

    ``elapsed`` seconds were spent on ``steps_done`` steps in this process; time left extrapolates that
    rate to ``total`` and, with a time limit, is at most what remains of ``time_limit_s`` (an estimate:
    evaluation time is not excluded).
    """
    parts = [f"step {step}" + (f"/{total}" if total else ""), f"epoch {epoch}", f"loss {loss:.4e}", f"lr {lr:.3e}"]
    parts += [f"{samples_per_s:.1f} samples/s", f"elapsed {_clock(elapsed)}"]
    left = None
    if total and steps_done > 0:
        left = max(0.0, (total - step) * elapsed / steps_done)
    if time_limit_s is not None:
        left = min(left if left is not None else math.inf, max(0.0, time_limit_s - elapsed))
    if left is not None:
        parts.append(f"left {_clock(left)}")
    return " ".join(parts)


def _clock(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` file; a truncated last line (a killed run) is ignored."""
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def plot_curves(jsonl_path: str | Path, png_path: str | Path) -> Path:
    """Plot training loss and learning rate against step, and every ``val/*`` metric, into one PNG.

    Uses matplotlib's Agg backend (no display needed); written atomically.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_jsonl(jsonl_path)
    train = [r for r in records if "loss" in r]
    val_keys = sorted({k for r in records for k in r if k.startswith("val/")})
    fig, axes = plt.subplots(1, 3 if val_keys else 2, figsize=(15 if val_keys else 10, 4))
    steps = [r["step"] for r in train]
    axes[0].plot(steps, [r["loss"] for r in train])
    axes[0].set(xlabel="step", ylabel="loss (sum over stacks)", title="training loss", yscale="log")
    axes[1].plot(steps, [r["lr"] for r in train])
    axes[1].set(xlabel="step", ylabel="learning rate", title="learning rate")
    if val_keys:
        for key in val_keys:
            pts = [(r["step"], r[key]) for r in records if key in r]
            axes[2].plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=key[4:])
        axes[2].set(xlabel="step", title="validation")
        axes[2].legend()
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    png_path = Path(png_path)
    atomic_write(png_path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
    return png_path
