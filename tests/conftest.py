"""Fixtures shared by every test folder (pytest finds them; nothing imports this module by name)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


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
def real_samples_dir() -> Path:
    """``../shared/data/real-samples`` (real photos and annotation files): skipped locally when absent, fails in CI."""
    path = SHARED_DATA / "real-samples"
    if not (path / "coco" / "test_coco.json").is_file() or not (path / "mpii" / "test_mpii.json").is_file():
        message = f"real sample data missing: {path}"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must have it)")
        pytest.skip(message)
    return path
