# The two commands of the README: `make demo` and `make test`. Both bootstrap .venv/ from plain Python.
PYTHON ?= python3
VENV ?= .venv
# CPU build of torch from the local wheel by default; override e.g. TORCH_SPEC='torch>=2.4' for CUDA.
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test lint bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[all,dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/hourglass demo

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	# The person-detector tests run in a pytest process of their own: after them, in one process with the
	# tests of tests/benchmarks, checkpoint/, data/ and evaluation/ before them, the interpreter's heap was
	# found corrupt (SIGSEGV in pymalloc at test_exporters' out-of-space test, 2026-12-03; each half alone
	# passes). Not yet traced to the library that corrupts it (ONNX Runtime and OpenVINO are both loaded). Seen
	# only on a loaded machine: the same prefix and the whole suite in one process passed on a quiet one later
	# that day (620 tests, Intel Xeon), so the split stays until the cause is found.
	$(BIN)/python -m pytest -q --ignore=tests/inference/test_detect.py
	$(BIN)/python -m pytest -q tests/inference/test_detect.py

lint: $(STAMP)
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/ruff check src tests benchmarks examples

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_runtimes.py hg2 --profile

clean:
	rm -rf $(VENV) runs build dist .pytest_cache
