"""hg2 through torch.export and ONNX (onnxruntime) gives the eager outputs."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import torch

from hourglass import create_model


def test_torch_export_matches_eager() -> None:
    torch.manual_seed(0)
    model = create_model("hg2").eval()
    x = torch.rand(2, 3, 64, 64)
    batch = torch.export.Dim("batch", min=1, max=64)
    program = torch.export.export(model, (x,), dynamic_shapes=({0: batch},))
    with torch.no_grad():
        expected = model(x)
        torch.testing.assert_close(program.module()(x), expected, rtol=1e-4, atol=1e-4)
        y = torch.rand(3, 3, 64, 64)
        torch.testing.assert_close(program.module()(y), model(y), rtol=1e-4, atol=1e-4)


def test_onnx_export_matches_eager_under_onnxruntime(tmp_path) -> None:
    torch.manual_seed(0)
    model = create_model("hg2").eval()
    x = torch.rand(1, 3, 128, 128)
    path = tmp_path / "hg2.onnx"
    torch.onnx.export(model, (x,), str(path), input_names=["image"], output_names=["heatmaps"], dynamo=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"image": x.numpy()})
    with torch.no_grad():
        expected = model(x).numpy()
    assert got.shape == expected.shape == (1, 2, 16, 32, 32)
    assert np.abs(got - expected).max() < 1e-4
