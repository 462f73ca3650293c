"""`hourglass summary` / `probe` and the seed walkthrough, run as a user runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hourglass import create_model
from hourglass.models.summary import probe

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hourglass", *args], capture_output=True, text=True, cwd=REPO_ROOT, timeout=300
    )


def test_summary_of_the_seed_module() -> None:
    r = run_cli("summary", "hourglass-module", "--input-size", "256", "64", "64")
    assert r.returncode == 0, r.stderr
    assert "Total parameters: 3,217,920" in r.stdout
    assert "midconv_1" in r.stdout and "[1, 256, 4, 4]" in r.stdout
    assert "Multiply-adds" in r.stdout


def test_summary_of_hg2_counts_its_multiply_adds() -> None:
    r = run_cli("summary", "hg2", "--depth", "1")
    assert r.returncode == 0, r.stderr
    assert "Total parameters: 6,570,400" in r.stdout
    assert "8.33 G" in r.stdout


def test_probe_prints_layer_shapes_and_rejects_unknown_layers() -> None:
    r = run_cli("probe", "hourglass-module", "--layer", "midconv_1.conv2", "--layer", "upconv_3.conv2")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:2] == ["midconv_1.conv2\t(1, 128, 4, 4)", "upconv_3.conv2\t(1, 128, 32, 32)"]
    bad = run_cli("probe", "hg1", "--layer", "hourglasses.0.nope")
    assert bad.returncode == 1
    assert "no layer named hourglasses.0.nope" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_probe_function_on_a_stacked_network() -> None:
    shapes = probe(create_model("hg2", num_channels=32), ["hourglasses.1.midconv_1", "heads.0"], (3, 128, 128))
    assert shapes == {"hourglasses.1.midconv_1": (1, 32, 2, 2), "heads.0": (1, 16, 32, 32)}


def test_example_script_retells_the_seed() -> None:
    r = subprocess.run(
        [sys.executable, str(REPO_ROOT / "examples" / "seed_walkthrough.py")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "Total parameters: 3,217,920" in r.stdout
    assert "Your answer is : 3200" in r.stdout


def test_input_sizes_are_read_one_way() -> None:
    """``H W`` or ``C H W`` (C the model's), on every command: :func:`image_size` is the one reading."""
    from hourglass.errors import ConfigError
    from hourglass.models import Hourglass
    from hourglass.models.summary import default_input_size, image_size, input_shape

    assert image_size([128, 96], 3) == image_size((3, 128, 96), 3) == (128, 96)
    bad = {
        (256,): "input size '256': expected H W \\(or C H W, C = 3 for this model\\), got 1 number$",
        (1, 3, 64, 64): "got 4 numbers",
        (): "input size '': expected H W .* got 0 numbers",
        (1, 64, 64): "C = 1 but the model takes 3 channels; give H W or 3 H W",
        (0, 64): "height and width must be positive",
    }
    for given, message in bad.items():
        with pytest.raises(ConfigError, match=message):
            image_size(given, 3)
    seed = Hourglass(num_channels=32, depth=2)
    assert input_shape(seed) == default_input_size(seed) == (32, 64, 64)
    assert input_shape(seed, [16, 8]) == input_shape(seed, [32, 16, 8]) == (32, 16, 8)
