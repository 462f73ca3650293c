"""Training through the real loaders: exact resume, NaN stop, refusals, bad images, end-to-end files."""

from __future__ import annotations

import itertools
import json
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest

from hourglass.checkpoint.io import read_metadata
from hourglass.config import load_config
from hourglass.data import DataError
from hourglass.errors import CheckpointError, ConfigError, TrainingDiverged
from hourglass.training.loop import train
from lsp_files import people, write_lsp


def test_resume_after_sigterm_repeats_the_uninterrupted_losses(tmp_path: Path, make_config) -> None:
    """SIGTERM at step 3 saves a checkpoint; resuming gives the same 8 losses as one uninterrupted run.

    Data order (seed, epoch) and augmentation (seed, epoch, index) are functions of the step, and the
    optimiser state travels in ``last.state.pt``; the interruption falls mid-epoch (4 steps per epoch)."""
    full = train(make_config(["train.out_dir=" + str(tmp_path / "full")])[0])
    assert full.status == "finished" and full.step == 8

    def interrupt(step: int, loss: float) -> None:
        if step == 3:
            signal.raise_signal(signal.SIGTERM)

    cfg = make_config(["train.out_dir=" + str(tmp_path / "part")])[0]
    first = train(cfg, on_step=interrupt)
    assert first.status == "interrupted" and first.step == 3
    assert read_metadata(first.last_checkpoint)["step"] == 3
    log = tmp_path / "part" / "metrics.jsonl"
    with log.open("a") as f:  # as if the process had died after logging step 4, past its checkpoint
        f.write(json.dumps({"step": 4, "epoch": 1, "loss": 1.0, "lr": 0.0, "samples_per_s": 1.0}) + "\n")
    rest = train(cfg, resume=first.last_checkpoint)
    assert rest.step == 8
    assert first.losses + rest.losses == full.losses  # bit-identical on the same machine and settings
    assert len(set(full.losses)) == 8  # the losses do change from step to step

    def logged(run: str) -> list[int]:
        return [json.loads(x)["step"] for x in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]

    assert logged("part") == list(range(1, 9))  # records past the checkpoint were dropped, then re-logged
    train(make_config(["train.out_dir=" + str(tmp_path / "full")])[0], overwrite=True)
    assert logged("full") == list(range(1, 9))  # a fresh run in the same folder starts a new log


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path: Path, make_config) -> None:
    good = train(make_config(["train.max_steps=4"])[0])
    before = good.last_checkpoint.read_bytes()
    state_before = (tmp_path / "run" / "last.state.pt").read_bytes()
    # SGD with an absurd learning rate: the weights overflow after the first step, the loss becomes inf/NaN
    cfg = make_config(["optim.name=sgd", "optim.lr=1e30"])[0]
    with pytest.raises(TrainingDiverged, match=r"loss is (nan|inf) at step \d+ .* was not overwritten"):
        train(cfg, overwrite=True)
    assert good.last_checkpoint.read_bytes() == before
    assert (tmp_path / "run" / "last.state.pt").read_bytes() == state_before


def test_resume_refuses_another_architecture(tmp_path: Path, make_config) -> None:
    done = train(make_config(["train.max_steps=1"])[0])
    wider = make_config(["model.kwargs.num_channels=32"])[0]
    with pytest.raises(CheckpointError, match=r"num_channels=16 but 32 was expected"):
        train(wider, resume=done.last_checkpoint)
    bigger = make_config(["data.input_size=[128, 128]", "data.heatmap_size=[32, 32]"])[0]
    with pytest.raises(CheckpointError, match=r"data.input_size=\[64, 64\] but this run has \[128, 128\]"):
        train(bigger, resume=done.last_checkpoint)


def test_settings_checked_before_training(tmp_path: Path, make_config) -> None:
    with pytest.raises(ConfigError, match=r"data.input_size=\[40, 40\] must be divisible by 16"):
        train(make_config(["data.input_size=[40, 40]", "data.heatmap_size=[10, 10]"])[0])
    with pytest.raises(ConfigError, match=r"train\.batch_size=64 is larger than the training set"):
        train(make_config(["train.batch_size=64"])[0])
    with pytest.raises(ConfigError, match=r"model\.kwargs\.num_joints=17 but the dataset.s skeleton has 16"):
        train(make_config(["model.kwargs.num_joints=17"])[0])
    with pytest.raises(ConfigError, match=r"train\.amp='fp16' needs CUDA"):
        train(make_config(["train.amp=fp16", "train.device=cpu"])[0])


def test_corrupt_image_mid_epoch(tmp_path: Path, make_config, synth_data: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(synth_data, data)
    bad = data / "train" / "images" / "000005.png"
    bad.write_bytes(b"not a png")
    cfg = make_config(data=data)[0]
    with pytest.raises(DataError, match=r"record 5: image .*000005\.png is unreadable"):
        train(cfg)
    assert not (tmp_path / "run" / "last.safetensors").exists()
    cfg.data.skip_bad = True
    with pytest.warns(UserWarning, match="skipping"):
        result = train(cfg)
    assert result.status == "finished" and result.skipped == 1


def test_end_to_end_writes_the_run_files(tmp_path: Path, make_config) -> None:
    sets = ["train.val_every=1", "train.tensorboard=true", "train.amp=bf16", "train.channels_last=true"]
    cfg = make_config([*sets, "model.grad_checkpointing=true"])[0]
    result = train(cfg)
    out = tmp_path / "run"
    assert result.best_checkpoint == out / "best.safetensors"
    meta = read_metadata(result.last_checkpoint)
    assert meta["step"] == 8 and meta["epoch"] == 2
    assert meta["data"]["skeleton"] == "mpii_16" and meta["data"]["input_size"] == [64, 64]
    assert meta["model"]["kwargs"]["num_joints"] == 16
    assert set(meta["metrics"]) == {"pckh@0.5", "pckh@0.1"}
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == list(range(1, 9))
    assert [r["step"] for r in records if "val/pckh@0.5" in r] == [4, 8]
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert load_config(out / "config.yaml").train.amp == "bf16"


class Crash(Exception):
    """Stands for a process dying between two steps: no graceful save."""


@pytest.mark.parametrize("step_mode", ["autocast", "bf16_weights"])
def test_resume_from_a_mid_epoch_checkpoint_repeats_the_uninterrupted_losses(
    tmp_path: Path, make_config, step_mode: str
) -> None:
    """``train.save_every_steps=3`` writes ``last`` at steps 3, 6 and 9 (mid-epoch: 4 steps per epoch) besides the
    epoch ends; a run that dies at step 8, before its epoch-end save, resumes from step 6, the middle of
    epoch 1, and continues with exactly the losses of an uninterrupted run (sampler position, augmentation,
    RNG, optimiser and schedule), in both step modes."""
    sets = ["train.epochs=3", "train.save_every_steps=3", "optim.schedule=cosine", "optim.warmup_steps=2"]
    if step_mode == "bf16_weights":
        sets += ["train.amp=bf16", "train.channels_last=true", "train.step=bf16_weights"]
    full = train(make_config([*sets, "train.out_dir=" + str(tmp_path / "full")])[0])
    assert full.status == "finished" and full.step == 12

    def die(step: int, loss: float) -> None:
        if step == 8:
            raise Crash

    cfg = make_config([*sets, "train.out_dir=" + str(tmp_path / "part")])[0]
    seen: list[float] = []
    with pytest.raises(Crash):
        train(cfg, on_step=lambda step, loss: (seen.append(loss), die(step, loss)))
    last = tmp_path / "part" / "last.safetensors"
    meta = read_metadata(last)
    assert (meta["step"], meta["epoch"]) == (6, 1)
    rest = train(cfg, resume=last)
    assert rest.step == 12 and len(rest.losses) == 6
    assert seen[:6] + rest.losses == full.losses
    assert len(set(full.losses)) == 12


def test_save_every_minutes_and_plain_progress_lines(tmp_path: Path, make_config, capsys) -> None:
    """Every step is past a tiny ``save_every_minutes``: ``last`` is then saved mid-epoch too. With
    progress on and stderr not a terminal (pytest captures it), a plain line is printed every log_every."""
    cfg = make_config(["train.save_every_minutes=1e-9", "train.progress=true", "train.log_every=2"])[0]
    saved: list[int] = []

    def note(step: int, loss: float) -> None:
        path = tmp_path / "run" / "last.safetensors"
        saved.append(read_metadata(path)["step"] if path.exists() else 0)

    train(cfg, on_step=note)
    assert saved == [0, 1, 2, 3, 4, 5, 6, 7]  # each step sees the save of the step before it
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("step ")]
    assert [x.split()[1] for x in lines] == ["2/8", "4/8", "6/8", "8/8"]
    assert all(k in lines[0] for k in ("epoch 0", "loss ", "lr ", "samples/s", "elapsed ", "left "))


def test_resume_refuses_a_state_of_another_step_and_another_epoch_length(tmp_path: Path, make_config) -> None:
    """The weights of step 2 with the resume state of step 1 (as an interrupted save leaves them) are refused,
    and so is a run whose steps per epoch differ from the checkpoint's (another batch size)."""
    one = train(make_config(["train.max_steps=1", "train.out_dir=" + str(tmp_path / "one")])[0])
    two = train(make_config(["train.max_steps=2", "train.out_dir=" + str(tmp_path / "two")])[0])
    state = tmp_path / "two" / "last.state.pt"
    kept = state.read_bytes()
    shutil.copyfile(tmp_path / "one" / "last.state.pt", state)
    cfg = make_config(["train.out_dir=" + str(tmp_path / "two")])[0]
    with pytest.raises(CheckpointError, match=r"resume state is for step 1 but the weights are from step 2"):
        train(cfg, resume=two.last_checkpoint)
    state.write_bytes(kept)
    halved = make_config(["train.batch_size=4", "train.out_dir=" + str(tmp_path / "two")])[0]
    with pytest.raises(CheckpointError, match=r"saved with 4 steps per epoch but this run has 8 .*batch_size"):
        train(halved, resume=two.last_checkpoint)
    assert read_metadata(one.last_checkpoint)["step"] == 1 and read_metadata(two.last_checkpoint)["step"] == 2


def test_best_is_written_only_when_the_score_improves(tmp_path: Path, make_config) -> None:
    """Validation after every epoch; ``best.safetensors`` holds the epoch of the highest score so far, and
    is left alone by an epoch that scores no higher (strictly)."""
    cfg = make_config(["train.epochs=6", "train.val_every=1", "optim.lr=0.01"])[0]
    best = tmp_path / "run" / "best.safetensors"
    seen: dict[int, int | None] = {}  # at the first step of each epoch: the step `best` was saved at

    def note(step: int, loss: float) -> None:
        if step % 4 == 1:
            seen[step // 4] = read_metadata(best)["step"] if best.exists() else None

    result = train(cfg, on_step=note)
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    scores = [(r["step"], r["val/pckh@0.5"]) for r in records if "val/pckh@0.5" in r]
    assert [s for s, _ in scores] == [4, 8, 12, 16, 20, 24]
    expected, top = {0: None}, None
    for step, score in scores:
        if top is None or score > top[1]:
            top = (step, score)
        expected[step // 4] = top[0]
    assert seen == {e: s for e, s in expected.items() if e < 6}
    assert read_metadata(result.best_checkpoint)["step"] == expected[6]
    assert read_metadata(result.best_checkpoint)["metrics"]["pckh@0.5"] == top[1]
    rises = [b > a for (_, a), (_, b) in itertools.pairwise(scores)]
    assert not all(rises), f"scores only rose, nothing tested: {scores}"


def test_time_limit_stops_anneals_and_a_resumed_run_gets_what_is_left(tmp_path: Path, make_config) -> None:
    """``train.time_limit_s`` stops a run of 50 epochs (200 steps) after 8 s of training; the cosine schedule
    anneals over the time: the learning rate falls at each of the few of the 200 steps made (how far depends
    on how the 8 s fell on the steps, noise on a busy machine, so the last value is not checked). A run
    stopped (SIGTERM) at step 1 and resumed gets the rest of the 8 s, not 8 s more.
    Loose bounds: on a busy 2-core machine a step of this tiny run took 0.2-8 s."""
    sets = ["train.epochs=50", "train.time_limit_s=8", "optim.schedule=cosine", "optim.lr=0.002"]
    cfg0 = make_config([*sets, "train.out_dir=" + str(tmp_path / "full")])[0]
    full = train(cfg0)
    assert full.status == "time_limit" and 2 <= full.step < 200
    assert 8.0 <= full.train_seconds < 8.0 + 4.0
    lrs = [json.loads(x)["lr"] for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert lrs[0] == pytest.approx(0.002)
    assert all(b < a for a, b in itertools.pairwise(lrs))

    def interrupt(step: int, loss: float) -> None:
        if step == 1:
            signal.raise_signal(signal.SIGTERM)

    cfg = make_config([*sets, "train.out_dir=" + str(tmp_path / "part")])[0]
    first = train(cfg, on_step=interrupt)
    assert first.status == "interrupted" and first.step == 1 and first.train_seconds < 8.0
    rest = train(cfg, resume=first.last_checkpoint)
    assert rest.status == "time_limit"
    assert 8.0 <= rest.train_seconds < 8.0 + 4.0  # the seconds before the resume count: no new budget


def test_an_lsp_file_trains_on_its_first_records_and_keeps_the_best_by_torso_pck(tmp_path: Path) -> None:
    """``data.holdout: 4`` of a 12-record ``joints.mat``: 8 records train (2 steps of 4 an epoch), the last 4 are the
    validation split, and ``train.best_metric: pck@0.2`` (LSP's torso PCK) chooses ``best.safetensors``."""
    ann = write_lsp(tmp_path / "lspet", people(12), np.ones((12, 14)))
    split = f"{{annotations: {ann}, images: {ann.parent / 'images'}}}"
    cfg = load_config(None, [
        "model.name=hg1", "model.kwargs={num_channels: 16, depth: 2}", "data.format=lsp", "data.holdout=4",
        f"data.train={split}", f"data.val={split}", "data.input_size=[64,64]", "data.heatmap_size=[16,16]",
        "data.num_workers=0", "train.epochs=2", "train.batch_size=4", "train.val_every=1", "train.amp=none",
        "train.best_metric=pck@0.2", f"train.out_dir={tmp_path / 'run'}", "train.progress=false",
        "train.tensorboard=false", "eval.batch_size=4",
    ])  # fmt: skip
    result = train(cfg)
    assert result.status == "finished" and result.step == 4
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "val/pck@0.2" in r] == [2, 4]
    assert "pck@0.2" in read_metadata(result.best_checkpoint)["metrics"]
