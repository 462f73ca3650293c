"""bf16 and int8 runtimes compute at that precision, not merely close to fp32.

Closeness to fp32 (``test_runtimes.py``) would also hold for a runtime that silently ran fp32. Here the
evidence is what executes: the dtype of every convolution's output in eager PyTorch, and the precision
OpenVINO's CPU plugin chose for every convolution of the compiled graph (its runtime model).

This file sorts after ``test_runtimes.py`` on purpose. Run before it, in the whole suite, the
``torch.compile`` case there died with a segmentation fault, every time (3 of 3 runs of ``tests/benchmarks
tests/data tests/deploy``; also without the int8 test; torch 2.13.0, OpenVINO 2026.4.1, AMD EPYC), while
``tests/deploy`` alone, or ``tests/data`` with these two files, passed: an OpenVINO bf16 compilation
followed by ``torch.compile`` in one process, with some earlier state. Not understood; reported.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from hourglass.deploy.export import prepare_for_inference, write_onnx
from hourglass.deploy.runtimes import OpenVinoRuntime, calibration_batches, create_runtime

INPUT = (32, 32)


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


def compiled_precisions(rt: OpenVinoRuntime) -> Counter[tuple[str, str]]:
    """``(layer type, runtime precision)`` counts of the graph the CPU plugin compiled for the last call."""
    (request,) = rt.requests.values()
    ops = request.get_compiled_model().get_runtime_model().get_ordered_ops()
    return Counter(
        (op.get_rt_info()["layerType"].astype(str), op.get_rt_info()["runtimePrecision"].astype(str)) for op in ops
    )


def conv_precisions(counts: Counter[tuple[str, str]]) -> set[str]:
    return {precision for (layer, precision) in counts if layer == "Convolution"}


@pytest.fixture(scope="module")
def onnx_path(tiny, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folded ONNX export the OpenVINO runtimes read (exported once for the three precisions)."""
    path = tmp_path_factory.mktemp("precision") / "tiny.onnx"
    write_onnx(prepare_for_inference(tiny), torch.rand(2, 3, *INPUT), path)
    return path


@pytest.fixture(scope="module")
def cpu_capabilities() -> list[str]:
    import openvino as ov

    return ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def test_openvino_fp32_and_bf16_compile_to_that_precision(tiny, onnx_path, images, cpu_capabilities) -> None:
    fp32 = OpenVinoRuntime(onnx_path, "fp32", INPUT, 3)
    fp32(images)
    assert conv_precisions(compiled_precisions(fp32)) == {"f32"}
    if "BF16" not in cpu_capabilities:  # the plugin would fall back to f32; both CI machines have bf16
        pytest.skip(f"this CPU has no bf16 support in OpenVINO ({cpu_capabilities})")
    bf16 = OpenVinoRuntime(onnx_path, "bf16", INPUT, 3)
    bf16(images)
    counts = compiled_precisions(bf16)
    assert conv_precisions(counts) == {"bf16"}
    assert sum(n for (layer, _), n in counts.items() if layer == "Convolution") == sum(
        isinstance(m, nn.Conv2d) for m in tiny.modules()
    )  # every convolution of the model (BatchNorm folded into them) is there, each in bf16


def test_openvino_int8_is_quantised_and_runs_integer_convolutions(onnx_path, images, cpu_capabilities) -> None:
    calibration = calibration_batches(np.random.default_rng(1).random((8, 3, *INPUT), dtype=np.float32))
    rt = OpenVinoRuntime(onnx_path, "int8", INPUT, 3, calibration)
    fake_quantize = sum(op.get_type_name() == "FakeQuantize" for op in rt.model.get_ordered_ops())
    convs = sum(op.get_type_name() == "Convolution" for op in rt.model.get_ordered_ops())
    assert fake_quantize >= convs > 0  # NNCF put quantisers on the convolutions' inputs and weights
    rt(images)
    if "INT8" not in cpu_capabilities:
        pytest.skip(f"this CPU has no int8 support in OpenVINO ({cpu_capabilities})")
    assert conv_precisions(compiled_precisions(rt)) <= {"u8", "i8"}
