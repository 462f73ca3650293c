"""Every docstring example in the package runs, and none is skipped: the examples are tests too.

One test per module that has examples, so a failure names the module; a last test checks that the
examples were found at all (a finder that saw nothing would otherwise pass quietly).
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from types import ModuleType

import pytest

import hourglass

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def package_modules() -> list[ModuleType]:
    names = [m.name for m in pkgutil.walk_packages(hourglass.__path__, "hourglass.")]
    return [hourglass] + [importlib.import_module(n) for n in names if not n.endswith("__main__")]


def examples(module: ModuleType) -> list[doctest.DocTest]:
    """The docstring tests defined in ``module`` itself (not those of what it imports)."""
    return [t for t in doctest.DocTestFinder().find(module) if t.examples]


MODULES = [m for m in package_modules() if examples(m)]


@pytest.mark.parametrize("module", MODULES, ids=[m.__name__ for m in MODULES])
def test_docstring_examples_run(module: ModuleType) -> None:
    skipped = [f"{t.name}:{e.lineno}" for t in examples(module) for e in t.examples if e.options.get(doctest.SKIP)]
    assert not skipped, f"examples marked +SKIP do not run: {skipped}"
    result = doctest.testmod(module, optionflags=FLAGS, report=True)
    assert result.attempted == sum(len(t.examples) for t in examples(module)) > 0
    assert result.failed == 0


def test_examples_are_found() -> None:
    """The finder sees the examples we know exist (models, codec, metrics, losses, predictor)."""
    names = {m.__name__ for m in MODULES}
    assert {"hourglass.models.stacked", "hourglass.data.codec", "hourglass.metrics.pck", "hourglass.losses"} <= names
    assert sum(len(t.examples) for m in MODULES for t in examples(m)) >= 30
