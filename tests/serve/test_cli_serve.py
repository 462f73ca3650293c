"""``hourglass serve`` refuses what it cannot serve with one line, before binding a port."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hourglass.cli import app


def one_error_line(args: list[str]) -> str:
    result = CliRunner().invoke(app, ["serve", *args])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output, result.output
    return lines[0]


def test_bad_settings_and_checkpoints_are_one_line(tiny_checkpoint: Path, tmp_path: Path) -> None:
    missing = tmp_path / "none.safetensors"
    assert str(missing) in one_error_line(["--checkpoint", str(missing)])
    line = one_error_line(["--checkpoint", str(tiny_checkpoint), "--max-batch", "8", "--max-queue", "4"])
    assert "--max-queue: out of range" in line and "api_key" not in line
    assert "--api-key (HOURGLASS_API_KEY) is empty" in one_error_line(
        ["--checkpoint", str(tiny_checkpoint), "--api-key", " "]
    )
    line = one_error_line(["--checkpoint", str(tiny_checkpoint), "--detector", "yolo"])
    assert "unknown detector 'yolo'" in line and "default" in line


def test_serve_names_its_extra(tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m.split(".")[0] in ("starlette", "uvicorn")] or ["starlette"]:
        monkeypatch.setitem(sys.modules, name, None)
    line = one_error_line(["--checkpoint", str(tiny_checkpoint)])
    assert "pip install 'hourglass-pose[serve]'" in line
