"""Synthetic datasets written once per test session by the real `hourglass synth` command."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from hourglass.cli import app

NUM = 12


def run_synth(*args: str) -> None:
    result = CliRunner().invoke(app, ["synth", *args])
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="session")
def synth_coco(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "coco"
    run_synth("--out", str(out), "--num", str(NUM), "--format", "coco", "--seed", "7")
    return out


@pytest.fixture(scope="session")
def synth_mpii(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "mpii"
    run_synth("--out", str(out), "--num", str(NUM), "--format", "mpii", "--seed", "7")
    return out
