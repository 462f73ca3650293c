"""bf16 and int8 runtimes compute at that precision, not merely close to fp32.

Closeness to fp32 (``test_runtimes.py``) would also hold for a runtime that silently ran fp32. Here the
evidence is what executes: the dtype of every convolution's output in eager PyTorch, and the precision
OpenVINO's CPU plugin chose for every convolution of the compiled graph (its runtime model).

The OpenVINO checks run the real runtime in a child process. Run in the suite's process (fp32 and bf16
compilations, then reading their compiled graphs with ``get_runtime_model``), they were followed, tests
later, by a segmentation fault in unrelated code: ``torch.compile`` in ``test_runtimes.py`` when this file
ran first, a checkpoint test when it ran after (5 of 5 runs of the suite or of ``tests/benchmarks tests/data
tests/deploy``, since moved to ``tests/inference``; torch 2.13.0, OpenVINO 2026.4.1, AMD EPYC), while the
same runs without this file passed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from hourglass.device import usable_cores
from hourglass.inference.export import prepare_for_inference, write_onnx
from hourglass.inference.runtimes import create_runtime

INPUT = (32, 32)
SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).random((2, 3, *INPUT), dtype=np.float32)


@pytest.mark.parametrize(("precision", "dtype"), [("fp32", torch.float32), ("bf16", torch.bfloat16)])
def test_eager_convolutions_run_at_the_precision(tiny, images, precision, dtype) -> None:
    rt = create_runtime(tiny, "eager", precision, input_size=INPUT)
    seen: list[torch.dtype] = []
    convs = [m for m in rt.net.modules() if isinstance(m, nn.Conv2d)]
    hooks = [m.register_forward_hook(lambda _m, _i, out: seen.append(out.dtype)) for m in convs]
    try:
        out = rt(images)
    finally:
        for h in hooks:
            h.remove()
    assert len(seen) == len(convs) > 0 and set(seen) == {dtype}
    assert out.dtype == np.float32  # heatmaps come back as float32 whatever the compute precision


PROBE = """
import json, sys
from collections import Counter
import numpy as np
from hourglass.extras import openvino_core
from hourglass.inference.runtimes import OpenVinoRuntime, calibration_batches

onnx_path, precision = sys.argv[1], sys.argv[2]
size = (32, 32)
calibration = None
if precision == "int8":
    calibration = calibration_batches(np.random.default_rng(1).random((8, 3, *size), dtype=np.float32))
rt = OpenVinoRuntime(onnx_path, precision, size, 3, calibration)
batch = np.random.default_rng(0).random((2, 3, *size), dtype=np.float32)
rt(batch)  # the throughput model (on 2 cores or more)
rt(batch[:1])  # the latency model
models = [r.get_compiled_model() for r in rt.requests.values()]
if rt.queue is not None:
    models.append(rt.queue[0].get_compiled_model())
compiled = []
for model in models:
    infos = [op.get_rt_info() for op in model.get_runtime_model().get_ordered_ops()]
    convolutions = [i for i in infos if i["layerType"].astype(str) == "Convolution"]
    compiled.append(Counter(i["runtimePrecision"].astype(str) for i in convolutions))
types = Counter(op.get_type_name() for op in rt.model.get_ordered_ops())
print(json.dumps({
    "capabilities": openvino_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"),
    "compiled_convolutions": compiled,
    "throughput": rt.queue is not None,
    "convolutions": types["Convolution"],
    "fake_quantize": types["FakeQuantize"],
}))
"""


def probe(onnx_path: Path, precision: str) -> dict[str, Any]:
    """What an :class:`OpenVinoRuntime` at ``precision`` compiled, from a child process (see the module doc)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(onnx_path), precision], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def onnx_path(tiny, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folded ONNX export the OpenVINO runtimes read (exported once for the three precisions)."""
    path = tmp_path_factory.mktemp("precision") / "tiny.onnx"
    write_onnx(prepare_for_inference(tiny), torch.rand(2, 3, *INPUT), path)
    return path


@pytest.mark.parametrize(("precision", "runs_at"), [("fp32", {"f32"}), ("bf16", {"bf16"}), ("int8", {"u8", "i8"})])
def test_openvino_compiles_every_convolution_at_the_precision(tiny, onnx_path, precision, runs_at) -> None:
    got = probe(onnx_path, precision)
    needs = {"fp32": "FP32", "bf16": "BF16", "int8": "INT8"}[precision]
    if needs not in got["capabilities"]:  # the plugin would fall back to f32; both CI machines have both
        message = f"this CPU has no {precision} support in OpenVINO ({got['capabilities']})"
        if os.environ.get("CI"):
            pytest.fail(message + " (the CI machines have it)")
        pytest.skip(message)
    convs = sum(isinstance(m, nn.Conv2d) for m in tiny.modules())
    assert got["convolutions"] == convs  # the exported graph has every convolution (BatchNorms folded in)
    # every compiled model: latency ones, and the throughput one where the CPU has two cores or more
    assert got["throughput"] == (usable_cores() > 1) and len(got["compiled_convolutions"]) == 2
    for compiled in got["compiled_convolutions"]:
        assert set(compiled) <= runs_at and sum(compiled.values()) == convs
    if precision == "int8":
        assert got["fake_quantize"] >= convs  # NNCF put quantisers on the convolutions' inputs and weights
    else:
        assert got["fake_quantize"] == 0
