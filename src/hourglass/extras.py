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

import contextlib
import ctypes
import importlib
import importlib.util
import sys
import threading
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from hourglass.errors import MissingExtraError

__all__ = ["EXTRAS", "MissingExtraError", "extra_installed", "openvino_core", "require_extra", "require_extras"]

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


_CORE: Any = None
_CORE_LOCK = threading.Lock()


def openvino_core() -> Any:
    """The process's one ``openvino.Core``, its CPU plugin loaded; every OpenVINO user of the package takes it.

    Why one, and why the guard: OpenVINO's CPU plugin (``SigAltStackSetup`` in its ``sigstack_manager.cpp``, from
    openvinotoolkit/openvino PR 11894 of 2022, for AMX's larger signal frames; still in 2026.4.1) maps an alternate
    signal stack of ``AT_MINSIGSTKSZ + SIGSTKSZ`` bytes (11,568 on the AMD EPYC here) and installs it on the thread
    that creates the plugin, i.e. each new ``Core`` on its first use of ``"CPU"``. Its destructor unmaps that memory
    but gives the thread its old stack back only when the thread destroying it is the one that created it and nobody
    installed another since. Two Cores used on one thread and dropped in the order they were made (two detectors, a
    detector then a pose network ...), or one dropped on another thread, leave the thread's signal stack pointing at
    unmapped memory, or at memory the allocator has handed out again. CPython installs its signal handlers with
    ``SA_ONSTACK``, so the next signal with a Python handler (SIGCHLD from a child process, SIGINT, SIGTERM) is
    delivered there: the process dies of SIGSEGV, or the kernel writes the signal frame over live heap (the
    "pymalloc" crash that had ``make test`` run the detector tests in a process of their own). Reproduced with two
    bare ``ov.Core()``s; ``tests/test_extras.py`` keeps the case.

    So the package makes one Core, for the life of the process, and loads its CPU plugin under
    :func:`_signal_stack_kept`: the thread keeps the signal stack it had, the plugin's own stays mapped and unused.
    Raises :class:`MissingExtraError` without the ``openvino`` extra.
    """
    global _CORE
    ov = require_extra("openvino", "openvino")  # also when the Core exists: the package may be gone (tests hide it)
    with _CORE_LOCK:
        if _CORE is None:
            core = ov.Core()
            with _signal_stack_kept():
                core.get_property("CPU", "FULL_DEVICE_NAME")  # creates the CPU plugin now, inside the guard
            _CORE = core
        return _CORE


class _StackT(ctypes.Structure):
    _fields_ = [("ss_sp", ctypes.c_void_p), ("ss_flags", ctypes.c_int), ("ss_size", ctypes.c_size_t)]


@contextlib.contextmanager
def _signal_stack_kept() -> Iterator[None]:
    """Run the body, then give the calling thread back the alternate signal stack (``sigaltstack``) it had
    before it, on Linux; elsewhere, and where libc cannot be reached, just run it.

    If the kernel refuses the old stack (it refuses one too small for the signal frame once a process has
    enabled AMX tiles), the thread keeps the new one, which then belongs to :func:`openvino_core`'s Core and
    stays mapped as long as the process lives.
    """
    libc = None
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.sigaltstack.argtypes = [ctypes.POINTER(_StackT), ctypes.POINTER(_StackT)]
    old = _StackT()
    if libc is None or libc.sigaltstack(None, ctypes.byref(old)) != 0:
        yield
        return
    try:
        yield
    finally:
        old.ss_flags &= ~1  # SS_ONSTACK (reported, never set): not running on it now
        libc.sigaltstack(ctypes.byref(old), None)
