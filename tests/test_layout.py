"""The layout's rules, read from the source with ``ast``: arrows point one way, no cycles, models need torch only.

Every ``import`` counts, including those inside functions (a lazy import is still an arrow). A room is a
top-level module or subpackage of ``hourglass`` (``training``, ``data``, ``errors`` ...).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import hourglass

SRC = Path(hourglass.__file__).resolve().parent

ALLOWED: dict[str, set[str]] = {
    "__main__": {"cli"},
    "__init__": {"models", "checkpoint", "inference"},
    "cli": {
        "__init__",  # __version__ for --version
        *("demo", "training", "evaluation", "inference", "serve"),
        *("checkpoint", "data", "models", "metrics", "config", "errors"),
    },
    "demo": {  # `hourglass demo`: wires training, evaluation and pictures, beside the CLI
        *("training", "evaluation", "inference"),
        *("checkpoint", "data", "models", "config", "device", "files", "errors"),
    },
    "training": {
        "evaluation",  # validation during training
        *("checkpoint", "data", "models", "losses", "metrics", "config", "device", "files", "extras", "errors"),
        "peak",  # bench --train's share of peak
    },
    "evaluation": {"checkpoint", "data", "models", "metrics", "config", "device", "files", "extras", "errors"},
    "inference": {
        *("checkpoint", "data", "models", "metrics", "config", "device", "files", "extras", "errors"),
        "peak",  # bench's share of peak
    },
    "peak": {"device", "errors"},  # the machine's peak convolution, shared by both benches
    "serve": {"inference", "checkpoint", "data", "device", "extras", "errors"},  # `hourglass serve`, over inference
    "checkpoint": {"data", "models", "config", "files", "extras", "errors"},
    "data": {"metrics", "config", "files", "extras", "errors"},  # metrics: the MPII head size
    "metrics": {"extras", "errors"},  # extras: pycocotools for COCO AP
    "losses": {"errors"},
    "models": {"errors"},
    "config": {"errors"},
    "device": {"errors"},
    "extras": {"errors"},
    "files": {"errors"},
    "errors": set(),
}
"""Which rooms each room may import (besides itself)."""


def room_of(module: str) -> str:
    """``hourglass.training.loop`` -> ``training``; ``hourglass`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> list[tuple[str, int]]:
    """Absolute names of every module ``path`` imports (relative imports resolved), with line numbers."""
    tree = ast.parse(path.read_text(), str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((name, node.lineno))
    return found


SOURCES = sorted(SRC.rglob("*.py"))


def arrows() -> dict[tuple[str, str], str]:
    """``{(from room, to room): "file:line"}`` for every import between two different rooms."""
    out: dict[tuple[str, str], str] = {}
    for path in SOURCES:
        here = room_of(module_name(path)) if path != SRC / "__init__.py" else "__init__"
        for name, line in imports(path):
            if name == "hourglass" or name.startswith("hourglass."):
                there = room_of(name)
                if there != here:
                    out.setdefault((here, there), f"{path.relative_to(SRC.parent)}:{line}")
    return out


def test_every_room_is_known() -> None:
    rooms = {room_of(module_name(p)) if p != SRC / "__init__.py" else "__init__" for p in SOURCES}
    assert rooms <= set(ALLOWED), f"rooms without import rules: {sorted(rooms - set(ALLOWED))}"


def test_arrows_point_one_way() -> None:
    bad = [f"{a} -> {b} ({where})" for (a, b), where in arrows().items() if b not in ALLOWED[a]]
    assert not bad, "imports against the layout:\n" + "\n".join(bad)


def test_no_cycle_between_rooms() -> None:
    graph: dict[str, set[str]] = {}
    for a, b in arrows():
        graph.setdefault(a, set()).add(b)
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join([*path[path.index(nxt) :], nxt]))
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


def test_training_does_not_import_inference() -> None:
    """No module under ``training/`` imports ``inference/``, lazily or not: bench --train's peak is in ``peak.py``."""
    assert "inference" not in ALLOWED["training"]
    users = [f"{path.relative_to(SRC.parent)}:{line}" for path, line in _imports_of("training", "inference")]
    assert not users, "training imports inference at " + ", ".join(users)


def _imports_of(here: str, there: str) -> list[tuple[Path, int]]:
    """Every ``(file, line)`` where a module of room ``here`` imports room ``there``."""
    return [
        (path, line)
        for path in SOURCES
        if path != SRC / "__init__.py" and room_of(module_name(path)) == here
        for name, line in imports(path)
        if name.startswith("hourglass.") and room_of(name) == there
    ]


def test_nothing_imports_the_cli() -> None:
    users = [where for (a, b), where in arrows().items() if b == "cli" and a != "__main__"]
    assert not users


@pytest.mark.parametrize("path", sorted((SRC / "models").glob("*.py")), ids=lambda p: p.name)
def test_models_need_torch_only(path: Path) -> None:
    """Outside the standard library, model code imports torch (``summary`` also torchinfo, inside a function)."""
    allowed = {"torch", "hourglass", *sys.stdlib_module_names}
    if path.name == "summary.py":
        allowed.add("torchinfo")
    third = {name.split(".")[0] for name, _ in imports(path)} - allowed
    assert not third, f"{path.name} imports {sorted(third)}"


def test_recipes_ship_inside_the_package() -> None:
    from hourglass.config import list_recipes, load_config

    assert {"synthetic-hg1", "mpii-hg2", "mpii-hg8", "coco-hg2"} <= set(list_recipes())
    assert load_config("mpii-hg2").model.name == "hg2"


def test_top_level_exports() -> None:
    from hourglass.checkpoint.io import load_model
    from hourglass.inference.predictor import Predictor

    assert hourglass.load_model is load_model and hourglass.Predictor is Predictor
    assert set(hourglass.__all__) >= {"create_model", "list_models", "load_model", "Predictor", "__version__"}
