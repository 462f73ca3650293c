"""Fixtures shared by every test folder (pytest finds them; nothing imports this module by name)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(
    os.environ.get("HOURGLASS_SHARED_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data"
)
"""``../shared/data`` beside the repository, or the folder named by ``HOURGLASS_SHARED_DATA``."""


@pytest.fixture(scope="session")
def mpii_eval_dir() -> Path:
    """``../shared/data/mpii-eval`` beside the repository: skipped locally when absent, a failure under CI.

    CI has the files (the brief), so a CI run without them must not pass quietly.
    """
    path = SHARED_DATA / "mpii-eval"
    if not (path / "mpii_val_gt.mat").is_file() or not (path / "valid.h5").is_file():
        message = f"MPII evaluation data missing: {path}"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must have it)")
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def mpii_photos() -> list[Path]:
    """The real MPII photos in ``shared/data/real-samples/mpii``: skipped locally when absent, a failure under CI."""
    photos = sorted((SHARED_DATA / "real-samples" / "mpii").glob("*.jpg"))
    if not photos:
        message = f"real MPII photos missing: {SHARED_DATA / 'real-samples' / 'mpii'}"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must have them)")
        pytest.skip(message)
    return photos
