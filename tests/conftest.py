"""Fixtures shared by every test folder (pytest finds them; nothing imports this module by name).

Shared data beside the repository; random BatchNorm statistics (converter, folding and export tests); and
for training, evaluation and CLI tests: a tiny synthetic dataset written by the real writer, and tiny configs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

# ``shared/data`` beside the repository (``/work/main`` -> ``/work/shared/data``); HOURGLASS_SHARED_DATA
# names it where the checkout sits elsewhere (a git worktree, another machine).
from hourglass.checkpoint.io import save_checkpoint
from hourglass.models import StackedHourglass, create_model
from hourglass.synthetic import write_synthetic

SHARED_DATA = Path(
    os.environ.get("HOURGLASS_SHARED_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data"
)


# The photos of shared/data/real-samples (file stems), as its annotation files list them.
COCO_PHOTOS = ("000000000785", "000000040083", "000000196141", "000000197388")
MPII_PHOTOS = ("004645041", "005808361", "051423444", "052475643", "060754485")


# The files of shared/models.
DETECTOR_MMDEPLOY = "yolox_nano_8xb8-300e_humanart-40f6f0d0.onnx"
DETECTOR_MEGVII = "yolox_nano.onnx"
LSPET_MODEL = "lspet-hg1-128-cpu.safetensors"


def _shared(path: Path, required: tuple[str, ...], what: str) -> Path:
    """``path`` when it holds ``required``: skipped locally when absent, a failure under CI.

    CI has the files (the brief), so a CI run without them must not pass quietly.
    """
    missing = [name for name in required if not (path / name).is_file()]
    if missing:
        message = f"{what} missing: {', '.join(missing)} in {path} (set HOURGLASS_SHARED_DATA to the shared data)"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must have it)")
        pytest.skip(message)
    return path


def randomise_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm random affine parameters and running statistics, so folding is not a no-op."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.2)
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.3)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
    return model.eval()


@pytest.fixture(scope="session", autouse=True)
def hourglass_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``$HOURGLASS_HOME`` for the session: a temporary folder, so caches (OpenVINO's exports and compiled models)
    never land in the user's ``~/.cache/hourglass``."""
    home = tmp_path_factory.mktemp("hourglass-home")
    previous = os.environ.get("HOURGLASS_HOME")
    os.environ["HOURGLASS_HOME"] = str(home)
    yield home
    if previous is None:
        os.environ.pop("HOURGLASS_HOME", None)
    else:
        os.environ["HOURGLASS_HOME"] = previous


@pytest.fixture(scope="session")
def randomise():
    """:func:`randomise_batchnorm`, as a fixture (test modules here are not importable packages)."""
    return randomise_batchnorm


@pytest.fixture(scope="session")
def mpii_eval_dir() -> Path:
    """``shared/data/mpii-eval``: the official MPII validation ground truth and pose-hg-train's ``valid.h5``."""
    return _shared(SHARED_DATA / "mpii-eval", ("mpii_val_gt.mat", "valid.h5"), "MPII evaluation data")


@pytest.fixture(scope="session")
def real_samples_dir() -> Path:
    """``shared/data/real-samples``: real photos with COCO and MPII annotations (its README gives provenance).

    Every photo the tests read is required, not only the annotations: a folder without its JPEGs would
    otherwise let the photo tests pass over an empty list.
    """
    annotations = ("coco/test_coco.json", "coco/test_coco_det_AP_H_56.json", "mpii/test_mpii.json")
    photos = tuple(f"coco/{n}.jpg" for n in COCO_PHOTOS) + tuple(f"mpii/{n}.jpg" for n in MPII_PHOTOS)
    required = (*annotations, "mpii/gt_valid_first5.mat", *photos)
    return _shared(SHARED_DATA / "real-samples", required, "real sample photos")


@pytest.fixture(scope="session")
def lspet_dir() -> Path:
    """``shared/data/lspet``: LSP-extended's ``joints.mat`` ``(14, 3, 9000)`` and images ``im00001.jpg`` ...
    ``im09000.jpg`` (the release's last 1,000 are left out on purpose; its README)."""
    required = ("README.md", "joints.mat", "images/im00001.jpg", "images/im08001.jpg", "images/im09000.jpg")
    return _shared(SHARED_DATA / "lspet", required, "LSPet data")


@pytest.fixture(scope="session")
def shared_models() -> Path:
    """``shared/models`` (beside ``shared/data``): the real person detectors (mmpose's YOLOX-nano for people in
    mmdeploy's format, Megvii's own YOLOX-nano export) and the real-people model; its README gives provenance."""
    required = (DETECTOR_MMDEPLOY, DETECTOR_MEGVII, LSPET_MODEL)
    return _shared(SHARED_DATA.parent / "models", required, "real pretrained models")


@pytest.fixture(scope="session")
def lspet_model(shared_models: Path) -> Path:
    """``shared/models/lspet-hg1-128-cpu.safetensors``: hg1, 128 channels, 128x128 input, the 14 LSP joints, trained
    on LSPet images 1-9,000 (im00001-im09000) converted to COCO (its README and recipe beside it)."""
    return shared_models / LSPET_MODEL


@pytest.fixture
def one_torch_thread():
    """torch on one thread during the test, as it was afterwards. For tests that run a small model for many
    steps: on a machine shared with other jobs a second thread only spins (a step of a 32-channel hg1 took
    3.2 s with two threads and 0.18 s with one under a load average of 9)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def small_disk(tmp_path: Path):
    """A :class:`small_disk.SmallDisk` in ``tmp_path``: a tmpfs mounted for the test where that is permitted,
    else an ordinary folder whose commands run under a file-size limit; unmounted afterwards."""
    from small_disk import SmallDisk

    disk = SmallDisk(tmp_path)
    yield disk
    disk.close()


@pytest.fixture(scope="session")
def synth_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``train/`` (32 figures, seed 1) and ``val/`` (8 figures, seed 2) in MPII format, 64x64 images."""
    root = tmp_path_factory.mktemp("synth")
    write_synthetic(root / "train", 32, format="mpii", seed=1, image_size=(64, 64))
    write_synthetic(root / "val", 8, format="mpii", seed=2, image_size=(64, 64))
    return root


def _run_synth(*args: str) -> None:
    from typer.testing import CliRunner

    from hourglass.cli import app

    result = CliRunner().invoke(app, ["synth", *args])
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="session")
def synth_coco(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 synthetic figures (seed 7) in COCO format, written once per session by the real ``hourglass synth``."""
    out = tmp_path_factory.mktemp("synth") / "coco"
    _run_synth("--out", str(out), "--num", "12", "--format", "coco", "--seed", "7")
    return out


@pytest.fixture(scope="session")
def synth_mpii(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same 12 figures in MPII format (``annotations.json``, ``gt_valid.mat``), by ``hourglass synth``."""
    out = tmp_path_factory.mktemp("synth") / "mpii"
    _run_synth("--out", str(out), "--num", "12", "--format", "mpii", "--seed", "7")
    return out


def tiny_config(data: Path, out: Path, **sections: dict) -> dict:
    """A config dict for a 1-stack, 16-channel, depth-2 hourglass at 64x64 on ``data``; ``sections`` override."""
    cfg = {
        "model": {"name": "hg1", "kwargs": {"num_channels": 16, "depth": 2}},
        "data": {
            "format": "mpii",
            "train": {"annotations": str(data / "train" / "annotations.json"), "images": str(data / "train")},
            "val": {"annotations": str(data / "val" / "annotations.json"), "images": str(data / "val")},
            "input_size": [64, 64],
            "heatmap_size": [16, 16],
            "sigma": 1.0,
            "num_workers": 0,
        },
        "optim": {"name": "adam", "lr": 1e-3, "schedule": "constant"},
        "train": {
            "epochs": 2,
            "batch_size": 8,
            "amp": "none",
            "channels_last": False,
            "out_dir": str(out),
            "log_every": 1,
            "val_every": 0,
            "progress": False,
            "tensorboard": False,
        },
        "eval": {"batch_size": 8},
    }
    for name, values in sections.items():
        cfg[name].update(values)
    return cfg


def write_config(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture
def make_config(tmp_path: Path, synth_data: Path):
    """``make_config(overrides, data=None, **sections)`` -> (Config, YAML path) of a tiny run in ``tmp_path/run``."""
    from hourglass.config import load_config

    counter = iter(range(1000))

    def make(overrides: list[str] | None = None, data: Path | None = None, **sections: dict):
        cfg = tiny_config(data or synth_data, tmp_path / "run", **sections)
        path = write_config(tmp_path / f"cfg{next(counter)}.yaml", cfg)
        return load_config(path, overrides), path

    return make


# --- a network, a checkpoint and photos for the tests of inference, people, video and predict ------------------

TINY_INPUT = (32, 32)
PREDICT_INPUT = (128, 64)  # (H, W) of the predict checkpoint: a non-square input checks the aspect-ratio handling


@pytest.fixture(scope="session")
def tiny(randomise) -> StackedHourglass:
    """2 stacks, 16 channels, depth 2, 4 joints: input (B, 3, 32, 32) -> (B, 2, 4, 8, 8)."""
    torch.manual_seed(0)
    return randomise(StackedHourglass(num_stacks=2, num_joints=4, num_channels=16, depth=2))


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small untrained hg1 (16 MPII joints, input :data:`PREDICT_INPUT`) saved the way training saves them."""
    torch.manual_seed(0)
    kwargs = {"num_joints": 16, "num_channels": 32}
    model = create_model("hg1", **kwargs)
    meta = {
        "model": {"name": "hg1", "kwargs": kwargs},
        "data": {"input_size": list(PREDICT_INPUT), "heatmap_size": [32, 16], "sigma": 2.0, "skeleton": "mpii_16"},
        "step": 0,
        "epoch": 0,
        "metrics": {},
    }
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "hg1.safetensors", model, meta)


@pytest.fixture(scope="session")
def mpii_photos(real_samples_dir: Path) -> list[Path]:
    """The real MPII photos (JPEG) of ``shared/data/real-samples/mpii``, sorted; ``test_mpii.json`` is beside them."""
    return sorted((real_samples_dir / "mpii").glob("*.jpg"))
