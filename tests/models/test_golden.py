"""Golden heatmaps: ``hg1`` and ``hg2`` with seeded weights on a seeded input give the stored outputs.

Tests that compare two of our own paths (eager against export, a checkpoint against its reload) pass when a
change shifts every heatmap a little; this one does not (torchvision's habit). The network is the preset
(256 channels, depth 4, 16 joints) with every floating tensor of its state dict set explicitly, in name
order, from one ``torch.Generator`` drawing uniform numbers (:func:`seeded`): bit-exact on any machine, and
independent of the default initialisation. The input is ``(1, 3, 64, 64)``, uniform in [0, 1], from the same
kind of generator.

Stored in ``golden_heatmaps.json`` beside this file (about 5 kB): for every stack and joint of the
``(1, S, 16, 16, 16)`` output, the heatmap's mean, standard deviation, maximum and its four 8x8 block means.
They are computed in float64, so they do not depend on the float32 kernels of the machine that wrote them;
the test runs the network in float32 and compares at a float32 tolerance (:data:`RTOL`, with an absolute
floor of :data:`ATOL` times the output's spread): 7 (hg2) to 16 (hg1) times the float32 error against float64
measured on an Intel Xeon, and a fifth or less of what changing one weight by 1e-3 does (4.5 and 15 times
the tolerance for the two weights of :func:`test_changing_one_weight_by_a_thousandth_is_caught`).

Regenerate after a deliberate change of the network's output (and say in the commit why it changed)::

    PYTHONPATH=src python tests/models/test_golden.py --regenerate
"""

from __future__ import annotations

import copy
import functools
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import hourglass

GOLDEN = Path(__file__).with_name("golden_heatmaps.json")
MODELS = ("hg1", "hg2")
SEED = 20161008  # ECCV 2016
COLUMNS = ("mean", "std", "max", "block00", "block01", "block10", "block11")
RTOL = 1e-4
ATOL = 1e-5  # times the output's standard deviation
# one weight at each end of hg1: the stem's first convolution, the 1x1 convolution before the heatmap head
PERTURBED = (("stem.conv.weight", (0, 0, 3, 3)), ("features.0.conv.weight", (0, 0, 0, 0)))


def seeded(name: str, dtype: torch.dtype = torch.float32) -> nn.Module:
    """Preset ``name`` (eval mode, ``dtype``) whose every floating tensor is drawn from one seeded generator.

    In name order, ``u`` uniform in [0, 1) (``torch.rand`` in float64: integer bits to floats, exact on any
    CPU): convolution weights ``(2u - 1) sqrt(3 / fan_in)`` (unit variance: the heatmaps' spread stays
    between 1 and 10 through two stacks, where He's ``sqrt(6 / fan_in)`` grows it to thousands), convolution biases and
    BatchNorm shifts and running means ``(2u - 1) / 10``, BatchNorm scales ``0.75 + u / 2`` and running
    variances ``0.5 + u``.
    """
    model = hourglass.create_model(name).eval()
    modules = dict(model.named_modules())
    gen = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for key, tensor in sorted(model.state_dict().items()):
            if not tensor.is_floating_point():
                continue  # num_batches_tracked
            owner, _, kind = key.rpartition(".")
            u = torch.rand(tensor.shape, generator=gen, dtype=torch.float64)
            if isinstance(modules[owner], nn.Conv2d) and kind == "weight":
                value = (2 * u - 1) * math.sqrt(3 / tensor[0].numel())
            elif kind == "weight":
                value = 0.75 + u / 2
            elif kind == "running_var":
                value = 0.5 + u
            else:  # biases, running means
                value = (2 * u - 1) / 10
            tensor.copy_(value)
    return model.to(dtype)


@functools.cache
def seeded_float32(name: str) -> nn.Module:
    """:func:`seeded` in float32, built once per test session (copy it before changing it)."""
    return seeded(name)


def seeded_input(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``(1, 3, 64, 64)`` uniform in [0, 1) from its own seeded generator."""
    gen = torch.Generator().manual_seed(SEED + 1)
    return torch.rand((1, 3, 64, 64), generator=gen, dtype=torch.float64).to(dtype)


def statistics(model: nn.Module) -> np.ndarray:
    """``(S, K, 7)`` float64: per stack and joint the :data:`COLUMNS` of ``model``'s heatmaps on the seeded input."""
    dtype = next(model.parameters()).dtype
    with torch.no_grad():
        heatmaps = model(seeded_input(dtype))[0].double()  # (S, K, 16, 16)
    blocks = nn.functional.avg_pool2d(heatmaps, 8).flatten(2)  # (S, K, 4)
    flat = heatmaps.flatten(2)
    summary = torch.stack([flat.mean(-1), flat.std(-1), flat.amax(-1)], dim=-1)
    return torch.cat([summary, blocks], dim=-1).numpy()


def mismatch(found: np.ndarray, golden: np.ndarray) -> float:
    """The largest ``|found - golden|`` as a share of what the tolerance allows (above 1: a mismatch)."""
    allowed = RTOL * np.abs(golden) + ATOL * golden[..., COLUMNS.index("std")].mean()
    return float(np.max(np.abs(found - golden) / allowed))


def load_golden() -> dict[str, np.ndarray]:
    stored = json.loads(GOLDEN.read_text())
    assert stored["columns"] == list(COLUMNS) and stored["seed"] == SEED
    return {name: np.array(stored["models"][name], dtype=np.float64) for name in MODELS}


@pytest.mark.parametrize("name", MODELS)
def test_seeded_network_gives_the_golden_heatmaps(name: str) -> None:
    golden = load_golden()[name]
    found = statistics(seeded_float32(name))
    assert found.shape == golden.shape == (hourglass.create_model(name).num_stacks, 16, len(COLUMNS))
    assert mismatch(found, golden) <= 1.0, (
        f"{name}: heatmaps differ from {GOLDEN.name} (x{mismatch(found, golden):.1f} the tolerance)"
    )


@pytest.mark.parametrize(("name", "index"), PERTURBED)
def test_changing_one_weight_by_a_thousandth_is_caught(name: str, index: tuple[int, ...]) -> None:
    """The tolerance lets no small change through: one weight of hg1 changed by 1e-3 (of weights about 0.1)."""
    model = copy.deepcopy(seeded_float32("hg1"))
    with torch.no_grad():
        model.get_parameter(name)[index] += 1e-3
    assert mismatch(statistics(model), load_golden()["hg1"]) > 2.0


def regenerate() -> None:
    """Write :data:`GOLDEN` from float64 runs of the seeded networks."""
    models = {name: _ten_digits(statistics(seeded(name, torch.float64))) for name in MODELS}
    record = {"seed": SEED, "input": [1, 3, 64, 64], "columns": list(COLUMNS), "models": models}
    GOLDEN.write_text(json.dumps(record) + "\n")
    for name in MODELS:
        error = mismatch(statistics(seeded(name)), np.array(models[name]))
        print(f"{GOLDEN}: {name} written; float32 differs from it by {error:.3f} of the tolerance")


def _ten_digits(values: np.ndarray) -> float | list:
    """Nested lists of ``values`` rounded to 10 significant digits (the tolerance needs 5)."""
    if values.ndim == 0:
        return float(f"{values:.10g}")
    return [_ten_digits(v) for v in values]


if __name__ == "__main__":
    if sys.argv[1:] != ["--regenerate"]:
        sys.exit(f"usage: python {sys.argv[0]} --regenerate")
    regenerate()
