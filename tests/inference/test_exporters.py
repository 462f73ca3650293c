"""Export to ONNX, OpenVINO IR and TorchScript: parity with eager, dynamic batch, atomic writes, bad paths."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hourglass.errors import ExportError
from hourglass.inference.export import export_model, run_exported
from small_disk import file_size_limited

CASES = [("onnx", "m.onnx"), ("openvino", "m.xml"), ("torchscript", "m.pt")]


@pytest.mark.parametrize(("fmt", "name"), CASES)
def test_export_matches_eager_at_any_batch(tiny, tmp_path, fmt, name) -> None:
    result = export_model(tiny, fmt, tmp_path / name, input_size=(32, 32))
    assert result.max_abs_diff < 1e-4
    assert result.output_shape == (3, 4, 8, 8)  # last stack only, checked at batch 3 (traced at batch 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in result.files)
    for batch in (1, 5):
        x = torch.rand(batch, 3, 32, 32)
        with torch.no_grad():
            want = tiny(x)[:, -1].numpy()
        got = run_exported(fmt, result.path, x.numpy())
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_openvino_writes_xml_and_bin(tiny, tmp_path) -> None:
    result = export_model(tiny, "openvino", tmp_path / "ir" / "net.xml", input_size=(32, 32))
    assert {p.name for p in result.files} == {"net.xml", "net.bin"}


def test_all_stacks_option(tiny, tmp_path) -> None:
    result = export_model(tiny, "torchscript", tmp_path / "all.pt", input_size=(32, 32), all_stacks=True)
    assert result.output_shape == (3, 2, 4, 8, 8)


def test_unwritable_or_bad_paths_are_clear_errors(tiny, tmp_path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(OSError, match="cannot write the export"):
        export_model(tiny, "onnx", blocker / "m.onnx", input_size=(32, 32))
    with pytest.raises(IsADirectoryError, match="is a folder"):
        export_model(tiny, "onnx", tmp_path, input_size=(32, 32))
    with pytest.raises(ValueError, match=r"end the path in \.xml"):
        export_model(tiny, "openvino", tmp_path / "m.onnx", input_size=(32, 32))
    with pytest.raises(ValueError, match="unknown export format 'tflite'"):
        export_model(tiny, "tflite", tmp_path / "m.tflite", input_size=(32, 32))


def test_failed_check_writes_nothing_and_keeps_old_file(tiny, tmp_path) -> None:
    out = tmp_path / "m.pt"
    out.write_bytes(b"previous")
    with pytest.raises(ExportError, match="differs from eager"):
        export_model(tiny, "torchscript", out, input_size=(32, 32), atol=-1.0)
    assert out.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]
    with pytest.raises(ValueError, match="divisible by 16"):
        export_model(tiny, "onnx", tmp_path / "bad.onnx", input_size=(30, 30))
    assert not (tmp_path / "bad.onnx").exists()


def test_export_out_of_space_is_one_line_and_keeps_the_old_file(checkpoint, tmp_path) -> None:
    import subprocess
    import sys

    out = tmp_path / "net.pt"
    out.write_bytes(b"old")
    cmd = [sys.executable, "-m", "hourglass", "export", "--checkpoint", str(checkpoint), "--format", "torchscript"]
    limited = file_size_limited([*cmd, "--out", str(out)], 20_000)
    proc = subprocess.run(limited, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    message = " ".join(proc.stderr.split())
    assert message.startswith(f"error: {out}: no space left to write it"), message
    assert "file-size limit 20.0 kB" in message
    assert out.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["net.pt"]
