"""The one image reader of training and inference, and the one conversion of pixels to network inputs.

Orientation: JPEG files may carry an EXIF orientation tag (a phone's portrait photo stored as a landscape
bitmap plus "rotate 90 degrees"). :func:`read_image` applies it, for training images and for images to
predict alike, so pixels are as photo viewers, annotation tools that honour the tag, OpenCV's default
``IMREAD_COLOR`` and mmcv's default reader show them, and a keypoint means the same pixel in both. A
dataset annotated on the stored bitmap while ignoring the tag needs its images re-saved without the tag
(e.g. ``exiftran -ai``). PNG files have no orientation tag.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from hourglass.errors import DataError, InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
"""File types read (any case)."""


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB of a PNG or JPEG file, EXIF orientation applied (see the module docstring).

    Raises:
        DataError: naming the file when it is not PNG/JPEG, missing, or cannot be decoded.
    """
    path = Path(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise DataError(f"image {path}: unsupported file type {path.suffix or '(none)'!r}; expected PNG or JPEG")
    if not path.is_file():
        raise DataError(f"image {path} is missing")
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise DataError(f"image {path} is unreadable (corrupt or truncated {path.suffix.lstrip('.').upper()})")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def to_network_input(images: np.ndarray) -> np.ndarray:
    """uint8 RGB ``(H, W, 3)`` or ``(N, H, W, 3)`` -> float32 ``(3, H, W)`` or ``(N, 3, H, W)`` in ``[0, 1]``.

    The input convention of every network here (``rgb/255`` in checkpoint metadata): RGB order, pixels
    divided by 255, no mean or standard deviation.

    Example:
        >>> to_network_input(np.full((2, 4, 3), 255, np.uint8)).shape
        (3, 2, 4)
    """
    arr = np.asarray(images)
    if arr.dtype != np.uint8 or arr.ndim not in (3, 4) or arr.shape[-1] != 3:
        raise InputError(f"expected uint8 RGB images (H, W, 3) or (N, H, W, 3), got {arr.dtype} {arr.shape}")
    chw = np.moveaxis(arr, -1, -3)
    return np.ascontiguousarray(chw, dtype=np.float32) / np.float32(255)
