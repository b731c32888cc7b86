# make test: build or refresh .venv from a fresh clone, lint, type-check, run every test.
# make demo: sandbox -> meltano run tap-calven target-duckdb -> a summary read from DuckDB.
# make bench: the benchmark table (see benchmarks/README.md).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install test lint typecheck pytest demo bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv>=0.5,<1"

# Reinstall whenever the project's metadata changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(BIN)/ruff check tap_calven tests benchmarks
	$(BIN)/ruff format --check tap_calven tests benchmarks

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

demo: install
	$(BIN)/python scripts/demo.py

bench: install
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) .meltano .pytest_cache .ruff_cache .mypy_cache output
