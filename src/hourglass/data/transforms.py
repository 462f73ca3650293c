"""Geometric and photometric transforms of the top-down pipeline.

The crop is the HRNet one: a person box of ``200 * scale`` pixels around ``center``, rotated by
``rotation`` degrees, mapped onto the ``(H, W)`` network input so that ``center`` lands on
``(W / 2, H / 2)`` and the box width fills ``W``. Matrices are (2, 3) affine maps of (x, y) pixel
coordinates, pixel centres at integers (OpenCV's ``warpAffine`` convention), so image and keypoints
transformed with the same matrix stay aligned exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from hourglass.errors import DataError


def get_affine_matrix(
    center: Sequence[float] | np.ndarray,
    scale: float | Sequence[float] | np.ndarray,
    rotation: float,
    output_size: Sequence[int],
    inverse: bool = False,
) -> np.ndarray:
    """The (2, 3) matrix from image pixels to crop pixels (or back, with ``inverse``).

    Args:
        center: (2,) box centre (x, y) in image pixels.
        scale: box size in units of 200 px, a number or (2,) (sx, sy); as in HRNet only ``sx`` sets the
            zoom (``W / (200 * sx)``), so ``sy / sx`` should equal ``H / W`` (``box_to_center_scale`` does that).
        rotation: degrees; positive values turn the crop's "up" clockwise on screen (toward image +x), so
            the picture in the crop appears turned counter-clockwise (HRNet's ``get_affine_transform``).
        output_size: (H, W) of the crop.
        inverse: return the crop -> image matrix instead (computed in closed form, not by inverting).

    Returns:
        (2, 3) float64.
    """
    c = np.asarray(center, dtype=np.float64).reshape(2)
    s = np.asarray(scale, dtype=np.float64).reshape(-1)
    H, W = int(output_size[0]), int(output_size[1])
    if not (np.all(np.isfinite(c)) and np.all(np.isfinite(s)) and s[0] > 0 and np.isfinite(rotation)):
        raise DataError(f"get_affine_matrix: need a finite center and scale > 0, got center={c}, scale={s}")
    k = W / (200.0 * s[0])
    t = np.deg2rad(rotation)
    cos, sin = np.cos(t), np.sin(t)
    dc = np.array([W * 0.5, H * 0.5])
    if inverse:  # src = c + R(t) (dst - dc) / k
        a = np.array([[cos, -sin], [sin, cos]]) / k
        return np.hstack([a, (c - a @ dc)[:, None]])
    a = np.array([[cos, sin], [-sin, cos]]) * k  # dst = dc + k R(-t) (src - c)
    return np.hstack([a, (dc - a @ c)[:, None]])


def crop_to_image_matrices(meta: dict, output_size: Sequence[int]) -> np.ndarray:
    """Crop -> image matrices ``(B, 2, 3)`` of a collated batch's ``meta`` (its ``center``, ``scale`` and
    ``rotation`` per sample, as datasets here return them) for crops of ``output_size`` (H, W)."""
    return np.stack(
        [
            get_affine_matrix(c, s, r, output_size, inverse=True)
            for c, s, r in zip(meta["center"], meta["scale"], meta["rotation"], strict=True)
        ]
    )


def mirror_matrix(matrix: np.ndarray, width: int) -> np.ndarray:
    """``matrix`` followed by a horizontal mirror of a ``width``-pixel output (x -> width - 1 - x)."""
    out = np.array(matrix, dtype=np.float64, copy=True)
    out[0] = -out[0]
    out[0, 2] += width - 1
    return out


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) matrix, or a batch (B, 2, 3), to points (..., 2) / (B, ..., 2); returns float64."""
    p = np.asarray(points, dtype=np.float64)
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape == (2, 3):
        return p @ m[:, :2].T + m[:, 2]
    if m.ndim == 3 and m.shape[1:] == (2, 3) and p.shape[0] == m.shape[0]:
        b = m.shape[0]
        flat = p.reshape(b, -1, 2)
        return (np.einsum("bij,bnj->bni", m[:, :, :2], flat) + m[:, None, :, 2]).reshape(p.shape)
    raise DataError(f"transform_points: expected matrix (2, 3) or (B, 2, 3) matching points, got {m.shape}, {p.shape}")


def warp_image(image: np.ndarray, matrix: np.ndarray, output_size: Sequence[int]) -> np.ndarray:
    """The crop (H, W, C) of an (h, w, C) image: bilinear, black outside the image (``cv2.warpAffine``)."""
    H, W = int(output_size[0]), int(output_size[1])
    return cv2.warpAffine(image, matrix, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def box_to_center_scale(
    box: Sequence[float] | np.ndarray, aspect_ratio: float, padding: float = 1.25
) -> tuple[np.ndarray, np.ndarray]:
    """Center (2,) and scale (2,) (units of 200 px) of an (x, y, w, h) box (HRNet ``_xywh2cs``).

    The box is widened or heightened to ``aspect_ratio`` = W / H of the network input, then enlarged by
    ``padding``.
    """
    x, y, w, h = (float(v) for v in box)
    if not (np.isfinite([x, y, w, h]).all() and w > 0 and h > 0):
        raise DataError(f"box_to_center_scale: box (x, y, w, h) = {tuple(box)} has no area")
    center = np.array([x + w * 0.5, y + h * 0.5])
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    else:
        w = h * aspect_ratio
    return center, np.array([w, h]) / 200.0 * padding


@dataclass(frozen=True)
class AugmentParams:
    """One draw of :class:`Augmentation`: the values applied to one sample."""

    rotation: float = 0.0
    scale: float = 1.0
    flip: bool = False
    brightness: float = 1.0
    contrast: float = 1.0
    saturation: float = 1.0


@dataclass(frozen=True)
class Augmentation:
    """Training augmentation settings (defaults: HRNet's ranges, torchvision-style colour jitter).

    Attributes:
        rotation: maximum |rotation| in degrees, drawn uniformly, applied with probability ``rotation_prob``.
        scale: (low, high) range of the box scale factor, drawn uniformly.
        flip_prob: probability of a horizontal flip (with left/right joints swapped).
        colour: strength ``j`` of brightness, contrast and saturation jitter, each factor in ``[1-j, 1+j]``.
    """

    rotation: float = 30.0
    rotation_prob: float = 0.6
    scale: tuple[float, float] = (0.75, 1.25)
    flip_prob: float = 0.5
    colour: float = 0.2

    def sample(self, rng: np.random.Generator) -> AugmentParams:
        """Draw the parameters for one sample from ``rng`` (the only source of randomness)."""
        u = rng.random(7)
        j = self.colour
        return AugmentParams(
            rotation=float((2 * u[0] - 1) * self.rotation) if u[1] < self.rotation_prob else 0.0,
            scale=float(self.scale[0] + u[2] * (self.scale[1] - self.scale[0])),
            flip=bool(u[3] < self.flip_prob),
            brightness=float(1 + j * (2 * u[4] - 1)),
            contrast=float(1 + j * (2 * u[5] - 1)),
            saturation=float(1 + j * (2 * u[6] - 1)),
        )


_GREY = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601 luma weights (they sum to 1)


def colour_jitter(image: np.ndarray, params: AugmentParams) -> np.ndarray:
    """Brightness, then contrast, then saturation of an RGB image (H, W, 3), uint8 or float in [0, 1].

    The three steps are linear, so they are folded into one 3x4 colour matrix applied in a single pass
    (``cv2.transform``): brightness ``x * b``; contrast ``c * x + (1 - c) * mean grey``; saturation
    ``s * x + (1 - s) * grey(x)``. Unlike torchvision, which clamps after each step, the result is
    clipped once at the end (uint8 saturates; float is clipped to [0, 1]). Returns a new array.
    """
    b, c, s = params.brightness, params.contrast, params.saturation
    if b == c == s == 1.0:
        return image.copy()
    mean = float(np.dot(cv2.mean(image)[:3], _GREY))
    mix = s * np.eye(3) + (1 - s) * np.outer(np.ones(3), _GREY)
    matrix = np.hstack([c * b * mix, np.full((3, 1), (1 - c) * b * mean)])
    out = cv2.transform(image, matrix)
    if out.dtype != np.uint8:
        np.clip(out, 0.0, 1.0, out=out)
    return out
