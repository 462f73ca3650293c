"""The image reader of the datasets: any JPEG or PNG a public dataset ships, as ``(H, W, 3)`` uint8 RGB.

OpenCV decodes what real datasets contain: grayscale is repeated over three channels, CMYK JPEGs are
converted to RGB, 16-bit PNGs are scaled to 8 bits (``v >> 8``), an alpha channel is dropped and palette
images are expanded. Paths may hold any characters (the bytes are read by numpy and decoded in memory).

EXIF orientation: annotation files give coordinates in the stored pixel grid (HRNet and mmpose read COCO and
MPII with ``IMREAD_IGNORE_ORIENTATION``), so the stored grid is used, unless the annotation file records the
image size (COCO's ``width``/``height``) and only the EXIF-rotated picture has that size: then the annotator
saw the rotated picture and it is used. A size that fits neither is an error: the keypoints would not fit.
A 180-degree EXIF turn keeps the size and so cannot be told apart; the stored grid is used.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from .errors import DataError


def read_image(
    path: str | os.PathLike[str], expected_size: tuple[int, int] | None = None, where: str = ""
) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB of an image file (see the module docstring for formats and orientation).

    Args:
        path: the image file.
        expected_size: ``(H, W)`` the annotation file records for it, if any.
        where: the annotation file and record, for error messages.

    Raises:
        DataError: the file is missing, not a readable image, or of a size that matches ``expected_size``
            neither as stored nor EXIF-rotated; the message names ``where``, the file and the sizes.
    """
    path = Path(path)
    prefix = f"{where}: " if where else ""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        what = "missing" if not path.exists() else "unreadable"
        raise DataError(f"{prefix}image {path} is {what}") from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION) if data.size else None
    if image is None:
        raise DataError(f"{prefix}image {path} is unreadable or not an image")
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
