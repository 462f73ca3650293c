"""One image reader for training and inference: EXIF orientation applied by both; one pixel conversion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hourglass.data import MPII_16, DataError, HeatmapCodec
from hourglass.data.dataset import KeypointDataset, Record
from hourglass.data.images import read_image, to_network_input
from hourglass.inference.predictor import Predictor


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
