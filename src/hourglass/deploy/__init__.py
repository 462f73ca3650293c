"""Deployment: BatchNorm folding, export (ONNX, OpenVINO, TorchScript), runtimes, benchmarks, weight conversion.

Heavy back-ends (onnxruntime, openvino, nncf) are imported inside the functions that use them.
"""

from .fold import fold_batchnorm
from .runtimes import Runtime, create_runtime

__all__ = ["Runtime", "create_runtime", "fold_batchnorm"]
