"""The one image reader of training and inference, and the one conversion of pixels to network inputs.

Formats: any PNG or JPEG that public datasets and cameras produce, as ``(H, W, 3)`` uint8 RGB. OpenCV
decodes it: grayscale is repeated over three channels, CMYK JPEGs are converted to RGB, 16-bit PNGs are
scaled to 8 bits (``v >> 8``), an alpha channel is dropped and palette images are expanded. Paths may hold
any characters (the bytes are read by numpy and decoded in memory).

Orientation: JPEG files may carry an EXIF orientation tag (a phone's portrait photo stored as a landscape
bitmap plus "rotate 90 degrees"). One rule serves training and prediction alike:

- when the annotation file records the image's size (COCO's ``width``/``height``), the pixel grid of that
  size is used: the stored bitmap if it has that size (as the annotators of COCO saw it, and as HRNet and
  mmpose read it, ignoring the tag), else the EXIF-turned picture if only it has that size; a size that
  fits neither is a :class:`DataError` (the keypoints would not fit);
- otherwise (an image to predict on, an MPII record) the tag is applied, as photo viewers, OpenCV's default
  ``IMREAD_COLOR`` and mmcv's default reader show the picture.

A 180-degree turn keeps the size, so with a recorded size the stored bitmap is used.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from hourglass.errors import DataError, InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
"""File types read (any case)."""


def read_image(
    path: str | os.PathLike[str], expected_size: tuple[int, int] | None = None, where: str = ""
) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB of a PNG or JPEG file (see the module docstring for formats and orientation).

    Args:
        path: the image file.
        expected_size: ``(H, W)`` the annotation file records for it, if any.
        where: the annotation file and record, for error messages.

    Raises:
        DataError: the file is not PNG/JPEG, missing, cannot be decoded, or has a size that matches
            ``expected_size`` neither as stored nor EXIF-turned; the message names ``where``, the file and
            the sizes.
    """
    path = Path(path)
    prefix = f"{where}: " if where else ""
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise DataError(
            f"{prefix}image {path}: unsupported file type {path.suffix or '(none)'!r}; expected PNG or JPEG"
        )
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        raise DataError(f"{prefix}image {path} is {'missing' if not path.exists() else 'unreadable'}") from None
    flags = cv2.IMREAD_COLOR if expected_size is None else cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    image = cv2.imdecode(data, flags) if data.size else None
    if image is None:
        raise DataError(f"{prefix}image {path} is unreadable (corrupt or truncated {path.suffix.lstrip('.').upper()})")
    if expected_size is not None and tuple(image.shape[:2]) != tuple(expected_size):
        turned = cv2.imdecode(data, cv2.IMREAD_COLOR)
        if turned is None or tuple(turned.shape[:2]) != tuple(expected_size):
            h, w = image.shape[:2]
            raise DataError(
                f"{prefix}image {path} is {w}x{h} pixels but the annotation file records width "
                f"{expected_size[1]} and height {expected_size[0]} (a different or resized image?)"
            )
        image = turned
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
