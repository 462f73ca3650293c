"""OpenVINO's start-up cache under ``$HOURGLASS_HOME``: the ONNX export and the compiled models are kept, so a
second runtime of the same network skips both."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hourglass.inference.runtimes import create_runtime

pytest.importorskip("openvino")


def test_second_start_reuses_the_export_and_the_compiled_model(
    tiny, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOURGLASS_HOME", str(tmp_path))
    images = np.random.default_rng(0).random((2, 3, 32, 32), dtype=np.float32)
    first = create_runtime(tiny, "openvino", "fp32", input_size=(32, 32))(images)
    exports = list((tmp_path / "onnx").glob("*.onnx"))
    assert len(exports) == 1
    stamp = exports[0].stat().st_mtime_ns
    compiled = sorted(p.name for p in (tmp_path / "openvino").iterdir())
    assert compiled  # OpenVINO wrote its compiled model for batch 2
    second = create_runtime(tiny, "openvino", "fp32", input_size=(32, 32))(images)
    np.testing.assert_array_equal(first, second)
    assert list((tmp_path / "onnx").glob("*.onnx")) == exports and exports[0].stat().st_mtime_ns == stamp
    assert sorted(p.name for p in (tmp_path / "openvino").iterdir()) == compiled  # loaded, not compiled anew
