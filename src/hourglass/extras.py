"""Optional dependencies: the one place that imports a package of an extra and names the extra when it is absent.

The core install (``pip install hourglass-pose``) trains, evaluates on MPII-format data and predicts with
PyTorch. Each of these needs an extra, installed with ``pip install 'hourglass-pose[NAME]'``:

======================  =================================================  ==================================
extra                   packages                                           features
======================  =================================================  ==================================
``onnx``                onnx, onnxscript, onnxruntime                      ONNX export, ONNX Runtime runtime
``openvino``            openvino, nncf (and the ``onnx`` extra)            OpenVINO export and runtimes, int8
``coco``                pycocotools                                        COCO annotations, COCO keypoint AP
``tensorboard``         tensorboard                                        TensorBoard scalars while training
``torch7``              torchfile                                          ``hourglass convert --from torch7``
``serve``               starlette, uvicorn, websockets, python-multipart   ``hourglass serve`` (HTTP API, page)
``detect``              onnxruntime                                        ``predict --detector``: person detection
``all``                 all of the above
======================  =================================================  ==================================
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from hourglass.errors import MissingExtraError

__all__ = ["EXTRAS", "MissingExtraError", "extra_installed", "require_extra", "require_extras"]

DISTRIBUTION = "hourglass-pose"

EXTRAS: dict[str, tuple[str, ...]] = {
    "onnx": ("onnx", "onnxscript", "onnxruntime"),
    "openvino": ("openvino", "nncf"),
    "coco": ("pycocotools",),
    "tensorboard": ("tensorboard",),
    "torch7": ("torchfile",),
    "serve": ("starlette", "uvicorn", "websockets", "python_multipart"),
    "detect": ("onnxruntime",),
}
"""The importable top-level modules each extra provides (``pyproject.toml`` lists their distributions)."""


def require_extra(module: str, extra: str) -> ModuleType:
    """Import ``module`` (e.g. ``"openvino"``, ``"pycocotools.coco"``) or say which extra installs it.

    Only the absence of ``module`` itself (or of a package above it) becomes :class:`MissingExtraError`;
    an import error from inside an installed package is a broken install and propagates unchanged.

    Raises:
        MissingExtraError: ``module`` is not installed; one line with the ``pip install`` command.

    Example:
        >>> require_extra("math", "none").sqrt(4.0)
        2.0
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name is None or not (module == err.name or module.startswith(err.name + ".")):
            raise
        raise MissingExtraError(
            f"{module} is not installed; it comes with the [{extra}] extra: pip install '{DISTRIBUTION}[{extra}]'",
            name=err.name,
        ) from None


def require_extras(*extras: str) -> None:
    """:func:`require_extra` of every module of each of ``extras`` (keys of :data:`EXTRAS`).

    For a feature to fail at once, before slow work (an ONNX export) whose later steps need the modules.
    """
    for extra in extras:
        for module in EXTRAS[extra]:
            require_extra(module, extra)


def extra_installed(extra: str) -> bool:
    """Whether every module of ``extra`` (a key of :data:`EXTRAS`) is installed; imports nothing.

    Example:
        >>> extra_installed("no-such-extra")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        KeyError: "unknown extra 'no-such-extra'; expected one of onnx, openvino, coco, tensorboard, torch7, serve, ..."
    """
    if extra not in EXTRAS:
        raise KeyError(f"unknown extra {extra!r}; expected one of {', '.join(EXTRAS)}")
    return all(importlib.util.find_spec(module) is not None for module in EXTRAS[extra])
