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
import struct
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


def image_header_size(data: bytes, name: str = "image") -> tuple[int, int]:
    """``(H, W)`` of a PNG or JPEG held in ``data``, read from its header alone (no pixel is decoded).

    For refusing a picture too large to decode (a decompression bomb: a few kilobytes of file that
    inflate to gigabytes) before decoding it. The size is that of the stored bitmap; an EXIF turn keeps
    the number of pixels.

    Raises:
        DataError: ``data`` is not a PNG or JPEG, or its header is cut short; the message names ``name``.

    Example:
        >>> import cv2
        >>> ok, png = cv2.imencode(".png", np.zeros((30, 40, 3), np.uint8))
        >>> image_header_size(png.tobytes())
        (30, 40)
    """
    head = bytes(data[:2])
    if bytes(data[:8]) == b"\x89PNG\r\n\x1a\n":
        if len(data) < 24 or bytes(data[12:16]) != b"IHDR":
            raise DataError(f"{name}: a PNG without its IHDR header (truncated?)")
        width, height = struct.unpack(">II", bytes(data[16:24]))
    elif head == b"\xff\xd8":
        height, width = _jpeg_frame_size(data, name)
    else:
        raise DataError(f"{name} is not a PNG or JPEG image (it starts with {bytes(data[:8])!r})")
    if width == 0 or height == 0:
        raise DataError(f"{name}: its header gives a size of {width}x{height} pixels")
    return int(height), int(width)


_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # SOF0..SOF15 (C4 DHT, C8 JPG, CC DAC are not)


def _jpeg_frame_size(data: bytes, name: str) -> tuple[int, int]:
    """``(H, W)`` from the first start-of-frame segment of a JPEG, walking the segments before it."""
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            raise DataError(f"{name}: a corrupt JPEG (no segment marker at byte {i})")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # segments without a length
            i += 2
            continue
        (length,) = struct.unpack(">H", bytes(data[i + 2 : i + 4]))
        if marker in _JPEG_FRAMES:
            if i + 9 > len(data):
                break
            return struct.unpack(">HH", bytes(data[i + 5 : i + 9]))
        if marker == 0xDA or length < 2:  # image data before any frame header, or a broken length
            break
        i += 2 + length
    raise DataError(f"{name}: a JPEG without a frame header (truncated or corrupt)")


def decode_image(data: bytes, name: str = "image") -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB of PNG or JPEG bytes (an upload, a frame), as :func:`read_image` reads a file.

    The EXIF orientation is applied. Check :func:`image_header_size` first to refuse a picture too large
    to decode.

    Raises:
        DataError: not a PNG or JPEG, or not decodable; the message names ``name``.
    """
    image_header_size(data, name)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise DataError(f"{name} is unreadable (a corrupt or truncated PNG or JPEG)")
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
