"""Fixtures shared by every test folder (pytest finds them; nothing imports this module by name)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# ``shared/data`` beside the repository (``/work/main`` -> ``/work/shared/data``); HOURGLASS_SHARED_DATA
# names it where the checkout sits elsewhere (a git worktree, another machine).
SHARED_DATA = Path(
    os.environ.get("HOURGLASS_SHARED_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data"
)


def _shared(path: Path, required: tuple[str, ...], what: str) -> Path:
    """``path`` when it holds ``required``: skipped locally when absent, a failure under CI.

    CI has the files (the brief), so a CI run without them must not pass quietly.
    """
    if not all((path / name).is_file() for name in required):
        message = f"{what} missing: {path} (set HOURGLASS_SHARED_DATA to the shared data folder)"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must have it)")
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def mpii_eval_dir() -> Path:
    """``shared/data/mpii-eval``: the official MPII validation ground truth and pose-hg-train's ``valid.h5``."""
    return _shared(SHARED_DATA / "mpii-eval", ("mpii_val_gt.mat", "valid.h5"), "MPII evaluation data")


@pytest.fixture(scope="session")
def real_samples_dir() -> Path:
    """``shared/data/real-samples``: real photos with COCO and MPII annotations (its README gives provenance)."""
    required = ("coco/test_coco.json", "coco/test_coco_det_AP_H_56.json", "mpii/test_mpii.json")
    return _shared(SHARED_DATA / "real-samples", required, "real sample photos")
