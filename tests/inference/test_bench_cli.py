"""Benchmark figures and the export / bench / convert commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from hourglass.checkpoint.convert import princeton_key
from hourglass.checkpoint.io import save_checkpoint
from hourglass.checkpoint.load import load_model
from hourglass.cli import app
from hourglass.inference.bench import benchmark, peak_engines
from hourglass.inference.runtimes import create_runtime
from hourglass.models.summary import count_macs
from hourglass.peak import measure_peak, reference_conv, torch_engine

SRC = Path(__file__).resolve().parents[2] / "src"
REQUIRED = {"backend", "precision", "batch", "latency_ms", "gflops"}


def test_benchmark_figures_are_consistent(tiny) -> None:
    r = benchmark(tiny, "eager", "fp32", batch=2, input_size=(32, 32), iters=3, warmup=1)
    assert (r.backend, r.precision, r.batch, r.input_size) == ("eager", "fp32", 2, (32, 32))
    assert r.gmacs == count_macs(tiny, (3, 32, 32), batch=2) / 1e9
    assert r.gflops == pytest.approx(2 * r.gmacs / (r.latency_ms / 1e3))
    assert r.throughput == pytest.approx(2 / (r.latency_ms / 1e3))
    assert r.latency_p10_ms <= r.latency_ms <= r.latency_p90_ms
    assert r.peak_gflops > 0 and r.peak_share == pytest.approx(r.gflops / r.peak_gflops)
    assert r.peak_engine in ("torch", "openvino") and r.peak_rss_mib > 50
    assert r.peak_gflops_min <= r.peak_gflops <= r.peak_gflops_max and r.peak_rounds == 5
    again = benchmark(tiny, "eager", "fp32", batch=1, input_size=(3, 32, 32), iters=2, warmup=1)
    assert again.peak == r.peak and again.input_size == (32, 32)  # one fixed reference per run; C H W read
    assert again.peak_share == pytest.approx(again.gflops / r.peak_gflops)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_the_torch_peak_runs_as_the_eager_runtime(precision: str) -> None:
    """The peak's PyTorch engine is set up as the eager runtime is: the same output, bit for bit."""
    conv, x, _ = reference_conv(precision, size=16)
    runtime = create_runtime(conv, "eager", precision, input_size=(16, 16), fold=False)
    engine = torch_engine(conv, x, precision)().float().contiguous().numpy()
    np.testing.assert_array_equal(runtime(x.numpy()), engine)


PEAK_PROBE = """
import json, sys
from hourglass.inference.bench import peak_runtime
from hourglass.peak import reference_conv

found = {}
for precision in sys.argv[1:]:
    conv, x, _ = reference_conv(precision, size=16)
    request = peak_runtime(conv, x, precision).infer_request(tuple(x.shape))
    infos = [op.get_rt_info() for op in request.get_compiled_model().get_runtime_model().get_ordered_ops()]
    found[precision] = [i["runtimePrecision"].astype(str) for i in infos if i["layerType"].astype(str) == "Convolution"]
print(json.dumps(found))
"""


def peak_conv_precisions(*precisions: str) -> dict[str, list[str]]:
    """The precision each convolution of the OpenVINO peak runtime compiled to, per precision asked; read in a
    child process, as tests/inference/test_runtimes_precision.py reads its runtimes (see its docstring)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", PEAK_PROBE, *precisions], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_int8_is_compared_with_an_int8_peak() -> None:
    """``bench --precision int8`` divides by the speed of an int8 convolution: OpenVINO's, made as its int8
    runtime is (NNCF), whose convolution runs in int8; the fp32 peak's runs in f32."""
    engines = peak_engines("int8")
    assert list(engines) == ["openvino"]
    peak = measure_peak("int8", engines, rounds=2, iters=1, warmup=1, size=16)
    assert (peak.precision, peak.engine, peak.rounds) == ("int8", "openvino", 2) and peak.gflops > 0
    compiled = peak_conv_precisions("int8", "fp32")
    assert compiled["int8"] and set(compiled["int8"]) <= {"i8", "u8"}, compiled
    assert compiled["fp32"] and set(compiled["fp32"]) == {"f32"}, compiled


@pytest.fixture(scope="module")
def checkpoint(tiny, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    kwargs = {"num_joints": 4, "num_channels": 16, "depth": 2}
    meta = {"model": {"name": "hg2", "kwargs": kwargs}, "data": {"input_size": [32, 32], "heatmap_size": [8, 8]}}
    return save_checkpoint(path, tiny, meta)


def test_cli_bench_json(checkpoint) -> None:
    result = CliRunner().invoke(app, ["bench", str(checkpoint), "--iters", "2", "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 1 and REQUIRED <= set(rows[0])
    assert rows[0]["input_size"] == [32, 32] and rows[0]["latency_ms"] > 0


def test_cli_export_prints_difference_and_reports_bad_paths(checkpoint, tmp_path) -> None:
    out = tmp_path / "tiny.onnx"
    result = CliRunner().invoke(app, ["export", "--checkpoint", str(checkpoint), "--format", "onnx", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file() and "max abs difference" in result.output
    blocker = tmp_path / "file"
    blocker.write_text("")
    bad = ["export", "--checkpoint", str(checkpoint), "--format", "onnx", "--out", str(blocker / "x.onnx")]
    result = CliRunner().invoke(app, bad)
    assert result.exit_code == 1 and "is a file, not a folder" in result.output and "Traceback" not in result.output
    wrong = ["export", "--checkpoint", str(tmp_path / "none.safetensors"), "--format", "onnx", "--out", str(out)]
    result = CliRunner().invoke(app, wrong)
    assert result.exit_code == 1 and "no such checkpoint file" in result.output


def test_cli_convert_bare_state_dict(tiny, tmp_path) -> None:
    # Their layout, derived with the mapping (the re-stated PoseNet in test_convert.py checks the mapping).
    theirs = {f"model.module.{princeton_key(k, 2)}": v for k, v in tiny.state_dict().items()}
    torch.save({"state_dict": theirs}, tmp_path / "checkpoint.pt")
    out = tmp_path / "converted.safetensors"
    result = CliRunner().invoke(
        app, ["convert", "--from", "princeton-vl", str(tmp_path / "checkpoint.pt"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    model, meta = load_model(out)
    assert meta.model_kwargs == {"num_joints": 4, "num_channels": 16, "depth": 2, "in_channels": 3}
    for k, v in tiny.state_dict().items():
        torch.testing.assert_close(model.state_dict()[k], v)
    result = CliRunner().invoke(
        app, ["convert", "--from", "mmpose", str(tmp_path / "checkpoint.pt"), "--out", str(out)]
    )
    assert result.exit_code == 1 and "unknown source 'mmpose'" in result.output
