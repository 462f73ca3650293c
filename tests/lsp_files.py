"""Small LSP ``joints.mat`` files in either release's layout beside real JPEG files (tests/data, tests/evaluation)."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import scipy.io


def write_lsp(
    folder: Path, xy: np.ndarray, flags: np.ndarray, layout: str = "lspet", size=(120, 90), photos=None
) -> Path:
    """``folder/joints.mat`` in a release's layout from 1-based ``xy`` ``(N, 14, 2)`` and ``flags`` ``(N, 14)`` (as the
    file stores them: LSPet 1 = labelled, LSP 1 = occluded), and ``folder/images/im*.jpg``: noise of ``size``
    (H, W), or copies of the files ``photos`` (one per record)."""
    n = len(xy)
    table = np.concatenate([xy, flags[..., None]], axis=-1)  # (N, 14, 3)
    joints = table.transpose(1, 2, 0) if layout == "lspet" else table.transpose(2, 1, 0)
    folder.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(folder / "joints.mat", {"joints": joints})
    (folder / "images").mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        name = f"im{i + 1:05d}.jpg" if layout == "lspet" else f"im{i + 1:04d}.jpg"
        if photos is not None:
            shutil.copyfile(photos[i], folder / "images" / name)
        else:
            assert cv2.imwrite(str(folder / "images" / name), rng.integers(0, 256, (*size, 3), dtype=np.uint8))
    return folder / "joints.mat"


def people(n: int, seed: int = 0) -> np.ndarray:
    """``(n, 14, 2)`` 1-based joint positions inside a 120 x 90 picture."""
    return np.random.default_rng(seed).uniform(5, 80, (n, 14, 2))
