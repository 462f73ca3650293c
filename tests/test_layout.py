"""The layout's rules, read from the source with ``ast``: arrows point one way, no cycles, models need torch only.

Every ``import`` counts, including those inside functions (a lazy import is still an arrow). A room is a
top-level module or subpackage of ``hourglass`` (``training``, ``data``, ``errors`` ...).
"""

from __future__ import annotations

import ast
import re
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
        *("demo", "predict", "training", "evaluation", "inference", "serve", "synthetic"),
        *("checkpoint", "data", "models", "metrics", "config", "errors"),
    },
    "demo": {  # `hourglass demo`: wires training, evaluation and pictures, beside the CLI
        *("training", "evaluation", "visualize", "synthetic"),
        *("checkpoint", "data", "models", "config", "device", "files", "errors"),
    },
    "predict": {  # `hourglass predict`: pictures and videos in, keypoints files and overlays out
        *("video", "inference", "people", "visualize"),
        *("data", "files", "errors"),
    },
    "serve": {"inference", "people", "checkpoint", "data", "device", "extras", "errors"},  # `hourglass serve`
    "training": {
        "evaluation",  # validation during training
        *("checkpoint", "data", "models", "losses", "metrics", "config", "device", "files", "extras", "errors"),
        "peak",  # bench --train's share of peak
    },
    "evaluation": {"checkpoint", "data", "models", "metrics", "config", "device", "files", "extras", "errors"},
    "video": {"inference", "people", "visualize", "data", "files", "errors"},  # frame sources, the pipeline
    "inference": {  # the Predictor and its runtimes: a network on pictures
        "people",  # the people of a picture (boxes, a detector) that the Predictor crops
        "synthetic",  # bench --accuracy's held-out figures
        *("checkpoint", "data", "models", "metrics", "config", "device", "files", "extras", "errors"),
        "peak",  # bench's share of peak
    },
    "people": {"checkpoint", "data", "extras", "errors"},  # boxes, detectors, tracks, smoothing
    "visualize": {"data", "files", "errors"},  # skeletons, boxes and montages drawn on pictures
    "peak": {"device", "errors"},  # the machine's peak convolution, shared by both benches
    "checkpoint": {"data", "models", "config", "files", "extras", "errors"},
    "synthetic": {"data", "metrics", "files", "errors"},  # figures drawn here; metrics: the MPII head size
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


def imports(path: Path, typing_only: bool = True) -> list[tuple[str, int]]:
    """Absolute names of every module ``path`` imports (relative imports resolved), with line numbers; with
    ``typing_only=False``, not those under ``if TYPE_CHECKING:`` (never run)."""
    tree = ast.parse(path.read_text(), str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    skipped: set[int] = set()
    if not typing_only:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skipped |= {id(inner) for part in node.body for inner in ast.walk(part)}
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
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


def module_graph() -> dict[str, set[str]]:
    """``{module: modules of hourglass it imports}``, file by file: every import, inside functions too, but not
    those under ``if TYPE_CHECKING:``; ``from package import name`` names the module ``package.name`` when there
    is one, else the package."""
    modules = {module_name(path): path for path in SOURCES}
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        graph[module] = set()
        tree = ast.parse(path.read_text(), str(path))
        imported_names: dict[int, list[str]] = {}  # line -> the names of a ``from x import a, b``
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                imported_names[node.lineno] = [alias.name for alias in node.names]
        for name, line in imports(path, typing_only=False):
            if not (name == "hourglass" or name.startswith("hourglass.")):
                continue
            targets = [f"{name}.{alias}" for alias in imported_names.get(line, []) if f"{name}.{alias}" in modules]
            targets = targets or [name]
            for target in targets:
                while target not in modules:
                    target = target.rpartition(".")[0]
                if target != module:
                    graph[module].add(target)
    return graph


def test_no_cycle_between_files() -> None:
    """No module imports, through any chain of imports (lazy ones included), a module that imports it."""
    graph = module_graph()
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join([*path[path.index(nxt) :], nxt]))
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


def test_the_file_cycle_check_sees_a_lazy_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check above fails on a cycle closed by an import inside a function, and ignores a ``TYPE_CHECKING`` one."""
    package = tmp_path / "hourglass"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from hourglass.b import thing\n")
    (package / "b.py").write_text("def thing():\n    from hourglass import a\n")
    (package / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from hourglass import d\n")
    (package / "d.py").write_text("import hourglass.c\n")
    monkeypatch.setattr(sys.modules[__name__], "SOURCES", sorted(package.rglob("*.py")))
    monkeypatch.setattr(sys.modules[__name__], "SRC", package)
    graph = module_graph()
    assert graph["hourglass.a"] == {"hourglass.b"} and graph["hourglass.b"] == {"hourglass.a"}
    assert graph["hourglass.c"] == set() and graph["hourglass.d"] == {"hourglass.c"}
    with pytest.raises(pytest.fail.Exception, match=re.escape("hourglass.a -> hourglass.b -> hourglass.a")):
        test_no_cycle_between_files()


def test_no_room_is_too_big_to_read() -> None:
    """No room holds more than 3,500 lines of code: past that, a newcomer cannot tell from the tree where a change
    goes, and the room should split by concern (as inference/ did into inference, people, video)."""
    sizes: dict[str, int] = {}
    for path in SOURCES:
        room = room_of(module_name(path)) if path != SRC / "__init__.py" else "__init__"
        sizes[room] = sizes.get(room, 0) + len(path.read_text().splitlines())
    assert max(sizes.values()) <= 3500, sorted(sizes.items(), key=lambda kv: -kv[1])[:3]


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
    from hourglass.checkpoint.load import load_model
    from hourglass.inference.predictor import Predictor

    assert hourglass.load_model is load_model and hourglass.Predictor is Predictor
    assert set(hourglass.__all__) >= {"create_model", "list_models", "load_model", "Predictor", "__version__"}
