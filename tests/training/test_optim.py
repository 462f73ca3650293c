"""Learning-rate schedules: every schedule's factors, and exact resume under warm-up plus cosine."""

from __future__ import annotations

import dataclasses
import json
import math
import signal
import typing
from pathlib import Path

import pytest
import torch

from hourglass.config import OptimConfig
from hourglass.training.loop import train
from hourglass.training.optim import build_scheduler, lr_factor

SCHEDULES = set(typing.get_args(typing.get_type_hints(OptimConfig)["schedule"]))
STEPS_PER_EPOCH, TOTAL = 5, 20


def expected(schedule: str, step: int, warmup: int) -> float:
    """The documented schedule, written out independently of :func:`lr_factor`."""
    warm = min(1.0, (step + 1) / warmup) if warmup else 1.0
    if schedule == "constant":
        return warm
    if schedule == "step":  # milestones at epochs 2 and 3, gamma 0.1: x1 for steps 0-9, x0.1 10-14, x0.01 after
        return warm * (1.0 if step < 10 else 0.1 if step < 15 else 0.01)
    if schedule == "cosine":  # 1 -> 0 over the 20 steps
        return warm * 0.5 * (1 + math.cos(math.pi * min(1.0, step / TOTAL)))
    raise AssertionError(f"no expectation written for schedule {schedule!r}")


def test_every_schedule_is_covered() -> None:
    assert SCHEDULES == {"constant", "step", "cosine"}  # a new schedule needs its line in expected()


@pytest.mark.parametrize("warmup", [0, 4])
@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
def test_lr_factor_of_every_schedule(schedule: str, warmup: int) -> None:
    cfg = OptimConfig(schedule=schedule, milestones=[2, 3], gamma=0.1, warmup_steps=warmup)
    got = [lr_factor(s, cfg, STEPS_PER_EPOCH, TOTAL) for s in range(TOTAL + 3)]
    assert got == pytest.approx([expected(schedule, s, warmup) for s in range(TOTAL + 3)], abs=1e-12)
    if warmup:
        ramp = [0.25, 0.5, 0.75, 1.0]  # linear warm-up from 1/4 to 1 over 4 steps, times the schedule
        assert got[:4] == pytest.approx([w * expected(schedule, s, 0) for s, w in enumerate(ramp)])
    # LambdaLR applies the same factors to the optimiser, one per optimiser step
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.5)
    sched = build_scheduler(opt, cfg, STEPS_PER_EPOCH, TOTAL)
    lrs = []
    for _ in range(TOTAL):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.5 * f for f in got[:TOTAL]], abs=1e-12)


def test_cosine_follows_the_time_budget_when_it_runs_out_first() -> None:
    cfg = OptimConfig(schedule="cosine")
    assert lr_factor(2, cfg, STEPS_PER_EPOCH, TOTAL, time_fraction=0.5) == pytest.approx(0.5)
    assert lr_factor(2, cfg, STEPS_PER_EPOCH, TOTAL, time_fraction=0.0) == pytest.approx(expected("cosine", 2, 0))
    assert lr_factor(2, cfg, STEPS_PER_EPOCH, TOTAL, time_fraction=2.0) == 0.0


def test_resume_under_warmup_and_cosine_continues_exactly(tmp_path: Path, make_config) -> None:
    """Stopped during warm-up (step 2 of 3, mid-epoch), resumed: the same losses and learning rates as one run."""
    sets = ["optim.schedule=cosine", "optim.warmup_steps=3", "optim.lr=0.002"]
    full = train(make_config([*sets, "train.out_dir=" + str(tmp_path / "full")])[0])
    assert full.status == "finished" and full.step == 8

    def interrupt(step: int, loss: float) -> None:
        if step == 2:
            signal.raise_signal(signal.SIGTERM)

    cfg = make_config([*sets, "train.out_dir=" + str(tmp_path / "part")])[0]
    first = train(cfg, on_step=interrupt)
    assert first.status == "interrupted" and first.step == 2
    rest = train(cfg, resume=first.last_checkpoint)
    assert rest.step == 8 and first.losses + rest.losses == full.losses

    def lrs(run: str) -> list[float]:
        lines = (tmp_path / run / "metrics.jsonl").read_text().splitlines()
        return [r["lr"] for r in map(json.loads, lines) if "lr" in r]

    assert lrs("part") == lrs("full")
    # and they are the warm-up-then-cosine factors of the 8 steps, not a constant rate
    factors = [lr_factor(s, cfg.optim, 4, 8) for s in range(8)]
    assert lrs("full") == pytest.approx([0.002 * f for f in factors])
    assert len(set(lrs("full"))) == 8


@pytest.mark.parametrize(
    ("name", "kernel"), [("adam", "fused"), ("adamw", "fused"), ("sgd", "fused"), ("rmsprop", "foreach")]
)
def test_optimisers_use_torch_s_multi_tensor_kernels(name: str, kernel: str) -> None:
    """One pass over all parameters (fused, or foreach for RMSprop, which has no fused kernel) rather than
    torch's per-parameter loop, and the same update: one step equals the loop's within float rounding."""
    from hourglass.training.optim import build_optimizer

    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(5, 3)), torch.nn.Parameter(torch.randn(7))]
    copies = [torch.nn.Parameter(p.detach().clone()) for p in params]
    cfg = OptimConfig(name=name, lr=0.1, momentum=0.9 if name in ("sgd", "rmsprop") else 0.0, weight_decay=1e-4)
    opt = build_optimizer(params, cfg)
    assert opt.defaults[kernel] is True
    loop = build_optimizer(copies, dataclasses.replace(cfg, fused=False))  # optim.fused: false
    assert loop.defaults["foreach"] is False and not loop.defaults.get("fused")  # torch's per-parameter loop
    for ps, o in ((params, opt), (copies, loop)):
        for p in ps:
            p.grad = torch.linspace(-1, 1, p.numel()).reshape(p.shape)
        o.step()
    for a, b in zip(params, copies, strict=True):
        torch.testing.assert_close(a, b)
