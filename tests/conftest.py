"""Shared test fixtures: the repository root and the shared MPII evaluation data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def shared_data_dir(name: str) -> Path:
    """``../shared/data/<name>`` beside the repository; skip locally, fail under CI, when absent."""
    path = SHARED_DATA / name
    if not path.is_dir():
        message = f"shared test data missing: {path}"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must have it)")
        pytest.skip(message)
    return path
