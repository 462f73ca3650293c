"""One hierarchy of expected errors: the CLI prints those as one line; a bug keeps its traceback."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from hourglass import errors
from hourglass.cli import app, run_guarded


def test_every_expected_error_is_an_hourglass_error_and_a_value_error() -> None:
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, Exception)]
    assert {c.__name__ for c in classes} >= {"DataError", "ConfigError", "CheckpointError", "ExportError"}
    for cls in classes:
        assert issubclass(cls, errors.HourglassError) and issubclass(cls, ValueError), cls


@pytest.mark.parametrize("error", [errors.ConfigError("optim.lr must be > 0"), FileNotFoundError("x.yaml")])
def test_expected_errors_become_exit_status_1(error: Exception) -> None:
    def fail() -> None:
        raise error

    with pytest.raises(typer.Exit) as info:
        run_guarded(fail)
    assert info.value.exit_code == 1


@pytest.mark.parametrize("bug", [KeyError("model"), ValueError("a bare ValueError is a bug"), TypeError("x")])
def test_a_bug_keeps_its_exception(bug: Exception) -> None:
    def fail() -> None:
        raise bug

    with pytest.raises(type(bug)):
        run_guarded(fail)


def test_cli_prints_one_line_for_a_bad_model_name() -> None:
    result = CliRunner().invoke(app, ["summary", "hg99"])
    assert result.exit_code == 1
    assert "unknown model 'hg99'" in result.output and "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)
