"""Inference: the Predictor (images in, keypoints and pictures out), runtimes, export, BatchNorm folding, benchmarks.

Heavy back-ends (onnxruntime, openvino, nncf) are imported inside the functions that use them.
"""

from .fold import fold_batchnorm
from .runtimes import Runtime, create_runtime

__all__ = ["Runtime", "create_runtime", "fold_batchnorm"]
