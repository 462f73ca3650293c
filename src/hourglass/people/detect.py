"""People in a picture: a published person detector (an ONNX file) run with ONNX Runtime, for ``hourglass predict
--detector`` and ``Predictor(detector=...)``.

Two kinds of file. The detectors rtmlib and mmpose pair with their pose models, as openmmlab publishes them:
mmdeploy's ``end2end.onnx`` inside the ``onnx_sdk`` zips named with a hash (``yolox_m_8xb8-300e_humanart-c2c7a14a.zip``,
``rtmdet_nano_8xb32-100e_coco-obj365-person-05d8511e.zip``), in two families:

- **YOLOX** (Ge et al., 2021), trained by mmpose on Human-Art and COCO (people in photos and in art);
- **RTMDet** (Lyu et al., 2022), trained by mmpose on COCO and Objects365 people.

And Megvii's own YOLOX ONNX files (the ``yolox_nano.onnx`` ... ``yolox_x.onnx`` of the YOLOX release 0.1.1rc0,
and whatever its ``tools/export_onnx.py`` writes), COCO's 80 classes, which end before any decoding (below).

**Input** ``(1, 3, H, W)`` float32, as mmdetection's test pipeline makes it (rtmlib's ``preprocess`` restates it):
the picture in **BGR** order, resized keeping its aspect ratio to fit ``H x W`` (mmcv's ``Resize(keep_ratio=True)``:
each side ``int(side * ratio + 0.5)``, bilinear), placed at the top left of an ``H x W`` canvas of 114
(``Pad(pad_val=114)``); then RTMDet subtracts mmdet's BGR mean ``(103.53, 116.28, 123.675)`` and divides by its std
``(57.375, 57.12, 58.395)`` while YOLOX takes the 0-255 values as they are (its ``DetDataPreprocessor`` has no
mean or std). ``H x W`` is the graph's own input size (640 x 640 for YOLOX-m/x, 320 x 320 for RTMDet-nano), or
640 x 640 when the graph leaves it open.

**Output**: mmdeploy ends the graph with its ``multiclass_nms`` (ONNX ``NonMaxSuppression``) and
``select_nms_index``: ``dets`` ``(1, N, 5)`` float32 ``[x1, y1, x2, y2, score]`` in the pixels of the network input,
and ``labels`` ``(1, N)`` int64 class indices (0: person, the only class of these models, and COCO's first), best
score first, ``N`` at most ``keep_top_k`` (100), with one all-zero row appended by mmdeploy so that ``N >= 1``.
:meth:`PersonDetector.detect` keeps the person rows of positive size, scales them back to the picture (divides by
the resize factor of each axis, as mmdeploy's SDK does) and writes them ``(x, y, w, h)``: the boxes mmdetection
would write into a COCO results file, so ``--detector`` gives what ``--boxes`` gives with that detector's results.

**Megvii's output** (``yolox/models/yolo_head.py`` in eval mode; ``export_onnx.py`` sets
``model.head.decode_in_inference`` False unless ``--decode_in_inference`` is given): one tensor ``(1, A, 5 + C)``,
one row per anchor point, level by level (strides 8, 16, 32; a P6 model adds 64) and row by row within a level,
``A = sum((H // s) * (W // s))`` (3549 at 416 x 416, 8400 at 640 x 640): ``(dx, dy, log w, log h)`` as the
regression layer gives them, the objectness and the ``C`` class scores already through their sigmoid. The input is
that of the YOLOX family here: BGR 0-255 on 114 at the top left (``yolox/data/data_augment.py``'s ``preproc``,
which truncates the resized sides where mmcv rounds them; the files made before release 0.1.1rc0 wanted RGB
normalised by ImageNet's mean and std, Megvii's ``--legacy``, and are not read). :func:`decode_yolox` decodes it
as ``yolox/utils/demo_utils.py``'s ``demo_postprocess`` does: centre ``(dx + cell x, dy + cell y) * stride``,
size ``exp(log w, log h) * stride``; a person's score is the objectness times the class-0 score (COCO's person; the
only class of a one-class model); then what Megvii's ``demo/ONNXRuntime/onnx_inference.py`` keeps before drawing:
scores above 0.1, overlaps above IoU 0.45 suppressed.
Where we depart: the suppression is :func:`~hourglass.people.boxes.suppress_overlaps` among person boxes only
(Megvii's class-aware ``multiclass_nms``; its demo runs the class-agnostic one, where a horse can suppress its
rider), continuous areas instead of ``+ 1`` pixel. A graph exported with ``--decode_in_inference`` has the same
shape with centres and sizes already in pixels; its values tell it apart (each centre lies near its own cell's
place in pixels, where a raw offset lies near 0) and it is read without the grid and ``exp``.

Then, as in mmpose's top-down demo (``--bbox-thr 0.3``, ``--nms-thr 0.3``), boxes scoring at or under
``box_threshold`` are dropped and overlapping ones suppressed (:func:`~hourglass.people.boxes.suppress_overlaps`).

ONNX Runtime comes with the ``[detect]`` extra (also in ``[onnx]`` and ``[all]``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from hourglass.errors import CheckpointError, ConfigError, InputError
from hourglass.extras import openvino_core, require_extra
from hourglass.people.boxes import BOX_THRESHOLD, NMS_THRESHOLD, box_problem, suppress_overlaps

__all__ = [
    "DEFAULT_DETECTOR",
    "DETECTORS",
    "FAMILIES",
    "RUNTIMES",
    "DetectorFamily",
    "PersonDetector",
    "decode_detections",
    "decode_yolox",
    "letterbox",
    "open_detector",
    "yolox_anchors",
]

PAD_VALUE = 114  # mmdet's Pad(pad_val=dict(img=(114, 114, 114))) in the YOLOX and RTMDet test pipelines
DYNAMIC_INPUT = (640, 640)  # (H, W) when the graph's input size is not fixed: rtmlib's default for both families
PERSON = 0  # the person class index of these models (person-only models, and COCO's class 0)
YOLOX_STRIDES = ((8, 16, 32), (8, 16, 32, 64))  # Megvii's demo_postprocess: strides, and with p6=True
YOLOX_SCORE = 0.1  # Megvii's demo/ONNXRuntime/onnx_inference.py: multiclass_nms(..., score_thr=0.1)
YOLOX_NMS = 0.45  # the same call's nms_thr


@dataclass(frozen=True)
class DetectorFamily:
    """How a detector family wants its input: per-channel ``mean`` and ``std`` in BGR order (None: 0-255 as is)."""

    name: str
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None


FAMILIES: dict[str, DetectorFamily] = {
    "yolox": DetectorFamily("yolox"),  # mmdet yolox configs: DetDataPreprocessor without mean/std
    "rtmdet": DetectorFamily("rtmdet", (103.53, 116.28, 123.675), (57.375, 57.12, 58.395)),  # mmdet rtmdet configs
}

DETECTORS: dict[str, str] = {
    "yolox-m-person": "yolox",
    "yolox-x-person": "yolox",
    "rtmdet-nano-person": "rtmdet",
    "yolox-nano-person": "yolox",
    "yolox-tiny-person": "yolox",
    **{f"yolox-{size}-coco": "yolox" for size in ("nano", "tiny", "s", "m", "l", "darknet53", "x")},
}
"""Published detectors by the name ``--detector`` takes (their files come from :func:`hourglass.checkpoint.hub.fetch`)
and their family."""

DEFAULT_DETECTOR = "yolox-m-person"
"""What ``--detector default`` runs (docs/PREDICT.md, "Finding the people", says why)."""


def family_of(text: str) -> DetectorFamily | None:
    """The family a name or path speaks of (``yolox`` or ``rtmdet`` in it, any case), or None."""
    lowered = text.lower()
    found = [family for key, family in FAMILIES.items() if key in lowered]
    return found[0] if len(found) == 1 else None


def letterbox(
    rgb: np.ndarray, input_size: Sequence[int], family: DetectorFamily, truncate: bool = False
) -> tuple[np.ndarray, tuple[float, float]]:
    """The network input ``(1, 3, H, W)`` float32 of an ``(h, w, 3)`` uint8 RGB picture, and the resize factors
    ``(sx, sy)`` (network pixels per picture pixel) of each axis.

    BGR, resized keeping the aspect ratio (each side ``int(side * ratio + 0.5)`` as mmcv rounds it, or with
    ``truncate`` ``int(side * ratio)`` as Megvii's ``preproc`` does; at least 1), at the top left of an ``H x W``
    canvas of 114, normalised by the family's mean and std when it has them (the module docstring).
    """
    H, W = int(input_size[0]), int(input_size[1])
    h, w = rgb.shape[:2]
    ratio = min(H / h, W / w)
    half = 0.0 if truncate else 0.5
    new_w, new_h = max(1, min(W, int(w * ratio + half))), max(1, min(H, int(h * ratio + half)))
    canvas = np.full((H, W, 3), PAD_VALUE, dtype=np.uint8)
    canvas[:new_h, :new_w] = cv2.resize(rgb, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    image = canvas[:, :, ::-1].astype(np.float32)  # RGB -> BGR
    if family.mean is not None and family.std is not None:
        image = (image - np.asarray(family.mean, np.float32)) / np.asarray(family.std, np.float32)
    return np.ascontiguousarray(image.transpose(2, 0, 1)[None]), (new_w / w, new_h / h)


def decode_detections(
    dets: np.ndarray, labels: np.ndarray, scale: Sequence[float], width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """Person boxes ``(N, 4)`` ``(x, y, w, h)`` in picture pixels and scores ``(N,)`` from mmdeploy's outputs.

    Args:
        dets: ``(1, N, 5)`` ``[x1, y1, x2, y2, score]`` in network-input pixels.
        labels: ``(1, N)`` class indices; rows of other classes are dropped.
        scale: ``(sx, sy)`` of :func:`letterbox`; boxes are divided by them.
        width, height: the picture; rows of zero size or wholly outside it (the padding) are dropped.

    Best score first (stable for ties). No score threshold is applied here.
    """
    rows = dets[0].astype(np.float64)
    keep = (labels[0] == PERSON) & np.isfinite(rows).all(axis=1)
    rows = rows[keep]
    sx, sy = float(scale[0]), float(scale[1])
    boxes = np.stack(
        [rows[:, 0] / sx, rows[:, 1] / sy, (rows[:, 2] - rows[:, 0]) / sx, (rows[:, 3] - rows[:, 1]) / sy], axis=1
    ).reshape(-1, 4)
    usable = np.array([box_problem(b, width, height) is None for b in boxes], dtype=bool)
    boxes, scores = boxes[usable], rows[usable, 4]
    order = np.argsort(-scores, kind="stable")
    return boxes[order], scores[order]


def yolox_anchors(input_size: Sequence[int], strides: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """The anchor points of a Megvii YOLOX output at input ``(H, W)``: cells ``(N, 2)`` ``(x, y)`` and strides
    ``(N,)``, in the order of its rows (level by level, row-major; ``demo_postprocess``'s ``H // stride`` cells).

    Example: ``yolox_anchors((416, 416), (8, 16, 32))[1].shape`` is ``(3549,)``.
    """
    cells, steps = [], []
    for stride in strides:
        ys, xs = np.mgrid[: int(input_size[0]) // stride, : int(input_size[1]) // stride]
        cells.append(np.stack([xs.reshape(-1), ys.reshape(-1)], axis=1))
        steps.append(np.full(xs.size, stride))
    return np.concatenate(cells).astype(np.float64), np.concatenate(steps).astype(np.float64)


def _yolox_strides(rows: int | None, input_size: Sequence[int]) -> tuple[int, ...] | None:
    """The strides of :data:`YOLOX_STRIDES` whose anchor points number ``rows`` at ``input_size``, or None."""
    for strides in YOLOX_STRIDES:
        if rows == sum((int(input_size[0]) // s) * (int(input_size[1]) // s) for s in strides):
            return strides
    return None


def decode_yolox(
    output: np.ndarray, input_size: Sequence[int], scale: Sequence[float], width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """Person boxes ``(N, 4)`` ``(x, y, w, h)`` in picture pixels and scores ``(N,)`` from Megvii's YOLOX output.

    Args:
        output: ``(1, A, 5 + C)``, one row per anchor point of :func:`yolox_anchors` (strides 8, 16, 32, or with 64
            for a P6 model, told apart by ``A``): ``(dx, dy, log w, log h)``, objectness, ``C`` class scores in
            ``[0, 1]``; or the same with centres and sizes in input pixels (``--decode_in_inference``).
        input_size: ``(H, W)`` of the network input.
        scale: ``(sx, sy)`` of :func:`letterbox`; boxes are divided by them.
        width, height: the picture; rows of zero size or wholly outside it (the padding) are dropped.

    Decoded as the module docstring says: objectness x class-0 score above 0.1, then overlaps above IoU 0.45 among
    them suppressed (Megvii's ONNX demo), best score first. No ``box_threshold`` is applied here.

    Raises:
        InputError: ``A`` is not the anchor count of strides 8-32 or 8-64 at ``input_size``, or the scores are
            outside ``[0, 1]`` (not a YOLOX head's sigmoid).
    """
    out = np.asarray(output)
    strides = _yolox_strides(out.shape[1], input_size) if out.ndim == 3 and out.shape[0] == 1 else None
    if strides is None or out.shape[2] < 6:
        raise InputError(
            f"expected YOLOX's output (1, A, 5 + classes) with A = {_anchor_counts(input_size)}, got {out.shape}"
        )
    rows = out[0].astype(np.float64)
    if not (rows[:, 4:] >= -1e-3).all() or not (rows[:, 4:] <= 1 + 1e-3).all():
        raise InputError("YOLOX's objectness and class scores must lie in [0, 1] (after the head's sigmoid)")
    cells, steps = yolox_anchors(input_size, strides)
    xy, wh = rows[:, :2], rows[:, 2:4]
    steps = steps[:, None]
    decoded = np.median(np.abs(xy / steps - cells - 0.5)) < np.median(np.abs(xy - 0.5))
    if not decoded:
        xy = (xy + cells) * steps
        with np.errstate(over="ignore"):
            wh = np.exp(wh) * steps
    scores = rows[:, 4] * rows[:, 5 + PERSON]
    boxes = np.concatenate([xy - wh / 2, wh], axis=1)
    keep = (scores > YOLOX_SCORE) & np.isfinite(boxes).all(axis=1)
    boxes, scores = boxes[keep], scores[keep]
    kept = suppress_overlaps(boxes, scores, YOLOX_NMS)
    boxes, scores = boxes[kept] / np.array([scale[0], scale[1], scale[0], scale[1]], np.float64), scores[kept]
    usable = np.array([box_problem(b, width, height) is None for b in boxes], dtype=bool)
    return boxes[usable].reshape(-1, 4), scores[usable]


def _anchor_counts(input_size: Sequence[int]) -> str:
    """``3549 (strides 8, 16, 32) or 3598 (P6: 8, 16, 32, 64) at 416 x 416``, for messages."""
    H, W = int(input_size[0]), int(input_size[1])
    counts = [sum((H // s) * (W // s) for s in strides) for strides in YOLOX_STRIDES]
    return f"{counts[0]} (strides 8, 16, 32) or {counts[1]} (P6: 8, 16, 32, 64) at {H} x {W}"


class PersonDetector:
    """A person detector from a local ``.onnx`` file (mmdeploy's ``end2end.onnx``, or Megvii's YOLOX export), run with
    ONNX Runtime or OpenVINO. Which of the two it is comes from the graph's outputs (the module docstring).

    Args:
        path: the ONNX file.
        family: ``"yolox"`` or ``"rtmdet"`` (how to prepare the input, the module docstring); None: YOLOX for
            Megvii's layout, else the one the path names (``yolox_m_8xb8-300e_humanart-c2c7a14a/end2end.onnx``).
        box_threshold: :meth:`__call__` keeps boxes scoring above it (mmpose's demo: 0.3).
        nms_threshold: then drops boxes overlapping a better one by IoU above it (mmpose's demo: 0.3).
        input_size: ``(H, W)`` of the network input when the graph leaves it open (default 640 x 640).
        runtime: ``"onnxruntime"`` (the ``[detect]`` extra; fp32) or ``"openvino"`` (the ``[openvino]`` extra).
        precision: ``"fp32"``, or ``"bf16"`` with OpenVINO (its ``INFERENCE_PRECISION_HINT``).
        threads: ONNX Runtime's intra-op threads (None: its default, every core).

    Raises:
        MissingExtraError: the runtime is not installed (naming its extra).
        CheckpointError: a missing file, one the runtime cannot load, or a graph with neither mmdeploy's detection
            outputs nor Megvii's YOLOX one, naming the file and what was expected.
        ConfigError: a family that is unknown or that the path does not name; an unknown runtime or precision.

    Example: ``boxes, scores = PersonDetector("yolox_m/end2end.onnx")(rgb)`` gives ``(N, 4)`` ``(x, y, w, h)``
    boxes in ``rgb``'s pixels and their ``(N,)`` scores, best first.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        family: str | None = None,
        box_threshold: float = BOX_THRESHOLD,
        nms_threshold: float = NMS_THRESHOLD,
        input_size: Sequence[int] | None = None,
        runtime: str = "onnxruntime",
        precision: str = "fp32",
        threads: int | None = None,
    ) -> None:
        self.path = Path(path)
        if family is not None and family not in FAMILIES:
            raise ConfigError(f"unknown detector family {family!r}; expected one of {', '.join(FAMILIES)}")
        self.box_threshold = float(box_threshold)
        self.nms_threshold = float(nms_threshold)
        if (runtime, precision) not in RUNTIMES:
            choices = ", ".join(f"{r} {p}" for r, p in RUNTIMES)
            raise ConfigError(f"detector runtime {runtime} {precision} is not one of: {choices}")
        self.runtime, self.precision = runtime, precision
        loader = _load_onnxruntime if runtime == "onnxruntime" else _load_openvino
        inputs, outputs, compile_graph = loader(self.path, precision, threads)
        self.input_name, self.input_size = self._check_input(inputs, input_size)
        self.output_names = self._check_outputs(outputs)
        # "mmdeploy" (dets and labels) or "megvii" (YOLOX's one undecoded output), as the graph's outputs say
        self.layout = "megvii" if len(self.output_names) == 1 else "mmdeploy"
        self.family = self._family(family)
        self._run = compile_graph(self.input_name, self.input_size, self.output_names)

    def _family(self, family: str | None) -> DetectorFamily:
        if family is not None:
            return FAMILIES[family]
        if self.layout == "megvii":
            return FAMILIES["yolox"]
        found = family_of(str(self.path))
        if found is None:
            raise ConfigError(
                f"{self.path}: cannot tell whether this detector is a YOLOX or an RTMDet (they want different "
                "inputs): keep the published file's folder name (yolox_... or rtmdet_...) in its path, or pass family="
            )
        return found

    def _check_input(self, inputs: list[_Tensor], input_size: Sequence[int] | None) -> tuple[str, tuple[int, int]]:
        shape = inputs[0][1] if len(inputs) == 1 else []
        if len(shape) != 4 or shape[1] != 3:
            got = ", ".join(f"{name} {_shown(dims)}" for name, dims in inputs)
            raise CheckpointError(f"{self.path}: expected one image input (1, 3, H, W), got {got}")
        fixed = shape[2:]
        if input_size is not None:
            size = (int(input_size[0]), int(input_size[1]))
            if any(f is not None and f != s for f, s in zip(fixed, size, strict=True)):
                raise ConfigError(f"{self.path}: input_size {size} differs from the graph's {_shown(fixed)}")
        else:
            size = (fixed[0] or DYNAMIC_INPUT[0], fixed[1] or DYNAMIC_INPUT[1])
        return inputs[0][0], size

    def _check_outputs(self, outputs: list[_Tensor]) -> tuple[str, ...]:
        """The names of ``dets`` ``(1, N, 5)`` and ``labels`` ``(1, N)`` (by name, else by shape), or of Megvii's one
        output ``(1, A, 5 + C)`` whose ``A`` is the anchor count at the input size (checked when it runs if open)."""
        named = dict(outputs)
        if "dets" in named and "labels" in named:
            return "dets", "labels"
        dets = [n for n, s in outputs if len(s) == 3 and s[2] == 5]
        labels = [n for n, s in outputs if len(s) == 2]
        if len(dets) == 1 and len(labels) == 1:
            return dets[0], labels[0]
        if len(outputs) == 1 and len(outputs[0][1]) == 3:
            name, (batch, rows, row) = outputs[0]
            anchors = rows is None or _yolox_strides(rows, self.input_size) is not None
            if batch in (1, None) and (row is None or row >= 6) and anchors:
                return (name,)
        got = ", ".join(f"{n} {_shown(s)}" for n, s in outputs)
        raise CheckpointError(
            f"{self.path}: expected mmdeploy's detection outputs dets (1, N, 5) and labels (1, N), or YOLOX's one "
            f"output (1, A, 5 + classes) with A = {_anchor_counts(self.input_size)}, got {got}"
        )

    @property
    def name(self) -> str:
        """The file, for messages."""
        return str(self.path)

    def detect(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every person box the network gives for ``rgb`` ``(h, w, 3)`` uint8: boxes ``(N, 4)`` ``(x, y, w, h)`` in
        its pixels and scores ``(N,)``, best first, before ``box_threshold`` and ``nms_threshold``.

        Raises:
            InputError: ``rgb`` is not an ``(h, w, 3)`` uint8 array.
            CheckpointError: the network's outputs do not have the shapes of mmdeploy's or Megvii's, or (Megvii's) its
                scores are not in ``[0, 1]`` (naming the file).
        """
        arr = np.asarray(rgb)
        if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8 or 0 in arr.shape:
            raise InputError(f"detector input must be an (H, W, 3) uint8 RGB array, got {arr.dtype} {arr.shape}")
        image, scale = letterbox(arr, self.input_size, self.family, truncate=self.layout == "megvii")
        if self.layout == "megvii":
            try:
                return decode_yolox(self._run(image)[0], self.input_size, scale, arr.shape[1], arr.shape[0])
            except InputError as err:
                raise CheckpointError(f"{self.path}: {err}") from None
        dets, labels = (np.asarray(out) for out in self._run(image))
        if dets.ndim != 3 or dets.shape[0] != 1 or dets.shape[2] != 5 or labels.shape != dets.shape[:2]:
            raise CheckpointError(
                f"{self.path}: the detector returned dets {dets.shape} and labels {labels.shape}, "
                "expected (1, N, 5) and (1, N)"
            )
        return decode_detections(dets, labels, scale, arr.shape[1], arr.shape[0])

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The people of ``rgb``: boxes ``(P, 4)`` ``(x, y, w, h)`` and scores ``(P,)`` of :meth:`detect` scoring above
        ``box_threshold``, overlaps above ``nms_threshold`` suppressed, best first."""
        boxes, scores = self.detect(rgb)
        above = scores > self.box_threshold
        boxes, scores = boxes[above], scores[above]
        keep = suppress_overlaps(boxes, scores, self.nms_threshold)
        return boxes[keep], scores[keep]


RUNTIMES = (("onnxruntime", "fp32"), ("openvino", "fp32"), ("openvino", "bf16"))
"""The runtimes and precisions a :class:`PersonDetector` runs with."""

_Tensor = tuple[str, list[int | None]]  # a graph input or output: name, dimensions (None: open)
_Compile = Callable[[str, tuple[int, int], Sequence[str]], Callable[[np.ndarray], Sequence[Any]]]


def _shown(dims: Sequence[int | None]) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in dims) + ")"


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _load_onnxruntime(path: Path, precision: str, threads: int | None) -> tuple[list[_Tensor], list[_Tensor], _Compile]:
    """ONNX Runtime's CPU session of ``path``: its inputs, outputs, and a function that returns the runner."""
    ort = require_extra("onnxruntime", "detect")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such detector file (expected an ONNX person detector)")
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = int(threads)
    options.log_severity_level = 3  # errors only: ONNX Runtime's warnings would interleave with our output
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # ONNX Runtime raises its own types (InvalidProtobuf, Fail, ...)
        raise CheckpointError(f"{path}: not an ONNX model ONNX Runtime can load ({_first_line(err)})") from None

    def dims(shape: Sequence[Any]) -> list[int | None]:
        return [d if isinstance(d, int) and d > 0 else None for d in shape]

    inputs = [(i.name, dims(i.shape)) for i in session.get_inputs()]
    outputs = [(o.name, dims(o.shape)) for o in session.get_outputs()]

    def compile_graph(input_name: str, size: tuple[int, int], names: Sequence[str]) -> Callable:
        return lambda image: session.run(list(names), {input_name: image})

    return inputs, outputs, compile_graph


def _load_openvino(path: Path, precision: str, threads: int | None) -> tuple[list[_Tensor], list[_Tensor], _Compile]:
    """OpenVINO's model of ``path``: its inputs, outputs, and a function that compiles it for the CPU at one input
    size (``INFERENCE_PRECISION_HINT`` f32 or bf16, latency hint) and returns the runner."""
    core = openvino_core()
    if not path.is_file():
        raise CheckpointError(f"{path}: no such detector file (expected an ONNX person detector)")
    try:
        model = core.read_model(str(path))
    except Exception as err:  # OpenVINO raises RuntimeError and its own types
        raise CheckpointError(f"{path}: not an ONNX model OpenVINO can read ({_first_line(err)})") from None

    def tensors(ports: Sequence[Any]) -> list[_Tensor]:
        shapes = [port.get_partial_shape() for port in ports]
        return [
            (port.get_any_name(), [d.get_length() if d.is_static else None for d in shape])
            for port, shape in zip(ports, shapes, strict=True)
        ]

    inputs, outputs = tensors(model.inputs), tensors(model.outputs)

    def compile_graph(input_name: str, size: tuple[int, int], names: Sequence[str]) -> Callable:
        model.reshape({input_name: [1, 3, *size]})
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32"}
        if threads is not None:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        try:
            request = core.compile_model(model, "CPU", config).create_infer_request()
        except Exception as err:
            raise CheckpointError(f"{path}: OpenVINO cannot compile this detector ({_first_line(err)})") from None

        def run(image: np.ndarray) -> list[np.ndarray]:
            request.infer({input_name: image})
            return [np.array(request.get_tensor(name).data) for name in names]

        return run

    return inputs, outputs, compile_graph


def open_detector(
    detector: Any,
    box_threshold: float = BOX_THRESHOLD,
    nms_threshold: float = NMS_THRESHOLD,
    runtime: str = "onnxruntime",
    precision: str = "fp32",
) -> PersonDetector:
    """A :class:`PersonDetector` from a name, a local file or an existing detector (returned as it is), run with
    ``runtime`` at ``precision`` (:data:`RUNTIMES`).

    A :class:`~pathlib.Path` or a string ending in ``.onnx`` is a local file (``--detector-weights``); another
    string is a published detector's name (``--detector``: ``default`` or a key of :data:`DETECTORS`), whose file
    :func:`hourglass.checkpoint.hub.fetch` brings into the weights cache (or finds there when offline).

    Raises:
        ConfigError: an unknown name, naming the known ones.
        CheckpointError, MissingExtraError: as :class:`PersonDetector`, and as ``fetch`` for a name.
    """
    if isinstance(detector, PersonDetector):
        return detector
    if isinstance(detector, os.PathLike) or (isinstance(detector, str) and detector.lower().endswith(".onnx")):
        return PersonDetector(detector, None, box_threshold, nms_threshold, runtime=runtime, precision=precision)
    if not isinstance(detector, str):
        raise ConfigError(f"detector must be a name, an .onnx path or a PersonDetector, got {type(detector).__name__}")
    name = DEFAULT_DETECTOR if detector == "default" else detector
    if name not in DETECTORS:
        raise ConfigError(f"unknown detector {detector!r}; expected default, {', '.join(DETECTORS)} or an .onnx file")
    from hourglass.checkpoint.hub import fetch  # the published-weights cache (weights get, offline line)

    path = fetch(name)
    return PersonDetector(path, DETECTORS[name], box_threshold, nms_threshold, runtime=runtime, precision=precision)
