"""Inference runtimes behind one interface: eager PyTorch, ``torch.compile``, ONNX Runtime, OpenVINO.

``create_runtime(model_or_checkpoint, backend, precision)`` returns a :class:`Runtime`, a callable
``images (B, 3, H, W) float32 -> heatmaps (B, K, H/4, W/4) float32`` (numpy) of the last stack, with
BatchNorm folded (:mod:`hourglass.inference.fold`). Images are RGB in [0, 1], the project's convention.

Back-ends and precisions:

================  =========================================  ==============================================
backend           fp32 / bf16                                int8
================  =========================================  ==============================================
``eager``         fp32; bf16 = channels_last + CPU autocast  no
``compile``       ``torch.compile`` of the eager model       no
``onnxruntime``   fp32 only (CPU EP)                         no
``openvino``      ``INFERENCE_PRECISION_HINT`` f32 / bf16    NNCF post-training quantisation, calibrated
``best``          the fastest of the above that are          on images you give (``calibration``)
                  available, measured (``compile`` excluded)
``auto``          the default of ``hourglass predict`` and ``serve``: the first of :data:`AUTO_ORDER` whose
                  packages are installed (and, for bf16, whose CPU runs it natively), its accuracy cost measured
                  negligible (:data:`NEGLIGIBLE`); eager fp32 when none builds
================  =========================================  ==============================================

bf16 uses AMX on recent Intel CPUs; on CPUs without native bf16 it still runs, slowly (emulated).
No path assumes CUDA; ``device="cuda"`` runs the PyTorch back-ends on a GPU (bf16 there uses tensor
cores). For int8, OpenVINO runs the layers it does not quantise at its default precision
for the CPU (bf16 where AMX is present).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from hourglass.checkpoint.meta import CheckpointMeta
from hourglass.device import autocast_context, eager_precision, resolve_device, usable_cores
from hourglass.errors import ConfigError, HourglassError, InputError
from hourglass.extras import extra_installed, openvino_core, require_extra, require_extras
from hourglass.files import atomic_write, cache_dir

from .export import INPUT_NAME, input_channels, prepare_for_inference, write_onnx

HeatmapFn = Callable[[np.ndarray], np.ndarray]
"""Any function ``images (B, 3, H, W) float32 -> heatmaps (B, K, h, w)``: a :class:`Runtime` or a stand-in."""
Backend = Literal["eager", "compile", "onnxruntime", "openvino", "best", "auto"]
Precision = Literal["fp32", "bf16", "int8", "auto"]
BACKENDS: tuple[str, ...] = ("eager", "compile", "onnxruntime", "openvino")
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "int8")
SUPPORTED: dict[str, tuple[str, ...]] = {
    "eager": ("fp32", "bf16"),
    "compile": ("fp32", "bf16"),
    "onnxruntime": ("fp32",),
    "openvino": ("fp32", "bf16", "int8"),
}
BACKEND_EXTRAS: dict[str, tuple[str, ...]] = {"onnxruntime": ("onnx",), "openvino": ("onnx", "openvino")}
"""The extras a back-end needs (both run the ONNX export); the PyTorch back-ends need none."""

AUTO_ORDER: tuple[tuple[str, str], ...] = (
    ("openvino", "bf16"),
    ("openvino", "fp32"),
    ("onnxruntime", "fp32"),
    ("eager", "fp32"),
)
"""What ``auto`` tries, fastest first, as measured (docs/BENCHMARKS.md): hg2 at 256x256, batch 1, OpenVINO bf16 17-25 ms
against eager fp32's 88-190 ms on the two CPUs of these machines; the demo model on the AMD EPYC, OpenVINO fp32 2.7x
and ONNX Runtime 2.5x eager fp32's speed. Only pairs whose accuracy cost is negligible by :data:`NEGLIGIBLE` are
here: fp32, and OpenVINO bf16 (PCKh@0.5 -0.03 points, 99.8% of keypoints within one heatmap pixel of eager fp32 on
500 held-out figures; +0.16 points and 99.6% on 200 others). int8 is not (-0.21 points on 500 figures, -0.56 on 200,
98.5-99.1% within one pixel). Eager bf16 is left out: without OpenVINO and ONNX Runtime, the reference runs."""

NEGLIGIBLE = {"pckh_points": 0.25, "within_1px": 0.99}
"""An accuracy cost :data:`AUTO_ORDER` accepts, as :func:`hourglass.inference.accuracy.accuracy_cost` measures it
against eager fp32 on at least 200 held-out crops: PCKh@0.5 within 0.25 points either way, and at least 99% of the
keypoints within one heatmap pixel."""


def as_numpy_images(images: np.ndarray | torch.Tensor, channels: int | None = None) -> np.ndarray:
    """``images`` as a C-contiguous float32 array ``(B, C, H, W)``; ``InputError`` naming the shape otherwise."""
    if isinstance(images, torch.Tensor):
        images = images.detach().to("cpu", torch.float32).numpy()
    arr = np.ascontiguousarray(images, dtype=np.float32)
    if arr.ndim != 4 or (channels is not None and arr.shape[1] != channels):
        want = f"(B, {channels if channels is not None else 'C'}, H, W)"
        raise InputError(f"runtime input: expected float32 images of shape {want}, got shape {arr.shape}")
    return arr


class Runtime:
    """Callable ``images (B, C, H, W) -> heatmaps (B, K, h, w)``, numpy float32, last stack only.

    Attributes:
        backend: ``eager``, ``compile``, ``onnxruntime`` or ``openvino``.
        precision: ``fp32``, ``bf16`` or ``int8``.
        input_size: ``(H, W)`` the runtime was built for; exported back-ends (onnxruntime, openvino) accept
            only this size, eager accepts any size divisible by the network's input multiple.
        channels: image channels ``C``.

    Accepts numpy arrays or torch tensors; any batch size.
    """

    backend: str = ""
    precision: str = ""
    note: str = ""
    """What ``backend="auto"`` skipped before this one, and why (empty when it took its first choice)."""

    def __init__(self, input_size: tuple[int, int], channels: int) -> None:
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.channels = channels

    def __call__(self, images: np.ndarray | torch.Tensor) -> np.ndarray:
        return self._run(as_numpy_images(images, self.channels))

    def _run(self, images: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(backend={self.backend!r}, precision={self.precision!r}, input_size={self.input_size})"


class TorchRuntime(Runtime):
    """Eager PyTorch or ``torch.compile`` on ``device``; bf16 = channels_last weights and inputs + autocast.

    ``torch.compile`` compiles on the first call (10-30 s for hg2 on a 2-core CPU) and again for each new
    batch size it sees until it marks the batch dynamic. On a GPU, inputs are copied to the device and
    heatmaps back to host memory on every call.
    """

    def __init__(
        self,
        net: nn.Module,
        precision: str,
        compile: bool,
        input_size: tuple[int, int],
        channels: int,
        device: torch.device | str = "cpu",
    ):
        super().__init__(input_size, channels)
        self.backend = "compile" if compile else "eager"
        self.precision = precision
        self.device = torch.device(device)
        self.channels_last, self.amp = eager_precision(precision)
        net = net.to(self.device, memory_format=torch.channels_last if self.channels_last else torch.preserve_format)
        self.net = torch.compile(net) if compile else net

    def _run(self, images: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(images).to(self.device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), autocast_context(self.device, self.amp):
            return self.net(x).float().cpu().contiguous().numpy()


class OnnxRuntime(Runtime):
    """ONNX Runtime, CPU execution provider, all graph optimisations, on the folded ONNX export."""

    backend = "onnxruntime"
    precision = "fp32"

    def __init__(self, onnx_path: str | os.PathLike[str], input_size: tuple[int, int], channels: int) -> None:
        ort = require_extra("onnxruntime", "onnx")
        super().__init__(input_size, channels)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])

    def _run(self, images: np.ndarray) -> np.ndarray:
        return self.session.run(None, {INPUT_NAME: images})[0]


class OpenVinoRuntime(Runtime):
    """OpenVINO CPU plugin on the folded ONNX export; fp32/bf16 via ``INFERENCE_PRECISION_HINT``, int8 via NNCF.

    Two ways to run a call, both on models compiled with a static input shape (about 5-10% faster than the
    dynamic-shape model at batch 1 here):

    - one image, or a CPU where OpenVINO makes one stream: one request compiled for the call's shape under
      ``PERFORMANCE_HINT=LATENCY``, its threads working together on each layer (:meth:`infer_request`);
    - a batch of ``B >= 2`` where OpenVINO makes several streams: each image its own batch-1 request of a model
      compiled under ``PERFORMANCE_HINT=THROUGHPUT`` (:meth:`throughput_queue`), the requests spread over the
      streams (on 2 cores: 2 streams of one thread). Streams need no barrier between threads at every layer, so
      the batch runs faster, and it does not stall when another thread of the process takes a core for a moment.
      On the Intel Xeon with AMX (2 cores), hg2 256x256 bf16: 1.11-1.27x the images/s of one latency request at
      batch 2 to 16, 0.61x at batch 1 (``benchmarks/openvino_streams.py``, docs/BENCHMARKS.md), hence the
      latency model for one image. Any batch size runs on the same compiled model.

    OpenVINO keeps the compiled models on disk under :func:`openvino_cache` (its ``CACHE_DIR``), and
    :func:`cached_onnx` the export, so a later start with the same weights, shape and precision skips both the
    export and the compile. Calls are serialised by a lock (one call at a time uses the requests).
    """

    backend = "openvino"

    def __init__(
        self,
        onnx_path: str | os.PathLike[str],
        precision: str,
        input_size: tuple[int, int],
        channels: int,
        calibration: Sequence[np.ndarray] | None = None,
    ) -> None:
        ov = require_extra("openvino", "openvino")
        super().__init__(input_size, channels)
        self.ov = ov
        self.precision = precision
        self.core = openvino_core()
        model = self.core.read_model(str(onnx_path))
        self.config: dict[str, Any] = {"CACHE_DIR": str(openvino_cache())}
        if precision == "int8":
            if not calibration:
                raise ConfigError("openvino int8: post-training quantisation needs calibration images")
            model = quantize_int8(model, calibration)
        else:
            self.config["INFERENCE_PRECISION_HINT"] = "bf16" if precision == "bf16" else "f32"
        self.model = model
        self.requests: dict[tuple[int, ...], Any] = {}
        self.queue: Any = None  # the throughput model's requests (:meth:`throughput_queue`)
        self.streams: int | None = None  # the throughput model's streams; None until it is compiled
        self.lock = threading.Lock()

    def compile(self, shape: Sequence[int], hint: str) -> Any:
        """The OpenVINO compiled model for input ``shape`` under ``PERFORMANCE_HINT`` ``hint``."""
        model = self.model.clone()
        model.reshape({0: list(shape)})
        return self.core.compile_model(model, "CPU", {**self.config, "PERFORMANCE_HINT": hint})

    def infer_request(self, shape: tuple[int, ...]) -> Any:
        """The latency infer request for input ``shape`` (compiled on first use, then kept)."""
        if shape not in self.requests:
            self.requests[shape] = self.compile(shape, "LATENCY").create_infer_request()
        return self.requests[shape]

    def throughput_queue(self) -> Any:
        """The ``AsyncInferQueue`` of batch-1 requests on the throughput model, compiled on first use: as many
        requests as OpenVINO finds optimal, one per stream at least (:attr:`streams` is set then)."""
        if self.queue is None:
            compiled = self.compile((1, self.channels, *self.input_size), "THROUGHPUT")
            self.streams = int(compiled.get_property("NUM_STREAMS"))
            jobs = max(self.streams, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
            self.queue = self.ov.AsyncInferQueue(compiled, jobs)
        return self.queue

    def streams_pay(self) -> bool:
        """Whether a batch runs over streams: OpenVINO makes more than one for this CPU (never on one core,
        where the throughput model is not even compiled)."""
        if usable_cores() < 2:
            return False
        self.throughput_queue()
        return bool(self.streams and self.streams > 1)

    def _run(self, images: np.ndarray) -> np.ndarray:
        with self.lock:
            if len(images) > 1 and self.streams_pay():
                return self._run_streams(images)
            return self._run_latency(images)

    def run_latency(self, images: np.ndarray) -> np.ndarray:
        """Heatmaps of ``images`` ``(B, C, H, W)`` from one latency request, whatever ``B`` (for comparisons)."""
        with self.lock:
            return self._run_latency(as_numpy_images(images, self.channels))

    def run_streams(self, images: np.ndarray) -> np.ndarray:
        """Heatmaps of ``images`` ``(B, C, H, W)`` as batch-1 requests over the throughput model's streams,
        whatever ``B`` and however many streams (for comparisons)."""
        with self.lock:
            self.throughput_queue()
            return self._run_streams(as_numpy_images(images, self.channels))

    def _run_latency(self, images: np.ndarray) -> np.ndarray:
        request = self.infer_request(images.shape)
        request.infer({0: images})
        return np.array(request.get_output_tensor(0).data, dtype=np.float32)

    def _run_streams(self, images: np.ndarray) -> np.ndarray:
        out: list[np.ndarray | None] = [None] * len(images)

        def done(request: Any, index: int) -> None:
            out[index] = np.array(request.get_output_tensor(0).data[0], dtype=np.float32)

        self.queue.set_callback(done)
        images = np.ascontiguousarray(images)
        for i in range(len(images)):  # each input read in place: ``images`` outlives the requests
            self.queue.start_async({0: images[i : i + 1]}, i, share_inputs=True)
        self.queue.wait_all()
        missing = [i for i, heatmaps in enumerate(out) if heatmaps is None]
        if missing:
            raise RuntimeError(f"OpenVINO returned no heatmaps for images {missing} of a batch of {len(images)}")
        return np.stack(out)  # type: ignore[arg-type]


def openvino_cache() -> Path:
    """OpenVINO's compiled-model cache: ``openvino/`` in :func:`hourglass.files.cache_dir`, created if missing."""
    folder = cache_dir() / "openvino"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def quantize_int8(ov_model: Any, calibration: Sequence[np.ndarray]) -> Any:
    """NNCF post-training quantisation (``preset=PERFORMANCE``, symmetric int8) of an OpenVINO model.

    ``calibration``: a sequence of ``(1, C, H, W)`` float32 images (or batches) fed as the model's input.
    """
    import logging

    nncf = require_extra("nncf", "openvino")
    nncf.set_log_level(logging.ERROR)
    data = nncf.Dataset(list(calibration))
    with contextlib.redirect_stdout(io.StringIO()):  # NNCF's progress bars; stdout may carry --json lines
        return nncf.quantize(ov_model, data, subset_size=len(calibration))


def calibration_batches(source: np.ndarray | torch.Tensor | Iterable[Any], limit: int = 300) -> list[np.ndarray]:
    """Calibration inputs as a list of ``(1, C, H, W)`` float32 arrays, at most ``limit`` of them.

    ``source``: an array or tensor ``(N, C, H, W)``, or an iterable of images ``(C, H, W)`` / batches
    ``(B, C, H, W)`` / dataset records (dicts with an ``"image"`` entry, as ``hourglass.data`` datasets
    return).
    """
    if isinstance(source, (np.ndarray, torch.Tensor)):
        source = list(source)
    out: list[np.ndarray] = []
    for item in source:
        image = item["image"] if isinstance(item, dict) else item
        arr = as_numpy_images(image[None] if np.ndim(image) == 3 else image)
        out.extend(arr[i : i + 1] for i in range(arr.shape[0]))
        if len(out) >= limit:
            break
    return out[:limit]


ModelSpec = nn.Module | str | os.PathLike[str] | tuple[nn.Module, CheckpointMeta]
"""What :func:`create_runtime` accepts: a module, a ``.safetensors`` checkpoint path, a preset name, or a
model already loaded with its metadata (``hourglass.load_model``'s ``(model, meta)``)."""


def resolve_model(model_or_checkpoint: ModelSpec) -> tuple[nn.Module, CheckpointMeta]:
    """``(model in eval mode, meta)`` from a module, a ``.safetensors`` checkpoint path, a preset name, or a
    loaded ``(model, meta)`` pair (returned as it is, the model put in eval mode).

    A module or a preset has no codec in its metadata: its ``input_size`` is the default 256x256.
    """
    if isinstance(model_or_checkpoint, tuple):
        model, meta = model_or_checkpoint
        return model.eval(), meta
    if isinstance(model_or_checkpoint, nn.Module):
        return model_or_checkpoint.eval(), CheckpointMeta(type(model_or_checkpoint).__name__)
    from hourglass.checkpoint.hub import list_weights
    from hourglass.checkpoint.load import load_model
    from hourglass.models import create_model, list_models

    spec = str(model_or_checkpoint)
    if Path(spec).exists() or spec.endswith((".safetensors", ".pt", ".pth")):
        return load_model(spec)
    if spec in list_models():  # a preset before published weights of the same name: random weights, same speed
        return create_model(spec).eval(), CheckpointMeta(spec)
    if spec in list_weights("pose") or re.match(r"(?i)(https?|file)://", spec):
        return load_model(spec)
    raise ConfigError(
        f"{spec}: neither a checkpoint file nor a model preset ({', '.join(list_models())}) nor published weights "
        f"({', '.join(list_weights('pose'))})"
    )


def _check_choice(backend: str, precision: str) -> None:
    if backend not in (*BACKENDS, "best", "auto"):
        raise ConfigError(f"unknown backend {backend!r}; expected one of {', '.join((*BACKENDS, 'best', 'auto'))}")
    if precision not in (*PRECISIONS, "auto"):
        raise ConfigError(f"unknown precision {precision!r}; expected one of {', '.join((*PRECISIONS, 'auto'))}")
    if backend not in ("best", "auto") and precision != "auto" and precision not in SUPPORTED[backend]:
        able = [b for b in BACKENDS if precision in SUPPORTED[b]]
        raise ConfigError(
            f"backend {backend!r} does not run {precision}; it runs {', '.join(SUPPORTED[backend])}. "
            f"For {precision} use {' or '.join(able)}"
        )


def available_backends(precision: str = "fp32") -> list[str]:
    """Back-ends whose package imports here and that run ``precision``."""
    return [
        b
        for b in BACKENDS
        if precision in SUPPORTED[b] and all(extra_installed(extra) for extra in BACKEND_EXTRAS.get(b, ()))
    ]


def native_bf16() -> bool:
    """Whether OpenVINO runs bf16 natively on this CPU (``BF16`` among its optimisation capabilities: AVX-512 BF16
    or AMX); False without OpenVINO."""
    if not extra_installed("openvino"):
        return False
    return "BF16" in openvino_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def auto_choices(precision: str = "auto", device: torch.device | str = "cpu") -> list[tuple[str, str]]:
    """The ``(backend, precision)`` pairs ``auto`` tries, in order; the last always builds (eager).

    ``precision`` ``auto``: :data:`AUTO_ORDER`, without the pairs whose packages are missing and without OpenVINO
    bf16 where the CPU lacks native bf16 (:func:`native_bf16`). A given precision: the installed back-ends that run
    it, OpenVINO first, then ONNX Runtime, then eager. On a GPU: eager, at fp32 unless a precision is given.

    Example:
        >>> auto_choices("fp32", "cpu")[-1]
        ('eager', 'fp32')
    """
    if resolve_device(device).type != "cpu":
        return [("eager", "fp32" if precision == "auto" else precision)]
    if precision == "auto":
        pairs = [(b, p) for b, p in AUTO_ORDER if b in available_backends(p)]
        pairs = [(b, p) for b, p in pairs if not (b == "openvino" and p == "bf16") or native_bf16()]
    else:
        pairs = [(b, precision) for b in ("openvino", "onnxruntime", "eager") if b in available_backends(precision)]
    return pairs or [("eager", "fp32")]


def create_runtime(
    model_or_checkpoint: ModelSpec,
    backend: Backend = "best",
    precision: Precision = "fp32",
    calibration: np.ndarray | torch.Tensor | Iterable[Any] | None = None,
    input_size: Sequence[int] | None = None,
    fold: bool = True,
    device: torch.device | str = "cpu",
) -> Runtime:
    """Build a :class:`Runtime` for a model (module, ``.safetensors`` checkpoint, preset name or loaded pair).

    Args:
        model_or_checkpoint: the network (:data:`ModelSpec`); not modified (folding works on a copy). A
            checkpoint path is read here; a caller that has the metadata already passes ``(model, meta)``.
        backend: ``eager``, ``compile``, ``onnxruntime``, ``openvino``, ``best`` (the fastest available
            for ``precision``, measured on a few batch-1 runs; ``compile`` is left out of that race
            because compiling takes 10-30 s) or ``auto`` (the first of :func:`auto_choices` that builds, with
            no timing: predict's and serve's default; the runtime's :attr:`Runtime.note` says what it skipped).
        precision: ``fp32``, ``bf16``, ``int8`` (int8: OpenVINO only, needs ``calibration``) or ``auto`` (with
            ``auto``: see :func:`auto_choices`; with a named back-end: fp32).
        calibration: images for int8 calibration (see :func:`calibration_batches`), e.g. a
            ``hourglass.data`` dataset or an array ``(N, 3, H, W)``.
        input_size: ``(H, W)`` or ``(C, H, W)`` with the model's ``C``; default: the checkpoint's
            ``data.input_size``, else 256x256.
        fold: fold BatchNorm into the convolutions first (``False``: the network as trained, e.g. to
            benchmark a plain ONNX export).
        device: ``cpu`` (default), ``cuda`` or ``cuda:N`` for the PyTorch back-ends (``eager``,
            ``compile``; ``best`` means ``eager`` there). ONNX Runtime and OpenVINO run on the CPU here.

    Raises:
        ConfigError: unknown backend or precision, a combination that does not exist, or a CPU-only
            backend asked for a GPU, or a CUDA device on a machine without one (the message names it).

    Example:
        >>> rt = create_runtime("hg1", backend="eager")
        >>> rt(np.zeros((1, 3, 256, 256), np.float32)).shape
        (1, 16, 64, 64)
    """
    _check_choice(backend, precision)
    device = resolve_device(device)
    if device.type != "cpu":
        if backend == "best":
            backend = "eager"
        if backend not in ("eager", "compile"):
            raise ConfigError(f"backend {backend!r} runs on the CPU only; on {device} use eager or compile")
    model, meta = resolve_model(model_or_checkpoint)
    input_size = meta.input_size_or(input_size, input_channels(model))
    batches = calibration_batches(calibration) if calibration is not None and precision == "int8" else None
    if backend == "auto":
        return _first_that_builds(model, auto_choices(precision, device), input_size, batches, fold, device)
    precision = "fp32" if precision == "auto" else precision
    if backend == "best":
        return pick_fastest(model, precision, input_size, batches, fold=fold)
    return _build(model, backend, precision, input_size, batches, fold=fold, device=device)


def runtime_line(runtime: Any, backend: str, precision: str) -> str:
    """``pose network: openvino bf16 (auto: ...)``: the runtime that runs, and how it was chosen (``backend`` and
    ``precision`` as asked); the first line of ``hourglass predict`` and ``hourglass serve``."""
    line = (
        f"pose network: {getattr(runtime, 'backend', '') or backend} {getattr(runtime, 'precision', '') or precision}"
    )
    if "auto" in (backend, precision):
        line += " (auto: the fastest installed back-end with a negligible accuracy cost; "
        note = getattr(runtime, "note", "")
        line += f"skipped {note})" if note else "--backend eager --precision fp32 for the reference)"
    return line


def _first_that_builds(
    model: nn.Module,
    choices: Sequence[tuple[str, str]],
    input_size: tuple[int, int],
    calibration: Sequence[np.ndarray] | None,
    fold: bool,
    device: torch.device,
) -> Runtime:
    """The runtime of the first of ``choices`` that builds; the failures of those before it, one line each, go
    into its :attr:`Runtime.note`. The last choice's failure is raised."""
    skipped = []
    for backend, precision in choices[:-1]:
        try:
            runtime = _build(model, backend, precision, input_size, calibration, fold=fold, device=device)
        except (HourglassError, RuntimeError, OSError) as err:  # an export or compile the back-end refuses
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            skipped.append(f"{backend} {precision}: {first}")
            continue
        runtime.note = "; ".join(skipped)
        return runtime
    backend, precision = choices[-1]
    runtime = _build(model, backend, precision, input_size, calibration, fold=fold, device=device)
    runtime.note = "; ".join(skipped)
    return runtime


def _build(
    model: nn.Module,
    backend: str,
    precision: str,
    input_size: tuple[int, int],
    calibration: Sequence[np.ndarray] | None,
    onnx_path: Path | None = None,
    fold: bool = True,
    device: torch.device | str = "cpu",
) -> Runtime:
    channels = input_channels(model)
    net = prepare_for_inference(model, fold=fold)
    if backend in ("eager", "compile"):
        return TorchRuntime(net, precision, backend == "compile", input_size, channels, device=device)
    require_extras(*BACKEND_EXTRAS[backend])  # now, not after the export
    if onnx_path is not None:
        return _from_onnx(backend, onnx_path, precision, input_size, channels, calibration)
    if backend == "openvino":  # the export is kept, so that a second start skips it as it skips the compile
        return _from_onnx(backend, cached_onnx(net, input_size, channels), precision, input_size, channels, calibration)
    with tempfile.TemporaryDirectory(prefix="hourglass-onnx-") as tmp:
        path = Path(tmp) / "model.onnx"
        write_onnx(net, torch.rand(2, channels, *input_size), path)
        return _from_onnx(backend, path, precision, input_size, channels, calibration)


EXPORT_VERSION = 1


def cached_onnx(net: nn.Module, input_size: tuple[int, int], channels: int) -> Path:
    """The ONNX export of ``net`` (ready for inference) at ``input_size``, from ``onnx/`` in
    :func:`hourglass.files.cache_dir`, exported there (atomically) the first time.

    The file is named by a SHA-256 of what the export depends on: every tensor of the network (names, shapes,
    values), its layers (``repr``), the input size and channels, torch's version and :data:`EXPORT_VERSION` (raise it
    when :func:`~hourglass.inference.export.write_onnx` changes what it writes).
    """
    import hashlib

    digest = hashlib.sha256(f"{EXPORT_VERSION} {torch.__version__} {input_size} {channels} {net!r}".encode())
    for name, tensor in net.state_dict().items():
        value = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{name} {value.dtype} {tuple(value.shape)}".encode())
        digest.update(value.view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    path = cache_dir() / "onnx" / f"{digest.hexdigest()[:32]}.onnx"
    if not path.is_file():
        atomic_write(path, lambda tmp: write_onnx(net, torch.rand(2, channels, *input_size), Path(tmp)), ".tmp.onnx")
    return path


def _from_onnx(
    backend: str,
    path: Path,
    precision: str,
    input_size: tuple[int, int],
    channels: int,
    calibration: Sequence[np.ndarray] | None,
) -> Runtime:
    if backend == "onnxruntime":
        return OnnxRuntime(path, input_size, channels)
    return OpenVinoRuntime(path, precision, input_size, channels, calibration)


def time_runtime(runtime: Callable[[np.ndarray], Any], images: np.ndarray, iters: int, warmup: int) -> list[float]:
    """Seconds of each of ``iters`` calls of ``runtime(images)`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        runtime(images)
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        runtime(images)
        times.append(time.perf_counter() - start)
    return times


def pick_fastest(
    model: nn.Module,
    precision: str,
    input_size: tuple[int, int],
    calibration: Sequence[np.ndarray] | None,
    iters: int = 5,
    fold: bool = True,
) -> Runtime:
    """Build every available back-end for ``precision`` except ``compile``, time batch-1 calls, keep the fastest."""
    candidates = [b for b in available_backends(precision) if b != "compile"]
    if not candidates:  # only int8 lacks a PyTorch back-end: it runs on OpenVINO
        require_extra("openvino", "openvino")
        raise ConfigError(f"no back-end available for {precision}; install openvino for int8")
    images = np.random.default_rng(0).random((1, input_channels(model), *input_size), dtype=np.float32)
    best: tuple[float, Runtime] | None = None
    with tempfile.TemporaryDirectory(prefix="hourglass-onnx-") as tmp:
        onnx_path = Path(tmp) / "model.onnx"
        net = prepare_for_inference(model, fold=fold)
        if any(b in ("onnxruntime", "openvino") for b in candidates):
            write_onnx(net, torch.rand(2, input_channels(model), *input_size), onnx_path)
        for backend in candidates:
            runtime = _build(model, backend, precision, input_size, calibration, onnx_path, fold=fold)
            latency = float(np.median(time_runtime(runtime, images, iters, warmup=2)))
            if best is None or latency < best[0]:
                best = (latency, runtime)
    assert best is not None
    return best[1]
