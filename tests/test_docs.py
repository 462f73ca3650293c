"""The documentation runs as written: every fenced ``bash``/``sh``/``console``/``python`` block of README.md and
docs/*.md is executed, and the figures the docs quote are those the code gives.

Conventions (for whoever writes docs):

- Every fence has a language. ``text`` (also ``yaml``, ``json``) is a sample, a diagram or a synopsis with
  placeholders, and is not run.
- ``bash``/``sh`` blocks run with ``bash -e -o pipefail`` and must exit 0. ``console`` blocks hold ``$ command``
  lines, each followed by lines of its expected output: every one of those (``...`` skips) must appear in what the
  command printed (whitespace aside), and the command must exit 0 unless an expected line starts with ``error:``.
  ``python`` blocks run as a script and must exit 0.
- A block that cannot run here (the internet, MPII images, a GPU, hours) has ``<!-- not run: REASON -->``
  on the line right before its fence, with a reason.

Where they run: each document gets a fresh temporary folder ``repo/`` standing in for the repository root
(its ``src``, ``benchmarks``, ``examples``, ``docs`` ... linked, ``.venv`` linking the running environment, so
``.venv/bin/python`` works), beside ``shared`` (linking the shared data, for ``../shared/data/...``). It
holds what the docs name, made on the spot: ``runs/demo/`` as ``hourglass demo`` leaves it (small synthetic
splits and a small checkpoint), ``photo.jpg``, ``good.png``, ``corrupt.png`` and ``clip.mp4``. The
repository itself is never written. Blocks of one document run in order in the same folder, so a later
block sees what an earlier one made (the QUICKSTART's synth -> train -> eval -> predict -> export).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# the shared data as tests/conftest.py finds it (its fixtures skip or fail per test; here per block)
SHARED_DATA = Path(os.environ.get("HOURGLASS_SHARED_DATA") or REPO_ROOT.parent / "shared" / "data")
DOCS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
RUN = {"bash", "sh", "console", "python"}
NOT_RUN = {"text", "yaml", "json"}
SKIP = re.compile(r"^<!--\s*not run:(.*?)-->\s*$")
LINKED = ("src", "benchmarks", "examples", "docs", "tests", "Makefile", "pyproject.toml", "README.md")
TIMEOUT_S = 300


@dataclass(frozen=True)
class Block:
    """A fenced block: its document, the line of its opening fence (1-based), language, text, and the
    reason given for not running it (None: it runs)."""

    doc: Path
    line: int
    lang: str
    text: str
    skip: str | None

    def where(self) -> str:
        return f"{self.doc.relative_to(REPO_ROOT)}:{self.line} ({self.lang})"


def read_blocks(doc: Path) -> list[Block]:
    """The fenced blocks of ``doc`` in order (fences are lines starting with three backticks)."""
    lines = doc.read_text().splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        if not lines[i].startswith("```"):
            i += 1
            continue
        lang = lines[i][3:].strip()
        end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), None)
        assert end is not None, f"{doc}:{i + 1}: unclosed fence"
        before = lines[i - 1].strip() if i > 0 else ""
        match = SKIP.match(before)
        blocks.append(Block(doc, i + 1, lang, "\n".join(lines[i + 1 : end]) + "\n", match and match.group(1).strip()))
        i = end + 1
    return blocks


ALL_BLOCKS = [b for doc in DOCS for b in read_blocks(doc)]


def test_every_block_says_what_it_is() -> None:
    """A language on every fence; a not-run mark only before a runnable block, and with its reason."""
    untagged = [b.where() for b in ALL_BLOCKS if b.lang not in RUN | NOT_RUN]
    assert not untagged, f"fences without a known language (use text for samples): {untagged}"
    for b in ALL_BLOCKS:
        if b.skip is not None:
            assert b.skip, f"{b.where()}: '<!-- not run: -->' needs a reason"
            assert b.lang in RUN, f"{b.where()}: a not-run mark before a {b.lang} block, which never runs"
    for doc in DOCS:  # every mark sits right before a fence (otherwise it marks nothing)
        lines = doc.read_text().splitlines()
        for n, line in enumerate(lines):
            if SKIP.match(line.strip()):
                assert n + 1 < len(lines) and lines[n + 1].startswith("```"), f"{doc}:{n + 1}: mark not before a fence"


def test_the_harness_reads_marks_and_languages(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text(
        "a\n<!-- not run: needs a GPU -->\n```bash\nnvidia-smi\n```\n\n```text\nout\n```\n```python\nx = 1\n```\n"
    )
    blocks = read_blocks(doc)
    assert [(b.line, b.lang, b.skip) for b in blocks] == [
        (3, "bash", "needs a GPU"),
        (7, "text", None),
        (10, "python", None),
    ]
    assert blocks[2].text == "x = 1\n"


# --- the workspace ---------------------------------------------------------------------------------------


def _hourglass(*args: str, cwd: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "hourglass", *args], cwd=cwd, capture_output=True, text=True, env=_env()
    )
    assert proc.returncode == 0, f"hourglass {' '.join(args)}: {proc.stderr[-3000:]}"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT / "src"), *filter(None, [env.get("PYTHONPATH")])])
    env["COLUMNS"] = "100"  # rich's tables as in a 100-column terminal
    # one thread a command: beside other work (a shared CI machine) OpenMP's spinning threads made the
    # QUICKSTART's training 40x slower (4 against 165 samples/s, ../shared/NOTES.md on spinning threads)
    env["OMP_NUM_THREADS"] = "1"
    env.pop("CI", None)  # doc commands behave as for a user
    return env


@pytest.fixture(scope="session")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``ROOT/repo`` as the docs assume the repository root to be after ``make demo``, and ``ROOT/shared``."""
    root = tmp_path_factory.mktemp("docs")
    repo = root / "repo"
    repo.mkdir()
    for name in LINKED:
        (repo / name).symlink_to(REPO_ROOT / name)
    (repo / ".venv").symlink_to(Path(sys.executable).parent.parent)
    if SHARED_DATA.is_dir():
        (root / "shared").symlink_to(SHARED_DATA.parent)
    demo = repo / "runs" / "demo"
    _hourglass(
        "synth", "--out", str(demo / "data" / "train"), "--num", "32", "--format", "mpii", "--seed", "1", cwd=repo
    )
    _hourglass("synth", "--out", str(demo / "data" / "val"), "--num", "8", "--format", "mpii", "--seed", "2", cwd=repo)
    small = ["model.kwargs.num_channels=32", "train.max_steps=2", "train.batch_size=8", "train.log_every=1"]
    _hourglass("train", "--config", "synthetic-hg1", *(a for s in small for a in ("--set", s)), cwd=repo)
    rng = np.random.default_rng(0)
    picture = (rng.random((96, 72, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(repo / "photo.jpg"), picture)
    cv2.imwrite(str(repo / "good.png"), picture)
    (repo / "corrupt.png").write_bytes(cv2.imencode(".png", picture)[1].tobytes()[:200])
    writer = cv2.VideoWriter(str(repo / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (72, 96))
    for _ in range(3):
        writer.write(picture)
    writer.release()
    return root


# --- running blocks --------------------------------------------------------------------------------------


def _normal(text: str) -> str:
    return " ".join(text.split())


def _console_steps(text: str) -> list[tuple[str, list[str]]]:
    """``[(command, expected output lines)]`` of a console block."""
    steps: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps and line.strip() and line.strip() != "...":
            steps[-1][1].append(line)
    return steps


def run_block(block: Block, cwd: Path) -> None:
    """Run one block in ``cwd``; a failure names the block, the command and the tail of its output."""
    env = _env()
    if block.lang == "python":
        script = cwd / f".doc_block_{block.line}.py"
        script.write_text(block.text)
        steps = [([sys.executable, script.name], [], True)]
    elif block.lang == "console":
        steps = [(["bash", "-o", "pipefail", "-c", cmd], want, not any(w.startswith("error:") for w in want))
                 for cmd, want in _console_steps(block.text)]  # fmt: skip
        assert steps, f"{block.where()}: a console block without a '$ ' command"
    else:
        steps = [(["bash", "-e", "-o", "pipefail", "-c", block.text], [], True)]
    for cmd, want, must_succeed in steps:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
        said = proc.stdout + proc.stderr
        shown = f"{block.where()}: {cmd[-1] if block.lang != 'python' else block.text}\n--- output ---\n{said[-3000:]}"
        if must_succeed:
            assert proc.returncode == 0, f"exit status {proc.returncode}\n{shown}"
        for line in want:
            assert _normal(line) in _normal(said), f"expected output missing: {line!r}\n{shown}"


def _needs_shared(block: Block) -> bool:
    return "../shared/" in block.text


@pytest.mark.slow
@pytest.mark.parametrize("doc", DOCS, ids=[str(d.relative_to(REPO_ROOT)) for d in DOCS])
def test_doc_runs_as_written(doc: Path, workspace: Path, tmp_path: Path) -> None:
    blocks = [b for b in read_blocks(doc) if b.lang in RUN and b.skip is None]
    if not blocks:
        pytest.skip("no runnable block")
    root = tmp_path / "ws"
    shutil.copytree(workspace, root, symlinks=True)
    for block in blocks:
        if _needs_shared(block) and not SHARED_DATA.is_dir():
            if os.environ.get("CI"):
                pytest.fail(f"{block.where()} needs {SHARED_DATA} (CI must have it)")
            continue
        run_block(block, root / "repo")


# --- figures quoted in the docs ----------------------------------------------------------------------------


def _counts(name: str) -> tuple[int, int]:
    """Parameters and multiply-adds (16 joints, 256x256) of preset ``name``, built on the ``meta`` device."""
    import torch

    from hourglass.models import create_model
    from hourglass.models.summary import count_macs, count_parameters

    with torch.device("meta"):
        model = create_model(name)
    return count_parameters(model), count_macs(model, (3, 256, 256))


def test_parameter_figures_are_the_code_s() -> None:
    """README's preset table, docs/ARCHITECTURE.md's exact table and its per-stack sentence, from the models."""
    readme = re.findall(
        r"^\| `(hg\d)` \| (\d+) \| ([\d.]+)M \| ([\d.]+) G \|$", (REPO_ROOT / "README.md").read_text(), re.M
    )
    arch_text = (REPO_ROOT / "docs" / "ARCHITECTURE.md").read_text()
    arch = re.findall(r"^\| `(hg\d)` \| (\d+) \| ([\d,]+) \(([\d.]+)M\) \| ([\d.]+) G \|$", arch_text, re.M)
    assert [r[0] for r in readme] == [r[0] for r in arch] == ["hg1", "hg2", "hg4", "hg8"]
    counts = {name: _counts(name) for name, *_ in readme}
    for (name, stacks, millions, gmacs), (_, stacks2, exact, millions2, gmacs2) in zip(readme, arch, strict=True):
        params, macs = counts[name]
        assert int(stacks) == int(stacks2) == int(name[2:])
        assert exact == f"{params:,}" and millions == millions2 == f"{params / 1e6:.2f}", name
        assert gmacs == gmacs2 == f"{macs / 1e9:.2f}", name
    per_stack = re.search(
        r"merge convolutions: ([\d,]+)\s+parameters and ([\d.]+) G multiply-adds per extra stack", arch_text
    )
    assert per_stack, "docs/ARCHITECTURE.md: the per-stack sentence moved; update this test"
    extra_params = counts["hg2"][0] - counts["hg1"][0]
    assert per_stack.group(1) == f"{extra_params:,}"
    assert per_stack.group(2) == f"{(counts['hg2'][1] - counts['hg1'][1]) / 1e9:.2f}"
    assert counts["hg8"][0] - counts["hg4"][0] == 4 * extra_params  # every extra stack costs the same
