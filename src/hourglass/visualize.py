"""Pictures to look at: skeleton overlays, "prediction | ground truth" panels and heatmap montages (OpenCV).

Images here are ``(H, W, 3)`` uint8 RGB (what :func:`to_rgb_uint8` makes of a model input or a file read
with ``cv2`` and converted); :func:`write_image` converts to OpenCV's BGR and writes atomically. Keypoints
are ``(x, y)`` pixels with pixel centres at integers, which is also OpenCV's drawing convention; they are
drawn with sub-pixel precision. Colours come from the skeleton: each limb its ``colours`` entry, each
joint the colour of its first limb (white if it has none).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from hourglass.data.skeletons import Skeleton
from hourglass.errors import ConfigError, InputError
from hourglass.files import atomic_write

RGB = tuple[int, int, int]
_SHIFT = 4  # fractional bits for sub-pixel drawing
_WHITE: RGB = (255, 255, 255)


def to_rgb_uint8(image: Any) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB from a model input ``(3, H, W)`` float in [0, 1] (numpy or torch), an
    ``(H, W, 3)`` float in [0, 1] or uint8 image, or an ``(H, W)`` grey image. Always a new array."""
    if hasattr(image, "detach"):
        image = image.detach().to("cpu").float().numpy()
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[2] not in (1, 3):
        arr = arr.transpose(1, 2, 0)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3):
        raise InputError(f"image must be (H, W, 3), (H, W) or (3, H, W), got shape {np.asarray(image).shape}")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    if arr.dtype == np.uint8:
        return arr.copy()
    return (np.clip(np.nan_to_num(arr.astype(np.float32)), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def joint_colours(skeleton: Skeleton) -> list[RGB]:
    """One RGB colour per joint: that of the first limb (edge) it belongs to, white if none."""
    colours: list[RGB] = [_WHITE] * skeleton.num_joints
    seen = [False] * skeleton.num_joints
    for (a, b), colour in zip(skeleton.edges, skeleton.colours, strict=True):
        for j in (a, b):
            if not seen[j]:
                colours[j], seen[j] = tuple(colour), True  # type: ignore[assignment]
    return colours


def draw_skeleton(
    image: Any,
    keypoints: Any,
    skeleton: Skeleton,
    scores: Any | None = None,
    visible: Any | None = None,
    score_threshold: float = 0.3,
    faded_alpha: float = 0.35,
    radius: int | None = None,
    thickness: int | None = None,
    colour: RGB | None = None,
) -> np.ndarray:
    """A copy of ``image`` with the skeleton drawn on it (:func:`paint_skeleton` on :func:`to_rgb_uint8`'s copy).

    Args:
        image: anything :func:`to_rgb_uint8` accepts.
        keypoints, skeleton, scores, visible, score_threshold, faded_alpha, radius, thickness, colour: as for
            :func:`paint_skeleton`.

    Returns:
        ``(H, W, 3)`` uint8 RGB.
    """
    canvas = to_rgb_uint8(image)
    paint_skeleton(
        canvas, keypoints, skeleton, scores, visible, score_threshold, faded_alpha, radius, thickness, colour
    )
    return canvas


def paint_skeleton(
    canvas: np.ndarray,
    keypoints: Any,
    skeleton: Skeleton,
    scores: Any | None = None,
    visible: Any | None = None,
    score_threshold: float = 0.3,
    faded_alpha: float = 0.35,
    radius: int | None = None,
    thickness: int | None = None,
    colour: RGB | None = None,
) -> np.ndarray:
    """Draw the skeleton on ``canvas`` ``(H, W, 3)`` uint8 RGB, in place (a video frame needs no copy); returns it.

    Args:
        canvas: ``(H, W, 3)`` uint8, C-contiguous.
        keypoints: ``(K, 2)`` ``(x, y)`` in the image's pixels.
        skeleton: joint metadata; ``K`` must equal ``skeleton.num_joints``.
        scores: ``(K,)`` confidences; joints below ``score_threshold`` (and limbs touching them) are drawn
            faded, blended at ``faded_alpha`` over the image. Only the region those strokes cover is blended
            (the rest would come out unchanged), so a faded joint costs its own pixels, not the frame's.
        visible: ``(K,)`` joints to draw at all (e.g. annotated ones of a ground truth); non-finite
            keypoints are never drawn.
        radius, thickness: joint radius and limb width in pixels; by default they grow with the image.
        colour: one colour for every limb and joint (a person's track colour) instead of the skeleton's.
    """
    if canvas.dtype != np.uint8 or canvas.ndim != 3 or canvas.shape[2] != 3 or not canvas.flags.c_contiguous:
        raise InputError(f"canvas must be a C-contiguous (H, W, 3) uint8 array, got {canvas.dtype} {canvas.shape}")
    kp = np.asarray(keypoints, dtype=np.float64)
    k = skeleton.num_joints
    if kp.shape != (k, 2):
        raise InputError(f"keypoints must have shape ({k}, 2) for skeleton {skeleton.name!r}, got {kp.shape}")
    drawn = np.isfinite(kp).all(axis=1)
    if visible is not None:
        vis = np.asarray(visible).reshape(-1)
        if vis.shape != (k,):
            raise InputError(f"visible must have shape ({k},), got {vis.shape}")
        drawn &= vis > 0
    strong = np.ones(k, dtype=bool)
    if scores is not None:
        sc = np.asarray(scores, dtype=np.float64).reshape(-1)
        if sc.shape != (k,):
            raise InputError(f"scores must have shape ({k},), got {sc.shape}")
        strong = sc >= score_threshold
    h, w = canvas.shape[:2]
    size = min(h, w)
    radius = radius or max(2, round(size / 90))
    thickness = thickness or max(1, round(size / 160))
    fixed = np.round(np.nan_to_num(kp) * (1 << _SHIFT)).astype(np.int64)
    colours = joint_colours(skeleton) if colour is None else [colour] * k
    limb_colours = skeleton.colours if colour is None else [colour] * len(skeleton.edges)

    def paint(target: np.ndarray, want_strong: bool, offset: tuple[int, int] = (0, 0)) -> None:
        shift = np.array(offset, dtype=np.int64) << _SHIFT
        for (a, b), limb in zip(skeleton.edges, limb_colours, strict=True):
            if drawn[a] and drawn[b] and bool(strong[a] and strong[b]) == want_strong:
                pa, pb = (int(v) for v in fixed[a] - shift), (int(v) for v in fixed[b] - shift)
                cv2.line(target, tuple(pa), tuple(pb), tuple(int(c) for c in limb), thickness, cv2.LINE_AA, _SHIFT)
        for j in range(k):
            if drawn[j] and bool(strong[j]) == want_strong:
                centre = (int(fixed[j, 0] - shift[0]), int(fixed[j, 1] - shift[1]))
                cv2.circle(target, centre, radius << _SHIFT, colours[j], -1, cv2.LINE_AA, _SHIFT)
                cv2.circle(target, centre, radius << _SHIFT, (0, 0, 0), 1, cv2.LINE_AA, _SHIFT)

    faded = drawn & ~strong  # the points the faded strokes cover: weak joints, and both ends of a faded limb
    for a, b in skeleton.edges:
        if drawn[a] and drawn[b] and not (strong[a] and strong[b]):
            faded[a] = faded[b] = True
    if faded.any():
        margin = radius + thickness + 2  # anti-aliased strokes reach about this far past their points
        lo = np.floor(kp[faded].min(axis=0)).astype(np.int64) - margin
        hi = np.ceil(kp[faded].max(axis=0)).astype(np.int64) + margin + 1
        x0, y0 = int(min(max(lo[0], 0), w)), int(min(max(lo[1], 0), h))
        x1, y1 = int(min(max(hi[0], 0), w)), int(min(max(hi[1], 0), h))
        if x1 > x0 and y1 > y0:
            region = canvas[y0:y1, x0:x1]
            layer = region.copy()
            paint(layer, want_strong=False, offset=(x0, y0))
            cv2.addWeighted(layer, faded_alpha, region, 1.0 - faded_alpha, 0.0, dst=region)
    paint(canvas, want_strong=True)
    return canvas


def draw_boxes(image: Any, boxes: Any, colour: RGB = (255, 255, 0), thickness: int = 1) -> np.ndarray:
    """A copy of ``image`` with ``(N, 4)`` ``(x, y, w, h)`` boxes outlined (corners ``x, y`` and ``x + w, y + h``)."""
    canvas = to_rgb_uint8(image)
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    for x, y, w, h in np.round(b * (1 << _SHIFT)).astype(np.int64):
        cv2.rectangle(canvas, (int(x), int(y)), (int(x + w), int(y + h)), colour, thickness, cv2.LINE_AA, _SHIFT)
    return canvas


def track_colour(track_id: int) -> RGB:
    """A bright RGB colour for ``track_id``: hues a golden angle apart, so neighbouring ids differ."""
    hue = int((track_id * 137.508) % 360) // 2  # OpenCV's hue is 0-179
    hsv = np.array([[[hue, 220, 255]]], dtype=np.uint8)
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])  # type: ignore[return-value]


def draw_track(image: np.ndarray, box: Any, track_id: int, thickness: int | None = None) -> np.ndarray:
    """``image`` (uint8 RGB, drawn on in place and returned) with box ``(x, y, w, h)`` outlined in the track's colour
    and labelled ``id N`` above its top-left corner."""
    colour = track_colour(track_id)
    x, y, w, h = (float(v) for v in np.asarray(box, dtype=np.float64).reshape(4))
    size = min(image.shape[:2])
    thickness = thickness or max(1, round(size / 240))
    one = 1 << _SHIFT
    corners = (round(x * one), round(y * one)), (round((x + w) * one), round((y + h) * one))
    cv2.rectangle(image, corners[0], corners[1], colour, thickness, cv2.LINE_AA, _SHIFT)
    scale = max(0.4, size / 600)
    text = f"id {track_id}"
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    left, top = int(max(x, 0)), int(max(y - th - base - 2, 0))
    cv2.rectangle(image, (left, top), (left + tw + 4, top + th + base + 2), colour, -1)
    cv2.putText(image, text, (left + 2, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return image


def label(image: np.ndarray, text: str) -> np.ndarray:
    """``image`` (uint8 RGB) with a dark caption bar of ``text`` above it."""
    h, w = image.shape[:2]
    scale = max(0.4, min(w, 4 * h) / 640)
    (_tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    bar = np.full((th + base + 8, w, 3), 32, dtype=np.uint8)
    cv2.putText(bar, text, (4, th + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, _WHITE, 1, cv2.LINE_AA)
    return np.concatenate([bar, image], axis=0)


def side_by_side(images: Sequence[np.ndarray], labels: Sequence[str] | None = None, gap: int = 4) -> np.ndarray:
    """uint8 RGB images next to each other, each scaled to the first one's height, optionally captioned."""
    if not images:
        raise InputError("side_by_side: no images")
    if labels is not None and len(labels) != len(images):
        raise InputError(f"side_by_side: {len(images)} images but {len(labels)} labels")
    height = images[0].shape[0]
    tiles = []
    for i, img in enumerate(images):
        img = to_rgb_uint8(img)
        if img.shape[0] != height:
            width = max(1, round(img.shape[1] * height / img.shape[0]))
            img = cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)
        if labels is not None:
            img = label(img, labels[i])
        tiles.append(img)
        if i < len(images) - 1:
            tiles.append(np.full((tiles[-1].shape[0], gap, 3), 255, dtype=np.uint8))
    return np.concatenate(tiles, axis=1)


def prediction_panel(
    image: Any,
    pred: Any,
    gt: Any,
    skeleton: Skeleton,
    scores: Any | None = None,
    gt_visible: Any | None = None,
    score_threshold: float = 0.3,
) -> np.ndarray:
    """The "prediction | ground truth" picture: ``pred`` ``(K, 2)`` and ``gt`` ``(K, 2)`` drawn on two copies."""
    left = draw_skeleton(image, pred, skeleton, scores=scores, score_threshold=score_threshold)
    right = draw_skeleton(image, gt, skeleton, visible=gt_visible)
    return side_by_side([left, right], ["prediction", "ground truth"])


def heatmap_montage(
    heatmaps: Any,
    image: Any | None = None,
    joint_names: Sequence[str] | None = None,
    columns: int | None = None,
    cell: int = 128,
    image_alpha: float = 0.4,
) -> np.ndarray:
    """A grid of per-joint heatmaps ``(K, h, w)``, colour-mapped (JET), optionally over the input image.

    All joints share one scale (0 to the largest value of any map, at least 1, the target peak), so a
    weak joint looks weak. Each cell is ``cell`` pixels high (width by the heatmap's aspect) and captioned
    with the joint name and its peak value.

    Returns:
        ``(rows * cell_h, columns * cell_w, 3)`` uint8 RGB.
    """
    if hasattr(heatmaps, "detach"):
        heatmaps = heatmaps.detach().to("cpu").float().numpy()
    hm = np.asarray(heatmaps, dtype=np.float32)
    if hm.ndim != 3:
        raise InputError(f"heatmaps must have shape (K, h, w), got {hm.shape}")
    k, h, w = hm.shape
    if joint_names is not None and len(joint_names) != k:
        raise InputError(f"{k} heatmaps but {len(joint_names)} joint names")
    columns = columns or int(np.ceil(np.sqrt(k)))
    rows = int(np.ceil(k / columns))
    ch, cw = cell, max(1, round(cell * w / h))
    vmax = max(1.0, float(np.nanmax(hm)) if hm.size else 1.0)
    background = None
    if image is not None:
        background = cv2.resize(to_rgb_uint8(image), (cw, ch), interpolation=cv2.INTER_AREA)
    grid = np.zeros((rows * ch, columns * cw, 3), dtype=np.uint8)
    for j in range(k):
        level = (np.clip(np.nan_to_num(hm[j]) / vmax, 0.0, 1.0) * 255).astype(np.uint8)
        level = cv2.resize(level, (cw, ch), interpolation=cv2.INTER_NEAREST)
        tile = cv2.cvtColor(cv2.applyColorMap(level, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
        if background is not None:
            tile = cv2.addWeighted(background, image_alpha, tile, 1.0 - image_alpha, 0.0)
        name = joint_names[j] if joint_names is not None else str(j)
        cv2.putText(tile, f"{name} {hm[j].max():.2f}", (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, _WHITE, 1, cv2.LINE_AA)
        r, c = divmod(j, columns)
        grid[r * ch : (r + 1) * ch, c * cw : (c + 1) * cw] = tile
    return grid


def write_image(path: str | os.PathLike[str], image: np.ndarray) -> Path:
    """Write a uint8 RGB image (format by the extension: .png, .jpg ...) atomically; returns the path."""
    path = Path(path)
    try:
        ok, data = cv2.imencode(path.suffix or ".png", cv2.cvtColor(to_rgb_uint8(image), cv2.COLOR_RGB2BGR))
    except cv2.error:
        ok = False
    if not ok:
        raise ConfigError(f"{path}: OpenCV cannot encode an image with extension {path.suffix!r}")

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data.tobytes())

    return atomic_write(path, write)
