"""Optional dependencies: each feature whose extra is missing says which extra to install, in one line.

A package is made absent the way Python itself models it: ``sys.modules[name] = None`` makes ``import
name`` raise ``ModuleNotFoundError`` (with ``err.name == name``), as it would without the package.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tomllib
import torch
from rich.console import Console
from typer.testing import CliRunner

from hourglass.checkpoint.io import save_checkpoint
from hourglass.cli import app
from hourglass.extras import DISTRIBUTION, EXTRAS, MissingExtraError, extra_installed, require_extra
from hourglass.inference.runtimes import available_backends, quantize_int8
from hourglass.models import create_model
from hourglass.training.runlog import RunLog

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def hide(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Make ``modules`` (top-level names) and their submodules look uninstalled for this test.

    Submodules already imported by earlier tests are hidden too, or ``import pkg.sub`` would still find them.
    """
    for name in modules:
        for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")] or [name]:
            monkeypatch.setitem(sys.modules, loaded, None)


def one_line_naming(text: str, extra: str) -> bool:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return len(lines) == 1 and f"pip install '{DISTRIBUTION}[{extra}]'" in lines[0] and "Traceback" not in text


def test_a_missing_module_names_its_extra(monkeypatch) -> None:
    hide(monkeypatch, "onnxruntime", "pycocotools")
    with pytest.raises(MissingExtraError) as err:
        require_extra("onnxruntime", "onnx")
    assert isinstance(err.value, ImportError) and err.value.name == "onnxruntime"
    assert one_line_naming(str(err.value), "onnx")
    with pytest.raises(MissingExtraError, match=re.escape("[coco]")):
        require_extra("pycocotools.cocoeval", "coco")  # a submodule of a missing package


def test_a_broken_installed_package_is_not_blamed_on_the_extra(monkeypatch, tmp_path: Path) -> None:
    package = tmp_path / "brokenpkg"
    package.mkdir()
    (package / "__init__.py").write_text("import hourglass_no_such_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError) as err:
        require_extra("brokenpkg", "onnx")
    assert not isinstance(err.value, MissingExtraError) and err.value.name == "hourglass_no_such_dependency"


def test_extras_table_matches_pyproject() -> None:
    optional = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]

    def names(requirements: list[str]) -> set[str]:
        return {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].lower().replace("-", "_") for r in requirements}

    for extra, modules in EXTRAS.items():  # each distribution's import name is its own name ('-' read as '_')
        assert names(optional[extra]) - {DISTRIBUTION.replace("-", "_")} == set(modules), extra
    assert set(re.findall(r"\w+", optional["all"][0].split("[", 1)[1])) == set(EXTRAS)
    core = names(tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"])
    assert not core & {m for ms in EXTRAS.values() for m in ms}


def test_every_module_imports_without_any_extra() -> None:
    """Optional packages are imported where used, never at import time of any hourglass module."""
    blocked = sorted({m for modules in EXTRAS.values() for m in modules})
    code = (
        "import importlib, pkgutil, sys\n"
        f"for name in {blocked!r}: sys.modules[name] = None\n"
        "import hourglass\n"
        "mods = [m.name for m in pkgutil.walk_packages(hourglass.__path__, 'hourglass.')]\n"
        "for m in mods: m.endswith('__main__') or importlib.import_module(m)\n"
        "print(len(mods))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 30


def test_available_backends_follow_the_installed_extras(monkeypatch) -> None:
    assert extra_installed("onnx") and extra_installed("openvino")  # the dev install has [all]
    assert set(available_backends("fp32")) == {"eager", "compile", "onnxruntime", "openvino"}
    hide(monkeypatch, "openvino")
    assert not extra_installed("openvino")
    assert available_backends("fp32") == ["eager", "compile", "onnxruntime"]
    assert available_backends("int8") == []


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    kwargs = {"num_channels": 16, "depth": 2}
    meta = {"model": {"name": "hg1", "kwargs": kwargs}, "data": {"input_size": [32, 32]}}
    path = tmp_path_factory.mktemp("extras") / "tiny.safetensors"
    return save_checkpoint(path, create_model("hg1", **kwargs), meta)


@pytest.mark.parametrize(
    ("hidden", "extra", "args"),
    [
        ("onnxscript", "onnx", ["export", "--format", "onnx", "--out", "{tmp}/x.onnx"]),
        ("onnxruntime", "onnx", ["export", "--format", "onnx", "--out", "{tmp}/x.onnx"]),
        ("openvino", "openvino", ["export", "--format", "openvino", "--out", "{tmp}/x.xml"]),
        ("onnxruntime", "onnx", ["bench", "--backend", "onnxruntime", "--iters", "1"]),
        ("openvino", "openvino", ["bench", "--backend", "openvino", "--iters", "1"]),
        ("openvino", "openvino", ["bench", "--backend", "best", "--precision", "int8", "--iters", "1"]),
    ],
)
def test_cli_says_which_extra_to_install(monkeypatch, tmp_path, checkpoint, hidden, extra, args) -> None:
    hide(monkeypatch, hidden)
    args = [a.format(tmp=tmp_path) for a in args]
    args = [*args, "--checkpoint", str(checkpoint)] if args[0] == "export" else [args[0], str(checkpoint), *args[1:]]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    assert one_line_naming(result.stderr, extra), result.stderr
    assert result.stdout == "" and list(tmp_path.iterdir()) == []  # nothing half-written


def test_torch7_conversion_needs_the_torch7_extra(monkeypatch, tmp_path: Path) -> None:
    hide(monkeypatch, "torchfile")
    (tmp_path / "model.t7").write_bytes(b"\x04\x00\x00\x00")  # not a PyTorch file: read as Torch7
    result = CliRunner().invoke(app, ["convert", str(tmp_path / "model.t7"), "--out", f"{tmp_path}/x.safetensors"])
    assert result.exit_code == 1, result.output
    assert one_line_naming(result.stderr, "torch7"), result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.t7"]


def test_coco_features_need_the_coco_extra(monkeypatch, tmp_path: Path) -> None:
    from hourglass.data.coco import load_coco
    from hourglass.metrics.coco import coco_keypoint_eval
    from hourglass.synthetic import write_synthetic

    data = write_synthetic(tmp_path / "coco", 2, format="coco", seed=0, image_size=(64, 64))
    hide(monkeypatch, "pycocotools")
    with pytest.raises(MissingExtraError, match=re.escape("[coco]")):
        load_coco(data / "annotations.json")
    with pytest.raises(MissingExtraError, match=re.escape("[coco]")):
        coco_keypoint_eval({"images": [], "annotations": [], "categories": []}, [], np.ones(17))


def test_int8_quantisation_needs_the_openvino_extra(monkeypatch) -> None:
    hide(monkeypatch, "nncf")
    with pytest.raises(MissingExtraError, match=re.escape("[openvino]")):
        quantize_int8(object(), [np.zeros((1, 3, 8, 8), np.float32)])


def test_tensorboard_on_when_installed_and_one_line_when_not(monkeypatch, tmp_path: Path) -> None:
    out = io.StringIO()
    log = RunLog(tmp_path / "with", progress=False, console=Console(file=out))
    log.scalars(1, 0, {"x": 1.0})
    log.close()
    assert list((tmp_path / "with" / "tensorboard").glob("events.out.tfevents.*")) and out.getvalue() == ""

    hide(monkeypatch, "tensorboard")
    log = RunLog(tmp_path / "without", progress=False, console=Console(file=out, width=200))
    log.scalars(1, 0, {"x": 1.0})
    log.close()
    assert not (tmp_path / "without" / "tensorboard").exists()
    assert one_line_naming(out.getvalue(), "tensorboard"), out.getvalue()
    assert (tmp_path / "without" / "metrics.jsonl").read_text().count("val/x") == 1  # the rest of the log goes on


SIGNAL_STACK_PROBE = """
import ctypes, gc, json, signal, subprocess, sys

import numpy as np

from hourglass.people.detect import open_detector


class Stack(ctypes.Structure):
    _fields_ = [("sp", ctypes.c_void_p), ("flags", ctypes.c_int), ("size", ctypes.c_size_t)]


def stack():
    s = Stack()
    ctypes.CDLL(None).sigaltstack(None, ctypes.byref(s))
    mapped = False
    for line in open("/proc/self/maps"):
        low, high = (int(x, 16) for x in line.split()[0].split("-"))
        mapped = mapped or low <= (s.sp or 0) < high
    return {"disabled": bool(s.flags & 2), "size": s.size, "mapped": mapped}


before = stack()
first = open_detector(sys.argv[1], runtime="openvino")
second = open_detector(sys.argv[1], runtime="openvino")
for detector in (first, second):
    detector(np.zeros((240, 320, 3), np.uint8))
del first  # dropped in the order they were made: OpenVINO's own Cores would leave a dangling stack here
gc.collect()
del second
gc.collect()
after = stack()
signal.signal(signal.SIGCHLD, lambda *args: None)  # as torch's DataLoader leaves it; CPython uses SA_ONSTACK
subprocess.run(["true"], check=True)
print(json.dumps({"before": before, "after": after}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sigaltstack and /proc/self/maps are Linux's")
def test_openvino_leaves_the_threads_signal_stack_as_it_was(shared_models: Path) -> None:
    """Two detectors on OpenVINO, dropped in the order they were made, then a signal with a Python handler: the
    main thread's alternate signal stack is the one it had (none), and the process lives. With a Core per
    detector (before :func:`hourglass.extras.openvino_core`) the stack pointed at unmapped memory here and the
    child died of SIGSEGV (exit -11) or wrote the signal frame over whatever was mapped there since."""
    pytest.importorskip("openvino")
    detector = shared_models / "yolox_nano_8xb8-300e_humanart-40f6f0d0.onnx"
    run = subprocess.run(
        [sys.executable, "-c", SIGNAL_STACK_PROBE, str(detector)], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, f"exit {run.returncode}: {run.stderr[-2000:]}"
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["before"]["disabled"], seen
    assert seen["after"] == seen["before"], seen


def test_openvino_core_is_one_for_the_process() -> None:
    """Every thread gets the same Core, made once (a second Core would bring a second signal stack)."""
    pytest.importorskip("openvino")
    from concurrent.futures import ThreadPoolExecutor

    from hourglass.extras import openvino_core

    with ThreadPoolExecutor(4) as pool:
        cores = list(pool.map(lambda _: openvino_core(), range(8)))
    assert all(core is cores[0] for core in cores) and cores[0] is openvino_core()
