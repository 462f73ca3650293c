"""A network on pictures: the Predictor (pictures and boxes in, keypoints out), runtimes, export, BatchNorm folding,
benchmarks and a runtime's accuracy cost.

- :mod:`~hourglass.inference.predictor`: :class:`~hourglass.inference.predictor.Predictor`: crops, flip test,
  batching, decoding to image pixels; the people of a picture come from :mod:`hourglass.people`;
- :mod:`~hourglass.inference.runtimes`: the same network on eager PyTorch, ``torch.compile``, ONNX Runtime,
  OpenVINO (fp32, bf16, int8); :mod:`~hourglass.inference.export` and :mod:`~hourglass.inference.fold` make
  their files;
- :mod:`~hourglass.inference.bench` (``hourglass bench``) and :mod:`~hourglass.inference.accuracy` (what a
  runtime costs in PCKh).

Heavy back-ends (onnxruntime, openvino, nncf) are imported inside the functions that use them.
"""

from .fold import fold_batchnorm
from .runtimes import Runtime, create_runtime

__all__ = ["Runtime", "create_runtime", "fold_batchnorm"]
