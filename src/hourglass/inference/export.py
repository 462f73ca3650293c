"""Export a trained network to ONNX, OpenVINO IR or TorchScript, checked against eager PyTorch.

Every export:

- takes a batch of ``(B, 3, H, W)`` float32 images (RGB in [0, 1]) with ``B`` dynamic, and returns
  ``(B, K, H/4, W/4)`` heatmaps of the last stack (``all_stacks=True``: ``(B, S, K, H/4, W/4)``);
- has BatchNorm folded into the preceding convolutions where the pre-activation order allows it
  (:mod:`hourglass.inference.fold`);
- is run by its own runtime (onnxruntime, OpenVINO in f32, ``torch.jit.load``) on a sample batch of a
  size other than the one traced, and compared with the eager, unfolded model; the maximum absolute
  difference is returned, and a difference above ``atol`` is an error;
- is written atomically: files are produced and checked in a temporary folder beside ``out`` and moved
  into place only when the check passes, so a failure never leaves a half-written file at ``out``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from hourglass.errors import ConfigError, ExportError
from hourglass.extras import openvino_core, require_extra, require_extras
from hourglass.files import make_temp_dir, out_of_space_error
from hourglass.models.stacked import last_stack

from .fold import fold_batchnorm

ExportFormat = Literal["onnx", "openvino", "torchscript"]
FORMATS: tuple[str, ...] = ("onnx", "openvino", "torchscript")
INPUT_NAME, OUTPUT_NAME = "images", "heatmaps"


class HeatmapOutput(nn.Module):
    """Wrap a network so that it returns the last stack's heatmaps only (or all, ``all_stacks=True``).

    Shape: ``(B, 3, H, W) -> (B, K, h, w)``; with ``all_stacks`` or for a model that returns a 4-D tensor
    (a lone :class:`~hourglass.models.Hourglass`), the model's own output.
    """

    def __init__(self, model: nn.Module, all_stacks: bool = False) -> None:
        super().__init__()
        self.model = model
        self.all_stacks = all_stacks

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out = self.model(images)
        return out if self.all_stacks else last_stack(out)


def prepare_for_inference(model: nn.Module, fold: bool = True, all_stacks: bool = False) -> nn.Module:
    """``HeatmapOutput(fold_batchnorm(model))`` in eval mode, without gradients; ``model`` is not modified."""
    net = fold_batchnorm(model) if fold else model
    wrapped = HeatmapOutput(net, all_stacks=all_stacks).eval()
    for p in wrapped.parameters():
        p.requires_grad_(False)
    return wrapped


def input_channels(model: nn.Module) -> int:
    """Image channels a network expects (``in_channels`` of a stacked network, ``num_channels`` otherwise)."""
    return int(getattr(model, "in_channels", getattr(model, "num_channels", 3)))


@contextlib.contextmanager
def _quiet_export() -> Iterator[None]:
    """Silence the ONNX exporter's progress lines and warnings (they are not errors)."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch._dynamo", "torch.export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def write_onnx(net: nn.Module, example: torch.Tensor, path: str | os.PathLike[str]) -> None:
    """``torch.onnx.export`` (dynamo exporter) of ``net`` with a dynamic batch dimension, one file."""
    for module in ("onnx", "onnxscript"):  # the dynamo exporter imports both
        require_extra(module, "onnx")
    with _quiet_export(), contextlib.redirect_stdout(io.StringIO()):
        torch.onnx.export(
            net,
            (example,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: torch.export.Dim("batch", min=1)},),
            external_data=False,
            verbose=False,
        )


def write_openvino(net: nn.Module, example: torch.Tensor, path: str | os.PathLike[str]) -> None:
    """OpenVINO IR (``path`` .xml plus .bin beside it), converted from the ONNX export, weights in f32."""
    ov = require_extra("openvino", "openvino")

    path = Path(path)
    onnx_path = path.with_suffix(".onnx")
    write_onnx(net, example, onnx_path)
    try:
        ov_model = ov.convert_model(str(onnx_path))
        ov.save_model(ov_model, str(path), compress_to_fp16=False)
    finally:
        onnx_path.unlink(missing_ok=True)


def write_torchscript(net: nn.Module, example: torch.Tensor, path: str | os.PathLike[str]) -> None:
    """``torch.jit.trace`` of ``net`` saved with ``torch.jit.save``; the traced graph accepts any batch size.

    Saved to memory, then written by Python: ``torch.jit.save`` to a path aborts the process when a write fails
    (a full disk), where Python's write raises ``OSError``.
    """
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # torch.jit is deprecated in favour of torch.export; still supported
        traced = torch.jit.trace(net, example, check_trace=False)
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer)
    Path(path).write_bytes(buffer.getvalue())


FORMAT_EXTRAS: dict[str, tuple[str, ...]] = {"onnx": ("onnx",), "openvino": ("onnx", "openvino"), "torchscript": ()}
"""The extras each format's writer and checker need (OpenVINO converts the ONNX export)."""

WRITERS: dict[str, Callable[[nn.Module, torch.Tensor, str | os.PathLike[str]], None]] = {
    "onnx": write_onnx,
    "openvino": write_openvino,
    "torchscript": write_torchscript,
}


def run_exported(fmt: str, path: str | os.PathLike[str], images: np.ndarray) -> np.ndarray:
    """Run an exported file with its own runtime (fp32) on ``images`` ``(B, C, H, W)`` float32."""
    if fmt == "onnx":
        ort = require_extra("onnxruntime", "onnx")
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {INPUT_NAME: images})[0]
    if fmt == "openvino":
        compiled = openvino_core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        return np.asarray(compiled(images)[0])
    if fmt == "torchscript":
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            return torch.jit.load(str(path)).eval()(torch.from_numpy(images)).numpy()
    raise ConfigError(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")


def _expected_failures(fmt: str) -> tuple[type[Exception], ...]:
    """What an exporter or the runtime checking its file raises when a network cannot be exported or run:
    ``RuntimeError`` (torch.onnx, torch.jit, dynamo, OpenVINO) and, for ONNX, ONNX Runtime's own exception
    types (they derive from ``Exception`` only). Anything else is a bug and keeps its traceback."""
    failures: list[type[Exception]] = [RuntimeError]
    if fmt == "onnx":
        ort_state = require_extra("onnxruntime.capi.onnxruntime_pybind11_state", "onnx")
        failures += [v for v in vars(ort_state).values() if isinstance(v, type) and issubclass(v, Exception)]
    return tuple(failures)


@dataclass(frozen=True)
class ExportResult:
    path: Path
    files: tuple[Path, ...]
    format: str
    max_abs_diff: float
    sample_shape: tuple[int, ...]
    output_shape: tuple[int, ...]


def check_writable(out: str | os.PathLike[str]) -> Path:
    """Create ``out``'s folder and make sure a file can be written there; ``OSError`` naming ``out`` if not."""
    out = Path(out)
    if out.is_dir():
        raise IsADirectoryError(f"{out}: is a folder; give a file path for the export")
    for parent in out.parents:
        if parent.exists() and not parent.is_dir():
            raise NotADirectoryError(f"{out}: cannot write the export there ({parent} is a file, not a folder)")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out.parent, prefix=f".{out.name}.", suffix=".probe"):
            pass
    except OSError as err:
        raise OSError(f"{out}: cannot write the export there ({err.strerror or err})") from err
    return out


def _write_export(fmt: str, net: nn.Module, example: torch.Tensor, out: Path, tmp_path: Path) -> None:
    """``WRITERS[fmt]`` to ``tmp_path``; a failure for lack of space is an OutOfSpaceError naming ``out``."""
    try:
        WRITERS[fmt](net, example, tmp_path)
    except Exception as err:
        full = out_of_space_error(err, out, tmp_path)
        if full is not None:
            raise full from err
        raise


def export_model(
    model: nn.Module,
    fmt: ExportFormat,
    out: str | os.PathLike[str],
    input_size: tuple[int, int] = (256, 256),
    all_stacks: bool = False,
    fold: bool = True,
    atol: float = 1e-3,
    seed: int = 0,
) -> ExportResult:
    """Export ``model`` to ``out`` in format ``fmt`` and check it against eager PyTorch.

    Args:
        model: a :class:`~hourglass.models.StackedHourglass` (or any network of images to heatmaps).
        fmt: ``"onnx"`` (one ``.onnx`` file), ``"openvino"`` (``out`` .xml and the .bin beside it) or
            ``"torchscript"`` (a ``torch.jit`` archive).
        out: destination path; its folder is created. For OpenVINO the ``.bin`` takes ``out``'s stem.
        input_size: ``(H, W)`` of the traced example; only the batch dimension is dynamic.
        all_stacks: output every stack ``(B, S, K, h, w)`` instead of the last ``(B, K, h, w)``.
        fold: fold BatchNorm into convolutions first (see :func:`~hourglass.inference.fold.fold_batchnorm`).
        atol: largest accepted absolute difference to eager on the check sample.
        seed: seed of the random check sample (batch 3, while the trace uses batch 2).

    Returns:
        :class:`ExportResult` with the written files and ``max_abs_diff``.

    Raises:
        ExportError: export failed or disagreed with eager by more than ``atol``; nothing is written.
        OSError: ``out`` cannot be written.
    """
    if fmt not in WRITERS:
        raise ConfigError(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if fmt == "openvino" and Path(out).suffix != ".xml":
        raise ConfigError(f"{out}: an OpenVINO export is an .xml file (with its .bin beside it); end the path in .xml")
    require_extras(*FORMAT_EXTRAS[fmt])  # now, not after the export
    out = check_writable(out)
    model = model.eval()
    net = prepare_for_inference(model, fold=fold, all_stacks=all_stacks)
    channels = input_channels(model)
    gen = torch.Generator().manual_seed(seed)
    example = torch.rand(2, channels, *input_size, generator=gen)
    sample = torch.rand(3, channels, *input_size, generator=gen)
    with torch.no_grad():
        reference = HeatmapOutput(model, all_stacks=all_stacks)(sample).numpy()

    tmpdir = make_temp_dir(out.parent, f".{out.name}.")
    try:
        tmp_path = tmpdir / out.name
        try:
            _write_export(fmt, net, example, out, tmp_path)
            got = run_exported(fmt, tmp_path, sample.numpy())
        except _expected_failures(fmt) as err:
            raise ExportError(f"{out}: {fmt} export failed: {type(err).__name__}: {err}") from err
        if got.shape != reference.shape:
            raise ExportError(f"{out}: {fmt} export returns shape {got.shape}, eager returns {reference.shape}")
        diff = float(np.abs(got - reference).max())
        if not diff <= atol:
            raise ExportError(f"{out}: {fmt} export differs from eager by {diff:.3g} (max abs), more than {atol:g}")
        produced = sorted(tmpdir.iterdir())
        finals = [out.with_suffix(p.suffix) if p.name != out.name else out for p in produced]
        # Sidecar files (OpenVINO's .bin) first, the file users point at last.
        for src, dst in sorted(zip(produced, finals, strict=True), key=lambda pair: pair[1] == out):
            os.replace(src, dst)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return ExportResult(out, tuple(finals), fmt, diff, tuple(sample.shape), tuple(reference.shape))


def export_checkpoint(
    checkpoint: str | os.PathLike[str],
    fmt: ExportFormat,
    out: str | os.PathLike[str],
    input_size: Sequence[int] | None = None,
    all_stacks: bool = False,
    fold: bool = True,
) -> ExportResult:
    """:func:`export_model` of a ``.safetensors`` checkpoint, at its ``data.input_size`` unless ``input_size``
    (``(H, W)`` or ``(C, H, W)``) is given."""
    from hourglass.checkpoint.load import load_model

    check_writable(out)
    model, meta = load_model(checkpoint)
    return export_model(
        model, fmt, out, meta.input_size_or(input_size, input_channels(model)), all_stacks=all_stacks, fold=fold
    )
