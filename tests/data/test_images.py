"""One image reader for training and inference: EXIF orientation applied by both; one pixel conversion."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from hourglass.data import MPII_16, DataError, HeatmapCodec
from hourglass.data.dataset import KeypointDataset, Record
from hourglass.data.images import decode_image, image_header_size, read_image, to_network_input
from hourglass.inference.predictor import Predictor
from image_bytes import png_bomb


def _tagged_jpeg(path: Path, orientation: int) -> np.ndarray:
    """A 40 x 100 bitmap (left half dark, right half bright) saved with an EXIF orientation tag; returns it."""
    bitmap = np.zeros((40, 100, 3), np.uint8)
    bitmap[:, 50:] = 250
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(bitmap).save(path, exif=exif.tobytes(), quality=95)
    return bitmap


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    _tagged_jpeg(tmp_path / "portrait.jpg", 6)  # "rotate 90 degrees clockwise to display"
    image = read_image(tmp_path / "portrait.jpg")
    assert image.shape == (100, 40, 3)  # upright: 40 wide, 100 tall
    assert image[:45].mean() < 30 and image[55:].mean() > 220  # the dark half is now on top


def test_training_and_prediction_read_the_same_pixels(tmp_path: Path) -> None:
    _tagged_jpeg(tmp_path / "p.jpg", 6)
    record = Record(
        image_file="p.jpg",
        center=np.array([20.0, 50.0]),
        scale=np.array([0.5, 0.5]),
        keypoints=np.zeros((16, 2)),
        visible=np.zeros(16, np.uint8),
    )
    dataset = KeypointDataset([record], MPII_16, HeatmapCodec((64, 64)), image_root=tmp_path)
    assert np.array_equal(dataset.read_image(0), read_image(tmp_path / "p.jpg"))

    seen = []

    def runtime(batch: np.ndarray) -> np.ndarray:
        seen.append(batch)
        return np.zeros((len(batch), 16, 16, 16), np.float32)

    Predictor(runtime, dataset.codec, MPII_16, flip=False)(tmp_path / "p.jpg")
    whole = seen[0][0]  # the whole upright image fitted into the crop: taller than wide, dark on top
    assert whole.shape[0] == 3 and whole[:, :20].mean() < whole[:, -20:].mean()


def test_reader_errors_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "x.gif").write_bytes(b"GIF89a")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(DataError, match=r"x\.gif: unsupported file type '\.gif'"):
        read_image(tmp_path / "x.gif")
    with pytest.raises(DataError, match=r"image .*none\.png is missing"):
        read_image(tmp_path / "none.png")
    with pytest.raises(DataError, match=r"image .*bad\.png is unreadable"):
        read_image(tmp_path / "bad.png")


def test_network_input_is_rgb_over_255() -> None:
    rgb = np.arange(2 * 3 * 4 * 3, dtype=np.uint8).reshape(2, 3, 4, 3)
    x = to_network_input(rgb)
    assert x.shape == (2, 3, 3, 4) and x.dtype == np.float32
    assert np.array_equal(x, rgb.transpose(0, 3, 1, 2).astype(np.float32) / 255)
    assert to_network_input(rgb[0]).shape == (3, 3, 4)
    with pytest.raises(ValueError, match="uint8 RGB"):
        to_network_input(rgb.astype(np.float32))


@pytest.mark.parametrize("kind", [".png", ".jpg", "progressive", "exif"])
def test_header_size_without_decoding(kind: str, tmp_path: Path) -> None:
    """The size from the header alone equals the decoded bitmap's, for baseline and progressive JPEGs, PNGs,
    and a JPEG whose EXIF segment comes before the frame header."""
    rgb = np.random.default_rng(0).integers(0, 255, (37, 53, 3), dtype=np.uint8)
    if kind == "progressive":
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, "JPEG", progressive=True)
        data = buf.getvalue()
    elif kind == "exif":
        _tagged_jpeg(tmp_path / "t.jpg", 1)
        data, rgb = (tmp_path / "t.jpg").read_bytes(), np.zeros((40, 100, 3))
    else:
        data = cv2.imencode(kind, rgb)[1].tobytes()
    assert image_header_size(data) == rgb.shape[:2]
    assert decode_image(data).shape == rgb.shape


def test_header_of_a_bomb_and_of_non_images() -> None:
    bomb = png_bomb(20000, 20000)
    assert len(bomb) < 100_000 and image_header_size(bomb) == (20000, 20000)  # 1.2 GB as RGB: never decoded here
    with pytest.raises(DataError, match=r"upload is not a PNG or JPEG image \(it starts with b'GIF89a"):
        image_header_size(b"GIF89a....", "upload")
    with pytest.raises(DataError, match="a PNG without its IHDR header"):
        image_header_size(b"\x89PNG\r\n\x1a\n\x00", "upload")
    jpeg = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))[1].tobytes()
    with pytest.raises(DataError, match="a JPEG without a frame header"):
        image_header_size(jpeg[:20], "upload")
    with pytest.raises(DataError, match="upload is unreadable"):
        decode_image(jpeg[: jpeg.index(b"\xff\xda")], "upload")  # every header, no image data
