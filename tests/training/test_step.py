"""The training step: bf16 working copy with fp32 masters against autocast, and ``bench --train``."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from hourglass.cli import app
from hourglass.config import ConfigError, load_config
from hourglass.models import create_model
from hourglass.models.blocks import NORM_LAYERS
from hourglass.models.summary import count_macs
from hourglass.training.loop import train
from hourglass.training.step import TrainStep, resolve_step_mode
from hourglass.training.train_bench import benchmark_training, format_train_result, random_batch


def small_model(norm: str = "batch") -> torch.nn.Module:
    torch.manual_seed(0)
    net = create_model("hg2", num_channels=32, depth=2, num_joints=4, norm_layer=NORM_LAYERS[norm])
    return net.to(memory_format=torch.channels_last)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().float(), b.detach().float()
    return float((a - b).norm() / b.norm().clamp_min(1e-12))


@pytest.mark.parametrize("norm", ["batch", "group"])
def test_bf16_weights_forward_and_gradients_match_autocast(norm: str) -> None:
    """Same weights, same batch: outputs, loss and every parameter's gradient agree with the autocast step
    within bf16 rounding (bf16 has an 8-bit mantissa: ~0.4% per rounding, a few % after a deep network)."""
    batch = random_batch(4, (64, 64), 4, seed=3)
    ref = small_model(norm)
    fast = small_model(norm)
    cpu = torch.device("cpu")
    sgd = dict(lr=0.0)  # lr 0: the step leaves the weights, and we compare gradients
    ref_step = TrainStep(ref, torch.optim.SGD(ref.parameters(), **sgd), cpu, "bf16", True, "autocast")
    fast_step = TrainStep(fast, torch.optim.SGD(fast.parameters(), **sgd), cpu, "bf16", True, "bf16_weights")
    assert all(p.dtype == torch.bfloat16 for _, p in fast_step.pairs)
    assert all(p.dtype == torch.float32 for p in fast.parameters())  # the masters stay fp32

    x = batch["image"].contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", torch.bfloat16):
        out_ref = ref(x)
    out_fast = fast_step.work(x.to(torch.bfloat16))
    assert out_fast.dtype == torch.bfloat16 and out_fast.shape == out_ref.shape == (4, 2, 4, 16, 16)
    assert rel_err(out_fast, out_ref) < 0.03

    loss_ref, loss_fast = ref_step(batch), fast_step(batch)
    assert float(loss_fast) == pytest.approx(float(loss_ref), rel=0.02)
    checked = 0
    for (name, p_ref), p_fast in zip(ref.named_parameters(), fast.parameters(), strict=True):
        assert p_fast.grad is not None and p_fast.grad.dtype == torch.float32, name
        assert rel_err(p_fast.grad, p_ref.grad) < 0.05, name
        checked += 1
    assert checked == len(list(ref.parameters()))
    for b_ref, b_fast in zip(ref.buffers(), fast.buffers(), strict=True):  # running stats land in the master
        assert torch.allclose(b_fast.float(), b_ref.float(), rtol=0.02, atol=1e-3)


def test_bf16_weights_working_copy_follows_the_master_after_a_step() -> None:
    model = small_model()
    step = TrainStep(
        model, torch.optim.Adam(model.parameters(), lr=1e-2), torch.device("cpu"), "bf16", True, "bf16_weights"
    )
    before = [m.detach().clone() for m, _ in step.pairs]
    step(random_batch(2, (64, 64), 4))
    moved = [not torch.equal(b, m) for b, (m, _) in zip(before, step.pairs, strict=True)]
    assert sum(moved) > len(moved) // 2
    for master, work in step.pairs:
        assert torch.equal(work, master.to(torch.bfloat16)), "the working copy is the master rounded to bf16"


def test_auto_picks_bf16_weights_for_bf16_on_one_cpu_process() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_step_mode("auto", "bf16", cpu) == "bf16_weights"
    assert resolve_step_mode("auto", "none", cpu) == "autocast"
    assert resolve_step_mode("auto", "bf16", cpu, distributed=True) == "autocast"
    assert resolve_step_mode("auto", "bf16", cuda) == "autocast"
    assert resolve_step_mode("autocast", "bf16", cpu) == "autocast"


def test_bf16_weights_needs_bf16() -> None:
    model = small_model()
    with pytest.raises(ConfigError, match=r"train.step=bf16_weights needs train.amp=bf16, got train.amp='none'"):
        TrainStep(model, torch.optim.Adam(model.parameters()), torch.device("cpu"), "none", True, "bf16_weights")


def test_bf16_weights_training_follows_the_autocast_loss_curve(tmp_path, make_config) -> None:
    """Twelve steps of the real loop on the same data: per-step losses within a few % of autocast's (the
    curves are not bit-identical: rounding differs), and well below where they started."""
    common = ["train.amp=bf16", "train.channels_last=true", "train.epochs=3", "model.kwargs.num_channels=32"]
    ref = train(make_config([*common, "train.step=autocast", f"train.out_dir={tmp_path / 'ref'}"])[0])
    fast = train(make_config([*common, "train.step=bf16_weights", f"train.out_dir={tmp_path / 'fast'}"])[0])
    assert len(ref.losses) == len(fast.losses) == 12
    for i, (a, b) in enumerate(zip(ref.losses, fast.losses, strict=True)):
        assert b == pytest.approx(a, rel=0.05), f"step {i + 1}: {b} vs {a}"
    assert fast.losses[-1] < 0.7 * fast.losses[0]


def test_bench_train_times_the_configured_step() -> None:
    cfg = load_config(None, ["model.name=hg1", "model.kwargs.num_channels=16", "model.kwargs.depth=2"])
    r = benchmark_training(cfg, batch=2, input_size=(64, 64), iters=2, warmup=1, measure_peak=False)
    assert (r.step, r.amp, r.channels_last, r.optimizer) == ("bf16_weights", "bf16", True, "rmsprop")  # auto on CPU
    model = create_model("hg1", num_channels=16, depth=2, num_joints=16)
    assert r.train_gflop_per_step == pytest.approx(6 * count_macs(model, (3, 64, 64), batch=2) / 1e9)
    assert r.gflops == pytest.approx(r.train_gflop_per_step / (r.ms_per_step / 1e3))
    assert r.samples_per_s == pytest.approx(2 / (r.ms_per_step / 1e3))
    assert r.ms_p10 <= r.ms_per_step <= r.ms_p90 and r.peak_share == 0.0


def test_bench_train_input_size_is_the_recipes_unless_given() -> None:
    """The rule every bench follows (``CheckpointMeta.input_size_or``): the recipe's ``data.input_size``, else
    ``H W`` or ``3 H W`` as given; another channel count is refused in one line."""
    sets = ["model.name=hg1", "model.kwargs.num_channels=16", "model.kwargs.depth=2", "data.input_size=[48,32]"]
    cfg = load_config(None, sets)
    quick = {"batch": 1, "iters": 1, "warmup": 0, "measure_peak": False}
    assert benchmark_training(cfg, **quick).input_size == (48, 32)
    assert benchmark_training(cfg, input_size=(3, 32, 16), **quick).input_size == (32, 16)
    with pytest.raises(ConfigError, match="input size '1 32 32': C = 1 but the model takes 3 channels"):
        benchmark_training(cfg, input_size=(1, 32, 32), **quick)


def test_cli_bench_train_json() -> None:
    args = ["bench", "hg1", "--train", "--set", "num_channels=16", "--set", "depth=2", "--set", "optim.name=adam"]
    args += ["--set", "train.step=bf16_weights", "--batch", "2", "--input-size", "64", "64", "--iters", "2", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    (row,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert row["kwargs"] == {"num_channels": 16, "depth": 2}
    assert (row["step"], row["optimizer"], row["batch"], row["input_size"]) == ("bf16_weights", "adam", 2, [64, 64])
    assert row["samples_per_s"] > 0 and row["peak_gflops"] > 0 and 0 < row["peak_share"]
    bad = CliRunner().invoke(app, ["bench", "hg1", "--train", "--set", "train.step=fast"])
    assert bad.exit_code == 1 and "train.step must be one of 'auto', 'autocast', 'bf16_weights'" in bad.output


def test_bench_train_with_local_processes() -> None:
    """``train.procs=2``: the step as two DDP processes run it, each on half the batch; CPU time of both."""
    sets = ["model.name=hg1", "model.kwargs.num_channels=16", "model.kwargs.depth=2", "train.procs=2"]
    r = benchmark_training(load_config(None, sets), batch=4, input_size=(64, 64), iters=3, warmup=1, measure_peak=False)
    assert (r.procs, r.threads, r.batch, r.step) == (2, 1, 4, "autocast")  # auto: no bf16_weights under DDP
    model = create_model("hg1", num_channels=16, depth=2, num_joints=16)
    assert r.train_gflop_per_step == pytest.approx(6 * count_macs(model, (3, 64, 64), batch=4) / 1e9)
    assert r.samples_per_s == pytest.approx(4 / (r.ms_per_step / 1e3))
    assert "2 processes (DDP)" in format_train_result(r) and "2 processes x 1 threads" in format_train_result(r)


def test_grad_clip_bounds_the_global_gradient_norm() -> None:
    """With SGD at lr 1 the update is minus the gradient: clipped to norm 1e-3, the weights move by exactly
    that much in all; without the clip, by far more."""
    batch = {"image": torch.rand(2, 3, 64, 64), "heatmaps": torch.rand(2, 4, 16, 16), "weights": torch.ones(2, 4)}
    moved = {}
    for clip in (None, 1e-3):
        torch.manual_seed(0)
        net = create_model("hg1", num_channels=16, depth=2, num_joints=4)
        before = [p.detach().clone() for p in net.parameters()]
        step = TrainStep(net, torch.optim.SGD(net.parameters(), lr=1.0), torch.device("cpu"), "none", False,
                         grad_clip=clip)  # fmt: skip
        step(batch)
        moved[clip] = float(
            torch.cat([(p.detach() - b).flatten() for p, b in zip(net.parameters(), before, strict=True)]).norm()
        )
    assert moved[1e-3] == pytest.approx(1e-3, rel=1e-3)
    assert moved[None] > 10 * 1e-3
